//! Who reaches a place from beyond the fine rings, kept per origin cell.
//!
//! A tour nobody anywhere can take (the whole index's free-time summary shows it) still needs
//! its explanation: the nearest candidates listed, everyone else counted by reason. Beyond the
//! fine rings the candidates are exactly the realtors whose radius reaches the tour (see
//! [`super::walk`]): a set that depends on the tour's place alone, not on its time. So a
//! searcher keeps, per origin cell at the index's resolution, the realtors outside that cell's
//! fine rings whose radius surely reaches every point of it (counted by hours and
//! availability) and those whose radius's edge may cross it (kept, and tested against each
//! tour one by one), instead of walking every coarse cell in reach and counting radius bands
//! for each tour. The first such search from a cell pays about one walk to build it; the same
//! places are toured again and again. Any change to the index's cells drops them all.

use h3o::CellIndex;
use rustc_hash::FxHashMap;

use crate::disk::ESCAPE_MARGIN_KM;
use crate::feasibility::RejectReason;
use crate::geo::{GeoPoint, Location};
use crate::matching::coarse::cell_centre;
use crate::matching::explain::{rejected_slot, OutcomeCounts};
use crate::matching::index::{RealtorIndex, Slot};
use crate::matching::scratch::SearchScratch;
use crate::matching::search::Query;
use crate::matching::walk::{Walk, FINE_RINGS};

/// Realtors of one working-hours set and availability, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Group {
    pub(super) hours: u32,
    pub(super) available: bool,
    pub(super) count: usize,
}

/// Adds `n` to the group of `(hours, available)` (a few groups per city: a plain list).
fn add(groups: &mut Vec<Group>, hours: u32, available: bool, n: usize) {
    match groups
        .iter_mut()
        .find(|g| g.hours == hours && g.available == available)
    {
        Some(g) => g.count += n,
        None => groups.push(Group {
            hours,
            available,
            count: n,
        }),
    }
}

/// Takes one from the group of `(hours, available)`: a realtor counted there was recorded
/// one by one after all.
pub(super) fn take_one(groups: &mut [Group], hours: u32, available: bool) {
    if let Some(g) = groups
        .iter_mut()
        .find(|g| g.hours == hours && g.available == available)
    {
        debug_assert!(g.count > 0, "a realtor recorded who was not counted");
        g.count = g.count.saturating_sub(1);
    }
}

/// A realtor whose radius's edge may cross an origin cell.
#[derive(Debug, Clone, Copy)]
struct EdgeRealtor {
    point: GeoPoint,
    radius_km: f64,
    hours: u32,
    available: bool,
}

/// What is kept of one origin cell: ranges of the pools.
#[derive(Debug, Clone, Copy)]
struct Cover {
    surely: (u32, u32),
    edge: (u32, u32),
}

/// Edge records (56 bytes each) kept per realtor indexed, at most: past that, all are dropped
/// and built again as searches need them. (The benchmark city keeps ~270 per origin cell for
/// its 10,000 realtors, so ~300 origins.)
const EDGES_KEPT_PER_REALTOR: usize = 8;

/// The covers a searcher keeps (see the module doc).
#[derive(Debug, Default)]
pub(super) struct Covers {
    /// The index cells' version the covers were built for.
    version: u64,
    by_origin: FxHashMap<CellIndex, Cover>,
    surely: Vec<Group>,
    edges: Vec<EdgeRealtor>,
}

impl RealtorIndex {
    /// Once nobody anywhere can take the tour and the fine rings are walked, counts those
    /// beyond them from the origin's cover ([`super::cover`]) instead of walking every
    /// coarse cell in reach: the walk goes on only to find whoever could still be listed
    /// (nearer than the [`super::explain::MAX_REPORTED`]-th nearest recorded).
    pub(super) fn count_from_afar(
        &self,
        walk: &mut Walk,
        target: &GeoPoint,
        scratch: &mut SearchScratch,
    ) {
        if walk.coarse
            || walk.exhausted
            || walk.next_k < FINE_RINGS
            || walk.summaries.is_none()
            || self.coarse.is_none()
        {
            return;
        }
        // Everyone found so far is of the fine rings (the walk is about to leave them).
        let (seen, generation) = (&scratch.seen, scratch.generation);
        self.reaching_from_afar(
            &mut scratch.covers,
            walk.origin,
            target,
            |entry| seen[entry as usize] == generation,
            &mut scratch.afar,
        );
        scratch
            .listed
            .start(scratch.reports.iter().map(|r| r.distance_km));
        walk.listing = true;
    }

