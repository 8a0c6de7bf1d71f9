//! The city of the peer comparison (issue #7): time cut into one-hour slots, each realtor free
//! in about 30% of them, and one-listing queries asking for the nearest realtor able to visit a
//! place inside one slot.
//!
//! The slot shape is what lets the peers' designs answer at all: Redis and PostGIS keep, per slot,
//! the set of realtors with nothing booked in it (a booking fills its whole slot), search that
//! set by distance, then check each candidate's calendar. The calendar check is the engine's own
//! rule ([`SlotCity::check`]), so every design applies CONTRACT 5.3 the same way and a
//! disagreement can only come from how candidates are found.

use chrono::DateTime;
use engine::feasibility::{earliest_start, Scratch};
use engine::geo::distance_km;
use engine::{
    Booking, Calendar, ListingId, Location, Realtor, RealtorId, RealtorIndex, RealtorStatus, Stop,
    TimeWindow, TimeZone, TourId, TourPlan, WorkingHours, WorkingInterval,
};
use h3o::Resolution;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{first_day, metro_point, near};

/// Working day 08:00-20:00 (Lisbon is UTC+0 in December): twelve one-hour slots a day.
pub const SLOTS_PER_DAY: usize = 12;
const DAY_START_S: i64 = 8 * 3600;
/// Minutes of a visit (one listing: the tour's whole duration).
pub const VISIT_MINUTES: i64 = 30;
/// The largest service radius in the city, km: no realtor farther than this can take anything.
pub const MAX_RADIUS_KM: f64 = 30.0;

/// One realtor of the slot city.
#[derive(Debug, Clone)]
pub struct SlotRealtor {
    /// Id.
    pub id: RealtorId,
    /// Home.
    pub home: Location,
    /// Service radius, km.
    pub radius_km: f64,
    /// `booked[slot]`: the booking filling that slot, if any.
    pub booked: Vec<Option<Booking>>,
}

/// One query: the nearest realtor for `plan` (one listing, window = slot `slot`).
#[derive(Debug, Clone)]
pub struct SlotQuery {
    /// The slot the window covers.
    pub slot: usize,
    /// The tour.
    pub plan: TourPlan,
}

impl SlotQuery {
    /// A visit of [`VISIT_MINUTES`] to `at` during `slot`, with the listing and tour ids given
    /// (as numbers, so that seeded queries are the same in every run). `None` for a slot
    /// outside the calendar's range.
    #[must_use]
    pub fn new(slot: usize, at: Location, listing: u128, tour: u128) -> Option<SlotQuery> {
        let start = slot_start(slot);
        let window = TimeWindow::new(
            DateTime::from_timestamp(start, 0)?,
            DateTime::from_timestamp(start + 3600, 0)?,
        )
        .ok()?;
        let stop = Stop {
            id: ListingId(uuid::Uuid::from_u128(listing)),
            location: at,
        };
        let plan = TourPlan::new(
            TourId(uuid::Uuid::from_u128(tour)),
            &[stop],
            window,
            VISIT_MINUTES,
            vec![],
        )
        .ok()?;
        Some(SlotQuery { slot, plan })
    }

    /// The place to visit.
    #[must_use]
    pub fn at(&self) -> &Location {
        self.plan.first()
    }
}

/// The seeded slot city.
pub struct SlotCity {
    /// Realtors, in generation order.
    pub realtors: Vec<SlotRealtor>,
    /// Days of slots.
    pub days: usize,
    hours: WorkingHours,
}

/// A realtor able to take a query: `(distance km, earliest start, id)`, compared in this order
/// (CONTRACT 5.4 `nearest`; the day-load tie-break never decides between unequal distances).
pub type Answer = (f64, i64, RealtorId);

/// The preferred of two answers under `nearest`.
#[must_use]
pub fn better(a: Option<Answer>, b: Answer) -> Answer {
    match a {
        Some(a) if (a.0, a.1, a.2) <= (b.0, b.1, b.2) => a,
        _ => b,
    }
}

