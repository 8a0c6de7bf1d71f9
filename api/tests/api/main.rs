//! The HTTP API end to end: the real app on port 0 with a fresh database per test.

mod auth;
mod bad_input;
mod booking;
mod catalog;
mod chat;
mod dashboard;
mod events;
mod flow;
mod helpers;
mod metrics;
mod notifications;
mod openapi;
mod permissions;
mod restart;
mod reviews;
