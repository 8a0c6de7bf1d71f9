//! Free-time summaries: proving that nobody in a whole area can take a tour, without reading
//! each realtor's calendar.
//!
//! A tour nobody can take costs a search its whole reach: every realtor within every service
//! radius must be shown unable (CONTRACT 5.3), thousands in a metro. A summary answers for all
//! realtors of one coarse cell of the index at once.
//!
//! For one coarse cell and one UTC day it holds, for each grid point `g` of the day (every
//! 5 minutes), how long a stretch from `g` some realtor of the cell has free: inside one of
//! their working intervals and at least one minute away from each of their bookings. A minute
//! is the least travel there is between two different places (travel rounds up to the whole
//! minute), so, unless the tour starts or ends exactly where some booking does (the search
//! checks that first and then does without summaries), a realtor can start the tour at `g` only
//! if their stretch from `g` is at least the tour's duration. When no candidate start of the
//! window has such a stretch, nobody in the cell can take the tour, whatever their distance:
//! the search rejects them all together, each for the reason CONTRACT 5.3 gives them.
//!
//! The same summary over the whole index, at a minute's travel, is asked first (once per
//! search, when a cell's would be): where nobody anywhere has a long enough stretch, as in a
//! slot the whole city is booked in, no cell needs asking at all.
//!
//! The index owns its summaries. A search builds one on first use (a few hundred realtors, one
//! pass over a day of each calendar) under a mutex held for that one question, so the index
//! stays shareable. The index keeps them true as calendars change, cheaply:
//! - a booking only takes free time away, so every summary stays a valid over-estimate; it is
//!   only counted, and a summary that has missed many bookings is rebuilt on its next use
//!   (to prove as much as it can again);
//! - a released booking gives its realtor free time back: their new stretches are merged into
//!   the summaries of the days around it (a maximum, so merging one realtor is exact);
//! - a realtor added, moved or given new hours changes the cell's version, and its summaries
//!   are rebuilt on next use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use h3o::CellIndex;
use rustc_hash::FxHashMap;

use crate::matching::index::{CoarseCell, RealtorIndex};
use crate::time::{ZoneMemo, GRID_SECONDS};

const DAY: i64 = 24 * 3600;
/// Grid points in a UTC day.
const POINTS: usize = (DAY / GRID_SECONDS) as usize;
/// Grid points in an hour: the blocks a query skips at once.
const HOUR: usize = (3600 / GRID_SECONDS) as usize;
/// The least travel, seconds, each kind of summary assumes between the tour and any booking.
/// A minute always holds (the least travel between two different places); more holds for a
/// cell whose booked stops all lie far from the tour, and proves more there: the search picks
/// the largest that holds ([`travel_level`]).
const LEVELS: [i64; 3] = [60, 600, 1800];

/// The largest of [`LEVELS`] no travel of at least `least_seconds` can undercut.
pub(super) fn travel_level(least_seconds: i64) -> u8 {
    LEVELS
        .iter()
        .rposition(|&l| l <= least_seconds)
        .map_or(0, |i| i as u8)
}
/// Summaries an index keeps before starting afresh (about 1.2 KB each).
const MAX_KEPT: usize = 1 << 15;

static NEXT_VERSION: AtomicU64 = AtomicU64::new(1);

/// A version no cell of any index has had yet.
pub(crate) fn next_version() -> u64 {
    NEXT_VERSION.fetch_add(1, Ordering::Relaxed)
}

/// Days whose summaries a change to a calendar in `[from, to)` can touch: a free stretch
/// lies within one working interval (at most a day and an hour) and keeps at most the
/// largest buffer from a booking.
fn days_around(from: i64, to: i64) -> std::ops::RangeInclusive<i64> {
    let margin = DAY + 3600 + LEVELS[LEVELS.len() - 1];
    (from - margin).div_euclid(DAY)..=(to + margin).div_euclid(DAY)
}

