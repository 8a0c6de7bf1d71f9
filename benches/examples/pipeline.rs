//! End-to-end throughput and latency of the Kafka pipeline (issue #5): payment events produced
//! into Kafka at a fixed rate by an outside producer -> consumed by the runtime -> tours committed
//! on PostgreSQL. Latency is from the moment the producer hands an event to Kafka to the moment
//! its tour is durably stored (the runtime's committed-change feed), so it includes the broker
//! round trip, the consumer, the inbox transaction and PostgreSQL's commit.
//!
//! ```sh
//! cargo run --release -p benches --example pipeline -- [EVENTS] [RATE_PER_S] [REALTORS]
//! ```
//! Starts its own tansu broker (on PATH or in ~/.cargo/bin) and a fresh PostgreSQL database at
//! 127.0.0.1:5432 (dropped at the end). Defaults: 30000 events at 5000/s, 2000 realtors.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actors::bus::{KafkaBus, KafkaConfig};
use actors::runtime::{Runtime, RuntimeConfig};
use actors::store::{SeaStore, Store};
use engine::Location;
use rand::{Rng, SeedableRng};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use sea_orm::ConnectionTrait;
use serde_json::json;
use uuid::Uuid;

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() {
    let events = arg(1, 30_000);
    let rate = arg(2, 5_000);
    let realtor_count = arg(3, 2_000);

    // A broker of our own.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let url = format!("tcp://127.0.0.1:{port}");
    let home = std::env::var("HOME").unwrap_or_default();
    let tansu = [format!("{home}/.cargo/bin/tansu"), "tansu".to_owned()]
        .into_iter()
        .find(|p| p == "tansu" || std::path::Path::new(p).exists())
        .unwrap_or_default();
    let mut broker = Command::new(tansu)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu (cargo install tansu --features dynostore,libsql)");
    let brokers = format!("127.0.0.1:{port}");
    while std::net::TcpStream::connect(&brokers).is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A fresh database with realtors.
    let server = std::env::var("TOURWISE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    let admin = sea_orm::Database::connect(format!("{server}/postgres"))
        .await
        .expect("PostgreSQL");
    let name = format!("tw_pipeline_{}", Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let db = migrations::connect_and_migrate(&format!("{server}/{name}"))
        .await
        .expect("migrate");
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let city = benches::City::generate(
        5,
        realtor_count,
        0,
        7,
        engine::matching::index::DEFAULT_SEARCH_RESOLUTION,
    );
    let realtors: Vec<engine::Realtor> = city.index.iter().map(|(r, _)| r.clone()).collect();
    let ids: Vec<Uuid> = realtors.iter().map(|r| r.id.0).collect();
    for chunk in ids.chunks(1000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|id| format!("('{id}', '{id}@example.com', 'x', 'r', 'realtor', now(), now())"))
            .collect();
        db.execute_unprepared(&format!(
            "INSERT INTO users (id, email, password_hash, name, role, created_at, updated_at) VALUES {}",
            values.join(",")
        ))
        .await
        .expect("users");
    }
    let store = Arc::new(SeaStore::new(db.clone()));
    store
        .upsert_realtor_profiles(&realtors)
        .await
        .expect("profiles");

    let mut kafka = KafkaConfig::new(&brokers);
    kafka.partitions = 6;
    let bus = Arc::new(KafkaBus::connect(kafka).await.expect("broker"));
    let runtime = Runtime::start(store.clone(), bus, RuntimeConfig::default())
        .await
        .expect("runtime");
    runtime.start_outbox_relay(db.clone());

    // Stored-tour times, by payment.
    let sent: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut changes = runtime.tour_changes();
    let watcher = {
        let (sent, latencies) = (sent.clone(), latencies.clone());
        tokio::spawn(async move {
            let mut seen = 0;
            while seen < events {
                match changes.recv().await {
                    Ok(tour) if tour.status == engine::TourStatus::Pending => {
                        let at = sent.lock().expect("lock").get(&tour.payment_id.0).copied();
                        if let Some(at) = at {
                            latencies.lock().expect("lock").push(at.elapsed());
                            seen += 1;
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        eprintln!("watcher lagged by {n} changes");
                    }
                    Err(_) => break,
                }
            }
        })
    };

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "1")
        .create()
        .expect("producer");
    let center = Location::new(38.7223, -9.1393).expect("center");
    let start = Instant::now();
    let tick = Duration::from_secs_f64(1.0 / rate as f64);
    let mut pending = Vec::new();
    for i in 0..events {
        let due = start + tick * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let payment = Uuid::new_v4();
        let day = benches::first_day() + chrono::Duration::days(rng.random_range(0..7));
        let from = day + chrono::Duration::hours(9);
        let lat = center.lat() + rng.random_range(-0.1..0.1);
        let lng = center.lng() + rng.random_range(-0.1..0.1);
        let body = json!({
            "event_id": Uuid::now_v7(), "type": "payment.succeeded", "occurred_at": chrono::Utc::now(),
            "data": {"payment_id": payment, "customer_id": Uuid::new_v4(), "amount_cents": 5000, "currency": "EUR",
                     "listings": [{"id": Uuid::new_v4(), "lat": lat, "lng": lng}],
                     "window": {"start": from, "end": from + chrono::Duration::hours(9)}}
        });
        let bytes = serde_json::to_vec(&body).expect("json");
        let key = payment.to_string();
        sent.lock().expect("lock").insert(payment, Instant::now());
        let producer = producer.clone();
        pending.push(tokio::spawn(async move {
            producer
                .send(
                    FutureRecord::to("payments").key(&key).payload(&bytes),
                    Duration::from_secs(30),
                )
                .await
                .map(|_| ())
                .map_err(|(e, _)| e)
        }));
    }
    let produced_in = start.elapsed();
    for p in pending {
        p.await.expect("task").expect("produce");
    }
    let _ = tokio::time::timeout(Duration::from_secs(120), watcher).await;
    let stored_in = start.elapsed();
    let mut lat = latencies.lock().expect("lock").clone();
    lat.sort();

    // Matching finishes after storage; wait for it to report assignment throughput too.
    let assigned_by = Instant::now() + Duration::from_secs(120);
    while runtime.matching_in_flight() > 0 && Instant::now() < assigned_by {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let settled_in = start.elapsed();
    let ok = lat.len();
    println!(
        "pipeline: {events} events offered at {rate}/s over {:.1}s; {ok} tours stored in {:.1}s = {:.0} events/s sustained",
        produced_in.as_secs_f64(),
        stored_in.as_secs_f64(),
        ok as f64 / stored_in.as_secs_f64()
    );
    println!(
        "event -> tour committed: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; matching settled after {:.1}s",
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.90).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        percentile(&lat, 1.0).as_secs_f64() * 1e3,
        settled_in.as_secs_f64()
    );
    runtime.shutdown().await;
    drop(db);
    let _ = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
    let _ = broker.kill();
    let _ = broker.wait();
}
