//! The read model of `GET /tours/{id}` (and `GET /tours`): each tour's answer JSON, history
//! included, kept in memory, so a read is a token check and a map lookup instead of two
//! database queries.
//!
//! Why it is never stale for this process: every tour change this process commits goes through
//! the runtime's store, which tells [`TourViews::changed`] synchronously (before the command
//! that made the change answers, see `Runtime::observe_tour_changes`). That marks the tour
//! stale at the new version, and a view read from the database is kept only when it is at least
//! that new, so a read that raced the change cannot put the old answer back.
//!
//! Across processes (several `serve` on one database) another process's changes are not
//! announced here: an entry lives at most `ttl` after it was read from the database, which
//! bounds how stale such a read can be. `capacity = 0` turns the cache off.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use actors::store::TourRecord;
use moka::ops::compute::Op;
use uuid::Uuid;

/// A tour as `GET /tours/{id}` answers it, with what the permission check needs.
#[derive(Debug)]
pub struct TourView {
    /// The record's version when it was read.
    pub version: i32,
    /// Who booked (sees it).
    pub customer: Uuid,
    /// The assigned realtor (sees it).
    pub realtor: Option<Uuid>,
    /// The answer body (CONTRACT 5.2 JSON, with `history`).
    pub body: Bytes,
}

#[derive(Debug, Clone)]
enum Slot {
    /// The answer at `version`.
    Fresh(Arc<TourView>),
    /// Changed to this version; views older than it must not be kept.
    Stale(i32),
}

impl Slot {
    fn version(&self) -> i32 {
        match self {
            Slot::Fresh(view) => view.version,
            Slot::Stale(version) => *version,
        }
    }
}

/// Tour answers by tour id (see the module docs).
pub struct TourViews {
    cache: Option<moka::sync::Cache<Uuid, Slot>>,
}

impl TourViews {
    /// At most `capacity` tours, each kept at most `ttl`; `capacity = 0` keeps nothing.
    #[must_use]
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        let cache = (capacity > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build()
        });
        Self { cache }
    }

    /// The current answer for `tour`, when it is known.
    #[must_use]
    pub fn get(&self, tour: Uuid) -> Option<Arc<TourView>> {
        match self.cache.as_ref()?.get(&tour)? {
            Slot::Fresh(view) => Some(view),
            Slot::Stale(_) => None,
        }
    }

    /// Keeps `view` unless a newer version of the tour is known.
    pub fn put(&self, tour: Uuid, view: Arc<TourView>) {
        let Some(cache) = &self.cache else { return };
        cache.entry(tour).and_compute_with(|current| match current {
            Some(slot) if slot.value().version() > view.version => Op::Nop,
            // Same version: a fresh view wins over a stale mark and is as good as another.
            Some(slot) if slot.value().version() == view.version => match slot.value() {
                Slot::Fresh(_) => Op::Nop,
                Slot::Stale(_) => Op::Put(Slot::Fresh(view)),
            },
            _ => Op::Put(Slot::Fresh(view)),
        });
    }

    /// A committed change of `tour`: answers older than it are dropped and never kept again.
    pub fn changed(&self, tour: &TourRecord) {
        let Some(cache) = &self.cache else { return };
        let version = tour.version;
        cache
            .entry(tour.id.0)
            .and_compute_with(|current| match current {
                Some(slot) if slot.value().version() >= version => Op::Nop,
                _ => Op::Put(Slot::Stale(version)),
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(version: i32) -> Arc<TourView> {
        Arc::new(TourView {
            version,
            customer: Uuid::nil(),
            realtor: None,
            body: Bytes::from(format!("{{\"version\":{version}}}")),
        })
    }

    fn record(id: Uuid, version: i32) -> TourRecord {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let window = engine::TimeWindow::new(at, at + chrono::Duration::hours(2)).unwrap();
        TourRecord {
            id: engine::TourId(id),
            payment_id: engine::PaymentId(Uuid::nil()),
            customer_id: engine::CustomerId(Uuid::nil()),
            status: engine::TourStatus::Pending,
            stops: Vec::new(),
            window,
            duration_minutes: 30,
            realtor_id: None,
            start: None,
            end: None,
            reason: None,
            declined: Vec::new(),
            explanation: None,
            version,
            created_at: at,
            updated_at: at,
        }
    }

    fn cached_version(views: &TourViews, id: Uuid) -> Option<i32> {
        views.get(id).map(|v| v.version)
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let views = TourViews::new(100, Duration::from_secs(60));
        let id = Uuid::new_v4();
        views.put(id, view(1));
        assert_eq!(cached_version(&views, id), Some(1));
        // Version 2 commits; a read that started before it finishes afterwards.
        views.changed(&record(id, 2));
        assert_eq!(cached_version(&views, id), None);
        views.put(id, view(1));
        assert_eq!(cached_version(&views, id), None);
        views.put(id, view(2));
        assert_eq!(cached_version(&views, id), Some(2));
        // An announcement of a version already read changes nothing; an older view loses.
        views.changed(&record(id, 2));
        views.put(id, view(1));
        assert_eq!(cached_version(&views, id), Some(2));
    }

    #[test]
    fn a_change_announced_before_any_read_still_guards() {
        let views = TourViews::new(100, Duration::from_secs(60));
        let id = Uuid::new_v4();
        views.changed(&record(id, 3));
        views.put(id, view(2));
        assert_eq!(cached_version(&views, id), None);
        views.put(id, view(4));
        assert_eq!(cached_version(&views, id), Some(4));
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let views = TourViews::new(0, Duration::from_secs(60));
        let id = Uuid::new_v4();
        views.put(id, view(1));
        assert!(views.get(id).is_none());
        views.changed(&record(id, 2));
    }
}
