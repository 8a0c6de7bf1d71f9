//! What a search keeps between searches (buffers, enumerated rings)
//! and what it gathers during one (candidates, realtors ruled out with their areas).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use h3o::CellIndex;
use rustc_hash::FxHashMap;

use crate::feasibility::{RejectReason, Scratch};
use crate::geo::{ring_into, GeoPoint, Location};
use crate::matching::cover::Covers;
use crate::matching::explain::{Seen, MAX_REPORTED};
use crate::matching::index::Slot;
use crate::time::{WorkingHours, ZoneMemo};

/// A candidate waiting for evaluation, ordered by distance then entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Pending {
    pub(super) distance: f64,
    pub(super) entry: u32,
    /// Their working hours in the index's list (for a rejection without their entry).
    pub(super) hours: u32,
}

impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        // Distances are never negative, where their bits order them as `total_cmp` does:
        // one integer comparison.
        (self.distance.to_bits(), self.entry).cmp(&(other.distance.to_bits(), other.entry))
    }
}

/// Realtors of one coarse cell rejected together: `bulk[first..last]` of the scratch, all
/// between `nearest` and `farthest` km from the tour.
#[derive(Debug, Clone, Copy)]
pub(super) struct BulkArea {
    pub(super) nearest: f64,
    pub(super) farthest: f64,
    pub(super) first: usize,
    pub(super) last: usize,
}

/// Realtors of one coarse cell ruled out together and only counted: `slots[from..]` of
/// `cell` (those before are out of radius and passed over), of which `slots[surely_within..]`
/// have a radius reaching past the whole cell; all share working hours `hours`. Counted as
/// [`super::walk::AreaQuery::verdict`] sees them: only those whose radius reaches the tour.
#[derive(Debug, Clone, Copy)]
pub(super) struct BulkCount {
    pub(super) nearest: f64,
    pub(super) farthest: f64,
    pub(super) cell: CellIndex,
    pub(super) from: usize,
    pub(super) surely_within: usize,
    /// Unavailable and within radius.
    pub(super) unavailable: usize,
    /// Available and within radius: rejected for their hours, else `overlap`.
    pub(super) available: usize,
    pub(super) hours: u32,
}

/// The distances of the [`MAX_REPORTED`] nearest realtors recorded so far (a max-heap): an
/// explanation lists nobody farther than the largest, once there are that many.
#[derive(Debug, Default)]
pub(super) struct NearestListed(BinaryHeap<Km>);

/// A distance ordered by `total_cmp`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Km(f64);

impl Eq for Km {}
impl PartialOrd for Km {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Km {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl NearestListed {
    /// Starts again from the distances of the realtors recorded.
    pub(super) fn start(&mut self, recorded: impl Iterator<Item = f64>) {
        self.0.clear();
        for km in recorded {
            self.push(km);
        }
    }

    /// Notes one more realtor recorded `km` away.
    pub(super) fn push(&mut self, km: f64) {
        if self.0.len() < MAX_REPORTED {
            self.0.push(Km(km));
        } else if let Some(mut farthest) = self.0.peek_mut() {
            if km < farthest.0 {
                *farthest = Km(km);
            }
        }
    }

