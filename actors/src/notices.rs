//! The emails Tourwise sends, as rows of the `notifications` table, the email outbox: each is
//! written in the same transaction as the change it tells of, and the notification worker
//! ([`crate::runtime::reminder`]) delivers it when due through a [`crate::mail::Mailer`].
//!
//! Kinds: `tour_assigned` (customer and realtor), `tour_accepted`, `tour_declined`,
//! `tour_unassignable` (customer), `tour_rescheduled` and `tour_cancelled` (customer and the
//! realtor who had it), reminders (`reminder_24h`, ... see [`crate::reminders`]), and the API's
//! `review_received` (realtor), `listing_published` (provider) and `password_reset`.

use chrono::{DateTime, Utc};
use engine::TourId;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::mail::MailError;
use crate::store::{StoreError, TourRecord};

/// A pending row of `notifications`, as the worker queues it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueNotification {
    /// The row (also the email's Message-ID).
    pub id: Uuid,
    /// The tour it is about, if any.
    pub tour_id: Option<TourId>,
    /// `tour_assigned`, `reminder_1h`, `password_reset`, ...
    pub kind: String,
    /// Who gets it (an email address).
    pub recipient: String,
    /// When it is due.
    pub due_at: DateTime<Utc>,
    /// Failed delivery attempts so far.
    pub attempts: i32,
}

/// What became of one delivery.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// Delivered and recorded `sent` (with its `notification.sent` event).
    Sent,
    /// Nothing to send: no longer pending (sent or cancelled meanwhile), or a reminder whose
    /// tour no longer wants it (now `cancelled`).
    Skipped,
    /// The mailer failed; the row is still pending, untouched.
    Failed(MailError),
}

/// A notification to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotice {
    /// See the module docs.
    pub kind: &'static str,
    /// The tour it is about, if any.
    pub tour_id: Option<TourId>,
    /// Who gets it.
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// The columns a new `notifications` row is written with, in the order of its values.
pub(crate) const INSERT_COLUMNS: [&str; 10] = [
    "id",
    "kind",
    "tour_id",
    "recipient_email",
    "subject",
    "body",
    "due_at",
    "status",
    "attempts",
    "created_at",
];

/// Writes `notices`, due at `due_at`; a notice equal in kind, tour, recipient and due time to
/// an existing row is skipped (redelivered events write nothing twice). Returns how many
/// rows were written.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    notices: &[NewNotice],
    due_at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    if notices.is_empty() {
        return Ok(0);
    }
    let mut insert = Query::insert();
    insert.into_table("notifications").columns(INSERT_COLUMNS);
    for n in notices {
        insert
            .values([
                Uuid::new_v4().into(),
                n.kind.into(),
                n.tour_id.map(|t| t.0).into(),
                n.recipient.clone().into(),
                n.subject.clone().into(),
                n.body.clone().into(),
                due_at.into(),
                "pending".into(),
                0_i32.into(),
                Utc::now().into(),
            ])
            .map_err(|e| DbErr::Custom(e.to_string()))?;
    }
    // Either unique index (with or without a tour) makes a duplicate a no-op.
    insert.on_conflict(OnConflict::new().do_nothing().to_owned());
    Ok(conn.execute(&insert).await?.rows_affected())
}

/// A person a notice goes to.
#[derive(Debug, Clone)]
struct Person {
    email: String,
    name: String,
}

async fn people<C: ConnectionTrait>(
    conn: &C,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, Person>, StoreError> {
    if ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let select = Query::select()
        .columns(["id", "email", "name"])
        .from("users")
        .and_where(Expr::col("id").is_in(ids.iter().copied()))
        .to_owned();
    let mut found = std::collections::HashMap::new();
    for row in conn.query_all(&select).await? {
        let id: Uuid = row.try_get("", "id")?;
        found.insert(
            id,
            Person {
                email: row.try_get("", "email")?,
                name: row.try_get("", "name")?,
            },
        );
    }
    Ok(found)
}

/// The email address and name of user `id`, when there is one.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn email_of<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(people(conn, &[id])
        .await?
        .remove(&id)
        .map(|p| (p.email, p.name)))
}

