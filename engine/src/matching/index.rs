//! The realtor index: realtors by H3 cell, their calendars, and the exact ring search.
//!
//! Search (CONTRACT 5.4): walk H3 rings outwards from the cell of the tour's first listing.
//! After ring k, no unexplored realtor is nearer than [`crate::geo::ring_bound_km`]. Candidates wait in a min-heap by distance and are
//! evaluated (calendar, working hours) nearest first, only once nothing unexplored can be nearer;
//! the walk stops as soon as the bound passes the nearest feasible distance plus the policy's
//! slack. When a ring would have more cells than the index has occupied cells, the rest of the
//! index is scanned instead, so sparse indexes and far searches stay cheap.

use std::cmp::{Ordering, Reverse};
use std::collections::{hash_map::Entry as MapEntry, BinaryHeap};

use h3o::{CellIndex, Resolution};
use rustc_hash::FxHashMap;

use crate::calendar::{Booking, Calendar};
use crate::feasibility::{check_profile, check_start, earliest_start, RejectReason, Scratch};
use crate::geo::{distance_km, ring_bound_km, ring_into, GeoPoint, Location};
use crate::ids::{RealtorId, TourId};
use crate::matching::explain::{CandidateReport, Decision};
use crate::matching::policy::{Feasible, Policy};
use crate::realtor::{Realtor, RealtorStatus};
use crate::tour::TourPlan;

/// The resolution realtors are indexed at unless configured: res 8 cells (~0.7 km²) hold a
/// handful of realtors each in a dense metro, so rings stay small.
pub const DEFAULT_SEARCH_RESOLUTION: Resolution = Resolution::Eight;

/// Why a reservation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    /// The realtor is not in this index.
    #[error("unknown realtor")]
    UnknownRealtor,
    /// The start breaks CONTRACT 5.3.
    #[error("realtor cannot take the tour at that start: {}", .0.as_str())]
    Rejected(RejectReason),
}

/// A realtor id this index does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown realtor {0}")]
pub struct UnknownRealtor(pub RealtorId);

#[derive(Debug, Clone)]
struct Entry {
    realtor: Realtor,
    calendar: Calendar,
    cell: CellIndex,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    entry: u32,
    point: GeoPoint,
}

/// A candidate waiting for evaluation, ordered by distance then entry.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pending {
    distance: f64,
    entry: u32,
}

impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.entry.cmp(&other.entry))
    }
}

/// Buffers reused across searches.
#[derive(Debug, Default)]
pub struct SearchScratch {
    heap: BinaryHeap<Reverse<Pending>>,
    found: Vec<(f64, u32)>,
    feasibility: Scratch,
    /// `seen[entry] == generation` when the current search already found that realtor.
    seen: Vec<u32>,
    ring: Vec<CellIndex>,
    generation: u32,
}

impl SearchScratch {
    fn begin(&mut self, entries: usize) {
        self.heap.clear();
        if self.seen.len() < entries {
            self.seen.resize(entries, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.seen.fill(0);
            self.generation = 1;
        }
    }
}

/// Where a ring walk is: the next ring, and whether everything has been seen.
struct Walk {
    origin: CellIndex,
    next_k: u32,
    cells_seen: usize,
    exhausted: bool,
}

/// Realtors by H3 cell with their calendars; single writer, many searches.
#[derive(Debug, Clone)]
pub struct RealtorIndex {
    resolution: Resolution,
    entries: Vec<Entry>,
    by_id: FxHashMap<RealtorId, u32>,
    cells: FxHashMap<CellIndex, Vec<Slot>>,
    /// Largest service radius ever indexed (a bound; it never shrinks).
    max_radius_km: f64,
}

impl Default for RealtorIndex {
    fn default() -> Self {
        Self::new(DEFAULT_SEARCH_RESOLUTION)
    }
}

impl RealtorIndex {
    /// An empty index searching at `resolution`.
    #[must_use]
    pub fn new(resolution: Resolution) -> Self {
        Self {
            resolution,
            entries: Vec::new(),
            by_id: FxHashMap::default(),
            cells: FxHashMap::default(),
            max_radius_km: 0.0,
        }
    }

