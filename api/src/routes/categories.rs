//! Listing categories (issue #12): admins create, rename and archive them; everybody reads the
//! active ones. A listing belongs to at most one (`category_id`); an archived category keeps its
//! listings but takes no new ones.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, QueryResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{Caller, MaybeCaller};
use crate::error::{ApiError, Code};
use crate::perm::{Capability, Role};
use crate::state::AppState;

const COLUMNS: [&str; 5] = ["id", "name", "archived_at", "created_at", "updated_at"];

/// A category.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Category {
    /// Id.
    pub id: Uuid,
    /// Name (unique, without regard to case).
    pub name: String,
    /// Whether it is archived (no new listings).
    pub archived: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

fn from_row(row: &QueryResult) -> Result<Category, sea_orm::DbErr> {
    let archived: Option<DateTime<Utc>> = row.try_get("", "archived_at")?;
    Ok(Category {
        id: row.try_get("", "id")?,
        name: row.try_get("", "name")?,
        archived: archived.is_some(),
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}

/// One category.
///
/// # Errors
/// The database fails.
pub async fn find<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<Category>, ApiError> {
    let select = Query::select()
        .columns(COLUMNS)
        .from("categories")
        .and_where(Expr::col("id").eq(id))
        .to_owned();
    Ok(conn
        .query_one(&select)
        .await?
        .map(|r| from_row(&r))
        .transpose()?)
}

/// A category a listing may be put in: 422 when unknown or archived.
///
/// # Errors
/// 422 as said; the database fails.
pub async fn assignable<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Uuid, ApiError> {
    match find(conn, id).await? {
        Some(c) if !c.archived => Ok(c.id),
        Some(_) => Err(ApiError::invalid(format!("category {id} is archived"))),
        None => Err(ApiError::invalid(format!("no category {id}"))),
    }
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("name must have 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

/// A unique-name violation as 409.
fn name_taken(err: sea_orm::DbErr, name: &str) -> ApiError {
    let text = err.to_string().to_lowercase();
    if text.contains("unique") || text.contains("duplicate") {
        ApiError::new(Code::Conflict, format!("a category named {name:?} exists"))
    } else {
        err.into()
    }
}

/// `POST /categories` and `PATCH /categories/{id}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CategoryName {
    name: String,
}

/// `GET /categories` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CategoryQuery {
    /// Admins only: also the archived ones.
    include_archived: Option<bool>,
}

/// `GET /categories`: the active categories by name (admins may add the archived ones).
///
/// # Errors
/// The database fails.
pub async fn list(
    state: web::Data<AppState>,
    caller: MaybeCaller,
    query: web::Query<CategoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let admin = caller.0.as_ref().is_some_and(|c| c.role == Role::Admin);
    let mut select = Query::select();
    select
        .columns(COLUMNS)
        .from("categories")
        .order_by("name_key", Order::Asc);
    if !(admin && query.include_archived == Some(true)) {
        select.and_where(Expr::col("archived_at").is_null());
    }
    let items = state
        .db
        .query_all(&select)
        .await?
        .iter()
        .map(from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"items": items, "next_cursor": null})))
}

/// `POST /categories` (admin).
///
/// # Errors
/// 403 for non-admins, 422 for a bad name, 409 for a taken one.
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CategoryName>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Capability::ManageCategories)?;
    let name = check_name(&body.name)?;
    let now = Utc::now();
    let id = Uuid::now_v7();
    let insert = Query::insert()
        .into_table("categories")
        .columns(["id", "name", "name_key", "created_at", "updated_at"])
        .values_panic([
            id.into(),
            name.clone().into(),
            name.to_lowercase().into(),
            now.into(),
            now.into(),
        ])
        .to_owned();
    state
        .db
        .execute(&insert)
        .await
        .map_err(|e| name_taken(e, &name))?;
    state.search_cache.invalidate().await;
    let category = find(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("category"))?;
    Ok(HttpResponse::Created().json(category))
}

async fn change(
    state: &AppState,
    id: Uuid,
    values: Vec<(&'static str, sea_orm::Value)>,
    name: &str,
) -> Result<HttpResponse, ApiError> {
    find(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("category"))?;
    let mut update = Query::update();
    update
        .table("categories")
        .value("updated_at", Utc::now())
        .and_where(Expr::col("id").eq(id));
    for (column, value) in values {
        update.value(column, value);
    }
    state
        .db
        .execute(&update)
        .await
        .map_err(|e| name_taken(e, name))?;
    state.search_cache.invalidate().await;
    let category = find(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("category"))?;
    Ok(HttpResponse::Ok().json(category))
}

/// `PATCH /categories/{id}` (admin): rename.
///
/// # Errors
/// 403 for non-admins, 404 unknown, 422 bad name, 409 taken.
pub async fn rename(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: web::Json<CategoryName>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Capability::ManageCategories)?;
    let name = check_name(&body.name)?;
    let values = vec![
        ("name", name.clone().into()),
        ("name_key", name.to_lowercase().into()),
    ];
    change(&state, *id, values, &name).await
}

/// `POST /categories/{id}/archive` (admin): no new listings; existing ones keep it.
///
/// # Errors
/// 403 for non-admins, 404 unknown.
pub async fn archive(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Capability::ManageCategories)?;
    change(&state, *id, vec![("archived_at", Utc::now().into())], "").await
}

/// `POST /categories/{id}/unarchive` (admin).
///
/// # Errors
/// 403 for non-admins, 404 unknown.
pub async fn unarchive(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Capability::ManageCategories)?;
    let none: Option<DateTime<Utc>> = None;
    change(&state, *id, vec![("archived_at", none.into())], "").await
}
