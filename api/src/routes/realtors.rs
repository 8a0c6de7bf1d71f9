//! Realtor profiles (CONTRACT 4): a realtor sets their own home, radius, time zone, working
//! hours and status; admins any realtor's. The runtime stores the profile and indexes it.

use actix_web::{web, HttpResponse};
use actors::runtime::RuntimeError;
use engine::{Realtor, RealtorId, RealtorStatus, TimeZone, WorkingHours, WorkingInterval};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::ConnectionTrait;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, Code};
use crate::perm::Capability;
use crate::routes::listings::RawPoint;
use crate::state::AppState;

/// One working interval as sent: weekday 1..7 (Monday = 1), `HH:MM` local times.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RawInterval {
    /// 1..7, Monday = 1.
    weekday: u8,
    /// `HH:MM`.
    start: String,
    /// `HH:MM` (`24:00` allowed), after `start`.
    end: String,
}

/// `PUT /realtors/me` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Profile {
    home: RawPoint,
    service_radius_km: f64,
    time_zone: String,
    working_hours: Vec<RawInterval>,
}

/// `PATCH /realtors/me/status` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Status {
    status: String,
}

/// Maps a runtime failure to the API's errors.
#[must_use]
pub fn runtime_error(err: RuntimeError) -> ApiError {
    match err {
        RuntimeError::NotFound(_) => ApiError::not_found("tour"),
        RuntimeError::UnknownRealtor(_) => {
            ApiError::new(Code::Conflict, "the realtor has no profile yet")
        }
        RuntimeError::Illegal(e) => ApiError::new(Code::IllegalTransition, e.to_string()),
        RuntimeError::Conflict => {
            ApiError::new(Code::Conflict, "the tour changed concurrently; retry")
        }
        RuntimeError::Invalid(m) => ApiError::invalid(m),
        RuntimeError::Unavailable(_) => {
            ApiError::new(Code::Unavailable, "the engine is busy; retry shortly")
        }
        other @ RuntimeError::Store(_) => ApiError::internal(&other),
    }
}

/// The realtor the caller may set: themselves, or (admins) a realtor user that exists.
async fn target(state: &AppState, caller: &Caller, id: Option<Uuid>) -> Result<Uuid, ApiError> {
    let access = caller.may(Capability::SetRealtorProfile)?;
    let id = id.unwrap_or(caller.id);
    if !caller.reaches(access, id) {
        return Err(ApiError::forbidden());
    }
    let select = Query::select()
        .column("id")
        .from("users")
        .and_where(Expr::col("id").eq(id))
        .and_where(Expr::col("role").eq("realtor"))
        .to_owned();
    state
        .db
        .query_one(&select)
        .await?
        .map(|_| id)
        .ok_or_else(|| ApiError::not_found("realtor"))
}

async fn current_status(state: &AppState, id: Uuid) -> Result<Option<RealtorStatus>, ApiError> {
    let select = Query::select()
        .column("status")
        .from("realtor_profiles")
        .and_where(Expr::col("user_id").eq(id))
        .to_owned();
    Ok(match state.db.query_one(&select).await? {
        Some(row) => RealtorStatus::parse(&row.try_get::<String>("", "status")?),
        None => None,
    })
}

async fn put(
    state: &AppState,
    caller: &Caller,
    id: Option<Uuid>,
    body: Profile,
) -> Result<HttpResponse, ApiError> {
    let id = target(state, caller, id).await?;
    let home = body.home.location()?;
    if !(body.service_radius_km > 0.0 && body.service_radius_km <= 200.0) {
        return Err(ApiError::invalid("service_radius_km must be in (0, 200]"));
    }
    let zone = TimeZone::parse(&body.time_zone).map_err(|e| ApiError::invalid(e.to_string()))?;
    let intervals = body
        .working_hours
        .iter()
        .map(|w| WorkingInterval::parse(w.weekday, &w.start, &w.end))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let status = current_status(state, id)
        .await?
        .unwrap_or(RealtorStatus::Available);
    let realtor = Realtor::new(
        RealtorId(id),
        home,
        body.service_radius_km,
        WorkingHours::new(zone, intervals.clone()),
        status,
    )
    .map_err(|e| ApiError::invalid(e.to_string()))?;
    state
        .runtime
        .upsert_realtor(realtor)
        .await
        .map_err(runtime_error)?;
    Ok(HttpResponse::Ok().json(json!({
        "id": id,
        "home": {"lat": home.lat(), "lng": home.lng()},
        "service_radius_km": body.service_radius_km,
        "time_zone": zone.name(),
        "working_hours": intervals,
        "status": status.as_str(),
    })))
}

/// `PUT /realtors/me`.
///
/// # Errors
/// 403 for non-realtors, 422 for invalid values.
pub async fn put_me(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Profile>,
) -> Result<HttpResponse, ApiError> {
    put(&state, &caller, None, body.into_inner()).await
}

/// `PUT /realtors/{id}` (admin, or the realtor themselves).
///
/// # Errors
/// As [`put_me`], 404 for an unknown realtor.
pub async fn put_one(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: web::Json<Profile>,
) -> Result<HttpResponse, ApiError> {
    put(&state, &caller, Some(*id), body.into_inner()).await
}

async fn status(
    state: &AppState,
    caller: &Caller,
    id: Option<Uuid>,
    body: Status,
) -> Result<HttpResponse, ApiError> {
    let id = target(state, caller, id).await?;
    let status = RealtorStatus::parse(&body.status)
        .ok_or_else(|| ApiError::invalid("status must be available or unavailable"))?;
    state
        .runtime
        .set_realtor_status(RealtorId(id), status)
        .await
        .map_err(runtime_error)?;
    Ok(HttpResponse::Ok().json(json!({"id": id, "status": status.as_str()})))
}

/// `PATCH /realtors/me/status`.
///
/// # Errors
/// 403 for non-realtors, 422 for an unknown status, 409 without a profile.
pub async fn status_me(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Status>,
) -> Result<HttpResponse, ApiError> {
    status(&state, &caller, None, body.into_inner()).await
}

/// `PATCH /realtors/{id}/status` (admin, or the realtor themselves).
///
/// # Errors
/// As [`status_me`].
pub async fn status_one(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: web::Json<Status>,
) -> Result<HttpResponse, ApiError> {
    status(&state, &caller, Some(*id), body.into_inner()).await
}
