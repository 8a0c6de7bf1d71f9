//! Phase 2 through HTTP only: a realtor sets a profile, a customer pays, the engine assigns
//! the tour, the realtor works it; admins see assignments, explanations and availability.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_with, window, App, Db};

async fn poll_tour(app: &App, token: &str, payment: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, tours) = app
            .call(
                Method::GET,
                &format!("/tours?payment_id={payment}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{tours}");
        if let Some(tour) = tours["items"].as_array().and_then(|t| t.first()) {
            if tour["status"] != "pending" {
                return tour.clone();
            }
        }
        assert!(Instant::now() < deadline, "no assignment in time: {tours}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn booking(db: Db) {
    let app = spawn_with(db, &[]).await;
    let (_, provider) = app.register("provider").await;
    let (realtor_id, realtor) = app.register("realtor").await;
    let (_, customer) = app.register("customer").await;
    let admin = app.admin().await;

    let hours: Vec<Value> = (1..=7)
        .map(|d| json!({"weekday": d, "start": "00:00", "end": "24:00"}))
        .collect();
    let profile = json!({"home": {"lat": 38.73, "lng": -9.14}, "service_radius_km": 50.0,
                         "time_zone": "Europe/Lisbon", "working_hours": hours});
    for (bad, why) in [
        (json!({"home": {"lat": 91.0, "lng": 0.0}}), "lat"),
        (json!({"service_radius_km": 0.0}), "radius"),
        (json!({"service_radius_km": 201.0}), "radius"),
        (json!({"time_zone": "Mars/Olympus"}), "zone"),
        (
            json!({"working_hours": [{"weekday": 1, "start": "10:00", "end": "09:00"}]}),
            "hours",
        ),
    ] {
        let mut body = profile.clone();
        for (k, v) in bad.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = app
            .call(Method::PUT, "/realtors/me", Some(&realtor), Some(body))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {answer}");
    }
    let (status, answer) = app
        .call(
            Method::PUT,
            "/realtors/me",
            Some(&customer),
            Some(profile.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, answer) = app
        .call(
            Method::PUT,
            "/realtors/me",
            Some(&realtor),
            Some(profile.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = app
        .call(
            Method::PATCH,
            "/realtors/me/status",
            Some(&realtor),
            Some(json!({"status": "available"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let listing = app.published_listing(&provider, 38.7223, -9.1393).await;
    let (status, _) = app
        .call(
            Method::POST,
            "/cart/items",
            Some(&customer),
            Some(json!({"listing_id": listing})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, payment) = app
        .call(
            Method::POST,
            "/cart/checkout",
            Some(&customer),
            Some(json!({"window": window()})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let payment_id = payment["payment_id"].as_str().unwrap().to_owned();
    let (status, paid) = app
        .call(
            Method::POST,
            "/payments",
            Some(&customer),
            Some(json!({"payment_id": payment_id, "card_token": "tok_visa"})),
        )
        .await;
    assert_eq!(
        (status, paid["status"].as_str()),
        (StatusCode::OK, Some("succeeded"))
    );

    let tour = poll_tour(&app, &customer, &payment_id).await;
    assert_eq!(tour["status"], "assigned", "{tour}");
    assert_eq!(tour["realtor_id"], realtor_id.to_string());
    let id = tour["id"].as_str().unwrap().to_owned();

    // Only the assigned realtor (or an admin) works the tour; illegal moves are 409.
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/tours/{id}/accept"),
            Some(&customer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/tours/{id}/complete"),
            Some(&realtor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, accepted) = app
        .call(
            Method::POST,
            &format!("/tours/{id}/accept"),
            Some(&realtor),
            None,
        )
        .await;
    assert_eq!(
        (status, accepted["status"].as_str()),
        (StatusCode::OK, Some("accepted")),
        "{accepted}"
    );

    // Admin views.
    let cell = h3o::LatLng::new(38.7223, -9.1393)
        .unwrap()
        .to_cell(h3o::Resolution::Seven)
        .to_string();
    let (status, found) = app
        .call(
            Method::GET,
            &format!("/assignments?cell={cell}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["items"][0]["id"], id.as_str(), "{found}");
    let (status, explain) = app
        .call(
            Method::GET,
            &format!("/assignments/{id}/explain"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(explain["explanation"].is_object(), "{explain}");
    let (status, stats) = app
        .call(
            Method::GET,
            "/assignments/stats?resolution=7",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (status, stats[0]["cell"].as_str()),
        (StatusCode::OK, Some(cell.as_str())),
        "{stats}"
    );
    let w = window();
    let path = format!(
        "/availability?lat=38.72&lng=-9.14&radius_km=30&start={}&end={}",
        w["start"].as_str().unwrap().replace('+', "%2B"),
        w["end"].as_str().unwrap().replace('+', "%2B")
    );
    let (status, avail) = app.call(Method::GET, &path, Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{avail}");
    let (status, _) = app.call(Method::GET, &path, Some(&realtor), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The customer cancels; the history shows every step.
    let (status, cancelled) = app
        .call(
            Method::DELETE,
            &format!("/tours/{id}"),
            Some(&customer),
            None,
        )
        .await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{cancelled}"
    );
    let (_, tour) = app
        .call(Method::GET, &format!("/tours/{id}"), Some(&customer), None)
        .await;
    let steps: Vec<&str> = tour["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(steps.first(), Some(&"pending"), "{tour}");
    assert_eq!(steps.last(), Some(&"cancelled"), "{tour}");
}

#[tokio::test]
async fn tours_are_assigned_and_worked_on_sqlite() {
    booking(Db::Sqlite).await;
}

#[tokio::test]
async fn tours_are_assigned_and_worked_on_postgres() {
    booking(Db::Postgres).await;
}
