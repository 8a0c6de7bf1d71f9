//! A realtor's calendar: booked tours, and which starts they leave free (CONTRACT 5.3).
//!
//! Bookings are kept sorted by start. A query only looks at the bookings that can matter to its
//! range: every travel buffer is bounded by the distance from the realtor's home to the farthest
//! stop ever booked plus the new tour's distance from home (triangle inequality), so a binary
//! search finds the first relevant booking and the scan stops at the last one:
//! O(log n + answer), never a scan of all bookings.

use crate::geo::{distance_km, travel_minutes_for_km, travel_seconds, Location};
use crate::ids::TourId;
use crate::time::snap_to_grid;

/// One active tour on a realtor's calendar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Booking {
    /// The tour.
    pub tour_id: TourId,
    /// Start, UTC seconds.
    pub start: i64,
    /// End (exclusive), UTC seconds.
    pub end: i64,
    /// The tour's first stop.
    pub first: Location,
    /// The tour's last stop.
    pub last: Location,
}

/// What a new tour needs of the calendar: its stops and duration.
#[derive(Debug, Clone, Copy)]
pub struct Footprint<'a> {
    /// First stop of the new tour.
    pub first: &'a Location,
    /// Last stop of the new tour.
    pub last: &'a Location,
    /// Duration in seconds.
    pub duration: i64,
}

/// Forbidden intervals [`Calendar::earliest_free_known`] searches unsorted: each jump scans them
/// all, so many would cost more than sorting them once.
const FEW_FORBIDDEN: usize = 8;

/// Span starts a calendar keeps inside itself (see `Calendar::marks`): eight fill a cache line.
const MARKS: usize = 8;

/// A realtor's booked tours, sorted by start.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    home: Location,
    bookings: Vec<Booking>,
    /// `(start, end)` of each booking, in the same order: what binary searches and the relaxed
    /// check read, 16 bytes a booking instead of 144, so a search over thousands of calendars
    /// touches a few cache lines of each rather than dozens.
    spans: Vec<(i64, i64)>,
    /// The starts of `spans[0]`, `spans[step]`, `spans[2 * step]`, ... (`step` spreading eight
    /// of them over all the spans; `i64::MAX` past the end): a search for where a time falls
    /// among the spans looks here first, inside the calendar itself, then in one block of
    /// `step` spans, instead of probing lines all over them (a search screens several
    /// calendars per decision, most of them not in any cache).
    marks: [i64; MARKS],
    /// Farthest distance from home of any booked first or last stop (never shrinks; a bound).
    reach_km: f64,
    /// Longest booking, seconds (never shrinks; a bound).
    longest: i64,
}

impl Calendar {
    /// An empty calendar for a realtor living at `home`.
    #[must_use]
    pub fn new(home: Location) -> Self {
        Self {
            home,
            bookings: Vec::new(),
            spans: Vec::new(),
            marks: [i64::MAX; MARKS],
            reach_km: 0.0,
            longest: 0,
        }
    }

    /// The realtor moved: the buffer bound is measured from the new home.
    pub fn set_home(&mut self, home: Location) {
        self.home = home;
        self.reach_km = 0.0;
        for b in &self.bookings {
            self.reach_km = self
                .reach_km
                .max(distance_km(&home, &b.first))
                .max(distance_km(&home, &b.last));
        }
    }

    /// The bookings, sorted by start.
    #[must_use]
    pub fn bookings(&self) -> &[Booking] {
        &self.bookings
    }

    /// Adds a booking without checking it against the others (the caller checked, or is
    /// restoring a calendar that was checked when it was written).
    pub fn insert_unchecked(&mut self, booking: Booking) {
        self.reach_km = self
            .reach_km
            .max(distance_km(&self.home, &booking.first))
            .max(distance_km(&self.home, &booking.last));
        self.longest = self.longest.max(booking.end - booking.start);
        let at = self
            .bookings
            .partition_point(|b| (b.start, b.tour_id) < (booking.start, booking.tour_id));
        self.bookings.insert(at, booking);
        self.spans.insert(at, (booking.start, booking.end));
        self.mark();
    }

    /// Removes the booking of `tour_id`, if any.
    pub fn remove(&mut self, tour_id: TourId) -> Option<Booking> {
        let at = self.bookings.iter().position(|b| b.tour_id == tour_id)?;
        self.spans.remove(at);
        self.mark();
        Some(self.bookings.remove(at))
    }

    /// The booking of `tour_id`, if any.
    #[must_use]
    pub fn get(&self, tour_id: TourId) -> Option<&Booking> {
        self.bookings.iter().find(|b| b.tour_id == tour_id)
    }

