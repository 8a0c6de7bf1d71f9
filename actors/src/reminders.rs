//! Tour reminders: rows in the `notifications` table (kinds `reminder_24h`, `reminder_1h`, ...)
//! that the notification worker sends when due. Scheduling is idempotent through the table's
//! unique index (`notifications_dedup`); cancelling marks pending rows `cancelled`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use engine::TourId;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::notices::DueNotification;
use crate::store::{StoreError, TourRecord};

/// One reminder to schedule: its kind and when it is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    /// `reminder_24h`, `reminder_1h`, `reminder_{n}m`.
    pub kind: String,
    /// Start of the tour minus the offset.
    pub due_at: DateTime<Utc>,
}

/// The notification kind of a reminder `offset` before the start: `reminder_24h`,
/// `reminder_1h`, otherwise `reminder_{minutes}m`.
#[must_use]
pub fn kind_for(offset: Duration) -> String {
    let secs = offset.as_secs();
    if secs % 3600 == 0 && secs > 0 {
        format!("reminder_{}h", secs / 3600)
    } else {
        format!("reminder_{}m", secs / 60)
    }
}

/// The reminders of a tour starting at `start`, one per offset, leaving out those already due
/// at `now`.
#[must_use]
pub fn reminders_for(
    start: DateTime<Utc>,
    offsets: &[Duration],
    now: DateTime<Utc>,
) -> Vec<Reminder> {
    offsets
        .iter()
        .filter_map(|&offset| {
            let due_at = start - chrono::Duration::from_std(offset).ok()?;
            (due_at > now).then(|| Reminder {
                kind: kind_for(offset),
                due_at,
            })
        })
        .collect()
}

/// Inserts the reminder rows of `tour` for its realtor and its customer (those with a `users`
/// row), skipping rows that exist; a reminder cancelled earlier for the same time is revived.
/// Returns the rows that became pending (inserted or revived): each is a `notification.scheduled`.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn schedule<C: ConnectionTrait>(
    conn: &C,
    tour: &TourRecord,
    reminders: &[Reminder],
) -> Result<Vec<DueNotification>, StoreError> {
    if reminders.is_empty() {
        return Ok(Vec::new());
    }
    let mut people = vec![tour.customer_id.0];
    people.extend(tour.realtor_id.map(|r| r.0));
    let select = Query::select()
        .column("email")
        .from("users")
        .and_where(Expr::col("id").is_in(people))
        .to_owned();
    let emails: Vec<String> = conn
        .query_all(&select)
        .await?
        .iter()
        .map(|row| row.try_get::<String>("", "email"))
        .collect::<Result<_, _>>()?;
    if emails.is_empty() {
        return Ok(Vec::new());
    }
    let now = Utc::now();
    let start = tour.start.map(|s| s.to_rfc3339()).unwrap_or_default();
    let mut insert = Query::insert();
    insert
        .into_table("notifications")
        .columns(crate::notices::INSERT_COLUMNS);
    for email in &emails {
        for r in reminders {
            insert
                .values([
                    Uuid::new_v4().into(),
                    r.kind.clone().into(),
                    tour.id.0.into(),
                    email.clone().into(),
                    "Reminder: your tour is coming up".into(),
                    format!("Tour {} starts at {start}.", tour.id.0).into(),
                    r.due_at.into(),
                    "pending".into(),
                    0_i32.into(),
                    now.into(),
                ])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
    }
    insert
        .on_conflict(
            OnConflict::columns(["kind", "tour_id", "recipient_email", "due_at"])
                .do_nothing()
                .to_owned(),
        )
        .returning(Query::returning().columns(SCHEDULED_COLUMNS));
    let mut scheduled = conn
        .query_all(&insert)
        .await?
        .iter()
        .map(|row| due_reminder(row, tour.id))
        .collect::<Result<Vec<_>, _>>()?;
    for r in reminders {
        let revive = Query::update()
            .table("notifications")
            .value("status", "pending")
            .and_where(Expr::col("tour_id").eq(tour.id.0))
            .and_where(Expr::col("kind").eq(r.kind.as_str()))
            .and_where(Expr::col("due_at").eq(r.due_at))
            .and_where(Expr::col("status").eq("cancelled"))
            .returning(Query::returning().columns(SCHEDULED_COLUMNS))
            .to_owned();
        for row in conn.query_all(&revive).await? {
            scheduled.push(due_reminder(&row, tour.id)?);
        }
    }
    Ok(scheduled)
}

/// The columns of a reminder row that [`due_reminder`] reads.
const SCHEDULED_COLUMNS: [&str; 4] = ["id", "kind", "recipient_email", "due_at"];

fn due_reminder(row: &sea_orm::QueryResult, tour_id: TourId) -> Result<DueNotification, DbErr> {
    Ok(DueNotification {
        id: row.try_get("", "id")?,
        tour_id: Some(tour_id),
        kind: row.try_get("", "kind")?,
        recipient: row.try_get("", "recipient_email")?,
        due_at: row.try_get("", "due_at")?,
        attempts: 0,
    })
}

/// Marks every pending reminder of `tour` cancelled; returns how many.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn cancel<C: ConnectionTrait>(conn: &C, tour: TourId) -> Result<u64, StoreError> {
    let update = Query::update()
        .table("notifications")
        .value("status", "cancelled")
        .and_where(Expr::col("tour_id").eq(tour.0))
        .and_where(Expr::col("status").eq("pending"))
        .and_where(Expr::col("kind").like("reminder_%"))
        .to_owned();
    Ok(conn.execute(&update).await?.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn kinds_and_due_times() {
        assert_eq!(kind_for(Duration::from_secs(24 * 3600)), "reminder_24h");
        assert_eq!(kind_for(Duration::from_secs(3600)), "reminder_1h");
        assert_eq!(kind_for(Duration::from_secs(90 * 60)), "reminder_90m");
        let start = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let r = reminders_for(
            start,
            &[Duration::from_secs(24 * 3600), Duration::from_secs(3600)],
            now,
        );
        // The 24 h reminder was due before `now`: left out.
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].kind, "reminder_1h");
        assert_eq!(r[0].due_at, start - chrono::Duration::hours(1));
    }
}
