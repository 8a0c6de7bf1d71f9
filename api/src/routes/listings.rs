//! Listings (CONTRACT 4): providers manage their own, admins any; everybody reads published.

use actix_web::{web, HttpResponse};
use actors::bus::{topics, Envelope};
use chrono::{DateTime, Utc};
use engine::Location;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, QueryResult, TransactionTrait};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{Caller, MaybeCaller};
use crate::error::ApiError;
use crate::perm::{Capability, Role};
use crate::state::AppState;

/// The columns [`from_row`] reads.
pub(crate) const COLUMNS: [&str; 12] = [
    "id",
    "owner_id",
    "category_id",
    "title",
    "address",
    "lat",
    "lng",
    "price_cents",
    "status",
    "created_at",
    "updated_at",
    "deleted_at",
];

/// `{lat, lng}` as sent: checked into a [`Location`] (422 when out of range).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RawPoint {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lng: f64,
}

impl RawPoint {
    /// The checked location.
    ///
    /// # Errors
    /// 422 for a latitude outside [-90, 90] or a longitude outside [-180, 180].
    pub fn location(self) -> Result<Location, ApiError> {
        Location::new(self.lat, self.lng).map_err(|e| ApiError::invalid(e.to_string()))
    }
}

/// A listing as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Listing {
    /// Id.
    pub id: Uuid,
    /// The provider who owns it.
    pub owner_id: Uuid,
    /// Its category, if any (`GET /categories`).
    pub category_id: Option<Uuid>,
    /// Title.
    pub title: String,
    /// Street address.
    pub address: String,
    /// Where it is.
    pub location: RawPoint,
    /// Price of a visit, cents.
    pub price_cents: i64,
    /// draft | published | unpublished.
    pub status: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Images and videos, in upload order (listing answers; cart items leave it out).
    #[schema(required = false)]
    pub media: Vec<super::media::MediaRef>,
    #[serde(skip)]
    deleted: bool,
}

/// A listing from a row of [`COLUMNS`].
pub(crate) fn from_row(row: &QueryResult) -> Result<Listing, sea_orm::DbErr> {
    let deleted: Option<DateTime<Utc>> = row.try_get("", "deleted_at")?;
    Ok(Listing {
        id: row.try_get("", "id")?,
        owner_id: row.try_get("", "owner_id")?,
        category_id: row.try_get("", "category_id")?,
        title: row.try_get("", "title")?,
        address: row.try_get("", "address")?,
        location: RawPoint {
            lat: row.try_get("", "lat")?,
            lng: row.try_get("", "lng")?,
        },
        price_cents: row.try_get("", "price_cents")?,
        status: row.try_get("", "status")?,
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
        media: Vec::new(),
        deleted: deleted.is_some(),
    })
}

/// One listing, deleted ones excluded.
///
/// # Errors
/// When the database fails.
pub async fn find(state: &AppState, id: Uuid) -> Result<Option<Listing>, ApiError> {
    find_on(&state.db, id).await
}

/// [`find`] on a connection or transaction.
async fn find_on<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<Listing>, ApiError> {
    let select = Query::select()
        .columns(COLUMNS)
        .from("listings")
        .and_where(Expr::col("id").eq(id))
        .to_owned();
    let row = conn.query_one(&select).await?;
    Ok(row
        .map(|r| from_row(&r))
        .transpose()?
        .filter(|l| !l.deleted))
}

/// Records a `listings` event (CONTRACT 6) in the change's transaction; the outbox relay
/// publishes it once the transaction commits.
async fn emit<C: ConnectionTrait>(
    conn: &C,
    event_type: &str,
    id: Uuid,
    data: serde_json::Value,
) -> Result<(), ApiError> {
    let envelope = Envelope::new(event_type, data);
    actors::outbox::append(conn, topics::LISTINGS, &id.to_string(), &envelope).await?;
    Ok(())
}

fn to_json(listing: &Listing) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(listing).map_err(|e| ApiError::internal(&e))
}

pub(crate) fn visible(listing: &Listing, caller: Option<&Caller>) -> bool {
    listing.status == "published"
        || caller.is_some_and(|c| c.role == Role::Admin || c.id == listing.owner_id)
}

