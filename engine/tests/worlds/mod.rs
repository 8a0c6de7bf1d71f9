//! Seeded worlds for the matching tests: cities of realtors with calendars, and tours.
#![allow(dead_code)] // each test binary uses its own share

use chrono::{DateTime, TimeZone as _, Utc};
use engine::{
    Booking, Location, Realtor, RealtorId, RealtorIndex, RealtorStatus, Stop, TimeWindow, TimeZone,
    TourId, TourPlan, WorkingHours, WorkingInterval,
};
use h3o::Resolution;

/// A small deterministic generator, so one proptest seed builds one whole city.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// Places worth testing: a plain metro, DST zones, the antimeridian, near a pole, a pentagon.
pub fn city(kind: u64) -> (f64, f64, &'static str, DateTime<Utc>) {
    let t = |y, mo, d| Utc.with_ymd_and_hms(y, mo, d, 0, 0, 0).unwrap();
    match kind % 6 {
        0 => (38.72, -9.14, "Europe/Lisbon", t(2026, 3, 28)), // spring forward 03-29
        1 => (40.71, -74.0, "America/New_York", t(2026, 10, 31)), // fall back 11-01
        2 => (-17.7, 179.95, "Pacific/Fiji", t(2026, 12, 1)), // straddles the antimeridian
        3 => (89.7, 20.0, "UTC", t(2026, 6, 1)),              // near the north pole
        4 => {
            // The centre of an H3 pentagon at the search resolution.
            let p = Resolution::Eight.pentagons().nth(3).unwrap();
            let ll = h3o::LatLng::from(p);
            (ll.lat(), ll.lng(), "UTC", t(2026, 7, 1))
        }
        _ => (38.72, -9.14, "Europe/Lisbon", t(2026, 10, 24)), // fall back 10-25
    }
}

pub fn wrap_lng(lng: f64) -> f64 {
    if lng > 180.0 {
        lng - 360.0
    } else if lng < -180.0 {
        lng + 360.0
    } else {
        lng
    }
}

pub fn near(rng: &mut Rng, lat: f64, lng: f64, spread: f64) -> Location {
    let la = (lat + rng.range(-spread, spread)).clamp(-90.0, 90.0);
    let lo = wrap_lng(lng + rng.range(-spread, spread) * 2.0);
    Location::new(la, lo).unwrap()
}

pub fn random_hours(rng: &mut Rng, tz: &str) -> WorkingHours {
    let mut intervals = Vec::new();
    for day in 1..=7u8 {
        match rng.below(5) {
            0 => {}                                                           // day off
            1 => intervals.push(WorkingInterval::new(day, 0, 1440).unwrap()), // all day
            2 => {
                // split shift, second part up to midnight
                intervals.push(WorkingInterval::new(day, 8 * 60, 12 * 60).unwrap());
                intervals.push(WorkingInterval::new(day, 13 * 60, 1440).unwrap());
            }
            _ => {
                let start = rng.below(20) as u16 * 60 + rng.below(4) as u16 * 15;
                let end = (start + 60 + rng.below(10) as u16 * 60).min(1440);
                intervals.push(WorkingInterval::new(day, start, end).unwrap());
            }
        }
    }
    WorkingHours::new(TimeZone::parse(tz).unwrap(), intervals)
}

pub struct World {
    pub index: RealtorIndex,
    pub centre: (f64, f64),
    pub base: DateTime<Utc>,
}

pub fn build_world(seed: u64, realtors: usize, bookings_per_realtor: usize) -> World {
    let mut rng = Rng(seed | 1);
    let (lat, lng, tz, base) = city(rng.next());
    let mut index = RealtorIndex::new(Resolution::Eight);
    let zones = [
        tz,
        tz,
        tz,
        "America/New_York",
        "Pacific/Kiritimati",
        "Asia/Kolkata",
    ];
    let spread = if realtors > 500 { 0.3 } else { 0.1 };
    let mut ids = Vec::new();
    for _ in 0..realtors {
        let id = RealtorId::new_random();
        let status = if rng.below(10) == 0 {
            RealtorStatus::Unavailable
        } else {
            RealtorStatus::Available
        };
        let zone = zones[rng.below(zones.len() as u64) as usize];
        let radius = rng.range(0.5, 40.0);
        let realtor = Realtor::new(
            id,
            near(&mut rng, lat, lng, spread),
            radius,
            random_hours(&mut rng, zone),
            status,
        )
        .unwrap();
        index.upsert(realtor);
        ids.push(id);
    }
    // Fill calendars through the engine's own checked reservations, at random starts.
    for &id in &ids {
        for _ in 0..bookings_per_realtor {
            let start = base.timestamp() + rng.below(4 * 24 * 12) as i64 * 300;
            let stops = random_stops(&mut rng, lat, lng, spread);
            let window = TimeWindow::new(
                DateTime::from_timestamp(start, 0).unwrap(),
                DateTime::from_timestamp(start + 6 * 3600, 0).unwrap(),
            )
            .unwrap();
            let plan = TourPlan::new(TourId::new_random(), &stops, window, 30, vec![]).unwrap();
            let _ = index.reserve(id, &plan, start); // refused when it would break 5.3
        }
    }
    World {
        index,
        centre: (lat, lng),
        base,
    }
}

