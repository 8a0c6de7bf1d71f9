//! The event bus port (CONTRACT 6): topics of keyed messages, consumer groups with committed
//! offsets. Two adapters: [`InProcessBus`] (the embedded default) and [`KafkaBus`].
//!
//! Semantics both keep: per-partition order (messages with one key share a partition),
//! at-least-once delivery to each consumer group, and a restarted consumer resuming from its
//! group's last committed offset.

mod kafka;
mod memory;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use kafka::{KafkaBus, KafkaConfig};
pub use memory::InProcessBus;

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

/// One message to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Its topic.
    pub topic: String,
    /// The key (entity id): messages with one key keep their order.
    pub key: String,
    /// The value (usually a JSON [`Envelope`]).
    pub payload: Vec<u8>,
    /// Headers.
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

    /// Publishes `messages` in order (per key), overlapping the round trips where the adapter
    /// can; one result per message, in order.
    async fn publish_batch(&self, messages: &[Outgoing]) -> Vec<Result<(), BusError>> {
        let mut results = Vec::with_capacity(messages.len());
        for m in messages {
            let r = self
                .publish(&m.topic, &m.key, m.payload.clone(), m.headers.clone())
                .await;
            results.push(r);
        }
        results
    }

    /// A consumer of `topic` in consumer group `group`, starting after the group's last
    /// committed offset.
    async fn consumer(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError>;

    /// Whether the broker answers now (`/readyz`); an in-process bus always does.
    async fn reachable(&self) -> bool {
        true
    }

    /// Whether this bus is a remote broker that [`EventBus::reachable`] really asks.
    fn is_remote(&self) -> bool {
        false
    }
}

/// One member of a consumer group.
#[async_trait]
pub trait Consumer: Send {
    /// The next message, waiting for one.
    async fn next(&mut self) -> Result<Message, BusError>;
    /// Marks everything up to and including `message` (in its partition) as processed for the
    /// group. Call it in each partition's order.
    async fn commit(&mut self, message: &Message) -> Result<(), BusError>;
    /// Messages of the topic the group has not committed yet (summed over the partitions this
    /// member owns); `None` when the adapter cannot tell right now.
    async fn lag(&mut self) -> Option<i64>;
    /// Commits what was marked and leaves the group (a clean shutdown).
    async fn close(&mut self) -> Result<(), BusError>;
    /// The partitions of the topic this member owns now, and how many the topic has; `None`
    /// when the adapter cannot tell (the in-process bus has one member, which owns all).
    async fn assignment(&mut self) -> Option<Assignment> {
        None
    }
}

/// The partitions a consumer group member owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Owned by this member, ascending.
    pub owned: Vec<i32>,
    /// Partitions of the topic.
    pub partitions: i32,
}
