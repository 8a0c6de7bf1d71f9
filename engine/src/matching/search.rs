//! The exact ring search over a [`RealtorIndex`] (CONTRACT 5.4).
//!
//! Walk H3 rings outwards from the cell of the tour's first listing. After ring k, no unexplored
//! realtor is nearer than the disk's escape distance ([`crate::disk`], measured from the grid,
//! never less than [`crate::geo::ring_bound_km`]). Candidates wait, unordered, until
//! the bound lets them through, and are evaluated (calendar, working hours) nearest first,
//! only once nothing unexplored can be nearer; the walk stops as soon as the bound passes the
//! nearest feasible distance plus the policy's slack. After `FINE_RINGS` rings at the index's
//! resolution the walk goes on in the index's coarse cells (two resolutions up), where only
//! realtors whose radius reaches the tour are looked at (those whose radius surely cannot are
//! passed over unread). When a ring would have more cells than the index has occupied cells,
//! the rest of the index is scanned instead, so sparse indexes and far searches stay cheap.
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
//! (status, radius, working hours, else `overlap`). Those the explanation lists (the nearest
//! [`super::explain::MAX_REPORTED`]) are still recorded one by one; the rest, far out where
//! they come by the thousand, are only counted ([`super::settle`]). Once a few candidates
//! were rejected one by one (or the fine rings are walked), the whole index's summary is
//! asked too: where nobody anywhere has a long enough stretch (a slot the whole city is
//! booked in), every candidate's reason follows from who they are and where the tour is, and
//! the decision is read from the searcher's cover of the origin cell ([`super::cover`])
//! instead of walking on (or, where a cover cannot say, the rest are rejected the same way
//! as the walk finds them, without reading their calendars).
//!
//! The ring walk itself is in [`super::walk`]; what a search keeps between searches, in
//! [`super::scratch`].

use crate::calendar::Footprint;
use crate::feasibility::{check_profile, earliest_start, hours_fit, RejectReason, Scratch};
use crate::geo::{distance_km, travel_minutes_for_km};
use crate::ids::RealtorId;
use crate::matching::explain::{Decision, Seen, Verdict};
use crate::matching::index::RealtorIndex;
use crate::matching::policy::{Feasible, Policy};
pub use crate::matching::scratch::SearchScratch;
use crate::matching::scratch::{Found, Pending};
use crate::matching::walk::{AreaQuery, FINE_RINGS};
use crate::tour::TourPlan;

/// Candidates evaluated one by one before the whole index's free-time summary is asked
/// whether anyone at all can take the tour: most assignable searches have found someone by
/// then (three in four take the nearest realtor) and need not ask; one in a slot the whole
/// city is booked in is then decided from the searcher's cover. (Measured on the benchmark
/// city, asking after 1, 2, 3, 5 or 8 screens: 2 costs the mix of tours least; 8 spent ~5.5k
/// more instructions on each booked-out tour than it spared the assignable ones.)
const SCREENS_BEFORE_INDEX_SUMMARY: u32 = 2;

/// What every evaluation of one search shares.
pub(super) struct Query<'a> {
    fp: Footprint<'a>,
    ws: i64,
    we: i64,
    /// Whether the last stop differs from the first (its distance from home then matters too).
    multi_stop: bool,
}

