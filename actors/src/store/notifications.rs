//! The worker's side of the `notifications` table: the pending rows, and delivering one:
//! claimed, mailed and recorded `sent` with its `notification.sent` event in one transaction,
//! so the row says `sent` (and the event exists) if and only if the mailer delivered it; a
//! failed delivery is recorded apart (attempts, last error, retry time or `failed`). Writing
//! them is in [`crate::notices`] and [`crate::reminders`].

use chrono::{DateTime, Utc};
use engine::{TourId, TourStatus};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use serde_json::json;

use super::events::{append_outbox, OutboxEvent};
use super::StoreError;
use crate::mail::{Mail, Mailer};
use crate::notices::{Delivery, DueNotification};

/// Statuses in which a tour still expects its reminders.
const REMINDED: [TourStatus; 2] = [TourStatus::Assigned, TourStatus::Accepted];

/// Pending notifications (of one tour, or all), earliest first.
pub(super) async fn pending<C: ConnectionTrait>(
    conn: &C,
    tour: Option<TourId>,
) -> Result<Vec<DueNotification>, StoreError> {
    let mut select = Query::select();
    select
        .columns([
            "id",
            "tour_id",
            "kind",
            "recipient_email",
            "due_at",
            "attempts",
        ])
        .from("notifications")
        .and_where(Expr::col("status").eq("pending"))
        .order_by("due_at", Order::Asc);
    if let Some(tour) = tour {
        select.and_where(Expr::col("tour_id").eq(tour.0));
    }
    conn.query_all(&select)
        .await?
        .iter()
        .map(|row| {
            Ok(DueNotification {
                id: row.try_get("", "id")?,
                tour_id: row
                    .try_get::<Option<uuid::Uuid>>("", "tour_id")?
                    .map(TourId),
                kind: row.try_get("", "kind")?,
                recipient: row.try_get("", "recipient_email")?,
                due_at: row.try_get("", "due_at")?,
                attempts: row.try_get("", "attempts")?,
            })
        })
        .collect()
}

/// Delivers pending notification `id` at `now` through `mailer` (see the module docs). A
/// reminder whose tour no longer wants it (cancelled, moved back to matching, started) is
/// marked `cancelled` and not mailed.
pub(super) async fn deliver(
    db: &DatabaseConnection,
    id: uuid::Uuid,
    now: DateTime<Utc>,
    mailer: &dyn Mailer,
) -> Result<Delivery, StoreError> {
    let txn = db.begin().await?;
    // The claim first (a write: SQLite takes its lock here, PostgreSQL locks the row, so a
    // second worker waits and then finds it no longer pending).
    let claim = Query::update()
        .table("notifications")
        .value("status", "sent")
        .value("sent_at", now)
        .value("attempts", Expr::col("attempts").add(1))
        .and_where(Expr::col("id").eq(id))
        .and_where(Expr::col("status").eq("pending"))
        .returning(Query::returning().columns([
            "tour_id",
            "kind",
            "recipient_email",
            "subject",
            "body",
            "due_at",
        ]))
        .to_owned();
    let Some(row) = txn.query_one(&claim).await? else {
        return Ok(Delivery::Skipped);
    };
    let tour: Option<uuid::Uuid> = row.try_get("", "tour_id")?;
    let kind: String = row.try_get("", "kind")?;
    let recipient: String = row.try_get("", "recipient_email")?;
    let due_at: DateTime<Utc> = row.try_get("", "due_at")?;
    if kind.starts_with("reminder_") && !reminder_wanted(&txn, tour, now).await? {
        let skip = Query::update()
            .table("notifications")
            .value("status", "cancelled")
            .value("sent_at", Option::<DateTime<Utc>>::None)
            .value("last_error", "the tour no longer expects this reminder")
            .and_where(Expr::col("id").eq(id))
            .to_owned();
        txn.execute(&skip).await?;
        txn.commit().await?;
        return Ok(Delivery::Skipped);
    }
    let mail = Mail {
        id,
        to: recipient.clone(),
        subject: row.try_get("", "subject")?,
        body: row.try_get("", "body")?,
    };
    // Mailed inside the claim: a crash before the commit leaves the row pending and the
    // next delivery repeats this one (same Message-ID, same .eml file).
    if let Err(err) = mailer.deliver(&mail).await {
        txn.rollback().await?;
        return Ok(Delivery::Failed(err));
    }
    if kind == "password_reset" {
        // The link works once and only its hash is stored: keep it only in the email.
        let redact = Query::update()
            .table("notifications")
            .value("body", "(sent; the reset link is only in the email)")
            .and_where(Expr::col("id").eq(id))
            .to_owned();
        txn.execute(&redact).await?;
    }
    let data = json!({
        "notification_id": id,
        "kind": kind,
        "tour_id": tour,
        "recipient_email": recipient,
        "due_at": due_at,
        "sent_at": now,
    });
    let key = tour.map_or_else(|| id.to_string(), |t| t.to_string());
    append_outbox(
        &txn,
        None,
        vec![OutboxEvent::notification("notification.sent", key, data)],
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(Delivery::Sent)
}

/// Whether `tour` still expects a reminder at `now`: assigned or accepted, not started.
async fn reminder_wanted<C: ConnectionTrait>(
    conn: &C,
    tour: Option<uuid::Uuid>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(tour) = tour else { return Ok(false) };
    let select = Query::select()
        .columns(["status", "start_at"])
        .from("tours")
        .and_where(Expr::col("id").eq(tour))
        .to_owned();
    let Some(t) = conn.query_one(&select).await? else {
        return Ok(false);
    };
    let status: String = t.try_get("", "status")?;
    let start: Option<DateTime<Utc>> = t.try_get("", "start_at")?;
    Ok(REMINDED.iter().any(|s| s.as_str() == status) && start.is_some_and(|start| start > now))
}

/// Records a failed delivery of pending notification `id`: one more attempt and its error;
/// due again at `retry_at`, or `failed` for good when `retry_at` is `None`.
pub(super) async fn record_failure(
    db: &DatabaseConnection,
    id: uuid::Uuid,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let mut update = Query::update();
    update
        .table("notifications")
        .value("attempts", Expr::col("attempts").add(1))
        .value("last_error", error)
        .and_where(Expr::col("id").eq(id))
        .and_where(Expr::col("status").eq("pending"));
    match retry_at {
        Some(at) => update.value("due_at", at),
        None => update.value("status", "failed"),
    };
    db.execute(&update).await?;
    Ok(())
}
