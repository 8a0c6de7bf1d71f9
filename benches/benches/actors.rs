//! `actors`: tours per second through the actor runtime (in-memory store, in-process bus)
//! against the plain engine (search + reserve on one `RealtorIndex`), on the same city and the
//! same tours. The ratio of the two is the actor overhead.
//!
//! `cargo bench -p benches --bench actors`

use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::bus::InProcessBus;
use actors::memstore::MemoryStore;
use actors::payments::PaymentSucceeded;
use actors::runtime::{Runtime, RuntimeConfig};
use actors::store::Store;
use benches::City;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use engine::{CustomerId, Nearest, PaymentId, Realtor, RealtorIndex, TourPlan, TourStatus};
use h3o::Resolution;
use uuid::Uuid;

const TOURS: usize = 1000;

fn payments(plans: &[TourPlan]) -> Vec<PaymentSucceeded> {
    plans
        .iter()
        .map(|p| PaymentSucceeded {
            payment_id: PaymentId(Uuid::new_v4()),
            customer_id: CustomerId(Uuid::new_v4()),
            amount_cents: 5000,
            currency: "USD".into(),
            listings: p.stops.clone(),
            window: p.window,
        })
        .collect()
}

/// Submits every payment at once and returns the time until all are matched.
async fn through_actors(realtors: &[Realtor], plans: &[TourPlan]) -> Duration {
    let store = Arc::new(MemoryStore::new());
    let _ = store.upsert_realtor_profiles(realtors).await;
    let config = RuntimeConfig {
        namespace: format!("bench{}/", Uuid::new_v4().simple()),
        ..RuntimeConfig::default()
    };
    let Ok(rt) = Runtime::start(store.clone(), Arc::new(InProcessBus::new()), config).await else {
        return Duration::MAX;
    };
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for p in payments(plans) {
        let rt = rt.clone();
        tasks.spawn(async move { rt.submit_payment(Uuid::new_v4(), p).await });
    }
    while tasks.join_next().await.is_some() {}
    loop {
        let pending = store
            .tours()
            .iter()
            .any(|t| t.status == TourStatus::Pending);
        if rt.matching_in_flight() == 0 && !pending {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = began.elapsed();
    rt.shutdown().await;
    took
}

fn engine_alone(index: &RealtorIndex, plans: &[TourPlan]) -> usize {
    let mut index = index.clone();
    let mut assigned = 0;
    for plan in plans {
        if let Some(c) = index.search(plan, &Nearest).choice {
            if index.reserve(c.realtor_id, plan, c.start).is_ok() {
                assigned += 1;
            }
        }
    }
    assigned
}

fn tours_per_second(c: &mut Criterion) {
    let mut city = City::generate(42, 2_000, 0, 2, Resolution::Eight);
    let plans = city.one_listing_tours(TOURS);
    let realtors: Vec<Realtor> = city.index.iter().map(|(r, _)| r.clone()).collect();
    let mut index = RealtorIndex::new(Resolution::Eight);
    for r in &realtors {
        index.upsert(r.clone());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));

    let mut group = c.benchmark_group("actors");
    group.throughput(Throughput::Elements(plans.len() as u64));
    group.sample_size(10);
    group.bench_with_input(BenchmarkId::new("engine", TOURS), &plans, |b, plans| {
        b.iter(|| engine_alone(&index, plans));
    });
    group.bench_with_input(BenchmarkId::new("actors", TOURS), &plans, |b, plans| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| runtime.block_on(through_actors(&realtors, plans)))
                .sum()
        });
    });
    group.finish();
}

criterion_group!(benches, tours_per_second);
criterion_main!(benches);
