//! CONTRACT 3: every endpoint x every role (+ anonymous) gets exactly the expected status.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, window, App};

const ROLES: [&str; 5] = ["anonymous", "customer", "realtor", "provider", "admin"];

struct Actors {
    tokens: [Option<String>; 5],
    provider: String,
    /// A published listing near the guide, who takes every tour booked on it.
    guide_listing: String,
}

/// What `prepare` made: the values of `{L}`, `{P}`, `{T}` and `{V}`.
#[derive(Default)]
struct Prepared {
    listing: String,
    payment: Option<Uuid>,
    tour: String,
    review: String,
}

/// What one row needs prepared for the caller before the call.
#[derive(Clone, Copy)]
enum Setup {
    None,
    /// A fresh draft listing of the provider: `{L}` in the path.
    Listing,
    /// A published listing: `{L}`.
    Published,
    /// For a customer: `{L}` put in their cart first.
    InCart,
    /// For a customer: a checked-out cart, `{P}` in the body.
    Checkout,
    /// A completed tour of the customer: `{T}`.
    CompletedTour,
    /// A review of a completed tour by the customer: `{V}`.
    Review,
}

async fn prepare(app: &App, actors: &Actors, role: usize, setup: Setup) -> Prepared {
    let customer = actors.tokens[1].as_deref().unwrap();
    let admin = actors.tokens[4].as_deref().unwrap();
    let (listing, payment) = match setup {
        Setup::None => (String::new(), None),
        Setup::CompletedTour | Setup::Review => {
            let tour = app
                .completed_tour(customer, &actors.guide_listing, admin)
                .await;
            let mut review = String::new();
            if matches!(setup, Setup::Review) {
                let (s, v) = app
                    .call(
                        Method::POST,
                        &format!("/tours/{tour}/review"),
                        Some(customer),
                        Some(json!({"rating": 4, "comment": "fine"})),
                    )
                    .await;
                assert_eq!(s, StatusCode::CREATED, "{v}");
                review = v["id"].as_str().unwrap().to_owned();
            }
            return Prepared {
                tour,
                review,
                ..Prepared::default()
            };
        }
        Setup::Listing => {
            let (_, l) = app
                .call(
                    Method::POST,
                    "/listings",
                    Some(&actors.provider),
                    Some(json!({"title": "T", "address": "A", "location": {"lat": 1.0, "lng": 1.0}, "price_cents": 1})),
                )
                .await;
            (l["id"].as_str().unwrap().to_owned(), None)
        }
        Setup::Published => (
            app.published_listing(&actors.provider, 1.0, 1.0).await,
            None,
        ),
        Setup::InCart | Setup::Checkout => {
            let l = app.published_listing(&actors.provider, 1.0, 1.0).await;
            if role != 1 {
                return Prepared {
                    listing: l,
                    payment: Some(Uuid::new_v4()),
                    ..Prepared::default()
                };
            }
            let token = actors.tokens[1].as_deref();
            let (s, _) = app
                .call(
                    Method::POST,
                    "/cart/items",
                    token,
                    Some(json!({"listing_id": l})),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED);
            if matches!(setup, Setup::InCart) {
                return Prepared {
                    listing: l,
                    ..Prepared::default()
                };
            }
            let (s, p) = app
                .call(
                    Method::POST,
                    "/cart/checkout",
                    token,
                    Some(json!({"window": window()})),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{p}");
            (l, p["payment_id"].as_str().map(|p| p.parse().unwrap()))
        }
    };
    Prepared {
        listing,
        payment,
        ..Prepared::default()
    }
}

/// (method, path, body, setup, [anonymous, customer, realtor, provider, admin])
type Row = (Method, String, Option<Value>, Setup, [u16; 5]);

#[tokio::test]
async fn every_endpoint_answers_each_role_as_contract_3_says() {
    let app = spawn_app().await;
    let (_, customer) = app.register("customer").await;
    let (_, realtor) = app.register("realtor").await;
    let (_, provider) = app.register("provider").await;
    let admin = app.admin().await;
    // The guide takes the tours of `Setup::CompletedTour`, far from the realtor under test.
    let (guide_id, guide) = app.register("realtor").await;
    app.set_realtor(&guide, 10.0, 10.0).await;
    let guide_listing = app.published_listing(&provider, 10.001, 10.001).await;
    let actors = Actors {
        tokens: [
            None,
            Some(customer),
            Some(realtor),
            Some(provider.clone()),
            Some(admin),
        ],
        provider,
        guide_listing,
    };
    let unknown = Uuid::new_v4();
    let (s, category) = app
        .call(
            Method::POST,
            "/categories",
            actors.tokens[4].as_deref(),
            Some(json!({"name": "Flats"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{category}");
    let category = category["id"].as_str().unwrap().to_owned();
    let new_listing = json!({"title": "T", "address": "A", "location": {"lat": 1.0, "lng": 1.0}, "price_cents": 1});
    let profile = json!({"home": {"lat": 1.0, "lng": 1.0}, "service_radius_km": 10.0, "time_zone": "UTC",
                         "working_hours": [{"weekday": 1, "start": "09:00", "end": "17:00"}]});
    let availability = "/availability?lat=1&lng=1&radius_km=10&start=2030-01-01T09:00:00Z&end=2030-01-01T17:00:00Z".to_owned();
    // (method, path, body, setup, [anonymous, customer, realtor, provider, admin])
    let rows: Vec<Row> = vec![
        (Method::GET, "/healthz".into(), None, Setup::None, [200; 5]),
        (Method::GET, "/metrics".into(), None, Setup::None, [200; 5]),
        (
            Method::GET,
            "/openapi.json".into(),
            None,
            Setup::None,
            [200; 5],
        ),
        (
            Method::GET,
            "/iam/me".into(),
            None,
            Setup::None,
            [401, 200, 200, 200, 200],
        ),
        (
            Method::POST,
            "/iam/password-reset".into(),
            Some(json!({"email": "someone@example.com"})),
            Setup::None,
            [202; 5],
        ),
        (
            Method::POST,
            "/iam/password-reset/confirm".into(),
            Some(json!({"token": "not-a-token", "new_password": "long-enough"})),
            Setup::None,
            [422; 5],
        ),
        (
            Method::GET,
            "/notifications".into(),
            None,
            Setup::None,
            [401, 403, 403, 403, 200],
        ),
        // Media: reads are public; a realtor without a photo has none to delete.
        (
            Method::GET,
            format!("/media/{unknown}"),
            None,
            Setup::None,
            [404; 5],
        ),
        (
            Method::DELETE,
            "/realtors/me/photo".into(),
            None,
            Setup::None,
            [401, 403, 404, 403, 403],
        ),
        (
            Method::DELETE,
            format!("/listings/{{L}}/media/{unknown}"),
            None,
            Setup::Published,
            [401, 403, 403, 404, 404],
        ),
        (
            Method::GET,
            "/categories".into(),
            None,
            Setup::None,
            [200; 5],
        ),
        (
            Method::POST,
            "/categories".into(),
            Some(json!({"name": "Houses"})),
            Setup::None,
            [401, 403, 403, 403, 201],
        ),
        (
            Method::PATCH,
            format!("/categories/{category}"),
            Some(json!({"name": "Apartments"})),
            Setup::None,
            [401, 403, 403, 403, 200],
        ),
        (
            Method::POST,
            format!("/categories/{category}/archive"),
            None,
            Setup::None,
            [401, 403, 403, 403, 200],
        ),
        (
            Method::POST,
            format!("/categories/{category}/unarchive"),
            None,
            Setup::None,
            [401, 403, 403, 403, 200],
        ),
        (
            Method::POST,
            "/listings".into(),
            Some(new_listing.clone()),
            Setup::None,
            [401, 403, 403, 201, 201],
        ),
        (Method::GET, "/listings".into(), None, Setup::None, [200; 5]),
        (
            Method::GET,
            "/listings/{L}".into(),
            None,
            Setup::Published,
            [200; 5],
        ),
        // A draft is visible to its owner and admins only.
        (
            Method::GET,
            "/listings/{L}".into(),
            None,
            Setup::Listing,
            [404, 404, 404, 200, 200],
        ),
        (
            Method::PATCH,
            "/listings/{L}".into(),
            Some(json!({"title": "New"})),
            Setup::Listing,
            [401, 403, 403, 200, 200],
        ),
        (
            Method::POST,
            "/listings/{L}/publish".into(),
            None,
            Setup::Listing,
            [401, 403, 403, 200, 200],
        ),
        (
            Method::POST,
            "/listings/{L}/unpublish".into(),
            None,
            Setup::Published,
            [401, 403, 403, 200, 200],
        ),
        (
            Method::DELETE,
            "/listings/{L}".into(),
            None,
            Setup::Listing,
            [401, 403, 403, 204, 204],
        ),
        (
            Method::GET,
            "/cart".into(),
            None,
            Setup::None,
            [401, 200, 403, 403, 403],
        ),
        (
            Method::POST,
            "/cart/items".into(),
            Some(json!({"listing_id": "{L}"})),
            Setup::Published,
            [401, 201, 403, 403, 403],
        ),
        (
            Method::DELETE,
            "/cart/items/{L}".into(),
            None,
            Setup::InCart,
            [401, 200, 403, 403, 403],
        ),
        (
            Method::POST,
            "/cart/checkout".into(),
            Some(json!({"window": window()})),
            Setup::InCart,
            [401, 201, 403, 403, 403],
        ),
        (
            Method::POST,
            "/payments".into(),
            Some(json!({"payment_id": "{P}", "card_token": "tok_visa"})),
            Setup::Checkout,
            [401, 200, 403, 403, 403],
        ),
        (
            Method::GET,
            "/tours".into(),
            None,
            Setup::None,
            [401, 200, 200, 403, 200],
        ),
        (
            Method::GET,
            format!("/tours/{unknown}"),
            None,
            Setup::None,
            [401, 404, 404, 403, 404],
        ),
        (
            Method::PUT,
            "/realtors/me".into(),
            Some(profile),
            Setup::None,
            [401, 403, 200, 403, 404],
        ),
        (
            Method::PATCH,
            "/realtors/me/status".into(),
            Some(json!({"status": "available"})),
            Setup::None,
            [401, 403, 200, 403, 404],
        ),
        (
            Method::PATCH,
            format!("/tours/{unknown}"),
            Some(json!({"window": window()})),
            Setup::None,
            [401, 404, 403, 403, 404],
        ),
        (
            Method::DELETE,
            format!("/tours/{unknown}"),
            None,
            Setup::None,
            [401, 404, 403, 403, 404],
        ),
        (
            Method::POST,
            format!("/tours/{unknown}/accept"),
            None,
            Setup::None,
            [401, 403, 404, 403, 404],
        ),
        (
            Method::POST,
            format!("/tours/{unknown}/complete"),
            None,
            Setup::None,
            [401, 403, 404, 403, 404],
        ),
        (
            Method::GET,
            availability,
            None,
            Setup::None,
            [401, 403, 403, 403, 200],
        ),
        (
            Method::GET,
            "/assignments".into(),
            None,
            Setup::None,
            [401, 403, 200, 403, 200],
        ),
        (
            Method::GET,
            "/assignments/stats".into(),
            None,
            Setup::None,
            [401, 403, 403, 403, 200],
        ),
        (
            Method::GET,
            format!("/assignments/{unknown}/explain"),
            None,
            Setup::None,
            [401, 403, 403, 403, 404],
        ),
        // Reviews: the customer of a completed tour, once; admins moderate.
        (
            Method::POST,
            "/tours/{T}/review".into(),
            Some(json!({"rating": 5, "comment": "great"})),
            Setup::CompletedTour,
            [401, 201, 403, 403, 403],
        ),
        (
            Method::POST,
            format!("/tours/{unknown}/review"),
            Some(json!({"rating": 5, "comment": "great"})),
            Setup::None,
            [401, 404, 403, 403, 403],
        ),
        (
            Method::GET,
            format!("/realtors/{guide_id}"),
            None,
            Setup::None,
            [200; 5],
        ),
        (
            Method::GET,
            format!("/realtors/{unknown}"),
            None,
            Setup::None,
            [404; 5],
        ),
        (
            Method::GET,
            format!("/realtors/{guide_id}/reviews"),
            None,
            Setup::None,
            [200; 5],
        ),
        (
            Method::DELETE,
            "/reviews/{V}".into(),
            None,
            Setup::Review,
            [401, 403, 403, 403, 204],
        ),
        (
            Method::DELETE,
            format!("/reviews/{unknown}"),
            None,
            Setup::None,
            [401, 403, 403, 403, 404],
        ),
        // The event stream: as GET /tours/{id} (the realtor under test is not the guide).
        (
            Method::GET,
            "/tours/{T}/events".into(),
            None,
            Setup::CompletedTour,
            [401, 200, 404, 403, 200],
        ),
        // The chat: the tour's customer and its realtor only (the realtor under test is not
        // the guide); admins do not read it. Without the WebSocket handshake: 400.
        (
            Method::GET,
            "/tours/{T}/messages".into(),
            None,
            Setup::CompletedTour,
            [401, 200, 403, 403, 403],
        ),
        (
            Method::POST,
            "/tours/{T}/messages".into(),
            Some(json!({"body": "Thanks!"})),
            Setup::CompletedTour,
            [401, 201, 403, 403, 403],
        ),
        (
            Method::GET,
            format!("/tours/{unknown}/messages"),
            None,
            Setup::None,
            [401, 404, 404, 404, 404],
        ),
        (
            Method::GET,
            "/tours/{T}/chat".into(),
            None,
            Setup::CompletedTour,
            [401, 400, 403, 403, 403],
        ),
        (
            Method::GET,
            format!("/tours/{unknown}/events"),
            None,
            Setup::None,
            [401, 404, 404, 403, 404],
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, setup, expected) in &rows {
        for (role, want) in expected.iter().enumerate() {
            let prepared = prepare(&app, &actors, role, *setup).await;
            let payment = prepared.payment.map(|p| p.to_string()).unwrap_or_default();
            let path = path
                .replace("{L}", &prepared.listing)
                .replace("{T}", &prepared.tour)
                .replace("{V}", &prepared.review);
            let body = body.as_ref().map(|b| {
                serde_json::from_str(
                    &b.to_string()
                        .replace("{L}", &prepared.listing)
                        .replace("{P}", &payment),
                )
                .unwrap()
            });
            let (status, answer) = app
                .call(method.clone(), &path, actors.tokens[role].as_deref(), body)
                .await;
            if status.as_u16() != *want {
                failures.push(format!(
                    "{method} {path} as {}: {status} (want {want}) {answer}",
                    ROLES[role]
                ));
            }
            if status.as_u16() >= 400 {
                assert!(answer["error"]["code"].is_string(), "{answer}");
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn ownership_hides_other_providers_listings() {
    let app = spawn_app().await;
    let (_, mine) = app.register("provider").await;
    let (_, other) = app.register("provider").await;
    let listing = app.published_listing(&mine, 1.0, 1.0).await;
    for (method, path) in [
        (Method::PATCH, format!("/listings/{listing}")),
        (Method::POST, format!("/listings/{listing}/unpublish")),
        (Method::DELETE, format!("/listings/{listing}")),
    ] {
        let (status, _) = app
            .call(method, &path, Some(&other), Some(json!({"title": "x"})))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    // Still there and still published.
    let (status, l) = app
        .call(Method::GET, &format!("/listings/{listing}"), None, None)
        .await;
    assert_eq!(
        (status, l["status"].as_str()),
        (StatusCode::OK, Some("published"))
    );
}