    /// Nobody farther than this is listed: the `MAX_REPORTED`-th nearest distance recorded
    /// (infinite until there are that many).
    pub(super) fn cut_km(&self) -> f64 {
        match self.0.peek() {
            Some(farthest) if self.0.len() >= MAX_REPORTED => farthest.0,
            _ => f64::INFINITY,
        }
    }
}

/// Each set of working hours converted to UTC over a span of days around the last window
/// that needed it: the next search whose window falls inside the span only picks its
/// intervals out (converting local times costs time-zone arithmetic per interval).
#[derive(Debug, Default)]
pub(super) struct UtcHoursCache {
    /// By the hours' id in their index: the key of the hours converted (ids are an index's
    /// own; keys are unique across indexes, see `RealtorIndex::hours_keys`), the UTC span
    /// `[from, to)` covered, and every working interval meeting it.
    spans: Vec<Option<ConvertedSpan>>,
}

/// One set of working hours in UTC over a span of days.
#[derive(Debug)]
struct ConvertedSpan {
    key: u64,
    span: (i64, i64),
    intervals: Vec<(i64, i64)>,
}

/// How far around a window a conversion reaches: windows last at most 14 days, and tours of
/// a week are spread over a few days.
const UTC_SPAN_MARGIN: i64 = 7 * 24 * 3600;

impl UtcHoursCache {
    /// Into `out`: what `hours.utc_intervals(window)` gives, from the span kept for id `id`
    /// (if it still holds the hours of `key`)
    /// when it covers the window (every interval meeting the window then meets the span, and
    /// the span's are sorted), else after converting a new span.
    pub(super) fn fill_for(
        &mut self,
        hours: &WorkingHours,
        (id, key): (usize, u64),
        (from, to): (i64, i64),
        out: &mut Vec<(i64, i64)>,
        zones: &mut ZoneMemo,
    ) {
        if self.spans.len() <= id {
            self.spans.resize_with(id + 1, || None);
        }
        let slot = &mut self.spans[id];
        let covered = slot
            .as_ref()
            .is_some_and(|c| c.span.0 <= from && to <= c.span.1 && c.key == key);
        if !covered {
            let span = (
                from.saturating_sub(UTC_SPAN_MARGIN),
                to.saturating_add(UTC_SPAN_MARGIN),
            );
            let mut intervals = slot.take().map(|c| c.intervals).unwrap_or_default();
            hours.utc_intervals(span.0, span.1, &mut intervals, zones);
            *slot = Some(ConvertedSpan {
                key,
                span,
                intervals,
            });
        }
        out.clear();
        if let Some(c) = slot {
            out.extend(c.intervals.iter().filter(|&&(a, b)| a < to && b > from));
        }
    }
}

/// What a search learnt of one coarse cell; a field holds only when its stamp is the
/// search's generation.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CoarseMark {
    /// The rings visited the cell.
    pub(super) visited: u32,
    /// `asked`: whether, by its summary, someone in the cell might take the tour (`fits`).
    pub(super) asked: u32,
    pub(super) fits: bool,
}

/// A realtor a ring found, with what the first checks of a candidate read (copied from
/// their slot, smaller than it: thousands are found per search).
#[derive(Debug, Clone, Copy)]
pub(super) struct Found {
    pub(super) distance: f64,
    pub(super) radius_km: f64,
    pub(super) entry: u32,
    /// Their working hours in the index's list.
    pub(super) hours: u32,
    pub(super) available: bool,
    /// Whether the free-time summary of their area rules the tour out.
    pub(super) ruled_out: bool,
}

impl Found {
    pub(super) fn new(distance: f64, s: &Slot, ruled_out: bool) -> Self {
        Self {
            distance,
            radius_km: s.radius_km,
            entry: s.entry,
            hours: s.hours,
            available: s.available,
            ruled_out,
        }
    }
}

/// A searcher's copy of a slot of the first rings around a place: what visiting it reads,
/// 56 bytes instead of the slot's 72 (the coarse cell is only read farther out).
#[derive(Debug, Clone, Copy)]
pub(super) struct CopiedSlot {
    pub(super) point: GeoPoint,
    pub(super) radius_km: f64,
    /// The entry, with the top bit set when the realtor is not available (an index cannot
    /// hold 2^31 realtors: each takes hundreds of bytes).
    entry_and_away: u32,
    pub(super) hours: u32,
}

impl CopiedSlot {
    const AWAY: u32 = 1 << 31;

    fn new(s: &Slot) -> Self {
        Self {
            point: s.point,
            radius_km: s.radius_km,
            entry_and_away: s.entry | if s.available { 0 } else { Self::AWAY },
            hours: s.hours,
        }
    }

    pub(super) fn entry(&self) -> u32 {
        self.entry_and_away & !Self::AWAY
    }

