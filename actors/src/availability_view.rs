//! The availability view in Redis (DESIGN: "the published per-cell realtor status that other
//! services and the `/availability` endpoint read").
//!
//! Layout, under a key prefix (`tourwise` by default, so several deployments or test runs can
//! share one Redis):
//! - `{prefix}:availability:{cell}`: a hash per shard cell, realtor id -> [`ViewEntry`] JSON;
//! - `{prefix}:availability:cells`: the set of cells that have such a hash;
//! - `{prefix}:availability:built`: present once a full snapshot is written. Its absence
//!   (a flush, or a Redis restart without persistence) makes the publisher write every shard
//!   again (`runtime::view_publisher`).
//!
//! Each entry is a realtor's whole published state (profile, status, active bookings and the
//! next free start), so a write is idempotent and the latest one wins; any instance can answer
//! `/availability` from it with the engine's own search ([`RedisView::available`]), exactly as
//! the shard actors would.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use engine::geo::ring_bound_km;
use engine::{
    Booking, Calendar, Location, RealtorId, RealtorIndex, RealtorStatus, TimeWindow, TimeZone,
    TourId, TourPlan, WorkingHours, WorkingInterval,
};
use h3o::{CellIndex, Resolution};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

/// How far ahead `next_free_at` looks.
const NEXT_FREE_HORIZON_DAYS: i64 = 7;

/// One realtor as published: enough to decide availability exactly without the actors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewEntry {
    /// Who.
    pub realtor_id: RealtorId,
    /// `available` or `unavailable`.
    pub status: RealtorStatus,
    /// Where they start from.
    pub home: Location,
    /// How far from home they take tours, km.
    pub service_radius_km: f64,
    /// Their time zone.
    pub time_zone: TimeZone,
    /// Weekly hours in that zone.
    pub working_hours: Vec<WorkingInterval>,
    /// Earliest start of a one-listing visit at their home within the next 7 days (null when
    /// unavailable or fully booked).
    pub next_free_at: Option<DateTime<Utc>>,
    /// Active bookings that have not ended.
    pub bookings: Vec<ViewBooking>,
    /// When the entry was computed.
    pub updated_at: DateTime<Utc>,
}

/// One booked tour of a [`ViewEntry`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ViewBooking {
    /// The tour.
    pub tour_id: TourId,
    /// Start.
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
    /// First stop.
    pub first: Location,
    /// Last stop.
    pub last: Location,
}

impl ViewEntry {
    /// The entry of `realtor` with `calendar` at `now`.
    #[must_use]
    pub fn of(
        realtor: &engine::Realtor,
        calendar: &Calendar,
        now: DateTime<Utc>,
        visit_minutes: i64,
    ) -> Self {
        let now_s = now.timestamp();
        let bookings = calendar
            .bookings()
            .iter()
            .filter(|b| b.end > now_s)
            .map(|b| ViewBooking {
                tour_id: b.tour_id,
                start: engine::time::to_datetime(b.start),
                end: engine::time::to_datetime(b.end),
                first: b.first,
                last: b.last,
            })
            .collect();
        let next_free_at = one_stop_plan(
            realtor.home,
            now,
            now + chrono::Duration::days(NEXT_FREE_HORIZON_DAYS),
            visit_minutes,
        )
        .ok()
        .and_then(|plan| {
            let mut scratch = engine::feasibility::Scratch::default();
            engine::feasibility::earliest_start(realtor, calendar, &plan, 0.0, &mut scratch).ok()
        })
        .map(engine::time::to_datetime);
        Self {
            realtor_id: realtor.id,
            status: realtor.status,
            home: realtor.home,
            service_radius_km: realtor.service_radius_km(),
            time_zone: realtor.hours.zone(),
            working_hours: realtor.hours.intervals().to_vec(),
            next_free_at,
            bookings,
            updated_at: now,
        }
    }

