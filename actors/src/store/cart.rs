//! Carts and checkouts in the database: `cart_items` (a customer's open cart, in cart order)
//! joined with `listings`, and the `payments` row a checkout creates. Only the customer's
//! [`crate::runtime::cart`] actor calls these for its customer, one call at a time; the other
//! writers of `cart_items` are the listing API (an unpublished or deleted listing leaves every
//! cart) and `POST /payments` (a succeeded payment empties the cart).

use chrono::{DateTime, Utc};
use engine::{CustomerId, ListingId, PaymentId, Stop, TimeWindow};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{ConnectionTrait, QueryResult};
use serde::Serialize;
use uuid::Uuid;

use super::sql::{custom, now, to_json};
use super::StoreError;

/// Where a listing is, as the listing JSON has it (`{lat, lng}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lng: f64,
}

/// A listing as a cart shows it: serializes to the listing JSON of CONTRACT 4.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CartListing {
    /// The listing.
    pub id: ListingId,
    /// The provider who owns it.
    pub owner_id: Uuid,
    /// Title.
    pub title: String,
    /// Street address.
    pub address: String,
    /// Where it is.
    pub location: Point,
    /// Price of a visit, cents.
    pub price_cents: i64,
    /// `draft`, `published` or `unpublished`.
    pub status: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl CartListing {
    /// Only published listings go into a cart (CONTRACT 4).
    #[must_use]
    pub fn is_published(&self) -> bool {
        self.status == "published"
    }
}

/// A checked-out cart: the `payments` row, `pending` until `POST /payments` decides it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPayment {
    /// The payment (the `payment_id` of the API and of `payment.succeeded`).
    pub id: PaymentId,
    /// Who pays.
    pub customer_id: CustomerId,
    /// The sum of the listings' prices.
    pub amount_cents: i64,
    /// ISO currency code.
    pub currency: String,
    /// The customer's window.
    pub window: TimeWindow,
    /// Snapshot of the cart's listings, in cart order.
    pub listings: Vec<Stop>,
}

const LISTING_COLUMNS: [&str; 10] = [
    "id",
    "owner_id",
    "title",
    "address",
    "lat",
    "lng",
    "price_cents",
    "status",
    "created_at",
    "updated_at",
];

fn listing_from_row(row: &QueryResult) -> Result<CartListing, StoreError> {
    Ok(CartListing {
        id: ListingId(row.try_get("", "id")?),
        owner_id: row.try_get("", "owner_id")?,
        title: row.try_get("", "title")?,
        address: row.try_get("", "address")?,
        location: Point {
            lat: row.try_get("", "lat")?,
            lng: row.try_get("", "lng")?,
        },
        price_cents: row.try_get("", "price_cents")?,
        status: row.try_get("", "status")?,
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}

/// One listing that is not deleted (whatever its status).
pub(super) async fn listing<C: ConnectionTrait>(
    conn: &C,
    id: ListingId,
) -> Result<Option<CartListing>, StoreError> {
    let select = Query::select()
        .columns(LISTING_COLUMNS)
        .from("listings")
        .and_where(Expr::col("id").eq(id.0))
        .and_where(Expr::col("deleted_at").is_null())
        .to_owned();
    conn.query_one(&select)
        .await?
        .map(|row| listing_from_row(&row))
        .transpose()
}

/// The customer's cart, in cart order (deleted listings have left it).
pub(super) async fn items<C: ConnectionTrait>(
    conn: &C,
    customer: CustomerId,
) -> Result<Vec<CartListing>, StoreError> {
    let select = Query::select()
        .columns(LISTING_COLUMNS.map(|c| ("listings", c)))
        .from("cart_items")
        .inner_join(
            "listings",
            Expr::col(("listings", "id")).equals(("cart_items", "listing_id")),
        )
        .and_where(Expr::col(("cart_items", "customer_id")).eq(customer.0))
        .and_where(Expr::col(("listings", "deleted_at")).is_null())
        .order_by(("cart_items", "position"), Order::Asc)
        .to_owned();
    conn.query_all(&select)
        .await?
        .iter()
        .map(listing_from_row)
        .collect()
}

/// Puts `listing` last in the customer's cart; `false` when it was already in it.
pub(super) async fn add<C: ConnectionTrait>(
    conn: &C,
    customer: CustomerId,
    listing: ListingId,
) -> Result<bool, StoreError> {
    let position = Query::select()
        .expr_as(Expr::cust("COALESCE(MAX(position), 0)"), "p")
        .from("cart_items")
        .and_where(Expr::col("customer_id").eq(customer.0))
        .to_owned();
    let next: i32 = match conn.query_one(&position).await? {
        Some(row) => row.try_get::<i32>("", "p").unwrap_or(0) + 1,
        None => 1,
    };
    let insert = Query::insert()
        .into_table("cart_items")
        .columns(["customer_id", "listing_id", "position", "added_at"])
        .values([
            customer.0.into(),
            listing.0.into(),
            next.into(),
            now().into(),
        ])
        .map_err(custom)?
        .on_conflict(
            OnConflict::columns(["customer_id", "listing_id"])
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    Ok(conn.execute(&insert).await?.rows_affected() > 0)
}

/// Takes `listing` out of the customer's cart; `false` when it was not in it.
pub(super) async fn remove<C: ConnectionTrait>(
    conn: &C,
    customer: CustomerId,
    listing: ListingId,
) -> Result<bool, StoreError> {
    let delete = Query::delete()
        .from_table("cart_items")
        .and_where(Expr::col("customer_id").eq(customer.0))
        .and_where(Expr::col("listing_id").eq(listing.0))
        .to_owned();
    Ok(conn.execute(&delete).await?.rows_affected() > 0)
}

/// Inserts the `pending` payment of a checkout.
pub(super) async fn create_payment<C: ConnectionTrait>(
    conn: &C,
    payment: &NewPayment,
) -> Result<(), StoreError> {
    let now = now();
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
        .values([
            payment.id.0.into(),
            payment.customer_id.0.into(),
            payment.amount_cents.into(),
            payment.currency.clone().into(),
            "pending".into(),
            payment.window.start().into(),
            payment.window.end().into(),
            to_json(&payment.listings)?.into(),
            now.into(),
            now.into(),
        ])
        .map_err(custom)?
        .to_owned();
    conn.execute(&insert).await?;
    Ok(())
}
