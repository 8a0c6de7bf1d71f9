//! What the fuzz targets check, as plain functions: libFuzzer calls them with generated
//! inputs (`cargo +nightly fuzz run <target>`), the seed replay tests with the committed ones.

pub mod payment_event;
pub mod request_body;
