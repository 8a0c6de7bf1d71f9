//! `matching`: exact nearest-realtor decisions per second on one core (issue: engine core).
//!
//! `cargo bench -p benches --bench matching` — criterion prints the throughput in elements/s,
//! one element being one decision (search with explanation). `nearest` makes no reservation;
//! `nearest_booking` books every assignable tour and releases the booking made 64 tours
//! earlier, so calendars (and whatever a searcher keeps about them) keep changing as in
//! service.

use std::collections::VecDeque;

use benches::City;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use engine::{Nearest, SearchScratch};
use h3o::Resolution;

fn decisions(c: &mut Criterion) {
    let mut group = c.benchmark_group("matching");
    group.throughput(Throughput::Elements(1));
    for (realtors, days) in [(10_000usize, 7i64), (100_000, 2)] {
        let mut city = City::generate(42, realtors, 8, days, Resolution::Eight);
        let tours = city.one_listing_tours(4096);
        let assigned = tours
            .iter()
            .filter(|t| city.index.search(t, &Nearest).choice.is_some())
            .count();
        eprintln!(
            "{realtors} realtors: {assigned}/{} sample tours assignable",
            tours.len()
        );
        let mut scratch = SearchScratch::default();
        let mut i = 0;
        group.bench_with_input(BenchmarkId::new("nearest", realtors), &realtors, |b, _| {
            b.iter(|| {
                i = (i + 1) % tours.len();
                city.index.search_with(&tours[i], &Nearest, &mut scratch)
            });
        });
        if realtors > 10_000 {
            continue;
        }
        let mut booked = VecDeque::new();
        group.bench_with_input(
            BenchmarkId::new("nearest_booking", realtors),
            &realtors,
            |b, _| {
                b.iter(|| {
                    i = (i + 1) % tours.len();
                    let tour = &tours[i];
                    let decision = city.index.search_with(tour, &Nearest, &mut scratch);
                    if let Some(c) = decision.choice {
                        if city.index.reserve(c.realtor_id, tour, c.start).is_ok() {
                            booked.push_back((c.realtor_id, tour.tour_id));
                        }
                    }
                    if booked.len() > 64 {
                        if let Some((realtor, tour)) = booked.pop_front() {
                            city.index.release(realtor, tour);
                        }
                    }
                    decision
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
