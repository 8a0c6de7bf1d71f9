//! Scale-out (issue #11, README "Scale-out"): several `tourwise serve` processes on one
//! database and one Kafka consumer group. Payments go to the partition of their region
//! (`engine::region::region_partition`), so each process books the regions of its partitions;
//! every process learns the others' bookings from the `availability` topic; PostgreSQL judges
//! every booking.
//!
//! One test, run in sequence so that the figures are comparable: the same stream through 1, 2
//! and 3 processes (throughput printed), then, with 3, one process is SIGKILLed mid-stream: its
//! partitions move to the others, which adopt its open tours (their accept timeouts fire
//! there), and nothing is lost or double-booked.
//! `SCALE_OUT_EVENTS=20000 cargo test --release --test scale_out -- --nocapture` for a
//! bigger run.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::Value;

mod common;
use common::{
    add_realtors_near, double_bookings, envelope, payment_near, scalar, serve, start_broker,
    wait_for, wait_for_lag_zero, Broker, FreshDb, Serve,
};

/// Partitions of the topics (`--kafka-partitions`).
const PARTITIONS: u32 = 4;
const REALTORS_PER_CITY: usize = 8;
/// An assigned tour nobody accepts goes to the next realtor after this long.
const ACCEPT_TIMEOUT_SECS: &str = "20";

/// Candidate cities; [`cities`] keeps one per partition.
const CITIES: [(&str, (f64, f64)); 12] = [
    ("lisbon", (38.72, -9.14)),
    ("porto", (41.15, -8.61)),
    ("madrid", (40.42, -3.70)),
    ("barcelona", (41.39, 2.17)),
    ("paris", (48.86, 2.35)),
    ("berlin", (52.52, 13.40)),
    ("london", (51.51, -0.13)),
    ("milan", (45.46, 9.19)),
    ("brussels", (50.85, 4.35)),
    ("amsterdam", (52.37, 4.90)),
    ("vienna", (48.21, 16.37)),
    ("stockholm", (59.33, 18.07)),
];

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn partition_of(lat: f64, lng: f64) -> i32 {
    let location = engine::Location::new(lat, lng).unwrap();
    i32::try_from(engine::region::region_partition(&location, PARTITIONS)).unwrap()
}

/// One city per partition.
fn cities() -> Vec<(&'static str, (f64, f64))> {
    let mut seen = HashSet::new();
    let chosen: Vec<_> = CITIES
        .into_iter()
        .filter(|(_, (lat, lng))| seen.insert(partition_of(*lat, *lng)))
        .collect();
    assert_eq!(
        chosen.len(),
        PARTITIONS as usize,
        "a city for every partition"
    );
    chosen
}

/// The payments of `count` tours spread over the cities, each to its region's partition:
/// `(key, payload, partition)`.
fn stream(rng: &mut StdRng, count: usize) -> Vec<(String, Vec<u8>, i32)> {
    let cities = cities();
    (0..count)
        .map(|i| {
            let p = payment_near(rng, cities[i % cities.len()].1);
            let listing = &p["listings"][0];
            let partition = partition_of(
                listing["lat"].as_f64().unwrap(),
                listing["lng"].as_f64().unwrap(),
            );
            let key = p["payment_id"].as_str().unwrap().to_owned();
            (key, envelope(&p), partition)
        })
        .collect()
}

async fn produce(producer: &FutureProducer, messages: &[(String, Vec<u8>, i32)]) {
    let sends = messages.iter().map(|(key, payload, partition)| {
        producer.send(
            FutureRecord::to("payments")
                .key(key)
                .payload(payload)
                .partition(*partition),
            Duration::from_secs(30),
        )
    });
    for result in futures::future::join_all(sends).await {
        result.map_err(|(e, _)| e).expect("produce");
    }
}

fn producer(broker: &Broker) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("enable.idempotence", "true")
        // One record per batch: see api/tests/kafka.rs (tansu fetches from batch boundaries).
        .set("batch.num.messages", "1")
        .create()
        .unwrap()
}

/// How many realtors `GET /availability` of the process at `base` shows around `centre`
/// (answered by that process's shards).
async fn realtors_seen(base: &str, token: &str, centre: (f64, f64)) -> usize {
    let url = format!(
        "{base}/availability?lat={}&lng={}&radius_km=30&start=2030-03-04T09:00:00Z&end=2030-03-04T18:00:00Z",
        centre.0, centre.1
    );
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    body["items"].as_array().map_or(0, Vec::len)
}

