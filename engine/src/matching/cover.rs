//! Who is near a place and who reaches it, kept per origin cell.
//!
//! A tour nobody anywhere can take (the whole index's free-time summary shows it) still needs
//! its explanation: the nearest candidates listed, everyone else counted by reason. Every
//! candidate's reason then follows from who they are and where the tour is, not from their
//! calendar (status; radius; working hours, else `overlap`), and the candidates are the
//! realtors of the origin cell's fine rings (as far as the walk would go) and, beyond them,
//! exactly those whose radius reaches the tour (see [`super::walk`]). So a searcher keeps,
//! per origin cell at the index's resolution:
//! - the realtors of its fine rings and those beyond them up to where a hundred surely are
//!   candidates for any tour in the cell, nearest the cell's centre first (`NearRealtor`): a
//!   tour anywhere in the cell measures the nearest of them exactly, to list them, and counts
//!   the rest, whose distance to it differs from their distance to the centre by at most the
//!   tour's own;
//! - farther out, those whose radius surely reaches every point of the cell (counted by hours
//!   and availability) and those whose radius's edge may cross it (kept, and tested against
//!   each tour by one dot product).
//!
//! A tour in a slot the whole city is booked in is then decided from the cover alone
//! ([`RealtorIndex::decide_booked_out`]) as soon as the summary shows it, instead of walking
//! on through the rings and the coarse cells in reach. Building a cover reads everyone who
//! may reach the cell (several walks' worth); the same places are toured again and again. Any
//! change to the index's cells drops them all; once they fill their bound, other places are
//! walked.

use h3o::CellIndex;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::disk::ESCAPE_MARGIN_KM;
use crate::feasibility::RejectReason;
use crate::geo::{ring_into, GeoPoint, Location};
use crate::matching::coarse::{cell_centre, Reach};
use crate::matching::explain::{
    rejected_slot, Decision, OutcomeCounts, Seen, Verdict, MAX_REPORTED,
};
use crate::matching::index::{RealtorIndex, Slot};
use crate::matching::policy::Policy;
use crate::matching::scratch::SearchScratch;
use crate::matching::search::Query;
use crate::matching::walk::{Walk, FINE_RINGS};

/// Room for the haversine's rounding in the triangle inequality, far above it.
const SLACK_KM: f64 = 1e-6;

/// Realtors of one working-hours set and availability, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Group {
    hours: u32,
    available: bool,
    count: usize,
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

/// A realtor whose radius's edge may cross an origin cell.
#[derive(Debug, Clone, Copy)]
struct EdgeRealtor {
    reach: Reach,
    point: GeoPoint,
    radius_km: f64,
    hours: u32,
}

impl EdgeRealtor {
    fn new(point: GeoPoint, radius_km: f64, hours: u32, available: bool) -> Self {
        let mut reach = Reach::new(&point, radius_km);
        reach.available = available;
        Self {
            reach,
            point,
            radius_km,
            hours,
        }
    }
}

/// A realtor near an origin cell: of its fine rings, or beyond them but near enough that a
/// tour in the cell may list them.
#[derive(Debug, Clone, Copy)]
struct NearRealtor {
    point: GeoPoint,
    radius_km: f64,
    /// Home to the origin cell's centre.
    centre_km: f64,
    entry: u32,
    hours: u32,
    available: bool,
    /// The fine ring (around the origin cell) of the home's cell; `FINE_RINGS` beyond them.
    ring: u8,
}

impl NearRealtor {
    /// Whether the radius reaches `target`, `centre_km` from the origin's centre: decided by
    /// the triangle inequality when it can be, else measured (the same test as for a realtor
    /// read one by one).
    fn reaches(&self, target: &GeoPoint, centre_km: f64) -> bool {
        if self.centre_km + centre_km + SLACK_KM <= self.radius_km {
            true
        } else if self.centre_km - centre_km - SLACK_KM > self.radius_km {
            false
        } else {
            self.point.distance_km(target) <= self.radius_km
        }
    }
}

/// What is kept of one origin cell: ranges of the pools.
#[derive(Debug, Clone, Copy)]
struct Cover {
    /// The cell's centre (`None` if H3 gave none: then nobody is kept near).
    centre: Option<GeoPoint>,
    /// Everyone of the fine rings and those beyond them (whose radius may reach the cell)
    /// up to `near_km` from the centre, nearest the centre first.
    near: (u32, u32),
    near_km: f64,
    /// Beyond `near_km`: those whose radius surely reaches every point of the cell, counted,
    /// and those whose radius's edge may cross it.
    surely: (u32, u32),
    edge: (u32, u32),
}

