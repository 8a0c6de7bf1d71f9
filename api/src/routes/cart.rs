//! Cart, checkout and the built-in payment gateway simulator (CONTRACT 4).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use engine::{ListingId, Stop};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::ConnectionTrait;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::perm::Capability;
use crate::routes::listings;
use crate::state::AppState;

/// Items a cart holds at most (CONTRACT 4).
pub const MAX_ITEMS: usize = engine::route::MAX_LISTINGS;

/// `POST /cart/items` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AddItem {
    listing_id: Uuid,
}

/// The cart's listings in cart order (deleted or unpublished ones have left it).
async fn items(state: &AppState, customer: Uuid) -> Result<Vec<listings::Listing>, ApiError> {
    let select = Query::select()
        .column("listing_id")
        .from("cart_items")
        .and_where(Expr::col("customer_id").eq(customer))
        .order_by("position", Order::Asc)
        .to_owned();
    let mut out = Vec::new();
    for row in state.db.query_all(&select).await? {
        let id: Uuid = row.try_get("", "listing_id")?;
        if let Some(listing) = listings::find(state, id).await? {
            out.push(listing);
        }
    }
    Ok(out)
}

async fn cart_json(state: &AppState, customer: Uuid) -> Result<serde_json::Value, ApiError> {
    let items = items(state, customer).await?;
    let total: i64 = items.iter().map(|l| l.price_cents).sum();
    Ok(json!({"items": items, "total_cents": total}))
}

/// `GET /cart`.
///
/// # Errors
/// 403 for non-customers.
pub async fn get(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.may(Capability::Shop)?;
    Ok(HttpResponse::Ok().json(cart_json(&state, caller.id).await?))
}

/// `POST /cart/items`: 201 with the cart (200 when the listing was already in it).
///
/// # Errors
/// 403 for non-customers, 404 for a listing that is not published, 422 past 8 items.
pub async fn add(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<AddItem>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Capability::Shop)?;
    let listing = listings::find(&state, body.listing_id)
        .await?
        .filter(listings::is_published)
        .ok_or_else(|| ApiError::not_found("listing"))?;
    let current = items(&state, caller.id).await?;
    if current.iter().any(|l| l.id == listing.id) {
        return Ok(HttpResponse::Ok().json(cart_json(&state, caller.id).await?));
    }
    if current.len() >= MAX_ITEMS {
        return Err(ApiError::invalid(format!(
            "a cart holds at most {MAX_ITEMS} listings"
        )));
    }
    let position = Query::select()
        .expr_as(Expr::cust("COALESCE(MAX(position), 0)"), "p")
        .from("cart_items")
        .and_where(Expr::col("customer_id").eq(caller.id))
        .to_owned();
    let next: i32 = match state.db.query_one(&position).await? {
        Some(row) => row.try_get::<i32>("", "p").unwrap_or(0) + 1,
        None => 1,
    };
    let insert = Query::insert()
        .into_table("cart_items")
        .columns(["customer_id", "listing_id", "position", "added_at"])
        .values_panic([
            caller.id.into(),
            listing.id.into(),
            next.into(),
            Utc::now().into(),
        ])
        .on_conflict(
            OnConflict::columns(["customer_id", "listing_id"])
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    state.db.execute(&insert).await?;
    Ok(HttpResponse::Created().json(cart_json(&state, caller.id).await?))
}

/// `DELETE /cart/items/{listing_id}`.
///
/// # Errors
/// 403 for non-customers, 404 when the listing is not in the cart.
pub async fn remove(
    state: web::Data<AppState>,
    caller: Caller,
    listing: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Capability::Shop)?;
    let delete = Query::delete()
        .from_table("cart_items")
        .and_where(Expr::col("customer_id").eq(caller.id))
        .and_where(Expr::col("listing_id").eq(*listing))
        .to_owned();
    if state.db.execute(&delete).await?.rows_affected() == 0 {
        return Err(ApiError::not_found("cart item"));
    }
    Ok(HttpResponse::Ok().json(cart_json(&state, caller.id).await?))
}

/// A window as sent: checked here so bad values are 422, not 400.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
pub struct RawWindow {
    /// Start.
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
}

impl RawWindow {
    /// A window in the future, non-empty, at most 14 days.
    ///
    /// # Errors
    /// 422 saying which rule is broken.
    pub fn check(self) -> Result<engine::TimeWindow, ApiError> {
        if self.end <= self.start {
            return Err(ApiError::invalid("window end must be after its start"));
        }
        if self.end - self.start > Duration::days(14) {
            return Err(ApiError::invalid("window is longer than 14 days"));
        }
        if self.end <= Utc::now() {
            return Err(ApiError::invalid("window is in the past"));
        }
        engine::TimeWindow::new(self.start, self.end).map_err(|e| ApiError::invalid(e.to_string()))
    }
}

/// `POST /cart/checkout` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Checkout {
    window: RawWindow,
}

/// `POST /cart/checkout`: a pending payment for the cart's listings and the window.
///
/// # Errors
/// 403 for non-customers, 422 for an empty cart or a bad window.
pub async fn checkout(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Checkout>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Capability::Shop)?;
    let window = body.window.check()?;
    let items = items(&state, caller.id).await?;
    if items.is_empty() {
        return Err(ApiError::invalid("the cart is empty"));
    }
    let stops = items
        .iter()
        .map(|l| {
            Ok(Stop {
                id: ListingId(l.id),
                location: l.location.location()?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let amount: i64 = items.iter().map(|l| l.price_cents).sum();
    let id = Uuid::now_v7();
    let now = Utc::now();
    let snapshot = serde_json::to_value(&stops).map_err(|e| ApiError::internal(&e))?;
    let insert = Query::insert()
        .into_table("payments")
        .columns([
            "id",
            "customer_id",
            "amount_cents",
            "currency",
            "status",
            "window_start",
            "window_end",
            "listings",
            "created_at",
            "updated_at",
        ])
        .values_panic([
            id.into(),
            caller.id.into(),
            amount.into(),
            "USD".into(),
            "pending".into(),
            window.start().into(),
            window.end().into(),
            snapshot.into(),
            now.into(),
            now.into(),
        ])
        .to_owned();
    state.db.execute(&insert).await?;
    Ok(HttpResponse::Created()
        .json(json!({"payment_id": id, "amount_cents": amount, "status": "pending"})))
}
