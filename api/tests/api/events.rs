//! `GET /tours/{id}/events` through HTTP: the current tour first, then one event per status
//! change, in order; the stream ends after a terminal status.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{assert_error, spawn_app, window, App};

/// Reads Server-Sent Events off a streaming response.
pub struct Events {
    pub response: reqwest::Response,
    pub buffer: String,
}

impl Events {
    async fn open(app: &App, path: &str, bearer: Option<&str>) -> reqwest::Response {
        let mut req = app.client.get(format!("{}{path}", app.base));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap()
    }

    /// The next `data:` payload; `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(at) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..at + 2).collect();
                let data: Vec<&str> = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                if data.is_empty() {
                    continue; // a comment (keep-alive)
                }
                assert_eq!(data.len(), 1, "one data line per event: {block:?}");
                return Some(serde_json::from_str(data[0]).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.response.chunk())
                .await
                .expect("no event within 30 s")
                .unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test]
async fn a_tour_streams_its_status_changes_until_it_completes() {
    let app = spawn_app().await;
    let (_, provider) = app.register("provider").await;
    let (_, realtor) = app.register("realtor").await;
    let (_, customer) = app.register("customer").await;
    let (_, other) = app.register("customer").await;
    let admin = app.admin().await;
    app.set_realtor(&realtor, 38.73, -9.14).await;
    let listing = app.published_listing(&provider, 38.7223, -9.1393).await;
    let payment = app.pay_for(&customer, &listing, window()).await;
    let tour = app.settled_tour(&customer, &payment).await;
    assert_eq!(tour["status"], "assigned", "{tour}");
    let id = tour["id"].as_str().unwrap().to_owned();
    let path = format!("/tours/{id}/events");

    // Same visibility as GET /tours/{id}; errors are JSON.
    for (token, want) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(&other), StatusCode::NOT_FOUND),
        (Some(&provider), StatusCode::FORBIDDEN),
        (Some(&admin), StatusCode::OK),
    ] {
        let response = Events::open(&app, &path, token.map(String::as_str)).await;
        assert_eq!(response.status(), want, "{token:?}");
        if want != StatusCode::OK {
            let body: Value = response.json().await.unwrap();
            assert_error(want, &body, want);
        }
    }
    let unknown = Events::open(
        &app,
        &format!("/tours/{}/events", Uuid::new_v4()),
        Some(&admin),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    // A bad token in the query is refused like a bad header.
    let bad = Events::open(&app, &format!("{path}?access_token=nope"), None).await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);

    // The customer follows with the token in the query (as EventSource must).
    let response = Events::open(&app, &format!("{path}?access_token={customer}"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut events = Events {
        response,
        buffer: String::new(),
    };
    let first = events.next().await.unwrap();
    assert_eq!(
        (first["id"].as_str(), first["status"].as_str()),
        (Some(id.as_str()), Some("assigned"))
    );
    assert!(first["history"].is_array(), "{first}");

    for (action, status) in [
        ("accept", "accepted"),
        ("start", "in_progress"),
        ("complete", "completed"),
    ] {
        app.drive(&realtor, &id, &[action]).await;
        let event = events.next().await.unwrap();
        assert_eq!(event["status"], status, "{event}");
        assert_eq!(event["id"], id.as_str());
    }
    let last_history = events_history_last(&app, &customer, &id).await;
    assert_eq!(last_history, "completed");
    // Completed is terminal: the stream ends.
    assert!(events.next().await.is_none());

    // A finished tour sends itself once, then the stream ends.
    let response = Events::open(&app, &path, Some(&customer)).await;
    let mut events = Events {
        response,
        buffer: String::new(),
    };
    assert_eq!(events.next().await.unwrap()["status"], "completed");
    assert!(events.next().await.is_none());

    // A cancelled tour ends its stream too.
    let payment = app.pay_for(&customer, &listing, window()).await;
    let tour = app.settled_tour(&customer, &payment).await;
    let id = tour["id"].as_str().unwrap().to_owned();
    let response = Events::open(&app, &format!("/tours/{id}/events"), Some(&customer)).await;
    let mut events = Events {
        response,
        buffer: String::new(),
    };
    assert_eq!(events.next().await.unwrap()["status"], "assigned");
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/tours/{id}"),
            Some(&customer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(events.next().await.unwrap()["status"], "cancelled");
    assert!(events.next().await.is_none());
}

async fn events_history_last(app: &App, token: &str, id: &str) -> String {
    let (_, tour) = app
        .call(Method::GET, &format!("/tours/{id}"), Some(token), None)
        .await;
    tour["history"].as_array().unwrap().last().unwrap()["status"]
        .as_str()
        .unwrap()
        .to_owned()
}