    /// Adds those counted from the origin's cover (and not recorded one by one after all) to
    /// `counted`, each for the reason their area's would give.
    pub(super) fn add_counted_from_afar(
        &self,
        q: &Query<'_>,
        counted: &mut OutcomeCounts,
        scratch: &mut SearchScratch,
    ) {
        for g in std::mem::take(&mut scratch.afar) {
            let reason = if g.available {
                self.area_reason(q, g.hours, scratch)
            } else {
                RejectReason::Unavailable
            };
            counted[rejected_slot(reason)] += g.count;
        }
    }

    /// The realtors outside the fine rings of `origin` (at the index's resolution) whose
    /// radius reaches `target` (a point of `origin`), by hours and availability, into `out`.
    /// `fine_ring_realtors(entry)` tells the realtors of those rings apart; it is asked only
    /// when the cover of `origin` is built (whose fine rings never change while the index's
    /// cells do not).
    pub(super) fn reaching_from_afar(
        &self,
        covers: &mut Covers,
        origin: CellIndex,
        target: &GeoPoint,
        fine_ring_realtors: impl Fn(u32) -> bool,
        out: &mut Vec<Group>,
    ) {
        out.clear();
        if covers.version != self.cells_version
            || covers.edges.len() > EDGES_KEPT_PER_REALTOR * self.entries.len().max(256)
        {
            covers.by_origin.clear();
            covers.surely.clear();
            covers.edges.clear();
            covers.version = self.cells_version;
        }
        let cover = match covers.by_origin.get(&origin) {
            Some(c) => *c,
            None => {
                let c = self.build_cover(covers, origin, fine_ring_realtors);
                covers.by_origin.insert(origin, c);
                c
            }
        };
        out.extend_from_slice(&covers.surely[cover.surely.0 as usize..cover.surely.1 as usize]);
        for e in &covers.edges[cover.edge.0 as usize..cover.edge.1 as usize] {
            // The same test as for a realtor read one by one.
            if e.point.distance_km(target) <= e.radius_km {
                add(out, e.hours, e.available, 1);
            }
        }
    }

    /// Sorts the realtors (but those of the fine rings) for `origin`: every point of
    /// `origin` lies within `circum` of its centre, so a realtor `d` from the centre surely
    /// reaches all of it when `d + circum` is within their radius, and surely none of it when
    /// `d - circum` is beyond.
    fn build_cover(
        &self,
        covers: &mut Covers,
        origin: CellIndex,
        fine_ring_realtors: impl Fn(u32) -> bool,
    ) -> Cover {
        // Room for the haversine's rounding, far above it.
        const SLACK_KM: f64 = 1e-6;
        let (surely_from, edge_from) = (covers.surely.len(), covers.edges.len());
        let mut surely = Vec::new();
        let edge = |s: &Slot| EdgeRealtor {
            point: s.point,
            radius_km: s.radius_km,
            hours: s.hours,
            available: s.available,
        };
        match (cell_centre(origin), &self.coarse) {
            (Some(centre), Some((_, coarse))) => {
                let circum = origin
                    .boundary()
                    .iter()
                    .filter_map(|v| Location::new(v.lat(), v.lng()).ok())
                    .map(|v| centre.distance_km(&v.point()))
                    .fold(0.0, f64::max)
                    + ESCAPE_MARGIN_KM;
                for cc in coarse.values() {
                    // Nobody here whose radius is below this reaches any point of `origin`
                    // (the cell sorts them first).
                    let nearest = cc.centre.distance_km(&centre) - cc.reach_km - circum - SLACK_KM;
                    let from = cc.radii.partition_point(|&r| r < nearest);
                    for s in &cc.slots[from..] {
                        if fine_ring_realtors(s.entry) {
                            continue;
                        }
                        let d = s.point.distance_km(&centre);
                        if d + circum + SLACK_KM <= s.radius_km {
                            add(&mut surely, s.hours, s.available, 1);
                        } else if d - circum - SLACK_KM <= s.radius_km {
                            covers.edges.push(edge(s));
                        }
                    }
                }
            }
            // (Never for a valid cell of an index with coarse cells, which is when searches
            // ask.) Everyone is tested one by one: slower, as exact.
            _ => {
                for slots in self.cells.values() {
                    for s in slots.iter().filter(|s| !fine_ring_realtors(s.entry)) {
                        covers.edges.push(edge(s));
                    }
                }
            }
        }
        covers.surely.extend_from_slice(&surely);
        let range = |from: usize, to: usize| {
            (
                u32::try_from(from).unwrap_or(u32::MAX),
                u32::try_from(to).unwrap_or(u32::MAX),
            )
        };
        Cover {
            surely: range(surely_from, covers.surely.len()),
            edge: range(edge_from, covers.edges.len()),
        }
    }
}
