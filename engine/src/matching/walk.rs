//! The ring walk of a search: which cells it visits in what order, what it finds there, and
//! which coarse cells it rules out whole by their free-time summaries.
//!
//! Rings at the index's resolution first (`FINE_RINGS` of them), then rings of coarse cells
//! (two resolutions up), where only realtors whose radius reaches the tour are looked at (those
//! whose radius surely cannot are passed over unread); when a ring would have more cells than
//! the index has occupied ones, the rest is scanned instead.

use h3o::{CellIndex, Resolution};

use crate::feasibility::RejectReason;
use crate::geo::{ring_bound_km, GeoPoint, Location};
use crate::matching::free_time::travel_level;
use crate::matching::index::{CoarseCell, Reach, RealtorIndex, Slot};
use crate::matching::scratch::{
    BulkArea, BulkCount, CopiedSlot, Found, SearchScratch, COPIED_RINGS,
};
use crate::matching::search::travel_at_least;
use crate::tour::TourPlan;

/// Rings walked at the index's resolution before switching to the coarse cells: enough for
/// nearly every assignable tour (2 rings at the median, 98% within 4, with the bounds of
/// [`crate::disk`]), few enough that a tour nobody can take does not enumerate thousands of
/// small cells. (Measured on the benchmark city: 4 costs least over both kinds of tour.)
pub(super) const FINE_RINGS: u32 = 4;

/// Where a ring walk is: the next ring, and whether everything has been seen.
pub(super) struct Walk {
    pub(super) first: Location,
    /// The first listing on the unit sphere.
    pub(super) first_unit: [f64; 3],
    /// The first listing's cell at `resolution`.
    pub(super) origin: CellIndex,
    pub(super) resolution: Resolution,
    /// Whether the walk moved on to the index's coarse cells.
    pub(super) coarse: bool,
    pub(super) next_k: u32,
    /// Cells enumerated at `resolution`.
    pub(super) cells_seen: usize,
    /// Rings explored, at both resolutions.
    pub(super) rings: u32,
    /// What the fine rings proved: nobody unexplored is nearer.
    pub(super) floor: f64,
    /// The distance from the first listing to the centre of `origin`: the disk's own bound
    /// ([`crate::disk`]) is that much less for the listing than for the centre. Known once
    /// the first ring around `origin` is explored.
    pub(super) centre_km: Option<f64>,
    /// What the last ring explored proved: nobody unexplored is nearer.
    pub(super) bound: f64,
    pub(super) exhausted: bool,
    /// What areas are ruled out for by their free-time summaries, when they may be.
    pub(super) summaries: Option<AreaQuery>,
}

impl Walk {
    /// What exploring rings `0..=k` around the walk's origin (at its resolution) proves:
    /// nobody outside them is nearer the first listing than this. The disk's own bound,
    /// measured ([`crate::disk`]), or the one that holds anywhere; never less than `floor`.
    pub(super) fn disk_bound(&mut self, k: u32, scratch: &mut SearchScratch) -> f64 {
        let centre_km = match self.centre_km {
            Some(km) => km,
            None => {
                let km = scratch.centre_km(self.origin, &self.first.point());
                self.centre_km = Some(km);
                km
            }
        };
        let measured = scratch.escape_km(self.origin, k) - centre_km;
        self.floor
            .max(ring_bound_km(self.resolution, k))
            .max(measured)
    }
}

/// The tour as a free-time summary sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct AreaQuery {
    /// `(window start, window end, duration)`.
    pub(super) window: (i64, i64, i64),
    pub(super) first: GeoPoint,
    /// The last stop, when it is not where the tour starts.
    pub(super) last: Option<GeoPoint>,
    /// `first` on the unit sphere.
    pub(super) first_unit: [f64; 3],
}

