//! Every endpoint in one table: actix routes and the OpenAPI document are both built from it,
//! so the document covers every endpoint by construction.

pub mod actions;
pub mod assignments;
pub mod cart;
pub mod categories;
pub mod chat;
pub mod dashboard;
pub mod doc;
pub mod events;
pub mod iam;
pub mod listing_search;
pub mod listings;
pub mod media;
pub mod notifications;
pub mod password_reset;
pub mod payments;
pub mod realtors;
pub mod reviews;
pub mod tours;

use actix_web::{web, HttpResponse, Route};
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, PathItem, PathsBuilder,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Required,
    ResponseBuilder,
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
    /// The query parameters it reads (from the handler's `web::Query` type).
    pub query: fn() -> Vec<Parameter>,
    /// The request body's document (`None` without a body); registers its schemas.
    pub request: fn(&mut doc::Schemas) -> Option<doc::Body>,
    /// Success status.
    pub ok: u16,
    /// The success body's document (`None` when empty); registers its schemas.
    pub response: fn(&mut doc::Schemas) -> Option<doc::Body>,
    /// The handler.
    pub route: fn() -> Route,
}

impl Endpoint {
    /// Whether the endpoint reads a JSON body (required or optional).
    #[must_use]
    pub fn takes_body(&self) -> bool {
        (self.request)(&mut Vec::new()).is_some()
    }
}

/// `Method "/path" [Query]? "summary", Auth, request(Type?), status response(Type?) => handler;`
/// where `[Query]` is the handler's query type (`utoipa::IntoParams`), request is `none()`,
/// `json(T)` or `optional(T)` and response is `none()`, `json(T)`, `page(T)`, `array(T)`,
/// `sse(T)`, `text()` or `object()` (see [`doc`]).
macro_rules! endpoints {
    ($($method:ident $path:literal $([$query:ty])? $summary:literal, $auth:ident,
       $req:ident($($req_ty:ty)?), $ok:literal $resp:ident($($resp_ty:ty)?) => $handler:path;)*) => {
        /// Every endpoint of the API.
        #[must_use]
        pub fn endpoints() -> Vec<Endpoint> {
            vec![$(Endpoint {
                method: HttpMethod::$method,
                path: $path,
                summary: $summary,
                auth: Auth::$auth,
                query: query_parameters!($($query)?),
                request: |s| doc::$req::<$($req_ty)?>(s),
                ok: $ok,
                response: |s| doc::$resp::<$($resp_ty)?>(s),
                route: || route(HttpMethod::$method).to($handler),
            },)*]
        }
    };
}

