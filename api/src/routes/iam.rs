//! IAM (CONTRACT 4): register, login, me; the admin bootstrap.

use actix_web::{web, HttpRequest, HttpResponse};
use actors::bus::{topics, Envelope};
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::{self, Caller, TOKEN_TTL_SECONDS};
use crate::error::{ApiError, Code};
use crate::perm::Role;
use crate::state::AppState;

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 8;
const WRONG_CREDENTIALS: &str = "wrong email or password";

/// `POST /iam/register` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    email: String,
    password: String,
    name: String,
    role: String,
}

/// `POST /iam/login` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    email: String,
    password: String,
}

/// A normalised email, or why not.
fn parse_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        })
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(ApiError::invalid("email is not a valid address"))
    }
}

fn user_json(id: Uuid, email: &str, name: &str, role: &str) -> serde_json::Value {
    json!({"id": id, "email": email, "name": name, "role": role})
}

/// Inserts a user and its `user.created` event (CONTRACT 6) in one transaction; `Ok(false)`
/// when the email exists.
async fn insert_user(
    db: &DatabaseConnection,
    id: Uuid,
    email: &str,
    hash: &str,
    name: &str,
    role: Role,
) -> Result<bool, DbErr> {
    let now = Utc::now();
    let insert = Query::insert()
        .into_table("users")
        .columns([
            "id",
            "email",
            "password_hash",
            "name",
            "role",
            "created_at",
            "updated_at",
        ])
        .values_panic([
            id.into(),
            email.into(),
            hash.into(),
            name.into(),
            role.as_str().into(),
            now.into(),
            now.into(),
        ])
        .on_conflict(OnConflict::column("email").do_nothing().to_owned())
        .to_owned();
    let txn = db.begin().await?;
    if txn.execute(&insert).await?.rows_affected() == 0 {
        return Ok(false);
    }
    let event = Envelope::new("user.created", user_json(id, email, name, role.as_str()));
    actors::outbox::append(&txn, topics::IAM, &id.to_string(), &event).await?;
    txn.commit().await?;
    Ok(true)
}

/// `POST /iam/register`.
///
/// # Errors
/// 422 for a bad email, a short password or role admin; 409 for a taken email.
pub async fn register(
    state: web::Data<AppState>,
    body: web::Json<Register>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let email = parse_email(&body.email)?;
    if body.password.chars().count() < MIN_PASSWORD {
        return Err(ApiError::invalid(
            "password must have at least 8 characters",
        ));
    }
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid("name must have 1 to 200 characters"));
    }
    let role = match Role::parse(&body.role) {
        Some(Role::Admin) => return Err(ApiError::invalid("role admin cannot be self-registered")),
        Some(role) => role,
        None => {
            return Err(ApiError::invalid(
                "role must be customer, realtor or provider",
            ))
        }
    };
    let hash = auth::hash_password(body.password).await?;
    let id = Uuid::now_v7();
    if !insert_user(&state.db, id, &email, &hash, &name, role).await? {
        return Err(ApiError::new(
            Code::EmailTaken,
            "this email is already registered",
        ));
    }
    state.runtime.outbox_written();
    Ok(HttpResponse::Created().json(user_json(id, &email, &name, role.as_str())))
}

/// `POST /iam/login`.
///
/// # Errors
/// 401 on wrong credentials (one message for both cases), 429 over a rate limit.
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<Login>,
) -> Result<HttpResponse, ApiError> {
    let ip = req
        .peer_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
    state
        .limits
        .login_ip
        .hit(&ip)
        .await
        .map_err(ApiError::rate_limited)?;
    let body = body.into_inner();
    let email = body.email.trim().to_lowercase();
    state
        .limits
        .login_failures
        .check(&email)
        .await
        .map_err(ApiError::rate_limited)?;
    let select = Query::select()
        .columns(["id", "password_hash", "role"])
        .from("users")
        .and_where(Expr::col("email").eq(email.as_str()))
        .to_owned();
    let row = state.db.query_one(&select).await?;
    let found = match row {
        Some(row) => Some((
            row.try_get::<Uuid>("", "id")?,
            row.try_get::<String>("", "password_hash")?,
            row.try_get::<String>("", "role")?,
        )),
        None => None,
    };
    // Unknown emails still pay for a hash, so timing does not tell them apart.
    let hash = found.as_ref().map_or_else(
        || {
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
             Jm3ZrBmL1rzYfqCGtVwxEiwmMbUOEFkTBS6JYBQyJbg"
                .to_owned()
        },
        |(_, h, _)| h.clone(),
    );
    let ok = auth::verify_password(body.password, hash).await;
    let Some((id, _, role)) = found.filter(|_| ok) else {
        state.limits.login_failures.record(&email).await;
        return Err(ApiError::new(Code::InvalidCredentials, WRONG_CREDENTIALS));
    };
    let role = Role::parse(&role)
        .ok_or_else(|| ApiError::internal(&std::io::Error::other("stored role unknown")))?;
    state.limits.login_failures.reset(&email).await;
    let token = state.jwt.issue(id, role)?;
    Ok(HttpResponse::Ok().json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": TOKEN_TTL_SECONDS,
    })))
}

/// `GET /iam/me`.
///
/// # Errors
/// 401 without a valid token; 404 when the account is gone.
pub async fn me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let select = Query::select()
        .columns(["id", "email", "name", "role"])
        .from("users")
        .and_where(Expr::col("id").eq(caller.id))
        .to_owned();
    let row = state
        .db
        .query_one(&select)
        .await?
        .ok_or_else(|| ApiError::not_found("account"))?;
    Ok(HttpResponse::Ok().json(user_json(
        row.try_get("", "id")?,
        &row.try_get::<String>("", "email")?,
        &row.try_get::<String>("", "name")?,
        &row.try_get::<String>("", "role")?,
    )))
}

/// Makes sure an admin account with these credentials exists (created, or its password and
/// role reset).
///
/// # Errors
/// A bad email or short password, or a database failure.
pub async fn bootstrap_admin(
    db: &DatabaseConnection,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
    let email = parse_email(email).map_err(|e| anyhow::anyhow!("--admin-email: {}", e.message))?;
    anyhow::ensure!(
        password.chars().count() >= MIN_PASSWORD,
        "--admin-password must have at least {MIN_PASSWORD} characters"
    );
    let hash = auth::hash_password(password.to_owned())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !insert_user(
        db,
        Uuid::now_v7(),
        &email,
        &hash,
        "Administrator",
        Role::Admin,
    )
    .await?
    {
        let update = Query::update()
            .table("users")
            .values([
                ("password_hash", hash.into()),
                ("role", Role::Admin.as_str().into()),
                ("updated_at", Utc::now().into()),
            ])
            .and_where(Expr::col("email").eq(email.as_str()))
            .to_owned();
        db.execute(&update).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_email;

    #[test]
    fn emails_are_checked_and_lowercased() {
        assert_eq!(parse_email(" A@B.io ").unwrap(), "a@b.io");
        for bad in ["", "a", "a@b", "@b.io", "a@.io", "a b@c.io", "a@b.io."] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
    }
}
