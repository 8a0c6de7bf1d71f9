//! Restart on the same database: accounts, tours (with their history) and realtors' calendars
//! survive, and new bookings respect the old ones (issue 6, "Restart on the same database").

use chrono::{DateTime, Duration, DurationRound as _, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{fresh_database, spawn_on, Db};

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

async fn restart(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, dir.path()).await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let email = |role: &str| format!("{role}-{run}@example.com");

    // First life: accounts, a realtor working all day, a listing, one tour booked and accepted.
    let app = spawn_on(&url, dir.path(), &[]).await;
    let (_, provider) = app.register_email(&email("provider"), "provider").await;
    let (realtor_id, realtor) = app.register_email(&email("realtor"), "realtor").await;
    let (customer_id, customer) = app.register_email(&email("customer"), "customer").await;
    app.set_realtor(&realtor, 38.73, -9.14).await;
    let listing = app.published_listing(&provider, 38.7223, -9.1393).await;
    // A one-hour window: room for two 30-minute visits of the one realtor.
    let start = (Utc::now() + Duration::days(2))
        .duration_trunc(Duration::hours(1))
        .unwrap();
    let window =
        json!({"start": start.to_rfc3339(), "end": (start + Duration::hours(1)).to_rfc3339()});
    let payment = app.pay_for(&customer, &listing, window.clone()).await;
    let tour = app.settled_tour(&customer, &payment).await;
    assert_eq!(tour["status"], "assigned", "{tour}");
    assert_eq!(tour["realtor_id"], realtor_id.to_string());
    let id = tour["id"].as_str().unwrap().to_owned();
    app.drive(&realtor, &id, &["accept"]).await;
    let path = format!("/tours/{id}");
    let (status, before) = app.call(Method::GET, &path, Some(&customer), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(before["status"], "accepted");
    let (_, profile_before) = app
        .call(Method::GET, &format!("/realtors/{realtor_id}"), None, None)
        .await;
    app.shutdown().await;

    // Second life on the same database.
    let app = spawn_on(&url, dir.path(), &[]).await;
    let customer = app.login(&email("customer"), "password123").await;
    let realtor = app.login(&email("realtor"), "password123").await;
    app.login(&email("provider"), "password123").await;
    let (status, me) = app
        .call(Method::GET, "/iam/me", Some(&customer), None)
        .await;
    assert_eq!(
        (status, me["id"].as_str()),
        (StatusCode::OK, Some(customer_id.to_string().as_str()))
    );
    let (status, after) = app.call(Method::GET, &path, Some(&customer), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after, before, "the tour changed across the restart");
    let (_, profile_after) = app
        .call(Method::GET, &format!("/realtors/{realtor_id}"), None, None)
        .await;
    assert_eq!(profile_after, profile_before);
    let (status, mine) = app.call(Method::GET, "/tours", Some(&realtor), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine["items"][0]["id"], id.as_str(), "{mine}");

    // The realtor's calendar survived: the same window now only has its second half free.
    let payment = app.pay_for(&customer, &listing, window.clone()).await;
    let second = app.settled_tour(&customer, &payment).await;
    assert_eq!(second["status"], "assigned", "{second}");
    assert_eq!(second["realtor_id"], realtor_id.to_string());
    assert!(
        at(&second["start"]) >= at(&before["end"]) || at(&second["end"]) <= at(&before["start"]),
        "overlap: {before} and {second}"
    );
    // And then nothing is left in it.
    let payment = app.pay_for(&customer, &listing, window).await;
    let third = app.settled_tour(&customer, &payment).await;
    assert_eq!(third["status"], "unassignable", "{third}");
    // The old tour still works.
    let worked = app.drive(&realtor, &id, &["start", "complete"]).await;
    assert_eq!(worked["status"], "completed");
    app.shutdown().await;
}

#[tokio::test]
async fn restart_on_the_same_sqlite_file() {
    restart(Db::Sqlite).await;
}

#[tokio::test]
async fn restart_on_the_same_postgres_database() {
    restart(Db::Postgres).await;
}
