//! The whole booking flow through HTTP only, on SQLite and on PostgreSQL.

use actors::bus::topics;
use actors::payments::{decode, PaymentEvent};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{spawn_with, window, Db};

async fn flow(db: Db) {
    let app = spawn_with(db, &[]).await;
    let (_, provider) = app.register("provider").await;
    let (customer_id, customer) = app.register("customer").await;
    let admin = app.admin().await;

    // The provider lists three places in Lisbon and one in Porto; one stays a draft.
    let a = app.published_listing(&provider, 38.7223, -9.1393).await;
    let b = app.published_listing(&provider, 38.7250, -9.1500).await;
    let porto = app.published_listing(&provider, 41.1579, -8.6291).await;
    let (status, draft) = app
        .call(
            Method::POST,
            "/listings",
            Some(&provider),
            Some(json!({"title": "Secret loft", "address": "Rua X", "location": {"lat": 38.72, "lng": -9.14}, "price_cents": 9000})),
        )
        .await;
    assert_eq!(
        (status, draft["status"].as_str()),
        (StatusCode::CREATED, Some("draft"))
    );

    // Search: near Lisbon finds a and b, not Porto, not the draft (anonymous).
    let (status, near) = app
        .call(
            Method::GET,
            "/listings?near=38.7223,-9.1393&radius_km=5",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = near["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&a.as_str()) && ids.contains(&b.as_str()),
        "{near}"
    );
    assert!(!ids.contains(&porto.as_str()) && !ids.contains(&draft["id"].as_str().unwrap()));
    // The owner sees the draft; `q` searches title and address.
    let (_, mine) = app
        .call(Method::GET, "/listings?q=secret", Some(&provider), None)
        .await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1, "{mine}");
    let (_, theirs) = app
        .call(Method::GET, "/listings?q=secret", Some(&customer), None)
        .await;
    assert!(theirs["items"].as_array().unwrap().is_empty());
    // Pagination walks every published listing exactly once.
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/listings?limit=2&cursor={c}"),
            None => "/listings?limit=2".into(),
        };
        let (status, page) = app.call(Method::GET, &path, None, None).await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3);

    // The customer fills the cart, checks out, is declined once, then pays.
    for listing in [&a, &b] {
        let (status, _) = app
            .call(
                Method::POST,
                "/cart/items",
                Some(&customer),
                Some(json!({"listing_id": listing})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, cart) = app.call(Method::GET, "/cart", Some(&customer), None).await;
    assert_eq!(
        (status, cart["total_cents"].as_i64()),
        (StatusCode::OK, Some(5000))
    );
    let (status, draft_add) = app
        .call(
            Method::POST,
            "/cart/items",
            Some(&customer),
            Some(json!({"listing_id": draft["id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{draft_add}");

    let checkout = |w| {
        app.call(
            Method::POST,
            "/cart/checkout",
            Some(&customer),
            Some(json!({"window": w})),
        )
    };
    let (status, declined) = checkout(window()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, answer) = app
        .call(
            Method::POST,
            "/payments",
            Some(&customer),
            Some(json!({"payment_id": declined["payment_id"], "card_token": "tok_declined"})),
        )
        .await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::OK, Some("declined"))
    );
    let (_, cart) = app.call(Method::GET, "/cart", Some(&customer), None).await;
    assert_eq!(
        cart["items"].as_array().unwrap().len(),
        2,
        "a declined payment keeps the cart"
    );

    let (status, payment) = checkout(window()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (payment["amount_cents"].as_i64(), payment["status"].as_str()),
        (Some(5000), Some("pending"))
    );
    let pay = json!({"payment_id": payment["payment_id"], "card_token": "tok_visa"});
    for _ in 0..2 {
        let (status, answer) = app
            .call(
                Method::POST,
                "/payments",
                Some(&customer),
                Some(pay.clone()),
            )
            .await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (StatusCode::OK, Some("succeeded"))
        );
    }
    // The first result stands: a later decline token changes nothing.
    let (_, again) = app
        .call(
            Method::POST,
            "/payments",
            Some(&customer),
            Some(json!({"payment_id": payment["payment_id"], "card_token": "tok_declined"})),
        )
        .await;
    assert_eq!(again["status"], "succeeded");
    let (_, cart) = app.call(Method::GET, "/cart", Some(&customer), None).await;
    assert!(cart["items"].as_array().unwrap().is_empty(), "{cart}");

    // Exactly one `payment.succeeded` went out, keyed by the payment, with the locations.
    let mut consumer = app
        .bus
        .consumer(topics::PAYMENTS, "flow-test")
        .await
        .unwrap();
    let message = consumer.next().await.unwrap();
    assert_eq!(message.key, payment["payment_id"].as_str().unwrap());
    let PaymentEvent::Succeeded(_, data) = decode(&message.payload).unwrap() else {
        panic!("payment.succeeded expected")
    };
    assert_eq!(data.customer_id.0, customer_id);
    assert_eq!(data.amount_cents, 5000);
    assert_eq!(data.listings.len(), 2);
    assert!((data.listings[0].location.lat() - 38.7223).abs() < 1e-9);
    let more = tokio::time::timeout(std::time::Duration::from_millis(200), consumer.next()).await;
    assert!(more.is_err(), "a second event was published");

    // Somebody else's payment is invisible.
    let (_, other) = app.register("customer").await;
    let (status, _) = app
        .call(Method::POST, "/payments", Some(&other), Some(pay.clone()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Reads keep working; the tour list is scoped to the customer.
    let path = format!(
        "/tours?payment_id={}",
        payment["payment_id"].as_str().unwrap()
    );
    let (status, tours) = app.call(Method::GET, &path, Some(&customer), None).await;
    assert_eq!(status, StatusCode::OK, "{tours}");
    for tour in tours["items"].as_array().unwrap() {
        assert_eq!(tour["customer_id"], customer_id.to_string());
    }
    let (status, metrics) = app.call(Method::GET, "/healthz", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{metrics}");
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "tourwise_http_requests_total{method=\"POST\",route=\"/payments\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(text.contains("tourwise_tours{status=\"pending\"}"));
    let (status, doc) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/iam/register",
        "/listings/{id}",
        "/cart/checkout",
        "/payments",
        "/tours/{id}",
        "/assignments/stats",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn booking_flow_on_sqlite() {
    flow(Db::Sqlite).await;
}

#[tokio::test]
async fn booking_flow_on_postgres() {
    flow(Db::Postgres).await;
}
