//! [`SeaStore`]: the [`Store`] port over sea-orm, for PostgreSQL and SQLite.
//!
//! Queries are built with sea-query, so one text serves both backends. Every write
//! transaction starts with a write (an insert or a guarded `UPDATE ... RETURNING`), never
//! with a read: SQLite then takes its write lock first and concurrent writers queue on the
//! busy timeout instead of failing to upgrade a read snapshot; PostgreSQL row-locks the tour.

use std::sync::Arc;

use async_trait::async_trait;
use engine::{
    Booking, CustomerId, ListingId, PaymentId, Realtor, RealtorId, RealtorStatus, TourId,
    TourStatus, Transition,
};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait, Value};
use serde_json::json;

use super::events::{
    append_history, append_outbox, OutboxEvent, TOPIC_APPOINTMENTS, TOPIC_AVAILABILITY,
};
use super::rows::{
    booking_from_row, realtor_from_row, tour_from_row, BOOKING_COLUMNS, REALTOR_COLUMNS,
    TOUR_COLUMNS,
};
use super::sql::{classify, custom, diagnose, guarded_update, now, to_json};
use super::{
    Assignment, CartListing, Change, CreateOutcome, NewPayment, NewTour, Store, StoreError,
    TourRecord,
};

/// Rows per multi-row insert: well under PostgreSQL's 65535 bind parameters.
const BATCH_ROWS: usize = 1000;
/// Statuses of tours that are not finished.
const OPEN_STATUSES: [TourStatus; 5] = [
    TourStatus::Pending,
    TourStatus::Unassignable,
    TourStatus::Assigned,
    TourStatus::Accepted,
    TourStatus::InProgress,
];
/// Statuses that hold a realtor's time.
const ACTIVE_STATUSES: [TourStatus; 3] = [
    TourStatus::Assigned,
    TourStatus::Accepted,
    TourStatus::InProgress,
];

/// The [`Store`] over a sea-orm connection pool (PostgreSQL or SQLite, migrated).
#[derive(Debug, Clone)]
pub struct SeaStore {
    db: DatabaseConnection,
    origin: Option<Arc<str>>,
}

