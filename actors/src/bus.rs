//! The event bus port (CONTRACT 6): topics of keyed messages, consumer groups with committed
//! offsets. Two adapters: the in-process bus here (the embedded default) and Kafka.
//!
//! Semantics both keep: per-topic order, at-least-once delivery to each consumer group, and a
//! restarted consumer resuming from its group's last committed offset.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

/// Topics of CONTRACT 6.
pub mod topics {
    /// Payment events in.
    pub const PAYMENTS: &str = "payments";
    /// Undecodable or invalid payment messages.
    pub const PAYMENTS_DLQ: &str = "payments.dlq";
    /// Tour lifecycle.
    pub const TOURS: &str = "tours";
    /// Appointments (realtor calendar entries).
    pub const APPOINTMENTS: &str = "appointments";
    /// Realtor availability changes.
    pub const AVAILABILITY: &str = "availability";
    /// Accounts.
    pub const IAM: &str = "iam";
    /// Listings.
    pub const LISTINGS: &str = "listings";
    /// Notifications.
    pub const NOTIFICATIONS: &str = "notifications";
    /// Every topic the engine creates at start.
    pub const ALL: [&str; 8] = [
        PAYMENTS,
        PAYMENTS_DLQ,
        TOURS,
        APPOINTMENTS,
        AVAILABILITY,
        IAM,
        LISTINGS,
        NOTIFICATIONS,
    ];
}

/// The JSON envelope of every event (CONTRACT 6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique per event; consumers dedup on it.
    pub event_id: Uuid,
    /// `payment.succeeded`, `tour.assigned`, ...
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// The event's data.
    pub data: serde_json::Value,
}

impl Envelope {
    /// A new event with a fresh id, now.
    #[must_use]
    pub fn new(event_type: &str, data: serde_json::Value) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event_type.to_owned(),
            occurred_at: Utc::now(),
            data,
        }
    }
}

/// One message as a consumer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset within the partition.
    pub offset: i64,
    /// The key (entity id).
    pub key: String,
    /// The value, unchanged bytes (usually a JSON [`Envelope`]).
    pub payload: Vec<u8>,
    /// Headers (e.g. `error`, `source-offset` on the dead-letter topic).
    pub headers: Vec<(String, String)>,
}

/// Why the bus failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus is shutting down.
    #[error("event bus closed")]
    Closed,
    /// The broker failed (text from the client library).
    #[error("broker error: {0}")]
    Broker(String),
}

