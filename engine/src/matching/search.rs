//! The exact ring search over a [`RealtorIndex`] (CONTRACT 5.4).
//!
//! Walk H3 rings outwards from the cell of the tour's first listing. After ring k, no unexplored
//! realtor is nearer than [`crate::geo::ring_bound_km`]. Candidates wait in a min-heap by
//! distance and are evaluated (calendar, working hours) nearest first, only once nothing
//! unexplored can be nearer; the walk stops as soon as the bound passes the nearest feasible
//! distance plus the policy's slack. After `FINE_RINGS` rings at the index's resolution the
//! walk goes on in the index's coarse cells (two resolutions up), where realtors whose radius
//! cannot reach the tour are passed over unread. When a ring would have more cells than the
//! index has occupied cells, the rest of the index is scanned instead, so sparse indexes and far
//! searches stay cheap.
//!
//! Evaluating a candidate is where an unassignable tour spends its time (it must prove that
//! nobody in reach can take it), so it is done in cheap steps, each exact:
//! 1. status, declines, radius;
//! 2. whether the working hours fit the window at all, decided once per distinct set of hours;
//! 3. the calendar with every travel buffer replaced by a lower bound from the triangle
//!    inequality (no distance computed): no free start there proves there is none;
//! 4. only then the calendar with the exact travel buffers.
//!
//! Before all that, a whole coarse cell can be ruled out at once by its free-time summary
//! ([`super::free_time`]): when nobody there has a free stretch long enough at any candidate
//! start, its realtors are rejected together, each for the reason the steps above would give
//! (status, radius, working hours, else `overlap`). Near the tour they are still recorded one
//! by one; far out, where they come by the thousand, they are only counted.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;

use h3o::{CellIndex, Resolution};
use rustc_hash::FxHashMap;

use crate::calendar::Footprint;
use crate::feasibility::{
    check_profile, earliest_start, first_free, hours_fit, RejectReason, Scratch,
};
use crate::geo::{
    distance_km, ring_bound_km, ring_into, travel_minutes_for_km, GeoPoint, Location,
};
use crate::ids::RealtorId;
use crate::matching::explain::{rejected_slot, Decision, OutcomeCounts, Seen, Verdict};
use crate::matching::free_time::{travel_level, FreeTimeCache};
use crate::matching::index::{CoarseCell, Reach, RealtorIndex, Slot};
use crate::matching::policy::{Feasible, Policy};
use crate::tour::TourPlan;

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

/// Realtors of one coarse cell rejected together: `bulk[first..last]` of the scratch, all
/// between `nearest` and `farthest` km from the tour.
#[derive(Debug, Clone, Copy)]
struct BulkArea {
    nearest: f64,
    farthest: f64,
    first: usize,
    last: usize,
}

/// Realtors of one coarse cell ruled out together and counted without being read:
/// `slots[from..]` of `cell`, all within radius, sharing working hours `hours`.
#[derive(Debug, Clone, Copy)]
struct BulkCount {
    nearest: f64,
    farthest: f64,
    cell: CellIndex,
    from: usize,
    unavailable: usize,
    available: usize,
    hours: u32,
}