/// Travel seconds no trip of at least `km` can take less than. The millimetre of slack keeps
/// the bound below the engine's own rounding of `travel_minutes` (distances here are at most a
/// few hundred km, where haversine's float error is far smaller).
pub(super) fn travel_at_least(km: f64) -> i64 {
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
        scratch.begin(self.entries.len(), self.hours.len(), self.coarse_ids);
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
            && (plan.stops.len() == 1 || !self.near_booked_stop(plan.last()))
        {
            walk.summaries = Some(AreaQuery {
                window: (q.ws, q.we, q.fp.duration),
                first: q.fp.first.point(),
                last: q.multi_stop.then(|| q.fp.last.point()),
                first_unit: target.unit(),
            });
        }
        let (mut screened, mut nobody_anywhere) = (0, false);
        while let Some(bound) = self.explore(&mut walk, &target, scratch) {
            let found = std::mem::take(&mut scratch.found);
            for f in &found {
                let (distance, entry) = (f.distance, f.entry);
                if walk.exhausted && distance > self.max_radius_km {
                    continue; // a scan reaches the whole index; nobody that far can ever serve here
                }
                // Everyone waits until nothing unexplored can be nearer, the coarse rings'
                // hundreds too: a search that finds someone feasible evaluates only those
                // nearer (their calendars are most of what it reads), and one that finds
                // nobody evaluates them all in the end, as it would have on arrival.
                let verdict = self.check_found(plan, f).and_then(|()| {
                    if f.ruled_out || nobody_anywhere {
                        Err(self.area_reason(&q, f.hours, scratch))
                    } else {
                        Ok(())
                    }
                });
                match verdict {
                    Ok(()) => scratch.push_pending(Pending {
                        distance,
                        entry,
                        hours: f.hours,
                    }),
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
            // (The limit only shrinks during a round: those it lets through now are all.)
            scratch.take_ready(nearest_feasible.map_or(bound, |n| n + slack));
            while let Some(top) = scratch.ready.pop() {
                let limit = nearest_feasible.map_or(bound, |n| n + slack);
                if top.distance > limit {
                    scratch.ready.push(top);
                    break;
                }
                // Once a few were rejected one by one, the whole index's summary may show that
                // nobody anywhere can take the tour: the rest need no calendar read.
                if screened == SCREENS_BEFORE_INDEX_SUMMARY
                    && !self.index_may_fit_once(&walk, scratch)
                {
                    if nearest_feasible.is_none() {
                        if let Some(d) =
                            self.decide_booked_out(policy, &q, &mut walk, &target, scratch)
                        {
                            return d;
                        }
                    }
                    // Whoever waits is rejected now, in any order (nobody will be feasible),
                    // and whoever is found later on arrival.
                    nobody_anywhere = true;
                    scratch.ready.push(top);
                    self.reject_waiting(&q, scratch);
                    break;
                }
                screened += 1;
                let verdict = self.evaluate(&q, top.entry, top.distance, scratch);
                let e = &self.entries[top.entry as usize];
                match verdict {
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
            scratch.put_back_ready();
            let settled = nearest_feasible.is_some_and(|n| bound > n + slack);
            if settled || bound > self.max_radius_km {
                break;
            }
            // Leaving the fine rings with nobody feasible: the whole index's summary may show
            // that nobody anywhere is, however few were screened one by one.
            let leaving_fine_rings = !walk.coarse && walk.next_k >= FINE_RINGS;
            if leaving_fine_rings
                && !nobody_anywhere
                && nearest_feasible.is_none()
                && !self.index_may_fit_once(&walk, scratch)
            {
                if let Some(d) = self.decide_booked_out(policy, &q, &mut walk, &target, scratch) {
                    return d;
                }
                nobody_anywhere = true;
                self.reject_waiting(&q, scratch);
            }
        }
        // Realtors found beyond what decided the search were never in contention: leave them
        // out; those within it but not evaluated lost on distance alone.
        let decisive = nearest_feasible.map_or(f64::INFINITY, |n| n + slack);
        scratch.reports.retain(|r| r.distance_km <= decisive);
        for p in scratch.pending.drain(..) {
            if p.distance <= decisive {
                scratch.reports.push(Seen {
                    distance_km: p.distance,
                    entry: p.entry,
                    verdict: Verdict::NotEvaluated,
                });
            }
        }
        let counted = self.settle_bulk(&q, &target, walk.summaries.as_ref(), decisive, scratch);
        Decision::from_search(
            policy,
            feasible,
            &mut scratch.reports,
            counted,
            walk.rings,
            |entry| self.entries[entry as usize].realtor.id,
        )
    }

    /// Rejects every candidate waiting (ready or pending) for the reason their area's summary
    /// would give: the whole index's summary showed that nobody can take the tour.
    fn reject_waiting(&self, q: &Query<'_>, scratch: &mut SearchScratch) {
        let (mut ready, mut pending) = (
            std::mem::take(&mut scratch.ready),
            std::mem::take(&mut scratch.pending),
        );
        for p in ready.drain(..).chain(pending.drain(..)) {
            let reason = self.area_reason(q, p.hours, scratch);
            scratch.reports.push(Seen {
                distance_km: p.distance,
                entry: p.entry,
                verdict: Verdict::Rejected(reason),
            });
        }
        scratch.pending_nearest = f64::INFINITY;
        (scratch.ready, scratch.pending) = (ready, pending);
    }

    /// Why an available realtor within radius, whose area's summary rules the tour out, cannot
    /// take it: what [`crate::feasibility::earliest_start`] would say.
    pub(super) fn area_reason(
        &self,
        q: &Query<'_>,
        hours: u32,
        scratch: &mut SearchScratch,
    ) -> RejectReason {
        if self.hours_for(q, hours, scratch).2 {
            RejectReason::Overlap
        } else {
            RejectReason::OutsideWorkingHours
        }
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
        let (from, to, _) = self.hours_for(q, e.hours, scratch);
        let intervals = &scratch.hours_pool[from..to];
        let last_km = self.last_km(q, entry, distance);
        e.calendar
            .earliest_free_known(
                &q.fp,
                distance.max(last_km),
                (q.ws, q.we),
                intervals,
                &mut scratch.forbidden,
            )
            .ok_or(RejectReason::Overlap)
    }

    /// [`check_profile`] from the copies in `found` (the entry is read only for declines).
    fn check_found(&self, plan: &TourPlan, found: &Found) -> Result<(), RejectReason> {
        let distance = found.distance;
        if !found.available {
            return Err(RejectReason::Unavailable);
        }
        if !plan.declined.is_empty() {
            let e = &self.entries[found.entry as usize];
            return check_profile(&e.realtor, plan, distance);
        }
        if distance > found.radius_km {
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
    pub(super) fn hours_for(
        &self,
        q: &Query<'_>,
        id: u32,
        scratch: &mut SearchScratch,
    ) -> (usize, usize, bool) {
        let i = id as usize;
        if scratch.hours_stamp[i] != scratch.generation {
            scratch.utc_hours.fill_for(
                &self.hours[i],
                (i, self.hours_keys[i]),
                (q.ws, q.we),
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
        search.begin(self.entries.len(), self.hours.len(), self.coarse_ids);
        let mut within = Vec::new();
        while let Some(bound) = self.explore(&mut walk, &target, &mut search) {
            within.extend(
                search
                    .found
                    .iter()
                    .filter(|f| f.distance <= radius_km)
                    .map(|f| (f.distance, f.entry)),
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
}
