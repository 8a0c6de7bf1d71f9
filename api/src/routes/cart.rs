//! Cart and checkout (CONTRACT 4): the rules live in the customer's cart actor
//! ([`actors::runtime::cart`]); these handlers check the caller and the input, and map its
//! answers and errors to HTTP.

use actix_web::{web, HttpResponse};
use actors::runtime::CartError;
use chrono::{DateTime, Duration, Utc};
use engine::{CustomerId, ListingId};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, Code};
use crate::perm::Capability;
use crate::state::AppState;

/// Items a cart holds at most (CONTRACT 4).
pub const MAX_ITEMS: usize = actors::runtime::cart::MAX_ITEMS;

/// `POST /cart/items` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AddItem {
    listing_id: Uuid,
}

/// Maps a cart actor's refusal to the API's errors.
fn cart_error(err: CartError) -> ApiError {
    match err {
        CartError::ListingNotFound => ApiError::not_found("listing"),
        CartError::NotInCart => ApiError::not_found("cart item"),
        e @ (CartError::Full | CartError::Empty) => ApiError::invalid(e.to_string()),
        CartError::Invalid(m) => ApiError::invalid(m),
        CartError::Unavailable(_) => {
            ApiError::new(Code::Unavailable, "the engine is busy; retry shortly")
        }
        e @ CartError::Store(_) => ApiError::internal(&e),
    }
}

/// `GET /cart`.
///
/// # Errors
/// 403 for non-customers.
pub async fn get(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.may(Capability::Shop)?;
    let cart = state
        .runtime
        .cart(CustomerId(caller.id))
        .await
        .map_err(cart_error)?;
    Ok(HttpResponse::Ok().json(cart))
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
    let added = state
        .runtime
        .cart_add(CustomerId(caller.id), ListingId(body.listing_id))
        .await
        .map_err(cart_error)?;
    Ok(if added.added {
        HttpResponse::Created().json(added.cart)
    } else {
        HttpResponse::Ok().json(added.cart)
    })
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
    let cart = state
        .runtime
        .cart_remove(CustomerId(caller.id), ListingId(*listing))
        .await
        .map_err(cart_error)?;
    Ok(HttpResponse::Ok().json(cart))
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
    let done = state
        .runtime
        .checkout(CustomerId(caller.id), window)
        .await
        .map_err(cart_error)?;
    Ok(HttpResponse::Created().json(json!({
        "payment_id": done.payment_id,
        "amount_cents": done.amount_cents,
        "status": "pending",
    })))
}
