//! The `payments` topic decoder (`actors::payments::decode`) against arbitrary bytes.

use actors::bus::Envelope;
use actors::payments::{decode, PaymentEvent};

/// Decodes `data`; whatever it accepts must keep the rules of CONTRACT 6 and survive a round
/// trip (what the payment API produces from it is decoded to the same payment).
///
/// # Panics
/// When the decoder panics, or accepts a payment that breaks a rule or does not round-trip.
pub fn check(data: &[u8]) {
    let Ok(event) = decode(data) else {
        // Refusals carry a message for the dead-letter record; building it must not panic.
        let _ = decode(data).map_err(|e| e.to_string());
        return;
    };
    let PaymentEvent::Succeeded(envelope, payment) = event else {
        return;
    };
    let n = payment.listings.len();
    assert!(
        (1..=engine::route::MAX_LISTINGS).contains(&n),
        "{n} listings"
    );
    for (i, a) in payment.listings.iter().enumerate() {
        assert!(
            payment.listings[..i].iter().all(|b| b.id != a.id),
            "repeated listing"
        );
        let (lat, lng) = (a.location.lat(), a.location.lng());
        assert!((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng));
    }
    assert!(payment.amount_cents >= 0);
    assert!(payment.window.start() < payment.window.end());
    assert!(payment.window.end() - payment.window.start() <= chrono::Duration::days(14));

    let again = Envelope {
        data: serde_json::to_value(&payment).expect("a payment serializes"),
        ..envelope
    };
    let bytes = serde_json::to_vec(&again).expect("an envelope serializes");
    match decode(&bytes) {
        Ok(PaymentEvent::Succeeded(_, decoded)) => assert_eq!(decoded, payment),
        other => panic!("round trip changed the payment: {other:?}"),
    }
}
