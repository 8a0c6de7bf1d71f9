//! Free-time summaries rule out whole areas of realtors at once; they must never change a
//! decision, however the index changes after they are built. Every search here runs twice,
//! with summaries (and a scratch kept across searches, as a shard keeps it) and with
//! `SearchScratch::exhaustive()`: the same choice, the same number of candidates for each
//! outcome and reason, listed or counted, and the same candidates listed.

mod worlds;

use std::collections::BTreeMap;

use chrono::DateTime;
use engine::{
    Decision, ListingId, Nearest, Outcome, RealtorIndex, SearchScratch, Stop, TimeWindow, TourId,
    TourPlan,
};
use proptest::prelude::*;
use worlds::{
    build_world, near, random_plan, random_stops, synchronized_world, synchronized_world_spread,
    Rng,
};

/// Candidates by outcome (and reason), listed or omitted alike.
fn totals(d: &Decision) -> BTreeMap<String, usize> {
    let mut all = d.explanation.omitted.clone();
    for c in &d.explanation.candidates {
        let key = match (c.outcome, c.rejected) {
            (Outcome::Chosen, _) => "chosen".to_owned(),
            (Outcome::Lost, _) => "lost".to_owned(),
            (Outcome::NotEvaluated, _) => "not_evaluated".to_owned(),
            (Outcome::Rejected, Some(r)) => format!("rejected:{}", r.as_str()),
            (Outcome::Rejected, None) => "rejected".to_owned(),
        };
        *all.entry(key).or_insert(0) += 1;
    }
    all
}

/// Searches `plan` with `kept` and exhaustively, and checks they agree; returns the decision.
fn agree(index: &RealtorIndex, plan: &TourPlan, kept: &mut SearchScratch) -> Decision {
    let fast = index.search_with(plan, &Nearest, kept);
    let slow = index.search_with(plan, &Nearest, &mut SearchScratch::exhaustive());
    assert_eq!(fast.choice, slow.choice, "choice for {plan:?}");
    assert_eq!(totals(&fast), totals(&slow), "candidates for {plan:?}");
    // The exhaustive search examines everyone one by one: its list is the nearest
    // `MAX_REPORTED`. Realtors ruled out with their area are listed just the same.
    assert_eq!(
        listed(&fast),
        listed(&slow),
        "listed candidates for {plan:?}"
    );
    fast
}

/// The listed candidates: who, how far, and with what outcome.
fn listed(
    d: &Decision,
) -> Vec<(
    engine::RealtorId,
    u64,
    Outcome,
    Option<engine::RejectReason>,
)> {
    d.explanation
        .candidates
        .iter()
        .map(|c| (c.realtor_id, c.distance_km.to_bits(), c.outcome, c.rejected))
        .collect()
}