    /// The realtor and bookings this entry describes; `None` for an entry whose radius is out
    /// of range (not written by this engine).
    #[must_use]
    pub fn into_parts(self) -> Option<(engine::Realtor, Vec<Booking>)> {
        let hours = WorkingHours::new(self.time_zone, self.working_hours);
        let realtor = engine::Realtor::new(
            self.realtor_id,
            self.home,
            self.service_radius_km,
            hours,
            self.status,
        )
        .ok()?;
        let bookings = self
            .bookings
            .into_iter()
            .map(|b| Booking {
                tour_id: b.tour_id,
                start: b.start.timestamp(),
                end: b.end.timestamp(),
                first: b.first,
                last: b.last,
            })
            .collect();
        Some((realtor, bookings))
    }
}

/// A one-listing visit at `at` during `[start, end)`: what availability is asked about.
///
/// # Errors
/// The window is empty or longer than the engine allows.
pub fn one_stop_plan(
    at: Location,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    visit_minutes: i64,
) -> Result<TourPlan, String> {
    let window = TimeWindow::new(start, end).map_err(|e| e.to_string())?;
    let stop = engine::Stop {
        id: engine::ListingId(uuid::Uuid::nil()),
        location: at,
    };
    TourPlan::new(
        TourId(uuid::Uuid::nil()),
        &[stop],
        window,
        visit_minutes,
        vec![],
    )
    .map_err(|e| e.to_string())
}