    /// A realtor the first rings found, never ruled out by area (summaries are asked only
    /// farther out).
    pub(super) fn found(&self, distance: f64) -> Found {
        Found {
            distance,
            radius_km: self.radius_km,
            entry: self.entry(),
            hours: self.hours,
            available: self.entry_and_away & Self::AWAY == 0,
            ruled_out: false,
        }
    }
}

/// Buffers reused across searches, and the rings they have enumerated.
#[derive(Debug, Default)]
pub struct SearchScratch {
    /// Candidates waiting for evaluation, in no order: most are found beyond what decides
    /// the search and never evaluated, so ordering them all (a heap) costs more than picking
    /// out, after each ring, the few the bound lets through.
    pub(super) pending: Vec<Pending>,
    /// No pending candidate is nearer than this: a ring whose bound lets none through skips
    /// the pass over them (most rings of an assignable search).
    pub(super) pending_nearest: f64,
    /// Those picked out, farthest first (`pop` gives the nearest).
    pub(super) ready: Vec<Pending>,
    /// Realtors the last ring found.
    pub(super) found: Vec<Found>,
    /// Who is near and who reaches the places searched from (see [`super::cover`]).
    pub(super) covers: Covers,
    pub(super) feasibility: Scratch,
    /// `seen[entry] == generation` when the current search already found that realtor.
    pub(super) seen: Vec<u32>,
    /// What is known of ring `k` around an origin cell, by `(origin, k)`: the same listings
    /// (and nearby ones, sharing a cell) are toured again and again, and enumerating a ring
    /// costs H3 more than everything else a ring search does with it. One entry for all a
    /// search asks of a ring (its cells, its bound, its copies): one lookup's cache line.
    pub(super) rings: FxHashMap<(CellIndex, u32), KnownRing>,
    /// The cells of the rings known, side by side.
    pub(super) ring_cells: Vec<CellIndex>,
    /// The centres of the cells searches started from (see [`Self::centre_km`]).
    centres: FxHashMap<CellIndex, Option<GeoPoint>>,
    /// Copies of the slots of the first rings around a place (`k <= COPIED_RINGS`), side by
    /// side: the few dozen realtors an assignable search nearly always reads, in a few
    /// cache lines read in order, instead of one hash lookup and one allocation per cell.
    /// All copied from the index whose `cells_version` was `copies_version` (any change to
    /// its cells drops them all); a ring's are valid while its `copies_epoch` is this one.
    pub(super) ring_slots: Vec<CopiedSlot>,
    pub(super) copies_version: u64,
    pub(super) copies_epoch: u64,
    /// A ring being enumerated.
    pub(super) ring: Vec<CellIndex>,
    pub(super) generation: u32,
    /// `hours_stamp[id] == generation` when `hours_span[id]` holds this search's UTC working
    /// intervals of hours `id` (a range of `hours_pool`) and whether they fit the window.
    pub(super) hours_stamp: Vec<u32>,
    pub(super) hours_span: Vec<(u32, u32, bool)>,
    pub(super) hours_pool: Vec<(i64, i64)>,
    pub(super) intervals: Vec<(i64, i64)>,
    /// Working hours converted to UTC over spans of days, kept across searches.
    pub(super) utc_hours: UtcHoursCache,
    pub(super) forbidden: Vec<(i64, i64)>,
    /// Every candidate the current search looked at.
    pub(super) reports: Vec<Seen>,
    /// Whether, by the whole index's summary, anyone might take the current search's tour
    /// (asked when a cell's summary is first needed).
    pub(super) index_fits: Option<bool>,
    /// What the current search learnt of each coarse cell, by the cell's id.
    pub(super) coarse_marks: Vec<CoarseMark>,
    /// Realtors rejected with their area and only counted: `(entry, hours, reason)`, where
    /// `Overlap` stands for "available and within radius" until their working hours decide.
    pub(super) bulk: Vec<(u32, u32, RejectReason)>,
    pub(super) bulk_areas: Vec<BulkArea>,
    pub(super) bulk_counts: Vec<BulkCount>,
    /// The distances of the nearest realtors recorded, as bulk rejections are settled.
    pub(super) listed: NearestListed,
    /// The farthest realtor the current search's fine rings found: coarse cells wholly
    /// beyond it hold nobody they saw.
    pub(super) fine_reach_km: f64,
    /// Whether searches must examine every candidate one by one.
    pub(super) exhaustive: bool,
}

/// What a scratch knows of one ring around an origin cell.
#[derive(Debug, Clone, Copy)]
pub(super) struct KnownRing {
    /// Its cells: a range of `ring_cells`.
    cells: (u32, u32),
    /// How far the centre of the origin cell is from leaving the disk of rings `0..=k`
    /// ([`crate::disk::escape_km`]): measured once, from H3's boundaries; NaN until then.
    escape_km: f64,
    /// Copies of its slots: a range of `ring_slots`, when `copies_epoch` is the scratch's.
    copies: (u32, u32),
    copies_epoch: u64,
}

/// Rings a scratch keeps before starting afresh (a metro's listings need a few thousand).
const MAX_RINGS_KEPT: usize = 1 << 20;

/// The rings whose slots a scratch copies (0, 1 and 2: the 19 cells nearest a place).
pub(super) const COPIED_RINGS: u32 = 2;

/// Slots a scratch copies, per realtor of the index, before starting afresh: a metro's
/// listings toured everywhere need about ten (the index itself keeps far more per realtor).
const SLOTS_COPIED_PER_REALTOR: usize = 16;

impl SearchScratch {
    /// The cells at grid distance `k` from `origin`: a range of `ring_cells`, valid until the
    /// next call.
    pub(super) fn ring(&mut self, origin: CellIndex, k: u32) -> std::ops::Range<usize> {
        if let Some(known) = self.rings.get(&(origin, k)) {
            return known.cells.0 as usize..known.cells.1 as usize;
        }
        if self.rings.len() >= MAX_RINGS_KEPT || self.ring_cells.len() > u32::MAX as usize / 2 {
            self.rings.clear();
            self.ring_cells.clear();
        }
        ring_into(origin, k, &mut self.ring);
        let from = self.ring_cells.len();
        self.ring_cells.extend_from_slice(&self.ring);
        let to = self.ring_cells.len();
        // Both fit: `ring_cells` is kept under u32::MAX / 2.
        let known = KnownRing {
            cells: (from as u32, to as u32),
            escape_km: f64::NAN,
            copies: (0, 0),
            copies_epoch: 0, // (epochs count from 1)
        };
        self.rings.insert((origin, k), known);
        from..to
    }