/// Edge and near records (96 and 72 bytes) kept per realtor indexed, at most: past that, no
/// more covers are built. (The benchmark city keeps ~270 edge records and a few hundred near
/// ones per origin cell for its 10,000 realtors: covers for some 300 places.)
const EDGES_KEPT_PER_REALTOR: usize = 8;
const NEAR_KEPT_PER_REALTOR: usize = 16;

/// Occupied cells an index needs for a walk to go through the fine rings ring by ring
/// (with fewer, one of them is scanned whole, and a cover does not describe that walk).
const FINE_DISK_CELLS: usize = 1 + 3 * (FINE_RINGS as usize) * (FINE_RINGS as usize - 1);

/// The covers a searcher keeps (see the module doc).
#[derive(Debug, Default)]
pub(super) struct Covers {
    /// Whether none may be built (a searcher that keeps none walks every place).
    pub(super) none: bool,
    /// The index cells' version the covers were built for.
    version: u64,
    by_origin: FxHashMap<CellIndex, Cover>,
    near: Vec<NearRealtor>,
    surely: Vec<Group>,
    edges: Vec<EdgeRealtor>,
    /// The decision being read from a cover, and those it counts beyond the near ones
    /// (kept for their buffers).
    reports: Vec<Seen>,
    groups: Vec<Group>,
    /// A cover being built: who is beyond the fine rings, and where the sure candidates are
    /// (kept for their buffers).
    beyond: Vec<NearRealtor>,
    sure: Vec<f64>,
}

/// Why a realtor, available or not, within radius of the tour or not, whose working hours
/// fit the window or not, cannot take a tour nobody anywhere can take: the reason
/// [`crate::feasibility::earliest_start`] would give.
fn booked_out_reason(available: bool, within: bool, hours_fit: bool) -> RejectReason {
    if !available {
        RejectReason::Unavailable
    } else if !within {
        RejectReason::OutOfRadius
    } else if hours_fit {
        RejectReason::Overlap
    } else {
        RejectReason::OutsideWorkingHours
    }
}

impl RealtorIndex {
    /// The decision for a tour nobody anywhere can take (the whole index's summary showed it
    /// while the walk was in the fine rings), read from the cover of its origin cell instead
    /// of walking on: every candidate of the walk, listed or counted, for the reason the walk
    /// would give. `None` (the walk goes on) when the cover cannot say: when someone beyond
    /// those it keeps near could be listed.
    pub(super) fn decide_booked_out(
        &self,
        policy: &dyn Policy,
        q: &Query<'_>,
        walk: &mut Walk,
        target: &GeoPoint,
        scratch: &mut SearchScratch,
    ) -> Option<Decision> {
        if walk.coarse
            || walk.exhausted
            || walk.summaries.is_none()
            || self.coarse.is_none()
            || self.cells.len() < FINE_DISK_CELLS
        {
            return None;
        }
        // The rings the walk would explore: it stops after the first whose bound passes
        // every radius (nobody beyond can take anything), else goes on beyond the fine rings
        // for those whose radius reaches the tour.
        let mut last_ring = FINE_RINGS;
        for k in 0..FINE_RINGS {
            if walk.disk_bound(k, scratch) > self.max_radius_km {
                last_ring = k;
                break;
            }
        }
        let beyond = last_ring == FINE_RINGS;
        let cover = self.cover_of(&mut scratch.covers, walk.origin)?;
        let centre_km = cover.centre?.distance_km(target);
        let mut reports = std::mem::take(&mut scratch.covers.reports);
        reports.clear();
        let mut counted = OutcomeCounts::default();
        // The nearest to the tour are among the nearest to the centre: once `MAX_REPORTED`
        // are measured, nobody farther from the centre than the farthest of them plus the
        // tour's own distance from it can be nearer the tour.
        let mut farthest_listed = f64::NEG_INFINITY;
        // Whether the last working hours looked up fit the window (most realtors of a city
        // share a few sets of hours).
        let mut hours: Option<(u32, bool)> = None;
        // (Taken out while hours are looked up in the scratch; put back below.)
        let pool = std::mem::take(&mut scratch.covers.near);
        for n in &pool[cover.near.0 as usize..cover.near.1 as usize] {
            if u32::from(n.ring) > last_ring {
                continue;
            }
            let measured = reports.len() < MAX_REPORTED
                || n.centre_km - centre_km - SLACK_KM <= farthest_listed;
            let (distance, within) = if measured {
                let d = n.point.distance_km(target);
                (d, d <= n.radius_km)
            } else {
                (f64::NAN, n.reaches(target, centre_km))
            };
            if !within && u32::from(n.ring) == FINE_RINGS {
                continue; // beyond the fine rings, only those within radius are candidates
            }
            let fits = match hours {
                Some((id, fits)) if id == n.hours => fits,
                _ => {
                    let fits = self.hours_for(q, n.hours, scratch).2;
                    hours = Some((n.hours, fits));
                    fits
                }
            };
            let reason = booked_out_reason(n.available, within, fits);
            if measured {
                if reports.len() < MAX_REPORTED {
                    farthest_listed = farthest_listed.max(distance);
                }
                // Kept nearest first as they come (nearly in order already: each is off its
                // distance from the centre by at most the tour's), so that the explanation
                // finds them sorted.
                let seen = Seen {
                    distance_km: distance,
                    entry: n.entry,
                    verdict: Verdict::Rejected(reason),
                };
                let mut at = reports.len();
                while at > 0 && reports[at - 1].distance_km > distance {
                    at -= 1;
                }
                reports.insert(at, seen);
            } else {
                counted[rejected_slot(reason)] += 1;
            }
        }
        scratch.covers.near = pool;
        if beyond {
            // Those not kept near are beyond `near_km` of the centre: they must be farther
            // than everyone listed.
            let listed_all = reports.len() >= MAX_REPORTED || cover.near_km == f64::INFINITY;
            if !listed_all || farthest_listed >= cover.near_km - centre_km - SLACK_KM {
                scratch.covers.reports = reports;
                return None;
            }
            let mut groups = std::mem::take(&mut scratch.covers.groups);
            groups.clear();
            self.reaching_from_far(&scratch.covers, &cover, target, &mut groups);
            for g in &groups {
                let reason =
                    booked_out_reason(g.available, true, self.hours_for(q, g.hours, scratch).2);
                counted[rejected_slot(reason)] += g.count;
            }
            scratch.covers.groups = groups;
        }
        let decision = Decision::from_search(
            policy,
            Vec::new(),
            &mut reports,
            counted,
            last_ring.min(FINE_RINGS - 1) + 1,
            |entry| self.entries[entry as usize].realtor.id,
        );
        scratch.covers.reports = reports;
        Some(decision)
    }