impl SeaStore {
    /// A store over `db`, which must have the `migrations` schema applied.
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db, origin: None }
    }

    /// Marks every event this store writes as written by `origin` (a process id; published
    /// as the `origin` header, see [`crate::runtime::peers`]).
    #[must_use]
    pub fn with_origin(mut self, origin: &str) -> Self {
        self.origin = Some(origin.into());
        self
    }

    fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// The underlying pool.
    #[must_use]
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The writes of [`Store::create_tour_from_payment`] on `conn`, which should be a
    /// transaction the caller commits (or drops, writing nothing).
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn create_tour_in<C: ConnectionTrait>(
        &self,
        conn: &C,
        tour: &NewTour,
    ) -> Result<CreateOutcome, StoreError> {
        let now = now();
        let inbox = Query::insert()
            .into_table("processed_payments")
            .columns(["payment_id", "event_id", "tour_id", "processed_at"])
            .values([
                tour.payment_id.0.into(),
                tour.payment_event_id.into(),
                tour.tour_id.0.into(),
                now.into(),
            ])
            .map_err(custom)?
            .on_conflict(OnConflict::column("payment_id").do_nothing().to_owned())
            .to_owned();
        // The dedup: a payment already in the inbox (committed, or being committed by a
        // concurrent caller, whom PostgreSQL and SQLite make us wait for) inserts nothing.
        if conn.execute(&inbox).await?.rows_affected() == 0 {
            let existing = Query::select()
                .column("tour_id")
                .from("processed_payments")
                .and_where(Expr::col("payment_id").eq(tour.payment_id.0))
                .to_owned();
            let row = conn
                .query_one(&existing)
                .await?
                .ok_or_else(|| DbErr::RecordNotFound("processed payment vanished".into()))?;
            return Ok(CreateOutcome::AlreadyExists(TourId(
                row.try_get("", "tour_id")?,
            )));
        }

        let record = TourRecord {
            id: tour.tour_id,
            payment_id: tour.payment_id,
            customer_id: tour.customer_id,
            status: TourStatus::Pending,
            stops: tour.stops.clone(),
            window: tour.window,
            duration_minutes: tour.duration_minutes,
            realtor_id: None,
            start: None,
            end: None,
            reason: None,
            declined: Vec::new(),
            explanation: None,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        let first = tour
            .stops
            .first()
            .ok_or_else(|| DbErr::Custom("a tour needs at least one listing".into()))?;
        let insert = Query::insert()
            .into_table("tours")
            .columns([
                "id",
                "payment_id",
                "customer_id",
                "status",
                "window_start",
                "window_end",
                "listings",
                "first_cell",
                "duration_minutes",
                "declined",
                "version",
                "created_at",
                "updated_at",
            ])
            .values([
                record.id.0.into(),
                record.payment_id.0.into(),
                record.customer_id.0.into(),
                record.status.as_str().into(),
                record.window.start().into(),
                record.window.end().into(),
                to_json(&record.stops)?.into(),
                engine::geo::fine_cell_id(&first.location).into(),
                record.duration_minutes.into(),
                json!([]).into(),
                record.version.into(),
                now.into(),
                now.into(),
            ])
            .map_err(custom)?
            .to_owned();
        conn.execute(&insert).await?;
        append_history(conn, &record, "tour.created", now).await?;
        append_outbox(
            conn,
            self.origin(),
            vec![OutboxEvent::tour("tour.created", &record)?],
            now,
        )
        .await?;
        Ok(CreateOutcome::Created(Box::new(record)))
    }

    async fn select_tour(&self, select: SelectStatement) -> Result<Option<TourRecord>, StoreError> {
        match self.db.query_one(&select).await? {
            Some(row) => Ok(Some(tour_from_row(&row)?)),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl Store for SeaStore {
    async fn set_realtor_status(
        &self,
        realtor: RealtorId,
        status: RealtorStatus,
    ) -> Result<bool, StoreError> {
        let now = now();
        let txn = self.db.begin().await?;
        let update = Query::update()
            .table("realtor_profiles")
            .value("status", status.as_str())
            .value("updated_at", now)
            .and_where(Expr::col("user_id").eq(realtor.0))
            .and_where(Expr::col("status").ne(status.as_str()))
            .returning(Query::returning().column("user_id"))
            .to_owned();
        if txn.query_one(&update).await?.is_none() {
            return Ok(false);
        }
        let event = OutboxEvent::availability(
            "realtor.status_changed",
            realtor,
            json!({"realtor_id": realtor, "status": status.as_str(), "changed_at": now}),
        );
        append_outbox(&txn, self.origin(), vec![event], now).await?;
        txn.commit().await?;
        Ok(true)
    }

    async fn schedule_reminders(
        &self,
        tour: &TourRecord,
        reminders: &[crate::reminders::Reminder],
    ) -> Result<(), StoreError> {
        let now = now();
        let txn = self.db.begin().await?;
        let scheduled = crate::reminders::schedule(&txn, tour, reminders).await?;
        let events = scheduled
            .iter()
            .map(|r| {
                OutboxEvent::notification(
                    "notification.scheduled",
                    tour.id.0.to_string(),
                    json!({
                        "notification_id": r.id,
                        "kind": r.kind,
                        "tour_id": r.tour_id,
                        "recipient_email": r.recipient,
                        "due_at": r.due_at,
                    }),
                )
            })
            .collect();
        append_outbox(&txn, self.origin(), events, now).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn cancel_reminders(&self, tour: TourId) -> Result<u64, StoreError> {
        crate::reminders::cancel(&self.db, tour).await
    }

    async fn pending_notifications(
        &self,
        tour: Option<TourId>,
    ) -> Result<Vec<crate::notices::DueNotification>, StoreError> {
        super::notifications::pending(&self.db, tour).await
    }

    async fn deliver_notification(
        &self,
        id: uuid::Uuid,
        now: chrono::DateTime<chrono::Utc>,
        mailer: &dyn crate::mail::Mailer,
    ) -> Result<crate::notices::Delivery, StoreError> {
        super::notifications::deliver(&self.db, id, now, mailer).await
    }

    async fn record_notification_failure(
        &self,
        id: uuid::Uuid,
        error: &str,
        retry_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(), StoreError> {
        super::notifications::record_failure(&self.db, id, error, retry_at).await
    }

    async fn cart_listing(&self, listing: ListingId) -> Result<Option<CartListing>, StoreError> {
        super::cart::listing(&self.db, listing).await
    }

    async fn cart_items(&self, customer: CustomerId) -> Result<Vec<CartListing>, StoreError> {
        super::cart::items(&self.db, customer).await
    }

    async fn add_cart_item(
        &self,
        customer: CustomerId,
        listing: ListingId,
    ) -> Result<bool, StoreError> {
        super::cart::add(&self.db, customer, listing).await
    }

    async fn remove_cart_item(
        &self,
        customer: CustomerId,
        listing: ListingId,
    ) -> Result<bool, StoreError> {
        super::cart::remove(&self.db, customer, listing).await
    }

    async fn create_payment(&self, payment: &NewPayment) -> Result<(), StoreError> {
        super::cart::create_payment(&self.db, payment).await
    }

    async fn create_tour_from_payment(&self, tour: NewTour) -> Result<CreateOutcome, StoreError> {
        let txn = self.db.begin().await?;
        let outcome = self.create_tour_in(&txn, &tour).await?;
        if matches!(outcome, CreateOutcome::Created(_)) {
            txn.commit().await?;
        }
        Ok(outcome)
    }

    async fn assign(&self, a: Assignment<'_>) -> Result<TourRecord, StoreError> {
        let now = now();
        let txn = self.db.begin().await?;
        let explanation = to_json(a.explanation)?;
        let mut update = guarded_update(a.tour_id, a.expected_version, &[TourStatus::Pending]);
        update
            .value("status", TourStatus::Assigned.as_str())
            .value("realtor_id", a.realtor_id.0)
            .value("start_at", a.start)
            .value("end_at", a.end)
            .value("explanation", explanation)
            .value("reason", Value::String(None))
            .value("updated_at", now);
        let row = txn.query_one(&update).await.map_err(classify)?;
        let Some(row) = row else {
            return Err(diagnose(&txn, a.tour_id).await);
        };
        let tour = tour_from_row(&row)?;
        append_history(&txn, &tour, "tour.assigned", now).await?;
        let mut events = vec![OutboxEvent::tour(Transition::Assign.event_type(), &tour)?];
        events.extend(OutboxEvent::slot(
            TOPIC_APPOINTMENTS,
            "appointment.scheduled",
            &tour,
        ));
        events.extend(OutboxEvent::slot(
            TOPIC_AVAILABILITY,
            "realtor.booked",
            &tour,
        ));
        append_outbox(&txn, self.origin(), events, now).await?;
        crate::notices::for_tour_change(&txn, "tour.assigned", None, &tour, now).await?;
        txn.commit().await?;
        Ok(tour)
    }

    async fn transition(&self, change: Change) -> Result<TourRecord, StoreError> {
        let conflict = StoreError::Conflict(change.tour_id);
        if change.transition == Transition::Assign {
            return Err(conflict);
        }
        // The statuses this transition may leave, and the one it enters (the same from all).
        let moves: Vec<(TourStatus, TourStatus)> = TourStatus::ALL
            .into_iter()
            .filter_map(|from| Some((from, from.apply(change.transition).ok()?)))
            .collect();
        let Some(&(_, to)) = moves.first() else {
            return Err(conflict);
        };
        let froms: Vec<TourStatus> = moves.iter().map(|(from, _)| *from).collect();

        let now = now();
        let txn = self.db.begin().await?;
        let mut claim = guarded_update(change.tour_id, change.expected_version, &froms);
        claim.value("status", to.as_str()).value("updated_at", now);
        let row = txn.query_one(&claim).await.map_err(classify)?;
        let Some(row) = row else {
            return Err(diagnose(&txn, change.tour_id).await);
        };
        // Still the old assignment: only active tours carry one (moving to pending clears it).
        let before = tour_from_row(&row)?;
        let mut tour = before.clone();
        tour.reason = change.reason;
        if let Some(realtor) = change.declined {
            if !tour.declined.contains(&realtor) {
                tour.declined.push(realtor);
            }
        }
        if let Some(window) = change.new_window {
            tour.window = window;
        }
        if to == TourStatus::Pending {
            tour.realtor_id = None;
            tour.start = None;
            tour.end = None;
            tour.explanation = None;
        }
        let explanation = tour.explanation.as_ref().map(to_json).transpose()?;
        let rest = Query::update()
            .table("tours")
            .value("reason", tour.reason.clone())
            .value("declined", to_json(&tour.declined)?)
            .value("window_start", tour.window.start())
            .value("window_end", tour.window.end())
            .value("realtor_id", tour.realtor_id.map(|id| id.0))
            .value("start_at", tour.start)
            .value("end_at", tour.end)
            .value("explanation", explanation)
            .and_where(Expr::col("id").eq(tour.id.0))
            .to_owned();
        txn.execute(&rest).await.map_err(classify)?;

        let event_type = change.transition.event_type();
        append_history(&txn, &tour, event_type, now).await?;
        let mut events = vec![OutboxEvent::tour(event_type, &tour)?];
        // A tour giving its realtor's time back (not by completing it) cancels the appointment.
        if before.realtor_id.is_some() && !to.is_active() && to != TourStatus::Completed {
            events.extend(OutboxEvent::slot(
                TOPIC_APPOINTMENTS,
                "appointment.cancelled",
                &before,
            ));
            events.extend(OutboxEvent::slot(
                TOPIC_AVAILABILITY,
                "realtor.released",
                &before,
            ));
        }
        append_outbox(&txn, self.origin(), events, now).await?;
        crate::notices::for_tour_change(&txn, event_type, Some(&before), &tour, now).await?;
        txn.commit().await?;
        Ok(tour)
    }

    async fn get_tour(&self, id: TourId) -> Result<Option<TourRecord>, StoreError> {
        let select = Query::select()
            .columns(TOUR_COLUMNS)
            .from("tours")
            .and_where(Expr::col("id").eq(id.0))
            .to_owned();
        self.select_tour(select).await
    }

    async fn tour_by_payment(&self, payment: PaymentId) -> Result<Option<TourRecord>, StoreError> {
        let select = Query::select()
            .columns(TOUR_COLUMNS)
            .from("tours")
            .and_where(Expr::col("payment_id").eq(payment.0))
            .to_owned();
        self.select_tour(select).await
    }

    async fn load_realtors(&self) -> Result<Vec<Realtor>, StoreError> {
        let select = Query::select()
            .columns(REALTOR_COLUMNS)
            .from("realtor_profiles")
            .to_owned();
        let rows = self.db.query_all(&select).await?;
        let mut realtors = Vec::with_capacity(rows.len());
        for row in &rows {
            match realtor_from_row(row) {
                Ok(realtor) => realtors.push(realtor),
                Err(problem) => {
                    let id = row.try_get::<uuid::Uuid>("", "user_id").ok();
                    tracing::warn!(realtor = ?id, %problem, "skipping invalid realtor profile");
                }
            }
        }
        Ok(realtors)
    }

    async fn load_active_bookings(&self) -> Result<Vec<(RealtorId, Booking)>, StoreError> {
        let select = Query::select()
            .columns(BOOKING_COLUMNS)
            .from("tours")
            .and_where(Expr::col("status").is_in(ACTIVE_STATUSES.map(TourStatus::as_str)))
            .to_owned();
        let rows = self.db.query_all(&select).await?;
        Ok(rows
            .iter()
            .map(booking_from_row)
            .collect::<Result<_, _>>()?)
    }

    async fn load_open_tours(&self) -> Result<Vec<TourRecord>, StoreError> {
        let select = Query::select()
            .columns(TOUR_COLUMNS)
            .from("tours")
            .and_where(Expr::col("status").is_in(OPEN_STATUSES.map(TourStatus::as_str)))
            .order_by("created_at", sea_orm::sea_query::Order::Asc)
            .to_owned();
        let rows = self.db.query_all(&select).await?;
        Ok(rows.iter().map(tour_from_row).collect::<Result<_, _>>()?)
    }

    async fn upsert_realtor_profiles(&self, realtors: &[Realtor]) -> Result<(), StoreError> {
        let now = now();
        let txn = self.db.begin().await?;
        for chunk in realtors.chunks(BATCH_ROWS) {
            let mut insert = Query::insert();
            insert
                .into_table("realtor_profiles")
                .columns([
                    "user_id",
                    "home_lat",
                    "home_lng",
                    "home_cell",
                    "service_radius_km",
                    "time_zone",
                    "working_hours",
                    "status",
                    "updated_at",
                ])
                .on_conflict(
                    OnConflict::column("user_id")
                        .update_columns([
                            "home_lat",
                            "home_lng",
                            "home_cell",
                            "service_radius_km",
                            "time_zone",
                            "working_hours",
                            "status",
                            "updated_at",
                        ])
                        .to_owned(),
                );
            for realtor in chunk {
                insert
                    .values([
                        realtor.id.0.into(),
                        realtor.home.lat().into(),
                        realtor.home.lng().into(),
                        engine::geo::fine_cell_id(&realtor.home).into(),
                        realtor.service_radius_km().into(),
                        realtor.hours.zone().name().into(),
                        to_json(realtor.hours.intervals())?.into(),
                        realtor.status.as_str().into(),
                        now.into(),
                    ])
                    .map_err(custom)?;
            }
            txn.execute(&insert).await?;
            // Other processes learn profile changes from `availability` (scale-out).
            let events = chunk
                .iter()
                .map(OutboxEvent::profile)
                .collect::<Result<Vec<_>, _>>()?;
            append_outbox(&txn, self.origin(), events, now).await?;
        }
        txn.commit().await?;
        Ok(())
    }
}
