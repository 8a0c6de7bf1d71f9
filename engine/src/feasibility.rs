//! Can realtor R take tour T, and from when? CONTRACT 5.3, in one place.

use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, Footprint};
use crate::geo::distance_km;
use crate::realtor::{Realtor, RealtorStatus};
use crate::time::{on_grid, snap_to_grid, WorkingHours, ZoneMemo};
use crate::tour::TourPlan;

/// Why a realtor cannot take a tour (the `explain` vocabulary of CONTRACT 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The first listing is farther from home than the service radius.
    OutOfRadius,
    /// No working interval holds the tour inside the window.
    OutsideWorkingHours,
    /// Working hours would fit, but booked tours (with travel) leave no start free.
    Overlap,
    /// Status is not `available`.
    Unavailable,
    /// The realtor declined this tour.
    Declined,
}

impl RejectReason {
    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::OutOfRadius => "out_of_radius",
            RejectReason::OutsideWorkingHours => "outside_working_hours",
            RejectReason::Overlap => "overlap",
            RejectReason::Unavailable => "unavailable",
            RejectReason::Declined => "declined",
        }
    }
}

/// Reusable buffers, so that evaluating a candidate allocates nothing.
#[derive(Debug, Default)]
pub struct Scratch {
    intervals: Vec<(i64, i64)>,
    forbidden: Vec<(i64, i64)>,
    /// Time zone conversions already made.
    pub zones: ZoneMemo,
    /// Working hours (by fingerprint) known to leave no room for a given window and duration.
    no_room: rustc_hash::FxHashMap<(u64, i64, i64, i64), WorkingHours>,
}

/// The checks that need no calendar: status, declines, radius. `distance` is home to first stop.
///
/// # Errors
/// The first rule the realtor breaks.
pub fn check_profile(
    realtor: &Realtor,
    plan: &TourPlan,
    distance: f64,
) -> Result<(), RejectReason> {
    if realtor.status != RealtorStatus::Available {
        return Err(RejectReason::Unavailable);
    }
    if plan.is_declined_by(realtor.id) {
        return Err(RejectReason::Declined);
    }
    if distance > realtor.service_radius_km() {
        return Err(RejectReason::OutOfRadius);
    }
    Ok(())
}

/// The earliest feasible start (UTC seconds) of `plan` for `realtor`, or why there is none.
///
/// Sweeps each working interval once against the merged forbidden intervals of the bookings
/// that matter, jumping to the next grid point after each obstacle.
///
/// # Errors
/// The reason the realtor cannot take the tour at any start.
pub fn earliest_start(
    realtor: &Realtor,
    calendar: &Calendar,
    plan: &TourPlan,
    distance: f64,
    scratch: &mut Scratch,
) -> Result<i64, RejectReason> {
    check_profile(realtor, plan, distance)?;
    let (ws, we) = plan.window.seconds();
    let d = plan.duration_seconds;
    let fp = Footprint {
        first: plan.first(),
        last: plan.last(),
        duration: d,
    };
    // Realtors often share working hours; when these hours leave no room for the window, say so
    // without converting them again. Entries are compared in full, never by fingerprint alone,
    // so the memo can never change an answer.
    let key = (realtor.hours.fingerprint(), ws, we, d);
    if scratch.no_room.get(&key) == Some(&realtor.hours) {
        return Err(RejectReason::OutsideWorkingHours);
    }
    realtor
        .hours
        .utc_intervals(ws, we, &mut scratch.intervals, &mut scratch.zones);
    if !hours_fit(&scratch.intervals, ws, we, d) {
        if scratch.no_room.len() > 4096 {
            scratch.no_room.clear();
        }
        scratch.no_room.insert(key, realtor.hours.clone());
        return Err(RejectReason::OutsideWorkingHours);
    }
    calendar.forbidden_starts(&fp, ws, we - d, &mut scratch.forbidden);
    first_free(&scratch.intervals, ws, we, d, &scratch.forbidden).ok_or(RejectReason::Overlap)
}

/// Whether some working interval (UTC, from [`WorkingHours::utc_intervals`]) holds a start of a
/// tour of `d` seconds inside the window `[ws, we)`, bookings aside: when not, the reason is
/// `outside_working_hours`, whatever the calendar.
#[must_use]
pub fn hours_fit(intervals: &[(i64, i64)], ws: i64, we: i64, d: i64) -> bool {
    intervals
        .iter()
        .any(|&(a, b)| snap_to_grid(a.max(ws), ws) <= b.min(we) - d)
}

/// The earliest grid start of the window `[ws, we)` whose `d` seconds lie inside one working
/// interval (sorted by start) and outside every open interval of `forbidden` (sorted, merged).
#[must_use]
pub fn first_free(
    intervals: &[(i64, i64)],
    ws: i64,
    we: i64,
    d: i64,
    forbidden: &[(i64, i64)],
) -> Option<i64> {
    let mut best: Option<i64> = None;
    for &(a, b) in intervals {
        if best.is_some_and(|s| s <= a) {
            break; // intervals are sorted by start: none can beat what we have
        }
        let first = snap_to_grid(a.max(ws), ws);
        let last = b.min(we) - d;
        if first > last {
            continue;
        }
        if let Some(s) = sweep(first, last, ws, forbidden) {
            best = Some(best.map_or(s, |b| b.min(s)));
        }
    }
    best
}

/// The first grid start in `[from, last]` outside every open interval of `forbidden`
/// (sorted by start, strictly-overlapping ones merged).
fn sweep(from: i64, last: i64, ws: i64, forbidden: &[(i64, i64)]) -> Option<i64> {
    let mut cur = from;
    let skip = forbidden.partition_point(|&(_, hi)| hi <= cur);
    for &(lo, hi) in &forbidden[skip..] {
        if cur <= lo {
            break;
        }
        if cur < hi {
            cur = snap_to_grid(hi, ws);
            if cur > last {
                return None;
            }
        }
    }
    (cur <= last).then_some(cur)
}

/// Checks that `realtor` can take `plan` starting exactly at `start` (a reservation's re-check).
///
/// # Errors
/// The first rule of CONTRACT 5.3 the start breaks.
pub fn check_start(
    realtor: &Realtor,
    calendar: &Calendar,
    plan: &TourPlan,
    start: i64,
    scratch: &mut Scratch,
) -> Result<(), RejectReason> {
    let distance = distance_km(&realtor.home, plan.first());
    check_profile(realtor, plan, distance)?;
    let (ws, we) = plan.window.seconds();
    let end = start + plan.duration_seconds;
    if !on_grid(start, ws) || end > we {
        return Err(RejectReason::OutsideWorkingHours);
    }
    realtor
        .hours
        .utc_intervals(start, end, &mut scratch.intervals, &mut scratch.zones);
    if !scratch
        .intervals
        .iter()
        .any(|&(a, b)| a <= start && end <= b)
    {
        return Err(RejectReason::OutsideWorkingHours);
    }
    let fp = Footprint {
        first: plan.first(),
        last: plan.last(),
        duration: plan.duration_seconds,
    };
    if calendar.conflicts(&fp, start) {
        return Err(RejectReason::Overlap);
    }
    Ok(())
}
