//! What the process tests read from the broker: a topic's messages, the consumer group's
//! offsets, and whether the engine's outbox reached its topics.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::Value;
use uuid::Uuid;

use super::wait_for;

/// `(partition, committed offset of group "tourwise" if any, high watermark)` of each of the
/// 4 partitions of `payments` (blocking: call from `spawn_blocking`).
pub fn group_offsets(brokers: &str) -> Vec<(i32, Option<i64>, i64)> {
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "tourwise")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..4 {
        tpl.add_partition("payments", p);
    }
    let timeout = Duration::from_secs(5);
    let committed = rdkafka::consumer::Consumer::committed_offsets(&consumer, tpl, timeout).ok();
    (0..4)
        .map(|p| {
            let c = committed
                .as_ref()
                .and_then(|c| c.find_partition("payments", p))
                .and_then(|e| e.offset().to_raw())
                .filter(|o| *o >= 0);
            let high =
                rdkafka::consumer::Consumer::fetch_watermarks(&consumer, "payments", p, timeout)
                    .map_or(-1, |w| w.1);
            (p, c, high)
        })
        .collect()
}

/// Waits (60 s at most) until group `tourwise` has committed every `payments` message.
pub async fn wait_for_lag_zero(brokers: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let owned = brokers.to_owned();
        let offsets = tokio::task::spawn_blocking(move || group_offsets(&owned))
            .await
            .unwrap();
        if offsets.iter().all(|(_, c, high)| *c == Some(*high)) {
            return;
        }
        assert!(Instant::now() < deadline, "lag not back to 0: {offsets:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One message as a reader saw it.
pub struct Seen {
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
    pub partition: i32,
    pub offset: i64,
}

/// Every message of `topic` from the start until `done` says enough or `secs` pass. `done` is
/// asked once before the first message and then after each one, with all seen so far: it
/// should look at the last one only, as topics hold thousands.
pub async fn read_topic(
    brokers: &str,
    topic: &str,
    secs: u64,
    mut done: impl FnMut(&[Seen]) -> bool,
) -> Vec<Seen> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{}", Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done(&seen) {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_) => break,
            Ok(m) => {
                let m = m.unwrap();
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                seen.push(Seen {
                    payload: m.payload().unwrap_or_default().to_vec(),
                    headers,
                    partition: m.partition(),
                    offset: m.offset(),
                });
            }
        }
    }
    seen
}

/// Every event the engine committed to its outbox is published (within 60 s) and on its topic
/// (`tours`, `appointments`): each `event_id` appears, repeats only with the same id, and
/// nothing else does.
pub async fn every_outbox_event_published(db: &DatabaseConnection, brokers: &str) {
    wait_for(
        db,
        "SELECT count(*) FROM outbox WHERE published_at IS NULL",
        0,
        "unpublished events",
        60,
    )
    .await;
    for topic in ["tours", "appointments"] {
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT event_id::text AS e FROM outbox WHERE topic = '{topic}'"),
            ))
            .await
            .unwrap();
        let committed: HashSet<String> = rows.iter().map(|r| r.try_get("", "e").unwrap()).collect();
        assert!(!committed.is_empty(), "no {topic} events committed");
        let event_id = |m: &Seen| {
            serde_json::from_slice::<Value>(&m.payload)
                .ok()
                .and_then(|v| v["event_id"].as_str().map(str::to_owned))
        };
        // `done` sees every message once, as the last of `seen`: keep the ids as they come
        // (parsing all of `seen` again per message took tens of minutes over 10,000 events).
        let mut ids = HashSet::new();
        let events = read_topic(brokers, topic, 60, |seen| {
            ids.extend(seen.last().and_then(event_id));
            ids.len() >= committed.len()
        })
        .await;
        let ids: HashSet<String> = events.iter().filter_map(event_id).collect();
        assert_eq!(ids, committed, "topic {topic}");
    }
}
