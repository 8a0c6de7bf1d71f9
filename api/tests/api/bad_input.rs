//! Bad input on every endpoint that takes a body: malformed JSON, wrong types, missing
//! fields -> 400 JSON; out-of-range values -> 422 JSON; never 500, and the server keeps serving.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, window};

/// (method, path, token, wrong types, out-of-range bodies)
type Case<'a> = (Method, &'a str, Option<&'a str>, Value, Vec<Value>);

#[tokio::test]
async fn every_body_endpoint_refuses_bad_input_with_json_errors() {
    let app = spawn_app().await;
    let (_, provider) = app.register("provider").await;
    let (_, customer) = app.register("customer").await;
    let (realtor_id, realtor) = app.register("realtor").await;
    let listing = app.published_listing(&provider, 38.72, -9.14).await;
    // A tour of the customer (unassignable: no realtor has a profile) to review.
    let payment = app.pay_for(&customer, &listing, window()).await;
    let tour = app.settled_tour(&customer, &payment).await;
    let review_path = format!("/tours/{}/review", tour["id"].as_str().unwrap());
    let messages_path = format!("/tours/{}/messages", tour["id"].as_str().unwrap());

    // (method, path, token, wrong types, out-of-range bodies)
    let listing_path = format!("/listings/{listing}");
    let admin = app.admin().await;
    let (_, category) = app
        .call(
            Method::POST,
            "/categories",
            Some(&admin),
            Some(json!({"name": "Flats"})),
        )
        .await;
    let category_path = format!("/categories/{}", category["id"].as_str().unwrap());
    let cases: Vec<Case<'_>> = vec![
        (
            Method::POST,
            "/iam/register",
            None,
            json!({"email": 1, "password": true, "name": [], "role": {}}),
            vec![
                json!({"email": "nope", "password": "password123", "name": "n", "role": "customer"}),
                json!({"email": "a@b.io", "password": "short", "name": "n", "role": "customer"}),
                json!({"email": "a@b.io", "password": "password123", "name": "n", "role": "admin"}),
                json!({"email": "a@b.io", "password": "password123", "name": "n", "role": "pilot"}),
            ],
        ),
        (
            Method::POST,
            "/iam/login",
            None,
            json!({"email": 5, "password": 6}),
            vec![],
        ),
        (
            Method::POST,
            "/iam/password-reset",
            None,
            json!({"email": 5}),
            vec![],
        ),
        (
            Method::POST,
            "/iam/password-reset/confirm",
            None,
            json!({"token": 1, "new_password": []}),
            vec![json!({"token": "abc", "new_password": "short"})],
        ),
        (
            Method::POST,
            "/listings",
            Some(&provider),
            json!({"title": 1, "address": "a", "location": {"lat": "x", "lng": 0}, "price_cents": "10"}),
            vec![
                json!({"title": "t", "address": "a", "location": {"lat": 91.0, "lng": 0.0}, "price_cents": 1}),
                json!({"title": "t", "address": "a", "location": {"lat": 0.0, "lng": 181.0}, "price_cents": 1}),
                json!({"title": "", "address": "a", "location": {"lat": 0.0, "lng": 0.0}, "price_cents": 1}),
                json!({"title": "t", "address": "a", "location": {"lat": 0.0, "lng": 0.0}, "price_cents": -1}),
            ],
        ),
        (
            Method::POST,
            "/categories",
            Some(&admin),
            json!({"name": 7}),
            vec![json!({"name": ""}), json!({"name": "x".repeat(101)})],
        ),
        (
            Method::PATCH,
            &category_path,
            Some(&admin),
            json!({"name": []}),
            vec![json!({"name": "   "})],
        ),
        (
            Method::PATCH,
            &listing_path,
            Some(&provider),
            json!({"price_cents": "cheap"}),
            vec![json!({"location": {"lat": -95.0, "lng": 0.0}})],
        ),
        (
            Method::PUT,
            "/realtors/me",
            Some(&realtor),
            json!({"home": {"lat": "north", "lng": 0}, "service_radius_km": "far", "time_zone": 1, "working_hours": {}}),
            vec![
                json!({"home": {"lat": 0.0, "lng": 0.0}, "service_radius_km": -1.0, "time_zone": "UTC", "working_hours": []}),
            ],
        ),
        (
            Method::PATCH,
            "/realtors/me/status",
            Some(&realtor),
            json!({"status": 1}),
            vec![json!({"status": "sleeping"})],
        ),
        (
            Method::POST,
            "/cart/items",
            Some(&customer),
            json!({"listing_id": 12}),
            vec![],
        ),
        (
            Method::POST,
            "/cart/checkout",
            Some(&customer),
            json!({"window": {"start": "yesterday", "end": 3}}),
            vec![
                // Empty cart first: 422 whatever the window.
                json!({"window": window()}),
            ],
        ),
        (
            Method::POST,
            "/payments",
            Some(&customer),
            json!({"payment_id": "not-a-uuid", "card_token": 1}),
            vec![json!({"payment_id": uuid::Uuid::new_v4(), "card_token": ""})],
        ),
        (
            Method::POST,
            &review_path,
            Some(&customer),
            json!({"rating": "five", "comment": 3}),
            vec![
                json!({"rating": 0, "comment": "x"}),
                json!({"rating": 6}),
                json!({"rating": -1, "comment": "x"}),
                json!({"rating": 3, "comment": "x".repeat(2001)}),
            ],
        ),
        (
            Method::POST,
            &messages_path,
            Some(&customer),
            json!({"body": 5}),
            vec![
                json!({"body": ""}),
                json!({"body": " \n "}),
                json!({"body": "x".repeat(2001)}),
            ],
        ),
    ];
    for (method, path, token, wrong_types, out_of_range) in cases {
        for raw in ["{\"a\":", "not json", "[1,2", ""] {
            let (status, body) = app.raw(method.clone(), path, token, raw).await;
            assert_error(status, &body, StatusCode::BAD_REQUEST);
        }
        let (status, body) = app
            .call(method.clone(), path, token, Some(wrong_types))
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
        if method == Method::POST {
            let (status, body) = app.call(method.clone(), path, token, Some(json!({}))).await;
            assert_error(status, &body, StatusCode::BAD_REQUEST);
        }
        for value in out_of_range {
            let (status, body) = app.call(method.clone(), path, token, Some(value)).await;
            assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
        }
    }

    // Windows: past, backwards, longer than 14 days -> 422 (with a non-empty cart).
    let (status, _) = app
        .call(
            Method::POST,
            "/cart/items",
            Some(&customer),
            Some(json!({"listing_id": listing})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let now = chrono::Utc::now();
    let at = |days: i64| (now + chrono::Duration::days(days)).to_rfc3339();
    for (start, end) in [
        (at(-3), at(-2)),
        (at(2), at(1)),
        (at(1), at(1)),
        (at(1), at(16)),
    ] {
        let (status, body) = app
            .call(
                Method::POST,
                "/cart/checkout",
                Some(&customer),
                Some(json!({"window": {"start": start, "end": end}})),
            )
            .await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Review moderation: the body is optional, but a present one must be right.
    let moderate = format!("/reviews/{}", uuid::Uuid::new_v4());
    for raw in [
        "{\"a\":",
        "not json",
        "[1,2",
        "{\"reason\": 5}",
        "{\"why\": \"x\"}",
    ] {
        let (status, body) = app.raw(Method::DELETE, &moderate, Some(&admin), raw).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
    let (status, body) = app
        .call(
            Method::DELETE,
            &moderate,
            Some(&admin),
            Some(json!({"reason": "r".repeat(501)})),
        )
        .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app
        .call(Method::DELETE, &moderate, Some(&admin), None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);

    // Bad query strings and unknown routes are JSON too.
    for path in [
        "/listings?near=abc".to_owned(),
        "/listings?limit=0".to_owned(),
        "/listings?cursor=zz".to_owned(),
        "/tours?status=flying".to_owned(),
        "/assignments?cell=nope".to_owned(),
        "/assignments/stats?resolution=16".to_owned(),
        format!("/realtors/{realtor_id}/reviews?limit=0"),
        format!("/realtors/{realtor_id}/reviews?cursor=zz"),
    ] {
        let (status, body) = app.call(Method::GET, &path, Some(&admin), None).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/realtors/{realtor_id}/reviews?limit=x"),
            None,
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let after = format!("{messages_path}?after=abc");
    let (status, body) = app.call(Method::GET, &after, Some(&customer), None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app
        .call(Method::GET, "/listings?limit=-1", None, None)
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app
        .call(Method::GET, "/listings/not-a-uuid", None, None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.call(Method::PUT, "/nowhere", None, None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);

    let (status, _) = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
}
