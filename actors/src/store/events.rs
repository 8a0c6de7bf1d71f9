//! Outbox and history rows: the events a change emits (CONTRACT 6) and its `tour_history` entry,
//! written in the change's transaction.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Query;
use sea_orm::{ConnectionTrait, DbErr};
use serde_json::{json, Value};
use uuid::Uuid;

use super::TourRecord;

/// Topic of tour lifecycle events.
pub(super) const TOPIC_TOURS: &str = "tours";
/// Topic of realtor appointments.
pub(super) const TOPIC_APPOINTMENTS: &str = "appointments";
/// Topic of realtor availability.
pub(super) const TOPIC_AVAILABILITY: &str = "availability";
/// Topic of notifications (reminders).
pub(super) const TOPIC_NOTIFICATIONS: &str = "notifications";

/// One event to append to the outbox.
pub(super) struct OutboxEvent {
    topic: &'static str,
    key: String,
    event_type: &'static str,
    data: Value,
}

impl OutboxEvent {
    /// A `notifications` event (`notification.scheduled`, `notification.sent`), keyed by `key` (the tour).
    pub(super) fn notification(event_type: &'static str, key: String, data: Value) -> Self {
        Self {
            topic: TOPIC_NOTIFICATIONS,
            key,
            event_type,
            data,
        }
    }

    /// An `availability` event about a realtor (not a slot), keyed by the realtor.
    pub(super) fn availability(
        event_type: &'static str,
        realtor: engine::RealtorId,
        data: Value,
    ) -> Self {
        Self {
            topic: TOPIC_AVAILABILITY,
            key: realtor.0.to_string(),
            event_type,
            data,
        }
    }

    /// `realtor.updated`: the realtor's whole profile (read back by
    /// [`super::rows::realtor_from_event`]).
    pub(super) fn profile(realtor: &engine::Realtor) -> Result<Self, DbErr> {
        let intervals = serde_json::to_value(realtor.hours.intervals())
            .map_err(|err| DbErr::Json(err.to_string()))?;
        Ok(Self::availability(
            "realtor.updated",
            realtor.id,
            json!({
                "realtor_id": realtor.id,
                "home": {"lat": realtor.home.lat(), "lng": realtor.home.lng()},
                "service_radius_km": realtor.service_radius_km(),
                "time_zone": realtor.hours.zone().name(),
                "working_hours": intervals,
                "status": realtor.status.as_str(),
            }),
        ))
    }

    /// A `tours` event carrying the tour JSON (without the explanation, which can be large and
    /// is served by the API on request).
    pub(super) fn tour(event_type: &'static str, tour: &TourRecord) -> Result<Self, DbErr> {
        let mut data = serde_json::to_value(tour).map_err(|err| DbErr::Json(err.to_string()))?;
        if let Value::Object(fields) = &mut data {
            fields.remove("explanation");
        }
        Ok(Self {
            topic: TOPIC_TOURS,
            key: tour.id.0.to_string(),
            event_type,
            data,
        })
    }

    /// An `appointments` or `availability` event about the tour's realtor slot, keyed by the
    /// realtor so one realtor's events stay in order. `None` when the tour holds no slot.
    pub(super) fn slot(
        topic: &'static str,
        event_type: &'static str,
        tour: &TourRecord,
    ) -> Option<Self> {
        let realtor = tour.realtor_id?;
        Some(Self {
            topic,
            key: realtor.0.to_string(),
            event_type,
            data: json!({
                "tour_id": tour.id,
                "realtor_id": realtor,
                "customer_id": tour.customer_id,
                "start": tour.start,
                "end": tour.end,
                "listings": tour.stops,
            }),
        })
    }
}

/// Appends `events` to the outbox in one statement, each in a CONTRACT 6 envelope, marked as
/// written by `origin` (the process; see [`super::SeaStore::with_origin`]).
pub(super) async fn append_outbox<C: ConnectionTrait>(
    conn: &C,
    origin: Option<&str>,
    events: Vec<OutboxEvent>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    if events.is_empty() {
        return Ok(());
    }
    let mut insert = Query::insert();
    insert.into_table("outbox").columns([
        "event_id",
        "topic",
        "key",
        "event_type",
        "payload",
        "created_at",
        "origin",
    ]);
    for event in events {
        let event_id = Uuid::now_v7();
        let payload = json!({
            "event_id": event_id,
            "type": event.event_type,
            "occurred_at": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "data": event.data,
        });
        insert
            .values([
                event_id.into(),
                event.topic.into(),
                event.key.into(),
                event.event_type.into(),
                payload.into(),
                now.into(),
                origin.map(str::to_owned).into(),
            ])
            .map_err(|err| DbErr::Custom(err.to_string()))?;
    }
    conn.execute(&insert).await?;
    Ok(())
}

/// Appends a `tour_history` row: the tour's new status, and the event and reason as detail.
pub(super) async fn append_history<C: ConnectionTrait>(
    conn: &C,
    tour: &TourRecord,
    event_type: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let detail = json!({"event": event_type, "reason": tour.reason, "realtor_id": tour.realtor_id});
    let insert = Query::insert()
        .into_table("tour_history")
        .columns(["tour_id", "status", "at", "detail"])
        .values([
            tour.id.0.into(),
            tour.status.as_str().into(),
            now.into(),
            detail.into(),
        ])
        .map_err(|err| DbErr::Custom(err.to_string()))?
        .to_owned();
    conn.execute(&insert).await?;
    Ok(())
}
