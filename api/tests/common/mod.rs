//! What the tests that start `tourwise serve` as a process share: a tansu broker, a fresh
//! PostgreSQL database, the process itself, HTTP calls, payment events.
#![allow(dead_code)] // each test binary uses its own part

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::Rng;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{json, Value};
use uuid::Uuid;

mod topics;
#[allow(unused_imports)] // each test binary uses its own part, as above
pub use topics::*;

/// A tansu broker on a free loopback port, killed on drop.
pub struct Broker {
    child: Child,
    pub addr: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tool `cargo install` put in `~/.cargo/bin` (where .ci/run installs it), else from PATH.
pub fn cargo_tool(name: &str) -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo_bin = format!("{home}/.cargo/bin/{name}");
    if Path::new(&cargo_bin).exists() {
        cargo_bin
    } else {
        name.to_owned()
    }
}

pub fn start_broker() -> Broker {
    start_broker_on(free_port(), "memory://tansu/", Path::new("."))
}

/// tansu on `port` keeping its topics, groups and offsets in `storage`, run in `dir`:
/// `memory://tansu/` (lost when it stops) or `sqlite://tansu.db` (the file `dir/tansu.db`,
/// which survives a restart).
pub fn start_broker_on(port: u16, storage: &str, dir: &Path) -> Broker {
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(cargo_tool("tansu"))
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", storage])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "tansu must be installed (`cargo install tansu --features dynostore,libsql`; .ci/run does it)",
        );
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "tansu did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Broker { child, addr }
}

/// A child process killed on drop.
pub struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `s3s-fs` serving `root` with one bucket (the folder `root/bucket`): the process and its
/// endpoint URL (keys `tourwise` / `tourwise-secret`).
pub fn start_s3(root: &Path, bucket: &str) -> (Killed, String) {
    std::fs::create_dir_all(root.join(bucket)).unwrap();
    let port = free_port();
    let child = Command::new(cargo_tool("s3s-fs"))
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", "tourwise", "--secret-key", "tourwise-secret"])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("s3s-fs must be installed (`cargo install s3s-fs --version 0.14.1 --features binary`; .ci/run does it)");
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "s3s-fs did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Killed(child), format!("http://{addr}"))
}

/// A fresh PostgreSQL database, dropped on [`FreshDb::drop_now`].
pub struct FreshDb {
    admin: DatabaseConnection,
    name: String,
    pub url: String,
}