/// The Redis side of the view: writes of the publisher, reads of `/availability`.
#[derive(Clone)]
pub struct RedisView {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisView")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisView {
    /// Connects (and reconnects by itself after Redis restarts).
    ///
    /// # Errors
    /// Redis does not answer within 5 s.
    pub async fn connect(url: &str, prefix: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self::new(conn, prefix))
    }

    /// A view over an open connection.
    #[must_use]
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            prefix: prefix.to_owned(),
        }
    }

    /// The connection (for other users of the same Redis, e.g. rate limits).
    #[must_use]
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Key of the hash of `cell`.
    #[must_use]
    pub fn cell_key(&self, cell: CellIndex) -> String {
        format!("{}:availability:{cell}", self.prefix)
    }

    fn cells_key(&self) -> String {
        format!("{}:availability:cells", self.prefix)
    }

    fn built_key(&self) -> String {
        format!("{}:availability:built", self.prefix)
    }

    /// Writes a batch of changes in one round trip: `Some` entries replace, `None` removes.
    ///
    /// # Errors
    /// Redis fails; nothing can be assumed written then (the caller writes the batch again).
    pub async fn write(
        &self,
        changes: &[(CellIndex, RealtorId, Option<ViewEntry>)],
    ) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        for (cell, realtor, entry) in changes {
            let key = self.cell_key(*cell);
            let field = realtor.0.to_string();
            match entry {
                Some(entry) => {
                    let json = serde_json::to_string(entry).map_err(|e| {
                        redis::RedisError::from((
                            redis::ErrorKind::Client,
                            "entry not serializable",
                            e.to_string(),
                        ))
                    })?;
                    pipe.hset(&key, field, json).ignore();
                    pipe.sadd(self.cells_key(), cell.to_string()).ignore();
                }
                None => {
                    pipe.hdel(&key, field).ignore();
                }
            }
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await
    }

    /// Whether a full snapshot is in Redis (false after a flush or a restart that lost data).
    ///
    /// # Errors
    /// Redis fails.
    pub async fn is_built(&self) -> redis::RedisResult<bool> {
        let mut conn = self.conn.clone();
        redis::cmd("EXISTS")
            .arg(self.built_key())
            .query_async(&mut conn)
            .await
    }

    /// Records that a full snapshot was written.
    ///
    /// # Errors
    /// Redis fails.
    pub async fn mark_built(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.built_key())
            .arg(Utc::now().to_rfc3339())
            .query_async(&mut conn)
            .await
    }

    /// Every published entry of `cells` (entries that do not decode are skipped and logged).
    ///
    /// # Errors
    /// Redis fails.
    pub async fn entries(&self, cells: &[CellIndex]) -> redis::RedisResult<Vec<ViewEntry>> {
        if cells.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for cell in cells {
            pipe.hvals(self.cell_key(*cell));
        }
        let mut conn = self.conn.clone();
        let values: Vec<Vec<String>> = pipe.query_async(&mut conn).await?;
        Ok(values
            .into_iter()
            .flatten()
            .filter_map(|json| match serde_json::from_str(&json) {
                Ok(entry) => Some(entry),
                Err(err) => {
                    tracing::warn!(%err, "skipping an undecodable availability entry");
                    None
                }
            })
            .collect())
    }

    /// Cells with published realtors.
    ///
    /// # Errors
    /// Redis fails.
    pub async fn cells(&self) -> redis::RedisResult<HashSet<CellIndex>> {
        let mut conn = self.conn.clone();
        let cells: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.cells_key())
            .query_async(&mut conn)
            .await?;
        Ok(cells.iter().filter_map(|c| c.parse().ok()).collect())
    }

    /// Realtors able to take a one-listing visit at `at` within `radius_km` during
    /// `[start, end)`, `(realtor, km, earliest start)` nearest first: the shard actors' answer
    /// ([`crate::runtime::Runtime::availability`]), computed from the published entries.
    ///
    /// # Errors
    /// Redis fails.
    pub async fn available(
        &self,
        plan: &TourPlan,
        radius_km: f64,
        shard_resolution: Resolution,
        search_resolution: Resolution,
    ) -> redis::RedisResult<Vec<(RealtorId, f64, DateTime<Utc>)>> {
        let origin = plan.first().cell(shard_resolution);
        // The cells a realtor within `radius_km` can live in: the bound of CONTRACT 5.4's ring
        // search, as the actors use it.
        let cells: Vec<CellIndex> = self
            .cells()
            .await?
            .into_iter()
            .filter(|cell| match origin.grid_distance(*cell) {
                Ok(0) => true,
                Ok(d) => {
                    ring_bound_km(shard_resolution, u32::try_from(d - 1).unwrap_or(u32::MAX))
                        <= radius_km
                }
                Err(_) => true,
            })
            .collect();
        let mut index = RealtorIndex::new(search_resolution);
        for entry in self.entries(&cells).await? {
            if let Some((realtor, bookings)) = entry.into_parts() {
                let id = realtor.id;
                index.upsert(realtor);
                for booking in bookings {
                    let _ = index.restore(id, booking);
                }
            }
        }
        let mut found = index.available_near(plan, radius_km);
        found.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        Ok(found
            .into_iter()
            .map(|(id, km, start)| (id, km, engine::time::to_datetime(start)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realtor(status: RealtorStatus) -> engine::Realtor {
        let zone = TimeZone::parse("Europe/Lisbon").unwrap();
        let hours = WorkingHours::new(
            zone,
            (1..=7)
                .map(|d| WorkingInterval::parse(d, "09:00", "17:00").unwrap())
                .collect(),
        );
        let home = Location::new(38.72, -9.14).unwrap();
        engine::Realtor::new(
            RealtorId(uuid::Uuid::from_u128(7)),
            home,
            25.0,
            hours,
            status,
        )
        .unwrap()
    }

    #[test]
    fn an_entry_round_trips_and_says_when_the_realtor_is_next_free() {
        let r = realtor(RealtorStatus::Available);
        let mut calendar = Calendar::new(r.home);
        let day = DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        // Booked 09:00-12:00 (Lisbon is UTC in December): next free start is 12:00.
        calendar.insert_unchecked(Booking {
            tour_id: TourId(uuid::Uuid::from_u128(1)),
            start: day.timestamp(),
            end: day.timestamp() + 3 * 3600,
            first: r.home,
            last: r.home,
        });
        let entry = ViewEntry::of(&r, &calendar, day - chrono::Duration::hours(1), 30);
        assert_eq!(
            entry.next_free_at,
            Some(day + chrono::Duration::hours(3)),
            "{entry:?}"
        );
        let json = serde_json::to_string(&entry).unwrap();
        let back: ViewEntry = serde_json::from_str(&json).unwrap();
        assert_eq!(back, entry);
        let (again, bookings) = back.into_parts().unwrap();
        assert_eq!(again, r);
        assert_eq!(bookings, calendar.bookings());

        let away = ViewEntry::of(
            &realtor(RealtorStatus::Unavailable),
            &calendar,
            day - chrono::Duration::hours(1),
            30,
        );
        assert_eq!(away.next_free_at, None);
        // Ended bookings are not published.
        let later = ViewEntry::of(&r, &calendar, day + chrono::Duration::hours(4), 30);
        assert!(later.bookings.is_empty());
    }
}
