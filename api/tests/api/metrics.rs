//! `/metrics` through HTTP: match latency is observed once per tour, by outcome.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{spawn_app, window, App};

async fn metrics(app: &App) -> String {
    let response = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// The value of a sample line `name{labels} value`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn wait_for(app: &App, series: &str, want: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = metrics(app).await;
        if sample(&text, series) == Some(want) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never reached {want}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn match_latency_is_a_histogram_by_outcome() {
    let app = spawn_app().await;
    let text = metrics(&app).await;
    assert!(
        text.contains("# TYPE tourwise_match_latency_seconds histogram"),
        "{text}"
    );
    let assigned = "tourwise_match_latency_seconds_count{outcome=\"assigned\"}";
    let unassignable = "tourwise_match_latency_seconds_count{outcome=\"unassignable\"}";
    assert_eq!(sample(&text, assigned), Some(0.0), "{text}");
    assert_eq!(sample(&text, unassignable), Some(0.0), "{text}");

    let (_, provider) = app.register("provider").await;
    let (_, realtor) = app.register("realtor").await;
    let (_, customer) = app.register("customer").await;
    let admin = app.admin().await;
    app.set_realtor(&realtor, 38.73, -9.14).await;
    let lisbon = app.published_listing(&provider, 38.7223, -9.1393).await;
    let tokyo = app.published_listing(&provider, 35.68, 139.69).await;

    let payment = app.pay_for(&customer, &lisbon, window()).await;
    let tour = app.settled_tour(&customer, &payment).await;
    assert_eq!(tour["status"], "assigned");
    wait_for(&app, assigned, 1.0).await;
    let payment = app.pay_for(&customer, &tokyo, window()).await;
    let tour = app.settled_tour(&customer, &payment).await;
    assert_eq!(tour["status"], "unassignable");
    let text = wait_for(&app, unassignable, 1.0).await;
    // Buckets are cumulative and end with +Inf = count.
    assert_eq!(
        sample(
            &text,
            "tourwise_match_latency_seconds_bucket{outcome=\"assigned\",le=\"+Inf\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "tourwise_match_latency_seconds_bucket{outcome=\"assigned\",le=\"30\"}"
        ),
        Some(1.0),
        "{text}"
    );

    // Working the tour (a decline re-matches) does not count as a first outcome again.
    let id = app
        .settled_tour(&customer, &app.pay_for(&customer, &lisbon, window()).await)
        .await;
    wait_for(&app, assigned, 2.0).await;
    let id = id["id"].as_str().unwrap().to_owned();
    app.drive(&admin, &id, &["decline"]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, tour) = app
            .call(
                reqwest::Method::GET,
                &format!("/tours/{id}"),
                Some(&admin),
                None,
            )
            .await;
        if tour["status"] == "unassignable" {
            break;
        }
        assert!(Instant::now() < deadline, "{tour}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give the metrics task a moment to see that change too.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = metrics(&app).await;
    assert_eq!(sample(&text, assigned), Some(2.0), "{text}");
    assert_eq!(sample(&text, unassignable), Some(1.0), "{text}");
}

#[tokio::test]
async fn pipeline_gauges_show_the_consumer_caught_up_and_events_published() {
    let app = spawn_app().await;
    let (_, provider) = app.register("provider").await;
    let (_, realtor) = app.register("realtor").await;
    let (_, customer) = app.register("customer").await;
    app.set_realtor(&realtor, 38.73, -9.14).await;
    let listing = app.published_listing(&provider, 38.7223, -9.1393).await;
    let payment = app.pay_for(&customer, &listing, window()).await;
    app.settled_tour(&customer, &payment).await;
    // The payment was consumed and committed: the lag (measured every 2 s) drains to 0.
    let text = wait_for(&app, "tourwise_consumer_lag{topic=\"payments\"}", 0.0).await;
    assert_eq!(
        sample(&text, "tourwise_payments_dead_lettered_total"),
        Some(0.0)
    );
    // Users, listings, the payment and the tour's changes went out through the outbox.
    let published = sample(&text, "tourwise_events_published_total").unwrap_or(0.0);
    assert!(published >= 5.0, "{text}");
}