/// A listing the caller may change: 403 by role, 404 when not theirs.
pub(crate) async fn owned(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<Listing, ApiError> {
    let access = caller.may(Capability::ManageListing)?;
    find(state, id)
        .await?
        .filter(|l| caller.reaches(access, l.owner_id))
        .ok_or_else(|| ApiError::not_found("listing"))
}

fn check_text(field: &str, value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 500 {
        return Err(ApiError::invalid(format!(
            "{field} must have 1 to 500 characters"
        )));
    }
    Ok(value.to_owned())
}

fn check_price(price: i64) -> Result<i64, ApiError> {
    if !(0..=10_000_000_000).contains(&price) {
        return Err(ApiError::invalid("price_cents must be between 0 and 10^10"));
    }
    Ok(price)
}

/// `POST /listings` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewListing {
    title: String,
    address: String,
    location: RawPoint,
    price_cents: i64,
    /// An active category (`GET /categories`).
    category_id: Option<Uuid>,
}

/// `POST /listings`.
///
/// # Errors
/// 403 for roles other than provider/admin, 422 for invalid values.
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<NewListing>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Capability::ManageListing)?;
    let title = check_text("title", &body.title)?;
    let address = check_text("address", &body.address)?;
    let location = body.location.location()?;
    let price = check_price(body.price_cents)?;
    let category = match body.category_id {
        Some(id) => Some(super::categories::assignable(&state.db, id).await?),
        None => None,
    };
    let now = Utc::now();
    let id = Uuid::now_v7();
    let insert = Query::insert()
        .into_table("listings")
        .columns([
            "id",
            "owner_id",
            "category_id",
            "title",
            "address",
            "lat",
            "lng",
            "cell",
            "price_cents",
            "status",
            "created_at",
            "updated_at",
        ])
        .values_panic([
            id.into(),
            caller.id.into(),
            category.into(),
            title.into(),
            address.into(),
            location.lat().into(),
            location.lng().into(),
            engine::geo::fine_cell_id(&location).into(),
            price.into(),
            "draft".into(),
            now.into(),
            now.into(),
        ])
        .to_owned();
    let txn = state.db.begin().await?;
    txn.execute(&insert).await?;
    let listing = find_on(&txn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("listing"))?;
    emit(&txn, "listing.created", id, to_json(&listing)?).await?;
    txn.commit().await?;
    state.runtime.outbox_written();
    state.search_cache.invalidate().await;
    Ok(HttpResponse::Created().json(listing))
}

/// `PATCH /listings/{id}` body: any subset of the fields.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ListingPatch {
    title: Option<String>,
    address: Option<String>,
    location: Option<RawPoint>,
    price_cents: Option<i64>,
    /// Moves the listing to another active category.
    category_id: Option<Uuid>,
}

