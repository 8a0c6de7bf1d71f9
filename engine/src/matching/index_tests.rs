//! Unit tests of the index's bookkeeping (kept apart from `index.rs` for its length).

use super::*;
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
