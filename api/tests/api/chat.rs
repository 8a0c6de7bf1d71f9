//! Chat and live location over the WebSocket (issue #10): who may join, delivery both ways,
//! the stored history, bad frames, limits, location with the ETA, and resuming after a
//! reconnect.

use futures::{SinkExt as _, StreamExt as _};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{assert_error, spawn_app, spawn_with, window, App, Db};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

const LISTING: (f64, f64) = (38.72, -9.14);
const HOME: (f64, f64) = (38.70, -9.10);

fn ws_url(app: &App, tour: &str, query: &str) -> String {
    format!(
        "{}/tours/{tour}/chat{query}",
        app.base.replace("http://", "ws://")
    )
}

/// Opens the socket with the token in the `Authorization` header.
async fn open(app: &App, tour: &str, token: &str, query: &str) -> Result<Socket, WsError> {
    let mut request = ws_url(app, tour, query).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// The HTTP status a refused upgrade answered with.
fn refused(result: Result<Socket, WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, the socket opened"),
    }
}

/// The next JSON text frame (pings are answered by the client library); 10 s at most.
async fn next(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .expect("a valid frame");
        match frame {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The next frame of `kind`, skipping others (status changes arrive as they happen).
async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let frame = next(socket).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// The next message frame as the HTTP API shows messages (without `type`).
async fn message(socket: &mut Socket) -> Value {
    let mut frame = next_of(socket, "message").await;
    frame.as_object_mut().unwrap().remove("type");
    frame
}

async fn say(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

struct Booked {
    tour: String,
    listing: String,
    customer: String,
    realtor: String,
    realtor_id: String,
}

/// One realtor, one listing, one tour assigned to that realtor.
async fn booked_tour(app: &App) -> Booked {
    let (realtor_id, realtor) = app.register("realtor").await;
    app.set_realtor(&realtor, HOME.0, HOME.1).await;
    let (_, provider) = app.register("provider").await;
    let listing = app.published_listing(&provider, LISTING.0, LISTING.1).await;
    let (_, customer) = app.register("customer").await;
    let payment = app.pay_for(&customer, &listing, window()).await;
    let tour = app.settled_tour(&customer, &payment).await;
    assert_eq!(tour["status"], "assigned", "{tour}");
    Booked {
        tour: tour["id"].as_str().unwrap().to_owned(),
        listing,
        customer,
        realtor,
        realtor_id: realtor_id.to_string(),
    }
}

#[tokio::test]
async fn only_the_customer_and_the_assigned_realtor_may_join_or_read() {
    let app = spawn_app().await;
    let b = booked_tour(&app).await;
    let (_, stranger) = app.register("customer").await;
    let (_, other_realtor) = app.register("realtor").await;
    let (_, provider) = app.register("provider").await;
    let admin = app.admin().await;
    for token in [&stranger, &other_realtor, &provider, &admin] {
        assert_eq!(refused(open(&app, &b.tour, token, "").await), 403);
        let path = format!("/tours/{}/messages", b.tour);
        let (status, body) = app.call(Method::GET, &path, Some(token), None).await;
        assert_error(status, &body, StatusCode::FORBIDDEN);
        let (status, body) = app
            .call(
                Method::POST,
                &path,
                Some(token),
                Some(json!({"body": "hi"})),
            )
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN);
    }
    // No token, a garbled one, an unknown tour, a tour id that is not a uuid.
    let plain = tokio_tungstenite::connect_async(ws_url(&app, &b.tour, "")).await;
    assert_eq!(refused(plain.map(|(s, _)| s)), 401);
    assert_eq!(refused(open(&app, &b.tour, "not-a-token", "").await), 401);
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(refused(open(&app, &unknown, &b.customer, "").await), 404);
    assert_eq!(
        refused(open(&app, "not-a-uuid", &b.customer, "").await),
        404
    );
    // A participant without the WebSocket handshake.
    let path = format!("/tours/{}/chat", b.tour);
    let (status, body) = app.call(Method::GET, &path, Some(&b.customer), None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    // The token may come as ?access_token= (browsers).
    let query = format!("?access_token={}", b.realtor);
    let url = ws_url(&app, &b.tour, &query);
    assert!(tokio_tungstenite::connect_async(url).await.is_ok());
    app.shutdown().await;
}

async fn chat_end_to_end(db: Db) {
    let app = spawn_with(db, &[]).await;
    let b = booked_tour(&app).await;
    let mut customer = open(&app, &b.tour, &b.customer, "").await.unwrap();
    let mut realtor = open(&app, &b.tour, &b.realtor, "").await.unwrap();

    // Both sides receive every message, with its stored id.
    say(
        &mut customer,
        json!({"type": "message", "body": "  Hello, I am at the door  "}),
    )
    .await;
    let first = message(&mut realtor).await;
    assert_eq!(first["body"], "Hello, I am at the door");
    assert_eq!(first["sender_role"], "customer");
    assert_eq!(first["tour_id"], b.tour.as_str());
    assert_eq!(message(&mut customer).await, first);
    say(
        &mut realtor,
        json!({"type": "message", "body": "On my way"}),
    )
    .await;
    let second = message(&mut customer).await;
    assert_eq!(second["sender_role"], "realtor");
    assert_eq!(second["sender_id"], b.realtor_id.as_str());
    assert!(second["id"].as_i64() > first["id"].as_i64());
    assert_eq!(message(&mut realtor).await, second);

    // Over HTTP too: sent, delivered live, paged in order.
    let path = format!("/tours/{}/messages", b.tour);
    let (status, third) = app
        .call(
            Method::POST,
            &path,
            Some(&b.realtor),
            Some(json!({"body": "Parking now"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{third}");
    assert_eq!(message(&mut customer).await, third);
    assert_eq!(message(&mut realtor).await, third);
    let (status, page) = app.call(Method::GET, &path, Some(&b.customer), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"], json!([first, second, third]));
    let (_, page) = app
        .call(
            Method::GET,
            &format!("{path}?limit=2"),
            Some(&b.realtor),
            None,
        )
        .await;
    assert_eq!(page["items"], json!([first, second]));
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .call(
            Method::GET,
            &format!("{path}?limit=2&cursor={cursor}"),
            Some(&b.realtor),
            None,
        )
        .await;
    assert_eq!(rest["items"], json!([third]));
    assert_eq!(rest["next_cursor"], Value::Null);
    let after = first["id"].as_i64().unwrap();
    let (_, later) = app
        .call(
            Method::GET,
            &format!("{path}?after={after}"),
            Some(&b.customer),
            None,
        )
        .await;
    assert_eq!(later["items"], json!([second, third]));

    // Bad frames get an error frame and lose nothing: the socket stays open.
    for (frame, code) in [
        ("{not json".to_owned(), "malformed_json"),
        (
            json!({"type": "shout", "body": "x"}).to_string(),
            "malformed_json",
        ),
        (json!({"type": "message"}).to_string(), "malformed_json"),
        (
            json!({"type": "message", "body": 5}).to_string(),
            "malformed_json",
        ),
        (
            json!({"type": "message", "body": "   "}).to_string(),
            "invalid",
        ),
        (
            json!({"type": "message", "body": "x".repeat(2001)}).to_string(),
            "invalid",
        ),
        (
            json!({"type": "location", "lat": 95.0, "lng": 0.0}).to_string(),
            "invalid",
        ),
    ] {
        customer
            .send(Message::Text(frame.clone().into()))
            .await
            .unwrap();
        let error = next_of(&mut customer, "error").await;
        assert_eq!(error["code"], code, "{frame}: {error}");
        assert!(error["message"].is_string());
    }
    customer
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(
        next_of(&mut customer, "error").await["code"],
        "unsupported_media_type"
    );
    // Locations: only the realtor, only while in_progress.
    say(
        &mut customer,
        json!({"type": "location", "lat": 38.7, "lng": -9.1}),
    )
    .await;
    assert_eq!(next_of(&mut customer, "error").await["code"], "forbidden");
    say(
        &mut realtor,
        json!({"type": "location", "lat": 38.7, "lng": -9.1}),
    )
    .await;
    assert_eq!(next_of(&mut realtor, "error").await["code"], "conflict");
    let (_, page) = app.call(Method::GET, &path, Some(&b.customer), None).await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        3,
        "refused frames stored nothing"
    );

    // The tour starts: the customer sees it, then the realtor's position and the ETA.
    app.drive(&b.realtor, &b.tour, &["accept", "start"]).await;
    loop {
        let status = next_of(&mut customer, "status").await;
        if status["status"] == "in_progress" {
            break;
        }
    }
    let (lat, lng) = (38.75, -9.14);
    say(
        &mut realtor,
        json!({"type": "location", "lat": lat, "lng": lng}),
    )
    .await;
    let location = next_of(&mut customer, "location").await;
    let here = engine::Location::new(lat, lng).unwrap();
    let there = engine::Location::new(LISTING.0, LISTING.1).unwrap();
    assert_eq!(location["next_listing_id"], b.listing.as_str());
    assert_eq!(location["reached"], 0);
    assert_eq!(
        location["eta_minutes"].as_i64().unwrap(),
        engine::geo::travel_minutes(&here, &there)
    );
    let km = location["distance_km"].as_f64().unwrap();
    assert!((km - engine::geo::distance_km(&here, &there)).abs() < 1e-9);
    assert_eq!(
        (location["lat"].as_f64(), location["lng"].as_f64()),
        (Some(lat), Some(lng))
    );

    // The customer leaves; what is said meanwhile waits for them; they resume after the last
    // message they saw and get the rest once, in order, then where the realtor is.
    let seen = third["id"].as_i64().unwrap();
    customer.close(None).await.unwrap();
    say(
        &mut realtor,
        json!({"type": "message", "body": "I can see the building"}),
    )
    .await;
    let fourth = message(&mut realtor).await;
    say(
        &mut realtor,
        json!({"type": "location", "lat": LISTING.0, "lng": LISTING.1}),
    )
    .await;
    let arrived = next_of(&mut realtor, "location").await;
    assert_eq!(
        (arrived["reached"].as_i64(), &arrived["next_listing_id"]),
        (Some(1), &Value::Null)
    );
    assert_eq!(arrived["eta_minutes"], 0);
    say(&mut realtor, json!({"type": "message", "body": "Here"})).await;
    let fifth = message(&mut realtor).await;
    let mut back = open(&app, &b.tour, &b.customer, &format!("?after={seen}"))
        .await
        .unwrap();
    assert_eq!(message(&mut back).await, fourth);
    assert_eq!(message(&mut back).await, fifth);
    assert_eq!(next(&mut back).await, arrived);

    // A frame over 16 KiB closes the socket with 1009 (message too big).
    let huge = json!({"type": "message", "body": "x".repeat(20_000)}).to_string();
    back.send(Message::Text(huge.into())).await.unwrap();
    let close = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), back.next())
            .await
            .expect("closed within 10 s")
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Size));
    app.shutdown().await;
}

#[tokio::test]
async fn chat_on_sqlite() {
    chat_end_to_end(Db::Sqlite).await;
}

#[tokio::test]
async fn chat_on_postgres() {
    chat_end_to_end(Db::Postgres).await;
}

#[tokio::test]
async fn messages_and_locations_are_rate_limited_per_sender() {
    let app = spawn_app().await;
    let b = booked_tour(&app).await;
    let mut customer = open(&app, &b.tour, &b.customer, "").await.unwrap();
    let mut stored = 0;
    let limited = loop {
        say(
            &mut customer,
            json!({"type": "message", "body": format!("m{stored}")}),
        )
        .await;
        let frame = next(&mut customer).await;
        if frame["type"] == "error" {
            break frame;
        }
        assert_eq!(frame["type"], "message", "{frame}");
        stored += 1;
        assert!(stored <= 30, "no limit after {stored} messages");
    };
    assert_eq!(stored, 30);
    assert_eq!(limited["code"], "rate_limited");
    assert!(limited["retry_after"].as_u64().unwrap() >= 1);
    // The other side is not limited by the customer's count.
    let path = format!("/tours/{}/messages", b.tour);
    let (status, _) = app
        .call(
            Method::POST,
            &path,
            Some(&b.realtor),
            Some(json!({"body": "ok"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app
        .call(
            Method::POST,
            &path,
            Some(&b.customer),
            Some(json!({"body": "more"})),
        )
        .await;
    assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS);

    app.drive(&b.realtor, &b.tour, &["accept", "start"]).await;
    // Joined after every message so far: no history replayed, only answers to the locations.
    let mut realtor = open(&app, &b.tour, &b.realtor, "?after=1000000000")
        .await
        .unwrap();
    let mut accepted = 0;
    let limited = loop {
        say(
            &mut realtor,
            json!({"type": "location", "lat": 38.7, "lng": -9.1}),
        )
        .await;
        let frame = next(&mut realtor).await;
        match frame["type"].as_str() {
            Some("location") => accepted += 1,
            Some("error") => break frame,
            _ => {}
        }
        assert!(accepted <= 10, "no location limit after {accepted}");
    };
    assert_eq!(accepted, 10);
    assert_eq!(limited["code"], "rate_limited");
    app.shutdown().await;
}