/// One coarse cell's free time on one UTC day.
#[derive(Debug)]
struct DaySummary {
    version: u64,
    /// Bookings made in the cell around this day since it was built: each one may have taken
    /// free time this summary still counts.
    missed_bookings: u32,
    /// Minutes (rounded up) from grid point `i` to the end of the longest free stretch
    /// holding it; 0 when nobody is free there.
    at: [u16; POINTS],
    /// Minutes (rounded up) from grid point `i` to the end of the longest free stretch that
    /// meets `[i, i + 5 min)`: what a window starting between two grid points can use.
    within: [u16; POINTS],
    /// The largest `at` of each hour.
    hour: [u16; POINTS / HOUR],
}

/// Whole minutes, rounded up, that `seconds` take (saturating).
fn minutes_up(seconds: i64) -> u16 {
    u16::try_from((seconds + 59).div_euclid(60)).unwrap_or(u16::MAX)
}

impl DaySummary {
    fn empty(version: u64) -> Self {
        Self {
            version,
            missed_bookings: 0,
            at: [0; POINTS],
            within: [0; POINTS],
            hour: [0; POINTS / HOUR],
        }
    }

    /// Records a free stretch `[from, to)` of some realtor (clipped to the day at `day`).
    fn add(&mut self, day: i64, (from, to): (i64, i64)) {
        let lo = from.max(day);
        let hi = to.min(day + DAY);
        if lo >= hi {
            return;
        }
        // Grid points inside the stretch, then the grid slots it meets. From one point to the
        // next the stretch left is 5 minutes shorter.
        let first = (lo - day + GRID_SECONDS - 1) / GRID_SECONDS;
        let last = (hi - day - 1) / GRID_SECONDS;
        let step = (GRID_SECONDS / 60) as u16;
        let mut m = minutes_up(to - (day + first * GRID_SECONDS));
        for i in first as usize..=last as usize {
            self.at[i] = self.at[i].max(m);
            self.hour[i / HOUR] = self.hour[i / HOUR].max(m);
            m = m.saturating_sub(step);
        }
        let first = (lo - day) / GRID_SECONDS;
        let mut m = minutes_up(to - (day + first * GRID_SECONDS));
        for i in first as usize..=last as usize {
            self.within[i] = self.within[i].max(m);
            m = m.saturating_sub(step);
        }
    }

    /// Whether a tour of `d` seconds might start on this day at a candidate start of a window
    /// opening at `ws` whose last possible start is `last_start`. `false` proves it cannot.
    fn may_fit(&self, day: i64, ws: i64, last_start: i64, d: i64) -> bool {
        let fits = |minutes: u16, from: i64| i64::from(minutes) * 60 >= d + from;
        // The window's own start, when it lies between two grid points.
        if ws.rem_euclid(GRID_SECONDS) != 0 && (day..day + DAY).contains(&ws) {
            let i = (ws - day) / GRID_SECONDS;
            if fits(self.within[i as usize], ws - (day + i * GRID_SECONDS)) {
                return true;
            }
        }
        // The grid points after it (or at it) up to the last start.
        let first_grid = ws + (GRID_SECONDS - ws.rem_euclid(GRID_SECONDS)) % GRID_SECONDS;
        let lo = first_grid.max(day);
        let hi = last_start.min(day + DAY - 1);
        if lo > hi {
            return false;
        }
        let (mut i, last) = (
            ((lo - day) / GRID_SECONDS) as usize,
            ((hi - day) / GRID_SECONDS) as usize,
        );
        while i <= last {
            if i % HOUR == 0 && i + HOUR - 1 <= last && !fits(self.hour[i / HOUR], 0) {
                i += HOUR;
                continue;
            }
            if fits(self.at[i], 0) {
                return true;
            }
            i += 1;
        }
        false
    }
}

/// An index's summaries, behind a mutex: searches (`&self`) build them, the index's writers
/// (`&mut self`) reach them without locking.
#[derive(Debug, Default)]
pub(crate) struct Summaries(Mutex<FreeTimeCache>);

