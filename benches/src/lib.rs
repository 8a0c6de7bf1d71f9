//! Shared fixtures for Tourwise's benchmarks and `tourwise simulate`: seeded cities of realtors
//! and tours.
//!
//! A city is one metro area (Lisbon): realtor homes clustered around a few centres like a real
//! metro, working hours 08:00-20:00 every day, and a calendar already holding
//! `bookings_per_day` tours per realtor per day. Everything comes from one seed, so every run and
//! every compared design sees the same city.

pub mod peers;
pub mod slots;

use chrono::{DateTime, TimeZone as _, Utc};
use engine::{
    Booking, ListingId, Location, Realtor, RealtorId, RealtorIndex, RealtorStatus, Stop,
    TimeWindow, TimeZone, TourId, TourPlan, WorkingHours, WorkingInterval,
};
use h3o::Resolution;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Metro centres (lat, lng, weight): Lisbon, Almada, Amadora, Cascais, Sintra.
const CENTRES: [(f64, f64, f64); 5] = [
    (38.7223, -9.1393, 0.45),
    (38.6790, -9.1569, 0.15),
    (38.7597, -9.2302, 0.15),
    (38.6979, -9.4215, 0.12),
    (38.8029, -9.3817, 0.13),
];

/// The first day of every generated calendar (a Monday).
pub fn first_day() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A seeded metro city.
pub struct City {
    /// The realtors, indexed with their calendars.
    pub index: RealtorIndex,
    rng: StdRng,
    days: i64,
}

/// A point of the metro: one of its centres (by weight) plus a normal spread of `sigma_deg`.
pub fn metro_point(rng: &mut StdRng, sigma_deg: f64) -> Location {
    let mut pick = rng.random::<f64>();
    let mut centre = CENTRES[0];
    for c in CENTRES {
        if pick < c.2 {
            centre = c;
            break;
        }
        pick -= c.2;
    }
    // Box-Muller: a normal spread around the centre.
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    let r = (-2.0 * u1.ln()).sqrt() * sigma_deg;
    let (s, c) = (2.0 * std::f64::consts::PI * u2).sin_cos();
    Location::new(centre.0 + r * s, centre.1 + r * c * 1.3).unwrap_or_else(|_| {
        Location::new(centre.0, centre.1).unwrap_or_else(|_| unreachable!("centres are valid"))
    })
}

/// A point within about `km` of `at`.
pub fn near(rng: &mut StdRng, at: &Location, km: f64) -> Location {
    let dlat = rng.random_range(-km..km) / 111.0;
    let dlng = rng.random_range(-km..km) / 87.0;
    Location::new(at.lat() + dlat, at.lng() + dlng).unwrap_or(*at)
}

impl City {
    /// Builds a city of `realtors`, each with `bookings_per_day` booked tours on each of `days`
    /// days starting at [`first_day`], indexed at `resolution`.
    pub fn generate(
        seed: u64,
        realtors: usize,
        bookings_per_day: usize,
        days: i64,
        resolution: Resolution,
    ) -> City {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut index = RealtorIndex::new(resolution);
        let zone = TimeZone::parse("Europe/Lisbon").unwrap_or_else(|_| TimeZone::utc());
        let hours: Vec<WorkingInterval> = (1..=7)
            .filter_map(|d| WorkingInterval::new(d, 8 * 60, 20 * 60).ok())
            .collect();
        let day0 = first_day().timestamp();
        for _ in 0..realtors {
            let id = RealtorId::new_random();
            let home = metro_point(&mut rng, 0.15);
            let radius = rng.random_range(8.0..30.0);
            let Ok(realtor) = Realtor::new(
                id,
                home,
                radius,
                WorkingHours::new(zone, hours.clone()),
                RealtorStatus::Available,
            ) else {
                continue;
            };
            index.upsert(realtor);
            // Bookings of 30-75 minutes spread over 08:00-20:00 local (UTC+0 in December),
            // each in its own slot so they never conflict; slots shift per realtor so that the
            // city's free time is spread over the day as in a real one.
            let slots = 8usize.max(bookings_per_day);
            let shift = rng.random_range(0..6) * 300;
            for day in 0..days {
                let mut chosen: Vec<usize> = (0..slots).collect();
                for i in 0..bookings_per_day.min(slots) {
                    let j = rng.random_range(i..slots);
                    chosen.swap(i, j);
                }
                for &slot in &chosen[..bookings_per_day.min(slots)] {
                    let start = day0
                        + day * 86_400
                        + 8 * 3600
                        + shift
                        + slot as i64 * (12 * 3600 / slots as i64);
                    let length = 30 * 60 + rng.random_range(0..3) * 10 * 60;
                    let at = near(&mut rng, &home, 3.0);
                    let booking = Booking {
                        tour_id: TourId::new_random(),
                        start,
                        end: start + length,
                        first: at,
                        last: near(&mut rng, &at, 1.0),
                    };
                    let _ = index.restore(id, booking);
                }
            }
        }
        City { index, rng, days }
    }

    /// `n` random one-listing tours somewhere in the metro, with windows of 1 to 4 hours inside
    /// the calendar's days.
    pub fn one_listing_tours(&mut self, n: usize) -> Vec<TourPlan> {
        let day0 = first_day().timestamp();
        (0..n)
            .filter_map(|_| {
                let at = metro_point(&mut self.rng, 0.15);
                let day = self.rng.random_range(0..self.days.max(1));
                let start =
                    day0 + day * 86_400 + 7 * 3600 + self.rng.random_range(0..12 * 12) * 300;
                let len = self.rng.random_range(1..=4) * 3600;
                let window = TimeWindow::new(
                    DateTime::from_timestamp(start, 0)?,
                    DateTime::from_timestamp(start + len, 0)?,
                )
                .ok()?;
                let stop = Stop {
                    id: ListingId::new_random(),
                    location: at,
                };
                TourPlan::new(TourId::new_random(), &[stop], window, 30, vec![]).ok()
            })
            .collect()
    }
}
