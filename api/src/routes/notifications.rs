//! `GET /notifications` (admin): the emails of the notification worker and their delivery
//! state, so a permanently failing one is visible (status `failed` with its last error)
//! instead of retried forever.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::ConnectionTrait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::list::Page;
use crate::perm::Capability;
use crate::state::AppState;

/// The statuses a notification goes through.
const STATUSES: [&str; 4] = ["pending", "sent", "failed", "cancelled"];

/// `GET /notifications` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// `pending`, `sent`, `failed` or `cancelled`.
    status: Option<String>,
    /// e.g. `tour_assigned`, `reminder_1h`, `password_reset`.
    kind: Option<String>,
    /// Only those about this tour.
    tour_id: Option<Uuid>,
    /// Items per page (default 50, max 500).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One email (its body is left out: reset links must not leak through the API).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Notification {
    id: Uuid,
    kind: String,
    tour_id: Option<Uuid>,
    recipient_email: String,
    subject: String,
    /// `pending`, `sent`, `failed` or `cancelled`.
    status: String,
    /// Failed delivery attempts (a sent one counts its successful attempt too).
    attempts: i32,
    last_error: Option<String>,
    due_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

/// `GET /notifications?status=&kind=&tour_id=`, newest due first.
///
/// # Errors
/// 403 for everyone but admins, 422 for an unknown status.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<NotificationQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Capability::ReadNotifications)?;
    let page = Page::parse(query.limit, query.cursor.as_deref())?;
    let mut select = Query::select();
    select
        .columns([
            "id",
            "kind",
            "tour_id",
            "recipient_email",
            "subject",
            "status",
            "attempts",
            "last_error",
            "due_at",
            "sent_at",
            "created_at",
        ])
        .from("notifications")
        .order_by("due_at", Order::Desc)
        .order_by("id", Order::Asc)
        .limit(page.limit + 1)
        .offset(page.offset);
    if let Some(status) = &query.status {
        if !STATUSES.contains(&status.as_str()) {
            return Err(ApiError::invalid(format!(
                "status must be one of {}",
                STATUSES.join(", ")
            )));
        }
        select.and_where(Expr::col("status").eq(status.as_str()));
    }
    if let Some(kind) = &query.kind {
        select.and_where(Expr::col("kind").eq(kind.as_str()));
    }
    if let Some(tour) = query.tour_id {
        select.and_where(Expr::col("tour_id").eq(tour));
    }
    let mut items = Vec::new();
    for row in state.db.query_all(&select).await? {
        items.push(Notification {
            id: row.try_get("", "id")?,
            kind: row.try_get("", "kind")?,
            tour_id: row.try_get("", "tour_id")?,
            recipient_email: row.try_get("", "recipient_email")?,
            subject: row.try_get("", "subject")?,
            status: row.try_get("", "status")?,
            attempts: row.try_get("", "attempts")?,
            last_error: row.try_get("", "last_error")?,
            due_at: row.try_get("", "due_at")?,
            sent_at: row.try_get("", "sent_at")?,
            created_at: row.try_get("", "created_at")?,
        });
    }
    Ok(HttpResponse::Ok().json(page.finish(items)))
}
