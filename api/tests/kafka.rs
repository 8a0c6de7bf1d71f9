//! The Kafka pipeline end to end (issue #5, CONTRACT 5.5 and 6): the real `tourwise serve`
//! binary on PostgreSQL and a real Kafka-protocol broker (tansu, started here), with payment
//! events produced from outside the engine, duplicates, garbage, and a SIGKILL mid-stream.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use uuid::Uuid;

mod common;
use common::{
    add_realtors, envelope, every_outbox_event_published, group_offsets, one_tour_per_payment,
    payment, payment_stream, produce, read_topic, scalar, serve, settled_without_double_booking,
    start_broker, FreshDb,
};

const PAYMENTS: usize = 5_000;
const DUPLICATES: usize = PAYMENTS / 5;
const GARBLED: usize = PAYMENTS / 100;
const REALTORS: usize = 40;
/// Static membership: the restarted process takes its partitions back at once.
const STATIC_MEMBER: &[&str] = &["--kafka-instance-id", "kafka-test"];

/// Undecodable or invalid payment messages of every kind.
fn garbled(i: usize, rng: &mut StdRng) -> Vec<u8> {
    match i % 4 {
        0 => format!("{{not json {i}").into_bytes(),
        1 => serde_json::to_vec(&json!({"event_id": Uuid::now_v7(), "type": "payment.succeeded", "occurred_at": Utc::now(), "data": {"payment_id": Uuid::new_v4()}})).unwrap(),
        2 => {
            let mut p = payment(rng);
            p["listings"][0]["lat"] = json!(200.0);
            envelope(&p)
        }
        _ => {
            let mut p = payment(rng);
            p["window"]["end"] = p["window"]["start"].clone();
            envelope(&p)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_payment_books_one_tour_through_kafka() {
    pipeline(false).await;
}

/// The engine is SIGKILLed mid-stream and started again (static membership): it resumes from
/// the committed offsets, re-handles what was in flight (the inbox absorbs the repeats) and
/// loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_payment_books_one_tour_through_kafka_across_a_crash() {
    pipeline(true).await;
}

/// 5,000 payments (+ duplicates and garbage) through Kafka; with `kill`, the engine is
/// SIGKILLed mid-stream and started again.
async fn pipeline(kill: bool) {
    let broker = start_broker();
    let db = FreshDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(7);

    let first = serve(
        &db.url,
        &broker.addr,
        &dir.path().join("serve-1.log"),
        STATIC_MEMBER,
    );
    add_realtors(&first.base, &mut rng, REALTORS).await;

    // 5,000 payments, 20% sent again with new event ids, 1% garbage, shuffled: keys spread them
    // over the partitions, so the engine sees them reordered across partitions.
    let (payments, mut messages) = payment_stream(&mut rng, PAYMENTS, DUPLICATES);
    let garbage: Vec<Vec<u8>> = (0..GARBLED).map(|i| garbled(i, &mut rng)).collect();
    messages.extend(
        garbage
            .iter()
            .map(|g| (Uuid::new_v4().to_string(), g.clone())),
    );
    messages.shuffle(&mut rng);

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("enable.idempotence", "true")
        // One record per batch. tansu 0.6 (dynostore, `fetch` in tansu-storage's dynostore.rs)
        // answers a fetch from offset N with the batches whose *base* offset is >= N, so a
        // consumer resuming inside a batch (as a restarted one does, offsets being committed
        // per message) silently skips the rest of that batch; Kafka returns the batch holding
        // N. With single-record batches every offset starts a batch and the broker's bug cannot
        // hide or fake a loss in the engine.
        .set("batch.num.messages", "1")
        .create()
        .unwrap();
    let engine = sea_orm::Database::connect(&db.url).await.unwrap();
    let (before, after) = messages.split_at(messages.len() / 2);
    produce(&producer, before).await;

    // Kill the engine mid-stream, once it has stored some of the tours, and start it again.
    let deadline = Instant::now() + Duration::from_secs(60);
    while scalar(&engine, "SELECT count(*) FROM processed_payments").await < 500 {
        assert!(Instant::now() < deadline, "no payment stored within 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (killed_at, second) = if kill {
        drop(first); // SIGKILL
        let killed_at = scalar(&engine, "SELECT count(*) FROM processed_payments").await;
        let second = serve(
            &db.url,
            &broker.addr,
            &dir.path().join("serve-2.log"),
            STATIC_MEMBER,
        );
        (killed_at, second)
    } else {
        (0, first)
    };
    produce(&producer, after).await;

    // Exactly one tour per distinct payment, none lost.
    let want = PAYMENTS as i64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while scalar(&engine, "SELECT count(*) FROM processed_payments").await < want {
        if Instant::now() > deadline {
            let brokers = broker.addr.clone();
            let offsets = tokio::task::spawn_blocking(move || group_offsets(&brokers))
                .await
                .unwrap();
            // What the broker gives a fresh reader: are all produced payments on the topic?
            let on_topic = read_topic(&broker.addr, "payments", 30, |seen| {
                seen.len() >= messages.len()
            })
            .await;
            let located: HashMap<String, (i32, i64)> = on_topic
                .iter()
                .filter_map(|m| {
                    let v = serde_json::from_slice::<Value>(&m.payload).ok()?;
                    let id = v["data"]["payment_id"].as_str()?.to_owned();
                    Some((id, (m.partition, m.offset)))
                })
                .collect();
            let distinct: HashSet<String> = located.keys().cloned().collect();
            let rows = engine
                .query_all_raw(Statement::from_string(
                    engine.get_database_backend(),
                    "SELECT payment_id::text AS p FROM processed_payments",
                ))
                .await
                .unwrap();
            let stored: HashSet<String> =
                rows.iter().map(|r| r.try_get("", "p").unwrap()).collect();
            // Where the missing ones are (partition, offset): grep the serve logs for them.
            let missing: Vec<(&String, (i32, i64))> = distinct
                .difference(&stored)
                .take(10)
                .map(|id| (id, located[id]))
                .collect();
            panic!(
                "payments stored: {} of {want}; killed with {killed_at}; offsets {offsets:?}; \
                 a fresh reader sees {} messages, {} distinct payments; missing e.g. {missing:?}",
                stored.len(),
                on_topic.len(),
                distinct.len(),
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    one_tour_per_payment(&engine, &payments, 10).await;

    // Every tour settles in a visible state, and no realtor holds two overlapping tours.
    settled_without_double_booking(&engine, 120).await;

    // The garbage is on the dead-letter topic, unchanged, with its headers.
    let dead = read_topic(&broker.addr, "payments.dlq", 60, |seen| {
        let payloads: HashSet<&Vec<u8>> = seen.iter().map(|m| &m.payload).collect();
        garbage.iter().all(|g| payloads.contains(g))
    })
    .await;
    let dead_payloads: HashSet<&Vec<u8>> = dead.iter().map(|m| &m.payload).collect();
    for g in &garbage {
        assert!(
            dead_payloads.contains(g),
            "not dead-lettered: {}",
            String::from_utf8_lossy(g)
        );
    }
    for m in &dead {
        assert!(
            garbage.contains(&m.payload),
            "a valid payment was dead-lettered"
        );
        assert!(!m.headers["error"].is_empty());
        assert!(m.headers["source-offset"].parse::<i64>().is_ok());
    }

    // Every committed change is on its topic.
    every_outbox_event_published(&engine, &broker.addr).await;
    println!(
        "kafka pipeline: {PAYMENTS} payments + {DUPLICATES} duplicates + {GARBLED} garbled; killed with {killed_at} stored; all booked once"
    );
    drop(second);
    db.drop_now().await;
}
