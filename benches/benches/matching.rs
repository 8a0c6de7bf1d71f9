//! `matching`: exact nearest-realtor decisions per second on one core (issue: engine core).
//!
//! `cargo bench -p benches --bench matching` — criterion prints the throughput in elements/s,
//! one element being one decision (search with explanation; no reservation).

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
    }
    group.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
