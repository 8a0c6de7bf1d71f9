//! Reviews (CONTRACT 3, 4): a customer rates the realtor of their own completed tour, once;
//! everybody reads a realtor's public profile (with the mean rating) and visible reviews;
//! admins moderate by hiding a review (kept, with the reason, out of the mean and the lists).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use engine::TourStatus;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{ConnectionTrait, QueryResult, TransactionTrait};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{Caller, MaybeCaller};
use crate::error::{ApiError, Code};
use crate::list::Page;
use crate::perm::{Capability, Role};
use crate::routes::tours::visible;
use crate::state::AppState;

/// Longest comment accepted, in characters.
pub const MAX_COMMENT: usize = 2000;
/// Longest moderation reason accepted, in characters.
pub const MAX_REASON: usize = 500;

/// `POST /tours/{id}/review` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReview {
    /// 1 to 5.
    rating: i64,
    /// Free text, up to 2000 characters (may be empty or left out).
    #[serde(default)]
    comment: String,
}

/// A review as answered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Review {
    /// Id.
    pub id: Uuid,
    /// The reviewed tour.
    pub tour_id: Uuid,
    /// The realtor who guided it.
    pub realtor_id: Uuid,
    /// 1 to 5.
    pub rating: i16,
    /// Free text.
    pub comment: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// `GET /realtors/{id}`: the public profile.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublicRealtor {
    /// The realtor's user id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// `available` | `unavailable`, null until the realtor sets a profile.
    pub status: Option<String>,
    /// Service radius, null until the realtor sets a profile.
    pub service_radius_km: Option<f64>,
    /// IANA time zone of the working hours.
    pub time_zone: Option<String>,
    /// Weekly working hours `[{weekday, start, end}]` in `time_zone`.
    #[schema(value_type = Option<Vec<crate::routes::realtors::RawInterval>>)]
    pub working_hours: Option<serde_json::Value>,
    /// Home location: only for the realtor themselves and admins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home: Option<crate::routes::listings::RawPoint>,
    /// Mean rating of the visible reviews, null without any.
    pub rating: Option<f64>,
    /// Number of visible reviews.
    pub review_count: i64,
    /// Profile photo (`PUT /realtors/me/photo`), null without one.
    pub photo: Option<crate::routes::media::MediaRef>,
}

/// `DELETE /reviews/{id}` body (optional; `?reason=` works too).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Moderation {
    /// Why the review is hidden (kept for the record, never shown publicly).
    #[serde(default)]
    reason: Option<String>,
}

/// `DELETE /reviews/{id}` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ModerationQuery {
    /// Why the review is hidden.
    reason: Option<String>,
}

/// `GET /realtors/{id}/reviews` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    /// Items per page (default 50, max 500).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

const REVIEW_COLUMNS: [&str; 6] = [
    "id",
    "tour_id",
    "realtor_id",
    "rating",
    "comment",
    "created_at",
];

fn review_from_row(row: &QueryResult) -> Result<Review, sea_orm::DbErr> {
    Ok(Review {
        id: row.try_get("", "id")?,
        tour_id: row.try_get("", "tour_id")?,
        realtor_id: row.try_get("", "realtor_id")?,
        rating: row.try_get("", "rating")?,
        comment: row.try_get("", "comment")?,
        created_at: row.try_get("", "created_at")?,
    })
}