impl Clone for Summaries {
    /// A copy of an index starts without summaries: they are rebuilt on use.
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl Summaries {
    fn lock(&self) -> MutexGuard<'_, FreeTimeCache> {
        // A panic while building leaves at worst a summary being replaced: still usable.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get_mut(&mut self) -> &mut FreeTimeCache {
        self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A summary's area (a coarse cell, or `None` for the whole index), UTC day and level.
type SummaryKey = (Option<CellIndex>, i64, u8);

/// The summaries and the buffers that build them.
#[derive(Debug, Default)]
pub(crate) struct FreeTimeCache {
    /// By area (a coarse cell, or `None` for the whole index, kept at `LEVELS[0]` only), UTC
    /// day and level.
    days: FxHashMap<SummaryKey, Box<DaySummary>>,
    /// Working intervals of each set of hours on the day being built: `(hours id, range)`.
    hours: Vec<(u32, usize, usize)>,
    intervals: Vec<(i64, i64)>,
    pool: Vec<(i64, i64)>,
    stretches: Vec<(i64, i64)>,
    /// Time zone conversions for merging released time (searches bring their own).
    zones: ZoneMemo,
}

impl RealtorIndex {
    /// Whether some realtor of coarse cell `cell` might take a tour of `d` seconds starting
    /// inside the window `[ws, we)`, when no travel between the tour and any booking is shorter
    /// than `LEVELS[level]`. `false` proves that nobody there can.
    pub(super) fn area_may_fit(
        &self,
        (cell, cc): (CellIndex, &CoarseCell),
        window: (i64, i64, i64),
        level: u8,
        zones: &mut ZoneMemo,
    ) -> bool {
        self.may_fit_in(Some((cell, cc)), window, level, zones)
    }

    /// Whether anyone in the whole index might take a tour of `d` seconds starting inside the
    /// window `[ws, we)`, when no travel between the tour and any booking is shorter than
    /// `LEVELS[0]`, the least there is. `false` proves that nobody can: every cell's summary
    /// would say so.
    pub(super) fn index_may_fit(&self, window: (i64, i64, i64), zones: &mut ZoneMemo) -> bool {
        self.may_fit_in(None, window, 0, zones)
    }

    /// [`Self::area_may_fit`] for one cell, or [`Self::index_may_fit`] for `None`.
    fn may_fit_in(
        &self,
        area: Option<(CellIndex, &CoarseCell)>,
        (ws, we, d): (i64, i64, i64),
        level: u8,
        zones: &mut ZoneMemo,
    ) -> bool {
        let last_start = we - d;
        if last_start < ws {
            return false;
        }
        let (version, realtors) = match area {
            Some((_, cc)) => (cc.version, cc.slots.len()),
            None => (self.realtors_version, self.entries.len()),
        };
        let mut cache = self.summaries.lock();
        let cache = &mut *cache;
        // Enough missed bookings to make a summary worth building again: as many as the area
        // has realtors (a busy city books all the time; a rebuild reads them all).
        let worth_rebuilding = u32::try_from(realtors).unwrap_or(u32::MAX).max(8);
        for day in ws.div_euclid(DAY)..=last_start.div_euclid(DAY) {
            let day = day * DAY;
            let key = (area.map(|(cell, _)| cell), day, level);
            let fits = match cache.days.get(&key) {
                Some(s) if s.version == version && s.missed_bookings < worth_rebuilding => {
                    s.may_fit(day, ws, last_start, d)
                }
                _ => {
                    let buffer = LEVELS[usize::from(level)];
                    let built = match area {
                        Some((_, cc)) => {
                            let entries = cc.slots.iter().map(|s| s.entry);
                            self.summarise(entries, version, day, buffer, cache, zones)
                        }
                        None => {
                            let everyone = 0..u32::try_from(realtors).unwrap_or(u32::MAX);
                            self.summarise(everyone, version, day, buffer, cache, zones)
                        }
                    };
                    let fits = built.may_fit(day, ws, last_start, d);
                    if cache.days.len() >= MAX_KEPT {
                        cache.days.clear();
                    }
                    cache.days.insert(key, built);
                    fits
                }
            };
            if fits {
                return true;
            }
        }
        false
    }

    /// Builds the summary of the realtors at `entries` for the UTC day starting at `day`,
    /// with `buffer` seconds kept free around each booking.
    fn summarise(
        &self,
        entries: impl Iterator<Item = u32>,
        version: u64,
        day: i64,
        buffer: i64,
        cache: &mut FreeTimeCache,
        zones: &mut ZoneMemo,
    ) -> Box<DaySummary> {
        let mut summary = Box::new(DaySummary::empty(version));
        cache.hours.clear();
        cache.pool.clear();
        for entry in entries {
            let e = &self.entries[entry as usize];
            let (from, to) = match cache.hours.iter().find(|h| h.0 == e.hours) {
                Some(&(_, from, to)) => (from, to),
                None => {
                    self.hours[e.hours as usize].utc_intervals(
                        day,
                        day + DAY,
                        &mut cache.intervals,
                        zones,
                    );
                    let from = cache.pool.len();
                    cache.pool.extend_from_slice(&cache.intervals);
                    cache.hours.push((e.hours, from, cache.pool.len()));
                    (from, cache.pool.len())
                }
            };
            for &interval in &cache.pool[from..to] {
                cache.stretches.clear();
                e.calendar
                    .free_stretches(interval, buffer, &mut cache.stretches);
                for &stretch in &cache.stretches {
                    summary.add(day, stretch);
                }
            }
        }
        summary
    }

    /// The keys of the summaries a change to entry `idx`'s calendar on `day` can touch: the
    /// whole index's and those of the entry's cell.
    fn summaries_of(&self, idx: u32, day: i64) -> [Option<SummaryKey>; 1 + LEVELS.len()] {
        let mut keys = [None; 1 + LEVELS.len()];
        keys[0] = Some((None, day, 0));
        if let Some(cell) = self.entries[idx as usize].coarse_cell {
            for (level, key) in keys[1..].iter_mut().enumerate() {
                *key = Some((Some(cell), day, level as u8));
            }
        }
        keys
    }

    /// A booking was made on entry `idx`'s calendar: the summaries around it now count free
    /// time that is gone (still valid over-estimates); note it.
    pub(super) fn summaries_booked(&mut self, idx: u32, (from, to): (i64, i64)) {
        // Only the days it lies on: elsewhere it takes little, if anything.
        for day in from.div_euclid(DAY)..=(to - 1).div_euclid(DAY) {
            let keys = self.summaries_of(idx, day * DAY);
            let cache = self.summaries.get_mut();
            for key in keys.into_iter().flatten() {
                if let Some(s) = cache.days.get_mut(&key) {
                    s.missed_bookings = s.missed_bookings.saturating_add(1);
                }
            }
        }
    }

    /// A booking on entry `idx`'s calendar was released: merges the realtor's free stretches
    /// of the days around it into the summaries there, the whole index's and their cell's
    /// (the rest of each summary is unchanged).
    pub(super) fn summaries_released(&mut self, idx: u32, (from, to): (i64, i64)) {
        for day in days_around(from, to) {
            let day = day * DAY;
            let keys = self.summaries_of(idx, day);
            let e = &self.entries[idx as usize];
            let hours = &self.hours[e.hours as usize];
            let cache = self.summaries.get_mut();
            let mut converted = false;
            for key in keys.into_iter().flatten() {
                let Some(summary) = cache.days.get_mut(&key) else {
                    continue;
                };
                if !converted {
                    hours.utc_intervals(day, day + DAY, &mut cache.intervals, &mut cache.zones);
                    converted = true;
                }
                for &interval in &cache.intervals {
                    cache.stretches.clear();
                    e.calendar.free_stretches(
                        interval,
                        LEVELS[usize::from(key.2)],
                        &mut cache.stretches,
                    );
                    for &stretch in &cache.stretches {
                        summary.add(day, stretch);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stretch_counts_at_the_grid_points_inside_it() {
        let mut s = DaySummary::empty(1);
        s.add(0, (3_660, 7_200)); // 01:01-02:00
        assert_eq!(s.at[12], 0); // 01:00 is before it
        assert_eq!(s.at[13], 55); // 01:05: 55 minutes to go
        assert_eq!(s.within[12], 60); // from the slot 01:00-01:05
        assert_eq!(s.hour[1], 55);
        // A 55-minute tour fits from 01:05, a 56-minute one from no grid point...
        assert!(s.may_fit(0, 3_600, 3_900, 55 * 60));
        assert!(!s.may_fit(0, 3_600, 7_200, 56 * 60));
        // ...but from a window opening at 01:01, it might (58 minutes 59 seconds are left).
        assert!(s.may_fit(0, 3_661, 7_200, 58 * 60));
        assert!(!s.may_fit(0, 3_661, 7_200, 59 * 60 + 1));
    }
}