    /// Number of bookings starting in `[from, to)`.
    #[must_use]
    pub fn count_starting_in(&self, from: i64, to: i64) -> usize {
        let a = self.starting_before(from);
        let b = self.starting_before(to);
        b.saturating_sub(a)
    }

    /// How many spans start before `t`.
    fn starting_before(&self, t: i64) -> usize {
        // Marks before `t` (branch-free over one cache line), then the block after the last.
        let marked = self
            .marks
            .iter()
            .map(|&m| usize::from(m < t))
            .sum::<usize>();
        if marked == 0 {
            return 0;
        }
        let step = self.mark_step();
        let from = (marked - 1) * step + 1;
        let to = (marked * step).min(self.spans.len());
        from + self.spans[from..to].partition_point(|s| s.0 < t)
    }

    /// How many spans start at or before `t`.
    fn starting_at_or_before(&self, t: i64) -> usize {
        if t == i64::MAX {
            self.spans.len()
        } else {
            self.starting_before(t + 1)
        }
    }

    /// Spans between two marks.
    fn mark_step(&self) -> usize {
        self.spans.len().div_ceil(MARKS).max(1)
    }

    /// Brings `marks` up to date with `spans`.
    fn mark(&mut self) {
        let step = self.mark_step();
        for (k, m) in self.marks.iter_mut().enumerate() {
            *m = self.spans.get(k * step).map_or(i64::MAX, |s| s.0);
        }
    }

    /// Farthest distance from home of any booked stop, km (a bound: it never shrinks).
    #[must_use]
    pub fn reach_km(&self) -> f64 {
        self.reach_km
    }

    /// An upper bound, in seconds, on every travel buffer between this calendar's bookings and
    /// a tour whose stops lie at most `own_km` from home (plus a minute against float rounding).
    fn buffer_bound(&self, own_km: f64) -> i64 {
        (travel_minutes_for_km(self.reach_km + own_km) + 1) * 60
    }

    /// The positions of the bookings whose forbidden starts (with buffers of at most `bound`
    /// seconds on either side) can meet `[from, to]`.
    fn within(&self, duration: i64, from: i64, to: i64, bound: i64) -> std::ops::Range<usize> {
        // The first span with `start + longest + bound > from`, and the first with
        // `start >= to + duration + bound`.
        let lo =
            self.starting_at_or_before(from.saturating_sub(self.longest.saturating_add(bound)));
        let hi = self.starting_before(to.saturating_add(duration).saturating_add(bound));
        lo..hi.max(lo)
    }

    /// The bookings that can conflict with a tour starting anywhere in `[from, to]`.
    fn relevant(&self, fp: &Footprint<'_>, from: i64, to: i64) -> &[Booking] {
        let own = distance_km(&self.home, fp.first).max(distance_km(&self.home, fp.last));
        &self.bookings[self.within(fp.duration, from, to, self.buffer_bound(own))]
    }

    /// The starts `s` that booking `b` forbids: the open interval `(lo, hi)` where neither
    /// `b.end + travel(b.last, first) <= s` nor `s + duration + travel(last, b.first) <= b.start`.
    fn forbidden(b: &Booking, fp: &Footprint<'_>) -> (i64, i64) {
        (
            b.start - travel_seconds(fp.last, &b.first) - fp.duration,
            b.end + travel_seconds(&b.last, fp.first),
        )
    }

    /// Whether a tour at `[start, start + duration)` conflicts with any booking (CONTRACT 5.3).
    #[must_use]
    pub fn conflicts(&self, fp: &Footprint<'_>, start: i64) -> bool {
        self.relevant(fp, start, start).iter().any(|b| {
            let (lo, hi) = Self::forbidden(b, fp);
            lo < start && start < hi
        })
    }

    /// The forbidden start intervals (open) for starts in `[from, to]`, sorted and with strictly
    /// overlapping ones merged (touching ones stay apart: their shared end point is allowed).
    pub fn forbidden_starts(
        &self,
        fp: &Footprint<'_>,
        from: i64,
        to: i64,
        out: &mut Vec<(i64, i64)>,
    ) {
        let own = distance_km(&self.home, fp.first).max(distance_km(&self.home, fp.last));
        self.forbidden_starts_known(fp, own, from, to, out);
    }