pub fn random_stops(rng: &mut Rng, lat: f64, lng: f64, spread: f64) -> Vec<Stop> {
    (0..1 + rng.below(3))
        .map(|_| Stop {
            id: engine::ListingId::new_random(),
            location: near(rng, lat, lng, spread),
        })
        .collect()
}

pub fn random_plan(rng: &mut Rng, world: &World, declined_from: &[RealtorId]) -> TourPlan {
    let (lat, lng) = world.centre;
    let stops = random_stops(rng, lat, lng, 0.1);
    // Windows from 10 minutes to 2 days, starting at any second (off the grid too).
    let start = world.base.timestamp() + rng.below(4 * 24 * 3600) as i64;
    let len = 600 + rng.below(2 * 24 * 3600) as i64;
    let window = TimeWindow::new(
        DateTime::from_timestamp(start, 0).unwrap(),
        DateTime::from_timestamp(start + len, 0).unwrap(),
    )
    .unwrap();
    let declined = declined_from
        .iter()
        .filter(|_| rng.below(20) == 0)
        .copied()
        .collect();
    TourPlan::new(TourId::new_random(), &stops, window, 30, declined).unwrap()
}

/// A dense city whose realtors all book the same slots (as the benchmark's): most short
/// windows are unassignable, so searches reach the coarse rings and prove "nobody" with the
/// relaxed calendar.
pub fn synchronized_world(seed: u64, realtors: usize) -> World {
    synchronized_world_spread(seed, realtors, 0.15)
}

/// [`synchronized_world`] with homes spread `spread` degrees around the centre: wide enough,
/// the coarse rings rule out far cells before they run out of cells.
pub fn synchronized_world_spread(seed: u64, realtors: usize, spread: f64) -> World {
    synchronized_world_radii(seed, realtors, spread, (3.0, 30.0))
}

/// [`synchronized_world_spread`] with service radii drawn from `radii` (km).
pub fn synchronized_world_radii(
    seed: u64,
    realtors: usize,
    spread: f64,
    radii: (f64, f64),
) -> World {
    let mut rng = Rng(seed | 1);
    let (lat, lng, base) = (
        38.72,
        -9.14,
        Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap(),
    );
    let mut index = RealtorIndex::new(Resolution::Eight);
    let zone = TimeZone::parse("Europe/Lisbon").unwrap();
    let hours: Vec<_> = (1..=7)
        .map(|d| WorkingInterval::new(d, 8 * 60, 20 * 60).unwrap())
        .collect();
    for _ in 0..realtors {
        let id = RealtorId::new_random();
        let home = near(&mut rng, lat, lng, spread);
        let radius = rng.range(radii.0, radii.1);
        let realtor = Realtor::new(
            id,
            home,
            radius,
            WorkingHours::new(zone, hours.clone()),
            RealtorStatus::Available,
        )
        .unwrap();
        index.upsert(realtor);
        let shift = rng.below(6) as i64 * 300;
        for slot in 0..8i64 {
            let start = base.timestamp() + 8 * 3600 + shift + slot * 5400;
            let b = Booking {
                tour_id: TourId::new_random(),
                start,
                end: start + 1800 + rng.below(3) as i64 * 600,
                first: near(&mut rng, home.lat(), home.lng(), 0.03),
                last: near(&mut rng, home.lat(), home.lng(), 0.03),
            };
            index.restore(id, b).unwrap();
        }
    }
    World {
        index,
        centre: (lat, lng),
        base,
    }
}