    /// The search resolution.
    #[must_use]
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// Number of realtors.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index holds no realtor.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A realtor and their calendar.
    #[must_use]
    pub fn get(&self, id: RealtorId) -> Option<(&Realtor, &Calendar)> {
        let e = &self.entries[*self.by_id.get(&id)? as usize];
        Some((&e.realtor, &e.calendar))
    }

    /// Every realtor with their calendar.
    pub fn iter(&self) -> impl Iterator<Item = (&Realtor, &Calendar)> {
        self.entries.iter().map(|e| (&e.realtor, &e.calendar))
    }

    /// Adds a realtor or replaces their profile; a known realtor keeps their calendar.
    pub fn upsert(&mut self, realtor: Realtor) {
        self.max_radius_km = self.max_radius_km.max(realtor.service_radius_km());
        let cell = realtor.home.cell(self.resolution);
        let point = realtor.home.point();
        match self.by_id.entry(realtor.id) {
            MapEntry::Occupied(slot) => {
                let idx = *slot.get();
                let e = &mut self.entries[idx as usize];
                let old_cell = e.cell;
                e.calendar.set_home(realtor.home);
                e.realtor = realtor;
                e.cell = cell;
                Self::unlink(&mut self.cells, old_cell, idx);
                self.cells
                    .entry(cell)
                    .or_default()
                    .push(Slot { entry: idx, point });
            }
            MapEntry::Vacant(slot) => {
                let idx = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
                slot.insert(idx);
                self.cells
                    .entry(cell)
                    .or_default()
                    .push(Slot { entry: idx, point });
                self.entries.push(Entry {
                    calendar: Calendar::new(realtor.home),
                    realtor,
                    cell,
                });
            }
        }
    }

    fn unlink(cells: &mut FxHashMap<CellIndex, Vec<Slot>>, cell: CellIndex, idx: u32) {
        if let Some(slots) = cells.get_mut(&cell) {
            slots.retain(|s| s.entry != idx);
            if slots.is_empty() {
                cells.remove(&cell);
            }
        }
    }

    /// Removes a realtor, returning their profile and calendar.
    pub fn remove(&mut self, id: RealtorId) -> Option<(Realtor, Calendar)> {
        let idx = self.by_id.remove(&id)?;
        let cell = self.entries[idx as usize].cell;
        Self::unlink(&mut self.cells, cell, idx);
        let last = u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX);
        let removed = self.entries.swap_remove(idx as usize);
        if idx != last {
            // The last entry moved into `idx`: repoint its id and its cell slot.
            let moved = &self.entries[idx as usize];
            self.by_id.insert(moved.realtor.id, idx);
            if let Some(slots) = self.cells.get_mut(&moved.cell) {
                for s in slots.iter_mut().filter(|s| s.entry == last) {
                    s.entry = idx;
                }
            }
        }
        Some((removed.realtor, removed.calendar))
    }

    /// Sets a realtor's status.
    ///
    /// # Errors
    /// When the realtor is not in the index.
    pub fn set_status(
        &mut self,
        id: RealtorId,
        status: RealtorStatus,
    ) -> Result<(), UnknownRealtor> {
        let idx = *self.by_id.get(&id).ok_or(UnknownRealtor(id))?;
        self.entries[idx as usize].realtor.status = status;
        Ok(())
    }

    /// Books `plan` for `realtor` at exactly `start`, re-checking every rule of CONTRACT 5.3
    /// against the calendar as it is now (a stale search result can never double-book).
    /// Booking the same tour again at the same start is a no-op.
    ///
    /// # Errors
    /// Unknown realtor, or the rule the start breaks.
    pub fn reserve(
        &mut self,
        realtor: RealtorId,
        plan: &TourPlan,
        start: i64,
    ) -> Result<Booking, ReserveError> {
        let idx = *self
            .by_id
            .get(&realtor)
            .ok_or(ReserveError::UnknownRealtor)?;
        let e = &mut self.entries[idx as usize];
        if let Some(existing) = e.calendar.get(plan.tour_id) {
            if existing.start == start && existing.end == start + plan.duration_seconds {
                return Ok(*existing);
            }
            e.calendar.remove(plan.tour_id);
        }
        let mut scratch = Scratch::default();
        check_start(&e.realtor, &e.calendar, plan, start, &mut scratch)
            .map_err(ReserveError::Rejected)?;
        let booking = Booking {
            tour_id: plan.tour_id,
            start,
            end: start + plan.duration_seconds,
            first: *plan.first(),
            last: *plan.last(),
        };
        e.calendar.insert_unchecked(booking);
        Ok(booking)
    }

