//! The event pipeline on the in-process bus: the behaviour the Kafka adapter is tested for in
//! `api/tests/kafka.rs` (payments in, one tour per payment, dead letters, every committed change
//! on its topic), where it applies to a bus that lives inside the process.

#[allow(
    dead_code,
    reason = "each test binary uses a different part of the support module"
)]
mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::bus::{topics, Envelope, EventBus, InProcessBus};
use actors::payments::PaymentSucceeded;
use actors::runtime::{Runtime, RuntimeConfig};
use engine::{Location, RealtorId};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use support::{at, insert_users, one_stop_payment, realtor, Backend, TestDb};
use uuid::Uuid;

const PAYMENTS: usize = 2_000;

/// A deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn offset(&mut self, max_deg: f64) -> f64 {
        (self.below(10_000) as f64 / 10_000.0 * 2.0 - 1.0) * max_deg
    }

    fn near_lisbon(&mut self) -> Location {
        Location::new(38.7223 + self.offset(0.08), -9.1393 + self.offset(0.08)).expect("in range")
    }
}

async fn start(db: &TestDb, bus: &InProcessBus) -> Runtime {
    let config = RuntimeConfig {
        namespace: format!("p{}/", Uuid::new_v4().simple()),
        ..RuntimeConfig::default()
    };
    let rt = Runtime::start(Arc::new(db.store.clone()), Arc::new(bus.clone()), config)
        .await
        .expect("runtime starts");
    rt.start_outbox_relay(db.db().clone());
    rt
}

fn payment(rng: &mut Rng) -> PaymentSucceeded {
    let start = at(8, 0)
        + chrono::Duration::days(rng.below(20) as i64)
        + chrono::Duration::minutes(5 * rng.below(60) as i64);
    one_stop_payment(rng.near_lisbon(), start, start + chrono::Duration::hours(3))
}

fn envelope(p: &PaymentSucceeded) -> Vec<u8> {
    serde_json::to_vec(&Envelope::new(
        "payment.succeeded",
        serde_json::to_value(p).expect("json"),
    ))
    .expect("json")
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("query")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("a count")
}

async fn wait_for(db: &DatabaseConnection, sql: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let got = scalar(db, sql).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{sql}: {got}, want {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_through_the_in_process_bus_book_once_across_a_restart() {
    let db = TestDb::create(Backend::Postgres).await;
    let mut rng = Rng(11);
    let realtors: Vec<_> = (0..30)
        .map(|_| realtor(RealtorId(Uuid::new_v4()), rng.near_lisbon()))
        .collect();
    insert_users(
        db.db(),
        &realtors.iter().map(|r| r.id.0).collect::<Vec<_>>(),
    )
    .await;
    actors::store::Store::upsert_realtor_profiles(&db.store, &realtors)
        .await
        .expect("profiles");

    // Payments, 20% of them again with new event ids, 1% garbage, shuffled.
    let payments: Vec<PaymentSucceeded> = (0..PAYMENTS).map(|_| payment(&mut rng)).collect();
    let mut messages: Vec<(String, Vec<u8>)> = payments
        .iter()
        .map(|p| (p.payment_id.0.to_string(), envelope(p)))
        .collect();
    for _ in 0..PAYMENTS / 5 {
        let p = &payments[rng.below(PAYMENTS)];
        messages.push((p.payment_id.0.to_string(), envelope(p)));
    }
    let garbage: Vec<Vec<u8>> = (0..PAYMENTS / 100)
        .map(|i| match i % 3 {
            0 => format!("{{garbled {i}").into_bytes(),
            1 => br#"{"event_id":"00000000-0000-0000-0000-000000000001","type":"payment.succeeded","occurred_at":"2030-01-01T00:00:00Z","data":{}}"#.to_vec(),
            _ => {
                let mut v: serde_json::Value =
                    serde_json::from_slice(&envelope(&payment(&mut rng))).expect("json");
                v["data"]["listings"][0]["lat"] = 200.0.into();
                serde_json::to_vec(&v).expect("json")
            }
        })
        .collect();
    messages.extend(garbage.iter().map(|g| ("junk".to_owned(), g.clone())));
    for i in (1..messages.len()).rev() {
        messages.swap(i, rng.below(i + 1));
    }

    // Half, a clean stop mid-stream, a new runtime on the same bus and database, the rest.
    let bus = InProcessBus::new();
    let rt = start(&db, &bus).await;
    let (before, after) = messages.split_at(messages.len() / 2);
    for (key, payload) in before {
        bus.publish(topics::PAYMENTS, key, payload.clone(), vec![])
            .await
            .expect("publish");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while scalar(db.db(), "SELECT count(*) FROM processed_payments").await < 200 {
        assert!(Instant::now() < deadline, "nothing stored");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    rt.shutdown().await;
    let rt = start(&db, &bus).await;
    for (key, payload) in after {
        bus.publish(topics::PAYMENTS, key, payload.clone(), vec![])
            .await
            .expect("publish");
    }

    let want = PAYMENTS as i64;
    wait_for(db.db(), "SELECT count(*) FROM processed_payments", want).await;
    assert_eq!(scalar(db.db(), "SELECT count(*) FROM tours").await, want);
    assert_eq!(
        scalar(db.db(), "SELECT count(DISTINCT payment_id) FROM tours").await,
        want
    );
    wait_for(
        db.db(),
        "SELECT count(*) FROM tours WHERE status = 'pending'",
        0,
    )
    .await;

    // Garbage on the dead-letter topic, unchanged, with its headers.
    let mut dlq = bus
        .consumer(topics::PAYMENTS_DLQ, "reader")
        .await
        .expect("consumer");
    let mut dead = Vec::new();
    while dead.len() < garbage.len() {
        let m = tokio::time::timeout(Duration::from_secs(60), dlq.next())
            .await
            .expect("every garbled message dead-lettered")
            .expect("message");
        assert!(m.headers.iter().any(|(k, v)| k == "error" && !v.is_empty()));
        assert!(m.headers.iter().any(|(k, _)| k == "source-offset"));
        dead.push(m.payload);
    }
    assert_eq!(
        dead.iter().collect::<HashSet<_>>(),
        garbage.iter().collect::<HashSet<_>>()
    );

    // Every committed change reaches its topic; the lag drains to zero.
    wait_for(
        db.db(),
        "SELECT count(*) FROM outbox WHERE published_at IS NULL",
        0,
    )
    .await;
    let committed = scalar(db.db(), "SELECT count(*) FROM outbox WHERE topic = 'tours'").await;
    let mut tours = bus
        .consumer(topics::TOURS, "reader")
        .await
        .expect("consumer");
    let mut ids = HashSet::new();
    while (ids.len() as i64) < committed {
        let m = tokio::time::timeout(Duration::from_secs(60), tours.next())
            .await
            .expect("every tour event published")
            .expect("message");
        let v: serde_json::Value = serde_json::from_slice(&m.payload).expect("json");
        ids.insert(v["event_id"].as_str().expect("event_id").to_owned());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while rt.consumer_lag() != Some(0) {
        assert!(Instant::now() < deadline, "lag {:?}", rt.consumer_lag());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rt.shutdown().await;
}
