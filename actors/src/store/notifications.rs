//! Reminders that are due: the pending `reminder_*` rows of `notifications`, and recording one
//! as sent together with its `notification.sent` event (one transaction, so the event exists
//! if and only if the row says `sent`). Scheduling and cancelling them is in
//! [`crate::reminders`].

use chrono::{DateTime, Utc};
use engine::{TourId, TourStatus};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use serde_json::json;

use super::events::{append_outbox, OutboxEvent};
use super::StoreError;
use crate::reminders::DueReminder;

/// Statuses in which a tour still expects its reminders.
const REMINDED: [TourStatus; 2] = [TourStatus::Assigned, TourStatus::Accepted];

/// Pending reminders (of one tour, or all), earliest first.
pub(super) async fn pending<C: ConnectionTrait>(
    conn: &C,
    tour: Option<TourId>,
) -> Result<Vec<DueReminder>, StoreError> {
    let mut select = Query::select();
    select
        .columns(["id", "tour_id", "kind", "recipient_email", "due_at"])
        .from("notifications")
        .and_where(Expr::col("status").eq("pending"))
        .and_where(Expr::col("kind").like("reminder_%"))
        .and_where(Expr::col("tour_id").is_not_null())
        .order_by("due_at", Order::Asc);
    if let Some(tour) = tour {
        select.and_where(Expr::col("tour_id").eq(tour.0));
    }
    conn.query_all(&select)
        .await?
        .iter()
        .map(|row| {
            Ok(DueReminder {
                id: row.try_get("", "id")?,
                tour_id: TourId(row.try_get("", "tour_id")?),
                kind: row.try_get("", "kind")?,
                recipient: row.try_get("", "recipient_email")?,
                due_at: row.try_get("", "due_at")?,
            })
        })
        .collect()
}

/// Marks a pending reminder sent at `now` and appends `notification.sent`, if its tour is
/// still assigned or accepted and has not started; a reminder whose tour no longer wants it
/// (cancelled, moved back to matching, started) is marked `cancelled` instead. `false` when
/// nothing was sent (also when the row was not pending: sent before, or cancelled).
pub(super) async fn record_sent(
    db: &DatabaseConnection,
    id: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let txn = db.begin().await?;
    // The claim first (a write: SQLite takes its lock here, PostgreSQL locks the row).
    let claim = Query::update()
        .table("notifications")
        .value("status", "sent")
        .value("sent_at", now)
        .value("attempts", Expr::col("attempts").add(1))
        .and_where(Expr::col("id").eq(id))
        .and_where(Expr::col("status").eq("pending"))
        .returning(Query::returning().columns(["tour_id", "kind", "recipient_email", "due_at"]))
        .to_owned();
    let Some(row) = txn.query_one(&claim).await? else {
        return Ok(false);
    };
    let tour: Option<uuid::Uuid> = row.try_get("", "tour_id")?;
    let kind: String = row.try_get("", "kind")?;
    let recipient: String = row.try_get("", "recipient_email")?;
    let due_at: DateTime<Utc> = row.try_get("", "due_at")?;
    let wanted = match tour {
        Some(tour) => {
            let select = Query::select()
                .columns(["status", "start_at"])
                .from("tours")
                .and_where(Expr::col("id").eq(tour))
                .to_owned();
            match txn.query_one(&select).await? {
                Some(t) => {
                    let status: String = t.try_get("", "status")?;
                    let start: Option<DateTime<Utc>> = t.try_get("", "start_at")?;
                    REMINDED.iter().any(|s| s.as_str() == status)
                        && start.is_some_and(|start| start > now)
                }
                None => false,
            }
        }
        None => false,
    };
    if !wanted {
        let skip = Query::update()
            .table("notifications")
            .value("status", "cancelled")
            .value("sent_at", Option::<DateTime<Utc>>::None)
            .value("last_error", "the tour no longer expects this reminder")
            .and_where(Expr::col("id").eq(id))
            .to_owned();
        txn.execute(&skip).await?;
        txn.commit().await?;
        return Ok(false);
    }
    let data = json!({
        "notification_id": id,
        "kind": kind,
        "tour_id": tour,
        "recipient_email": recipient,
        "due_at": due_at,
        "sent_at": now,
    });
    let key = tour.map(|t| t.to_string()).unwrap_or_default();
    append_outbox(
        &txn,
        vec![OutboxEvent::notification("notification.sent", key, data)],
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}