    /// Puts back a booking read from the store at start-up, without re-checking it.
    ///
    /// # Errors
    /// When the realtor is not in the index.
    pub fn restore(&mut self, realtor: RealtorId, booking: Booking) -> Result<(), UnknownRealtor> {
        let idx = *self.by_id.get(&realtor).ok_or(UnknownRealtor(realtor))?;
        let cal = &mut self.entries[idx as usize].calendar;
        if cal.get(booking.tour_id).is_none() {
            cal.insert_unchecked(booking);
        }
        Ok(())
    }

    /// Frees the time `tour` held on `realtor`'s calendar.
    pub fn release(&mut self, realtor: RealtorId, tour: TourId) -> Option<Booking> {
        let idx = *self.by_id.get(&realtor)?;
        self.entries[idx as usize].calendar.remove(tour)
    }

    /// The exact decision for `plan` under `policy` (CONTRACT 5.3, 5.4).
    #[must_use]
    pub fn search(&self, plan: &TourPlan, policy: &dyn Policy) -> Decision {
        self.search_with(plan, policy, &mut SearchScratch::default())
    }

    /// [`RealtorIndex::search`] reusing buffers.
    pub fn search_with(
        &self,
        plan: &TourPlan,
        policy: &dyn Policy,
        scratch: &mut SearchScratch,
    ) -> Decision {
        let target = plan.first().point();
        let slack = policy.slack_km();
        let mut walk = self.walk(plan.first());
        let mut feasible: Vec<Feasible> = Vec::new();
        let mut reports: Vec<CandidateReport> = Vec::new();
        let mut nearest_feasible: Option<f64> = None;
        scratch.begin(self.entries.len());
        if !plan.fits_window() {
            let mut d = Decision::decide(policy, feasible, reports, 0);
            d.explanation.reason = Some("window_too_short".to_owned());
            return d;
        }
        while let Some(bound) = self.explore(&mut walk, &target, scratch) {
            for &(distance, entry) in &scratch.found {
                let e = &self.entries[entry as usize];
                if walk.exhausted && distance > self.max_radius_km {
                    continue; // a scan reaches the whole index; nobody that far can ever serve here
                }
                match check_profile(&e.realtor, plan, distance) {
                    Ok(()) => scratch.heap.push(Reverse(Pending { distance, entry })),
                    Err(reason) => {
                        reports.push(CandidateReport::rejected(e.realtor.id, distance, reason));
                    }
                }
            }
            // Evaluate, nearest first, whoever nothing unexplored can beat (or, once a feasible
            // realtor is known, whoever is within the policy's slack of it).
            while let Some(Reverse(top)) = scratch.heap.peek().copied() {
                let limit = nearest_feasible.map_or(bound, |n| n + slack);
                if top.distance > limit {
                    break;
                }
                scratch.heap.pop();
                let e = &self.entries[top.entry as usize];
                match earliest_start(
                    &e.realtor,
                    &e.calendar,
                    plan,
                    top.distance,
                    &mut scratch.feasibility,
                ) {
                    Ok(start) => {
                        let (day_from, day_to) = e
                            .realtor
                            .hours
                            .local_day_bounds(start, &mut scratch.feasibility.zones);
                        let load = e.calendar.count_starting_in(day_from, day_to);
                        let f = Feasible {
                            realtor_id: e.realtor.id,
                            distance_km: top.distance,
                            start,
                            end: start + plan.duration_seconds,
                            day_load: u32::try_from(load).unwrap_or(u32::MAX),
                        };
                        nearest_feasible.get_or_insert(top.distance);
                        reports.push(CandidateReport::feasible(&f));
                        feasible.push(f);
                    }
                    Err(reason) => {
                        reports.push(CandidateReport::rejected(
                            e.realtor.id,
                            top.distance,
                            reason,
                        ));
                    }
                }
            }
            let settled = nearest_feasible.is_some_and(|n| bound > n + slack);
            if settled || bound > self.max_radius_km {
                break;
            }
        }
        // Realtors found beyond what decided the search were never in contention: leave them
        // out; those within it but not evaluated lost on distance alone.
        let decisive = nearest_feasible.map_or(f64::INFINITY, |n| n + slack);
        reports.retain(|r| r.distance_km <= decisive);
        for Reverse(p) in scratch.heap.drain() {
            if p.distance <= decisive {
                let id = self.entries[p.entry as usize].realtor.id;
                reports.push(CandidateReport::not_evaluated(id, p.distance));
            }
        }
        Decision::decide(policy, feasible, reports, walk.next_k)
    }