/// Publishing and consuming keyed messages.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Appends a message to `topic`; returns once the bus has accepted it durably (as far as
    /// the adapter is durable).
    async fn publish(
        &self,
        topic: &str,
        key: &str,
        payload: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<(), BusError>;

    /// A consumer of `topic` in consumer group `group`, starting after the group's last
    /// committed offset.
    async fn consumer(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError>;
}

/// One member of a consumer group.
#[async_trait]
pub trait Consumer: Send {
    /// The next message, waiting for one.
    async fn next(&mut self) -> Result<Message, BusError>;
    /// Marks everything up to and including `message` as processed for the group.
    async fn commit(&mut self, message: &Message) -> Result<(), BusError>;
}

/// Messages kept per topic in memory; older ones are dropped once every group is past them.
const RETAIN_PER_TOPIC: usize = 100_000;

#[derive(Default)]
struct Topic {
    /// Offset of `log[0]`.
    base: i64,
    log: VecDeque<Message>,
    committed: HashMap<String, i64>,
}

#[derive(Default)]
struct Shared {
    topics: Mutex<HashMap<String, Topic>>,
    notify: Notify,
}

/// The embedded default: one partition per topic, in memory, same envelopes as Kafka.
/// Nothing survives the process; the payment inbox and the outbox make that safe for the
/// engine's own events (a tour is created in the same transaction that records the payment).
#[derive(Clone, Default)]
pub struct InProcessBus {
    shared: Arc<Shared>,
}

impl InProcessBus {
    /// An empty bus.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn with_topic<R>(&self, topic: &str, f: impl FnOnce(&mut Topic) -> R) -> R {
        let mut topics = self
            .shared
            .topics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(topics.entry(topic.to_owned()).or_default())
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(
        &self,
        topic: &str,
        key: &str,
        payload: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<(), BusError> {
        self.with_topic(topic, |t| {
            let offset = t.base + t.log.len() as i64;
            t.log.push_back(Message {
                topic: topic.to_owned(),
                partition: 0,
                offset,
                key: key.to_owned(),
                payload,
                headers,
            });
            // Drop what every group has committed, and past the retention what nobody reads.
            let floor = t.committed.values().copied().min().unwrap_or(i64::MAX);
            while t.log.len() > RETAIN_PER_TOPIC
                || t.log
                    .front()
                    .is_some_and(|m| m.offset < floor && !t.committed.is_empty())
            {
                t.log.pop_front();
                t.base += 1;
            }
        });
        self.shared.notify.notify_waiters();
        Ok(())
    }

    async fn consumer(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError> {
        let position = self.with_topic(topic, |t| {
            let committed = t.committed.get(group).copied();
            // A new group starts at the oldest retained message; an old one after its commit.
            let start = committed.map_or(t.base, |c| c + 1);
            t.committed.entry(group.to_owned()).or_insert(start - 1);
            start
        });
        Ok(Box::new(InProcessConsumer {
            bus: self.clone(),
            topic: topic.to_owned(),
            group: group.to_owned(),
            position,
        }))
    }
}

struct InProcessConsumer {
    bus: InProcessBus,
    topic: String,
    group: String,
    position: i64,
}

#[async_trait]
impl Consumer for InProcessConsumer {
    async fn next(&mut self) -> Result<Message, BusError> {
        loop {
            // Register interest before looking, so a publish in between is not missed.
            let notified = self.bus.shared.notify.notified();
            let found = self.bus.with_topic(&self.topic, |t| {
                let index = (self.position.max(t.base) - t.base) as usize;
                t.log.get(index).cloned()
            });
            if let Some(message) = found {
                self.position = message.offset + 1;
                return Ok(message);
            }
            notified.await;
        }
    }

    async fn commit(&mut self, message: &Message) -> Result<(), BusError> {
        self.bus.with_topic(&self.topic, |t| {
            let c = t.committed.entry(self.group.clone()).or_insert(-1);
            *c = (*c).max(message.offset);
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order_and_resumes_after_the_commit() {
        let bus = InProcessBus::new();
        for i in 0..5 {
            bus.publish("t", "k", vec![i], vec![]).await.unwrap();
        }
        let mut c = bus.consumer("t", "g").await.unwrap();
        let a = c.next().await.unwrap();
        let b = c.next().await.unwrap();
        assert_eq!((a.payload.clone(), b.payload.clone()), (vec![0], vec![1]));
        c.commit(&a).await.unwrap();
        drop(c);
        // A restarted member of the group gets everything after the commit again.
        let mut c = bus.consumer("t", "g").await.unwrap();
        assert_eq!(c.next().await.unwrap().payload, vec![1]);
        // Another group sees everything retained from its start.
        let mut other = bus.consumer("t", "other").await.unwrap();
        assert_eq!(other.next().await.unwrap().payload, vec![0]);
    }

    #[tokio::test]
    async fn a_waiting_consumer_wakes_on_publish() {
        let bus = InProcessBus::new();
        let mut c = bus.consumer("t", "g").await.unwrap();
        let waiter = tokio::spawn(async move { c.next().await.unwrap().payload });
        tokio::task::yield_now().await;
        bus.publish("t", "k", b"x".to_vec(), vec![("h".into(), "v".into())])
            .await
            .unwrap();
        assert_eq!(waiter.await.unwrap(), b"x".to_vec());
    }
}
