//! The `payments` topic consumer of the runtime.

use super::*;

/// The `payments` consumer: invalid messages go to `payments.dlq` (unchanged, with `error`
/// and `source-offset` headers); a succeeded payment is committed only once its tour is
/// stored; a failed payment is acknowledged.
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
    loop {
        let message = tokio::select! {
            _ = stop.changed() => return,
            m = consumer.next() => m,
        };
        let message = match message {
            Ok(m) => m,
            Err(err) => {
                tracing::warn!(%err, "payments consumer failed; retrying");
                tokio::select! {
                    _ = stop.changed() => return,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                continue;
            }
        };
        let invalid = match payments::decode(&message.payload) {
            Err(invalid) => Some(invalid.to_string()),
            Ok(PaymentEvent::Failed(_)) => None,
            Ok(PaymentEvent::Succeeded(envelope, payment)) => {
                let mut delay = Duration::from_millis(50);
                loop {
                    match core
                        .submit_payment(envelope.event_id, payment.clone())
                        .await
                    {
                        Ok(_) => break None,
                        Err(RuntimeError::Invalid(why)) => break Some(why),
                        Err(err) => {
                            tracing::warn!(%err, offset = message.offset, "payment not stored; retrying");
                            tokio::select! {
                                _ = stop.changed() => return, // not committed: redelivered
                                () = tokio::time::sleep(delay) => {}
                            }
                            delay = (delay * 2).min(Duration::from_secs(5));
                        }
                    }
                }
            }
        };
        if let Some(error) = invalid {
            let headers = vec![
                ("error".to_owned(), error),
                ("source-offset".to_owned(), message.offset.to_string()),
            ];
            if let Err(err) = bus
                .publish(
                    topics::PAYMENTS_DLQ,
                    &message.key,
                    message.payload.clone(),
                    headers,
                )
                .await
            {
                tracing::error!(%err, "dead-letter publish failed; message will be redelivered");
                return;
            }
        }
        if let Err(err) = consumer.commit(&message).await {
            tracing::warn!(%err, "payments commit failed");
        }
    }
}