    /// Realtors able to take a one-stop tour of `visit_minutes` at `place` inside the plan's
    /// window, within `radius_km` of it, nearest first: `(realtor, distance_km, earliest start)`.
    #[must_use]
    pub fn available_near(&self, plan: &TourPlan, radius_km: f64) -> Vec<(RealtorId, f64, i64)> {
        let target = plan.first().point();
        let mut walk = self.walk(plan.first());
        let mut search = SearchScratch::default();
        search.begin(self.entries.len());
        let mut within = Vec::new();
        while let Some(bound) = self.explore(&mut walk, &target, &mut search) {
            within.extend(
                search
                    .found
                    .iter()
                    .filter(|(d, _)| *d <= radius_km)
                    .copied(),
            );
            if bound > radius_km {
                break;
            }
        }
        within.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut scratch = Scratch::default();
        within
            .into_iter()
            .filter_map(|(d, entry)| {
                let e = &self.entries[entry as usize];
                earliest_start(&e.realtor, &e.calendar, plan, d, &mut scratch)
                    .ok()
                    .map(|s| (e.realtor.id, d, s))
            })
            .collect()
    }

    fn walk(&self, first: &Location) -> Walk {
        Walk {
            origin: first.cell(self.resolution),
            next_k: 0,
            cells_seen: 0,
            exhausted: false,
        }
    }

    /// Explores the next ring (or, when a ring would be larger than the occupied part of the
    /// index, everything not seen yet), putting `(distance, entry)` of each realtor found into
    /// `scratch.found`. Returns the bound on the distance of anything still unexplored; `None`
    /// when done.
    fn explore(
        &self,
        walk: &mut Walk,
        target: &GeoPoint,
        scratch: &mut SearchScratch,
    ) -> Option<f64> {
        scratch.found.clear();
        if walk.exhausted {
            return None;
        }
        let k = walk.next_k;
        let generation = scratch.generation;
        let ring_cells = if k == 0 { 1 } else { 6 * k as usize };
        let scan = k > 0 && walk.cells_seen + ring_cells > self.cells.len();
        let mut found = std::mem::take(&mut scratch.found);
        let mut take = |slots: &Vec<Slot>, seen: &mut Vec<u32>| {
            for s in slots {
                let mark = &mut seen[s.entry as usize];
                if *mark != generation {
                    *mark = generation;
                    found.push((s.point.distance_km(target), s.entry));
                }
            }
        };
        if scan {
            walk.exhausted = true;
            for slots in self.cells.values() {
                take(slots, &mut scratch.seen);
            }
        } else {
            ring_into(walk.origin, k, &mut scratch.ring);
            walk.cells_seen += scratch.ring.len();
            walk.next_k += 1;
            for cell in &scratch.ring {
                if let Some(slots) = self.cells.get(cell) {
                    take(slots, &mut scratch.seen);
                }
            }
        }
        scratch.found = found;
        Some(if scan {
            f64::INFINITY
        } else {
            ring_bound_km(self.resolution, k)
        })
    }

    /// Distance from a realtor's home to a location, if the realtor is indexed.
    #[must_use]
    pub fn distance_to(&self, id: RealtorId, location: &Location) -> Option<f64> {
        self.get(id).map(|(r, _)| distance_km(&r.home, location))
    }
}
