//! `POST /payments`: the built-in gateway simulator. A success is recorded with its
//! `payment.succeeded` envelope in the outbox (one transaction, so a crash loses no event),
//! then published on the bus; the engine makes the tour.

use actix_web::{web, HttpResponse};
use actors::bus::{topics, Envelope};
use actors::payments::{PaymentSucceeded, PAYMENT_SUCCEEDED};
use chrono::{DateTime, Utc};
use engine::{CustomerId, PaymentId, Stop, TimeWindow};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::perm::Capability;
use crate::state::AppState;

/// The card token the simulator declines.
pub const DECLINED_TOKEN: &str = "tok_declined";

/// `POST /payments` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Pay {
    payment_id: Uuid,
    card_token: String,
}

struct Payment {
    id: Uuid,
    customer_id: Uuid,
    amount_cents: i64,
    currency: String,
    status: String,
    window: TimeWindow,
    listings: Vec<Stop>,
}

async fn load(state: &AppState, id: Uuid) -> Result<Option<Payment>, ApiError> {
    let select = Query::select()
        .columns([
            "id",
            "customer_id",
            "amount_cents",
            "currency",
            "status",
            "window_start",
            "window_end",
            "listings",
        ])
        .from("payments")
        .and_where(Expr::col("id").eq(id))
        .to_owned();
    let Some(row) = state.db.query_one(&select).await? else {
        return Ok(None);
    };
    let start: DateTime<Utc> = row.try_get("", "window_start")?;
    let end: DateTime<Utc> = row.try_get("", "window_end")?;
    let listings: serde_json::Value = row.try_get("", "listings")?;
    Ok(Some(Payment {
        id: row.try_get("", "id")?,
        customer_id: row.try_get("", "customer_id")?,
        amount_cents: row.try_get("", "amount_cents")?,
        currency: row.try_get("", "currency")?,
        status: row.try_get("", "status")?,
        window: TimeWindow::new(start, end).map_err(|e| ApiError::internal(&e))?,
        listings: serde_json::from_value(listings).map_err(|e| ApiError::internal(&e))?,
    }))
}

fn answer(id: Uuid, status: &str) -> HttpResponse {
    HttpResponse::Ok().json(json!({"payment_id": id, "status": status}))
}

/// `POST /payments`.
///
/// # Errors
/// 403 for non-customers, 404 for a payment that is not the caller's, 422 for an empty
/// token, 429 over the payment rate limit.
pub async fn pay(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Pay>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Capability::Shop)?;
    state
        .limits
        .payments
        .hit(&caller.id.to_string())
        .await
        .map_err(ApiError::rate_limited)?;
    if body.card_token.trim().is_empty() {
        return Err(ApiError::invalid("card_token must not be empty"));
    }
    let payment = load(&state, body.payment_id)
        .await?
        .filter(|p| p.customer_id == caller.id)
        .ok_or_else(|| ApiError::not_found("payment"))?;
    if payment.status != "pending" {
        return Ok(answer(payment.id, &payment.status));
    }
    let now = Utc::now();
    let decided = |status: &'static str| {
        Query::update()
            .table("payments")
            .value("status", status)
            .value("updated_at", now)
            .and_where(Expr::col("id").eq(payment.id))
            .and_where(Expr::col("status").eq("pending"))
            .to_owned()
    };
    if body.card_token == DECLINED_TOKEN {
        if state
            .db
            .execute(&decided("declined"))
            .await?
            .rows_affected()
            == 0
        {
            return first_result(&state, payment.id).await;
        }
        return Ok(answer(payment.id, "declined"));
    }
    let data = PaymentSucceeded {
        payment_id: PaymentId(payment.id),
        customer_id: CustomerId(payment.customer_id),
        amount_cents: payment.amount_cents,
        currency: payment.currency.clone(),
        listings: payment.listings.clone(),
        window: payment.window,
    };
    let envelope = Envelope::new(
        PAYMENT_SUCCEEDED,
        serde_json::to_value(&data).map_err(|e| ApiError::internal(&e))?,
    );
    let txn = state.db.begin().await?;
    if txn.execute(&decided("succeeded")).await?.rows_affected() == 0 {
        drop(txn);
        return first_result(&state, payment.id).await;
    }
    // Published by the outbox relay once this commits (CONTRACT 6: iff the payment succeeded).
    actors::outbox::append(&txn, topics::PAYMENTS, &payment.id.to_string(), &envelope).await?;
    let empty_cart = Query::delete()
        .from_table("cart_items")
        .and_where(Expr::col("customer_id").eq(caller.id))
        .to_owned();
    txn.execute(&empty_cart).await?;
    txn.commit().await?;
    state.runtime.outbox_written();
    Ok(answer(payment.id, "succeeded"))
}

/// The result a concurrent attempt recorded first.
async fn first_result(state: &AppState, id: Uuid) -> Result<HttpResponse, ApiError> {
    let payment = load(state, id)
        .await?
        .ok_or_else(|| ApiError::not_found("payment"))?;
    Ok(answer(payment.id, &payment.status))
}
