//! The availability view in Redis (issue #9) against the shard actors: after bookings,
//! cancellations and status changes, `Runtime::availability_in_view` (what any instance reads
//! from Redis) gives exactly the actors' answer, for many places and windows; after the view's
//! keys are deleted it rebuilds itself. Needs the Redis at 127.0.0.1:6379 (`.ci/run` starts it).

#[allow(
    dead_code,
    reason = "each test binary uses a different part of the support module"
)]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::availability_view::RedisView;
use actors::bus::InProcessBus;
use actors::runtime::{Runtime, RuntimeConfig, TokioClock};
use actors::store::Store;
use engine::{Location, RealtorId, RealtorStatus, TimeWindow, TourStatus};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::{at, insert_users, lisbon, one_stop_payment, realtor, Backend, TestDb};
use uuid::Uuid;

const REALTORS: usize = 40;
const TOURS: usize = 60;

fn redis_url() -> String {
    std::env::var("TOURWISE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

type Answer = Vec<(RealtorId, f64, chrono::DateTime<chrono::Utc>)>;

/// Random places around Lisbon and windows on the test day, each asked both ways.
async fn both_answers(rt: &Runtime, view: &RedisView, seed: u64) -> Vec<(Answer, Answer)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut answers = Vec::new();
    for _ in 0..25 {
        let place = Location::new(
            38.7223 + rng.random_range(-0.15..0.15),
            -9.1393 + rng.random_range(-0.15..0.15),
        )
        .unwrap();
        let from = at(rng.random_range(7..16), 5 * rng.random_range(0..12));
        let window = TimeWindow::new(
            from,
            from + chrono::Duration::minutes(rng.random_range(30..480)),
        )
        .unwrap();
        let radius = rng.random_range(1.0..40.0);
        let actors = rt.availability(place, radius, window).await.unwrap();
        let redis = rt
            .availability_in_view(view, place, radius, window)
            .await
            .unwrap();
        answers.push((actors, redis));
    }
    answers
}

/// Waits for the write-behind view to catch up, then requires equal answers.
async fn view_answers_as_the_actors(rt: &Runtime, view: &RedisView, seed: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answers = both_answers(rt, view, seed).await;
        if answers.iter().all(|(a, r)| a == r) {
            assert!(
                answers.iter().any(|(a, _)| !a.is_empty()),
                "{what}: some query finds realtors"
            );
            return;
        }
        let (a, r) = answers.iter().find(|(a, r)| a != r).unwrap();
        assert!(
            Instant::now() < deadline,
            "{what}: actors {a:?}\nview {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_answers_exactly_as_the_actors_and_rebuilds_after_a_flush() {
    let db = TestDb::create(Backend::Sqlite).await;
    let prefix = format!("tw-view-{}", Uuid::new_v4().simple());
    let view = RedisView::connect(&redis_url(), &prefix)
        .await
        .expect("Redis at 127.0.0.1:6379");
    let mut rng = StdRng::seed_from_u64(3);
    let realtors: Vec<_> = (0..REALTORS)
        .map(|_| {
            realtor(
                RealtorId(Uuid::new_v4()),
                lisbon(rng.random_range(-0.1..0.1)),
            )
        })
        .collect();
    let ids: Vec<Uuid> = realtors.iter().map(|r| r.id.0).collect();
    insert_users(db.db(), &ids).await;
    db.store.upsert_realtor_profiles(&realtors).await.unwrap();
    let config = RuntimeConfig {
        namespace: format!("t{}/", Uuid::new_v4().simple()),
        clock: Arc::new(TokioClock::starting_at(
            at(0, 0) - chrono::Duration::days(2),
        )),
        availability_view: Some(view.clone()),
        ..RuntimeConfig::default()
    };
    let rt = Runtime::start(
        Arc::new(db.store.clone()),
        Arc::new(InProcessBus::new()),
        config,
    )
    .await
    .unwrap();

    // Bookings fill the calendars.
    let mut tours = Vec::new();
    for _ in 0..TOURS {
        let from = at(rng.random_range(9..15), 0);
        let p = one_stop_payment(
            lisbon(rng.random_range(-0.1..0.1)),
            from,
            from + chrono::Duration::hours(3),
        );
        tours.push(rt.submit_payment(Uuid::new_v4(), p).await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for t in &tours {
        while rt.tour(*t).await.unwrap().unwrap().status == TourStatus::Pending {
            assert!(Instant::now() < deadline, "tour {t:?} never matched");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    view_answers_as_the_actors(&rt, &view, 1, "after bookings").await;

    // Cancellations free time; a realtor goes away.
    for t in tours.iter().take(10) {
        let _ = rt.cancel(*t).await;
    }
    rt.set_realtor_status(realtors[0].id, RealtorStatus::Unavailable)
        .await
        .unwrap();
    view_answers_as_the_actors(&rt, &view, 2, "after cancellations").await;

    // Every key of the view is deleted (a flush): it is written again without being asked.
    let mut conn = view.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.len() > 2, "{keys:?}");
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();
    view_answers_as_the_actors(&rt, &view, 3, "after a flush").await;

    rt.shutdown().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();
}