async fn admin_token(base: &str) -> String {
    let login = common::call(
        &reqwest::Client::new(),
        reqwest::Method::POST,
        &format!("{base}/iam/login"),
        None,
        serde_json::json!({"email": "admin@example.com", "password": "admin-password-1"}),
    )
    .await;
    login["access_token"].as_str().unwrap().to_owned()
}

/// `n` processes on one database and broker, realtors added through the first; returns once
/// every process sees every realtor in its shards.
async fn start_group(
    n: usize,
    db: &FreshDb,
    broker: &Broker,
    dir: &std::path::Path,
    rng: &mut StdRng,
    run: &str,
    accept_timeout_secs: &str,
) -> Vec<Serve> {
    let processes: Vec<Serve> = (1..=n)
        .map(|i| {
            let log = dir.join(format!("{run}-serve-{i}.log"));
            serve(
                &db.url,
                &broker.addr,
                &log,
                &[
                    "--accept-timeout-secs",
                    accept_timeout_secs,
                    "--admin-email",
                    "admin@example.com",
                    "--admin-password",
                    "admin-password-1",
                ],
            )
        })
        .collect();
    for (name, centre) in cities() {
        add_realtors_near(&processes[0].base, rng, REALTORS_PER_CITY, centre, name).await;
    }
    // The other processes learn the realtors from `availability` (realtor.updated,
    // realtor.status_changed): every one of them must see all of them.
    let deadline = Instant::now() + Duration::from_secs(60);
    for process in &processes {
        let token = admin_token(&process.base).await;
        for (name, centre) in cities() {
            while realtors_seen(&process.base, &token, centre).await < REALTORS_PER_CITY {
                assert!(
                    Instant::now() < deadline,
                    "{} does not see the realtors of {name}",
                    process.base
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    processes
}

/// Waits until at least `want` payments are stored.
async fn until_stored(db: &DatabaseConnection, want: usize, secs: u64) {
    let want = i64::try_from(want).unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let stored = scalar(db, "SELECT count(*) FROM processed_payments").await;
        if stored >= want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{stored} payments stored, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// No tour lost or repeated, none pending, nobody double-booked, lag 0.
async fn check_books(db: &DatabaseConnection, broker: &Broker, payments: usize) {
    let want = i64::try_from(payments).unwrap();
    assert_eq!(scalar(db, "SELECT count(*) FROM tours").await, want);
    assert_eq!(
        scalar(db, "SELECT count(DISTINCT payment_id) FROM tours").await,
        want
    );
    wait_for(
        db,
        "SELECT count(*) FROM tours WHERE status = 'pending'",
        0,
        "pending tours",
        120,
    )
    .await;
    let overlaps = double_bookings(db).await;
    assert_eq!(overlaps, 0, "double-booked realtors");
    wait_for_lag_zero(&broker.addr).await;
}

/// Stores `events` payments through `n` processes; returns payments per second.
async fn throughput(n: usize, events: usize, dir: &std::path::Path) -> f64 {
    let broker = start_broker();
    let db = FreshDb::create().await;
    let mut rng = StdRng::seed_from_u64(11);
    let processes = start_group(n, &db, &broker, dir, &mut rng, &format!("x{n}"), "900").await;
    let test = sea_orm::Database::connect(&db.url).await.unwrap();
    let producer = producer(&broker);
    // Warm-up: a payment on every partition, so that the group has settled.
    produce(&producer, &stream(&mut rng, PARTITIONS as usize)).await;
    until_stored(&test, PARTITIONS as usize, 120).await;

    let messages = stream(&mut rng, events);
    let started = Instant::now();
    produce(&producer, &messages).await;
    until_stored(&test, events + PARTITIONS as usize, 600).await;
    let elapsed = started.elapsed().as_secs_f64();
    check_books(&test, &broker, events + PARTITIONS as usize).await;
    drop(processes);
    db.drop_now().await;
    #[allow(clippy::cast_precision_loss)]
    let rate = events as f64 / elapsed;
    rate
}

/// Three processes; one is SIGKILLed mid-stream.
async fn lose_one(events: usize, dir: &std::path::Path) {
    let broker = start_broker();
    let db = FreshDb::create().await;
    let mut rng = StdRng::seed_from_u64(12);
    let mut processes =
        start_group(3, &db, &broker, dir, &mut rng, "kill", ACCEPT_TIMEOUT_SECS).await;
    let test = sea_orm::Database::connect(&db.url).await.unwrap();
    let producer = producer(&broker);
    let messages = stream(&mut rng, events);
    let (first, rest) = messages.split_at(events / 2);
    produce(&producer, first).await;
    until_stored(&test, events / 4, 120).await;

    let killed = processes.remove(1); // the second process
    drop(killed); // SIGKILL
    let killed_at = Instant::now();
    // tansu 0.6 drops a dead member at the group's next membership change rather than on its
    // session timeout alone (Kafka does both): a replacement joins once the session timeout
    // (10 s) has passed, as an orchestrator would start one. The group then rebalances over
    // the two survivors and the newcomer.
    tokio::time::sleep(Duration::from_secs(12)).await;
    processes.push(serve(
        &db.url,
        &broker.addr,
        &dir.join("kill-serve-4.log"),
        &["--accept-timeout-secs", ACCEPT_TIMEOUT_SECS],
    ));
    // The tours assigned at that moment: nobody accepts them, so each must time out and move
    // on, which only an actor can make happen; the dead process's ones need adopting.
    let assigned = versions(
        &test,
        "SELECT id::text, version FROM tours WHERE status = 'assigned'",
    )
    .await;
    produce(&producer, rest).await;
    until_stored(&test, events, 300).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = versions(&test, "SELECT id::text, version FROM tours").await;
        let unmoved: Vec<&String> = assigned
            .iter()
            .filter(|(id, version)| now.get(*id) == Some(version))
            .map(|(id, _)| id)
            .collect();
        if unmoved.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of the tours assigned at the kill never moved on, e.g. {:?}",
            unmoved.len(),
            unmoved.iter().take(3).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let recovered = killed_at.elapsed().as_secs_f64();
    check_books(&test, &broker, events).await;
    let adopted: usize = processes
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let log = dir.join(format!("kill-serve-{}.log", [1, 3, 4][i]));
            std::fs::read_to_string(log)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("adopted their regions' open tours"))
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter_map(|v| v["fields"]["adopted"].as_u64())
                .sum::<u64>()
        })
        .map(|n| usize::try_from(n).unwrap())
        .sum();
    // Who runs the dead process's tours depends on the rebalance: the survivors that gain its
    // partitions adopt them, or the replacement, which recovers every open tour at start. The
    // moved-on check above is what must hold either way.
    println!(
        "scale-out: 3 processes, one SIGKILLed after {} of {events} payments were stored: \
         none lost, none double-booked; {adopted} open tours adopted on rebalance (the rest ran in the replacement, which recovers every open tour); the {} \
         tours assigned at the kill all moved on within {recovered:.1} s (accept timeout \
         {ACCEPT_TIMEOUT_SECS} s)",
        events / 4,
        assigned.len(),
    );
    drop(processes);
    db.drop_now().await;
}

/// `(id, version)` rows of `sql`.
async fn versions(db: &DatabaseConnection, sql: &str) -> HashMap<String, i32> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.try_get_by_index::<String>(0).unwrap(),
                r.try_get_by_index::<i32>(1).unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_share_the_stream_and_survive_losing_one() {
    let events = setting("SCALE_OUT_EVENTS", 1_200);
    let mut dir = tempfile::tempdir().unwrap();
    // SCALE_OUT_KEEP_LOGS=1 keeps the processes' logs after the test.
    if std::env::var("SCALE_OUT_KEEP_LOGS").is_ok() {
        dir.disable_cleanup(true);
        println!("logs kept in {}", dir.path().display());
    }
    let mut rates = Vec::new();
    if std::env::var("SCALE_OUT_ONLY_KILL").is_err() {
        for n in 1..=3 {
            rates.push((n, throughput(n, events, dir.path()).await));
        }
    }
    let figures: Vec<String> = rates
        .iter()
        .map(|(n, rate)| format!("{n} process(es): {rate:.0} payments/s"))
        .collect();
    println!(
        "scale-out throughput, {events} payments: {}",
        figures.join("; ")
    );
    lose_one(events, dir.path()).await;
}
