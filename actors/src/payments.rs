//! The `payment.succeeded` event (CONTRACT 6): decoding and validation in one place, shared by
//! the payment API (producing) and the engine's consumer (consuming).

use engine::{CustomerId, PaymentId, Stop, TimeWindow};
use serde::{Deserialize, Serialize};

use crate::bus::Envelope;

/// Event type of a succeeded payment.
pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";
/// Event type of a failed payment.
pub const PAYMENT_FAILED: &str = "payment.failed";

/// The data of `payment.succeeded`: everything the engine needs to book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentSucceeded {
    /// The payment (the idempotency key).
    pub payment_id: PaymentId,
    /// Who paid.
    pub customer_id: CustomerId,
    /// Amount in cents.
    pub amount_cents: i64,
    /// ISO currency code.
    pub currency: String,
    /// 1 to 8 listings with their locations (checked by [`Location`](engine::Location)'s serde).
    pub listings: Vec<Stop>,
    /// The customer's window (non-empty, at most 14 days).
    pub window: TimeWindow,
}

/// A payment message that cannot be booked; it goes to `payments.dlq` with this as `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPayment {
    /// Not a JSON envelope.
    #[error("undecodable envelope: {0}")]
    Envelope(String),
    /// An envelope of a type the consumer does not handle.
    #[error("unexpected event type {0:?}")]
    UnknownType(String),
    /// Data that does not decode or breaks a rule.
    #[error("invalid payment.succeeded data: {0}")]
    Data(String),
}

/// What a message on `payments` asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentEvent {
    /// Book a tour.
    Succeeded(Envelope, PaymentSucceeded),
    /// Nothing to book; acknowledged.
    Failed(Envelope),
}

/// Decodes and validates one message value from the `payments` topic.
///
/// # Errors
/// When the bytes are not an envelope, the type is unknown, or the data is invalid
/// (ids, 1..8 distinct listings, coordinates in range, a sane window, non-negative amount).
pub fn decode(payload: &[u8]) -> Result<PaymentEvent, InvalidPayment> {
    let envelope: Envelope =
        serde_json::from_slice(payload).map_err(|e| InvalidPayment::Envelope(e.to_string()))?;
    match envelope.event_type.as_str() {
        PAYMENT_SUCCEEDED => {
            let data: PaymentSucceeded = serde_json::from_value(envelope.data.clone())
                .map_err(|e| InvalidPayment::Data(e.to_string()))?;
            if data.listings.is_empty() || data.listings.len() > engine::route::MAX_LISTINGS {
                return Err(InvalidPayment::Data(format!(
                    "a tour has 1 to {} listings, got {}",
                    engine::route::MAX_LISTINGS,
                    data.listings.len()
                )));
            }
            for (i, a) in data.listings.iter().enumerate() {
                if data.listings[..i].iter().any(|b| b.id == a.id) {
                    return Err(InvalidPayment::Data(format!(
                        "listing {} appears twice",
                        a.id
                    )));
                }
            }
            if data.amount_cents < 0 {
                return Err(InvalidPayment::Data("amount_cents is negative".into()));
            }
            Ok(PaymentEvent::Succeeded(envelope, data))
        }
        PAYMENT_FAILED => Ok(PaymentEvent::Failed(envelope)),
        other => Err(InvalidPayment::UnknownType(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(data: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "event_id": "0193a4b0-0000-7000-8000-000000000001",
            "type": "payment.succeeded",
            "occurred_at": "2026-11-22T10:00:00Z",
            "data": data
        }))
        .unwrap()
    }

    fn good() -> serde_json::Value {
        json!({"payment_id": "0193a4b0-0000-7000-8000-000000000002",
               "customer_id": "0193a4b0-0000-7000-8000-000000000003",
               "amount_cents": 5000, "currency": "USD",
               "listings": [{"id": "0193a4b0-0000-7000-8000-000000000004", "lat": 38.7223, "lng": -9.1393}],
               "window": {"start": "2026-12-01T09:00:00Z", "end": "2026-12-01T18:00:00Z"}})
    }

    #[test]
    fn decodes_the_contract_example() {
        let PaymentEvent::Succeeded(_, p) = decode(&event(good())).unwrap() else {
            panic!("succeeded expected")
        };
        assert_eq!(p.listings.len(), 1);
        assert_eq!(p.amount_cents, 5000);
    }

    #[test]
    fn refuses_garbage_of_every_kind() {
        assert!(matches!(
            decode(b"{not json"),
            Err(InvalidPayment::Envelope(_))
        ));
        let mut lat = good();
        lat["listings"][0]["lat"] = json!(200);
        assert!(matches!(decode(&event(lat)), Err(InvalidPayment::Data(_))));
        let mut missing = good();
        missing.as_object_mut().unwrap().remove("window");
        assert!(matches!(
            decode(&event(missing)),
            Err(InvalidPayment::Data(_))
        ));
        let mut none = good();
        none["listings"] = json!([]);
        assert!(matches!(decode(&event(none)), Err(InvalidPayment::Data(_))));
        let mut backwards = good();
        backwards["window"] =
            json!({"start": "2026-12-01T18:00:00Z", "end": "2026-12-01T09:00:00Z"});
        assert!(matches!(
            decode(&event(backwards)),
            Err(InvalidPayment::Data(_))
        ));
        let mut bad_id = good();
        bad_id["payment_id"] = json!("nope");
        assert!(matches!(
            decode(&event(bad_id)),
            Err(InvalidPayment::Data(_))
        ));
        let other = serde_json::to_vec(&json!({"event_id": "0193a4b0-0000-7000-8000-000000000001",
            "type": "payment.refunded", "occurred_at": "2026-11-22T10:00:00Z", "data": {}}))
        .unwrap();
        assert!(matches!(
            decode(&other),
            Err(InvalidPayment::UnknownType(_))
        ));
    }
}
