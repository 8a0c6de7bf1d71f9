//! Differential tests: the engine's matching against a brute-force reference written here,
//! independently of the engine's calendar, sweep and ring search (CONTRACT 5.3, 5.4).
//!
//! The reference scans every realtor and every candidate start on the 5-minute grid; it shares
//! only the contract's primitives with the engine (haversine distance and travel minutes).

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, Offset, TimeZone as _, Utc};
use chrono_tz::Tz;
use engine::geo::{distance_km, travel_minutes};
use engine::{
    Balanced, Booking, Decision, Location, Nearest, Outcome, Policy, Realtor, RealtorId,
    RealtorIndex, RealtorStatus, SearchScratch, Stop, TimeWindow, TourId, TourPlan,
};
use h3o::Resolution;
use proptest::prelude::*;

mod worlds;
use worlds::{build_world, near, random_plan, random_stops, synchronized_world, Rng};

// ---------------------------------------------------------------------------------------------
// The reference.

/// Local wall time to UTC: earlier instant when repeated, shifted forward by the gap when skipped.
fn ref_local_to_utc(tz: Tz, date: NaiveDate, minute: u32) -> i64 {
    let naive = date.and_hms_opt(0, 0, 0).unwrap() + chrono::Duration::minutes(i64::from(minute));
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.timestamp(),
        LocalResult::Ambiguous(a, b) => a.timestamp().min(b.timestamp()),
        LocalResult::None => {
            let before = tz
                .offset_from_utc_datetime(&(naive - chrono::Duration::days(2)))
                .fix()
                .local_minus_utc();
            naive.and_utc().timestamp() - i64::from(before)
        }
    }
}

fn ref_working_intervals(r: &Realtor, from: i64, to: i64) -> Vec<(i64, i64)> {
    let tz: Tz = r.hours.zone().name().parse().unwrap();
    let mut out = Vec::new();
    let first = DateTime::from_timestamp(from, 0)
        .unwrap()
        .with_timezone(&tz)
        .date_naive()
        - chrono::Days::new(2);
    let last = DateTime::from_timestamp(to, 0)
        .unwrap()
        .with_timezone(&tz)
        .date_naive()
        + chrono::Days::new(2);
    let mut date = first;
    while date <= last {
        let wd = date.weekday().number_from_monday() as u8;
        for i in r.hours.intervals().iter().filter(|i| i.weekday() == wd) {
            out.push((
                ref_local_to_utc(tz, date, u32::from(i.start_minute())),
                ref_local_to_utc(tz, date, u32::from(i.end_minute())),
            ));
        }
        date = date.succ_opt().unwrap();
    }
    out
}

fn ref_conflicts(bookings: &[Booking], plan: &TourPlan, s: i64) -> bool {
    let e = s + plan.duration_seconds;
    bookings.iter().any(|u| {
        let after = u.end + travel_minutes(&u.last, plan.first()) * 60 <= s;
        let before = e + travel_minutes(plan.last(), &u.first) * 60 <= u.start;
        !(after || before)
    })
}