fn short_window_plan(rng: &mut Rng, stops: Vec<Stop>, base: i64) -> TourPlan {
    let start = base + 7 * 3600 + rng.below(13 * 12) as i64 * 300 + rng.below(2) as i64 * 17;
    let window = TimeWindow::new(
        DateTime::from_timestamp(start, 0).unwrap(),
        DateTime::from_timestamp(start + 3600 + rng.below(4) as i64 * 1800, 0).unwrap(),
    )
    .unwrap();
    TourPlan::new(TourId::new_random(), &stops, window, 30, vec![]).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// A synchronized city (most short windows unassignable, so areas get ruled out), booked
    /// as it goes: each assignable tour is reserved, which must make the kept summaries of
    /// that area stale. Some tours start at a booked stop, where summaries may not be used.
    #[test]
    fn summaries_never_change_a_decision(seed in any::<u64>()) {
        let mut world = synchronized_world(seed, 1500);
        let mut rng = Rng(seed.rotate_left(11) | 1);
        let mut kept = SearchScratch::default();
        let base = world.base.timestamp();
        let booked: Vec<_> = world.index.iter().flat_map(|(_, c)| c.bookings().to_vec()).take(50).collect();
        for i in 0..12 {
            let stops = if i % 4 == 3 {
                // Exactly where a booking ends: no travel from it, so no summaries.
                let b = booked[rng.below(booked.len() as u64) as usize];
                vec![Stop { id: ListingId::new_random(), location: b.last }]
            } else {
                let at = near(&mut rng, world.centre.0, world.centre.1, 0.2);
                if rng.below(3) == 0 {
                    random_stops(&mut rng, at.lat(), at.lng(), 0.003)
                } else {
                    vec![Stop { id: ListingId::new_random(), location: at }]
                }
            };
            let plan = short_window_plan(&mut rng, stops, base);
            let decision = agree(&world.index, &plan, &mut kept);
            if let Some(c) = decision.choice {
                world.index.reserve(c.realtor_id, &plan, c.start).unwrap();
                // The same window again, now that this realtor is taken: with the kept
                // scratch, and with one whose summaries of this area hold the booking...
                let again = TourPlan::new(TourId::new_random(), &plan.stops, plan.window, 30, vec![]).unwrap();
                let mut built_while_booked = SearchScratch::default();
                agree(&world.index, &again, &mut kept);
                agree(&world.index, &again, &mut built_while_booked);
                // ...and after the booking is released, when those summaries are stale.
                world.index.release(c.realtor_id, plan.tour_id);
                agree(&world.index, &again, &mut kept);
                let d = agree(&world.index, &again, &mut built_while_booked);
                prop_assert_eq!(d.choice.map(|c| c.realtor_id), Some(c.realtor_id));
            }
        }
    }

    /// Random cities: several time zones, unavailable realtors, windows of up to two days
    /// starting off the grid.
    #[test]
    fn summaries_agree_in_random_cities(seed in any::<u64>(), size in 0usize..3, bookings in 0usize..9) {
        let world = build_world(seed, [20, 300, 2000][size], bookings);
        let mut rng = Rng(seed.rotate_left(23) | 1);
        let mut kept = SearchScratch::default();
        for _ in 0..12 {
            let plan = random_plan(&mut rng, &world, &[]);
            agree(&world.index, &plan, &mut kept);
        }
    }
}

/// Two indexes that share their cells (one a clone of the other, then booked), searched in
/// turn with one scratch: each answers by its own calendars.
#[test]
fn a_cloned_index_keeps_its_own_summaries() {
    let world = synchronized_world(7, 600);
    let mut other = world.index.clone();
    let mut rng = Rng(99);
    let mut kept = SearchScratch::default();
    let base = world.base.timestamp();
    for _ in 0..40 {
        let at = near(&mut rng, world.centre.0, world.centre.1, 0.2);
        let stops = vec![Stop {
            id: ListingId::new_random(),
            location: at,
        }];
        let plan = short_window_plan(&mut rng, stops, base);
        agree(&world.index, &plan, &mut kept);
        if let Some(c) = agree(&other, &plan, &mut kept).choice {
            other.reserve(c.realtor_id, &plan, c.start).unwrap();
        }
        agree(&world.index, &plan, &mut kept);
        agree(&other, &plan, &mut kept);
    }
}

/// Removals (which move another realtor into the freed entry), moves and status changes
/// reach what a summary-based search reads of a coarse cell (its radii, entries and
/// availability, kept beside the slots): the counts stay those of an exhaustive search.
#[test]
fn removed_moved_and_paused_realtors_keep_the_counts() {
    use engine::RealtorStatus;
    let mut world = synchronized_world_spread(11, 4000, 0.6);
    let ids: Vec<engine::RealtorId> = world.index.iter().map(|(r, _)| r.id).collect();
    let mut rng = Rng(41);
    let mut kept = SearchScratch::default();
    let base = world.base.timestamp();
    let mut plans = Vec::new();
    for _ in 0..20 {
        let at = near(&mut rng, world.centre.0, world.centre.1, 0.2);
        let stops = vec![Stop {
            id: ListingId::new_random(),
            location: at,
        }];
        plans.push(short_window_plan(&mut rng, stops, base));
    }
    // Summaries built before the changes, kept across them.
    for plan in &plans {
        agree(&world.index, plan, &mut kept);
    }
    let mut unavailable = 0;
    for (i, id) in ids.iter().enumerate() {
        match i % 5 {
            0 => {
                world.index.remove(*id);
            }
            1 => {
                let (r, _) = world.index.get(*id).unwrap();
                let mut moved = r.clone();
                moved.home = near(&mut rng, world.centre.0, world.centre.1, 0.2);
                world.index.upsert(moved);
            }
            2 | 3 => {
                world
                    .index
                    .set_status(*id, RealtorStatus::Unavailable)
                    .unwrap();
                if i % 5 == 3 {
                    world
                        .index
                        .set_status(*id, RealtorStatus::Available)
                        .unwrap();
                } else {
                    unavailable += 1;
                }
            }
            _ => {}
        }
    }
    let mut counted_unavailable = 0;
    for plan in &plans {
        let d = agree(&world.index, plan, &mut kept);
        counted_unavailable += totals(&d).get("rejected:unavailable").copied().unwrap_or(0);
    }
    // The paused realtors were looked at, not skipped: the check above compared something.
    assert!(unavailable > 0 && counted_unavailable > 0);
}

