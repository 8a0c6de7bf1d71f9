//! The OpenAPI side of the endpoint table: how a request or response body is documented
//! (`json(T)`, `page(T)`, ...), and the schemas of answers that handlers build as JSON values
//! (tours come from the actor runtime, whose types know nothing of OpenAPI). A test checks
//! real answers against these schemas, so they cannot drift silently.

#![allow(dead_code)] // the fields exist for their schemas

use chrono::{DateTime, Utc};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::perm::Role;
use crate::routes::cart::RawWindow;
use crate::routes::listings::{Listing, RawPoint};
use crate::routes::realtors::RawInterval;

/// Component schemas collected while the document is built.
pub type Schemas = Vec<(String, RefOr<Schema>)>;

/// A documented body.
pub struct Body {
    /// Its media type.
    pub content_type: &'static str,
    /// Its schema (usually a reference to a component).
    pub schema: RefOr<Schema>,
    /// Whether a request must carry it.
    pub required: bool,
}

fn component<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    let name = T::name().into_owned();
    if !schemas.iter().any(|(n, _)| *n == name) {
        schemas.push((name.clone(), T::schema()));
        T::schemas(schemas);
    }
    RefOr::Ref(Ref::from_schema_name(name))
}

fn body(content_type: &'static str, schema: RefOr<Schema>) -> Option<Body> {
    Some(Body {
        content_type,
        schema,
        required: true,
    })
}

/// No body.
pub fn none(_: &mut Schemas) -> Option<Body> {
    None
}

/// A JSON `T`.
pub fn json<T: ToSchema>(schemas: &mut Schemas) -> Option<Body> {
    body("application/json", component::<T>(schemas))
}

/// A JSON `T` a request may leave out.
pub fn optional<T: ToSchema>(schemas: &mut Schemas) -> Option<Body> {
    json::<T>(schemas).map(|b| Body {
        required: false,
        ..b
    })
}

/// A JSON array of `T`.
pub fn array<T: ToSchema>(schemas: &mut Schemas) -> Option<Body> {
    let items = component::<T>(schemas);
    body(
        "application/json",
        ArrayBuilder::new().items(items).build().into(),
    )
}

/// A page of `T` (CONTRACT 2): `{items: [T], next_cursor: string | null}`.
pub fn page<T: ToSchema>(schemas: &mut Schemas) -> Option<Body> {
    let items = component::<T>(schemas);
    let page = ObjectBuilder::new()
        .property("items", ArrayBuilder::new().items(items))
        .required("items")
        .property(
            "next_cursor",
            ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                Type::String,
                Type::Null,
            ])),
        )
        .required("next_cursor")
        .build();
    body("application/json", page.into())
}

/// Server-Sent Events whose `data:` lines are JSON `T`.
pub fn sse<T: ToSchema>(schemas: &mut Schemas) -> Option<Body> {
    body("text/event-stream", component::<T>(schemas))
}

/// Plain text (Prometheus exposition format).
pub fn text(_: &mut Schemas) -> Option<Body> {
    body(
        "text/plain",
        ObjectBuilder::new()
            .schema_type(Type::String)
            .build()
            .into(),
    )
}

/// A `multipart/form-data` upload with a binary part `file`.
pub fn multipart(_: &mut Schemas) -> Option<Body> {
    let file = ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
            utoipa::openapi::schema::KnownFormat::Binary,
        )))
        .build();
    body(
        "multipart/form-data",
        ObjectBuilder::new()
            .property("file", file)
            .required("file")
            .build()
            .into(),
    )
}

/// Raw bytes (media).
pub fn binary(_: &mut Schemas) -> Option<Body> {
    body(
        "application/octet-stream",
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                utoipa::openapi::schema::KnownFormat::Binary,
            )))
            .build()
            .into(),
    )
}

/// Any JSON object.
pub fn object(_: &mut Schemas) -> Option<Body> {
    body(
        "application/json",
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .build()
            .into(),
    )
}

/// The error body of CONTRACT 2.
#[derive(ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(ToSchema)]
pub struct ErrorDetail {
    /// A snake_case code, e.g. `not_found`.
    code: String,
    /// A human sentence.
    message: String,
}

/// `GET /healthz`.
#[derive(ToSchema)]
pub struct Health {
    /// `ok`.
    status: String,
}

/// `GET /readyz`.
#[derive(ToSchema)]
pub struct Ready {
    /// Every dependency is reachable.
    ready: bool,
    /// Each dependency.
    dependencies: Dependencies,
}