/// Buffers reused across searches, and the free-time summaries they have built.
#[derive(Debug, Default)]
pub struct SearchScratch {
    heap: BinaryHeap<Reverse<Pending>>,
    /// Realtors the last ring found: distance, slot, and whether their area is ruled out.
    found: Vec<(f64, Slot, bool)>,
    feasibility: Scratch,
    /// `seen[entry] == generation` when the current search already found that realtor.
    seen: Vec<u32>,
    /// Rings already enumerated, by origin cell and distance: the same listings (and nearby
    /// ones, sharing a cell) are toured again and again, and enumerating a ring costs H3 more
    /// than everything else a ring search does with it.
    rings: FxHashMap<(CellIndex, u32), Arc<[CellIndex]>>,
    generation: u32,
    /// `hours_stamp[id] == generation` when `hours_span[id]` holds this search's UTC working
    /// intervals of hours `id` (a range of `hours_pool`) and whether they fit the window.
    hours_stamp: Vec<u32>,
    hours_span: Vec<(u32, u32, bool)>,
    hours_pool: Vec<(i64, i64)>,
    intervals: Vec<(i64, i64)>,
    forbidden: Vec<(i64, i64)>,
    /// Every candidate the current search looked at.
    reports: Vec<Seen>,
    free_time: FreeTimeCache,
    /// `areas[cell] == (generation, may_fit)`: whether, by its summary, someone in that coarse
    /// cell might take the current search's tour.
    areas: FxHashMap<CellIndex, (u32, bool)>,
    /// Realtors rejected with their area and only counted: `(entry, hours, reason)`, where
    /// `Overlap` stands for "available and within radius" until their working hours decide.
    bulk: Vec<(u32, u32, RejectReason)>,
    bulk_areas: Vec<BulkArea>,
    bulk_counts: Vec<BulkCount>,
    /// The farthest realtor the current search's fine rings found: coarse cells wholly
    /// beyond it hold nobody they saw.
    fine_reach_km: f64,
    /// Whether searches must examine every candidate one by one.
    exhaustive: bool,
    /// `coarse_visited[cell] == generation` when the current search's rings visited that
    /// coarse cell.
    coarse_visited: FxHashMap<CellIndex, u32>,
}

/// Rings a scratch keeps before starting afresh (a metro's listings need a few thousand).
const MAX_RINGS_KEPT: usize = 1 << 16;

impl SearchScratch {
    /// The cells at grid distance `k` from `origin`.
    fn ring(&mut self, origin: CellIndex, k: u32) -> Arc<[CellIndex]> {
        if let Some(ring) = self.rings.get(&(origin, k)) {
            return Arc::clone(ring);
        }
        if self.rings.len() >= MAX_RINGS_KEPT {
            self.rings.clear();
        }
        let mut cells = Vec::new();
        ring_into(origin, k, &mut cells);
        let ring: Arc<[CellIndex]> = cells.into();
        self.rings.insert((origin, k), Arc::clone(&ring));
        ring
    }

    /// A scratch whose searches examine every candidate one by one and never rule out an area
    /// by its free-time summary: the reference the summaries are tested against. Same
    /// decisions, only slower.
    #[must_use]
    pub fn exhaustive() -> Self {
        Self {
            exhaustive: true,
            ..Self::default()
        }
    }

    fn begin(&mut self, entries: usize, hours: usize) {
        self.heap.clear();
        self.hours_pool.clear();
        self.reports.clear();
        self.bulk.clear();
        self.bulk_areas.clear();
        self.bulk_counts.clear();
        self.fine_reach_km = 0.0;
        if self.seen.len() < entries {
            self.seen.resize(entries, 0);
        }
        if self.hours_stamp.len() < hours {
            self.hours_stamp.resize(hours, 0);
            self.hours_span.resize(hours, (0, 0, false));
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.seen.fill(0);
            self.hours_stamp.fill(0);
            self.areas.clear();
            self.coarse_visited.clear();
            self.generation = 1;
        }
    }
}

/// What every evaluation of one search shares.
struct Query<'a> {
    fp: Footprint<'a>,
    ws: i64,
    we: i64,
    /// Whether the last stop differs from the first (its distance from home then matters too).
    multi_stop: bool,
}

/// Rings walked at the index's resolution before switching to the coarse cells: enough for
/// nearly every assignable tour (3 rings at the median), few enough that a tour nobody can
/// take does not enumerate thousands of small cells.
const FINE_RINGS: u32 = 8;