    /// Adds the realtors of `cover` beyond its near ones whose radius reaches `target` (a
    /// point of its origin cell) to `out`, by hours and availability.
    fn reaching_from_far(
        &self,
        covers: &Covers,
        cover: &Cover,
        target: &GeoPoint,
        out: &mut Vec<Group>,
    ) {
        for g in &covers.surely[cover.surely.0 as usize..cover.surely.1 as usize] {
            add(out, g.hours, g.available, g.count);
        }
        let t = target.unit();
        for e in &covers.edges[cover.edge.0 as usize..cover.edge.1 as usize] {
            if e.reach
                .reaches(t, || e.point.distance_km(target) <= e.radius_km)
            {
                add(out, e.hours, e.reach.available, 1);
            }
        }
    }

    /// The cover of `origin`, built on first use while there is room (all are dropped when
    /// the index's cells change). Once the covers kept reach their bound, no more are built:
    /// those kept stay, and other places are walked. (Dropping them all to build more would
    /// rebuild one per search wherever more places are toured than fit, each costing
    /// several walks; keeping them serves the places that fit at least.)
    fn cover_of(&self, covers: &mut Covers, origin: CellIndex) -> Option<Cover> {
        if covers.version != self.cells_version {
            covers.by_origin.clear();
            covers.near.clear();
            covers.surely.clear();
            covers.edges.clear();
            covers.version = self.cells_version;
        }
        if let Some(c) = covers.by_origin.get(&origin) {
            return Some(*c);
        }
        let kept = self.entries.len().max(256);
        if covers.none
            || covers.edges.len() > EDGES_KEPT_PER_REALTOR * kept
            || covers.near.len() > NEAR_KEPT_PER_REALTOR * kept
        {
            return None;
        }
        let c = self.build_cover(covers, origin);
        covers.by_origin.insert(origin, c);
        Some(c)
    }

