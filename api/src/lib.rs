//! Tourwise's door: configuration, the `tourwise` command line and the HTTP API.
//!
//! Handlers never assign realtors themselves: they send messages to the actors or publish
//! events (DESIGN.md, "api").

pub mod config;
pub mod server;
pub mod telemetry;