    /// [`Calendar::forbidden_starts`] when the caller already knows `own_km`, the larger of the
    /// distances from home to the tour's first and last stops (a search computed it anyway).
    pub fn forbidden_starts_known(
        &self,
        fp: &Footprint<'_>,
        own_km: f64,
        from: i64,
        to: i64,
        out: &mut Vec<(i64, i64)>,
    ) {
        self.forbidden_unmerged(fp, own_km, from, to, out);
        merge_sorted(out);
    }

    /// The forbidden start intervals of [`Calendar::forbidden_starts_known`] in booking order,
    /// neither sorted nor merged: the bookings of `within`, found with one binary search (the
    /// few relevant ones are walked until the first that starts too late).
    fn forbidden_unmerged(
        &self,
        fp: &Footprint<'_>,
        own_km: f64,
        from: i64,
        to: i64,
        out: &mut Vec<(i64, i64)>,
    ) {
        out.clear();
        let bound = self.buffer_bound(own_km);
        let first =
            self.starting_at_or_before(from.saturating_sub(self.longest.saturating_add(bound)));
        let too_late = to.saturating_add(fp.duration).saturating_add(bound);
        for b in &self.bookings[first..] {
            if b.start >= too_late {
                break;
            }
            let (lo, hi) = Self::forbidden(b, fp);
            if lo < hi {
                out.push((lo, hi));
            }
        }
    }

    /// The earliest grid start of the window `[ws, we)` inside one of the working `intervals`
    /// (UTC, sorted by start) that no booking forbids (CONTRACT 5.3), when the caller knows
    /// `own_km` as for [`Calendar::forbidden_starts_known`]: the answer of
    /// [`crate::feasibility::first_free`] over those forbidden starts. The few intervals a
    /// window meets (nearly always) are neither sorted nor merged: a candidate start inside
    /// one jumps to its end until none holds it; more than [`FEW_FORBIDDEN`] go the sorted way.
    pub fn earliest_free_known(
        &self,
        fp: &Footprint<'_>,
        own_km: f64,
        (ws, we): (i64, i64),
        intervals: &[(i64, i64)],
        out: &mut Vec<(i64, i64)>,
    ) -> Option<i64> {
        let d = fp.duration;
        self.forbidden_unmerged(fp, own_km, ws, we - d, out);
        if out.len() > FEW_FORBIDDEN {
            merge_sorted(out);
            return crate::feasibility::first_free(intervals, ws, we, d, out);
        }
        let mut best: Option<i64> = None;
        for &(a, b) in intervals {
            if best.is_some_and(|s| s <= a) {
                break; // intervals are sorted by start: none can beat what we have
            }
            let last = b.min(we) - d;
            let mut cur = snap_to_grid(a.max(ws), ws);
            // Every grid start from `cur` up to the end of an interval holding it is forbidden
            // too, so jumping there skips no free one; `cur` only grows, so this ends.
            while cur <= last {
                match out.iter().find(|&&(lo, hi)| lo < cur && cur < hi) {
                    Some(&(_, hi)) => cur = snap_to_grid(hi, ws),
                    None => {
                        best = Some(best.map_or(cur, |s| s.min(cur)));
                        break;
                    }
                }
            }
        }
        best
    }

    /// A relaxation of [`Calendar::forbidden_starts`]: every travel buffer is replaced by a lower
    /// bound (`before`: from a booking to the tour; `after`: from the tour to a booking), so each
    /// interval here lies inside the exact one. No free start here proves there is none at all,
    /// without a single distance computation: a search tries this first.
    pub fn forbidden_starts_at_least(
        &self,
        duration: i64,
        before: i64,
        after: i64,
        from: i64,
        to: i64,
        out: &mut Vec<(i64, i64)>,
    ) {
        out.clear();
        out.extend(
            self.spans[self.within(duration, from, to, before.max(after))]
                .iter()
                .map(|&(start, end)| (start - after - duration, end + before))
                .filter(|&(lo, hi)| lo < hi),
        );
        merge_sorted(out);
    }
}

impl Calendar {
    /// The earliest grid start of the window `[ws, we)` that [`Calendar::forbidden_starts_at_least`]
    /// leaves free inside one of the working `intervals` (UTC, sorted by start): the same
    /// answer as [`crate::feasibility::first_free`] over those forbidden starts, in one pass over
    /// the spans without building, sorting or merging them (with equal buffers, the forbidden
    /// intervals come sorted by their lower ends already, and the sweep needs no more).
    #[must_use]
    pub fn free_start_at_least(
        &self,
        duration: i64,
        before: i64,
        after: i64,
        (ws, we): (i64, i64),
        intervals: &[(i64, i64)],
    ) -> Option<i64> {
        let slack = self.longest + before.max(after);
        for &(a, b) in intervals {
            let first = snap_to_grid(a.max(ws), ws);
            let last = b.min(we) - duration;
            if first > last {
                continue;
            }
            let skip = self.starting_at_or_before(first.saturating_sub(slack));
            let mut cur = first;
            for &(start, end) in &self.spans[skip..] {
                if cur <= start - after - duration {
                    break; // this one and every later one start after `cur`
                }
                if cur < end + before {
                    cur = snap_to_grid(end + before, ws);
                    if cur > last {
                        break;
                    }
                }
            }
            if cur <= last {
                // Intervals are sorted by start, so the first free start found is the earliest.
                return Some(cur);
            }
        }
        None
    }
}

