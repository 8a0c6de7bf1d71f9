//! Time: customer windows, realtors' working hours in their own time zone, and the 5-minute grid.
//!
//! Inside the engine instants are whole UTC seconds since the Unix epoch (`i64`), which keeps the
//! calendar arithmetic exact and cheap; the wire types carry `DateTime<Utc>`.

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

mod memo;
pub use memo::ZoneMemo;

/// Seconds between candidate starts: every multiple of 5 minutes UTC (CONTRACT 5.3).
pub const GRID_SECONDS: i64 = 300;
/// The longest customer window the engine accepts (CONTRACT 4, checkout).
pub const MAX_WINDOW_SECONDS: i64 = 14 * 24 * 3600;
const DAY_SECONDS: i64 = 24 * 3600;

/// Why a time value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// The window ends at or before it starts.
    #[error("window end must be after its start")]
    EmptyWindow,
    /// The window is longer than 14 days.
    #[error("window is longer than 14 days")]
    WindowTooLong,
    /// A weekday outside 1..=7.
    #[error("weekday {0} is outside 1..7 (Monday = 1)")]
    Weekday(u8),
    /// A time of day that is not `HH:MM` between 00:00 and 24:00.
    #[error("time of day {0:?} is not HH:MM between 00:00 and 24:00")]
    TimeOfDay(String),
    /// A working interval whose start is not before its end.
    #[error("working hours start {start} must be before end {end}")]
    StartNotBeforeEnd {
        /// The interval's start, `HH:MM`.
        start: String,
        /// The interval's end, `HH:MM`.
        end: String,
    },
    /// A time zone name the tz database does not know.
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
}

/// Whole UTC seconds, rounding up: the first whole second at or after `t`.
#[must_use]
pub fn seconds_ceil(t: &DateTime<Utc>) -> i64 {
    t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0)
}