impl AreaQuery {
    /// What becomes of a realtor (home, radius and availability `r`, whole slot `slot`) of an
    /// area ruled out for this tour: `None` when their radius does not reach it (beyond the
    /// fine rings nobody else is looked at), `Overlap` standing for "available and within
    /// radius" until working hours decide. `surely_within` when the radius is known to reach
    /// past the whole area. The slot is read only when the cosines are too close to call
    /// (rarely): a cell's `reach` column is half the bytes of its slots.
    #[inline]
    pub(super) fn verdict<'a>(
        &self,
        r: &Reach,
        slot: impl Fn() -> &'a Slot,
        surely_within: bool,
    ) -> Option<RejectReason> {
        let within = surely_within
            || r.reaches(self.first_unit, || {
                let s = slot();
                s.point.distance_km(&self.first) <= s.radius_km
            });
        within.then_some(if r.available {
            RejectReason::Overlap
        } else {
            RejectReason::Unavailable
        })
    }
}

/// Fine rings searched one realtor at a time before summaries may rule areas out: nearly
/// every assignable tour is settled by then (2 rings at the median), and asking costs it.
pub(super) const SUMMARIES_FROM_RING: u32 = 3;

impl RealtorIndex {
    /// Whether someone in coarse cell `cell` might take the tour of `walk`, by the cell's
    /// free-time summary (asked once per search and cell). Always true without summaries.
    pub(super) fn area_may_fit_once(
        &self,
        walk: &Walk,
        (cell, cc): (CellIndex, &CoarseCell),
        scratch: &mut SearchScratch,
    ) -> bool {
        let Some(area) = walk.summaries else {
            return true;
        };
        let mark = scratch.coarse_marks[cc.id as usize];
        if mark.asked == scratch.generation {
            return mark.fits;
        }
        // Where nobody in the whole index has a long enough stretch, no cell needs asking.
        if !self.index_may_fit_once(walk, scratch) {
            return false;
        }
        // No booked stop of the cell is nearer either end of the tour than this.
        let mut centre_km = cc.centre.distance_km(&area.first);
        if let Some(last) = &area.last {
            centre_km = centre_km.min(cc.centre.distance_km(last));
        }
        let least_km = centre_km - cc.reach_km - cc.stop_reach_km;
        let fits = self.area_may_fit(
            (cell, cc),
            area.window,
            travel_level(travel_at_least(least_km)),
            &mut scratch.feasibility.zones,
        );
        let mark = &mut scratch.coarse_marks[cc.id as usize];
        mark.asked = scratch.generation;
        mark.fits = fits;
        fits
    }

    /// Whether anyone in the whole index might take the tour of `walk`, by the index's
    /// free-time summary (asked once per search). Always true without summaries.
    pub(super) fn index_may_fit_once(&self, walk: &Walk, scratch: &mut SearchScratch) -> bool {
        let Some(area) = walk.summaries else {
            return true;
        };
        *scratch
            .index_fits
            .get_or_insert_with(|| self.index_may_fit(area.window, &mut scratch.feasibility.zones))
    }

    pub(super) fn walk(&self, plan: &TourPlan) -> Walk {
        let origin = plan.first_cell(self.resolution);
        Walk {
            first: *plan.first(),
            first_unit: plan.first().point().unit(),
            origin,
            resolution: self.resolution,
            coarse: false,
            next_k: 0,
            cells_seen: 0,
            rings: 0,
            floor: 0.0,
            centre_km: None,
            bound: 0.0,
            exhausted: false,
            summaries: None,
        }
    }