    /// Sorts the realtors for `origin`. Every point of `origin` lies within `circum` of its
    /// centre, so a realtor `d` from the centre surely reaches all of it when `d + circum` is
    /// within their radius, and surely none of it when `d - circum` is beyond. Kept near:
    /// everyone of the fine rings, and those beyond who may reach the cell up to where a
    /// tour anywhere in it surely has `MAX_REPORTED` candidates nearer (everyone, if it
    /// never does); past that, counted or kept as edges.
    fn build_cover(&self, covers: &mut Covers, origin: CellIndex) -> Cover {
        let (near_from, surely_from, edge_from) =
            (covers.near.len(), covers.surely.len(), covers.edges.len());
        let range = |from: usize, to: usize| {
            (
                u32::try_from(from).unwrap_or(u32::MAX),
                u32::try_from(to).unwrap_or(u32::MAX),
            )
        };
        // (Never without a centre, or for an index without coarse cells, when searches never
        // ask: an empty cover decides nothing.)
        let (Some(centre), Some((_, coarse))) = (cell_centre(origin), &self.coarse) else {
            return Cover {
                centre: None,
                near: range(near_from, near_from),
                near_km: f64::NEG_INFINITY,
                surely: range(surely_from, surely_from),
                edge: range(edge_from, edge_from),
            };
        };
        let mut fine_entries = FxHashSet::default();
        let mut ring = Vec::new();
        for k in 0..FINE_RINGS {
            ring_into(origin, k, &mut ring);
            for cell in &ring {
                for s in self.cells.get(cell).into_iter().flatten() {
                    fine_entries.insert(s.entry);
                    covers.near.push(near(s, &centre, k));
                }
            }
        }
        let circum = origin
            .boundary()
            .iter()
            .filter_map(|v| Location::new(v.lat(), v.lng()).ok())
            .map(|v| centre.distance_km(&v.point()))
            .fold(0.0, f64::max)
            + ESCAPE_MARGIN_KM;
        // Those beyond the fine rings whose radius may reach the cell.
        let mut beyond = std::mem::take(&mut covers.beyond);
        beyond.clear();
        for cc in coarse.values() {
            // Nobody here whose radius is below this reaches any point of `origin` (the cell
            // sorts them first).
            let nearest = cc.centre.distance_km(&centre) - cc.reach_km - circum - SLACK_KM;
            let from = cc.radii.partition_point(|&r| r < nearest);
            for s in &cc.slots[from..] {
                if !fine_entries.contains(&s.entry)
                    && s.point.distance_km(&centre) - circum - SLACK_KM <= s.radius_km
                {
                    beyond.push(near(s, &centre, FINE_RINGS));
                }
            }
        }
        let surely_reaches = |n: &NearRealtor| n.centre_km + circum + SLACK_KM <= n.radius_km;
        // Where `MAX_REPORTED` surely are candidates for a tour anywhere in the cell (of the
        // fine rings, or reaching all of it), measured from the centre.
        let mut sure = std::mem::take(&mut covers.sure);
        sure.clear();
        sure.extend(
            covers.near[near_from..]
                .iter()
                .chain(beyond.iter().filter(|n| surely_reaches(n)))
                .map(|n| n.centre_km),
        );
        let near_km = if sure.len() < MAX_REPORTED {
            f64::INFINITY
        } else {
            let (_, &mut km, _) = sure.select_nth_unstable_by(MAX_REPORTED - 1, f64::total_cmp);
            km + 2.0 * circum + 2.0 * SLACK_KM
        };
        covers.sure = sure;
        let mut surely = Vec::new();
        for n in beyond.drain(..) {
            if n.centre_km <= near_km {
                covers.near.push(n);
            } else if surely_reaches(&n) {
                add(&mut surely, n.hours, n.available, 1);
            } else {
                covers
                    .edges
                    .push(EdgeRealtor::new(n.point, n.radius_km, n.hours, n.available));
            }
        }
        covers.beyond = beyond;
        covers.near[near_from..].sort_unstable_by(|a, b| a.centre_km.total_cmp(&b.centre_km));
        covers.surely.extend_from_slice(&surely);
        Cover {
            centre: Some(centre),
            near: range(near_from, covers.near.len()),
            near_km,
            surely: range(surely_from, covers.surely.len()),
            edge: range(edge_from, covers.edges.len()),
        }
    }
}

/// The near record of slot `s` in fine ring `ring` (`FINE_RINGS` beyond them).
fn near(s: &Slot, centre: &GeoPoint, ring: u32) -> NearRealtor {
    NearRealtor {
        point: s.point,
        radius_km: s.radius_km,
        centre_km: s.point.distance_km(centre),
        entry: s.entry,
        hours: s.hours,
        available: s.available,
        ring: u8::try_from(ring).unwrap_or(u8::MAX),
    }
}
