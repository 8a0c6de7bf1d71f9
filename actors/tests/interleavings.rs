//! Property (issue #11): the tour state machine under random interleavings of what can happen to
//! tours, through the real runtime (actors, store on SQLite, in-process bus). Payments arrive
//! twice; realtor, customer and admin commands race each other in concurrent batches and arrive
//! in any order; cancels come after completion. Whatever happens: each payment has one tour,
//! a command answers `Ok` only with the status it asked for and otherwise a typed refusal, every
//! tour's history is a path of legal transitions (CONTRACT 5.2) that never leaves a terminal
//! status, nothing stays pending, and no realtor holds two overlapping active tours.

#[allow(
    dead_code,
    reason = "each test binary uses a different part of the support module"
)]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::bus::InProcessBus;
use actors::payments::PaymentSucceeded;
use actors::runtime::{Runtime, RuntimeConfig, RuntimeError, TokioClock};
use actors::store::{Store, TourRecord};
use engine::{RealtorId, TourId, TourStatus, Transition};
use migrations::{Expr, ExprTrait, Order, Query};
use proptest::prelude::*;
use sea_orm::ConnectionTrait;
use support::{at, insert_users, lisbon, one_stop_payment, realtor, Backend, TestDb};
use uuid::Uuid;

/// What can happen to tour number `.0` (modulo the tours of the case).
#[derive(Debug, Clone, Copy)]
enum Op {
    /// Its payment event again (a new event id).
    Pay(usize),
    Accept(usize),
    Decline(usize),
    Start(usize),
    Complete(usize),
    Cancel(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let tour = 0usize..8;
    prop_oneof![
        tour.clone().prop_map(Op::Pay),
        tour.clone().prop_map(Op::Accept),
        tour.clone().prop_map(Op::Decline),
        tour.clone().prop_map(Op::Start),
        tour.clone().prop_map(Op::Complete),
        tour.prop_map(Op::Cancel),
    ]
}

const ALL_TRANSITIONS: [Transition; 9] = [
    Transition::Assign,
    Transition::MarkUnassignable,
    Transition::Retry,
    Transition::Accept,
    Transition::Decline,
    Transition::Start,
    Transition::Complete,
    Transition::Reschedule,
    Transition::Cancel,
];

/// Whether some legal transition leads from `from` to `to`.
fn legal_step(from: TourStatus, to: TourStatus) -> bool {
    ALL_TRANSITIONS
        .iter()
        .any(|t| from.apply(*t).is_ok_and(|next| next == to))
}

/// Payments of 1-listing tours near Lisbon in overlapping windows of the support day, so that
/// two realtors cannot take them all and declines move tours between them.
fn payments(count: usize) -> Vec<PaymentSucceeded> {
    (0..count)
        .map(|i| {
            let from = at(9, 0) + chrono::Duration::minutes(30 * i64::try_from(i).unwrap());
            one_stop_payment(
                lisbon(0.002 * f64::from(u8::try_from(i).unwrap())),
                from,
                from + chrono::Duration::minutes(90),
            )
        })
        .collect()
}

/// Waits (with a deadline) until nothing is pending or being matched.
async fn settle(rt: &Runtime, db: &TestDb) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let select = Query::select()
            .expr_as(Expr::cust("COUNT(*)"), "n")
            .from("tours")
            .and_where(Expr::col("status").eq("pending"))
            .to_owned();
        let row = db.db().query_one(&select).await.unwrap().unwrap();
        let pending: i64 = row.try_get("", "n").unwrap();
        if pending == 0 && rt.matching_in_flight() == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not settled after 60 s: {pending} pending, {} matching in flight",
            rt.matching_in_flight()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs one op; checks what it answered.
async fn run(rt: &Runtime, pays: &[PaymentSucceeded], tours: &[TourId], op: Op) {
    let n = tours.len();
    let (tour, want, result) = match op {
        Op::Pay(i) => {
            let again = rt
                .submit_payment(Uuid::new_v4(), pays[i % n].clone())
                .await
                .expect("a repeated payment is absorbed");
            assert_eq!(again, tours[i % n], "a repeated payment made another tour");
            return;
        }
        Op::Accept(i) => (
            tours[i % n],
            Some(TourStatus::Accepted),
            rt.accept(tours[i % n]).await,
        ),
        Op::Decline(i) => (tours[i % n], None, rt.decline(tours[i % n]).await),
        Op::Start(i) => (
            tours[i % n],
            Some(TourStatus::InProgress),
            rt.start_tour(tours[i % n]).await,
        ),
        Op::Complete(i) => (
            tours[i % n],
            Some(TourStatus::Completed),
            rt.complete(tours[i % n]).await,
        ),
        Op::Cancel(i) => (
            tours[i % n],
            Some(TourStatus::Cancelled),
            rt.cancel(tours[i % n]).await,
        ),
    };
    match result {
        Ok(record) => {
            assert_eq!(record.id, tour);
            match want {
                Some(status) => assert_eq!(record.status, status, "{op:?} answered {record:?}"),
                // A decline sends the tour back to matching without that realtor.
                None => assert!(
                    !record.status.is_terminal() && !record.declined.is_empty(),
                    "{op:?} answered {record:?}"
                ),
            }
        }
        Err(RuntimeError::Illegal(_) | RuntimeError::Conflict) => {}
        Err(other) => panic!("{op:?}: {other}"),
    }
}

async fn check(tour_count: usize, batches: Vec<Vec<Op>>) {
    let db = TestDb::create(Backend::Sqlite).await;
    let realtors = vec![
        realtor(RealtorId(Uuid::new_v4()), lisbon(0.0)),
        realtor(RealtorId(Uuid::new_v4()), lisbon(0.01)),
    ];
    let ids: Vec<Uuid> = realtors.iter().map(|r| r.id.0).collect();
    insert_users(db.db(), &ids).await;
    db.store.upsert_realtor_profiles(&realtors).await.unwrap();
    let config = RuntimeConfig {
        clock: Arc::new(TokioClock::starting_at(
            at(0, 0) - chrono::Duration::days(2),
        )),
        ..RuntimeConfig::default()
    };
    let bus = InProcessBus::new();
    let rt = Runtime::start(Arc::new(db.store.clone()), Arc::new(bus), config)
        .await
        .unwrap();

    let pays = payments(tour_count);
    let mut tours = Vec::new();
    for p in &pays {
        tours.push(rt.submit_payment(Uuid::new_v4(), p.clone()).await.unwrap());
    }
    settle(&rt, &db).await;
    // Each batch runs concurrently (its ops race); batches run one after another.
    for batch in &batches {
        futures::future::join_all(batch.iter().map(|op| run(&rt, &pays, &tours, *op))).await;
    }
    settle(&rt, &db).await;

    // One tour per payment.
    let all = db.store.load_open_tours().await.unwrap();
    assert!(all.iter().all(|t| tours.contains(&t.id)));
    let select = Query::select()
        .expr_as(Expr::cust("COUNT(*)"), "n")
        .from("tours")
        .to_owned();
    let row = db.db().query_one(&select).await.unwrap().unwrap();
    assert_eq!(
        row.try_get::<i64>("", "n").unwrap(),
        i64::try_from(tour_count).unwrap()
    );

    // Every history is a legal path from pending, and ends where the tour is.
    let select = Query::select()
        .columns(["tour_id", "status"])
        .from("tour_history")
        .order_by("id", Order::Asc)
        .to_owned();
    let mut paths: HashMap<Uuid, Vec<TourStatus>> = HashMap::new();
    for row in db.db().query_all(&select).await.unwrap() {
        let tour: Uuid = row.try_get("", "tour_id").unwrap();
        let status: String = row.try_get("", "status").unwrap();
        paths
            .entry(tour)
            .or_default()
            .push(TourStatus::parse(&status).unwrap());
    }
    let mut active: Vec<TourRecord> = Vec::new();
    for id in &tours {
        let record = rt.tour(*id).await.unwrap().unwrap();
        let path = &paths[&id.0];
        assert_eq!(path[0], TourStatus::Pending, "{path:?}");
        for step in path.windows(2) {
            assert!(legal_step(step[0], step[1]), "illegal step in {path:?}");
        }
        assert_eq!(*path.last().unwrap(), record.status, "{path:?}");
        if record.status.is_active() {
            active.push(record);
        }
    }

    // No realtor holds two overlapping active tours.
    for (i, a) in active.iter().enumerate() {
        for b in &active[i + 1..] {
            if a.realtor_id == b.realtor_id {
                assert!(
                    a.end <= b.start || b.end <= a.start,
                    "double-booked: {a:?} {b:?}"
                );
            }
        }
    }
    rt.shutdown().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_interleaving_keeps_the_tour_rules(
        tours in 1usize..6,
        batches in prop::collection::vec(prop::collection::vec(op(), 1..6), 1..10),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(check(tours, batches));
    }
}
