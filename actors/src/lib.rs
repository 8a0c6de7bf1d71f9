//! Tourwise's runtime: the event bus, persistence, and (next) the supervised actors that own
//! shards, tours and carts (see ARCHITECTURE.md).

pub mod bus;
pub mod payments;
pub mod store;
