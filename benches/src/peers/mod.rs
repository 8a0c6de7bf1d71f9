//! The designs compared by `compare` (issue #7), each answering "the nearest realtor able to
//! take this tour" for the queries of a [`SlotCity`]: Tourwise's engine in process and through
//! its shard actors, and the two designs a team would pick instead.

mod postgis;
mod redis_geo;

use std::cell::RefCell;
use std::sync::Arc;

use engine::{Nearest, RealtorId, RealtorIndex, SearchScratch};

pub use postgis::PostgisDesign;
pub use redis_geo::RedisDesign;

use crate::slots::{SlotCity, SlotQuery};

/// One way of answering "the nearest realtor able to take this tour".
#[async_trait::async_trait]
pub trait Design: Send + Sync {
    /// Name in the table.
    fn name(&self) -> &'static str;
    /// The realtor `nearest` picks, if any.
    async fn nearest(&self, query: &SlotQuery) -> anyhow::Result<Option<RealtorId>>;
}

/// Tourwise: the engine's index in process (what each shard actor holds).
pub struct EngineDesign {
    /// The whole city in one index.
    pub index: RealtorIndex,
}

thread_local! {
    static SCRATCH: RefCell<SearchScratch> = RefCell::new(SearchScratch::default());
}

#[async_trait::async_trait]
impl Design for EngineDesign {
    fn name(&self) -> &'static str {
        "Tourwise engine (in process)"
    }

    async fn nearest(&self, query: &SlotQuery) -> anyhow::Result<Option<RealtorId>> {
        Ok(SCRATCH.with_borrow_mut(|scratch| {
            self.index
                .search_with(&query.plan, &Nearest, scratch)
                .choice
                .map(|c| c.realtor_id)
        }))
    }
}

/// Tourwise through its actors: the same question asked of the runtime, which fans it out to
/// the shard actors ring by ring and merges their decisions (no reservation).
pub struct ActorsDesign {
    /// The runtime asked.
    pub runtime: actors::runtime::Runtime,
}

impl ActorsDesign {
    /// A runtime over a memory store holding `city`.
    ///
    /// # Errors
    /// The runtime does not start.
    pub async fn start(city: &SlotCity) -> anyhow::Result<ActorsDesign> {
        let store = Arc::new(actors::memstore::MemoryStore::new());
        let realtors: Vec<_> = city
            .realtors
            .iter()
            .filter_map(|r| city.realtor(r.id, r.home, r.radius_km).ok())
            .collect();
        actors::store::Store::upsert_realtor_profiles(store.as_ref(), &realtors).await?;
        store.import_bookings(
            city.realtors
                .iter()
                .flat_map(|r| r.booked.iter().flatten().map(move |b| (r.id, *b))),
        );
        let config = actors::runtime::RuntimeConfig {
            namespace: format!("compare{}/", city.realtors.len()),
            visit_minutes: crate::slots::VISIT_MINUTES,
            ..actors::runtime::RuntimeConfig::default()
        };
        let bus = Arc::new(actors::bus::InProcessBus::new());
        let runtime = actors::runtime::Runtime::start(store, bus, config).await?;
        Ok(ActorsDesign { runtime })
    }
}

#[async_trait::async_trait]
impl Design for ActorsDesign {
    fn name(&self) -> &'static str {
        "Tourwise through shard actors"
    }

    async fn nearest(&self, query: &SlotQuery) -> anyhow::Result<Option<RealtorId>> {
        let d = self.runtime.decide(query.plan.clone()).await?;
        Ok(d.choice.map(|c| c.realtor_id))
    }
}
