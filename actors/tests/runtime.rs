//! The actor runtime end to end: real actors, a real store (PostgreSQL or SQLite) and the
//! in-process bus. No sleeps decide anything: tests poll for a condition with a deadline.

#[allow(
    dead_code,
    reason = "each test binary uses a different part of the support module"
)]
mod support;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::bus::{topics, Envelope, EventBus, InProcessBus};
use actors::payments::PaymentSucceeded;
use actors::runtime::{Runtime, RuntimeConfig, RuntimeError, TokioClock};
use actors::store::{Store, TourRecord};
use chrono::{DateTime, Utc};
use engine::geo::travel_minutes;
use engine::{
    CustomerId, ListingId, Location, Nearest, PaymentId, Realtor, RealtorId, RealtorIndex,
    RealtorStatus, Stop, TimeWindow, TourId, TourPlan, TourStatus,
};
use migrations::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use support::{at, insert_users, lisbon, realtor, Backend, TestDb};
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(180);

/// Polls `check` until it returns `Some`, failing the test after [`DEADLINE`].
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
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The runtime's calendar stands two days before the test day (`support::at`), whatever the
/// wall clock says: reminders due before "now" are never scheduled, and the test day is fixed.
fn config() -> RuntimeConfig {
    RuntimeConfig {
        namespace: format!("t{}/", Uuid::new_v4().simple()),
        clock: Arc::new(TokioClock::starting_at(
            at(0, 0) - chrono::Duration::days(2),
        )),
        ..RuntimeConfig::default()
    }
}

async fn start(db: &TestDb, bus: &InProcessBus, config: RuntimeConfig) -> Runtime {
    Runtime::start(Arc::new(db.store.clone()), Arc::new(bus.clone()), config)
        .await
        .expect("runtime starts")
}

fn stop_at(loc: Location) -> Stop {
    Stop {
        id: ListingId(Uuid::new_v4()),
        location: loc,
    }
}

fn payment(listings: Vec<Stop>, window: TimeWindow) -> PaymentSucceeded {
    PaymentSucceeded {
        payment_id: PaymentId(Uuid::new_v4()),
        customer_id: CustomerId(Uuid::new_v4()),
        amount_cents: 5000,
        currency: "USD".into(),
        listings,
        window,
    }
}

fn window(from: DateTime<Utc>, to: DateTime<Utc>) -> TimeWindow {
    TimeWindow::new(from, to).expect("window")
}

/// Realtors with `users` rows, stored through the store (before the runtime starts).
async fn seed_realtors(db: &TestDb, homes: &[Location]) -> Vec<Realtor> {
    let realtors: Vec<Realtor> = homes
        .iter()
        .map(|h| realtor(RealtorId(Uuid::new_v4()), *h))
        .collect();
    let ids: Vec<Uuid> = realtors.iter().map(|r| r.id.0).collect();
    insert_users(db.db(), &ids).await;
    db.store
        .upsert_realtor_profiles(&realtors)
        .await
        .expect("profiles");
    realtors
}

async fn pending_count(db: &DatabaseConnection) -> i64 {
    let select = Query::select()
        .expr_as(Expr::cust("COUNT(*)"), "n")
        .from("tours")
        .and_where(Expr::col("status").eq("pending"))
        .to_owned();
    let row = db.query_one(&select).await.expect("count").expect("row");
    row.try_get("", "n").expect("n")
}

/// Waits until no tour is pending and the runtime has no matching queued.
async fn settle(rt: &Runtime, db: &DatabaseConnection) {
    eventually("the runtime to settle", move || async move {
        (rt.matching_in_flight() == 0 && pending_count(db).await == 0).then_some(())
    })
    .await;
}

async fn tour_where(
    rt: &Runtime,
    id: TourId,
    what: &str,
    pred: impl Fn(&TourRecord) -> bool,
) -> TourRecord {
    let pred = &pred;
    eventually(what, move || async move {
        rt.tour(id).await.expect("tour").filter(|t| pred(t))
    })
    .await
}

