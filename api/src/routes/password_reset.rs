//! Password reset: `POST /iam/password-reset` `{email}` always answers 202, whether or not
//! the email has an account (no account enumeration); for an account it stores the SHA-256
//! of a fresh random token (single use, valid [`TOKEN_TTL_MINUTES`]) and, in the same
//! transaction, a `password_reset` notification whose email carries the link. The
//! notification worker sends it, never this handler. `POST /iam/password-reset/confirm`
//! `{token, new_password}` sets the password and spends the token (and every other
//! outstanding token of that account).

use actix_web::{web, HttpResponse};
use actors::notices::NewNotice;
use chrono::{DateTime, Utc};
use rand::RngCore as _;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth;
use crate::error::{ApiError, Code};
use crate::routes::iam::MIN_PASSWORD;
use crate::state::AppState;

/// How long a reset link works.
pub const TOKEN_TTL_MINUTES: i64 = 30;

/// `POST /iam/password-reset` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    email: String,
}

/// `POST /iam/password-reset/confirm` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    token: String,
    new_password: String,
}

/// The stored form of a token.
fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.trim().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh token: 32 random bytes, hex.
fn new_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST /iam/password-reset`: always 202.
///
/// # Errors
/// Only malformed bodies (400) and database failures.
pub async fn request(
    state: web::Data<AppState>,
    body: web::Json<ResetRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = body.email.trim().to_lowercase();
    // A few emails per address per quarter hour, silently: the answer must not differ.
    if state.limits.password_resets.hit(&email).await.is_ok() {
        let base = state.public_url.get().cloned().unwrap_or_default();
        if issue(&state.db, &email, &base, Utc::now()).await? {
            state.runtime.notifications_written();
        }
    }
    Ok(HttpResponse::Accepted().json(json!({
        "status": "accepted",
        "message": "if the address has an account, a reset link is on its way",
    })))
}

/// Stores a token for the account of `email` and its `password_reset` email; `false` when
/// there is no such account.
///
/// # Errors
/// Database failures.
pub async fn issue(
    db: &DatabaseConnection,
    email: &str,
    base_url: &str,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let select = Query::select()
        .columns(["id", "name"])
        .from("users")
        .and_where(Expr::col("email").eq(email))
        .to_owned();
    let Some(user) = db.query_one(&select).await? else {
        return Ok(false);
    };
    let user_id: Uuid = user.try_get("", "id")?;
    let name: String = user.try_get("", "name")?;
    let token = new_token();
    let txn = db.begin().await?;
    let insert = Query::insert()
        .into_table("password_reset_tokens")
        .columns(["token_hash", "user_id", "expires_at"])
        .values_panic([
            token_hash(&token).into(),
            user_id.into(),
            (now + chrono::Duration::minutes(TOKEN_TTL_MINUTES)).into(),
        ])
        .to_owned();
    txn.execute(&insert).await?;
    let notice = NewNotice {
        kind: "password_reset",
        tour_id: None,
        recipient: email.to_owned(),
        subject: "Reset your Tourwise password".into(),
        body: format!(
            "Hello {name},\n\n\
             Someone asked to reset the password of this account. To choose a new one within \
             {TOKEN_TTL_MINUTES} minutes, open\n\n  {base_url}/reset-password?token={token}\n\n\
             or send POST {base_url}/iam/password-reset/confirm with \
             {{\"token\": \"{token}\", \"new_password\": \"...\"}}.\n\n\
             The link works once. If you did not ask for it, ignore this email.\n"
        ),
    };
    actors::notices::insert(&txn, &[notice], now).await?;
    txn.commit().await?;
    Ok(true)
}

/// `POST /iam/password-reset/confirm`.
///
/// # Errors
/// 422 for a short password or a token that is unknown, used or expired.
pub async fn confirm(
    state: web::Data<AppState>,
    body: web::Json<ResetConfirm>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.new_password.chars().count() < MIN_PASSWORD {
        return Err(ApiError::invalid(
            "new_password must have at least 8 characters",
        ));
    }
    let hash = auth::hash_password(body.new_password).await?;
    if !spend(&state.db, &body.token, &hash, Utc::now()).await? {
        return Err(ApiError::new(
            Code::InvalidResetToken,
            "the reset token is unknown, used or expired",
        ));
    }
    Ok(HttpResponse::Ok().json(json!({"status": "password_changed"})))
}

/// Spends `token` at `now` and sets the account's password hash; `false` (and nothing
/// changed) for a token that is unknown, used or expired.
///
/// # Errors
/// Database failures.
pub async fn spend(
    db: &DatabaseConnection,
    token: &str,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let txn = db.begin().await?;
    // The claim: only one request can spend a token.
    let claim = Query::update()
        .table("password_reset_tokens")
        .value("used_at", now)
        .and_where(Expr::col("token_hash").eq(token_hash(token)))
        .and_where(Expr::col("used_at").is_null())
        .and_where(Expr::col("expires_at").gt(now))
        .returning(Query::returning().column("user_id"))
        .to_owned();
    let Some(row) = txn.query_one(&claim).await? else {
        return Ok(false);
    };
    let user: Uuid = row.try_get("", "user_id")?;
    let set = Query::update()
        .table("users")
        .value("password_hash", password_hash)
        .value("updated_at", now)
        .and_where(Expr::col("id").eq(user))
        .to_owned();
    txn.execute(&set).await?;
    let others = Query::update()
        .table("password_reset_tokens")
        .value("used_at", now)
        .and_where(Expr::col("user_id").eq(user))
        .and_where(Expr::col("used_at").is_null())
        .to_owned();
    txn.execute(&others).await?;
    txn.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(token_hash(&a), token_hash(&format!(" {a}\n")));
        assert_ne!(token_hash(&a), a);
        assert_eq!(token_hash(&a).len(), 64);
    }
}
