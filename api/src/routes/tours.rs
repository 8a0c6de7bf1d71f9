//! Tour reads (CONTRACT 4, 5.2): a customer sees own tours, a realtor those assigned to them,
//! an admin any; what the caller may not see is 404. Answers come from the read model
//! ([`crate::tour_views`]) when it has them, from the database otherwise.

use std::sync::Arc;

use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};
use actors::store::{Store, TourRecord};
use chrono::{DateTime, Utc};
use engine::{TourId, TourStatus};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::ConnectionTrait;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::list::Page;
use crate::perm::{Access, Capability, Role};
use crate::state::AppState;
use crate::tour_views::TourView;

/// Whether `caller` (with `access` to a capability) may see a tour booked by `customer` and
/// assigned to `realtor`.
#[must_use]
pub fn sees(caller: &Caller, access: Access, customer: Uuid, realtor: Option<Uuid>) -> bool {
    match (access, caller.role) {
        (Access::Any, _) => true,
        (Access::Own, Role::Customer) => customer == caller.id,
        (Access::Own, Role::Realtor) => realtor == Some(caller.id),
        (Access::Own, _) => false,
    }
}

/// The tour JSON of CONTRACT 5.2, with `history` when asked (the explanation is served by
/// `/assignments/{id}/explain`).
///
/// # Errors
/// When the database fails.
pub async fn tour_json(state: &AppState, tour: &TourRecord) -> Result<Value, ApiError> {
    let mut value = serde_json::to_value(tour).map_err(|e| ApiError::internal(&e))?;
    let select = Query::select()
        .columns(["status", "at"])
        .from("tour_history")
        .and_where(Expr::col("tour_id").eq(tour.id.0))
        .order_by("id", Order::Asc)
        .to_owned();
    let mut history = Vec::new();
    for row in state.db.query_all(&select).await? {
        let status: String = row.try_get("", "status")?;
        let at: DateTime<Utc> = row.try_get("", "at")?;
        history.push(json!({"status": status, "at": at}));
    }
    if let Value::Object(fields) = &mut value {
        fields.remove("explanation");
        fields.insert("history".into(), Value::Array(history));
    }
    Ok(value)
}

/// A tour the caller may see with `capability`: 403 by role, 404 otherwise.
///
/// # Errors
/// As said, and database failures.
pub async fn visible(
    state: &AppState,
    caller: &Caller,
    capability: Capability,
    id: Uuid,
) -> Result<TourRecord, ApiError> {
    let access = caller.may(capability)?;
    state
        .store
        .get_tour(TourId(id))
        .await?
        .filter(|t| sees(caller, access, t.customer_id.0, t.realtor_id.map(|r| r.0)))
        .ok_or_else(|| ApiError::not_found("tour"))
}

/// The answer for `tour` (its JSON with history), kept in the read model.
///
/// # Errors
/// When the database fails.
pub async fn tour_view(state: &AppState, tour: &TourRecord) -> Result<Arc<TourView>, ApiError> {
    let body =
        serde_json::to_vec(&tour_json(state, tour).await?).map_err(|e| ApiError::internal(&e))?;
    let view = Arc::new(TourView {
        version: tour.version,
        customer: tour.customer_id.0,
        realtor: tour.realtor_id.map(|r| r.0),
        body: body.into(),
    });
    state.tour_views.put(tour.id.0, view.clone());
    Ok(view)
}

/// The answer for tour `id` from the read model, or else the database; `None` when there is
/// no such tour.
async fn view_of(state: &AppState, id: Uuid) -> Result<Option<Arc<TourView>>, ApiError> {
    if let Some(view) = state.tour_views.get(id) {
        return Ok(Some(view));
    }
    match state.store.get_tour(TourId(id)).await? {
        Some(tour) => Ok(Some(tour_view(state, &tour).await?)),
        None => Ok(None),
    }
}

/// An answer of one tour.
#[must_use]
pub fn answer(view: &TourView) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(view.body.clone())
}

/// `GET /tours/{id}`.
///
/// # Errors
/// 403 for providers, 404 for tours the caller may not see.
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let access = caller.may(Capability::ReadTour)?;
    let view = view_of(&state, *id)
        .await?
        .filter(|v| sees(&caller, access, v.customer, v.realtor))
        .ok_or_else(|| ApiError::not_found("tour"))?;
    Ok(answer(&view))
}

/// `GET /tours` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TourQuery {
    /// Only tours in this status.
    status: Option<String>,
    /// The tour created from this payment.
    payment_id: Option<Uuid>,
    /// Items per page (default 50, max 500).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Parses a `status` filter.
///
/// # Errors
/// 422 for an unknown status.
pub fn parse_status(status: Option<&str>) -> Result<Option<TourStatus>, ApiError> {
    status
        .map(|s| {
            TourStatus::parse(s).ok_or_else(|| ApiError::invalid(format!("unknown status {s:?}")))
        })
        .transpose()
}

/// `GET /tours?status=&payment_id=`.
///
/// # Errors
/// 403 for providers, 422 for an unknown status.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<TourQuery>,
) -> Result<HttpResponse, ApiError> {
    let access = caller.may(Capability::ReadTour)?;
    let page = Page::parse(query.limit, query.cursor.as_deref())?;
    let status = parse_status(query.status.as_deref())?;
    let mut select = Query::select();
    select
        .column("id")
        .from("tours")
        .order_by("id", Order::Asc)
        .limit(page.limit + 1)
        .offset(page.offset);
    if access == Access::Own {
        let column = if caller.role == Role::Realtor {
            "realtor_id"
        } else {
            "customer_id"
        };
        select.and_where(Expr::col(column).eq(caller.id));
    }
    if let Some(status) = status {
        select.and_where(Expr::col("status").eq(status.as_str()));
    }
    if let Some(payment) = query.payment_id {
        select.and_where(Expr::col("payment_id").eq(payment));
    }
    let mut views = Vec::new();
    for row in state.db.query_all(&select).await? {
        let id: Uuid = row.try_get("", "id")?;
        views.extend(view_of(&state, id).await?);
    }
    // The kept bodies are JSON already: embed them as they are.
    let items = views
        .iter()
        .map(|v| serde_json::from_slice::<&RawValue>(&v.body))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal(&e))?;
    Ok(HttpResponse::Ok().json(page.finish(items)))
}