/// A deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn offset(&mut self, max_deg: f64) -> f64 {
        (self.below(10_000) as f64 / 10_000.0 * 2.0 - 1.0) * max_deg
    }
}

fn city_realtors(rng: &mut Rng, n: usize) -> Vec<Location> {
    (0..n)
        .map(|_| {
            Location::new(38.7223 + rng.offset(0.08), -9.1393 + rng.offset(0.08)).expect("home")
        })
        .collect()
}

/// A payment of 1 to 3 listings in the city with a narrow window (75 to 120 minutes).
fn city_payment(rng: &mut Rng) -> PaymentSucceeded {
    let stops = (0..=rng.below(3))
        .map(|_| {
            stop_at(
                Location::new(38.7223 + rng.offset(0.07), -9.1393 + rng.offset(0.07))
                    .expect("listing"),
            )
        })
        .collect();
    let start = at(9, 0) + chrono::Duration::minutes(5 * i64::try_from(rng.below(85)).unwrap());
    let length = chrono::Duration::minutes(75 + 5 * i64::try_from(rng.below(10)).unwrap());
    payment(stops, window(start, start + length))
}

/// CONTRACT 5.3 and 5.5 on the stored outcome: every tour assigned or unassignable; no
/// realtor with two active tours too close together; every unassignable tour has no feasible
/// realtor given the final bookings; the shards hold exactly the stored bookings.
async fn check_invariants(rt: &Runtime, store: &dyn Store, realtors: &[Realtor], expected: usize) {
    let tours = store.load_open_tours().await.expect("tours");
    assert_eq!(tours.len(), expected);
    let mut by_realtor: HashMap<RealtorId, Vec<&TourRecord>> = HashMap::new();
    let mut unassignable = Vec::new();
    for t in &tours {
        match t.status {
            TourStatus::Assigned => {
                let (start, end) = (t.start.unwrap(), t.end.unwrap());
                assert!(start >= t.window.start() && end <= t.window.end(), "{t:?}");
                by_realtor.entry(t.realtor_id.unwrap()).or_default().push(t);
            }
            TourStatus::Unassignable => unassignable.push(t),
            other => panic!("tour {} ended {other:?}", t.id.0),
        }
    }
    for tours in by_realtor.values() {
        for (i, u) in tours.iter().enumerate() {
            for t in &tours[i + 1..] {
                let (us, ue) = (u.start.unwrap(), u.end.unwrap());
                let (ts, te) = (t.start.unwrap(), t.end.unwrap());
                let u_last = u.stops.last().unwrap().location;
                let t_last = t.stops.last().unwrap().location;
                let gap = |m: i64| chrono::Duration::minutes(m);
                let before = ue + gap(travel_minutes(&u_last, &t.stops[0].location)) <= ts;
                let after = te + gap(travel_minutes(&t_last, &u.stops[0].location)) <= us;
                assert!(before || after, "double booking: {u:?} / {t:?}");
            }
        }
    }
    let mut index = RealtorIndex::default();
    for r in realtors {
        index.upsert(r.clone());
    }
    let mut stored = HashSet::new();
    for t in &tours {
        if let Some((realtor, booking)) = t.booking() {
            index.restore(realtor, booking).expect("known realtor");
            stored.insert((realtor, t.id));
        }
    }
    for t in &unassignable {
        let plan = TourPlan::new(t.id, &t.stops, t.window, 30, t.declined.clone()).unwrap();
        let decision = index.search(&plan, &Nearest);
        assert!(
            decision.choice.is_none(),
            "tour {} is unassignable but {:?} could take it",
            t.id.0,
            decision.choice
        );
    }
    let held: HashSet<(RealtorId, TourId)> = rt
        .shard_bookings()
        .await
        .expect("shard bookings")
        .into_iter()
        .flat_map(|(r, bs)| bs.into_iter().map(move |b| (r, b.tour_id)))
        .collect();
    assert_eq!(held, stored, "shards and store disagree");
    eprintln!(
        "{} tours: {} assigned, {} unassignable",
        tours.len(),
        tours.len() - unassignable.len(),
        unassignable.len()
    );
}

