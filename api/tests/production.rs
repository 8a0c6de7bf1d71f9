//! The production mode end to end (issue #9): real PostgreSQL, real Redis, a real
//! Kafka-protocol broker (tansu), and `tourwise serve` started as a process with all three. A
//! booking goes through HTTP and more arrive as payment events produced from outside; then the
//! Redis availability view is checked against the database, flushed, and checked again after
//! it rebuilt itself; Redis is killed (the engine degrades: not ready, availability from the
//! actors, rate limits in process) and started again empty (the view comes back by itself).
//! Rate-limit counters are seen in Redis. The test runs its own `redis-server` on a free port,
//! so flushing and killing it disturbs nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{json, Value};
use uuid::Uuid;

mod common;
use common::{
    add_realtors, call, envelope, payment, produce, serve, start_broker, wait_for, FreshDb,
};

const REALTORS: usize = 12;
const KAFKA_PAYMENTS: usize = 60;
const ADMIN: (&str, &str) = ("admin@example.com", "admin-password");

/// A private `redis-server` on `port` (no persistence: a restart starts empty), killed on drop.
struct RedisServer {
    child: std::process::Child,
    port: u16,
}

impl RedisServer {
    async fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run uses it)");
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.connect().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn connect(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let mut conn = redis::Client::open(self.url())?
            .get_multiplexed_async_connection()
            .await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok(conn)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn ready(client: &reqwest::Client, base: &str) -> Value {
    let response = client.get(format!("{base}/readyz")).send().await.unwrap();
    response.json().await.unwrap()
}

/// What a realtor looks like: status and `(tour, start, end)` of bookings not yet ended.
type Availability = BTreeMap<String, (String, BTreeSet<(String, i64, i64)>)>;

/// The view as published in Redis under `prefix`, and the cell each realtor is in.
async fn view_in_redis(
    redis: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> (Availability, BTreeMap<String, String>) {
    let cells: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("{prefix}:availability:cells"))
        .query_async(redis)
        .await
        .unwrap();
    let (mut view, mut cell_of) = (Availability::new(), BTreeMap::new());
    for cell in cells {
        let entries: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(format!("{prefix}:availability:{cell}"))
            .query_async(redis)
            .await
            .unwrap();
        for (realtor, json) in entries {
            let entry: Value = serde_json::from_str(&json).unwrap();
            let bookings = entry["bookings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| {
                    let at = |k: &str| {
                        chrono::DateTime::parse_from_rfc3339(b[k].as_str().unwrap())
                            .unwrap()
                            .timestamp()
                    };
                    (
                        b["tour_id"].as_str().unwrap().to_owned(),
                        at("start"),
                        at("end"),
                    )
                })
                .collect();
            let status = entry["status"].as_str().unwrap().to_owned();
            assert!(
                cell_of.insert(realtor.clone(), cell.clone()).is_none(),
                "{realtor} is published in two cells"
            );
            view.insert(realtor, (status, bookings));
        }
    }
    (view, cell_of)
}

/// The same from the database (the source of truth), and each realtor's home cell.
async fn availability_in_db(db: &DatabaseConnection) -> (Availability, BTreeMap<String, String>) {
    let backend = db.get_database_backend();
    let realtors = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT user_id::text AS id, status, home_lat, home_lng FROM realtor_profiles",
        ))
        .await
        .unwrap();
    let (mut all, mut cell_of) = (Availability::new(), BTreeMap::new());
    for row in realtors {
        let id: String = row.try_get("", "id").unwrap();
        let lat: f64 = row.try_get("", "home_lat").unwrap();
        let lng: f64 = row.try_get("", "home_lng").unwrap();
        let cell = h3o::LatLng::new(lat, lng)
            .unwrap()
            .to_cell(h3o::Resolution::Five);
        cell_of.insert(id.clone(), cell.to_string());
        all.insert(
            id,
            (row.try_get("", "status").unwrap(), BTreeSet::default()),
        );
    }
    let bookings = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT realtor_id::text AS realtor, id::text AS tour, \
             extract(epoch FROM start_at)::bigint AS s, extract(epoch FROM end_at)::bigint AS e \
             FROM tours WHERE status IN ('assigned', 'accepted', 'in_progress') AND end_at > now()",
        ))
        .await
        .unwrap();
    for row in bookings {
        let realtor: String = row.try_get("", "realtor").unwrap();
        let booking = (
            row.try_get("", "tour").unwrap(),
            row.try_get("", "s").unwrap(),
            row.try_get("", "e").unwrap(),
        );
        all.get_mut(&realtor).unwrap().1.insert(booking);
    }
    (all, cell_of)
}