/// Earliest feasible start by trying every candidate start.
fn ref_earliest(r: &Realtor, bookings: &[Booking], plan: &TourPlan) -> Option<i64> {
    let ws = plan.window.start().timestamp()
        + i64::from(plan.window.start().timestamp_subsec_nanos() > 0);
    let we = plan.window.end().timestamp();
    let d = plan.duration_seconds;
    let hours = ref_working_intervals(r, ws, we);
    let mut s = ws;
    while s + d <= we {
        let in_hours = hours.iter().any(|&(a, b)| a <= s && s + d <= b);
        if in_hours && !ref_conflicts(bookings, plan, s) {
            return Some(s);
        }
        s = if s % 300 == 0 {
            s + 300
        } else {
            s + (300 - s.rem_euclid(300))
        };
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct RefChoice {
    id: RealtorId,
    distance: f64,
    start: i64,
    load: usize,
}

fn ref_day_load(r: &Realtor, bookings: &[Booking], s: i64) -> usize {
    let tz: Tz = r.hours.zone().name().parse().unwrap();
    let date = DateTime::from_timestamp(s, 0)
        .unwrap()
        .with_timezone(&tz)
        .date_naive();
    let from = ref_local_to_utc(tz, date, 0);
    let to = ref_local_to_utc(tz, date, 1440);
    bookings
        .iter()
        .filter(|b| from <= b.start && b.start < to)
        .count()
}

fn ref_feasible(index: &RealtorIndex, plan: &TourPlan) -> Vec<RefChoice> {
    let mut out = Vec::new();
    for (r, cal) in index.iter() {
        let distance = distance_km(&r.home, plan.first());
        if r.status != RealtorStatus::Available
            || plan.declined.contains(&r.id)
            || distance > r.service_radius_km()
        {
            continue;
        }
        if let Some(start) = ref_earliest(r, cal.bookings(), plan) {
            out.push(RefChoice {
                id: r.id,
                distance,
                start,
                load: ref_day_load(r, cal.bookings(), start),
            });
        }
    }
    out
}

fn ref_nearest(all: &[RefChoice]) -> Option<RefChoice> {
    all.iter().copied().min_by(|a, b| {
        a.distance
            .total_cmp(&b.distance)
            .then(a.start.cmp(&b.start))
            .then(a.load.cmp(&b.load))
            .then(a.id.cmp(&b.id))
    })
}

fn ref_balanced(all: &[RefChoice], slack: f64) -> Option<RefChoice> {
    let nearest = all.iter().map(|c| c.distance).min_by(f64::total_cmp)?;
    all.iter()
        .copied()
        .filter(|c| c.distance <= nearest + slack)
        .min_by(|a, b| {
            a.load
                .cmp(&b.load)
                .then(a.distance.total_cmp(&b.distance))
                .then(a.start.cmp(&b.start))
                .then(a.id.cmp(&b.id))
        })
}

thread_local! {
    static KEPT: std::cell::RefCell<SearchScratch> = std::cell::RefCell::new(SearchScratch::default());
}

fn check_decision(
    index: &RealtorIndex,
    plan: &TourPlan,
    policy: &dyn Policy,
    expected: Option<RefChoice>,
) {
    let decision = index.search(plan, policy);
    // A searcher's kept buffers (rings, working hours in UTC) carry over from one search to
    // the next, here across every world of the test thread: they never change a decision.
    KEPT.with_borrow_mut(|kept| {
        assert_eq!(
            index.search_with(plan, policy, kept),
            decision,
            "kept scratch differs"
        );
    });
    let got = decision.choice.map(|c| (c.realtor_id, c.start));
    let want = expected.map(|c| (c.id, c.start));
    assert_eq!(got, want, "policy {} on tour {:?}", policy.name(), plan);
    // The explanation names the winner and reports it chosen.
    if let Some(c) = decision.choice {
        assert_eq!(decision.explanation.chosen, Some(c.realtor_id));
        let report = decision
            .explanation
            .candidates
            .iter()
            .find(|r| r.realtor_id == c.realtor_id)
            .unwrap();
        assert_eq!(report.outcome, Outcome::Chosen);
        assert_eq!(report.earliest_start.unwrap().timestamp(), c.start);
    } else {
        assert!(decision.explanation.reason.is_some());
    }
    // Every listed candidate is truthful: rejected ones cannot take the tour, feasible ones
    // can, from the start reported.
    for c in &decision.explanation.candidates {
        let (r, cal) = index.get(c.realtor_id).unwrap();
        let in_profile = r.status == RealtorStatus::Available
            && !plan.declined.contains(&r.id)
            && distance_km(&r.home, plan.first()) <= r.service_radius_km();
        let earliest = in_profile
            .then(|| ref_earliest(r, cal.bookings(), plan))
            .flatten();
        match c.outcome {
            Outcome::Rejected => assert_eq!(earliest, None, "{c:?} is feasible"),
            Outcome::Chosen | Outcome::Lost => {
                assert_eq!(earliest, c.earliest_start.map(|t| t.timestamp()), "{c:?}")
            }
            Outcome::NotEvaluated => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The engine picks exactly what a full scan picks, for both policies.
    #[test]
    fn matching_equals_full_scan(seed in any::<u64>(), size in 0usize..4, bookings in 0usize..9) {
        let realtors = [1, 20, 300, 2000][size];
        let world = build_world(seed, realtors, bookings);
        let ids: Vec<RealtorId> = world.index.iter().map(|(r, _)| r.id).collect();
        let mut rng = Rng(seed.rotate_left(17) | 1);
        for _ in 0..6 {
            let plan = random_plan(&mut rng, &world, &ids);
            let all = ref_feasible(&world.index, &plan);
            check_decision(&world.index, &plan, &Nearest, ref_nearest(&all));
            let balanced = Balanced { slack_km: 3.0 };
            check_decision(&world.index, &plan, &balanced, ref_balanced(&all, 3.0));
        }
    }

    /// Two shards (west and east of the centre): the one holding the nearest feasible realtor
    /// known so far is searched in full, the other is told that distance and stops there.
    /// Merged, the choice is exactly what a full scan of all realtors picks, for both policies
    /// and in both orders (what the tour actor does ring by ring).
    #[test]
    fn shards_told_the_best_so_far_decide_as_one_index(seed in any::<u64>(), bookings in 0usize..9) {
        let world = build_world(seed, 300, bookings);
        let mut west = RealtorIndex::new(Resolution::Eight);
        let mut east = RealtorIndex::new(Resolution::Eight);
        for (r, calendar) in world.index.iter() {
            let part = if r.home.lng() < world.centre.1 { &mut west } else { &mut east };
            part.upsert(r.clone());
            for b in calendar.bookings() {
                part.restore(r.id, *b).unwrap();
            }
        }
        let ids: Vec<RealtorId> = world.index.iter().map(|(r, _)| r.id).collect();
        let mut rng = Rng(seed.rotate_left(29) | 1);
        let balanced = Balanced { slack_km: 3.0 };
        for _ in 0..6 {
            let plan = random_plan(&mut rng, &world, &ids);
            let all = ref_feasible(&world.index, &plan);
            let cases: [(&dyn Policy, Option<RefChoice>); 2] =
                [(&Nearest, ref_nearest(&all)), (&balanced, ref_balanced(&all, 3.0))];
            for (policy, expected) in cases {
                for (first, second) in [(&west, &east), (&east, &west)] {
                    let a = first.search(&plan, policy);
                    let known = a.feasible.iter().map(|f| f.distance_km).min_by(f64::total_cmp);
                    let b = second.search_beating(&plan, policy, known, &mut SearchScratch::default());
                    let merged = Decision::merge(policy, vec![a, b]);
                    prop_assert_eq!(
                        merged.choice.map(|c| (c.realtor_id, c.start)),
                        expected.map(|c| (c.id, c.start)),
                        "policy {}", policy.name()
                    );
                }
            }
        }
    }

    /// Whatever is reserved, in whatever order, no calendar ever breaks CONTRACT 5.3.
    #[test]
    fn reservations_never_break_the_rules(seed in any::<u64>()) {
        let mut world = build_world(seed, 30, 0);
        let mut rng = Rng(seed | 3);
        let ids: Vec<RealtorId> = world.index.iter().map(|(r, _)| r.id).collect();
        for _ in 0..300 {
            let plan = random_plan(&mut rng, &world, &[]);
            if rng.below(2) == 0 {
                // The normal path: search, then reserve the choice.
                if let Some(c) = world.index.search(&plan, &Nearest).choice {
                    world.index.reserve(c.realtor_id, &plan, c.start).unwrap();
                }
            } else {
                // A hostile path: reserve arbitrary starts for arbitrary realtors.
                let id = ids[rng.below(ids.len() as u64) as usize];
                let start = plan.window.start().timestamp() + rng.below(48) as i64 * 300;
                let _ = world.index.reserve(id, &plan, start);
            }
            if rng.below(10) == 0 {
                // Cancellations free time that others may then take.
                let id = ids[rng.below(ids.len() as u64) as usize];
                if let Some(b) = world.index.get(id).and_then(|(_, c)| c.bookings().first().copied()) {
                    world.index.release(id, b.tour_id);
                }
            }
        }
        for (_, cal) in world.index.iter() {
            let bs = cal.bookings();
            for (i, a) in bs.iter().enumerate() {
                for b in &bs[i + 1..] {
                    let a_then_b = a.end + travel_minutes(&a.last, &b.first) * 60 <= b.start;
                    let b_then_a = b.end + travel_minutes(&b.last, &a.first) * 60 <= a.start;
                    prop_assert!(a_then_b || b_then_a, "{a:?} and {b:?} break 5.3");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Short windows in a synchronized city: mostly "nobody", which must still be exact.
    #[test]
    fn unassignable_proofs_equal_full_scan(seed in any::<u64>()) {
        let world = synchronized_world(seed, 1500);
        let mut rng = Rng(seed.rotate_left(9) | 1);
        for _ in 0..6 {
            // One to three listings a few hundred metres apart, somewhere in the metro.
            let at = near(&mut rng, world.centre.0, world.centre.1, 0.2);
            let stops = if rng.below(3) == 0 {
                random_stops(&mut rng, at.lat(), at.lng(), 0.003)
            } else {
                vec![Stop { id: engine::ListingId::new_random(), location: at }]
            };
            let start = world.base.timestamp() + 7 * 3600 + rng.below(13 * 12) as i64 * 300;
            let window = TimeWindow::new(
                DateTime::from_timestamp(start, 0).unwrap(),
                DateTime::from_timestamp(start + 3600 + rng.below(3) as i64 * 1800, 0).unwrap(),
            )
            .unwrap();
            let plan = TourPlan::new(TourId::new_random(), &stops, window, 30, vec![]).unwrap();
            let all = ref_feasible(&world.index, &plan);
            check_decision(&world.index, &plan, &Nearest, ref_nearest(&all));
        }
    }

    /// The relaxed calendar (travel buffers replaced by lower bounds) never says "no room"
    /// where a brute-force scan finds a start.
    #[test]
    fn relaxed_calendar_never_hides_a_start(seed in any::<u64>()) {
        let world = build_world(seed, 20, 8);
        let mut rng = Rng(seed.rotate_left(5) | 1);
        for _ in 0..20 {
            let plan = random_plan(&mut rng, &world, &[]);
            let (ws, we) = plan.window.seconds();
            let d = plan.duration_seconds;
            for (r, cal) in world.index.iter() {
                let want = ref_earliest(r, cal.bookings(), &plan);
                let near_first = distance_km(&r.home, plan.first()) - cal.reach_km();
                let near_last = distance_km(&r.home, plan.last()) - cal.reach_km();
                let at_least = |km: f64| {
                    if km <= 1e-6 { 0 } else { engine::geo::travel_minutes_for_km(km - 1e-6) * 60 }
                };
                let mut forbidden = Vec::new();
                cal.forbidden_starts_at_least(d, at_least(near_first), at_least(near_last), ws, we - d, &mut forbidden);
                let mut intervals = Vec::new();
                r.hours.utc_intervals(ws, we, &mut intervals, &mut Default::default());
                let relaxed = engine::feasibility::first_free(&intervals, ws, we, d, &forbidden);
                if let Some(want) = want {
                    prop_assert!(engine::feasibility::hours_fit(&intervals, ws, we, d));
                    prop_assert!(relaxed.is_some_and(|s| s <= want), "{relaxed:?} vs {want}");
                }
                // The one-pass version the search uses gives the same start.
                let one_pass = cal.free_start_at_least(
                    d, at_least(near_first), at_least(near_last), (ws, we), &intervals,
                );
                prop_assert_eq!(one_pass, relaxed);
            }
        }
    }
}

#[test]
fn removed_moved_and_paused_realtors_leave_no_trace() {
    // Removal swaps entries around, a move changes cells at both resolutions, a status change
    // updates the cells' copies: searches must still equal a full scan.
    let mut world = build_world(5, 600, 4);
    let ids: Vec<RealtorId> = world.index.iter().map(|(r, _)| r.id).collect();
    let mut rng = Rng(99);
    for (i, id) in ids.iter().enumerate() {
        match i % 3 {
            0 => {
                world.index.remove(*id);
            }
            1 => {
                let (r, _) = world.index.get(*id).unwrap();
                let mut moved = r.clone();
                moved.home = near(&mut rng, world.centre.0, world.centre.1, 0.4);
                world.index.upsert(moved);
            }
            _ => {
                // Status lives in the cells' copies too: off for some, off and on for others.
                world
                    .index
                    .set_status(*id, RealtorStatus::Unavailable)
                    .unwrap();
                if i % 2 == 0 {
                    world
                        .index
                        .set_status(*id, RealtorStatus::Available)
                        .unwrap();
                }
            }
        }
    }
    for _ in 0..30 {
        let plan = random_plan(&mut rng, &world, &[]);
        let all = ref_feasible(&world.index, &plan);
        check_decision(&world.index, &plan, &Nearest, ref_nearest(&all));
    }
}

#[test]
fn zero_length_and_fourteen_day_windows() {
    let t = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
    assert!(TimeWindow::new(t, t).is_err());
    let world = build_world(7, 50, 3);
    let window = TimeWindow::new(t, t + chrono::Duration::days(14)).unwrap();
    let stops = vec![Stop {
        id: engine::ListingId::new_random(),
        location: Location::new(world.centre.0, world.centre.1).unwrap(),
    }];
    let plan = TourPlan::new(TourId::new_random(), &stops, window, 30, vec![]).unwrap();
    let all = ref_feasible(&world.index, &plan);
    check_decision(&world.index, &plan, &Nearest, ref_nearest(&all));
}

#[test]
fn window_shorter_than_the_tour_is_explained() {
    let world = build_world(11, 20, 0);
    let t = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
    let window = TimeWindow::new(t, t + chrono::Duration::minutes(20)).unwrap();
    let stops = vec![Stop {
        id: engine::ListingId::new_random(),
        location: Location::new(world.centre.0, world.centre.1).unwrap(),
    }];
    let plan = TourPlan::new(TourId::new_random(), &stops, window, 30, vec![]).unwrap();
    let d = world.index.search(&plan, &Nearest);
    assert!(d.choice.is_none());
    assert_eq!(d.explanation.reason.as_deref(), Some("window_too_short"));
}

/// A searcher keeps each set of working hours converted to UTC over a span of days around a
/// window: tours weeks and months apart (across daylight-saving changes), in any order, are
/// decided as by a fresh searcher and as a full scan decides them.
#[test]
fn kept_hours_follow_windows_months_apart() {
    let world = build_world(11, 300, 4);
    let mut rng = Rng(23);
    for _ in 0..8 {
        let plan = random_plan(&mut rng, &world, &[]);
        for days in [0i64, 120, 30, 270, 9, 60, -45] {
            let (from, to) = plan.window.seconds();
            let window = TimeWindow::new(
                DateTime::from_timestamp(from + days * 86_400, 0).unwrap(),
                DateTime::from_timestamp(to + days * 86_400, 0).unwrap(),
            )
            .unwrap();
            let shifted =
                TourPlan::new(TourId::new_random(), &plan.stops, window, 30, vec![]).unwrap();
            let all = ref_feasible(&world.index, &shifted);
            check_decision(&world.index, &shifted, &Nearest, ref_nearest(&all));
        }
    }
}