async fn submit_all(rt: &Runtime, payments: Vec<PaymentSucceeded>) -> Vec<TourId> {
    let mut tasks = tokio::task::JoinSet::new();
    for p in payments {
        let rt = rt.clone();
        tasks.spawn(async move { rt.submit_payment(Uuid::new_v4(), p).await });
    }
    let mut ids = Vec::new();
    while let Some(r) = tasks.join_next().await {
        ids.push(r.expect("task").expect("stored"));
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_tours_at_once_never_double_book() {
    let db = TestDb::create(Backend::Postgres).await;
    let mut rng = Rng(7);
    let realtors = seed_realtors(&db, &city_realtors(&mut rng, 20)).await;
    let rt = start(&db, &InProcessBus::new(), config()).await;
    let payments: Vec<_> = (0..2000).map(|_| city_payment(&mut rng)).collect();
    let began = Instant::now();
    let ids = submit_all(&rt, payments).await;
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 2000);
    settle(&rt, db.db()).await;
    eprintln!("2000 tours stored and matched in {:?}", began.elapsed());
    check_invariants(&rt, &db.store, &realtors, 2000).await;
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_shard_and_tours_are_restarted() {
    let db = TestDb::create(Backend::Sqlite).await;
    let mut rng = Rng(11);
    let realtors = seed_realtors(&db, &city_realtors(&mut rng, 20)).await;
    let cfg = config();
    let shard_res = cfg.shard_resolution;
    let rt = start(&db, &InProcessBus::new(), cfg).await;
    let first: Vec<_> = (0..200).map(|_| city_payment(&mut rng)).collect();
    let ids = submit_all(&rt, first).await;
    // Mid-run: every shard of the city and a few tour actors fail.
    let cells: HashSet<_> = realtors.iter().map(|r| r.home.cell(shard_res)).collect();
    let mut crashes = 0;
    for cell in &cells {
        crashes += u64::from(rt.crash_shard(*cell));
    }
    for id in ids.iter().take(5) {
        crashes += u64::from(rt.crash_tour(*id));
    }
    assert!(crashes > 0);
    let second: Vec<_> = (0..200).map(|_| city_payment(&mut rng)).collect();
    submit_all(&rt, second).await;
    let r = &rt;
    eventually(
        "the supervisors to restart every failed actor",
        move || async move { (r.restarts() >= crashes).then_some(()) },
    )
    .await;
    settle(&rt, db.db()).await;
    check_invariants(&rt, &db.store, &realtors, 400).await;
    // Failed tours that were assigned are still assigned after their restart.
    for id in ids.iter().take(5) {
        let t = rt.tour(*id).await.unwrap().unwrap();
        assert!(matches!(
            t.status,
            TourStatus::Assigned | TourStatus::Unassignable
        ));
    }
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decline_rematches_to_another_realtor_and_the_lifecycle_runs() {
    let db = TestDb::create(Backend::Sqlite).await;
    let rt = start(&db, &InProcessBus::new(), config()).await;
    // Realtors created through the runtime (their shard is started on demand).
    let (near, far) = (
        realtor(RealtorId(Uuid::new_v4()), lisbon(0.0)),
        realtor(RealtorId(Uuid::new_v4()), lisbon(0.02)),
    );
    insert_users(db.db(), &[near.id.0, far.id.0]).await;
    rt.upsert_realtor(near.clone()).await.unwrap();
    rt.upsert_realtor(far.clone()).await.unwrap();

    let p = payment(vec![stop_at(lisbon(0.001))], window(at(9, 0), at(18, 0)));
    let id = rt.submit_payment(Uuid::new_v4(), p).await.unwrap();
    let t = tour_where(&rt, id, "assignment", |t| t.status == TourStatus::Assigned).await;
    assert_eq!(t.realtor_id, Some(near.id));

    let declined = rt.decline(id).await.unwrap();
    assert_eq!(declined.declined, vec![near.id]);
    let t = tour_where(&rt, id, "re-assignment", |t| {
        t.status == TourStatus::Assigned
    })
    .await;
    assert_eq!(t.realtor_id, Some(far.id));

    assert_eq!(rt.accept(id).await.unwrap().status, TourStatus::Accepted);
    assert!(matches!(
        rt.complete(id).await,
        Err(RuntimeError::Illegal(_))
    ));
    assert_eq!(
        rt.start_tour(id).await.unwrap().status,
        TourStatus::InProgress
    );
    assert_eq!(rt.complete(id).await.unwrap().status, TourStatus::Completed);
    // Passivated: the closed tour answers from the store.
    assert!(matches!(rt.cancel(id).await, Err(RuntimeError::Illegal(_))));
    let unknown = TourId(Uuid::new_v4());
    assert!(matches!(rt.accept(unknown).await, Err(RuntimeError::NotFound(u)) if u == unknown));

    // Status changes reach the shard: an unavailable realtor is not offered.
    rt.set_realtor_status(near.id, RealtorStatus::Unavailable)
        .await
        .unwrap();
    let free = rt
        .availability(lisbon(0.0), 10.0, window(at(9, 0), at(18, 0)))
        .await
        .unwrap();
    assert_eq!(
        free.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![far.id],
        "{free:?}"
    );
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_timeout_rematches_without_the_silent_realtor() {
    let db = TestDb::create(Backend::Sqlite).await;
    let realtors = seed_realtors(&db, &[lisbon(0.0), lisbon(0.02)]).await;
    let cfg = RuntimeConfig {
        accept_timeout: Duration::from_millis(50),
        ..config()
    };
    let rt = start(&db, &InProcessBus::new(), cfg).await;
    let p = payment(vec![stop_at(lisbon(0.001))], window(at(9, 0), at(18, 0)));
    let id = rt.submit_payment(Uuid::new_v4(), p).await.unwrap();
    // Nobody ever accepts: the nearest times out, then the other; then nobody is left.
    let t = tour_where(&rt, id, "both timeouts", |t| {
        t.status == TourStatus::Unassignable
    })
    .await;
    assert_eq!(t.declined, vec![realtors[0].id, realtors[1].id]);
    rt.shutdown().await;
}

/// The reminder rows of `tour` (the table also holds its other emails).
async fn reminders(db: &DatabaseConnection, tour: TourId) -> Vec<(String, String, DateTime<Utc>)> {
    let select = Query::select()
        .columns(["kind", "status", "due_at"])
        .from("notifications")
        .and_where(Expr::col("tour_id").eq(tour.0))
        .and_where(Expr::col("kind").like("reminder_%"))
        .to_owned();
    let mut rows: Vec<_> = db
        .query_all(&select)
        .await
        .expect("notifications")
        .iter()
        .map(|r| {
            (
                r.try_get("", "kind").unwrap(),
                r.try_get("", "status").unwrap(),
                r.try_get("", "due_at").unwrap(),
            )
        })
        .collect();
    rows.sort_by(|a: &(String, String, DateTime<Utc>), b| (&a.1, a.2).cmp(&(&b.1, b.2)));
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reschedule_frees_the_old_slot_and_moves_the_reminders() {
    let db = TestDb::create(Backend::Sqlite).await;
    let only = seed_realtors(&db, &[lisbon(0.0)]).await.remove(0);
    let rt = start(&db, &InProcessBus::new(), config()).await;
    let morning = window(at(9, 0), at(10, 0));
    let one = rt
        .submit_payment(
            Uuid::new_v4(),
            payment(vec![stop_at(lisbon(0.001))], morning),
        )
        .await
        .unwrap();
    let t1 = tour_where(&rt, one, "first assignment", |t| {
        t.status == TourStatus::Assigned
    })
    .await;
    assert_eq!((t1.realtor_id, t1.start), (Some(only.id), Some(at(9, 0))));
    let two = rt
        .submit_payment(
            Uuid::new_v4(),
            payment(vec![stop_at(lisbon(0.002))], morning),
        )
        .await
        .unwrap();
    let t2 = tour_where(&rt, two, "no realtor", |t| {
        t.status == TourStatus::Unassignable
    })
    .await;
    assert_eq!(t2.reason.as_deref(), Some("no_feasible_realtor"));
    let hour = chrono::Duration::hours(1);
    assert_eq!(
        reminders(db.db(), one).await,
        vec![
            (
                "reminder_24h".into(),
                "pending".into(),
                at(9, 0) - hour * 24
            ),
            ("reminder_1h".into(), "pending".into(), at(8, 0)),
        ]
    );

    // Tour one moves to the afternoon: the morning slot goes to the parked tour two.
    let moved = rt
        .reschedule(one, window(at(14, 0), at(15, 0)))
        .await
        .unwrap();
    assert_eq!(moved.status, TourStatus::Pending);
    let t1 = tour_where(&rt, one, "new slot", |t| t.status == TourStatus::Assigned).await;
    assert_eq!(t1.start, Some(at(14, 0)));
    let t2 = tour_where(&rt, two, "freed slot", |t| t.status == TourStatus::Assigned).await;
    assert_eq!((t2.realtor_id, t2.start), (Some(only.id), Some(at(9, 0))));
    assert_eq!(
        reminders(db.db(), one).await,
        vec![
            (
                "reminder_24h".into(),
                "cancelled".into(),
                at(9, 0) - hour * 24
            ),
            ("reminder_1h".into(), "cancelled".into(), at(8, 0)),
            (
                "reminder_24h".into(),
                "pending".into(),
                at(14, 0) - hour * 24
            ),
            ("reminder_1h".into(), "pending".into(), at(13, 0)),
        ]
    );
    rt.cancel(two).await.unwrap();
    assert!(reminders(db.db(), two)
        .await
        .iter()
        .all(|(_, status, _)| status == "cancelled"));
    rt.shutdown().await;
}

fn envelope_bytes(p: &PaymentSucceeded) -> Vec<u8> {
    serde_json::to_vec(&Envelope::new(
        "payment.succeeded",
        serde_json::to_value(p).unwrap(),
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_consumer_dedups_and_dead_letters() {
    let db = TestDb::create(Backend::Sqlite).await;
    seed_realtors(&db, &[lisbon(0.0)]).await;
    let bus = InProcessBus::new();
    let rt = start(&db, &bus, config()).await;
    let p = payment(vec![stop_at(lisbon(0.001))], window(at(9, 0), at(18, 0)));

    // Directly, twice: one tour.
    let a = rt.submit_payment(Uuid::new_v4(), p.clone()).await.unwrap();
    let b = rt.submit_payment(Uuid::new_v4(), p.clone()).await.unwrap();
    assert_eq!(a, b);

    // Through the bus: the same payment again, garbage, then a new payment.
    let key = p.payment_id.0.to_string();
    bus.publish(topics::PAYMENTS, &key, envelope_bytes(&p), vec![])
        .await
        .unwrap();
    bus.publish(topics::PAYMENTS, "junk", b"{not json".to_vec(), vec![])
        .await
        .unwrap();
    let next = payment(vec![stop_at(lisbon(0.003))], window(at(9, 0), at(18, 0)));
    bus.publish(
        topics::PAYMENTS,
        &next.payment_id.0.to_string(),
        envelope_bytes(&next),
        vec![],
    )
    .await
    .unwrap();
    let (store, paid) = (&db.store, next.payment_id);
    let stored = eventually("the last payment's tour", move || async move {
        store.tour_by_payment(paid).await.unwrap()
    })
    .await;
    assert_ne!(stored.id, a);
    assert_eq!(support::count(db.db(), "tours", None).await, 2);

    let mut dlq = bus.consumer(topics::PAYMENTS_DLQ, "test").await.unwrap();
    let dead = tokio::time::timeout(DEADLINE, dlq.next())
        .await
        .expect("a dead letter")
        .unwrap();
    assert_eq!(dead.payload, b"{not json".to_vec());
    assert_eq!(dead.key, "junk");
    let header = |name: &str| {
        dead.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert!(header("error").is_some_and(|e| e.contains("undecodable")));
    assert_eq!(header("source-offset").as_deref(), Some("1"));
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_runtime_recovers_bookings_and_pending_tours() {
    let db = TestDb::create(Backend::Sqlite).await;
    let only = seed_realtors(&db, &[lisbon(0.0)]).await.remove(0);
    let rt = start(&db, &InProcessBus::new(), config()).await;
    let morning = window(at(9, 0), at(10, 0));
    let one = rt
        .submit_payment(
            Uuid::new_v4(),
            payment(vec![stop_at(lisbon(0.001))], morning),
        )
        .await
        .unwrap();
    tour_where(&rt, one, "assignment", |t| t.status == TourStatus::Assigned).await;
    rt.shutdown().await;

    // A tour stored while no runtime ran (the crash-between-store-and-match case).
    let orphan = support::new_tour();
    db.store
        .create_tour_from_payment(orphan.clone())
        .await
        .unwrap();
    let rt = start(&db, &InProcessBus::new(), config()).await;
    // The 09:00 slot is still taken after recovery: the orphan (09:00-18:00) comes after it.
    let t = tour_where(&rt, orphan.tour_id, "orphan matched", |t| {
        t.status == TourStatus::Assigned
    })
    .await;
    assert_eq!(t.realtor_id, Some(only.id));
    assert!(t.start.unwrap() >= at(9, 30), "{t:?}");
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_runs_the_same_invariants() {
    let store = Arc::new(actors::memstore::MemoryStore::new());
    let mut rng = Rng(3);
    let realtors: Vec<Realtor> = city_realtors(&mut rng, 20)
        .into_iter()
        .map(|h| realtor(RealtorId(Uuid::new_v4()), h))
        .collect();
    store.upsert_realtor_profiles(&realtors).await.unwrap();
    let rt = Runtime::start(store.clone(), Arc::new(InProcessBus::new()), config())
        .await
        .unwrap();
    submit_all(&rt, (0..500).map(|_| city_payment(&mut rng)).collect()).await;
    let (r, s) = (&rt, &store);
    eventually("the runtime to settle", move || async move {
        let pending = s.tours().iter().any(|t| t.status == TourStatus::Pending);
        (r.matching_in_flight() == 0 && !pending).then_some(())
    })
    .await;
    check_invariants(&rt, store.as_ref(), &realtors, 500).await;
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_failures_escalate() {
    let db = TestDb::create(Backend::Sqlite).await;
    let home = lisbon(0.0);
    seed_realtors(&db, &[home]).await;
    let mut cfg = config();
    cfg.supervision.max_restarts = 1;
    let cell = home.cell(cfg.shard_resolution);
    let rt = start(&db, &InProcessBus::new(), cfg).await;
    assert!(rt.healthy());
    // The first failure is restarted; the second within the window escalates.
    assert!(rt.crash_shard(cell));
    let r = &rt;
    eventually("the first restart", move || async move {
        (r.restarts() == 1).then_some(())
    })
    .await;
    eventually("the restarted shard", move || async move {
        r.crash_shard(cell).then_some(())
    })
    .await;
    eventually("the escalation", move || async move {
        (!r.healthy()).then_some(())
    })
    .await;
    assert_eq!(rt.restarts(), 1);
    rt.shutdown().await;
}
