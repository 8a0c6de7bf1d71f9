//! The realtor index: realtors by H3 cell with their calendars; the single writer's side.
//!
//! The exact ring search over it lives in [`super::search`].

use std::collections::hash_map::Entry as MapEntry;

use h3o::{CellIndex, Resolution};
use rustc_hash::FxHashMap;

use crate::calendar::{Booking, Calendar};
use crate::feasibility::{check_start, RejectReason, Scratch};
use crate::geo::{distance_km, GeoPoint, Location};
use crate::ids::{RealtorId, TourId};
use crate::matching::free_time::{next_version, Summaries};
use crate::realtor::{Realtor, RealtorStatus};
use crate::time::WorkingHours;
use crate::tour::TourPlan;

use super::coarse::cell_centre;
pub(super) use super::coarse::{CoarseCell, Reach};
pub use super::search::SearchScratch;

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
pub(super) struct Entry {
    pub(super) realtor: Realtor,
    pub(super) calendar: Calendar,
    pub(super) cell: CellIndex,
    /// The home's cell at [`RealtorIndex::coarse`]'s resolution, when there is one.
    pub(super) coarse_cell: Option<CellIndex>,
    /// The realtor's working hours in [`RealtorIndex::hours`]: a search converts each distinct
    /// set of hours to UTC once, however many realtors share it.
    pub(super) hours: u32,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub(super) entry: u32,
    pub(super) point: GeoPoint,
    /// Copies of what the first check of every candidate reads (status, radius), so that the
    /// thousands a far search rejects on them never touch their entries.
    pub(super) available: bool,
    pub(super) radius_km: f64,
    /// The realtor's working hours in [`RealtorIndex::hours`].
    pub(super) hours: u32,
    /// The realtor's coarse cell (the home's own cell at that resolution: not always the
    /// parent of the fine one, as H3 children do not tile their parent exactly).
    pub(super) coarse: Option<CellIndex>,
}