/// `POST /tours/{id}/review`: 201 with the review.
///
/// # Errors
/// 403 for roles other than customer, 404 for tours not the caller's, 422 for a rating
/// outside 1..=5 or a comment too long, 409 (`tour_not_completed`) before the tour is
/// completed and (`already_reviewed`) on a second review.
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: web::Json<NewReview>,
) -> Result<HttpResponse, ApiError> {
    let tour = visible(&state, &caller, Capability::ReviewTour, *id).await?;
    let body = body.into_inner();
    let rating = i16::try_from(body.rating)
        .ok()
        .filter(|r| (1..=5).contains(r))
        .ok_or_else(|| ApiError::invalid("rating must be an integer from 1 to 5"))?;
    let comment = body.comment.trim().to_owned();
    if comment.chars().count() > MAX_COMMENT {
        return Err(ApiError::invalid(format!(
            "comment must have at most {MAX_COMMENT} characters"
        )));
    }
    let realtor = match (tour.status, tour.realtor_id) {
        (TourStatus::Completed, Some(realtor)) => realtor.0,
        _ => {
            return Err(ApiError::new(
                Code::TourNotCompleted,
                format!(
                    "only a completed tour can be reviewed; this one is {}",
                    tour.status.as_str()
                ),
            ))
        }
    };
    let review = Review {
        id: Uuid::now_v7(),
        tour_id: tour.id.0,
        realtor_id: realtor,
        rating,
        comment,
        created_at: Utc::now(),
    };
    let insert = Query::insert()
        .into_table("reviews")
        .columns([
            "id",
            "tour_id",
            "realtor_id",
            "customer_id",
            "rating",
            "comment",
            "hidden",
            "created_at",
        ])
        .values_panic([
            review.id.into(),
            review.tour_id.into(),
            review.realtor_id.into(),
            caller.id.into(),
            review.rating.into(),
            review.comment.clone().into(),
            false.into(),
            review.created_at.into(),
        ])
        .on_conflict(OnConflict::column("tour_id").do_nothing().to_owned())
        .to_owned();
    let txn = state.db.begin().await?;
    if txn.execute(&insert).await?.rows_affected() == 0 {
        return Err(ApiError::new(
            Code::AlreadyReviewed,
            "this tour has already been reviewed",
        ));
    }
    // The realtor hears of it through the email outbox, in the review's transaction.
    if let Some((email, name)) = actors::notices::email_of(&txn, realtor).await? {
        let stars = "*".repeat(usize::try_from(review.rating).unwrap_or(0));
        let notice = actors::notices::NewNotice {
            kind: "review_received",
            tour_id: Some(tour.id),
            recipient: email,
            subject: format!("New review: {} of 5", review.rating),
            body: format!(
                "Hello {name},\n\nA customer reviewed your tour: {stars} ({} of 5).\n\n{}\n\nTour {}\n",
                review.rating, review.comment, review.tour_id
            ),
        };
        actors::notices::insert(&txn, &[notice], review.created_at).await?;
    }
    txn.commit().await?;
    state.runtime.notifications_written();
    Ok(HttpResponse::Created().json(review))
}

/// `(count, sum of ratings)` of a realtor's visible reviews.
async fn rating_of(state: &AppState, realtor: Uuid) -> Result<(i64, i64), ApiError> {
    let select = Query::select()
        .expr_as(Expr::cust("COUNT(*)"), "n")
        .expr_as(Expr::cust("COALESCE(SUM(rating), 0)"), "total")
        .from("reviews")
        .and_where(Expr::col("realtor_id").eq(realtor))
        .and_where(Expr::col("hidden").eq(false))
        .to_owned();
    Ok(match state.db.query_one(&select).await? {
        Some(row) => (row.try_get("", "n")?, row.try_get("", "total")?),
        None => (0, 0),
    })
}

/// The realtor user's name, `None` when `id` is not a realtor.
async fn realtor_name(state: &AppState, id: Uuid) -> Result<Option<String>, ApiError> {
    let select = Query::select()
        .column("name")
        .from("users")
        .and_where(Expr::col("id").eq(id))
        .and_where(Expr::col("role").eq(Role::Realtor.as_str()))
        .to_owned();
    Ok(match state.db.query_one(&select).await? {
        Some(row) => Some(row.try_get("", "name")?),
        None => None,
    })
}

