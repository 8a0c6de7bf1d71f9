//! [`KafkaBus`]: the event bus port over Kafka (rdkafka / librdkafka).
//!
//! Producer: idempotent (no duplicates or reordering from the client's own retries), `acks=all`.
//! Consumers: offsets are *stored* by [`Consumer::commit`] once the message is processed and
//! committed to the broker by librdkafka's auto-commit (every 500 ms) and on [`Consumer::close`],
//! so a crash re-delivers at most the last half second of processed messages, which the
//! engine's idempotent inbox absorbs. Topics are created at start when missing (the broker
//! may not auto-create them).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::{ClientConfig, Message as _, Offset};

use super::{topics, Assignment, BusError, Consumer, EventBus, Message, Outgoing};

/// How to reach and use the brokers.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port[,host:port...]`.
    pub brokers: String,
    /// Partitions of the topics the engine creates (existing topics are left as they are).
    pub partitions: i32,
    /// Replication factor of created topics.
    pub replication: i32,
    /// Static group membership (`group.instance.id`): a restarted member with the same id
    /// takes its partitions back at once instead of after the session timeout. Unique per
    /// process; `None` for dynamic membership.
    pub instance_id: Option<String>,
    /// How long start-up waits for the brokers before failing.
    pub connect_timeout: Duration,
    /// How long the group waits for a silent member before moving its partitions.
    pub session_timeout: Duration,
}

impl KafkaConfig {
    /// Defaults for `brokers`: 6 partitions, replication 1, dynamic membership.
    #[must_use]
    pub fn new(brokers: &str) -> Self {
        Self {
            brokers: brokers.to_owned(),
            partitions: 6,
            replication: 1,
            instance_id: None,
            connect_timeout: Duration::from_secs(10),
            session_timeout: Duration::from_secs(10),
        }
    }
}

/// The Kafka adapter: one idempotent producer shared by every publisher, a consumer per call
/// to [`EventBus::consumer`].
#[derive(Clone)]
pub struct KafkaBus {
    config: KafkaConfig,
    producer: FutureProducer,
}

impl std::fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBus")
            .field("brokers", &self.config.brokers)
            .finish_non_exhaustive()
    }
}

fn broker(err: impl std::fmt::Display) -> BusError {
    BusError::Broker(err.to_string())
}

impl KafkaBus {
    /// Connects to the brokers (failing within `connect_timeout` when none answers) and
    /// creates the topics of CONTRACT 6 that are missing.
    ///
    /// # Errors
    /// [`BusError::Broker`] naming the brokers when they are unreachable or refuse the topics.
    pub async fn connect(config: KafkaConfig) -> Result<Self, BusError> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("enable.idempotence", "true")
            .set("linger.ms", "2")
            .set("message.timeout.ms", "30000")
            .set("queue.buffering.max.messages", "200000")
            .create()
            .map_err(broker)?;
        let probe = producer.clone();
        let timeout = config.connect_timeout;
        let brokers = config.brokers.clone();
        let existing: Vec<String> = tokio::task::spawn_blocking(move || {
            probe
                .client()
                .fetch_metadata(None, timeout)
                .map(|m| m.topics().iter().map(|t| t.name().to_owned()).collect())
        })
        .await
        .map_err(broker)?
        .map_err(|err| BusError::Broker(format!("Kafka brokers {brokers} unreachable: {err}")))?;
        let missing: Vec<&str> = topics::ALL
            .into_iter()
            .filter(|t| !existing.iter().any(|e| e == t))
            .collect();
        if !missing.is_empty() {
            create_topics(&config, &missing).await?;
        }
        Ok(Self { config, producer })
    }

    /// The configuration it was connected with.
    #[must_use]
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    fn record<'a>(
        topic: &'a str,
        key: &'a str,
        payload: &'a [u8],
        headers: &[(String, String)],
    ) -> FutureRecord<'a, str, [u8]> {
        let mut record = FutureRecord::to(topic).key(key).payload(payload);
        if !headers.is_empty() {
            let mut owned = OwnedHeaders::new_with_capacity(headers.len());
            for (name, value) in headers {
                owned = owned.insert(Header {
                    key: name,
                    value: Some(value.as_bytes()),
                });
            }
            record = record.headers(owned);
        }
        record
    }

    async fn send(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        headers: &[(String, String)],
    ) -> Result<(), BusError> {
        let record = Self::record(topic, key, payload, headers);
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(err, _)| broker(err))
    }
}

