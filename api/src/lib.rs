//! Tourwise's door: configuration, the `tourwise` command line and the HTTP API.
//!
//! Handlers never assign realtors themselves: they send messages to the actors or publish
//! events (DESIGN.md, "api").

pub mod auth;
pub mod chat;
pub mod config;
pub mod error;
pub mod list;
pub mod media;
pub mod metrics;
pub mod perm;
pub mod ratelimit;
pub mod routes;
pub mod search_cache;
pub mod server;
pub mod simulate;
pub mod state;
pub mod telemetry;
pub mod tour_views;
