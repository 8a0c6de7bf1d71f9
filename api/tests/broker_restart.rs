//! Broker restart (issue #11, CONTRACT 5.5): the Kafka-protocol broker is SIGKILLed while
//! payments flow and started again on the same port and storage (tansu on a SQLite file, so
//! topics, offsets and groups survive). While it is gone the engine keeps its HTTP API up and
//! says it is not ready (`dependencies.kafka: false`); what it booked waits in its outbox.
//! Once the broker is back it consumes from its committed offsets and publishes what waited:
//! every payment has exactly one tour, no realtor is double-booked, every committed event is
//! on its topic, the consumer group's lag is back to 0 and `/readyz` is 200 again.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;

mod common;
use common::{
    add_realtors, every_outbox_event_published, free_port, one_tour_per_payment, payment_stream,
    produce, scalar, serve, settled_without_double_booking, start_broker_on, wait_for_lag_zero,
    wait_ready, FreshDb,
};

const EVENTS: usize = 400;
const REALTORS: usize = 30;
/// How long the broker stays dead: shorter than the engine's Kafka session timeout (10 s), as
/// a broker restart under an orchestrator would be.
const BROKER_DOWN: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_survive_a_broker_restart() {
    let seed: u64 = rand::rng().random();
    println!("broker restart: {EVENTS} events, seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Relative to the broker's folder: `dir/tansu.db`.
    let storage = "sqlite://tansu.db";
    let broker = start_broker_on(port, storage, dir.path());
    let brokers = broker.addr.clone();
    let db = FreshDb::create().await;
    let engine = serve(&db.url, &brokers, &dir.path().join("serve.log"), &[]);
    add_realtors(&engine.base, &mut rng, REALTORS).await;

    // Every payment once and a tenth again (new event ids), shuffled; the first half before
    // the kill, the rest while the broker is dead and after.
    let (payments, mut messages) = payment_stream(&mut rng, EVENTS, EVENTS / 10);
    messages.shuffle(&mut rng);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("enable.idempotence", "true")
        // One record per batch: see api/tests/kafka.rs (tansu fetches from batch boundaries).
        .set("batch.num.messages", "1")
        .create()
        .unwrap();
    let (first, rest) = messages.split_at(messages.len() / 2);
    produce(&producer, first).await;

    let test = sea_orm::Database::connect(&db.url).await.unwrap();
    let stored = || scalar(&test, "SELECT count(*) FROM processed_payments");
    let deadline = Instant::now() + Duration::from_secs(120);
    while usize::try_from(stored().await).unwrap() < EVENTS / 4 {
        assert!(Instant::now() < deadline, "payments not flowing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    drop(broker); // SIGKILL
    let killed = Instant::now();
    let at_kill = stored().await;
    // The rest is produced meanwhile: the producer holds it until the broker is back.
    let rest = rest.to_vec();
    let producing = tokio::spawn(async move { produce(&producer, &rest).await });
    // Not ready, but serving: the API answers and nothing is lost from the outbox.
    wait_ready(&engine.base, 503, "kafka", false).await;
    let health = reqwest::get(format!("{}/healthz", engine.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "/healthz while the broker is down");
    let not_ready_after = killed.elapsed();
    tokio::time::sleep(BROKER_DOWN.saturating_sub(killed.elapsed())).await;
    let unpublished_while_down = scalar(
        &test,
        "SELECT count(*) FROM outbox WHERE published_at IS NULL",
    )
    .await;

    let at_restart = stored().await;
    let broker = start_broker_on(port, storage, dir.path());
    let restarted = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(120);
    while stored().await <= at_restart {
        assert!(
            Instant::now() < deadline,
            "no payment stored within 120 s of the broker's restart"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let recovery = restarted.elapsed();
    wait_ready(&engine.base, 200, "kafka", true).await;
    producing.await.unwrap();

    one_tour_per_payment(&test, &payments, 300).await;
    settled_without_double_booking(&test, 120).await;
    // What waited in the outbox reached its topics, on the restarted broker.
    every_outbox_event_published(&test, &broker.addr).await;
    wait_for_lag_zero(&broker.addr).await;

    println!(
        "broker restart: {EVENTS} payments + {} duplicates; broker SIGKILLed with {at_kill} \
         stored, /readyz said kafka false {:.1} s after the kill, down {:.1} s \
         ({unpublished_while_down} events waiting in the outbox); first payment stored {:.1} s \
         after the restart; 0 lost, 0 double-booked, every event published, lag 0",
        EVENTS / 10,
        not_ready_after.as_secs_f64(),
        (restarted - killed).as_secs_f64(),
        recovery.as_secs_f64(),
    );
    drop(engine);
    db.drop_now().await;
}
