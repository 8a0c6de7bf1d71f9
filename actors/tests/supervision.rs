//! The supervision tree: a single failure is restarted and the run finishes healthy; a child
//! that keeps failing makes its supervisor escalate to the root, and the runtime reports
//! itself unhealthy while the other subtrees keep serving. In-memory store, real actors,
//! polling with deadlines.

#[allow(
    dead_code,
    reason = "each test binary uses a different part of the support module"
)]
mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::bus::InProcessBus;
use actors::memstore::MemoryStore;
use actors::payments::PaymentSucceeded;
use actors::runtime::{Runtime, RuntimeConfig, SupervisionConfig};
use actors::store::Store;
use engine::{CustomerId, RealtorId, TourId, TourStatus};
use support::{at, lisbon, one_stop_payment, realtor};
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(60);

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn config(supervision: SupervisionConfig) -> RuntimeConfig {
    RuntimeConfig {
        namespace: format!("t{}/", Uuid::new_v4().simple()),
        supervision,
        ..RuntimeConfig::default()
    }
}

/// A store with `n` realtors around Lisbon.
async fn city(n: usize) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    let realtors: Vec<_> = (0..n)
        .map(|i| {
            let spread = (i as f64 - n as f64 / 2.0) * 0.004;
            realtor(RealtorId(Uuid::new_v4()), lisbon(spread))
        })
        .collect();
    store.upsert_realtor_profiles(&realtors).await.unwrap();
    store
}

fn payment(i: usize) -> PaymentSucceeded {
    let start = at(9, 0) + chrono::Duration::minutes(5 * (i as i64 % 90));
    one_stop_payment(
        lisbon((i as f64 % 17.0) * 0.002 - 0.016),
        start,
        start + chrono::Duration::minutes(90),
    )
}

async fn submit(rt: &Runtime, n: usize) -> Vec<TourId> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(rt.submit_payment(Uuid::new_v4(), payment(i)).await.unwrap());
    }
    ids
}

/// Every tour assigned or unassignable, and nothing left to match.
async fn settled(rt: &Runtime, store: &MemoryStore, n: usize) {
    eventually("every tour to settle", || async {
        let tours = store.tours();
        (tours.len() == n
            && rt.matching_in_flight() == 0
            && tours
                .iter()
                .all(|t| matches!(t.status, TourStatus::Assigned | TourStatus::Unassignable)))
        .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_panic_in_a_shard_or_a_tour_is_restarted_and_the_run_finishes() {
    let store = city(10).await;
    let rt = Runtime::start(
        store.clone(),
        Arc::new(InProcessBus::new()),
        config(SupervisionConfig::default()),
    )
    .await
    .unwrap();
    let ids = submit(&rt, 150).await;
    let shard = lisbon(0.0).cell(RuntimeConfig::default().shard_resolution);
    assert!(rt.crash_shard(shard));
    let crashed_tour = ids
        .iter()
        .rev()
        .copied()
        .find(|id| rt.crash_tour(*id))
        .expect("a running tour actor");
    submit(&rt, 50).await;
    eventually("both restarts", || async {
        (rt.restarts() >= 2).then_some(())
    })
    .await;
    settled(&rt, &store, 200).await;
    let after = rt.tour(crashed_tour).await.unwrap().unwrap();
    assert!(matches!(
        after.status,
        TourStatus::Assigned | TourStatus::Unassignable
    ));
    assert!(rt.healthy(), "{:?}", rt.escalations());
    assert!(rt.escalations().is_empty());
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_keeps_failing_escalates_to_the_root() {
    let store = city(2).await;
    let supervision = SupervisionConfig {
        max_restarts: 3,
        within: Duration::from_secs(60),
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
    };
    let rt = Runtime::start(
        store.clone(),
        Arc::new(InProcessBus::new()),
        config(supervision),
    )
    .await
    .unwrap();
    let tour = submit(&rt, 1).await[0];
    settled(&rt, &store, 1).await;
    assert!(rt.healthy());

    // The tour actor panics every time it runs: restarted 3 times, then the tours'
    // supervisor gives up and escalates.
    let r = &rt;
    eventually("the tours' supervisor to escalate", || async move {
        if !r.healthy() {
            return Some(());
        }
        r.crash_tour(tour);
        None
    })
    .await;
    assert_eq!(rt.restarts(), 3);
    let escalations = rt.escalations();
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert!(
        escalations[0].contains("supervisor:tours") && escalations[0].contains("restart limit"),
        "{escalations:?}"
    );
    // The other subtrees still serve: shards answer, carts start.
    assert!(!rt.shard_bookings().await.unwrap().is_empty());
    let cart = rt.cart(CustomerId(Uuid::new_v4())).await.unwrap();
    assert!(cart.items.is_empty());
    assert!(!rt.healthy());
    rt.shutdown().await;
}