/// UTC seconds at which `slot` starts.
#[must_use]
pub fn slot_start(slot: usize) -> i64 {
    let day = (slot / SLOTS_PER_DAY) as i64;
    first_day().timestamp() + day * 86_400 + DAY_START_S + (slot % SLOTS_PER_DAY) as i64 * 3600
}

impl SlotCity {
    /// `realtors` realtors over `days` days, each slot free with probability `free`.
    #[must_use]
    pub fn generate(seed: u64, realtors: usize, days: usize, free: f64) -> SlotCity {
        let mut rng = StdRng::seed_from_u64(seed);
        let zone = TimeZone::parse("Europe/Lisbon").unwrap_or_else(|_| TimeZone::utc());
        let hours = WorkingHours::new(
            zone,
            (1..=7)
                .filter_map(|d| WorkingInterval::new(d, 8 * 60, 20 * 60).ok())
                .collect(),
        );
        let slots = days * SLOTS_PER_DAY;
        let realtors = (0..realtors)
            .map(|_| {
                let home = metro_point(&mut rng, 0.15);
                let radius_km = rng.random_range(8.0..MAX_RADIUS_KM);
                let booked = (0..slots)
                    .map(|slot| {
                        if rng.random::<f64>() < free {
                            return None;
                        }
                        let first = near(&mut rng, &home, 3.0);
                        let start = slot_start(slot);
                        Some(Booking {
                            tour_id: TourId(uuid::Uuid::from_u128(rng.random())),
                            start,
                            end: start + 3600,
                            first,
                            last: near(&mut rng, &first, 1.0),
                        })
                    })
                    .collect();
                SlotRealtor {
                    id: RealtorId(uuid::Uuid::from_u128(rng.random())),
                    home,
                    radius_km,
                    booked,
                }
            })
            .collect();
        SlotCity {
            realtors,
            days,
            hours,
        }
    }

    /// Number of slots.
    #[must_use]
    pub fn slots(&self) -> usize {
        self.days * SLOTS_PER_DAY
    }

    /// `n` queries: a metro point and a random slot each.
    #[must_use]
    pub fn queries(&self, seed: u64, n: usize) -> Vec<SlotQuery> {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
        (0..n)
            .filter_map(|_| {
                let at = metro_point(&mut rng, 0.15);
                let slot = rng.random_range(0..self.slots());
                SlotQuery::new(slot, at, rng.random(), rng.random())
            })
            .collect()
    }

    /// The engine's index of the whole city (every realtor with every booking).
    #[must_use]
    pub fn index(&self, resolution: Resolution) -> RealtorIndex {
        let mut index = RealtorIndex::new(resolution);
        for r in &self.realtors {
            if let Ok(realtor) = self.realtor(r.id, r.home, r.radius_km) {
                index.upsert(realtor);
                for b in r.booked.iter().flatten() {
                    let _ = index.restore(r.id, *b);
                }
            }
        }
        index
    }

    /// The engine's view of one realtor of this city (every realtor works 08:00-20:00 daily).
    ///
    /// # Errors
    /// A radius the engine refuses.
    pub fn realtor(
        &self,
        id: RealtorId,
        home: Location,
        radius_km: f64,
    ) -> Result<Realtor, engine::realtor::ProfileError> {
        Realtor::new(
            id,
            home,
            radius_km,
            self.hours.clone(),
            RealtorStatus::Available,
        )
    }

    /// CONTRACT 5.3 for one candidate a peer design fetched: its profile and that day's bookings.
    /// `None` when the realtor cannot take the query.
    #[must_use]
    pub fn check(
        &self,
        query: &SlotQuery,
        id: RealtorId,
        home: Location,
        radius_km: f64,
        bookings: &[Booking],
        scratch: &mut Scratch,
    ) -> Option<Answer> {
        let realtor = self.realtor(id, home, radius_km).ok()?;
        let mut calendar = Calendar::new(home);
        for b in bookings {
            calendar.insert_unchecked(*b);
        }
        let km = distance_km(&home, query.at());
        earliest_start(&realtor, &calendar, &query.plan, km, scratch)
            .ok()
            .map(|start| (km, start, id))
    }

