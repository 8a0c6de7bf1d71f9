//! Any body on any endpoint that takes one: a JSON error or success, never a 5xx.
#![no_main]

use std::sync::OnceLock;

use tourwise_fuzz::request_body::Target;

static TARGET: OnceLock<Target> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    TARGET.get_or_init(Target::start).check(data);
});