impl Calendar {
    /// The stretches of `[from, to)` (one working interval) at least `buffer` seconds away from
    /// every booking: where a tour could lie if no travel between it and a booking were shorter
    /// than `buffer`. Appended to `out` in order. What the free-time summaries are built from.
    pub(crate) fn free_stretches(
        &self,
        (from, to): (i64, i64),
        buffer: i64,
        out: &mut Vec<(i64, i64)>,
    ) {
        let skip =
            self.starting_at_or_before(from.saturating_sub(self.longest.saturating_add(buffer)));
        let mut cur = from;
        for &(start, end) in &self.spans[skip..] {
            if start - buffer >= to {
                break;
            }
            if start - buffer > cur {
                out.push((cur, start - buffer));
            }
            cur = cur.max(end + buffer);
            if cur >= to {
                return;
            }
        }
        out.push((cur, to));
    }
}

/// Sorts open intervals and merges the strictly overlapping ones (touching ones stay apart:
/// their shared end point is allowed).
fn merge_sorted(out: &mut Vec<(i64, i64)>) {
    out.sort_unstable();
    let mut merged = 0;
    for i in 0..out.len() {
        if merged > 0 && out[i].0 < out[merged - 1].1 {
            out[merged - 1].1 = out[merged - 1].1.max(out[i].1);
        } else {
            out[merged] = out[i];
            merged += 1;
        }
    }
    out.truncate(merged);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(lat: f64, lng: f64) -> Location {
        Location::new(lat, lng).unwrap()
    }

    fn booking(start: i64, end: i64, at: Location) -> Booking {
        Booking {
            tour_id: TourId::new_random(),
            start,
            end,
            first: at,
            last: at,
        }
    }

    #[test]
    fn same_place_bookings_only_block_their_own_time() {
        let home = loc(38.7, -9.1);
        let mut cal = Calendar::new(home);
        cal.insert_unchecked(booking(10_000, 12_000, home));
        let fp = Footprint {
            first: &home,
            last: &home,
            duration: 1_000,
        };
        assert!(!cal.conflicts(&fp, 9_000)); // ends exactly when the booking starts
        assert!(cal.conflicts(&fp, 9_001));
        assert!(cal.conflicts(&fp, 11_999));
        assert!(!cal.conflicts(&fp, 12_000)); // starts exactly when it ends
        let mut out = Vec::new();
        cal.forbidden_starts(&fp, 0, 100_000, &mut out);
        assert_eq!(out, vec![(9_000, 12_000)]);
    }

    #[test]
    fn travel_buffers_apply_on_both_sides() {
        let home = loc(38.7, -9.1);
        let far = loc(38.7, -9.0); // ~8.7 km: 18 minutes
        let mut cal = Calendar::new(home);
        cal.insert_unchecked(booking(10_000, 12_000, far));
        let fp = Footprint {
            first: &home,
            last: &home,
            duration: 1_000,
        };
        let mut out = Vec::new();
        cal.forbidden_starts(&fp, 0, 100_000, &mut out);
        assert_eq!(out, vec![(10_000 - 1_080 - 1_000, 12_000 + 1_080)]);
    }

    #[test]
    fn remove_and_count() {
        let home = loc(38.7, -9.1);
        let mut cal = Calendar::new(home);
        let a = booking(100, 200, home);
        let b = booking(300, 400, home);
        cal.insert_unchecked(b);
        cal.insert_unchecked(a);
        assert_eq!(cal.bookings()[0].start, 100);
        assert_eq!(cal.count_starting_in(0, 301), 2);
        assert_eq!(cal.count_starting_in(101, 301), 1);
        assert_eq!(cal.remove(a.tour_id), Some(a));
        assert_eq!(cal.remove(a.tour_id), None);
        assert_eq!(cal.bookings(), &[b]);
    }

    /// A tour may touch a booking at the same place on both sides: squeezed exactly between
    /// two, it starts when the first ends and ends when the second starts.
    #[test]
    fn earliest_free_start_may_touch_bookings_on_both_sides() {
        let home = loc(38.7, -9.1);
        let mut cal = Calendar::new(home);
        cal.insert_unchecked(booking(0, 3_000, home));
        cal.insert_unchecked(booking(4_200, 6_000, home));
        let intervals = [(0, 10_000)];
        let mut out = Vec::new();
        for (duration, earliest) in [(1_200, 3_000), (1_260, 6_000)] {
            let fp = Footprint {
                first: &home,
                last: &home,
                duration,
            };
            let free = cal.earliest_free_known(&fp, 0.0, (0, 10_000), &intervals, &mut out);
            assert_eq!(free, Some(earliest), "{duration}");
        }
    }

    proptest::proptest! {
        /// The unsorted search for the earliest free start answers what the sorted one
        /// (forbidden starts merged, then [`crate::feasibility::first_free`]) answers: with
        /// few and many bookings (both ways), travel buffers of different lengths (so the
        /// forbidden intervals come unsorted), interval ends on and off the grid, several
        /// working intervals, off-grid windows.
        #[test]
        fn earliest_free_known_matches_the_sorted_search(
            bookings in proptest::collection::vec(
                (0i64..200, 1i64..30, 0usize..4, 0usize..4, proptest::bool::ANY), 0..24),
            work in proptest::collection::vec((0i64..200, 1i64..80), 1..4),
            (ws, len, minutes) in (0i64..40_000, 0i64..60_000, 1i64..120),
            (first, last) in (0usize..4, 0usize..4),
        ) {
            let places = [loc(38.7, -9.1), loc(38.72, -9.14), loc(38.8, -9.3), loc(38.6, -9.0)];
            let home = places[0];
            let mut cal = Calendar::new(home);
            for &(at, long, a, b, off_grid) in &bookings {
                // On the grid, an interval's ends meet candidate starts exactly (allowed).
                let start = at * 300 + if off_grid { 7 } else { 0 };
                cal.insert_unchecked(Booking {
                    tour_id: TourId::new_random(),
                    start,
                    end: start + long * 300,
                    first: places[a],
                    last: places[b],
                });
            }
            let mut intervals: Vec<(i64, i64)> =
                work.iter().map(|&(a, long)| (a * 300 + 13, (a + long) * 300)).collect();
            intervals.sort_unstable();
            let duration = minutes * 60;
            let fp = Footprint { first: &places[first], last: &places[last], duration };
            let own = distance_km(&home, fp.first).max(distance_km(&home, fp.last));
            let we = ws + len;
            let mut forbidden = Vec::new();
            cal.forbidden_starts_known(&fp, own, ws, we - duration, &mut forbidden);
            let sorted = crate::feasibility::first_free(&intervals, ws, we, duration, &forbidden);
            let fused = cal.earliest_free_known(&fp, own, (ws, we), &intervals, &mut forbidden);
            proptest::prop_assert_eq!(fused, sorted);
        }
    }

    /// Where a time falls among the spans, found through the marks, is where a count of
    /// every span puts it: for calendars of 0 to 120 bookings (ties included), as they grow
    /// and shrink, at every time around each start.
    #[test]
    fn marks_find_what_counting_finds() {
        let home = loc(38.7, -9.1);
        let mut cal = Calendar::new(home);
        let mut seed = 7u64;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % n
        };
        let check = |cal: &Calendar| {
            let starts: Vec<i64> = cal.bookings().iter().map(|b| b.start).collect();
            let probes = starts.iter().flat_map(|&s| [s - 1, s, s + 1]);
            for t in probes.chain([i64::MIN, 0, i64::MAX]) {
                let before = starts.iter().filter(|&&s| s < t).count();
                let at_or_before = starts.iter().filter(|&&s| s <= t).count();
                assert_eq!(cal.starting_before(t), before, "{t} in {starts:?}");
                assert_eq!(cal.starting_at_or_before(t), at_or_before, "{t}");
            }
        };
        let mut ids = Vec::new();
        for _ in 0..120 {
            // Few distinct starts, so that many bookings share one.
            let start = 1_000 * next(60) as i64;
            let b = booking(start, start + 500, home);
            ids.push(b.tour_id);
            cal.insert_unchecked(b);
            check(&cal);
        }
        while !ids.is_empty() {
            let id = ids.swap_remove(next(ids.len() as u64) as usize);
            cal.remove(id);
            check(&cal);
        }
    }
}