    /// The day (0-based) of a slot.
    #[must_use]
    pub fn day_of(slot: usize) -> usize {
        slot / SLOTS_PER_DAY
    }
}

/// Encodes a day's bookings as `start,end,lat,lng,lat,lng;...` (the peers' storage format:
/// Rust's and PostgreSQL's shortest round-trip float text, so nothing is lost).
#[must_use]
pub fn encode_bookings<'a>(bookings: impl Iterator<Item = &'a Booking>) -> String {
    let mut out = String::new();
    for b in bookings {
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(&format!(
            "{},{},{},{},{},{}",
            b.start,
            b.end,
            b.first.lat(),
            b.first.lng(),
            b.last.lat(),
            b.last.lng()
        ));
    }
    out
}

/// The inverse of [`encode_bookings`]; malformed entries are skipped (the peers wrote them).
#[must_use]
pub fn decode_bookings(text: &str) -> Vec<Booking> {
    text.split(';')
        .filter_map(|b| {
            let f: Vec<&str> = b.split(',').collect();
            if f.len() != 6 {
                return None;
            }
            let n = |i: usize| f[i].parse::<f64>().ok();
            Some(Booking {
                tour_id: TourId(uuid::Uuid::nil()),
                start: f[0].parse().ok()?,
                end: f[1].parse().ok()?,
                first: Location::new(n(2)?, n(3)?).ok()?,
                last: Location::new(n(4)?, n(5)?).ok()?,
            })
        })
        .collect()
}

/// Whether a candidate at approximate distance `approx_km` (a peer's own distance: Redis's
/// sphere of radius 6372.8 km over 52-bit geohashes, PostGIS's sphere) could still be nearer than
/// `best_km` (the engine's haversine). The 1% and 5 m margins dwarf both errors, so stopping when
/// this is false never skips the true answer.
#[must_use]
pub fn may_beat(approx_km: f64, best_km: f64) -> bool {
    approx_km * 0.99 - 0.005 <= best_km
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookings_survive_their_text_form_exactly() {
        let city = SlotCity::generate(3, 20, 1, 0.3);
        for r in &city.realtors {
            let booked: Vec<Booking> = r.booked.iter().flatten().copied().collect();
            let back = decode_bookings(&encode_bookings(booked.iter()));
            assert_eq!(back.len(), booked.len());
            for (a, b) in booked.iter().zip(&back) {
                assert_eq!(
                    (a.start, a.end, a.first, a.last),
                    (b.start, b.end, b.first, b.last)
                );
            }
        }
        assert!(decode_bookings("").is_empty());
        assert!(decode_bookings("1,2,3;x,y,z,1,2,3").is_empty());
    }

    #[test]
    fn a_peer_distance_within_its_error_may_still_win() {
        // Redis's sphere is 0.03% larger than the engine's: 10.003 km there is 10 km here.
        assert!(may_beat(10.003, 10.0));
        assert!(may_beat(10.05, 10.0));
        assert!(!may_beat(10.2, 10.0));
    }

    #[test]
    fn a_booked_slot_is_full_and_queries_stay_inside_their_slot() {
        let city = SlotCity::generate(5, 200, 2, 0.3);
        let free = city
            .realtors
            .iter()
            .flat_map(|r| r.booked.iter())
            .filter(|b| b.is_none())
            .count() as f64
            / (200 * city.slots()) as f64;
        assert!((0.25..0.35).contains(&free), "free share {free}");
        for q in city.queries(5, 50) {
            let (ws, we) = q.plan.window.seconds();
            assert_eq!((ws, we), (slot_start(q.slot), slot_start(q.slot) + 3600));
        }
    }
}
