//! Any bytes on the `payments` topic: `decode` answers a typed result and never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tourwise_fuzz::payment_event::check(data));
