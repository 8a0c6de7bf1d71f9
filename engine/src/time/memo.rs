//! Time-zone conversions remembered across the realtors of one search (and across searches).

use chrono::{NaiveDate, NaiveTime, Offset as _};

use super::{to_datetime, TimeZone, DAY_SECONDS};

/// Remembers each (zone, local day)'s offset, so converting working hours to UTC costs a hash
/// lookup instead of a tz database search. Bounded: it forgets everything past 8192 days.
#[derive(Debug, Default)]
pub struct ZoneMemo {
    days: rustc_hash::FxHashMap<(TimeZone, NaiveDate), Option<i64>>,
    /// The offset in force all through each UTC day (by days since the epoch), or `None`.
    utc_days: rustc_hash::FxHashMap<(TimeZone, i64), Option<i64>>,
    /// The UTC bounds of each local day (by days since the epoch, local), found through
    /// `utc_days`: a search asks them of every realtor it finds able.
    local_days: rustc_hash::FxHashMap<(TimeZone, i64), (i64, i64)>,
}

impl ZoneMemo {
    /// [`TimeZone::local_date`], remembered by UTC day (a tz database search costs as much as
    /// the rest of converting a realtor's working hours).
    pub fn local_date(&mut self, zone: TimeZone, t: i64) -> NaiveDate {
        match self.utc_day_offset(zone, t.div_euclid(DAY_SECONDS)) {
            Some(offset) => to_datetime(t + offset).date_naive(),
            None => zone.local_date(t),
        }
    }

    /// UTC bounds `[start, end)` of the local day holding instant `t`, remembered by local
    /// day wherever one offset holds all through `t`'s UTC day (nearly always).
    pub fn local_day_bounds(&mut self, zone: TimeZone, t: i64) -> (i64, i64) {
        let bounds = |memo: &mut Self, date: NaiveDate| {
            (
                memo.local_to_utc(zone, date, 0),
                memo.local_to_utc(zone, date, 1440),
            )
        };
        let Some(offset) = self.utc_day_offset(zone, t.div_euclid(DAY_SECONDS)) else {
            let date = zone.local_date(t);
            return bounds(self, date);
        };
        let local_day = (t + offset).div_euclid(DAY_SECONDS);
        if let Some(&known) = self.local_days.get(&(zone, local_day)) {
            return known;
        }
        if self.local_days.len() > 8192 {
            self.local_days.clear();
        }
        let known = bounds(self, to_datetime(t + offset).date_naive());
        self.local_days.insert((zone, local_day), known);
        known
    }

    /// The offset in force all through UTC day `day` (days since the epoch), if one is.
    fn utc_day_offset(&mut self, zone: TimeZone, day: i64) -> Option<i64> {
        if self.utc_days.len() > 8192 {
            self.utc_days.clear();
        }
        *self.utc_days.entry((zone, day)).or_insert_with(|| {
            let at = |s: i64| {
                i64::from(
                    to_datetime(s)
                        .with_timezone(&zone.0)
                        .offset()
                        .fix()
                        .local_minus_utc(),
                )
            };
            // Zones change at most once a day: equal offsets at both ends mean no change.
            let (a, b) = (
                at(day * DAY_SECONDS),
                at(day * DAY_SECONDS + DAY_SECONDS - 1),
            );
            (a == b).then_some(a)
        })
    }

    /// [`TimeZone::local_to_utc`], remembered.
    pub fn local_to_utc(&mut self, zone: TimeZone, date: NaiveDate, minute: u16) -> i64 {
        if self.days.len() > 8192 {
            self.days.clear();
        }
        let offset = *self
            .days
            .entry((zone, date))
            .or_insert_with(|| zone.constant_offset(date));
        match offset {
            Some(offset) => {
                date.and_time(NaiveTime::MIN).and_utc().timestamp() + i64::from(minute) * 60
                    - offset
            }
            None => zone.local_to_utc(date, minute),
        }
    }
}