/// The query parameters of an endpoint's query type, or none.
macro_rules! query_parameters {
    () => {
        Vec::new
    };
    ($query:ty) => {
        || <$query as utoipa::IntoParams>::into_params(|| Some(ParameterIn::Query))
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
    Get "/healthz" "Process alive", Public, none(), 200 json(doc::Health) => crate::server::healthz;
    Get "/readyz" "Dependencies reachable", Public, none(), 200 json(doc::Ready) => crate::server::readyz;
    Get "/metrics" "Prometheus metrics", Public, none(), 200 text() => metrics::metrics;
    Get "/openapi.json" "This document", Public, none(), 200 object() => openapi_json;
    Post "/iam/register" "Create an account", Public, json(iam::Register), 201 json(doc::User) => iam::register;
    Post "/iam/login" "Get an access token", Public, json(iam::Login), 200 json(doc::Token) => iam::login;
    Get "/iam/me" "The caller's account", Bearer, none(), 200 json(doc::User) => iam::me;
    Post "/iam/password-reset" "Email a password-reset link (always 202: no account enumeration)", Public, json(password_reset::ResetRequest), 202 object() => password_reset::request;
    Post "/iam/password-reset/confirm" "Set a new password with a reset token (single use, 30 minutes)", Public, json(password_reset::ResetConfirm), 200 object() => password_reset::confirm;
    Post "/listings" "Create a draft listing (provider, admin)", Bearer, json(listings::NewListing), 201 json(listings::Listing) => listings::create;
    Get "/listings" [listing_search::ListingQuery] "Search listings by category, place and text, sorted by distance, relevance or age (cached)", Optional, none(), 200 page(listings::Listing) => listing_search::list;
    Get "/listings/{id}" "One listing", Optional, none(), 200 json(listings::Listing) => listings::get;
    Patch "/listings/{id}" "Change a listing", Bearer, json(listings::ListingPatch), 200 json(listings::Listing) => listings::patch;
    Delete "/listings/{id}" "Delete a listing", Bearer, none(), 204 none() => listings::delete;
    Post "/listings/{id}/media" "Upload an image (JPEG, PNG, WebP; <= 10 MB) or MP4 video (<= 200 MB) of a listing (multipart part `file`)", Bearer, multipart(), 201 json(media::MediaRef) => media::upload_listing;
    Delete "/listings/{id}/media/{media_id}" "Delete a listing's image or video (owner, admin)", Bearer, none(), 204 none() => media::delete_listing_media;
    Delete "/media/{id}" "Delete an image, video or photo (its owner or an admin)", Bearer, none(), 204 none() => media::delete;
    Get "/media/{id}" "The bytes of an image or video (public; ETag, long-lived cache headers)", Public, none(), 200 binary() => media::get;
    Get "/media/{id}/thumbnail" "The JPEG thumbnail of an image (public)", Public, none(), 200 binary() => media::thumbnail;
    Put "/realtors/me/photo" "Set the caller's profile photo (realtor; multipart part `file`, an image <= 10 MB)", Bearer, multipart(), 200 json(media::MediaRef) => media::put_photo;
    Delete "/realtors/me/photo" "Remove the caller's profile photo", Bearer, none(), 204 none() => media::delete_photo;
    Post "/listings/{id}/publish" "Publish a listing", Bearer, none(), 200 json(listings::Listing) => listings::publish;
    Post "/listings/{id}/unpublish" "Unpublish a listing", Bearer, none(), 200 json(listings::Listing) => listings::unpublish;
    Get "/categories" [categories::CategoryQuery] "Listing categories (active ones; admins may add ?include_archived=true)", Optional, none(), 200 page(categories::Category) => categories::list;
    Post "/categories" "Create a category (admin)", Bearer, json(categories::CategoryName), 201 json(categories::Category) => categories::create;
    Patch "/categories/{id}" "Rename a category (admin)", Bearer, json(categories::CategoryName), 200 json(categories::Category) => categories::rename;
    Post "/categories/{id}/archive" "Archive a category: no new listings (admin)", Bearer, none(), 200 json(categories::Category) => categories::archive;
    Post "/categories/{id}/unarchive" "Take a category back into use (admin)", Bearer, none(), 200 json(categories::Category) => categories::unarchive;
    Get "/cart" "The caller's cart", Bearer, none(), 200 json(doc::Cart) => cart::get;
    Post "/cart/items" "Add a published listing to the cart", Bearer, json(cart::AddItem), 201 json(doc::Cart) => cart::add;
    Delete "/cart/items/{listing_id}" "Remove a listing from the cart", Bearer, none(), 200 json(doc::Cart) => cart::remove;
    Post "/cart/checkout" "Check out the cart for a window", Bearer, json(cart::Checkout), 201 json(doc::PaymentCreated) => cart::checkout;
    Post "/payments" "Pay a checked-out cart", Bearer, json(payments::Pay), 200 json(doc::PaymentResult) => payments::pay;
    Get "/tours" [tours::TourQuery] "Tours the caller may see", Bearer, none(), 200 page(doc::Tour) => tours::list;
    Get "/tours/{id}" "One tour with its history", Bearer, none(), 200 json(doc::Tour) => tours::get;
    Get "/tours/{id}/chat" [chat::ChatQuery] "WebSocket: chat between the tour's customer and realtor, and the realtor's live location while in_progress; ?after= resumes after a message id (token also as ?access_token=)", Bearer, none(), 101 none() => chat::connect;
    Get "/tours/{id}/messages" [chat::ChatQuery] "The tour's chat messages, oldest first (its customer and realtor only)", Bearer, none(), 200 page(crate::chat::ChatMessage) => chat::history;
    Post "/tours/{id}/messages" "Send a chat message without a socket (delivered live too)", Bearer, json(chat::NewMessage), 201 json(crate::chat::ChatMessage) => chat::post;
    Get "/tours/{id}/events" "Server-Sent Events: the tour, then one event per status change; ends after completed/cancelled (token also as ?access_token=)", Bearer, none(), 200 sse(doc::Tour) => events::stream;
    Put "/realtors/me" "Set the caller's realtor profile", Bearer, json(realtors::Profile), 200 json(doc::RealtorProfile) => realtors::put_me;
    Patch "/realtors/me/status" "Set the caller's availability status", Bearer, json(realtors::Status), 200 json(doc::RealtorState) => realtors::status_me;
    Put "/realtors/{id}" "Set a realtor's profile (admin)", Bearer, json(realtors::Profile), 200 json(doc::RealtorProfile) => realtors::put_one;
    Patch "/realtors/{id}/status" "Set a realtor's status (admin)", Bearer, json(realtors::Status), 200 json(doc::RealtorState) => realtors::status_one;
    Patch "/tours/{id}" "Reschedule a tour", Bearer, json(actions::Reschedule), 200 json(doc::Tour) => actions::reschedule;
    Delete "/tours/{id}" "Cancel a tour", Bearer, none(), 200 json(doc::Tour) => actions::cancel;
    Post "/tours/{id}/accept" "Accept an assigned tour", Bearer, none(), 200 json(doc::Tour) => actions::accept;
    Post "/tours/{id}/decline" "Decline an assigned tour", Bearer, none(), 200 json(doc::Tour) => actions::decline;
    Post "/tours/{id}/start" "Start an accepted tour", Bearer, none(), 200 json(doc::Tour) => actions::start;
    Post "/tours/{id}/complete" "Complete a tour", Bearer, none(), 200 json(doc::Tour) => actions::complete;
    Post "/tours/{id}/review" "Review the realtor of an own completed tour (customer, once)", Bearer, json(reviews::NewReview), 201 json(reviews::Review) => reviews::create;
    Get "/availability" [actions::AvailabilityQuery] "Realtors available at a place and window (admin)", Bearer, none(), 200 json(doc::AvailabilityList) => actions::availability;
    Get "/assignments" [assignments::AssignmentQuery] "Assignments", Bearer, none(), 200 page(doc::Tour) => assignments::list;
    Get "/assignments/events" "Server-Sent Events: every tour change, for the dashboard (admin; token also as ?access_token=)", Bearer, none(), 200 sse(doc::Tour) => dashboard::assignment_events;
    Get "/assignments/stats" [assignments::StatsQuery] "Tours per H3 cell of the first listing", Bearer, none(), 200 array(doc::CellStats) => assignments::stats;
    Get "/assignments/{tour_id}/explain" "Why this realtor", Bearer, none(), 200 json(doc::Explain) => assignments::explain;
    Get "/realtors/{id}" "A realtor's public profile with the mean rating", Optional, none(), 200 json(reviews::PublicRealtor) => reviews::profile;
    Get "/realtors/{id}/reviews" [reviews::ReviewQuery] "A realtor's visible reviews, newest first", Public, none(), 200 page(reviews::Review) => reviews::list;
    Get "/notifications" [notifications::NotificationQuery] "Emails and their delivery state (admin)", Bearer, none(), 200 page(notifications::Notification) => notifications::list;
    Delete "/reviews/{id}" [reviews::ModerationQuery] "Hide a review (admin moderation; reason in ?reason= or the body)", Bearer, optional(reviews::Moderation), 204 none() => reviews::moderate;
}

/// Registers every endpoint on an app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for endpoint in endpoints() {
        cfg.route(endpoint.path, (endpoint.route)());
    }
}

