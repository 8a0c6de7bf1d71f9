//! Every endpoint in one table: actix routes and the OpenAPI document are both built from it,
//! so the document covers every endpoint by construction.

pub mod actions;
pub mod assignments;
pub mod cart;
pub mod iam;
pub mod listings;
pub mod payments;
pub mod realtors;
pub mod tours;

use actix_web::{web, HttpResponse, Route};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem, PathsBuilder};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, ResponseBuilder,
};

use crate::metrics;

/// How a client must be authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Nobody needs a token.
    Public,
    /// A bearer token is required (401 without).
    Bearer,
    /// A token is optional (it widens what is visible).
    Optional,
}

/// One endpoint.
pub struct Endpoint {
    /// HTTP method.
    pub method: HttpMethod,
    /// Path, actix and OpenAPI syntax (`{id}`).
    pub path: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Authentication.
    pub auth: Auth,
    /// Whether it takes a JSON body.
    pub body: bool,
    /// Success status.
    pub ok: u16,
    /// The handler.
    pub route: fn() -> Route,
}

macro_rules! endpoints {
    ($($method:ident $path:literal $summary:literal, $auth:ident, $body:literal, $ok:literal => $handler:path;)*) => {
        /// Every endpoint of the API.
        #[must_use]
        pub fn endpoints() -> Vec<Endpoint> {
            vec![$(Endpoint {
                method: HttpMethod::$method,
                path: $path,
                summary: $summary,
                auth: Auth::$auth,
                body: $body,
                ok: $ok,
                route: || route(HttpMethod::$method).to($handler),
            },)*]
        }
    };
}

fn method_name(method: &HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "get",
        HttpMethod::Post => "post",
        HttpMethod::Put => "put",
        HttpMethod::Patch => "patch",
        HttpMethod::Delete => "delete",
        HttpMethod::Head => "head",
        HttpMethod::Options => "options",
        HttpMethod::Trace => "trace",
    }
}

fn route(method: HttpMethod) -> Route {
    match method {
        HttpMethod::Get => web::get(),
        HttpMethod::Post => web::post(),
        HttpMethod::Put => web::put(),
        HttpMethod::Patch => web::patch(),
        HttpMethod::Delete => web::delete(),
        HttpMethod::Head => web::head(),
        HttpMethod::Options => web::method(actix_web::http::Method::OPTIONS),
        HttpMethod::Trace => web::method(actix_web::http::Method::TRACE),
    }
}

endpoints! {
    Get "/healthz" "Process alive", Public, false, 200 => crate::server::healthz;
    Get "/readyz" "Dependencies reachable", Public, false, 200 => crate::server::readyz;
    Get "/metrics" "Prometheus metrics", Public, false, 200 => metrics::metrics;
    Get "/openapi.json" "This document", Public, false, 200 => openapi_json;
    Post "/iam/register" "Create an account", Public, true, 201 => iam::register;
    Post "/iam/login" "Get an access token", Public, true, 200 => iam::login;
    Get "/iam/me" "The caller's account", Bearer, false, 200 => iam::me;
    Post "/listings" "Create a draft listing (provider, admin)", Bearer, true, 201 => listings::create;
    Get "/listings" "Search listings (near, radius_km, q)", Optional, false, 200 => listings::list;
    Get "/listings/{id}" "One listing", Optional, false, 200 => listings::get;
    Patch "/listings/{id}" "Change a listing", Bearer, true, 200 => listings::patch;
    Delete "/listings/{id}" "Delete a listing", Bearer, false, 204 => listings::delete;
    Post "/listings/{id}/publish" "Publish a listing", Bearer, false, 200 => listings::publish;
    Post "/listings/{id}/unpublish" "Unpublish a listing", Bearer, false, 200 => listings::unpublish;
    Get "/cart" "The caller's cart", Bearer, false, 200 => cart::get;
    Post "/cart/items" "Add a published listing to the cart", Bearer, true, 201 => cart::add;
    Delete "/cart/items/{listing_id}" "Remove a listing from the cart", Bearer, false, 200 => cart::remove;
    Post "/cart/checkout" "Check out the cart for a window", Bearer, true, 201 => cart::checkout;
    Post "/payments" "Pay a checked-out cart", Bearer, true, 200 => payments::pay;
    Get "/tours" "Tours the caller may see (status, payment_id)", Bearer, false, 200 => tours::list;
    Get "/tours/{id}" "One tour with its history", Bearer, false, 200 => tours::get;
    Put "/realtors/me" "Set the caller's realtor profile", Bearer, true, 200 => realtors::put_me;
    Patch "/realtors/me/status" "Set the caller's availability status", Bearer, true, 200 => realtors::status_me;
    Put "/realtors/{id}" "Set a realtor's profile (admin)", Bearer, true, 200 => realtors::put_one;
    Patch "/realtors/{id}/status" "Set a realtor's status (admin)", Bearer, true, 200 => realtors::status_one;
    Patch "/tours/{id}" "Reschedule a tour", Bearer, true, 200 => actions::reschedule;
    Delete "/tours/{id}" "Cancel a tour", Bearer, false, 200 => actions::cancel;
    Post "/tours/{id}/accept" "Accept an assigned tour", Bearer, false, 200 => actions::accept;
    Post "/tours/{id}/decline" "Decline an assigned tour", Bearer, false, 200 => actions::decline;
    Post "/tours/{id}/start" "Start an accepted tour", Bearer, false, 200 => actions::start;
    Post "/tours/{id}/complete" "Complete a tour", Bearer, false, 200 => actions::complete;
    Get "/availability" "Realtors available at a place and window (admin)", Bearer, false, 200 => actions::availability;
    Get "/assignments" "Assignments (realtor_id, cell, from, to, status)", Bearer, false, 200 => assignments::list;
    Get "/assignments/stats" "Tours per H3 cell", Bearer, false, 200 => assignments::stats;
    Get "/assignments/{tour_id}/explain" "Why this realtor", Bearer, false, 200 => assignments::explain;
}

/// Registers every endpoint on an app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for endpoint in endpoints() {
        cfg.route(endpoint.path, (endpoint.route)());
    }
}

/// The OpenAPI document of [`endpoints`].
#[must_use]
pub fn openapi() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for e in endpoints() {
        let mut op = OperationBuilder::new()
            .summary(Some(e.summary))
            .operation_id(Some(format!(
                "{}{}",
                method_name(&e.method),
                e.path.replace(['/', '{', '}', '.'], "_")
            )))
            .response(
                e.ok.to_string(),
                ResponseBuilder::new().description("success").build(),
            )
            .response(
                "default",
                ResponseBuilder::new()
                    .description("error: {\"error\": {\"code\", \"message\"}}")
                    .build(),
            );
        if e.body {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", ContentBuilder::new().build())
                    .required(Some(utoipa::openapi::Required::True))
                    .build(),
            ));
        }
        match e.auth {
            Auth::Public => {}
            Auth::Bearer => {
                op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
            }
            Auth::Optional => {
                op = op
                    .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
                    .security(SecurityRequirement::default());
            }
        }
        paths = paths.path(e.path, PathItem::new(e.method, op.build()));
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Tourwise")
                .version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .paths(paths.build())
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    "bearer",
                    SecurityScheme::Http(
                        HttpBuilder::new()
                            .scheme(HttpAuthScheme::Bearer)
                            .bearer_format("JWT")
                            .build(),
                    ),
                )
                .build(),
        ))
        .build()
}

/// `GET /openapi.json`.
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(openapi())
}