/// A realtor at `home` working 08:00-20:00 every day in Lisbon.
fn lisbon_realtor(home: engine::Location, radius_km: f64) -> engine::Realtor {
    use engine::{Realtor, RealtorStatus, TimeZone, WorkingHours, WorkingInterval};
    let hours = (1..=7)
        .map(|d| WorkingInterval::new(d, 8 * 60, 20 * 60).unwrap())
        .collect();
    let zone = TimeZone::parse("Europe/Lisbon").unwrap();
    let id = engine::RealtorId::new_random();
    Realtor::new(
        id,
        home,
        radius_km,
        WorkingHours::new(zone, hours),
        RealtorStatus::Available,
    )
    .unwrap()
}

/// One realtor, alone in their area, and one booking on the morning of 7 December 2026.
fn lone_realtor() -> (RealtorIndex, engine::RealtorId, engine::Location, i64) {
    use engine::{Booking, Location};
    let realtor = lisbon_realtor(Location::new(38.72, -9.14).unwrap(), 20.0);
    let id = realtor.id;
    let mut index = RealtorIndex::default();
    index.upsert(realtor);
    let ten = 1_796_637_600; // 2026-12-07 10:00 UTC (Lisbon is on UTC in December)
    let stop = Location::new(38.73, -9.15).unwrap();
    let booking = Booking {
        tour_id: TourId::new_random(),
        start: ten,
        end: ten + 1800,
        first: stop,
        last: stop,
    };
    index.restore(id, booking).unwrap();
    // Around them, 400 realtors whose radius reaches nowhere, all busy all morning: enough
    // occupied cells that searches walk the rings (a near-empty index is scanned whole).
    let mut rng = Rng(5);
    for _ in 0..400 {
        let at = near(&mut rng, 38.75, -9.10, 0.15);
        let filler = lisbon_realtor(at, 0.1);
        let filler_id = filler.id;
        index.upsert(filler);
        let busy = Booking {
            tour_id: TourId::new_random(),
            start: ten - 7200,
            end: ten + 7200,
            first: at,
            last: at,
        };
        index.restore(filler_id, busy).unwrap();
    }
    (index, id, stop, ten)
}

fn one_stop(at: engine::Location, from: i64, to: i64) -> TourPlan {
    let window = TimeWindow::new(
        DateTime::from_timestamp(from, 0).unwrap(),
        DateTime::from_timestamp(to, 0).unwrap(),
    )
    .unwrap();
    let stop = Stop {
        id: ListingId::new_random(),
        location: at,
    };
    TourPlan::new(TourId::new_random(), &[stop], window, 30, vec![]).unwrap()
}

/// A summary built while the realtor was booked must learn of the release.
#[test]
fn released_time_reaches_the_summaries() {
    let (mut index, id, _, ten) = lone_realtor();
    // About 15 km away: past the rings searched one realtor at a time, where summaries decide.
    let elsewhere = engine::Location::new(38.80, -9.01).unwrap();
    let plan = one_stop(elsewhere, ten, ten + 1800);
    let mut kept = SearchScratch::default();
    let busy = agree(&index, &plan, &mut kept);
    assert_eq!(busy.choice, None);
    let lone = busy
        .explanation
        .candidates
        .iter()
        .find(|c| c.realtor_id == id);
    assert!(lone.is_none_or(|c| c.rejected == Some(engine::RejectReason::Overlap)));
    let booked = index.get(id).unwrap().1.bookings()[0].tour_id;
    index.release(id, booked).unwrap();
    let free = agree(&index, &plan, &mut kept);
    assert_eq!(
        free.choice.map(|c| (c.realtor_id, c.start)),
        Some((id, ten))
    );
}