/// Waits until the Redis view equals the database (the view is written behind, batched).
async fn view_matches_db(
    db: &DatabaseConnection,
    redis: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
    what: &str,
) {
    let began = Instant::now();
    let deadline = began + Duration::from_secs(20);
    loop {
        let (want, home) = availability_in_db(db).await;
        let (got, cells) = view_in_redis(redis, prefix).await;
        if got == want {
            assert_eq!(cells, home, "{what}: every realtor is in their home cell");
            eprintln!(
                "view matched the database {what} within {:?}",
                began.elapsed()
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the Redis view\n{got:#?}\nis not the database's\n{want:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn login(client: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let body = json!({"email": email, "password": password});
    let login = call(
        client,
        reqwest::Method::POST,
        &format!("{base}/iam/login"),
        None,
        body,
    )
    .await;
    login["access_token"].as_str().unwrap().to_owned()
}

async fn account(client: &reqwest::Client, base: &str, email: &str, role: &str) -> String {
    let body = json!({"email": email, "password": "password1", "name": email, "role": role});
    let url = format!("{base}/iam/register");
    call(client, reqwest::Method::POST, &url, None, body).await;
    login(client, base, email, "password1").await
}

/// A customer books a tour through HTTP: listing, cart, checkout, payment. Returns the tour.
async fn book_through_http(client: &reqwest::Client, base: &str) -> Value {
    use reqwest::Method;
    let provider = account(client, base, "provider@example.com", "provider").await;
    let listing = call(
        client,
        Method::POST,
        &format!("{base}/listings"),
        Some(&provider),
        json!({"title": "T2 by the river", "address": "Rua Augusta 1, Lisboa",
               "location": {"lat": 38.71, "lng": -9.137}, "price_cents": 5000}),
    )
    .await;
    let id = listing["id"].as_str().unwrap();
    let publish = format!("{base}/listings/{id}/publish");
    call(client, Method::POST, &publish, Some(&provider), json!({})).await;
    let customer = account(client, base, "customer@example.com", "customer").await;
    let items = format!("{base}/cart/items");
    call(
        client,
        Method::POST,
        &items,
        Some(&customer),
        json!({"listing_id": id}),
    )
    .await;
    let start = (Utc::now() + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(9, 0, 0)
        .unwrap()
        .and_utc();
    let checkout = call(
        client,
        Method::POST,
        &format!("{base}/cart/checkout"),
        Some(&customer),
        json!({"window": {"start": start, "end": start + chrono::Duration::hours(9)}}),
    )
    .await;
    let pay = json!({"payment_id": checkout["payment_id"], "card_token": "tok_visa"});
    let paid = call(
        client,
        Method::POST,
        &format!("{base}/payments"),
        Some(&customer),
        pay,
    )
    .await;
    assert_eq!(paid["status"], "succeeded");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tours = call(
            client,
            Method::GET,
            &format!("{base}/tours"),
            Some(&customer),
            json!({}),
        )
        .await;
        if let Some(tour) = tours["items"].as_array().unwrap().first() {
            if tour["status"] == "assigned" {
                return tour.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the paid tour was not assigned: {tours}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An assigned tour's id (one of the payment events').
async fn wait_for_assigned_tour(db: &DatabaseConnection) -> String {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id::text AS id FROM tours WHERE status = 'assigned' ORDER BY id LIMIT 1",
        ))
        .await
        .unwrap()
        .expect("an assigned tour");
    row.try_get("", "id").unwrap()
}

/// `GET /availability` (admin): the answer and which side gave it.
async fn availability(client: &reqwest::Client, base: &str, admin: &str) -> (Value, String) {
    let start = (Utc::now() + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(9, 0, 0)
        .unwrap()
        .and_utc();
    let end = start + chrono::Duration::hours(9);
    let response = client
        .get(format!("{base}/availability"))
        .query(&[
            ("lat", "38.71".to_owned()),
            ("lng", "-9.137".to_owned()),
            ("radius_km", "50".to_owned()),
            ("start", start.to_rfc3339()),
            ("end", end.to_rfc3339()),
        ])
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let source = response
        .headers()
        .get("x-availability-source")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.json().await.unwrap(), source)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_mode_end_to_end() {
    let broker = start_broker();
    let db = FreshDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let prefix = "tourwise";
    let redis_port = common::free_port();
    let redis_server = RedisServer::start(redis_port).await;
    let redis_url = redis_server.url();
    let server = serve(
        &db.url,
        &broker.addr,
        &dir.path().join("serve.log"),
        &[
            "--redis-url",
            &redis_url,
            "--admin-email",
            ADMIN.0,
            "--admin-password",
            ADMIN.1,
        ],
    );
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let mut redis = redis_server.connect().await.unwrap();
    let engine = sea_orm::Database::connect(&db.url).await.unwrap();

    // Every dependency is reported, and reachable.
    let all_up = json!({"ready": true, "dependencies": {"database": true, "engine": true, "kafka": true, "redis": true}});
    assert_eq!(ready(&client, &base).await, all_up);

    let mut rng = StdRng::seed_from_u64(9);
    add_realtors(&base, &mut rng, REALTORS).await;
    let tour = book_through_http(&client, &base).await;

    // Payments from outside the engine, some sent twice, through the broker.
    let payments: Vec<Value> = (0..KAFKA_PAYMENTS).map(|_| payment(&mut rng)).collect();
    let mut messages: Vec<(String, Vec<u8>)> = payments
        .iter()
        .chain(payments.iter().take(KAFKA_PAYMENTS / 4))
        .map(|p| (p["payment_id"].as_str().unwrap().to_owned(), envelope(p)))
        .collect();
    messages.push((Uuid::new_v4().to_string(), b"{not json".to_vec()));
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("enable.idempotence", "true")
        .set("batch.num.messages", "1")
        .create()
        .unwrap();
    produce(&producer, &messages).await;
    let all = i64::try_from(KAFKA_PAYMENTS + 1).unwrap();
    wait_for(
        &engine,
        "SELECT count(*) FROM tours",
        all,
        "one tour per payment",
        120,
    )
    .await;
    wait_for(
        &engine,
        "SELECT count(*) FROM tours WHERE status = 'pending'",
        0,
        "every tour matched",
        60,
    )
    .await;

    // Changes of every kind reach the view: a cancellation frees time, a status change.
    let admin = login(&client, &base, ADMIN.0, ADMIN.1).await;
    let id = tour["id"].as_str().unwrap();
    call(
        &client,
        reqwest::Method::DELETE,
        &format!("{base}/tours/{id}"),
        Some(&admin),
        json!({}),
    )
    .await;
    let (_, home) = availability_in_db(&engine).await;
    let away = home.keys().next().unwrap().clone();
    call(
        &client,
        reqwest::Method::PATCH,
        &format!("{base}/realtors/{away}/status"),
        Some(&admin),
        json!({"status": "unavailable"}),
    )
    .await;
    view_matches_db(&engine, &mut redis, prefix, "after the bookings").await;
    let (want, _) = availability_in_db(&engine).await;
    assert!(
        want.values().filter(|(_, b)| !b.is_empty()).count() > 1,
        "the check compares real bookings: {want:#?}"
    );

    // `/availability` answers from the view: every available realtor but the one away.
    let (before, source) = availability(&client, &base, &admin).await;
    assert_eq!(source, "redis");
    let listed: BTreeSet<&str> = before["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["realtor_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), REALTORS - 1, "{before}");
    assert!(!listed.contains(away.as_str()));

    // A flush of Redis: the view rebuilds itself.
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut redis)
        .await
        .unwrap();
    view_matches_db(&engine, &mut redis, prefix, "after a flush").await;
    let (after, source) = availability(&client, &base, &admin).await;
    assert_eq!((&after, source.as_str()), (&before, "redis"));

    // Redis dies: not ready, but bookings go on, `/availability` asks the actors (same
    // answer), logins are still limited (in process) and answered.
    drop(redis_server);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = ready(&client, &base).await;
        if now["dependencies"]["redis"] == false {
            assert_eq!(now["ready"], false);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still says Redis is up: {now}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (degraded, source) = availability(&client, &base, &admin).await;
    assert_eq!((&degraded, source.as_str()), (&before, "actors"));
    let second = wait_for_assigned_tour(&engine).await;
    call(
        &client,
        reqwest::Method::DELETE,
        &format!("{base}/tours/{second}"),
        Some(&admin),
        json!({}),
    )
    .await;
    let wrong = json!({"email": "customer@example.com", "password": "not-it"});
    let status = client
        .post(format!("{base}/iam/login"))
        .json(&wrong)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);

    // Redis is back, empty: the engine reconnects and writes the whole view again, with the
    // change it made while Redis was away.
    let redis_server = RedisServer::start(redis_port).await;
    let mut redis = redis_server.connect().await.unwrap();
    view_matches_db(&engine, &mut redis, prefix, "after Redis restarted").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while ready(&client, &base).await != all_up {
        assert!(
            Instant::now() < deadline,
            "/readyz not ready after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Rate-limit counters live in Redis: a failed login is counted there.
    let wrong = json!({"email": "customer@example.com", "password": "not-it"});
    let status = client
        .post(format!("{base}/iam/login"))
        .json(&wrong)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let failures: i64 = redis::cmd("ZCARD")
        .arg(format!(
            "{prefix}:ratelimit:login_failures:customer@example.com"
        ))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(failures, 1);

    drop(server);
    db.drop_now().await;
}