/// Realtors by H3 cell with their calendars; single writer, many searches.
#[derive(Debug, Clone)]
pub struct RealtorIndex {
    pub(super) resolution: Resolution,
    pub(super) entries: Vec<Entry>,
    by_id: FxHashMap<RealtorId, u32>,
    pub(super) cells: FxHashMap<CellIndex, Vec<Slot>>,
    /// Changes whenever any of `cells` does; never repeats, across indexes too (a clone
    /// shares it until either changes): what a searcher's copies of the slots of the rings
    /// around a place are checked against (see [`super::scratch::SearchScratch`]).
    pub(super) cells_version: u64,
    /// Changes whenever a realtor is added, moved, removed or given new hours (not with their
    /// status): what the whole index's free-time summaries are checked against.
    pub(super) realtors_version: u64,
    /// The same realtors by their home's cell two resolutions coarser (49 times the area),
    /// for searches that must reach far: a few large rings instead of thousands of small ones.
    /// Each cell's realtors are sorted by service radius.
    pub(super) coarse: Option<(Resolution, FxHashMap<CellIndex, CoarseCell>)>,
    /// Ids of coarse cells: how many were ever handed out, and those free again.
    pub(super) coarse_ids: u32,
    free_coarse_ids: Vec<u32>,
    /// Largest service radius ever indexed (a bound; it never shrinks).
    pub(super) max_radius_km: f64,
    /// Every distinct set of working hours ever indexed (a few per city; never shrinks).
    pub(super) hours: Vec<WorkingHours>,
    /// For each of `hours`, a number no other set of hours of any index was given (a clone
    /// shares its original's, with the hours themselves): what a searcher keeping converted
    /// hours across searches, and indexes, tells them apart by.
    pub(super) hours_keys: Vec<u64>,
    hours_by_fingerprint: FxHashMap<u64, Vec<u32>>,
    /// Booked first and last stops by [`GeoPoint::square`]: a tour starting or ending at one
    /// of them may need no travel from or to that booking, which the free-time summaries
    /// assume it does.
    booked_stops: FxHashMap<(i64, i64), u32>,
    /// Free-time summaries of the coarse cells, built by searches (see [`super::free_time`]).
    pub(super) summaries: Summaries,
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
            cells_version: next_version(),
            realtors_version: next_version(),
            coarse: resolution
                .pred()
                .and_then(Resolution::pred)
                .map(|r| (r, FxHashMap::default())),
            coarse_ids: 0,
            free_coarse_ids: Vec::new(),
            max_radius_km: 0.0,
            hours: Vec::new(),
            hours_keys: Vec::new(),
            hours_by_fingerprint: FxHashMap::default(),
            booked_stops: FxHashMap::default(),
            summaries: Summaries::default(),
        }
    }

    /// The id of `hours` in [`RealtorIndex::hours`], adding it when new.
    fn intern(&mut self, hours: &WorkingHours) -> u32 {
        let ids = self
            .hours_by_fingerprint
            .entry(hours.fingerprint())
            .or_default();
        if let Some(&id) = ids.iter().find(|&&id| self.hours[id as usize] == *hours) {
            return id;
        }
        let id = u32::try_from(self.hours.len()).unwrap_or(u32::MAX);
        self.hours.push(hours.clone());
        self.hours_keys.push(next_version());
        ids.push(id);
        id
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
        let coarse_cell = self.coarse.as_ref().map(|(r, _)| realtor.home.cell(*r));
        let point = realtor.home.point();
        let hours = self.intern(&realtor.hours);
        let idx = match self.by_id.entry(realtor.id) {
            MapEntry::Occupied(slot) => {
                let idx = *slot.get();
                let e = &mut self.entries[idx as usize];
                let (old_cell, old_coarse) = (e.cell, e.coarse_cell);
                e.calendar.set_home(realtor.home);
                e.realtor = realtor;
                e.cell = cell;
                e.coarse_cell = coarse_cell;
                e.hours = hours;
                self.unlink(old_cell, old_coarse, idx);
                idx
            }
            MapEntry::Vacant(slot) => {
                let idx = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
                slot.insert(idx);
                self.entries.push(Entry {
                    calendar: Calendar::new(realtor.home),
                    realtor,
                    cell,
                    coarse_cell,
                    hours,
                });
                idx
            }
        };
        let e = &self.entries[idx as usize];
        let slot = Slot {
            entry: idx,
            point,
            available: e.realtor.status == RealtorStatus::Available,
            radius_km: e.realtor.service_radius_km(),
            hours,
            coarse: coarse_cell,
        };
        self.cells.entry(cell).or_default().push(slot);
        self.cells_version = next_version();
        self.realtors_version = next_version();
        if let (Some((_, coarse)), Some(c)) = (self.coarse.as_mut(), coarse_cell) {
            let (free, handed_out) = (&mut self.free_coarse_ids, &mut self.coarse_ids);
            let cc = coarse.entry(c).or_insert_with(|| CoarseCell {
                id: free.pop().unwrap_or_else(|| {
                    *handed_out += 1;
                    *handed_out - 1
                }),
                // The cell's own centre: every home here lies within the cell's circumradius
                // of it, which keeps `reach_km` (and so what a search must read) small.
                centre: cell_centre(c).unwrap_or(point),
                reach_km: 0.0,
                stop_reach_km: 0.0,
                slots: Vec::new(),
                reach: Vec::new(),
                radii: Vec::new(),
                entries: Vec::new(),
                near: Vec::new(),
                unavailable_from: Vec::new(),
                one_hours: None,
                centre_unit: [0.0; 3],
                cos_nobody_reaches: -2.0,
                version: 0,
            });
            cc.version = next_version();
            cc.centre_unit = cc.centre.unit();
            cc.reach_km = cc.reach_km.max(cc.centre.distance_km(&point));
            cc.stop_reach_km = cc.stop_reach_km.max(e.calendar.reach_km());
            let at = cc.radii.partition_point(|&r| r < slot.radius_km);
            cc.slots.insert(at, slot);
            cc.reach.insert(at, Reach::new(&point, slot.radius_km));
            cc.recount();
        }
    }

    fn unlink(&mut self, cell: CellIndex, coarse_cell: Option<CellIndex>, idx: u32) {
        let unlink_from = |cells: &mut FxHashMap<CellIndex, Vec<Slot>>, cell: CellIndex| {
            if let Some(slots) = cells.get_mut(&cell) {
                slots.retain(|s| s.entry != idx);
                if slots.is_empty() {
                    cells.remove(&cell);
                }
            }
        };
        unlink_from(&mut self.cells, cell);
        self.cells_version = next_version();
        self.realtors_version = next_version();
        if let (Some((_, coarse)), Some(c)) = (self.coarse.as_mut(), coarse_cell) {
            if let Some(cc) = coarse.get_mut(&c) {
                cc.version = next_version();
                if let Some(at) = cc.slots.iter().position(|s| s.entry == idx) {
                    cc.slots.remove(at);
                    cc.reach.remove(at);
                    cc.recount();
                }
                if cc.slots.is_empty() {
                    self.free_coarse_ids.push(cc.id);
                    coarse.remove(&c);
                }
            }
        }
    }

    /// Removes a realtor, returning their profile and calendar.
    pub fn remove(&mut self, id: RealtorId) -> Option<(Realtor, Calendar)> {
        let idx = self.by_id.remove(&id)?;
        let (cell, coarse_cell) = {
            let e = &self.entries[idx as usize];
            (e.cell, e.coarse_cell)
        };
        self.unlink(cell, coarse_cell, idx);
        let last = u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX);
        let removed = self.entries.swap_remove(idx as usize);
        for b in removed.calendar.bookings() {
            self.unregister_stops(b);
        }
        if idx != last {
            // The last entry moved into `idx`: repoint its id and its cells' slots.
            let moved = &self.entries[idx as usize];
            self.by_id.insert(moved.realtor.id, idx);
            let repoint = |slots: Option<&mut Vec<Slot>>| {
                for s in slots.into_iter().flatten().filter(|s| s.entry == last) {
                    s.entry = idx;
                }
            };
            repoint(self.cells.get_mut(&moved.cell)); // (`unlink` changed the version)
            if let (Some((_, coarse)), Some(c)) = (self.coarse.as_mut(), moved.coarse_cell) {
                if let Some(cc) = coarse.get_mut(&c) {
                    repoint(Some(&mut cc.slots));
                    cc.recount();
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
        let e = &mut self.entries[idx as usize];
        e.realtor.status = status;
        let available = status == RealtorStatus::Available;
        let update = |slots: Option<&mut Vec<Slot>>| {
            for s in slots.into_iter().flatten().filter(|s| s.entry == idx) {
                s.available = available;
            }
        };
        update(self.cells.get_mut(&e.cell));
        self.cells_version = next_version();
        if let (Some((_, coarse)), Some(c)) = (self.coarse.as_mut(), e.coarse_cell) {
            if let Some(cc) = coarse.get_mut(&c) {
                update(Some(&mut cc.slots));
                cc.recount();
            }
        }
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
        let e = &self.entries[idx as usize];
        if let Some(existing) = e.calendar.get(plan.tour_id) {
            if existing.start == start && existing.end == start + plan.duration_seconds {
                return Ok(*existing);
            }
            self.release(realtor, plan.tour_id);
        }
        let e = &self.entries[idx as usize];
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
        self.book(idx, booking);
        Ok(booking)
    }

    /// Puts back a booking read from the store at start-up, without re-checking it.
    ///
    /// # Errors
    /// When the realtor is not in the index.
    pub fn restore(&mut self, realtor: RealtorId, booking: Booking) -> Result<(), UnknownRealtor> {
        let idx = *self.by_id.get(&realtor).ok_or(UnknownRealtor(realtor))?;
        if self.entries[idx as usize]
            .calendar
            .get(booking.tour_id)
            .is_none()
        {
            self.book(idx, booking);
        }
        Ok(())
    }

    /// Frees the time `tour` held on `realtor`'s calendar.
    pub fn release(&mut self, realtor: RealtorId, tour: TourId) -> Option<Booking> {
        let idx = *self.by_id.get(&realtor)?;
        let booking = self.entries[idx as usize].calendar.remove(tour)?;
        self.unregister_stops(&booking);
        self.summaries_released(idx, (booking.start, booking.end));
        Some(booking)
    }

    /// Puts `booking` on the calendar of entry `idx` (checked by the caller).
    fn book(&mut self, idx: u32, booking: Booking) {
        self.entries[idx as usize]
            .calendar
            .insert_unchecked(booking);
        for stop in [booking.first, booking.last] {
            *self.booked_stops.entry(stop.square_key()).or_insert(0) += 1;
        }
        self.stop_reach_grew(idx);
        self.summaries_booked(idx, (booking.start, booking.end));
    }

    fn unregister_stops(&mut self, booking: &Booking) {
        for stop in [booking.first, booking.last] {
            let square = stop.square_key();
            if let Some(n) = self.booked_stops.get_mut(&square) {
                *n -= 1;
                if *n == 0 {
                    self.booked_stops.remove(&square);
                }
            }
        }
    }

    /// Entry `idx` may have booked a stop farther from home than any before.
    fn stop_reach_grew(&mut self, idx: u32) {
        let e = &self.entries[idx as usize];
        if let (Some((_, coarse)), Some(c)) = (self.coarse.as_mut(), e.coarse_cell) {
            if let Some(cc) = coarse.get_mut(&c) {
                cc.stop_reach_km = cc.stop_reach_km.max(e.calendar.reach_km());
            }
        }
    }

    /// Whether some booking starts or ends at `location` (or within a few metres of it).
    pub(super) fn near_booked_stop(&self, location: &Location) -> bool {
        let ((lat, lat_edge), (lng, lng_edge)) = location.square();
        // Points at distance zero share a square unless one lies on its edge.
        let around =
            |key: i64, edge: i8| (key + i64::from(edge.min(0)))..=(key + i64::from(edge.max(0)));
        around(lat, lat_edge)
            .any(|a| around(lng, lng_edge).any(|b| self.booked_stops.contains_key(&(a, b))))
    }

    /// Distance from a realtor's home to a location, if the realtor is indexed.
    #[must_use]
    pub fn distance_to(&self, id: RealtorId, location: &Location) -> Option<f64> {
        self.get(id).map(|(r, _)| distance_km(&r.home, location))
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