/// A tour starting where a booking ends needs no travel from it: it may start the moment the
/// booking ends, which a summary (a minute of travel assumed) would deny.
#[test]
fn a_tour_at_a_booked_stop_may_follow_it_at_once() {
    let (index, id, stop, ten) = lone_realtor();
    let plan = one_stop(stop, ten + 1800, ten + 3600);
    let d = agree(&index, &plan, &mut SearchScratch::default());
    assert_eq!(
        d.choice.map(|c| (c.realtor_id, c.start)),
        Some((id, ten + 1800))
    );
}

/// A realtor joining an area whose summaries said "nobody free" is found.
#[test]
fn a_new_realtor_reaches_the_summaries() {
    let (mut index, _, _, ten) = lone_realtor();
    let elsewhere = engine::Location::new(38.80, -9.01).unwrap();
    let plan = one_stop(elsewhere, ten, ten + 1800);
    let mut kept = SearchScratch::default();
    assert_eq!(agree(&index, &plan, &mut kept).choice, None);
    let newcomer = lisbon_realtor(engine::Location::new(38.7201, -9.1401).unwrap(), 20.0);
    let newcomer_id = newcomer.id;
    index.upsert(newcomer);
    let found = agree(&index, &plan, &mut kept);
    assert_eq!(found.choice.map(|c| c.realtor_id), Some(newcomer_id));
}

/// A searcher keeps copies of what it read near each place (the realtors of the first rings);
/// every kind of change to the index, each on its own, reaches them: a kept searcher decides
/// and explains exactly as a fresh one, before and after each change.
#[test]
fn a_kept_searcher_sees_each_change_on_its_own() {
    use engine::RealtorStatus;
    let mut world = build_world(23, 300, 2);
    let mut rng = Rng(77);
    let plans: Vec<TourPlan> = (0..40)
        .map(|_| random_plan(&mut rng, &world, &[]))
        .collect();
    let mut kept = SearchScratch::default();
    let check = |index: &RealtorIndex, kept: &mut SearchScratch| {
        for plan in &plans {
            let fresh = index.search(plan, &Nearest);
            assert_eq!(index.search_with(plan, &Nearest, kept), fresh, "{plan:?}");
        }
    };
    check(&world.index, &mut kept);
    // The realtors nearest the tours, where the first rings look.
    let mut near_tours: Vec<(f64, engine::RealtorId)> = Vec::new();
    for (r, _) in world.index.iter() {
        let d = plans
            .iter()
            .map(|p| engine::geo::distance_km(&r.home, &p.stops[0].location))
            .fold(f64::INFINITY, f64::min);
        near_tours.push((d, r.id));
    }
    near_tours.sort_by(|a, b| a.0.total_cmp(&b.0));
    let ids: Vec<engine::RealtorId> = near_tours.iter().take(12).map(|&(_, id)| id).collect();
    for (i, id) in ids.iter().enumerate() {
        match i % 4 {
            0 => {
                let now = world.index.get(*id).unwrap().0.status;
                let flipped = if now == RealtorStatus::Available {
                    RealtorStatus::Unavailable
                } else {
                    RealtorStatus::Available
                };
                world.index.set_status(*id, flipped).unwrap();
            }
            1 => {
                world.index.remove(*id);
            }
            2 => {
                let mut moved = world.index.get(*id).unwrap().0.clone();
                moved.home = plans[i].stops[0].location;
                world.index.upsert(moved);
            }
            _ => {
                let mut newcomer = world.index.get(*id).unwrap().0.clone();
                newcomer.id = engine::RealtorId::new_random();
                newcomer.home = plans[i].stops[0].location;
                world.index.upsert(newcomer.clone());
                check(&world.index, &mut kept);
                // The newest realtor is the last entry: removing it moves nobody else.
                world.index.remove(newcomer.id);
            }
        }
        check(&world.index, &mut kept);
    }
}

