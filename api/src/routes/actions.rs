//! Tour actions (CONTRACT 4, 5.2) through the runtime: reschedule and cancel (customer own,
//! admin any), accept/decline/start/complete (assigned realtor, admin); `/availability`.

use actix_web::{web, HttpResponse};
use actors::store::TourRecord;
use chrono::{DateTime, Utc};
use engine::{Location, TimeWindow, TourId};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::perm::Capability;
use crate::routes::cart::RawWindow;
use crate::routes::realtors::runtime_error;
use crate::routes::tours::{self, tour_view, visible};
use crate::state::AppState;

/// The changed tour, which also becomes the read model's answer for it.
async fn answer(state: &AppState, tour: &TourRecord) -> Result<HttpResponse, ApiError> {
    let view = tour_view(state, tour).await?;
    Ok(tours::answer(&view))
}

/// `PATCH /tours/{id}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Reschedule {
    window: RawWindow,
}

/// `PATCH /tours/{id}`: a new window; the engine matches again.
///
/// # Errors
/// 403/404 by permission, 422 for a bad window, 409 for an illegal transition.
pub async fn reschedule(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: web::Json<Reschedule>,
) -> Result<HttpResponse, ApiError> {
    let tour = visible(&state, &caller, Capability::ChangeTour, *id).await?;
    let window: TimeWindow = body.window.check()?;
    let tour = state
        .runtime
        .reschedule(tour.id, window)
        .await
        .map_err(runtime_error)?;
    answer(&state, &tour).await
}

/// `DELETE /tours/{id}`: cancel.
///
/// # Errors
/// 403/404 by permission, 409 for an illegal transition.
pub async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tour = visible(&state, &caller, Capability::ChangeTour, *id).await?;
    let tour = state.runtime.cancel(tour.id).await.map_err(runtime_error)?;
    answer(&state, &tour).await
}

async fn work(
    state: web::Data<AppState>,
    caller: Caller,
    id: Uuid,
    action: &str,
) -> Result<HttpResponse, ApiError> {
    let tour = visible(&state, &caller, Capability::WorkTour, id).await?;
    let id: TourId = tour.id;
    let result = match action {
        "accept" => state.runtime.accept(id).await,
        "decline" => state.runtime.decline(id).await,
        "start" => state.runtime.start_tour(id).await,
        _ => state.runtime.complete(id).await,
    };
    answer(&state, &result.map_err(runtime_error)?).await
}

/// `POST /tours/{id}/accept`.
///
/// # Errors
/// 403/404 by permission, 409 for an illegal transition.
pub async fn accept(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    work(state, caller, *id, "accept").await
}

/// `POST /tours/{id}/decline`.
///
/// # Errors
/// As [`accept`].
pub async fn decline(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    work(state, caller, *id, "decline").await
}

/// `POST /tours/{id}/start`.
///
/// # Errors
/// As [`accept`].
pub async fn start(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    work(state, caller, *id, "start").await
}

/// `POST /tours/{id}/complete`.
///
/// # Errors
/// As [`accept`].
pub async fn complete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    work(state, caller, *id, "complete").await
}

/// `GET /availability` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AvailabilityQuery {
    /// Latitude of the place.
    lat: f64,
    /// Longitude of the place.
    lng: f64,
    /// Search radius in km.
    radius_km: f64,
    /// Window start (RFC 3339).
    start: DateTime<Utc>,
    /// Window end (RFC 3339).
    end: DateTime<Utc>,
}

/// `GET /availability?lat=&lng=&radius_km=&start=&end=` (admin).
///
/// # Errors
/// 403 for non-admins, 422 for invalid values.
pub async fn availability(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AvailabilityQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Capability::QueryAvailability)?;
    let at = Location::new(query.lat, query.lng).map_err(|e| ApiError::invalid(e.to_string()))?;
    if !(query.radius_km > 0.0 && query.radius_km <= 20_000.0) {
        return Err(ApiError::invalid("radius_km must be in (0, 20000]"));
    }
    let window =
        TimeWindow::new(query.start, query.end).map_err(|e| ApiError::invalid(e.to_string()))?;
    // The published view (Redis) when there is one; the actors when there is none or it fails.
    let in_view = match &state.availability_view {
        Some(view) => match state
            .runtime
            .availability_in_view(view, at, query.radius_km, window)
            .await
        {
            Ok(found) => Some(found),
            Err(err) => {
                tracing::warn!(%err, "availability view unreadable; asking the actors");
                None
            }
        },
        None => None,
    };
    let source = if in_view.is_some() { "redis" } else { "actors" };
    let found = match in_view {
        Some(found) => found,
        None => state
            .runtime
            .availability(at, query.radius_km, window)
            .await
            .map_err(runtime_error)?,
    };
    let items: Vec<_> = found
        .into_iter()
        .map(
            |(id, km, start)| json!({"realtor_id": id, "distance_km": km, "earliest_start": start}),
        )
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("X-Availability-Source", source))
        .json(json!({"items": items})))
}
