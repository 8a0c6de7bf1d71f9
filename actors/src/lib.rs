//! Tourwise's runtime: the event bus, persistence, and the supervised actors that own shards
//! and tours (see ARCHITECTURE.md).

pub mod availability_view;
pub mod bus;
pub mod mail;
pub mod memstore;
pub mod notices;
pub mod outbox;
pub mod payments;
pub mod reminders;
pub mod runtime;
pub mod store;