async fn create_topics(config: &KafkaConfig, names: &[&str]) -> Result<(), BusError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()
        .map_err(broker)?;
    let new: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            NewTopic::new(
                name,
                config.partitions,
                TopicReplication::Fixed(config.replication),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(config.connect_timeout));
    for result in admin.create_topics(&new, &options).await.map_err(broker)? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(BusError::Broker(format!(
                    "cannot create topic {name}: {code}"
                )))
            }
        }
    }
    tracing::info!(topics = ?names, partitions = config.partitions, "created Kafka topics");
    Ok(())
}

#[async_trait]
impl EventBus for KafkaBus {
    async fn reachable(&self) -> bool {
        let probe = self.producer.clone();
        tokio::task::spawn_blocking(move || {
            probe
                .client()
                .fetch_metadata(Some(topics::PAYMENTS), Duration::from_secs(1))
                .is_ok()
        })
        .await
        .unwrap_or(false)
    }

    fn is_remote(&self) -> bool {
        true
    }

    async fn publish(
        &self,
        topic: &str,
        key: &str,
        payload: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<(), BusError> {
        self.send(topic, key, &payload, &headers).await
    }

    async fn publish_batch(&self, messages: &[Outgoing]) -> Vec<Result<(), BusError>> {
        // `join_all` polls the sends in order, so they enter the producer's queue in order and
        // the idempotent producer keeps that order per partition; the broker round trips overlap.
        futures::future::join_all(
            messages
                .iter()
                .map(|m| self.send(&m.topic, &m.key, &m.payload, &m.headers)),
        )
        .await
    }

    async fn consumer(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.config.brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "500")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            // A broker holds a fetch up to this long when it has less than fetch.min.bytes;
            // tansu holds every fetch this long, so at librdkafka's 500 ms default the
            // pipeline ran at ~94 events/s (benches/examples/pipeline.rs). Idle cost: one
            // fetch per 10 ms.
            .set("fetch.wait.max.ms", "10")
            .set(
                "session.timeout.ms",
                self.config.session_timeout.as_millis().to_string(),
            );
        if let Some(id) = &self.config.instance_id {
            config.set("group.instance.id", format!("{id}-{topic}"));
        }
        let consumer: StreamConsumer = config.create().map_err(broker)?;
        consumer.subscribe(&[topic]).map_err(broker)?;
        Ok(Box::new(KafkaConsumer {
            inner: Arc::new(consumer),
            topic: topic.to_owned(),
        }))
    }
}

struct KafkaConsumer {
    inner: Arc<StreamConsumer>,
    topic: String,
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn next(&mut self) -> Result<Message, BusError> {
        let m = self.inner.recv().await.map_err(broker)?;
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                        (h.key.to_owned(), value.into_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Message {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
            key: m
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default(),
            payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers,
        })
    }

    async fn commit(&mut self, message: &Message) -> Result<(), BusError> {
        // Stores offset + 1 (librdkafka's convention), committed by auto-commit or `close`.
        self.inner
            .store_offset(&message.topic, message.partition, message.offset)
            .map_err(broker)
    }

    async fn lag(&mut self) -> Option<i64> {
        let consumer = self.inner.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || -> Result<i64, KafkaError> {
            let timeout = Duration::from_secs(2);
            let assigned = consumer.assignment()?;
            let committed = consumer.committed_offsets(assigned, timeout)?;
            let mut lag = 0;
            for p in committed.elements_for_topic(&topic) {
                let (low, high) = consumer.fetch_watermarks(&topic, p.partition(), timeout)?;
                let done = match p.offset() {
                    Offset::Offset(o) => o,
                    _ => low,
                };
                lag += (high - done).max(0);
            }
            Ok(lag)
        })
        .await
        .ok()?
        .ok()
    }

    async fn assignment(&mut self) -> Option<Assignment> {
        let consumer = self.inner.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || -> Result<Assignment, KafkaError> {
            let mut owned: Vec<i32> = consumer
                .assignment()?
                .elements_for_topic(&topic)
                .iter()
                .map(rdkafka::topic_partition_list::TopicPartitionListElem::partition)
                .collect();
            owned.sort_unstable();
            let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(2))?;
            let partitions = metadata.topics().first().map_or(0, |t| {
                i32::try_from(t.partitions().len()).unwrap_or(i32::MAX)
            });
            Ok(Assignment { owned, partitions })
        })
        .await
        .ok()?
        .inspect_err(|err| tracing::debug!(%err, "consumer assignment unknown"))
        .ok()
        .filter(|a| a.partitions > 0)
    }

    async fn close(&mut self) -> Result<(), BusError> {
        let consumer = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                // Nothing stored since the last commit.
                Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                Err(err) => return Err(broker(err)),
            }
            consumer.unsubscribe();
            Ok(())
        })
        .await
        .map_err(broker)?
    }
}