/// Where a ring walk is: the next ring, and whether everything has been seen.
struct Walk {
    first: Location,
    /// The first listing's cell at `resolution`.
    origin: CellIndex,
    resolution: Resolution,
    /// Whether the walk moved on to the index's coarse cells.
    coarse: bool,
    next_k: u32,
    /// Cells enumerated at `resolution`.
    cells_seen: usize,
    /// Rings explored, at both resolutions.
    rings: u32,
    /// What the fine rings proved: nobody unexplored is nearer.
    floor: f64,
    exhausted: bool,
    /// What areas are ruled out for by their free-time summaries, when they may be.
    summaries: Option<AreaQuery>,
}

/// The tour as a free-time summary sees it.
#[derive(Debug, Clone, Copy)]
struct AreaQuery {
    /// `(window start, window end, duration)`.
    window: (i64, i64, i64),
    first: GeoPoint,
    last: GeoPoint,
    /// `first` on the unit sphere, and the cosine of the largest radius's angle.
    first_unit: [f64; 3],
    cos_max_radius: f64,
}

/// Fine rings searched one realtor at a time before summaries may rule areas out: nearly
/// every assignable tour is settled by then (3 rings at the median), and asking costs it.
const SUMMARIES_FROM_RING: u32 = 3;

/// Travel seconds no trip of at least `km` can take less than. The millimetre of slack keeps
/// the bound below the engine's own rounding of `travel_minutes` (distances here are at most a
/// few hundred km, where haversine's float error is far smaller).
fn travel_at_least(km: f64) -> i64 {
    if km <= 1e-6 {
        0
    } else {
        travel_minutes_for_km(km - 1e-6) * 60
    }
}

