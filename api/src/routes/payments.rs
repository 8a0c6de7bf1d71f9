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

/// Publishes the payment's outbox rows not yet published (the first attempt, or a retry after
/// a failed publish); errors are logged: the row stays for the next attempt.
async fn flush_outbox(state: &AppState, payment: Uuid) -> Result<(), ApiError> {
    let select = Query::select()
        .columns(["id", "payload"])
        .from("outbox")
        .and_where(Expr::col("topic").eq(topics::PAYMENTS))
        .and_where(Expr::col("key").eq(payment.to_string()))
        .and_where(Expr::col("published_at").is_null())
        .to_owned();
    for row in state.db.query_all(&select).await? {
        let id: i64 = row.try_get("", "id")?;
        let payload: serde_json::Value = row.try_get("", "payload")?;
        let bytes = serde_json::to_vec(&payload).map_err(|e| ApiError::internal(&e))?;
        match state
            .bus
            .publish(topics::PAYMENTS, &payment.to_string(), bytes, vec![])
            .await
        {
            Ok(()) => {
                let mark = Query::update()
                    .table("outbox")
                    .value("published_at", Utc::now())
                    .and_where(Expr::col("id").eq(id))
                    .to_owned();
                state.db.execute(&mark).await?;
            }
            Err(err) => tracing::warn!(%payment, error = %err, "payment event not published yet"),
        }
    }
    Ok(())
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
        .map_err(ApiError::rate_limited)?;
    if body.card_token.trim().is_empty() {
        return Err(ApiError::invalid("card_token must not be empty"));
    }
    let payment = load(&state, body.payment_id)
        .await?
        .filter(|p| p.customer_id == caller.id)
        .ok_or_else(|| ApiError::not_found("payment"))?;
    if payment.status != "pending" {
        if payment.status == "succeeded" {
            flush_outbox(&state, payment.id).await?;
        }
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
    let outbox = Query::insert()
        .into_table("outbox")
        .columns([
            "event_id",
            "topic",
            "key",
            "event_type",
            "payload",
            "created_at",
        ])
        .values_panic([
            envelope.event_id.into(),
            topics::PAYMENTS.into(),
            payment.id.to_string().into(),
            PAYMENT_SUCCEEDED.into(),
            serde_json::to_value(&envelope)
                .map_err(|e| ApiError::internal(&e))?
                .into(),
            now.into(),
        ])
        .to_owned();
    txn.execute(&outbox).await?;
    let empty_cart = Query::delete()
        .from_table("cart_items")
        .and_where(Expr::col("customer_id").eq(caller.id))
        .to_owned();
    txn.execute(&empty_cart).await?;
    txn.commit().await?;
    flush_outbox(&state, payment.id).await?;
    Ok(answer(payment.id, "succeeded"))
}

/// The result a concurrent attempt recorded first.
async fn first_result(state: &AppState, id: Uuid) -> Result<HttpResponse, ApiError> {
    let payment = load(state, id)
        .await?
        .ok_or_else(|| ApiError::not_found("payment"))?;
    Ok(answer(payment.id, &payment.status))
}