impl FreshDb {
    pub async fn create() -> Self {
        let server = std::env::var("TOURWISE_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
        let admin = sea_orm::Database::connect(format!("{server}/postgres"))
            .await
            .expect("PostgreSQL at 127.0.0.1:5432");
        let name = format!("tw_e2e_{}", Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        Self {
            admin,
            url: format!("{server}/{name}"),
            name,
        }
    }

    pub async fn drop_now(self) {
        let _ = self
            .admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

/// `tourwise serve` with Kafka; SIGKILLed on drop.
pub struct Serve {
    pub child: Child,
    pub base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tourwise serve` on `db` with Kafka at `brokers` (4 partitions) and `extra` flags, logging
/// to `log`; the data dir is the log's folder.
pub fn serve(db: &str, brokers: &str, log: &std::path::Path, extra: &[&str]) -> Serve {
    let mut args = vec!["--database-url", db, "--kafka-brokers", brokers];
    args.extend(["--kafka-partitions", "4"]);
    args.extend_from_slice(extra);
    let filter = "warn,actors=info,actors::runtime::consumer=debug,rdkafka=info";
    spawn(&args, &[("RUST_LOG", filter)], log)
}

/// `tourwise serve --http-addr 127.0.0.1:0` with `args` and `env`, logging to `log`, the data
/// dir being the log's folder; returns once it listens (SIGKILLed on drop).
pub fn spawn(args: &[&str], env: &[(&str, &str)], log: &std::path::Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tourwise"))
        .args(["serve", "--http-addr", "127.0.0.1:0"])
        .args(args)
        .arg("--data-dir")
        .arg(log.parent().unwrap())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = child.kill();
        panic!("serve printed nothing within 60 s");
    };
    let Some(base) = line.trim().strip_prefix("listening on ") else {
        let _ = child.kill();
        panic!(
            "serve did not start: {line:?}; log: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    };
    Serve {
        base: base.to_owned(),
        child,
    }
}

pub async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> Value {
    let mut request = client.request(method, url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{url}: {status} {body}");
    body
}

/// Lisbon, where most tests book.
pub const LISBON: (f64, f64) = (38.72, -9.14);

/// Realtors around Lisbon, through the API as CONTRACT 6 requires, working every day all day.
pub async fn add_realtors(base: &str, rng: &mut StdRng, count: usize) {
    add_realtors_near(base, rng, count, LISBON, "lisbon").await;
}

/// `count` realtors within ~9 km of `centre` (emails `{name}-realtor{i}@example.com`),
/// through the API, working every day all day.
pub async fn add_realtors_near(
    base: &str,
    rng: &mut StdRng,
    count: usize,
    centre: (f64, f64),
    name: &str,
) {
    let client = reqwest::Client::new();
    let post = reqwest::Method::POST;
    for i in 0..count {
        let email = format!("{name}-realtor{i}@example.com");
        let creds = json!({"email": email, "password": "password1"});
        let mut register = creds.clone();
        register["name"] = json!(format!("Realtor {i}"));
        register["role"] = json!("realtor");
        call(
            &client,
            post.clone(),
            &format!("{base}/iam/register"),
            None,
            register,
        )
        .await;
        let login = call(
            &client,
            post.clone(),
            &format!("{base}/iam/login"),
            None,
            creds,
        )
        .await;
        let token = login["access_token"].as_str().unwrap().to_owned();
        let hours: Vec<Value> = (1..=7)
            .map(|d| json!({"weekday": d, "start": "00:00", "end": "24:00"}))
            .collect();
        let profile = json!({
            "home": {"lat": centre.0 + rng.random_range(-0.08..0.08), "lng": centre.1 + rng.random_range(-0.08..0.08)},
            "service_radius_km": 60.0,
            "time_zone": "Europe/Lisbon",
            "working_hours": hours,
        });
        call(
            &client,
            reqwest::Method::PUT,
            &format!("{base}/realtors/me"),
            Some(&token),
            profile,
        )
        .await;
        call(
            &client,
            reqwest::Method::PATCH,
            &format!("{base}/realtors/me/status"),
            Some(&token),
            json!({"status": "available"}),
        )
        .await;
    }
}

/// One `payment.succeeded` envelope (a new `event_id` every call).
pub fn envelope(payment: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "event_id": Uuid::now_v7(),
        "type": "payment.succeeded",
        "occurred_at": Utc::now(),
        "data": payment,
    }))
    .unwrap()
}

pub fn payment(rng: &mut StdRng) -> Value {
    payment_near(rng, LISBON)
}

/// A payment for one listing within ~11 km of `centre`, some day in March-April 2030.
pub fn payment_near(rng: &mut StdRng, centre: (f64, f64)) -> Value {
    let day = Utc.with_ymd_and_hms(2030, 3, 4, 9, 0, 0).unwrap()
        + chrono::Duration::days(rng.random_range(0..60));
    let start: DateTime<Utc> = day + chrono::Duration::minutes(5 * rng.random_range(0..60));
    json!({
        "payment_id": Uuid::new_v4(),
        "customer_id": Uuid::new_v4(),
        "amount_cents": 5000,
        "currency": "EUR",
        "listings": [{"id": Uuid::new_v4(), "lat": centre.0 + rng.random_range(-0.1..0.1), "lng": centre.1 + rng.random_range(-0.1..0.1)}],
        "window": {"start": start, "end": start + chrono::Duration::hours(4)},
    })
}

pub async fn produce(producer: &FutureProducer, messages: &[(String, Vec<u8>)]) {
    let sends = messages.iter().map(|(key, payload)| {
        producer.send(
            FutureRecord::to("payments").key(key).payload(payload),
            Duration::from_secs(30),
        )
    });
    for result in futures::future::join_all(sends).await {
        result.map_err(|(e, _)| e).expect("produce");
    }
}

/// Pairs of active tours of one realtor that overlap: CONTRACT 5.3's last guard, counted in SQL.
pub async fn double_bookings(db: &DatabaseConnection) -> i64 {
    scalar(
        db,
        "SELECT count(*) FROM tours a JOIN tours b ON a.realtor_id = b.realtor_id AND a.id < b.id \
         WHERE a.status IN ('assigned','accepted','in_progress') \
         AND b.status IN ('assigned','accepted','in_progress') \
         AND a.start_at < b.end_at AND b.start_at < a.end_at",
    )
    .await
}

pub async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

pub async fn wait_for(db: &DatabaseConnection, sql: &str, want: i64, what: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let got = scalar(db, sql).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {got}, want {want} ({sql})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits (30 s at most) until `GET /readyz` answers `status` with `dependencies.<dependency>`
/// being `up`.
pub async fn wait_ready(base: &str, status: u16, dependency: &str, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = reqwest::get(format!("{base}/readyz")).await.unwrap();
        let got_status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        let got = (got_status, body["dependencies"][dependency].clone());
        if got == (status, Value::Bool(up)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz: {got:?}, want {status} with {dependency} {up}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `count` random payments and their messages: each once, `duplicates` more of them again
/// (new event ids, same key), not yet shuffled.
pub fn payment_stream(
    rng: &mut StdRng,
    count: usize,
    duplicates: usize,
) -> (Vec<Value>, Vec<(String, Vec<u8>)>) {
    let payments: Vec<Value> = (0..count).map(|_| payment(rng)).collect();
    let key = |p: &Value| p["payment_id"].as_str().unwrap().to_owned();
    let mut messages: Vec<(String, Vec<u8>)> =
        payments.iter().map(|p| (key(p), envelope(p))).collect();
    for _ in 0..duplicates {
        let p = &payments[rng.random_range(0..count)];
        messages.push((key(p), envelope(p)));
    }
    (payments, messages)
}

/// Waits (`secs` at most) until every payment is stored, then checks that the tours are
/// exactly the payments: one each, none lost, none extra.
pub async fn one_tour_per_payment(db: &DatabaseConnection, payments: &[Value], secs: u64) {
    let want = i64::try_from(payments.len()).unwrap();
    wait_for(
        db,
        "SELECT count(*) FROM processed_payments",
        want,
        "stored payments",
        secs,
    )
    .await;
    assert_eq!(scalar(db, "SELECT count(*) FROM tours").await, want);
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT payment_id::text AS p FROM tours",
        ))
        .await
        .unwrap();
    let toured: HashSet<String> = rows.iter().map(|r| r.try_get("", "p").unwrap()).collect();
    let produced: HashSet<String> = payments
        .iter()
        .map(|p| p["payment_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        toured, produced,
        "the tours are exactly the produced payments"
    );
}

/// Waits (`secs` at most) until no tour is `pending`, then checks that no realtor holds two
/// overlapping active tours.
pub async fn settled_without_double_booking(db: &DatabaseConnection, secs: u64) {
    wait_for(
        db,
        "SELECT count(*) FROM tours WHERE status = 'pending'",
        0,
        "pending tours",
        secs,
    )
    .await;
    assert_eq!(double_bookings(db).await, 0, "double-booked realtors");
}