impl RealtorIndex {
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
        self.search_beating(plan, policy, None, scratch)
    }

    /// [`RealtorIndex::search_with`] when a feasible realtor `known_km` from the first listing
    /// is already known elsewhere (another shard): only realtors within `known_km` plus the
    /// policy's slack can still matter, so the search stops there instead of proving that
    /// nobody here is feasible. Merged with the decision that knew `known_km`
    /// ([`Decision::merge`]), the choice is exactly that of one search over both indexes.
    pub fn search_beating(
        &self,
        plan: &TourPlan,
        policy: &dyn Policy,
        known_km: Option<f64>,
        scratch: &mut SearchScratch,
    ) -> Decision {
        let target = plan.first().point();
        let slack = policy.slack_km();
        let mut walk = self.walk(plan);
        let mut feasible: Vec<Feasible> = Vec::new();
        let mut nearest_feasible: Option<f64> = known_km.filter(|k| k.is_finite());
        scratch.begin(self.entries.len(), self.hours.len());
        if !plan.fits_window() {
            let mut d = Decision::decide(policy, feasible, Vec::new(), 0);
            d.explanation.reason = Some("window_too_short".to_owned());
            return d;
        }
        let q = self.query(plan);
        // The summaries assume at least a minute of travel between the tour and any booking,
        // and list no declines.
        if !scratch.exhaustive
            && plan.declined.is_empty()
            && !self.near_booked_stop(plan.first())
            && !self.near_booked_stop(plan.last())
        {
            walk.summaries = Some(AreaQuery {
                window: (q.ws, q.we, q.fp.duration),
                first: q.fp.first.point(),
                last: q.fp.last.point(),
                first_unit: target.unit(),
                cos_max_radius: Reach::new(&target, self.max_radius_km).cos_radius,
            });
        }
        while let Some(bound) = self.explore(&mut walk, &target, scratch) {
            let found = std::mem::take(&mut scratch.found);
            for &(distance, slot, ruled_out) in &found {
                let entry = slot.entry;
                if walk.exhausted && distance > self.max_radius_km {
                    continue; // a scan reaches the whole index; nobody that far can ever serve here
                }
                // Far out (the coarse rings), candidates come by the hundred and few survive
                // the cheap steps: rejecting them on arrival keeps them out of the heap. (Those
                // beyond what decides the search are dropped below, as if never evaluated.)
                let verdict = self.check_slot(plan, &slot, distance).and_then(|()| {
                    if ruled_out {
                        Err(self.area_reason(&q, slot.hours, scratch))
                    } else if walk.coarse {
                        self.screen(&q, entry, distance, scratch)
                    } else {
                        Ok(())
                    }
                });
                match verdict {
                    Ok(()) => scratch.heap.push(Reverse(Pending { distance, entry })),
                    Err(reason) => scratch.reports.push(Seen {
                        distance_km: distance,
                        entry,
                        verdict: Verdict::Rejected(reason),
                    }),
                }
            }
            scratch.found = found;
            // Evaluate, nearest first, whoever nothing unexplored can beat (or, once a feasible
            // realtor is known, whoever is within the policy's slack of it).
            while let Some(Reverse(top)) = scratch.heap.peek().copied() {
                let limit = nearest_feasible.map_or(bound, |n| n + slack);
                if top.distance > limit {
                    break;
                }
                scratch.heap.pop();
                let e = &self.entries[top.entry as usize];
                match self.evaluate(&q, top.entry, top.distance, scratch) {
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
                        // Nearest first: the first feasible here is the nearest here.
                        nearest_feasible =
                            Some(nearest_feasible.map_or(top.distance, |n| n.min(top.distance)));
                        scratch.reports.push(Seen {
                            distance_km: top.distance,
                            entry: top.entry,
                            verdict: Verdict::Feasible(
                                u32::try_from(feasible.len()).unwrap_or(u32::MAX),
                            ),
                        });
                        feasible.push(f);
                    }
                    Err(reason) => scratch.reports.push(Seen {
                        distance_km: top.distance,
                        entry: top.entry,
                        verdict: Verdict::Rejected(reason),
                    }),
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
        let counted = self.settle_bulk(&q, &target, decisive, scratch);
        scratch.reports.retain(|r| r.distance_km <= decisive);
        for Reverse(p) in scratch.heap.drain() {
            if p.distance <= decisive {
                scratch.reports.push(Seen {
                    distance_km: p.distance,
                    entry: p.entry,
                    verdict: Verdict::NotEvaluated,
                });
            }
        }
        Decision::from_search(
            policy,
            feasible,
            &mut scratch.reports,
            counted,
            walk.rings,
            |entry| self.entries[entry as usize].realtor.id,
        )
    }

    /// The realtors rejected with their areas, for a search decided at `decisive` km: counted
    /// when their whole area lies within it, recorded one by one when it straddles it (so
    /// that, as for everyone else, only those within it are reported), left out beyond it.
    fn settle_bulk(
        &self,
        q: &Query<'_>,
        target: &GeoPoint,
        decisive: f64,
        scratch: &mut SearchScratch,
    ) -> OutcomeCounts {
        let mut counted = OutcomeCounts::default();
        for c in std::mem::take(&mut scratch.bulk_counts) {
            if c.nearest > decisive {
                continue;
            }
            let reason = self.area_reason(q, c.hours, scratch);
            if c.farthest <= decisive {
                counted[rejected_slot(RejectReason::Unavailable)] += c.unavailable;
                counted[rejected_slot(reason)] += c.available;
                continue;
            }
            let Some((_, coarse)) = &self.coarse else {
                continue;
            };
            for s in coarse
                .get(&c.cell)
                .map_or(&[][..], |cc| &cc.slots[c.from..])
            {
                let distance = s.point.distance_km(target);
                if distance <= decisive {
                    scratch.reports.push(Seen {
                        distance_km: distance,
                        entry: s.entry,
                        verdict: Verdict::Rejected(if s.available {
                            reason
                        } else {
                            RejectReason::Unavailable
                        }),
                    });
                }
            }
        }
        for a in std::mem::take(&mut scratch.bulk_areas) {
            if a.nearest > decisive {
                continue;
            }
            for i in a.first..a.last {
                let (entry, hours, mut reason) = scratch.bulk[i];
                if reason == RejectReason::Overlap {
                    reason = self.area_reason(q, hours, scratch);
                }
                if a.farthest <= decisive {
                    counted[rejected_slot(reason)] += 1;
                    continue;
                }
                let distance = self.entries[entry as usize]
                    .realtor
                    .home
                    .point()
                    .distance_km(target);
                if distance <= decisive {
                    scratch.reports.push(Seen {
                        distance_km: distance,
                        entry,
                        verdict: Verdict::Rejected(reason),
                    });
                }
            }
        }
        counted
    }

    /// Why an available realtor within radius, whose area's summary rules the tour out, cannot
    /// take it: what [`crate::feasibility::earliest_start`] would say.
    fn area_reason(&self, q: &Query<'_>, hours: u32, scratch: &mut SearchScratch) -> RejectReason {
        if self.hours_for(q, hours, scratch).2 {
            RejectReason::Overlap
        } else {
            RejectReason::OutsideWorkingHours
        }
    }

    /// Whether someone in coarse cell `cell` might take the tour of `walk`, by the cell's
    /// free-time summary (asked once per search and cell). Always true without summaries.
    fn area_may_fit_once(
        &self,
        walk: &Walk,
        (cell, cc): (CellIndex, &CoarseCell),
        scratch: &mut SearchScratch,
    ) -> bool {
        let Some(area) = walk.summaries else {
            return true;
        };
        if let Some(&(generation, fits)) = scratch.areas.get(&cell) {
            if generation == scratch.generation {
                return fits;
            }
        }
        // No booked stop of the cell is nearer either end of the tour than this.
        let least_km = cc
            .centre
            .distance_km(&area.first)
            .min(cc.centre.distance_km(&area.last))
            - cc.reach_km
            - cc.stop_reach_km;
        let fits = self.area_may_fit(
            (cell, cc),
            area.window,
            travel_level(travel_at_least(least_km)),
            &mut scratch.free_time,
            &mut scratch.feasibility.zones,
        );
        scratch.areas.insert(cell, (scratch.generation, fits));
        fits
    }

    fn query<'a>(&self, plan: &'a TourPlan) -> Query<'a> {
        let (ws, we) = plan.window.seconds();
        Query {
            fp: Footprint {
                first: plan.first(),
                last: plan.last(),
                duration: plan.duration_seconds,
            },
            ws,
            we,
            multi_stop: plan.stops.len() > 1,
        }
    }

    /// The earliest feasible start of the plan for realtor `entry` (who passed
    /// [`check_profile`] at `distance`), or why there is none: the answer of
    /// [`crate::feasibility::earliest_start`], reached in the cheap steps of the module doc.
    fn evaluate(
        &self,
        q: &Query<'_>,
        entry: u32,
        distance: f64,
        scratch: &mut SearchScratch,
    ) -> Result<i64, RejectReason> {
        self.screen(q, entry, distance, scratch)?;
        let e = &self.entries[entry as usize];
        let d = q.fp.duration;
        let (from, to, _) = self.hours_for(q, e.hours, scratch);
        let intervals = &scratch.hours_pool[from..to];
        let last_km = self.last_km(q, entry, distance);
        e.calendar.forbidden_starts_known(
            &q.fp,
            distance.max(last_km),
            q.ws,
            q.we - d,
            &mut scratch.forbidden,
        );
        first_free(intervals, q.ws, q.we, d, &scratch.forbidden).ok_or(RejectReason::Overlap)
    }

    /// [`check_profile`] from the copies in `slot` (the entry is read only for declines).
    fn check_slot(&self, plan: &TourPlan, slot: &Slot, distance: f64) -> Result<(), RejectReason> {
        if !slot.available {
            return Err(RejectReason::Unavailable);
        }
        if !plan.declined.is_empty() {
            let e = &self.entries[slot.entry as usize];
            return check_profile(&e.realtor, plan, distance);
        }
        if distance > slot.radius_km {
            return Err(RejectReason::OutOfRadius);
        }
        Ok(())
    }

    /// Steps 2 and 3 of the module doc: `Err` proves the realtor cannot take the tour (the
    /// reason [`crate::feasibility::earliest_start`] would give); `Ok` decides nothing.
    fn screen(
        &self,
        q: &Query<'_>,
        entry: u32,
        distance: f64,
        scratch: &mut SearchScratch,
    ) -> Result<(), RejectReason> {
        let e = &self.entries[entry as usize];
        let d = q.fp.duration;
        let (from, to, fits) = self.hours_for(q, e.hours, scratch);
        if !fits {
            return Err(RejectReason::OutsideWorkingHours);
        }
        // Every booked stop lies within `reach` of home, so by the triangle inequality no
        // travel between one and the tour is shorter than the tour's distance beyond it.
        let reach = e.calendar.reach_km();
        let last_km = self.last_km(q, entry, distance);
        let free = e.calendar.free_start_at_least(
            d,
            travel_at_least(distance - reach),
            travel_at_least(last_km - reach),
            (q.ws, q.we),
            &scratch.hours_pool[from..to],
        );
        free.map(|_| ()).ok_or(RejectReason::Overlap)
    }

    /// Home of realtor `entry` to the tour's last stop (`distance` is to the first).
    fn last_km(&self, q: &Query<'_>, entry: u32, distance: f64) -> f64 {
        if q.multi_stop {
            distance_km(&self.entries[entry as usize].realtor.home, q.fp.last)
        } else {
            distance
        }
    }

    /// This search's UTC working intervals of hours `id` (a range of `scratch.hours_pool`) and
    /// whether they fit the window, converted on first use.
    fn hours_for(
        &self,
        q: &Query<'_>,
        id: u32,
        scratch: &mut SearchScratch,
    ) -> (usize, usize, bool) {
        let i = id as usize;
        if scratch.hours_stamp[i] != scratch.generation {
            self.hours[i].utc_intervals(
                q.ws,
                q.we,
                &mut scratch.intervals,
                &mut scratch.feasibility.zones,
            );
            let from = u32::try_from(scratch.hours_pool.len()).unwrap_or(u32::MAX);
            scratch.hours_pool.extend_from_slice(&scratch.intervals);
            let to = u32::try_from(scratch.hours_pool.len()).unwrap_or(u32::MAX);
            let fits = hours_fit(&scratch.intervals, q.ws, q.we, q.fp.duration);
            scratch.hours_stamp[i] = scratch.generation;
            scratch.hours_span[i] = (from, to, fits);
        }
        let (from, to, fits) = scratch.hours_span[i];
        (from as usize, to as usize, fits)
    }

    /// Realtors able to take a one-stop tour of `visit_minutes` at `place` inside the plan's
    /// window, within `radius_km` of it, nearest first: `(realtor, distance_km, earliest start)`.
    #[must_use]
    pub fn available_near(&self, plan: &TourPlan, radius_km: f64) -> Vec<(RealtorId, f64, i64)> {
        let target = plan.first().point();
        let mut walk = self.walk(plan);
        let mut search = SearchScratch::default();
        search.begin(self.entries.len(), self.hours.len());
        let mut within = Vec::new();
        while let Some(bound) = self.explore(&mut walk, &target, &mut search) {
            within.extend(
                search
                    .found
                    .iter()
                    .filter(|(d, _, _)| *d <= radius_km)
                    .map(|&(d, slot, _)| (d, slot.entry)),
            );
            // Nobody beyond every service radius can take anything.
            if bound > radius_km || bound > self.max_radius_km {
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

    fn walk(&self, plan: &TourPlan) -> Walk {
        Walk {
            first: *plan.first(),
            origin: plan.first_cell(self.resolution),
            resolution: self.resolution,
            coarse: false,
            next_k: 0,
            cells_seen: 0,
            rings: 0,
            floor: 0.0,
            exhausted: false,
            summaries: None,
        }
    }

    /// Explores the next ring (or, when a ring would be larger than the occupied part of the
    /// index, everything not seen yet), putting `(distance, slot)` of each realtor found into
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
        if !walk.coarse && walk.next_k >= FINE_RINGS {
            if let Some((res, _)) = &self.coarse {
                // Whoever the fine rings did not reach is at least this far; the coarse rings
                // start again from the centre (finding the fine rings' realtors again, who are
                // skipped as seen) and only add to the bound once they pass it.
                walk.floor = ring_bound_km(self.resolution, walk.next_k - 1);
                walk.coarse = true;
                walk.resolution = *res;
                walk.origin = walk.first.cell(*res);
                walk.next_k = 0;
                walk.cells_seen = 0;
            }
        }
        let k = walk.next_k;
        let ring_cells = if k == 0 { 1 } else { 6 * k as usize };
        let occupied = match &self.coarse {
            Some((_, coarse)) if walk.coarse => coarse.len(),
            _ => self.cells.len(),
        };
        let scan = k > 0 && walk.cells_seen + ring_cells > occupied;
        if scan {
            walk.exhausted = true;
        }
        let ring = if scan {
            Arc::default()
        } else {
            let ring = scratch.ring(walk.origin, k);
            walk.cells_seen += ring.len();
            walk.next_k += 1;
            walk.rings += 1;
            ring
        };
        match &self.coarse {
            Some((_, coarse)) if walk.coarse => {
                if scan {
                    for (&cell, cc) in coarse {
                        self.visit_coarse(walk, (cell, cc), target, scratch);
                    }
                } else {
                    for cell in ring.iter() {
                        if let Some(cc) = coarse.get(cell) {
                            self.visit_coarse(walk, (*cell, cc), target, scratch);
                        }
                    }
                }
            }
            _ => {
                if scan {
                    for slots in self.cells.values() {
                        self.visit_fine(walk, slots, target, scratch);
                    }
                } else {
                    for cell in ring.iter() {
                        if let Some(slots) = self.cells.get(cell) {
                            self.visit_fine(walk, slots, target, scratch);
                        }
                    }
                }
            }
        }
        Some(if scan {
            f64::INFINITY
        } else {
            walk.floor.max(ring_bound_km(walk.resolution, k))
        })
    }

    /// A fine cell of the walk: its realtors are found one by one, marked when the summary of
    /// their coarse cell rules them out.
    fn visit_fine(
        &self,
        walk: &Walk,
        slots: &[Slot],
        target: &GeoPoint,
        scratch: &mut SearchScratch,
    ) {
        // A fine cell's realtors nearly always share one coarse cell: ask once for it.
        let mut asked: Option<(CellIndex, bool)> = None;
        for s in slots {
            if scratch.seen[s.entry as usize] == scratch.generation {
                continue;
            }
            scratch.seen[s.entry as usize] = scratch.generation;
            let ruled_out = match (&self.coarse, s.coarse) {
                (Some((_, coarse)), Some(c))
                    if walk.summaries.is_some() && walk.next_k > SUMMARIES_FROM_RING =>
                {
                    match asked {
                        Some((a, answer)) if a == c => answer,
                        _ => {
                            let answer = coarse
                                .get(&c)
                                .is_some_and(|cc| !self.area_may_fit_once(walk, (c, cc), scratch));
                            asked = Some((c, answer));
                            answer
                        }
                    }
                }
                _ => false,
            };
            let distance = s.point.distance_km(target);
            scratch.fine_reach_km = scratch.fine_reach_km.max(distance);
            scratch.found.push((distance, *s, ruled_out));
        }
    }

    /// A coarse cell of the walk. Nobody in it is nearer than its centre's distance less its
    /// reach: realtors with a smaller radius are out of radius, and as the cell sorts them
    /// first they are passed over unread, neither looked at nor reported. When the cell's
    /// summary rules the tour out, the others are rejected together into `scratch.bulk`,
    /// without a distance for those whose radius reaches past the whole cell.
    fn visit_coarse(
        &self,
        walk: &Walk,
        (cell, cc): (CellIndex, &CoarseCell),
        target: &GeoPoint,
        scratch: &mut SearchScratch,
    ) {
        if walk.exhausted {
            // The scan after the rings: cells the rings visited hold nobody new.
            if scratch.coarse_visited.get(&cell) == Some(&scratch.generation) {
                return;
            }
        } else {
            scratch.coarse_visited.insert(cell, scratch.generation);
        }
        let centre_km = cc.centre.distance_km(target);
        let nearest = centre_km - cc.reach_km - 1e-6;
        let from = cc.slots.partition_point(|s| s.radius_km < nearest);
        if from == cc.slots.len() {
            return; // nobody here reaches the tour
        }
        let area = match walk.summaries {
            Some(area) if !self.area_may_fit_once(walk, (cell, cc), scratch) => area,
            _ => {
                for s in &cc.slots[from..] {
                    let mark = &mut scratch.seen[s.entry as usize];
                    if *mark != scratch.generation {
                        *mark = scratch.generation;
                        scratch.found.push((s.point.distance_km(target), *s, false));
                    }
                }
                return;
            }
        };
        let farthest = centre_km + cc.reach_km + 1e-6;
        let surely_within = cc.slots.partition_point(|s| s.radius_km < farthest);
        let mut band_end = cc.slots.len();
        // Those whose radius reaches past the whole cell are all within it: when the fine
        // rings found none of the cell and they share their hours, count them unread.
        if let (true, Some(hours)) = (nearest > scratch.fine_reach_km, cc.one_hours) {
            let unavailable = cc.unavailable_from[surely_within] as usize;
            scratch.bulk_counts.push(BulkCount {
                nearest,
                farthest,
                cell,
                from: surely_within,
                unavailable,
                available: cc.slots.len() - surely_within - unavailable,
                hours,
            });
            band_end = surely_within;
        }
        let first = scratch.bulk.len();
        let (t, cos_max) = (area.first_unit, area.cos_max_radius);
        let band = from..band_end.max(from);
        for (i, (s, r)) in cc.slots[band.clone()]
            .iter()
            .zip(&cc.reach[band])
            .enumerate()
            .map(|(i, sr)| (i + from, sr))
        {
            let mark = &mut scratch.seen[s.entry as usize];
            if *mark == scratch.generation {
                continue;
            }
            *mark = scratch.generation;
            // Within radius when the angle to the tour is at most the radius's: the cosines
            // decide, unless they are too close to call, where the haversine distance does.
            let cos = r.unit[0] * t[0] + r.unit[1] * t[1] + r.unit[2] * t[2];
            let beyond = |cos_limit: f64, km: f64| {
                if (cos - cos_limit).abs() < 1e-12 {
                    s.point.distance_km(target) > km
                } else {
                    cos < cos_limit
                }
            };
            let within = i >= surely_within || !beyond(r.cos_radius, s.radius_km);
            if !within && walk.exhausted && beyond(cos_max, self.max_radius_km) {
                continue; // as in the search: nobody that far can ever serve here
            }
            let reason = if !s.available {
                RejectReason::Unavailable
            } else if !within {
                RejectReason::OutOfRadius
            } else {
                RejectReason::Overlap // or outside working hours: settled at the end
            };
            scratch.bulk.push((s.entry, s.hours, reason));
        }
        scratch.bulk_areas.push(BulkArea {
            nearest,
            farthest,
            first,
            last: scratch.bulk.len(),
        });
    }
}