/// Sets `values` on the listing and records `event_type`, in one transaction; a listing that
/// is no longer published also leaves every cart.
async fn update(
    state: &AppState,
    id: Uuid,
    values: Vec<(&'static str, sea_orm::Value)>,
    event_type: &str,
) -> Result<Listing, ApiError> {
    let mut update = Query::update();
    update
        .table("listings")
        .value("updated_at", Utc::now())
        .and_where(Expr::col("id").eq(id));
    for (column, value) in values {
        update.value(column, value);
    }
    let txn = state.db.begin().await?;
    txn.execute(&update).await?;
    let listing = find_on(&txn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("listing"))?;
    if listing.status != "published" {
        let delete = Query::delete()
            .from_table("cart_items")
            .and_where(Expr::col("listing_id").eq(id))
            .to_owned();
        txn.execute(&delete).await?;
    }
    emit(&txn, event_type, id, to_json(&listing)?).await?;
    let notify = event_type == "listing.published" && published_notice(&txn, &listing).await?;
    txn.commit().await?;
    state.runtime.outbox_written();
    state.search_cache.invalidate().await;
    if notify {
        state.runtime.notifications_written();
    }
    let mut listing = listing;
    super::media::of_listings(state, std::slice::from_mut(&mut listing)).await?;
    Ok(listing)
}

/// The `listing_published` email to the listing's provider, written with the change; `false`
/// when the owner has no account any more.
async fn published_notice<C: ConnectionTrait>(
    conn: &C,
    listing: &Listing,
) -> Result<bool, ApiError> {
    let Some((email, name)) = actors::notices::email_of(conn, listing.owner_id).await? else {
        return Ok(false);
    };
    let notice = actors::notices::NewNotice {
        kind: "listing_published",
        tour_id: None,
        recipient: email,
        subject: format!("Your listing \"{}\" is published", listing.title),
        body: format!(
            "Hello {name},\n\nYour listing \"{}\" at {} is published: customers can now find it \
             and book tours of it.\n\nListing {}\n",
            listing.title, listing.address, listing.id
        ),
    };
    actors::notices::insert(conn, &[notice], Utc::now()).await?;
    Ok(true)
}

/// `PATCH /listings/{id}`.
///
/// # Errors
/// 403/404 as [`owned`], 422 for invalid values.
pub async fn patch(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: web::Json<ListingPatch>,
) -> Result<HttpResponse, ApiError> {
    let listing = owned(&state, &caller, *id).await?;
    let body = body.into_inner();
    let mut values: Vec<(&'static str, sea_orm::Value)> = Vec::new();
    if let Some(title) = &body.title {
        values.push(("title", check_text("title", title)?.into()));
    }
    if let Some(address) = &body.address {
        values.push(("address", check_text("address", address)?.into()));
    }
    if let Some(point) = body.location {
        let location = point.location()?;
        values.push(("lat", location.lat().into()));
        values.push(("lng", location.lng().into()));
        values.push(("cell", engine::geo::fine_cell_id(&location).into()));
    }
    if let Some(price) = body.price_cents {
        values.push(("price_cents", check_price(price)?.into()));
    }
    if let Some(category) = body.category_id {
        let category = super::categories::assignable(&state.db, category).await?;
        values.push(("category_id", Some(category).into()));
    }
    Ok(HttpResponse::Ok().json(update(&state, listing.id, values, "listing.updated").await?))
}

async fn set_status(
    state: web::Data<AppState>,
    caller: Caller,
    id: Uuid,
    status: &'static str,
) -> Result<HttpResponse, ApiError> {
    let listing = owned(&state, &caller, id).await?;
    let event_type = if status == "published" {
        "listing.published"
    } else {
        "listing.unpublished"
    };
    let listing = update(
        &state,
        listing.id,
        vec![("status", status.into())],
        event_type,
    )
    .await?;
    Ok(HttpResponse::Ok().json(listing))
}

/// `POST /listings/{id}/publish`.
///
/// # Errors
/// 403/404 as [`owned`].
pub async fn publish(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    set_status(state, caller, *id, "published").await
}

/// `POST /listings/{id}/unpublish`.
///
/// # Errors
/// 403/404 as [`owned`].
pub async fn unpublish(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    set_status(state, caller, *id, "unpublished").await
}

/// `DELETE /listings/{id}`: a soft delete (payments and tours keep pointing at it).
///
/// # Errors
/// 403/404 as [`owned`].
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let listing = owned(&state, &caller, *id).await?;
    let now = Utc::now();
    let remove = Query::delete()
        .from_table("cart_items")
        .and_where(Expr::col("listing_id").eq(listing.id))
        .to_owned();
    let soft_delete = Query::update()
        .table("listings")
        .values([("deleted_at", now.into()), ("updated_at", now.into())])
        .and_where(Expr::col("id").eq(listing.id))
        .to_owned();
    let txn = state.db.begin().await?;
    txn.execute(&remove).await?;
    txn.execute(&soft_delete).await?;
    let data =
        serde_json::json!({"id": listing.id, "owner_id": listing.owner_id, "deleted_at": now});
    emit(&txn, "listing.deleted", listing.id, data).await?;
    txn.commit().await?;
    state.runtime.outbox_written();
    state.search_cache.invalidate().await;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /listings/{id}`.
///
/// # Errors
/// 404 for unknown ids and for unpublished listings of others.
pub async fn get(
    state: web::Data<AppState>,
    caller: MaybeCaller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut listing = find(&state, *id)
        .await?
        .filter(|l| visible(l, caller.0.as_ref()))
        .ok_or_else(|| ApiError::not_found("listing"))?;
    super::media::of_listings(&state, std::slice::from_mut(&mut listing)).await?;
    Ok(HttpResponse::Ok().json(listing))
}

/// Whether `access` reaches a listing (used by carts: published only).
#[must_use]
pub fn is_published(listing: &Listing) -> bool {
    listing.status == "published"
}
