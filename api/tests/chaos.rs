//! Chaos (issue #11, CONTRACT 5.5): a stream of payment events through a real Kafka-protocol
//! broker while the engine process is SIGKILLed and started again at random points, its
//! PostgreSQL connections are cut (`pg_terminate_backend`) in between, and its Redis goes away
//! for a while (readiness false, payments still booked) and comes back. Afterwards every
//! succeeded payment has exactly one tour, none is lost, no realtor is double-booked (checked in
//! SQL), nothing is left pending and the consumer group's lag is back to 0.
//!
//! CI runs it small. The full run (50,000 events, 20 kills):
//! `CHAOS_EVENTS=50000 CHAOS_KILLS=20 cargo test --release --test chaos -- --nocapture`
//! (`CHAOS_SEED` replays a run; the seed is printed).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use sea_orm::DatabaseConnection;

mod common;
use common::{
    add_realtors, free_port, one_tour_per_payment, payment_stream, produce, scalar, serve,
    settled_without_double_booking, start_broker, wait_for_lag_zero, wait_ready, FreshDb, Serve,
};

const REALTORS: usize = 40;
/// Kill to restart: past the engine's Kafka session timeout (10 s). tansu 0.6, the test
/// broker, drops a dead member only when a *dynamic* member's request arrives after that
/// timeout (its group coordinator skips the missed-heartbeat check on requests of static
/// members, so a dead static member is never dropped: `tansu-broker`
/// `src/coordinator/group/administrator.rs`, `join` and `heartbeat`). So the engine runs
/// with dynamic membership here and comes back after the timeout, as an orchestrator's
/// restart backoff would; scale_out.rs does the same.
const RESTART_AFTER: Duration = Duration::from_secs(11);

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Cuts every PostgreSQL connection the engine holds to `db` (not the test's own); returns
/// how many were cut.
async fn cut_connections(test: &DatabaseConnection, db_name: &str) -> i64 {
    scalar(
        test,
        &format!(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{db_name}' AND pid <> pg_backend_pid()) cut"
        ),
    )
    .await
}

/// A Redis server of this test alone (it is stopped and started again), killed on drop.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            port,
            child: Some(child),
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The figures a run prints.
#[derive(Default)]
struct Figures {
    kills: usize,
    connection_cuts: usize,
    connections_cut: i64,
    max_recovery: Duration,
    /// Payments stored while Redis was down.
    redis_outage_stored: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_survive_kills_and_cut_connections() {
    let events = usize::try_from(setting("CHAOS_EVENTS", 2_000)).unwrap();
    let kills = usize::try_from(setting("CHAOS_KILLS", 3)).unwrap();
    let seed = setting("CHAOS_SEED", rand::rng().random());
    println!("chaos: {events} events, {kills} kills, seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);

    let broker = start_broker();
    let db = FreshDb::create().await;
    let db_name = db.url.rsplit('/').next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let log = |n: usize| dir.path().join(format!("serve-{n}.log"));
    let mut redis = Redis::start(free_port());
    let redis_url = redis.url();
    let flags = ["--redis-url", redis_url.as_str()];
    let mut engine: Serve = serve(&db.url, &broker.addr, &log(1), &flags);
    add_realtors(&engine.base, &mut rng, REALTORS).await;

    // The stream: every payment once, a tenth of them again (new event ids), shuffled, produced
    // in small batches so that it keeps flowing while the engine dies and comes back.
    let duplicates_sent = events / 10;
    let (payments, mut messages) = payment_stream(&mut rng, events, duplicates_sent);
    messages.shuffle(&mut rng);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("enable.idempotence", "true")
        // One record per batch: see api/tests/kafka.rs (tansu fetches from batch boundaries).
        .set("batch.num.messages", "1")
        .create()
        .unwrap();
    let producing = tokio::spawn(async move {
        for chunk in messages.chunks(200) {
            produce(&producer, chunk).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    // Kill points: numbers of stored payments, spread over the stream (before its last tenth,
    // so that there is always work left to resume).
    let low = (events / 20).max(1);
    let high = (events * 9 / 10).max(low + 1);
    let mut points: Vec<usize> = (0..kills).map(|_| rng.random_range(low..high)).collect();
    points.sort_unstable();

    let test = sea_orm::Database::connect(&db.url).await.unwrap();
    let stored = || scalar(&test, "SELECT count(*) FROM processed_payments");
    let mut figures = Figures::default();
    let started = Instant::now();
    for (i, point) in points.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(600);
        while usize::try_from(stored().await).unwrap() < *point {
            assert!(Instant::now() < deadline, "stuck before kill point {point}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Sometimes cut its database connections first, a moment before the kill.
        if rng.random_bool(0.5) {
            figures.connection_cuts += 1;
            figures.connections_cut += cut_connections(&test, &db_name).await;
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
        }
        drop(engine); // SIGKILL
        let killed = Instant::now();
        let at_kill = stored().await;
        figures.kills += 1;
        // Restarted once the dead member's session has expired (see RESTART_AFTER).
        tokio::time::sleep(RESTART_AFTER).await;
        engine = serve(&db.url, &broker.addr, &log(i + 2), &flags);
        // Recovered: a payment stored by the new process.
        let deadline = Instant::now() + Duration::from_secs(300);
        while stored().await <= at_kill {
            assert!(
                Instant::now() < deadline,
                "no progress within 300 s of kill {}",
                i + 1
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        figures.max_recovery = figures.max_recovery.max(killed.elapsed());
        // And once more between kills, while it works.
        if rng.random_bool(0.5) {
            figures.connection_cuts += 1;
            figures.connections_cut += cut_connections(&test, &db_name).await;
        }
        // After the first kill, Redis goes away: the engine says it is not ready but goes on
        // booking (Redis holds only the availability view and rate limits), and is ready
        // again once Redis is back.
        if i == 0 {
            redis.stop();
            wait_ready(&engine.base, 503, "redis", false).await;
            let at_stop = stored().await;
            let more = (i64::try_from(events).unwrap() - at_stop).min(20);
            let deadline = Instant::now() + Duration::from_secs(120);
            while stored().await < at_stop + more {
                assert!(
                    Instant::now() < deadline,
                    "no payment stored while Redis was down"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            figures.redis_outage_stored = stored().await - at_stop;
            redis = Redis::start(redis.port);
            wait_ready(&engine.base, 200, "redis", true).await;
        }
    }
    producing.await.unwrap();

    // Exactly one tour per payment, none lost; every tour settles, and no realtor holds two
    // overlapping active tours.
    one_tour_per_payment(&test, &payments, 600).await;
    let elapsed = started.elapsed();
    settled_without_double_booking(&test, 300).await;
    let assigned = scalar(
        &test,
        "SELECT count(*) FROM tours WHERE status = 'assigned'",
    )
    .await;

    // The consumer group has committed everything: lag 0 on every partition.
    wait_for_lag_zero(&broker.addr).await;

    // Duplicates the inbox absorbed: the ones sent and the redeliveries after each kill.
    let absorbed: usize = (1..=figures.kills + 1)
        .map(|n| {
            std::fs::read_to_string(log(n))
                .unwrap_or_default()
                .matches("duplicate payment absorbed")
                .count()
        })
        .sum();
    assert!(
        absorbed >= duplicates_sent,
        "{duplicates_sent} duplicates sent, only {absorbed} absorbed"
    );
    println!(
        "chaos: {events} payments + {duplicates_sent} duplicates in {:.1} s; {} kills, {} cuts \
         of the database connections ({} connections); {} payments stored while Redis was \
         down; {absorbed} duplicates seen and absorbed \
         (sent and redelivered); max recovery {:.1} s (kill to the next stored payment); \
         {assigned} assigned, 0 lost, 0 double-booked, lag 0",
        elapsed.as_secs_f64(),
        figures.kills,
        figures.connection_cuts,
        figures.connections_cut,
        figures.redis_outage_stored,
        figures.max_recovery.as_secs_f64(),
    );
    drop(engine);
    db.drop_now().await;
}