/// The instant for whole UTC seconds (saturating at chrono's range, far beyond any booking).
#[must_use]
pub fn to_datetime(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A customer's time window `[start, end)`: non-empty and at most 14 days long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawWindow", into = "RawWindow")]
pub struct TimeWindow {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct RawWindow {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl TryFrom<RawWindow> for TimeWindow {
    type Error = TimeError;
    fn try_from(raw: RawWindow) -> Result<Self, TimeError> {
        TimeWindow::new(raw.start, raw.end)
    }
}

impl From<TimeWindow> for RawWindow {
    fn from(w: TimeWindow) -> Self {
        RawWindow {
            start: w.start,
            end: w.end,
        }
    }
}

impl TimeWindow {
    /// A window from its bounds.
    ///
    /// # Errors
    /// When `end <= start` or the window is longer than 14 days.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, TimeError> {
        if end <= start {
            return Err(TimeError::EmptyWindow);
        }
        if (end - start).num_seconds() > MAX_WINDOW_SECONDS {
            return Err(TimeError::WindowTooLong);
        }
        Ok(Self { start, end })
    }

    /// Start of the window.
    #[must_use]
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// End of the window (exclusive).
    #[must_use]
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// The window in whole seconds, shrunk inwards to whole seconds.
    #[must_use]
    pub fn seconds(&self) -> (i64, i64) {
        (seconds_ceil(&self.start), self.end.timestamp())
    }
}

/// The first candidate start at or after `t` for a window starting at `window_start`: the window
/// start itself, or a later multiple of 5 minutes UTC (CONTRACT 5.3).
#[must_use]
pub fn snap_to_grid(t: i64, window_start: i64) -> i64 {
    if t <= window_start {
        return window_start;
    }
    let rem = t.rem_euclid(GRID_SECONDS);
    if rem == 0 {
        t
    } else {
        t + (GRID_SECONDS - rem)
    }
}

/// Whether `t` is a candidate start of a window starting at `window_start`.
#[must_use]
pub fn on_grid(t: i64, window_start: i64) -> bool {
    t == window_start || (t > window_start && t.rem_euclid(GRID_SECONDS) == 0)
}

/// A realtor's time zone (IANA name, e.g. `Europe/Lisbon`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZone(Tz);

impl TimeZone {
    /// Parses an IANA time zone name.
    ///
    /// # Errors
    /// When the name is not in the tz database.
    pub fn parse(name: &str) -> Result<Self, TimeError> {
        name.parse::<Tz>()
            .map(Self)
            .map_err(|_| TimeError::UnknownTimeZone(name.to_owned()))
    }

    /// UTC.
    #[must_use]
    pub fn utc() -> Self {
        Self(Tz::UTC)
    }

    /// The IANA name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The local calendar date at instant `t` (UTC seconds).
    #[must_use]
    pub fn local_date(&self, t: i64) -> NaiveDate {
        to_datetime(t).with_timezone(&self.0).date_naive()
    }

    /// The UTC instant of a local wall-clock time, `minute` minutes after local midnight of `date`
    /// (1440 = the next midnight).
    ///
    /// Wall-clock times that happen twice (clocks going back) take the earlier instant; times that
    /// do not exist (clocks going forward) are moved forward by the length of the gap, like
    /// RFC 9557 / Temporal's "compatible" disambiguation. A working day 09:00-17:00 therefore
    /// stays 09:00-17:00 local on DST days.
    #[must_use]
    pub fn local_to_utc(&self, date: NaiveDate, minute: u16) -> i64 {
        let (date, minute) = if minute >= 1440 {
            (date.succ_opt().unwrap_or(date), minute - 1440)
        } else {
            (date, minute)
        };
        let time = NaiveTime::from_num_seconds_from_midnight_opt(u32::from(minute) * 60, 0)
            .unwrap_or(NaiveTime::MIN);
        let naive = date.and_time(time);
        match self.0.from_local_datetime(&naive) {
            LocalResult::Single(t) => t.timestamp(),
            LocalResult::Ambiguous(earliest, _) => earliest.timestamp(),
            LocalResult::None => {
                // In a gap: read the wall time with the offset in force before the gap, which
                // lands the same distance past the transition.
                let before = naive - chrono::Duration::hours(24);
                let offset = match self.0.from_local_datetime(&before) {
                    LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                        t.offset().fix().local_minus_utc()
                    }
                    LocalResult::None => 0,
                };
                naive.and_utc().timestamp() - i64::from(offset)
            }
        }
    }

    /// The offset (local minus UTC, seconds) in force all through local `date`, or `None` when
    /// the clocks change that day. Zones change at most once a day, so equal offsets at the
    /// day's two midnights mean no change in between.
    fn constant_offset(&self, date: NaiveDate) -> Option<i64> {
        let midnight = date.and_time(NaiveTime::MIN).and_utc().timestamp();
        let start = midnight - self.local_to_utc(date, 0);
        let end = midnight + DAY_SECONDS - self.local_to_utc(date, 1440);
        (start == end).then_some(start)
    }
}

impl TryFrom<String> for TimeZone {
    type Error = TimeError;
    fn try_from(name: String) -> Result<Self, TimeError> {
        TimeZone::parse(&name)
    }
}

impl From<TimeZone> for String {
    fn from(tz: TimeZone) -> Self {
        tz.name().to_owned()
    }
}

use chrono::Offset as _;

/// One weekly working interval in local time: weekday 1..=7 (Monday = 1), `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawInterval", into = "RawInterval")]
pub struct WorkingInterval {
    weekday: u8,
    start_minute: u16,
    end_minute: u16,
}

#[derive(Serialize, Deserialize)]
struct RawInterval {
    weekday: u8,
    start: String,
    end: String,
}

impl TryFrom<RawInterval> for WorkingInterval {
    type Error = TimeError;
    fn try_from(raw: RawInterval) -> Result<Self, TimeError> {
        WorkingInterval::parse(raw.weekday, &raw.start, &raw.end)
    }
}

impl From<WorkingInterval> for RawInterval {
    fn from(w: WorkingInterval) -> Self {
        RawInterval {
            weekday: w.weekday,
            start: format_hhmm(w.start_minute),
            end: format_hhmm(w.end_minute),
        }
    }
}

fn parse_hhmm(s: &str) -> Result<u16, TimeError> {
    let bad = || TimeError::TimeOfDay(s.to_owned());
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn format_hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

impl WorkingInterval {
    /// An interval from minutes after local midnight.
    ///
    /// # Errors
    /// When the weekday is outside 1..=7 or not `start < end <= 1440`.
    pub fn new(weekday: u8, start_minute: u16, end_minute: u16) -> Result<Self, TimeError> {
        if !(1..=7).contains(&weekday) {
            return Err(TimeError::Weekday(weekday));
        }
        if end_minute > 1440 {
            return Err(TimeError::TimeOfDay(format_hhmm(end_minute)));
        }
        if start_minute >= end_minute {
            return Err(TimeError::StartNotBeforeEnd {
                start: format_hhmm(start_minute),
                end: format_hhmm(end_minute),
            });
        }
        Ok(Self {
            weekday,
            start_minute,
            end_minute,
        })
    }

    /// An interval from `HH:MM` strings (`24:00` allowed as an end).
    ///
    /// # Errors
    /// As [`WorkingInterval::new`], and for malformed times.
    pub fn parse(weekday: u8, start: &str, end: &str) -> Result<Self, TimeError> {
        Self::new(weekday, parse_hhmm(start)?, parse_hhmm(end)?)
    }

    /// Weekday, Monday = 1.
    #[must_use]
    pub fn weekday(&self) -> u8 {
        self.weekday
    }

    /// Start, minutes after local midnight.
    #[must_use]
    pub fn start_minute(&self) -> u16 {
        self.start_minute
    }

    /// End (exclusive), minutes after local midnight.
    #[must_use]
    pub fn end_minute(&self) -> u16 {
        self.end_minute
    }
}

/// A realtor's weekly working hours in their time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingHours {
    zone: TimeZone,
    intervals: Vec<WorkingInterval>,
    /// Intervals by weekday index 0..7 (Monday = 0), sorted by start.
    by_weekday: [Vec<(u16, u16)>; 7],
    /// Equal for equal zone and weekly intervals: lets a search decide "does the window fit
    /// these hours at all" once for all realtors sharing them.
    fingerprint: u64,
}

impl WorkingHours {
    /// Working hours from intervals (overlapping intervals are allowed; each is used on its own).
    #[must_use]
    pub fn new(zone: TimeZone, intervals: Vec<WorkingInterval>) -> Self {
        let mut by_weekday: [Vec<(u16, u16)>; 7] = Default::default();
        for i in &intervals {
            by_weekday[usize::from(i.weekday - 1)].push((i.start_minute, i.end_minute));
        }
        for day in &mut by_weekday {
            day.sort_unstable();
        }
        let fingerprint = {
            use std::hash::{Hash, Hasher};
            let mut h = rustc_hash::FxHasher::default();
            zone.hash(&mut h);
            by_weekday.hash(&mut h);
            h.finish()
        };
        Self {
            zone,
            intervals,
            by_weekday,
            fingerprint,
        }
    }

    /// Equal for working hours with the same zone and weekly intervals (rarely also for others:
    /// a hash, to be confirmed with `==`).
    #[must_use]
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The time zone.
    #[must_use]
    pub fn zone(&self) -> TimeZone {
        self.zone
    }

    /// The intervals as given.
    #[must_use]
    pub fn intervals(&self) -> &[WorkingInterval] {
        &self.intervals
    }

    /// The working intervals, in UTC seconds, of every local day that can intersect `[from, to)`,
    /// sorted by start. Each is one interval of one local day.
    pub fn utc_intervals(
        &self,
        from: i64,
        to: i64,
        out: &mut Vec<(i64, i64)>,
        memo: &mut ZoneMemo,
    ) {
        out.clear();
        // A local day's intervals lie within [midnight - 14h, midnight + 24h + 12h] of UTC
        // (offsets span -12h..+14h); one day of margin each side covers every zone.
        let first = memo.local_date(self.zone, from - DAY_SECONDS);
        let last = memo.local_date(self.zone, to + DAY_SECONDS);
        let mut date = first;
        while date <= last {
            let weekday = date.weekday().number_from_monday() as usize - 1;
            for &(start, end) in &self.by_weekday[weekday] {
                let a = memo.local_to_utc(self.zone, date, start);
                let b = memo.local_to_utc(self.zone, date, end);
                if a < to && b > from && a < b {
                    out.push((a, b));
                }
            }
            date = match date.checked_add_days(Days::new(1)) {
                Some(next) => next,
                None => break,
            };
        }
        out.sort_unstable();
    }

    /// UTC bounds `[start, end)` of the local day holding instant `t`.
    #[must_use]
    pub fn local_day_bounds(&self, t: i64, memo: &mut ZoneMemo) -> (i64, i64) {
        memo.local_day_bounds(self.zone, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .timestamp()
    }

    #[test]
    fn window_rules() {
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        assert_eq!(TimeWindow::new(t, t), Err(TimeError::EmptyWindow));
        assert!(TimeWindow::new(t, t - chrono::Duration::minutes(1)).is_err());
        assert!(TimeWindow::new(t, t + chrono::Duration::days(14)).is_ok());
        assert_eq!(
            TimeWindow::new(
                t,
                t + chrono::Duration::days(14) + chrono::Duration::seconds(1)
            ),
            Err(TimeError::WindowTooLong)
        );
        let w: TimeWindow = serde_json::from_str(
            r#"{"start":"2026-12-01T09:00:00Z","end":"2026-12-01T18:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(w.seconds().1 - w.seconds().0, 9 * 3600);
        assert!(serde_json::from_str::<TimeWindow>(
            r#"{"start":"2026-12-01T09:00:00Z","end":"2026-12-01T08:00:00Z"}"#
        )
        .is_err());
    }

    #[test]
    fn grid_snapping() {
        let ws = 1000; // not on the grid
        assert_eq!(snap_to_grid(0, ws), ws);
        assert_eq!(snap_to_grid(ws, ws), ws);
        assert_eq!(snap_to_grid(ws + 1, ws), 1200);
        assert_eq!(snap_to_grid(1200, ws), 1200);
        assert!(on_grid(ws, ws) && on_grid(1200, ws) && !on_grid(1100, ws) && !on_grid(900, ws));
    }

    #[test]
    fn parses_hours() {
        assert!(WorkingInterval::parse(1, "09:00", "17:00").is_ok());
        assert!(WorkingInterval::parse(7, "00:00", "24:00").is_ok());
        assert!(WorkingInterval::parse(0, "09:00", "17:00").is_err());
        assert!(WorkingInterval::parse(8, "09:00", "17:00").is_err());
        assert!(WorkingInterval::parse(1, "17:00", "09:00").is_err());
        assert!(WorkingInterval::parse(1, "09:00", "09:00").is_err());
        assert!(WorkingInterval::parse(1, "9:00", "17:00").is_err());
        assert!(WorkingInterval::parse(1, "09:60", "17:00").is_err());
        assert!(WorkingInterval::parse(1, "24:01", "24:30").is_err());
        assert!(TimeZone::parse("Mars/Olympus").is_err());
        assert_eq!(
            TimeZone::parse("Europe/Lisbon").unwrap().name(),
            "Europe/Lisbon"
        );
    }

    #[test]
    fn working_hours_follow_dst() {
        // Lisbon: UTC+0 in winter, UTC+1 in summer; clocks go forward 2026-03-29 01:00 UTC.
        let tz = TimeZone::parse("Europe/Lisbon").unwrap();
        let all_week: Vec<_> = (1..=7)
            .map(|d| WorkingInterval::parse(d, "09:00", "17:00").unwrap())
            .collect();
        let hours = WorkingHours::new(tz, all_week);
        let mut out = Vec::new();
        let from = utc(2026, 3, 28, 0, 0);
        hours.utc_intervals(
            from,
            from + 2 * DAY_SECONDS,
            &mut out,
            &mut ZoneMemo::default(),
        );
        assert_eq!(
            out,
            vec![
                (utc(2026, 3, 28, 9, 0), utc(2026, 3, 28, 17, 0)),
                (utc(2026, 3, 29, 8, 0), utc(2026, 3, 29, 16, 0)),
            ]
        );
    }

    #[test]
    fn remembered_local_dates_match_the_tz_database() {
        let mut memo = ZoneMemo::default();
        for zone in [
            "Europe/Lisbon",
            "America/New_York",
            "Pacific/Kiritimati",
            "Asia/Kolkata",
        ] {
            let zone = TimeZone::parse(zone).unwrap();
            // Across both 2026 DST changes, every 20 minutes, twice (cold then remembered).
            for from in [utc(2026, 3, 7, 0, 0), utc(2026, 10, 24, 0, 0)] {
                for _ in 0..2 {
                    for t in (from..from + 30 * DAY_SECONDS).step_by(1200) {
                        assert_eq!(memo.local_date(zone, t), zone.local_date(t), "{t}");
                    }
                }
            }
        }
    }

    /// Remembered local-day bounds equal the tz database's, every 10 minutes through four
    /// days around each change of 2026: the United States' (8 March, 1 November), Europe's
    /// (29 March, 25 October) and Lord Howe's (5 April, 4 October: half an hour).
    #[test]
    fn remembered_local_day_bounds_match_the_tz_database() {
        let mut memo = ZoneMemo::default();
        for zone in [
            "Europe/Lisbon",
            "America/New_York",
            "Australia/Lord_Howe",
            "UTC",
        ] {
            let zone = TimeZone::parse(zone).unwrap();
            for from in [
                utc(2026, 3, 6, 0, 0),
                utc(2026, 10, 30, 0, 0),
                utc(2026, 3, 27, 0, 0),
                utc(2026, 10, 24, 0, 0),
                utc(2026, 4, 2, 0, 0),
                utc(2026, 10, 2, 0, 0),
            ] {
                for t in (from..from + 4 * DAY_SECONDS).step_by(600) {
                    let date = zone.local_date(t);
                    let direct = (zone.local_to_utc(date, 0), zone.local_to_utc(date, 1440));
                    assert_eq!(memo.local_day_bounds(zone, t), direct, "{t}");
                }
            }
        }
    }

    #[test]
    fn gap_and_fold_disambiguation() {
        let tz = TimeZone::parse("America/New_York").unwrap();
        // 2026-03-08 02:30 does not exist in New York; it becomes 03:30 EDT = 07:30 UTC.
        let d = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap();
        assert_eq!(tz.local_to_utc(d, 150), utc(2026, 3, 8, 7, 30));
        // 2026-11-01 01:30 happens twice; the earlier is 01:30 EDT = 05:30 UTC.
        let d = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        assert_eq!(tz.local_to_utc(d, 90), utc(2026, 11, 1, 5, 30));
        // 24:00 is the next midnight.
        assert_eq!(tz.local_to_utc(d, 1440), utc(2026, 11, 2, 5, 0));
    }

    #[test]
    fn far_east_and_west_zones_get_their_days() {
        // Kiritimati is UTC+14: Monday 09:00 local is Sunday 19:00 UTC.
        let tz = TimeZone::parse("Pacific/Kiritimati").unwrap();
        let hours = WorkingHours::new(
            tz,
            vec![WorkingInterval::parse(1, "09:00", "10:00").unwrap()],
        );
        let mut out = Vec::new();
        let sunday = utc(2026, 11, 29, 0, 0);
        hours.utc_intervals(
            sunday,
            sunday + DAY_SECONDS,
            &mut out,
            &mut ZoneMemo::default(),
        );
        assert_eq!(
            out,
            vec![(utc(2026, 11, 29, 19, 0), utc(2026, 11, 29, 20, 0))]
        );
    }
}