    /// The distance from `at` to the centre of `cell` (infinite if H3 gave no valid centre),
    /// the centre kept from the first search around it: H3 derives a centre through its
    /// face coordinates, more work than the rest of an assignable search's walk.
    pub(super) fn centre_km(&mut self, cell: CellIndex, at: &GeoPoint) -> f64 {
        if self.centres.len() >= MAX_RINGS_KEPT {
            self.centres.clear();
        }
        let centre = self.centres.entry(cell).or_insert_with(|| {
            let c = crate::disk::centre(cell);
            Location::new(c.lat(), c.lng()).ok().map(|l| l.point())
        });
        centre.map_or(f64::INFINITY, |c| at.distance_km(&c))
    }

    /// [`crate::disk::escape_km`] of the disk of rings `0..=k` around `origin`, measured on
    /// first use. (It enumerates ring `k + 1`, so ranges from [`Self::ring`] may move.)
    pub(super) fn escape_km(&mut self, origin: CellIndex, k: u32) -> f64 {
        match self.rings.get(&(origin, k)) {
            Some(known) if !known.escape_km.is_nan() => return known.escape_km,
            _ => {}
        }
        let outside = self.ring(origin, k + 1);
        let km = crate::disk::escape_km(origin, &self.ring_cells[outside]);
        // (Enumerating ring `k + 1` may have started afresh: ring `k` again if so.)
        self.ring(origin, k);
        if let Some(known) = self.rings.get_mut(&(origin, k)) {
            known.escape_km = km;
        }
        km
    }

