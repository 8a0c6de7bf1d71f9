//! [`InProcessBus`]: the embedded default adapter of the event bus port.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{BusError, Consumer, EventBus, Message};

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

    async fn lag(&mut self) -> Option<i64> {
        Some(self.bus.with_topic(&self.topic, |t| {
            let end = t.base + t.log.len() as i64;
            let committed = t.committed.get(&self.group).copied().unwrap_or(t.base - 1);
            (end - 1 - committed).max(0)
        }))
    }

    async fn close(&mut self) -> Result<(), BusError> {
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
