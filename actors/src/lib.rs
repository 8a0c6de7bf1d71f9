//! Tourwise's runtime: the actors that own shards, tours and carts (see ARCHITECTURE.md).

pub mod store;