    /// Explores the next ring (or, when a ring would be larger than the occupied part of the
    /// index, everything not seen yet), putting `(distance, slot)` of each realtor found into
    /// `scratch.found`. Returns the bound on the distance of anything still unexplored; `None`
    /// when done.
    pub(super) fn explore(
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
                walk.floor = walk.bound;
                walk.coarse = true;
                walk.resolution = *res;
                walk.origin = walk.first.cell(*res);
                walk.centre_km = None;
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
            0..0
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
                    for at in ring {
                        let cell = scratch.ring_cells[at];
                        if let Some(cc) = coarse.get(&cell) {
                            self.visit_coarse(walk, (cell, cc), target, scratch);
                        }
                    }
                }
            }
            _ => {
                if scan {
                    for slots in self.cells.values() {
                        self.visit_fine(walk, slots, target, scratch);
                    }
                } else if k <= COPIED_RINGS {
                    let index = (&self.cells, self.cells_version, self.entries.len());
                    let at = scratch.copied_ring((walk.origin, k), ring, index);
                    let copies = std::mem::take(&mut scratch.ring_slots);
                    visit_copies(&copies[at], target, scratch);
                    scratch.ring_slots = copies;
                } else {
                    for at in ring {
                        if let Some(slots) = self.cells.get(&scratch.ring_cells[at]) {
                            self.visit_fine(walk, slots, target, scratch);
                        }
                    }
                }
            }
        }
        walk.bound = if scan {
            f64::INFINITY
        } else {
            walk.disk_bound(k, scratch)
        };
        Some(walk.bound)
    }

    /// A fine cell of the walk: its realtors are found one by one, marked when the summary of
    /// their coarse cell rules them out.
    pub(super) fn visit_fine(
        &self,
        walk: &Walk,
        slots: &[Slot],
        target: &GeoPoint,
        scratch: &mut SearchScratch,
    ) {
        // A fine cell's realtors nearly always share one coarse cell: ask once for it.
        let mut asked: Option<(CellIndex, bool)> = None;
        let coarse = match &self.coarse {
            Some((_, coarse)) if walk.summaries.is_some() && walk.next_k > SUMMARIES_FROM_RING => {
                Some(coarse)
            }
            _ => None,
        };
        for s in slots {
            if scratch.seen[s.entry as usize] == scratch.generation {
                continue;
            }
            scratch.seen[s.entry as usize] = scratch.generation;
            let ruled_out = match (coarse, s.coarse) {
                (Some(coarse), Some(c)) => match asked {
                    Some((a, answer)) if a == c => answer,
                    _ => {
                        let answer = coarse
                            .get(&c)
                            .is_some_and(|cc| !self.area_may_fit_once(walk, (c, cc), scratch));
                        asked = Some((c, answer));
                        answer
                    }
                },
                _ => false,
            };
            let distance = s.point.distance_km(target);
            if distance > scratch.fine_reach_km {
                scratch.fine_reach_km = distance; // (distances are never NaN: no `f64::max`)
            }
            scratch.found.push(Found::new(distance, s, ruled_out));
        }
    }

    /// A coarse cell of the walk. Nobody in it is nearer than its centre's distance less its
    /// reach: realtors with a smaller radius are out of radius, and as the cell sorts them
    /// first they are passed over unread; of the others, only those whose radius reaches the
    /// tour are looked at. When the cell's summary rules the tour out, those are rejected
    /// together into `scratch.bulk` or counted, without a distance for those whose radius
    /// reaches past the whole cell.
    pub(super) fn visit_coarse(
        &self,
        walk: &Walk,
        (cell, cc): (CellIndex, &CoarseCell),
        target: &GeoPoint,
        scratch: &mut SearchScratch,
    ) {
        if walk.exhausted {
            // The scan after the rings: cells the rings visited hold nobody new.
            if scratch.coarse_marks[cc.id as usize].visited == scratch.generation {
                return;
            }
        } else {
            scratch.coarse_marks[cc.id as usize].visited = scratch.generation;
        }
        // Nobody here reaches the tour when it lies beyond the largest radius plus the
        // cell's reach from the centre: one dot product (the haversine decides a near tie).
        let (u, t) = (cc.centre_unit, walk.first_unit);
        let cos = u[0] * t[0] + u[1] * t[1] + u[2] * t[2];
        if cos < cc.cos_nobody_reaches - 1e-12 {
            return;
        }
        let centre_km = cc.centre.distance_km(target);
        let nearest = centre_km - cc.reach_km - 1e-6;
        let from = cc.radii.partition_point(|&r| r < nearest);
        if from == cc.slots.len() {
            return; // nobody here reaches the tour
        }
        let area = match walk.summaries {
            Some(area) if !self.area_may_fit_once(walk, (cell, cc), scratch) => area,
            _ => {
                for s in &cc.slots[from..] {
                    let mark = &mut scratch.seen[s.entry as usize];
                    if *mark != scratch.generation {
                        // Beyond the fine rings, only realtors whose radius reaches the tour
                        // are looked at (each coarse cell is visited once: no mark needed
                        // for the others).
                        let distance = s.point.distance_km(target);
                        if distance <= s.radius_km {
                            *mark = scratch.generation;
                            scratch.found.push(Found::new(distance, s, false));
                        }
                    }
                }
                return;
            }
        };
        let farthest = centre_km + cc.reach_km + 1e-6;
        let surely_within = cc.radii.partition_point(|&r| r < farthest);
        let band = from..surely_within.max(from);
        // When the cell's realtors share their hours, they are only counted: a dot product
        // each in the radius band, beyond it (whose radius reaches past the whole cell) not
        // even that, and nothing stored per realtor. Those the fine rings found are reported
        // already and left out; only a cell within the fine rings' reach can hold any.
        if let Some(hours) = cc.one_hours {
            // Nobody here is nearer than `nearest`, farther than anyone the fine rings found.
            let none_seen = nearest > scratch.fine_reach_km;
            let suffix = band.end..cc.slots.len();
            let mut unavailable = cc.unavailable_from[band.end] as usize;
            let mut available = suffix.len() - unavailable;
            let band_unavailable = cc.unavailable_from[band.start] as usize - unavailable;
            // The common case, far from the tour: a dot product each in the band, where
            // everyone is available (the count reads no availability).
            let within = if none_seen && band_unavailable == 0 {
                cc.available_within(band.clone(), walk.first_unit)
            } else {
                None
            };
            if let Some(within) = within {
                available += within;
            } else {
                if !none_seen {
                    // Those the fine rings found are reported already: take them out (few).
                    for (i, &entry) in cc.entries[suffix.clone()].iter().enumerate() {
                        if scratch.seen[entry as usize] == scratch.generation {
                            if cc.is_available(suffix.start + i) {
                                available -= 1;
                            } else {
                                unavailable -= 1;
                            }
                        }
                    }
                }
                for i in band {
                    if scratch.seen[cc.entries[i] as usize] == scratch.generation {
                        continue;
                    }
                    match area.verdict(&cc.reach[i], || &cc.slots[i], i >= surely_within) {
                        Some(RejectReason::Unavailable) => unavailable += 1,
                        Some(_) => available += 1,
                        None => {}
                    }
                }
            }
            scratch.bulk_counts.push(BulkCount {
                nearest,
                farthest,
                cell,
                from,
                surely_within,
                unavailable,
                available,
                hours,
            });
            return;
        }
        let first = scratch.bulk.len();
        for (i, (s, r)) in cc.slots[from..]
            .iter()
            .zip(&cc.reach[from..])
            .enumerate()
            .map(|(i, sr)| (i + from, sr))
        {
            let mark = &mut scratch.seen[s.entry as usize];
            if *mark == scratch.generation {
                continue;
            }
            *mark = scratch.generation;
            if let Some(reason) = area.verdict(r, || s, i >= surely_within) {
                scratch.bulk.push((s.entry, s.hours, reason));
            }
        }
        scratch.bulk_areas.push(BulkArea {
            nearest,
            farthest,
            first,
            last: scratch.bulk.len(),
        });
    }
}

/// The copied slots of one of the first rings ([`RealtorIndex::visit_fine`] without the
/// area summaries, which are asked only from ring `SUMMARIES_FROM_RING` on).
fn visit_copies(copies: &[CopiedSlot], target: &GeoPoint, scratch: &mut SearchScratch) {
    const _: () = assert!(COPIED_RINGS < SUMMARIES_FROM_RING);
    for c in copies {
        let entry = c.entry() as usize;
        if scratch.seen[entry] == scratch.generation {
            continue;
        }
        scratch.seen[entry] = scratch.generation;
        let distance = c.point.distance_km(target);
        if distance > scratch.fine_reach_km {
            scratch.fine_reach_km = distance;
        }
        scratch.found.push(c.found(distance));
    }
}