    /// Adds a candidate waiting for evaluation.
    pub(super) fn push_pending(&mut self, p: Pending) {
        if p.distance < self.pending_nearest {
            self.pending_nearest = p.distance;
        }
        self.pending.push(p);
    }

    /// The range of `ring_slots` holding copies of the slots of `cells` (the cells of ring
    /// `k` around `origin`, as `ring_cells[cells]`) of an index of `realtors` whose cells are
    /// at `version`: copied on first use, and afresh once the index changed.
    pub(super) fn copied_ring(
        &mut self,
        (origin, k): (CellIndex, u32),
        cells: std::ops::Range<usize>,
        (index_cells, version, realtors): (&FxHashMap<CellIndex, Vec<Slot>>, u64, usize),
    ) -> std::ops::Range<usize> {
        let full = self.ring_slots.len() > SLOTS_COPIED_PER_REALTOR * realtors.max(256);
        if version != self.copies_version || full || self.copies_epoch == 0 {
            self.ring_slots.clear();
            self.copies_epoch += 1;
            self.copies_version = version;
        } else if let Some(known) = self.rings.get(&(origin, k)) {
            if known.copies_epoch == self.copies_epoch {
                return known.copies.0 as usize..known.copies.1 as usize;
            }
        }
        let from = self.ring_slots.len();
        for &cell in &self.ring_cells[cells] {
            if let Some(slots) = index_cells.get(&cell) {
                self.ring_slots.extend(slots.iter().map(CopiedSlot::new));
            }
        }
        let to = self.ring_slots.len();
        // Both fit: `ring_slots` is kept to a few dozen times the realtors indexed.
        if let Some(known) = self.rings.get_mut(&(origin, k)) {
            known.copies = (from as u32, to as u32);
            known.copies_epoch = self.copies_epoch;
        }
        from..to
    }

    /// Moves the pending candidates at most `limit` km away into `ready`, farthest first.
    pub(super) fn take_ready(&mut self, limit: f64) {
        if self.pending_nearest > limit {
            return;
        }
        let ready = &mut self.ready;
        let mut nearest = f64::INFINITY;
        self.pending.retain(|p| {
            let now = p.distance <= limit;
            if now {
                ready.push(*p);
            } else if p.distance < nearest {
                nearest = p.distance;
            }
            !now
        });
        self.pending_nearest = nearest;
        self.ready.sort_unstable_by(|a, b| b.cmp(a));
    }

    /// Puts back the ready candidates a round did not evaluate.
    pub(super) fn put_back_ready(&mut self) {
        while let Some(p) = self.ready.pop() {
            self.push_pending(p);
        }
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

    /// A scratch that keeps no covers of the places it searches from ([`super::cover`]): a
    /// tour nobody anywhere can take is walked, as any searcher walks the places it has no
    /// room to keep covers for. Same decisions; less memory, slower on such tours.
    #[must_use]
    pub fn without_covers() -> Self {
        let mut s = Self::default();
        s.covers.none = true;
        s
    }

    pub(super) fn begin(&mut self, entries: usize, hours: usize, coarse_ids: u32) {
        self.pending.clear();
        self.pending_nearest = f64::INFINITY;
        self.ready.clear();
        self.hours_pool.clear();
        self.reports.clear();
        self.bulk.clear();
        self.bulk_areas.clear();
        self.bulk_counts.clear();
        self.fine_reach_km = 0.0;
        self.index_fits = None;
        if self.seen.len() < entries {
            self.seen.resize(entries, 0);
        }
        if self.coarse_marks.len() < coarse_ids as usize {
            self.coarse_marks
                .resize(coarse_ids as usize, CoarseMark::default());
        }
        if self.hours_stamp.len() < hours {
            self.hours_stamp.resize(hours, 0);
            self.hours_span.resize(hours, (0, 0, false));
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.seen.fill(0);
            self.hours_stamp.fill(0);
            self.coarse_marks.fill(CoarseMark::default());
            self.generation = 1;
        }
    }
}
