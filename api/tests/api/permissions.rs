//! CONTRACT 3: every endpoint x every role (+ anonymous) gets exactly the expected status.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, window, App};

const ROLES: [&str; 5] = ["anonymous", "customer", "realtor", "provider", "admin"];

struct Actors {
    tokens: [Option<String>; 5],
    provider: String,
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
}

async fn prepare(app: &App, actors: &Actors, role: usize, setup: Setup) -> (String, Option<Uuid>) {
    match setup {
        Setup::None => (String::new(), None),
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
                return (l, Some(Uuid::new_v4()));
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
                return (l, None);
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
    let actors = Actors {
        tokens: [
            None,
            Some(customer),
            Some(realtor),
            Some(provider.clone()),
            Some(admin),
        ],
        provider,
    };
    let unknown = Uuid::new_v4();
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
    ];
    let mut failures = Vec::new();
    for (method, path, body, setup, expected) in &rows {
        for (role, want) in expected.iter().enumerate() {
            let (listing, payment) = prepare(&app, &actors, role, *setup).await;
            let payment = payment.map(|p| p.to_string()).unwrap_or_default();
            let path = path.replace("{L}", &listing);
            let body = body.as_ref().map(|b| {
                serde_json::from_str(
                    &b.to_string()
                        .replace("{L}", &listing)
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