/// `GET /realtors/{id}`: the public profile (also anonymous).
///
/// # Errors
/// 404 when `id` is not a realtor.
pub async fn profile(
    state: web::Data<AppState>,
    caller: MaybeCaller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = *id;
    let name = realtor_name(&state, id)
        .await?
        .ok_or_else(|| ApiError::not_found("realtor"))?;
    let select = Query::select()
        .columns([
            "home_lat",
            "home_lng",
            "service_radius_km",
            "time_zone",
            "working_hours",
            "status",
        ])
        .from("realtor_profiles")
        .and_where(Expr::col("user_id").eq(id))
        .to_owned();
    let row = state.db.query_one(&select).await?;
    let (count, total) = rating_of(&state, id).await?;
    #[allow(clippy::cast_precision_loss)] // counts of reviews are far below 2^52
    let rating = (count > 0).then(|| total as f64 / count as f64);
    let private = caller
        .0
        .is_some_and(|c| c.role == Role::Admin || c.id == id);
    let mut profile = PublicRealtor {
        id,
        name,
        status: None,
        service_radius_km: None,
        time_zone: None,
        working_hours: None,
        home: None,
        rating,
        review_count: count,
        photo: crate::routes::media::photo_of(&state, id).await?,
    };
    if let Some(row) = row {
        profile.status = Some(row.try_get("", "status")?);
        profile.service_radius_km = Some(row.try_get("", "service_radius_km")?);
        profile.time_zone = Some(row.try_get("", "time_zone")?);
        profile.working_hours = Some(row.try_get("", "working_hours")?);
        if private {
            profile.home = Some(crate::routes::listings::RawPoint {
                lat: row.try_get("", "home_lat")?,
                lng: row.try_get("", "home_lng")?,
            });
        }
    }
    Ok(HttpResponse::Ok().json(profile))
}

/// `GET /realtors/{id}/reviews`: visible reviews, newest first, paginated.
///
/// # Errors
/// 404 when `id` is not a realtor, 422 for a bad `limit` or `cursor`.
pub async fn list(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<ReviewQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::parse(query.limit, query.cursor.as_deref())?;
    realtor_name(&state, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("realtor"))?;
    let select = Query::select()
        .columns(REVIEW_COLUMNS)
        .from("reviews")
        .and_where(Expr::col("realtor_id").eq(*id))
        .and_where(Expr::col("hidden").eq(false))
        .order_by("created_at", Order::Desc)
        .order_by("id", Order::Desc)
        .limit(page.limit + 1)
        .offset(page.offset)
        .to_owned();
    let items = state
        .db
        .query_all(&select)
        .await?
        .iter()
        .map(review_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(page.finish(items)))
}

/// Reads the optional JSON body of `DELETE /reviews/{id}`: empty is no body.
fn moderation_body(bytes: &[u8]) -> Result<Moderation, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Moderation::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::new(Code::MalformedJson, format!("invalid JSON body: {e}")))
}

/// `DELETE /reviews/{id}` (admin): hides the review, keeping it with the reason; 204, also
/// when it was hidden already (the reason is replaced when a new one is given).
///
/// # Errors
/// 403 for non-admins, 400 for a malformed body, 422 for a reason too long, 404 for an
/// unknown review.
pub async fn moderate(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    query: web::Query<ModerationQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.may(Capability::ModerateReviews)?;
    let reason = moderation_body(&body)?
        .reason
        .or_else(|| query.into_inner().reason)
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON)
    {
        return Err(ApiError::invalid(format!(
            "reason must have at most {MAX_REASON} characters"
        )));
    }
    let mut update = Query::update();
    update
        .table("reviews")
        .value("hidden", true)
        .and_where(Expr::col("id").eq(*id));
    if let Some(reason) = reason {
        update.value("moderation_reason", reason);
    }
    if state.db.execute(&update).await?.rows_affected() == 0 {
        return Err(ApiError::not_found("review"));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::moderation_body;

    #[test]
    fn the_moderation_body_is_optional_but_checked() {
        assert!(moderation_body(b"").unwrap().reason.is_none());
        assert!(moderation_body(b"  \n").unwrap().reason.is_none());
        assert_eq!(
            moderation_body(br#"{"reason":"spam"}"#).unwrap().reason,
            Some("spam".into())
        );
        assert!(moderation_body(b"{").is_err());
        assert!(moderation_body(br#"{"reason":5}"#).is_err());
        assert!(moderation_body(br#"{"why":"x"}"#).is_err());
    }
}
