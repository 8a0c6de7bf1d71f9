//! The `payments` topic consumer of the runtime.
//!
//! Pipelined: up to [`IN_FLIGHT`] messages are handled at once (decoding, storing the tour),
//! but offsets are committed strictly in the order the messages arrived, each only once its
//! message is done: a succeeded payment once its tour is durably stored, an invalid message once
//! it is on `payments.dlq`. A crash therefore re-delivers only messages whose outcome may not
//! be durable, and the idempotent inbox (one tour per `payment_id`) absorbs the repeats.
//! Handling two events of one payment at once is safe for the same reason: the inbox lets
//! exactly one of them create the tour, whatever the order.

use std::collections::VecDeque;

use crate::bus::{Consumer, Message};

use super::*;

/// Messages handled concurrently at most.
const IN_FLIGHT: usize = 512;
/// How often the consumer lag is measured.
const LAG_EVERY: Duration = Duration::from_secs(2);

/// What handling one message came to.
enum Handled {
    /// Done: commit it.
    Done,
    /// Undecodable or invalid: to the dead-letter topic with this reason, then commit.
    Dead(String),
    /// Not done (the runtime is stopping): leave it uncommitted, so it is delivered again.
    Abandoned,
}

/// Consumes `payments` until `stop`; then finishes what is in flight, commits and leaves the
/// consumer group.
pub(super) async fn consume_payments(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let bus = core.ctx.bus.clone();
    let mut consumer = loop {
        match bus.consumer(topics::PAYMENTS, PAYMENTS_GROUP).await {
            Ok(c) => break c,
            Err(err) => {
                tracing::warn!(%err, "payments consumer unavailable; retrying");
                tokio::select! {
                    _ = stop.changed() => return,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    };
    let mut in_flight: VecDeque<(Message, JoinHandle<Handled>)> = VecDeque::new();
    let mut lag_tick = tokio::time::interval(LAG_EVERY);
    // The partitions owned at the last look (scale-out: gaining some means adopting tours).
    // None until the first look: at start, recovery has started every open tour already.
    let mut owned: Option<Vec<i32>> = None;
    let mut stopping = false;
    while !stopping {
        tokio::select! {
            biased;
            _ = stop.changed() => stopping = true,
            handled = front(&mut in_flight), if !in_flight.is_empty() => {
                let (message, _) = in_flight.pop_front().unwrap_or_else(|| unreachable!());
                if !finish(&core, consumer.as_mut(), &message, handled, &stop).await {
                    stopping = true;
                }
            }
            message = consumer.next(), if in_flight.len() < IN_FLIGHT => match message {
                Ok(message) => {
                    tracing::debug!(partition = message.partition, offset = message.offset, "payments message received");
                    let task = tokio::spawn(handle(core.clone(), message.clone(), stop.clone()));
                    in_flight.push_back((message, task));
                }
                Err(err) => {
                    tracing::warn!(%err, "payments consumer failed; retrying");
                    tokio::select! {
                        _ = stop.changed() => stopping = true,
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
            },
            _ = lag_tick.tick() => {
                let lag = consumer.lag().await.unwrap_or(-1);
                core.consumer_lag.store(lag, Ordering::Relaxed);
                if let Some(assignment) = consumer.assignment().await {
                    if let Some(before) = &owned {
                        let gained: Vec<i32> = assignment
                            .owned
                            .iter()
                            .copied()
                            .filter(|p| !before.contains(p))
                            .collect();
                        if !gained.is_empty() {
                            tokio::spawn(adopt(core.clone(), gained, assignment.partitions));
                        }
                    }
                    owned = Some(assignment.owned);
                }
            }
        }
    }
    // Clean shutdown: the in-flight tasks see `stop` and end quickly (abandoning what is not
    // stored); commit the prefix that finished, then leave the group.
    while let Some((message, task)) = in_flight.pop_front() {
        let handled = task.await.unwrap_or(Handled::Abandoned);
        if !finish(&core, consumer.as_mut(), &message, handled, &stop).await {
            break;
        }
    }
    if let Err(err) = consumer.close().await {
        tracing::warn!(%err, "payments consumer did not close cleanly");
    }
}

/// Adopts the open tours of newly owned partitions' regions (see [`super::peers`]).
async fn adopt(core: Arc<Core>, gained: Vec<i32>, partitions: i32) {
    match super::peers::adopt_regions(&core, &gained, partitions).await {
        Ok(adopted) => tracing::info!(
            ?gained,
            adopted,
            "owning more payments partitions: adopted their regions' open tours"
        ),
        Err(err) => {
            tracing::warn!(?gained, %err, "open tours of newly owned partitions not adopted")
        }
    }
}

/// The outcome of the oldest message in flight.
async fn front(in_flight: &mut VecDeque<(Message, JoinHandle<Handled>)>) -> Handled {
    match in_flight.front_mut() {
        // A panicked handler is treated as not done: the message is delivered again.
        Some((_, task)) => task.await.unwrap_or(Handled::Abandoned),
        None => std::future::pending().await,
    }
}

/// Dead-letters and commits a handled message; false when nothing more may be committed
/// (it was abandoned, or the dead-letter topic refused it until the runtime stopped).
async fn finish(
    core: &Core,
    consumer: &mut dyn Consumer,
    message: &Message,
    handled: Handled,
    stop: &watch::Receiver<bool>,
) -> bool {
    match handled {
        Handled::Abandoned => return false,
        Handled::Done => {}
        Handled::Dead(error) => {
            core.dead_lettered.fetch_add(1, Ordering::Relaxed);
            tracing::info!(offset = message.offset, partition = message.partition, %error, "payment message dead-lettered");
            let headers = vec![
                ("error".to_owned(), error),
                ("source-offset".to_owned(), message.offset.to_string()),
                ("source-partition".to_owned(), message.partition.to_string()),
            ];
            let mut delay = Duration::from_millis(50);
            while let Err(err) = core
                .ctx
                .bus
                .publish(
                    topics::PAYMENTS_DLQ,
                    &message.key,
                    message.payload.clone(),
                    headers.clone(),
                )
                .await
            {
                tracing::warn!(%err, "dead-letter publish failed; retrying");
                if *stop.borrow() {
                    return false;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    tracing::debug!(
        partition = message.partition,
        offset = message.offset,
        "payments offset stored"
    );
    if let Err(err) = consumer.commit(message).await {
        // Not fatal: a later commit covers it, or the message is delivered again.
        tracing::warn!(%err, "payments commit failed");
    }
    true
}

/// Decodes, validates and stores one payment message.
async fn handle(core: Arc<Core>, message: Message, mut stop: watch::Receiver<bool>) -> Handled {
    let (envelope, payment) = match payments::decode(&message.payload) {
        Err(invalid) => return Handled::Dead(invalid.to_string()),
        Ok(PaymentEvent::Failed(_)) => return Handled::Done,
        Ok(PaymentEvent::Succeeded(envelope, payment)) => (envelope, payment),
    };
    let mut delay = Duration::from_millis(50);
    loop {
        match core
            .submit_payment(envelope.event_id, payment.clone())
            .await
        {
            Ok(_) => return Handled::Done,
            Err(RuntimeError::Invalid(why)) => return Handled::Dead(why),
            Err(err) => {
                tracing::warn!(%err, offset = message.offset, "payment not stored; retrying");
                tokio::select! {
                    _ = stop.changed() => return Handled::Abandoned,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