/// A slot the whole city is booked in: the search reads the decision from the origin's cover
/// as soon as the whole index's summary shows it. It must count and list exactly as the
/// exhaustive walk does: from places searched before (the cover kept) and new ones, and after
/// realtors are paused, moved and removed (which drops the covers). In a city dense enough
/// that the fine rings hold more realtors than an explanation lists, one where the nearest
/// hundred reach beyond them, one where fewer than a hundred are candidates at all, and one
/// whose radii are so short that the walk stops inside the fine rings.
#[test]
fn booked_out_decided_from_the_cover_as_walked() {
    let dense = booked_out_as_walked(synchronized_world_spread(7, 1500, 0.1));
    // The covers decided these (the walk would have gone on), and paused realtors were
    // counted through them.
    assert!(dense.0 * 4 > dense.1, "{} of {}", dense.0, dense.1);
    assert!(dense.2 > 0);
    booked_out_as_walked(synchronized_world_spread(8, 600, 0.2));
    booked_out_as_walked(synchronized_world_spread(9, 90, 0.1));
    booked_out_as_walked(worlds::synchronized_world_radii(10, 1500, 0.05, (1.0, 2.2)));
    booked_out_as_walked(worlds::synchronized_world_radii(11, 3000, 0.05, (0.6, 1.5)));
}

/// Searches tours nobody can take at places around `world`'s centre, three rounds with
/// changes to the index between them, each against the exhaustive walk: `(searches that
/// walked fewer rings than the exhaustive one, searches, realtors counted unavailable)`.
fn booked_out_as_walked(mut world: worlds::World) -> (usize, usize, usize) {
    use engine::RealtorStatus;
    let ids: Vec<engine::RealtorId> = world.index.iter().map(|(r, _)| r.id).collect();
    let mut rng = Rng(99);
    let mut kept = SearchScratch::default();
    // One that keeps no covers walks on, as a searcher does where its covers are full.
    let mut walking = SearchScratch::without_covers();
    let base = world.base.timestamp();
    let places: Vec<engine::Location> = (0..8)
        .map(|i| {
            near(
                &mut rng,
                world.centre.0,
                world.centre.1,
                [0.02, 0.06][i % 2],
            )
        })
        .collect();
    let (mut searches, mut walked_less, mut unavailable) = (0, 0, 0);
    for round in 0..3usize {
        for (i, at) in places.iter().enumerate() {
            // 40 minutes from the start of a slot: everyone's booking starts within its first
            // 25 minutes and lasts at least 30, so nobody has 30 free minutes in it.
            let from = base + 8 * 3600 + ((i + round) % 8) as i64 * 5400;
            let plan = one_stop(*at, from, from + 40 * 60);
            let fast = agree(&world.index, &plan, &mut kept);
            agree(&world.index, &plan, &mut walking);
            let slow = world
                .index
                .search_with(&plan, &Nearest, &mut SearchScratch::exhaustive());
            assert!(fast.choice.is_none(), "{plan:?}");
            searches += 1;
            if fast.explanation.rings_searched < slow.explanation.rings_searched {
                walked_less += 1;
            }
            unavailable += totals(&fast)
                .get("rejected:unavailable")
                .copied()
                .unwrap_or(0);
        }
        // Change the index between rounds: every 7th realtor paused, every 11th moved, every
        // 13th removed.
        for (j, id) in ids.iter().enumerate().skip(round) {
            if j % 13 == 0 {
                world.index.remove(*id);
            } else if j % 11 == 0 {
                let (r, _) = world.index.get(*id).unwrap();
                let mut moved = r.clone();
                moved.home = near(&mut rng, world.centre.0, world.centre.1, 0.06);
                world.index.upsert(moved);
            } else if j % 7 == 0 {
                world
                    .index
                    .set_status(*id, RealtorStatus::Unavailable)
                    .unwrap();
            }
        }
    }
    (walked_less, searches, unavailable)
}