fn when(tour: &TourRecord) -> String {
    match (tour.start, tour.end) {
        (Some(start), Some(end)) => format!(
            "{} to {} UTC",
            start.format("%a %-d %b %Y, %H:%M"),
            end.format("%H:%M")
        ),
        _ => format!(
            "in your window {} to {} UTC",
            tour.window.start().format("%a %-d %b %Y, %H:%M"),
            tour.window.end().format("%a %-d %b %Y, %H:%M")
        ),
    }
}

fn listings(tour: &TourRecord) -> String {
    match tour.stops.len() {
        1 => "1 listing".to_owned(),
        n => format!("{n} listings"),
    }
}

/// The notices of one tour change (`event_type` is the transition's event, e.g.
/// `tour.assigned`), written with it; `before` is the tour before the change, when it had a
/// realtor that the change took away.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn for_tour_change<C: ConnectionTrait>(
    conn: &C,
    event_type: &str,
    before: Option<&TourRecord>,
    tour: &TourRecord,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let previous_realtor = before.and_then(|b| b.realtor_id).map(|r| r.0);
    let realtor = tour.realtor_id.map(|r| r.0).or(previous_realtor);
    let mut ids = vec![tour.customer_id.0];
    ids.extend(realtor);
    let people = people(conn, &ids).await?;
    let customer = people.get(&tour.customer_id.0);
    let realtor = realtor.and_then(|r| people.get(&r));
    let id = tour.id.0;
    let tour_id = Some(tour.id);
    let mut notices = Vec::new();
    let mut to = |kind, person: Option<&Person>, subject: String, body: String| {
        if let Some(p) = person {
            notices.push(NewNotice {
                kind,
                tour_id,
                recipient: p.email.clone(),
                subject,
                body: format!("Hello {},\n\n{body}\n\nTour {id}\n", p.name),
            });
        }
    };
    let realtor_name = realtor.map_or("your realtor", |r| r.name.as_str());
    match event_type {
        "tour.assigned" => {
            to(
                "tour_assigned",
                customer,
                "Your tour is booked".into(),
                format!(
                    "{realtor_name} will show you {} on {}.",
                    listings(tour),
                    when(tour)
                ),
            );
            to(
                "tour_assigned",
                realtor,
                "New tour assigned to you".into(),
                format!(
                    "You have a tour of {} on {}. Please accept or decline it.",
                    listings(tour),
                    when(tour)
                ),
            );
        }
        "tour.accepted" => to(
            "tour_accepted",
            customer,
            "Your realtor confirmed your tour".into(),
            format!("{realtor_name} confirmed your tour on {}.", when(tour)),
        ),
        "tour.declined" => to(
            "tour_declined",
            customer,
            "We are finding you another realtor".into(),
            "Your realtor could not take your tour; we are matching it with another one.".into(),
        ),
        "tour.unassignable" => to(
            "tour_unassignable",
            customer,
            "No realtor is free for your tour".into(),
            format!(
                "Nobody can take your tour {} yet; we will try again when availability changes.",
                when(tour)
            ),
        ),
        "tour.rescheduled" => {
            to(
                "tour_rescheduled",
                customer,
                "Your tour was moved".into(),
                format!("Your tour is now {}; we are matching it again.", when(tour)),
            );
            if tour.realtor_id.is_none() {
                to(
                    "tour_rescheduled",
                    realtor,
                    "A tour left your calendar".into(),
                    "The customer moved this tour; it is no longer on your calendar.".into(),
                );
            }
        }
        "tour.cancelled" => {
            let was = before.unwrap_or(tour);
            to(
                "tour_cancelled",
                customer,
                "Your tour was cancelled".into(),
                format!("Your tour {} was cancelled.", when(was)),
            );
            // `realtor` is whoever had the tour (nobody while it was being matched).
            to(
                "tour_cancelled",
                realtor,
                "A tour was cancelled".into(),
                format!("The tour {} was cancelled.", when(was)),
            );
        }
        _ => {}
    }
    insert(conn, &notices, now).await
}
