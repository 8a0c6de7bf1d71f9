//! Unit tests of the index's bookkeeping (kept apart from `index.rs` for its length).

use super::*;
use crate::geo::EARTH_RADIUS_KM;
use crate::time::{TimeZone, WorkingInterval};

/// What a coarse cell keeps beside its slots must always be derived from them.
fn assert_columns_match_slots(index: &RealtorIndex) {
    let Some((_, coarse)) = &index.coarse else {
        return;
    };
    for cc in coarse.values() {
        let radii: Vec<f64> = cc.slots.iter().map(|s| s.radius_km).collect();
        let entries: Vec<u32> = cc.slots.iter().map(|s| s.entry).collect();
        let available: Vec<bool> = cc.slots.iter().map(|s| s.available).collect();
        assert_eq!(cc.radii, radii);
        assert_eq!(cc.entries, entries);
        assert_eq!(
            cc.reach.iter().map(|r| r.available).collect::<Vec<_>>(),
            available
        );
        assert_eq!(
            (0..cc.slots.len())
                .map(|i| cc.is_available(i))
                .collect::<Vec<_>>(),
            available
        );
        assert!(radii.windows(2).all(|w| w[0] <= w[1]), "sorted by radius");
        for s in &cc.slots {
            let e = &index.entries[s.entry as usize];
            assert_eq!(e.coarse_cell, s.coarse, "a slot names its own entry");
        }
    }
}

#[test]
fn coarse_columns_follow_removals_moves_and_status_changes() {
    let mut index = RealtorIndex::new(DEFAULT_SEARCH_RESOLUTION);
    let hours = WorkingHours::new(
        TimeZone::utc(),
        vec![WorkingInterval::new(1, 8 * 60, 20 * 60).unwrap()],
    );
    let mut ids = Vec::new();
    for i in 0..300u32 {
        let f = f64::from(i);
        let home = Location::new(38.70 + (f * 0.37).sin() * 0.05, -9.14 + f * 0.0003).unwrap();
        let realtor = Realtor::new(
            RealtorId::new_random(),
            home,
            3.0 + f64::from(i % 17),
            hours.clone(),
            RealtorStatus::Available,
        )
        .unwrap();
        ids.push(realtor.id);
        index.upsert(realtor);
    }
    assert_columns_match_slots(&index);
    for (i, id) in ids.iter().enumerate() {
        match i % 4 {
            // Removal moves the last entry into the freed one.
            0 => drop(index.remove(*id)),
            1 => {
                let mut moved = index.get(*id).unwrap().0.clone();
                moved.home = Location::new(38.75, -9.10 + i as f64 * 0.0001).unwrap();
                index.upsert(moved);
            }
            2 => index.set_status(*id, RealtorStatus::Unavailable).unwrap(),
            _ => {}
        }
        assert_columns_match_slots(&index);
    }
}

/// The `f32` count of realtors within radius of a point, where it answers, is the count the
/// exact test gives: over random homes, radii and points, and points placed on a realtor's
/// radius (where the cosines are too close to call and the haversine decides).
#[test]
fn f32_counts_agree_with_the_exact_test() {
    let hours = WorkingHours::new(
        TimeZone::utc(),
        vec![WorkingInterval::new(1, 8 * 60, 20 * 60).unwrap()],
    );
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut unit = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut index = RealtorIndex::new(DEFAULT_SEARCH_RESOLUTION);
    let mut homes = Vec::new();
    for i in 0..600 {
        let home =
            Location::new(38.72 + (unit() - 0.5) * 0.3, -9.14 + (unit() - 0.5) * 0.4).unwrap();
        let status = if i % 7 == 0 {
            RealtorStatus::Unavailable
        } else {
            RealtorStatus::Available
        };
        let radius = 0.5 + unit() * 40.0;
        let realtor =
            Realtor::new(RealtorId::new_random(), home, radius, hours.clone(), status).unwrap();
        homes.push((home, radius));
        index.upsert(realtor);
    }
    // Points anywhere around, and points on someone's radius (due north of their home).
    let mut points: Vec<Location> = (0..300)
        .map(|_| Location::new(38.72 + (unit() - 0.5) * 0.8, -9.14 + (unit() - 0.5) * 1.0).unwrap())
        .collect();
    for &(home, radius) in homes.iter().step_by(5) {
        let lat = home.lat() + (radius / EARTH_RADIUS_KM).to_degrees();
        points.push(Location::new(lat, home.lng()).unwrap());
    }
    let Some((_, coarse)) = &index.coarse else {
        panic!("a res-8 index has coarse cells");
    };
    let (mut answered, mut on_radius) = (0, 0);
    for p in &points {
        let t = p.point().unit();
        for cc in coarse.values() {
            let exact = cc
                .slots
                .iter()
                .zip(&cc.reach)
                .filter(|(s, r)| {
                    let cos = r.unit[0] * t[0] + r.unit[1] * t[1] + r.unit[2] * t[2];
                    let within = if (cos - r.cos_radius).abs() < 1e-12 {
                        on_radius += 1;
                        s.point.distance_km(&p.point()) <= s.radius_km
                    } else {
                        cos >= r.cos_radius
                    };
                    s.available && within
                })
                .count();
            if let Some(count) = cc.available_within_f32(0..cc.slots.len(), t) {
                answered += 1;
                assert_eq!(count, exact, "{p:?}");
            }
        }
    }
    // Nearly everything is answered the fast way; the points on a radius were close calls.
    assert!(
        answered * 10 > points.len() * coarse.len() * 9,
        "{answered}"
    );
    assert!(on_radius > 0);
}