/// The `{name}` parameters of a path.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
}

/// The OpenAPI document of [`endpoints`]: every endpoint with its path parameters, request
/// body, success body and the common error body; schemas are components.
#[must_use]
pub fn openapi() -> OpenApi {
    let mut schemas: doc::Schemas = Vec::new();
    let error = doc::json::<doc::ErrorBody>(&mut schemas);
    let mut paths = PathsBuilder::new();
    for e in endpoints() {
        let mut success = ResponseBuilder::new().description("success");
        if let Some(body) = (e.response)(&mut schemas) {
            success = success.content(
                body.content_type,
                ContentBuilder::new().schema(Some(body.schema)).build(),
            );
        }
        let mut failure = ResponseBuilder::new()
            .description("error: {\"error\": {\"code\", \"message\"}} (CONTRACT 2)");
        if let Some(body) = &error {
            failure = failure.content(
                body.content_type,
                ContentBuilder::new()
                    .schema(Some(body.schema.clone()))
                    .build(),
            );
        }
        let mut op = OperationBuilder::new()
            .summary(Some(e.summary))
            .operation_id(Some(format!(
                "{}{}",
                method_name(&e.method),
                e.path.replace(['/', '{', '}', '.'], "_")
            )))
            .response(e.ok.to_string(), success.build())
            .response("default", failure.build());
        for name in path_parameters(e.path) {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
                    )),
            );
        }
        for parameter in (e.query)() {
            op = op.parameter(parameter);
        }
        if let Some(body) = (e.request)(&mut schemas) {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content(
                        body.content_type,
                        ContentBuilder::new().schema(Some(body.schema)).build(),
                    )
                    .required(Some(if body.required {
                        Required::True
                    } else {
                        Required::False
                    }))
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
                .schemas_from_iter(schemas)
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn document() -> Value {
        serde_json::to_value(openapi()).unwrap()
    }

    #[test]
    fn every_endpoint_is_in_the_document_with_its_bodies() {
        let doc = document();
        let endpoints = endpoints();
        let mut seen = std::collections::HashSet::new();
        for e in &endpoints {
            let method = method_name(&e.method);
            assert!(seen.insert((method, e.path)), "{method} {} twice", e.path);
            let op = &doc["paths"][e.path][method];
            assert!(op.is_object(), "{method} {} missing", e.path);
            assert!(
                op["responses"][e.ok.to_string()].is_object(),
                "{method} {}",
                e.path
            );
            assert!(
                op["responses"]["default"]["content"]["application/json"]["schema"].is_object(),
                "{method} {}: no error schema",
                e.path
            );
            if e.takes_body() {
                let content = op["requestBody"]["content"].as_object();
                let schema = content
                    .and_then(|c| c.values().next())
                    .map(|c| &c["schema"]);
                assert!(
                    schema.is_some_and(Value::is_object),
                    "{method} {}: a body without a request schema",
                    e.path
                );
            } else {
                assert!(op.get("requestBody").is_none(), "{method} {}", e.path);
            }
            // 204 No Content and 101 Switching Protocols carry no body by definition.
            if e.ok != 204 && e.ok != 101 {
                assert!(
                    op["responses"][e.ok.to_string()]["content"].is_object(),
                    "{method} {}: no response schema",
                    e.path
                );
            }
            for name in path_parameters(e.path) {
                let params = op["parameters"].as_array().unwrap();
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path"),
                    "{method} {}: parameter {name}",
                    e.path
                );
            }
        }
        let documented: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert!(documented >= endpoints.len());
    }

    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_schema_reference_resolves() {
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{r} does not resolve"
            );
        }
    }

    #[test]
    fn query_parameters_are_documented() {
        let doc = document();
        let names = |path: &str| -> Vec<String> {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect()
        };
        for (path, want) in [
            (
                "/listings",
                &[
                    "near",
                    "radius_km",
                    "q",
                    "category",
                    "sort",
                    "limit",
                    "cursor",
                ][..],
            ),
            ("/tours", &["status", "payment_id", "limit", "cursor"]),
            (
                "/availability",
                &["lat", "lng", "radius_km", "start", "end"],
            ),
            (
                "/assignments",
                &[
                    "realtor_id",
                    "cell",
                    "from",
                    "to",
                    "status",
                    "limit",
                    "cursor",
                ],
            ),
            ("/assignments/stats", &["resolution", "from", "to"]),
            ("/realtors/{id}/reviews", &["limit", "cursor"]),
        ] {
            assert_eq!(names(path), want, "{path}");
        }
        let availability = &doc["paths"]["/availability"]["get"]["parameters"];
        assert_eq!(availability[0]["required"], true, "lat is required");
        let tours = &doc["paths"]["/tours"]["get"]["parameters"];
        assert_ne!(tours[0]["required"], true, "status is optional");
    }

    #[test]
    fn request_schemas_name_their_fields() {
        let doc = document();
        let register = &doc["components"]["schemas"]["Register"];
        for field in ["email", "password", "name", "role"] {
            assert!(register["properties"][field].is_object(), "{register}");
        }
        let review = &doc["components"]["schemas"]["NewReview"];
        assert!(review["properties"]["rating"].is_object(), "{review}");
    }
}