/// Reachability of each dependency.
#[derive(ToSchema)]
pub struct Dependencies {
    /// The database answers.
    database: bool,
    /// The engine's supervision tree runs whole (no supervisor escalated).
    engine: bool,
}

/// An account.
#[derive(ToSchema)]
pub struct User {
    id: Uuid,
    email: String,
    name: String,
    role: Role,
}

/// `POST /iam/login`.
#[derive(ToSchema)]
pub struct Token {
    /// The JWT.
    access_token: String,
    /// `Bearer`.
    token_type: String,
    /// Seconds until it expires.
    expires_in: i64,
}

/// A customer's cart.
#[derive(ToSchema)]
pub struct Cart {
    /// Listings in cart order.
    items: Vec<Listing>,
    /// Sum of their prices.
    total_cents: i64,
}

/// `POST /cart/checkout`.
#[derive(ToSchema)]
pub struct PaymentCreated {
    payment_id: Uuid,
    amount_cents: i64,
    /// `pending`.
    status: String,
}

/// `POST /payments`.
#[derive(ToSchema)]
pub struct PaymentResult {
    payment_id: Uuid,
    /// `succeeded` | `declined`.
    status: String,
}

/// A realtor's profile as set.
#[derive(ToSchema)]
pub struct RealtorProfile {
    id: Uuid,
    home: RawPoint,
    service_radius_km: f64,
    time_zone: String,
    working_hours: Vec<RawInterval>,
    /// `available` | `unavailable`.
    status: String,
}

/// A realtor's status.
#[derive(ToSchema)]
pub struct RealtorState {
    id: Uuid,
    /// `available` | `unavailable`.
    status: String,
}

/// Where a tour is in its life (CONTRACT 5.2).
#[derive(ToSchema)]
#[schema(as = TourStatus, rename_all = "snake_case")]
pub enum TourStatusDoc {
    Pending,
    Assigned,
    Accepted,
    InProgress,
    Completed,
    Cancelled,
    Unassignable,
}

/// One listing of a tour.
#[derive(ToSchema)]
pub struct TourListing {
    id: Uuid,
    lat: f64,
    lng: f64,
}

/// One step of a tour's history.
#[derive(ToSchema)]
pub struct HistoryEntry {
    #[schema(value_type = TourStatusDoc)]
    status: String,
    at: DateTime<Utc>,
}

/// A tour (CONTRACT 5.2). `history` comes with `/tours` answers and events; `/assignments`
/// items carry `explanation: null` instead (the explanation is `/assignments/{id}/explain`).
#[derive(ToSchema)]
pub struct Tour {
    id: Uuid,
    payment_id: Uuid,
    customer_id: Uuid,
    #[schema(value_type = TourStatusDoc)]
    status: String,
    /// In visiting order.
    listings: Vec<TourListing>,
    window: RawWindow,
    /// Visits plus travel.
    duration_minutes: i32,
    realtor_id: Option<Uuid>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    /// Why it is unassignable or was cancelled.
    reason: Option<String>,
    /// Realtors who declined it.
    declined: Vec<Uuid>,
    /// Bumped by every change.
    version: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[schema(required = false)]
    history: Option<Vec<HistoryEntry>>,
    #[schema(required = false, value_type = Option<Object>)]
    explanation: Option<serde_json::Value>,
}

/// `GET /availability`.
#[derive(ToSchema)]
pub struct AvailabilityList {
    /// Nearest first.
    items: Vec<Available>,
}

/// A realtor able to take a one-listing tour.
#[derive(ToSchema)]
pub struct Available {
    realtor_id: Uuid,
    distance_km: f64,
    earliest_start: DateTime<Utc>,
}

/// `GET /assignments/{tour_id}/explain`.
#[derive(ToSchema)]
pub struct Explain {
    tour_id: Uuid,
    #[schema(value_type = TourStatusDoc)]
    status: String,
    realtor_id: Option<Uuid>,
    reason: Option<String>,
    /// The engine's explanation: every candidate considered and why it won or lost.
    #[schema(value_type = Option<Object>)]
    explanation: Option<serde_json::Value>,
}

/// One row of `GET /assignments/stats`.
#[derive(ToSchema)]
pub struct CellStats {
    /// H3 index.
    cell: String,
    assigned: u64,
    unassignable: u64,
    pending: u64,
    /// The cell's outline, `[lat, lng]` vertices in order.
    boundary: Vec<[f64; 2]>,
}
