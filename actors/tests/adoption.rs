//! Scale-out (issue #11): when the consumer group hands this process more `payments`
//! partitions, it adopts the open tours of those partitions' regions (`engine::region`), which
//! another process booked and can no longer drive. Seen here directly: tours booked by runtime A
//! sit untouched in runtime B while B does not own their region's partition, and move on (B's
//! accept timeout fires for them) once B is handed that partition, and not before.

#[allow(
    dead_code,
    reason = "each test binary uses a different part of the support module"
)]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actors::bus::{Assignment, BusError, Consumer, EventBus, InProcessBus, Message, Outgoing};
use actors::runtime::{Runtime, RuntimeConfig, TokioClock};
use actors::store::{SeaStore, Store};
use async_trait::async_trait;
use engine::{RealtorId, TourStatus};
use support::{at, insert_users, lisbon, one_stop_payment, realtor, Backend, TestDb};
use uuid::Uuid;

const PARTITIONS: i32 = 4;

/// The in-process bus, but its consumers report the partitions the test says they own.
struct ScriptedBus {
    inner: InProcessBus,
    owned: Arc<Mutex<Vec<i32>>>,
}

struct ScriptedConsumer {
    inner: Box<dyn Consumer>,
    owned: Arc<Mutex<Vec<i32>>>,
}

#[async_trait]
impl EventBus for ScriptedBus {
    async fn publish(
        &self,
        topic: &str,
        key: &str,
        payload: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<(), BusError> {
        self.inner.publish(topic, key, payload, headers).await
    }

    async fn publish_batch(&self, messages: &[Outgoing]) -> Vec<Result<(), BusError>> {
        self.inner.publish_batch(messages).await
    }

    async fn consumer(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError> {
        Ok(Box::new(ScriptedConsumer {
            inner: self.inner.consumer(topic, group).await?,
            owned: self.owned.clone(),
        }))
    }
}

#[async_trait]
impl Consumer for ScriptedConsumer {
    async fn next(&mut self) -> Result<Message, BusError> {
        self.inner.next().await
    }
    async fn commit(&mut self, message: &Message) -> Result<(), BusError> {
        self.inner.commit(message).await
    }
    async fn lag(&mut self) -> Option<i64> {
        self.inner.lag().await
    }
    async fn close(&mut self) -> Result<(), BusError> {
        self.inner.close().await
    }
    async fn assignment(&mut self) -> Option<Assignment> {
        Some(Assignment {
            owned: self.owned.lock().unwrap().clone(),
            partitions: PARTITIONS,
        })
    }
}

/// Two runtimes in one test process: each names its actors under its own `namespace`.
fn config(namespace: &str, accept_timeout: Duration) -> RuntimeConfig {
    RuntimeConfig {
        namespace: namespace.into(),
        accept_timeout,
        clock: Arc::new(TokioClock::starting_at(
            at(0, 0) - chrono::Duration::days(2),
        )),
        ..RuntimeConfig::default()
    }
}

/// The versions of `tours` now.
async fn versions(store: &SeaStore, tours: &[engine::TourId]) -> Vec<(TourStatus, i32)> {
    let mut out = Vec::new();
    for id in tours {
        let record = store.get_tour(*id).await.unwrap().unwrap();
        out.push((record.status, record.version));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaining_a_partition_adopts_its_regions_open_tours() {
    let db = TestDb::create(Backend::Sqlite).await;
    let lisbon_partition =
        i32::try_from(engine::region::region_partition(&lisbon(0.0), 4)).unwrap();
    let others: Vec<i32> = (0..PARTITIONS).filter(|p| *p != lisbon_partition).collect();
    let realtors: Vec<RealtorId> = (0..3).map(|_| RealtorId(Uuid::new_v4())).collect();
    let ids: Vec<Uuid> = realtors.iter().map(|r| r.0).collect();
    insert_users(db.db(), &ids).await;
    let profiles: Vec<_> = realtors
        .iter()
        .enumerate()
        .map(|(i, id)| realtor(*id, lisbon(0.001 * f64::from(u8::try_from(i).unwrap()))))
        .collect();
    db.store.upsert_realtor_profiles(&profiles).await.unwrap();

    // B owns one partition that is not Lisbon's, with a short accept timeout.
    let owned = Arc::new(Mutex::new(vec![others[0]]));
    let bus = ScriptedBus {
        inner: InProcessBus::new(),
        owned: owned.clone(),
    };
    let b = Runtime::start(
        Arc::new(SeaStore::new(db.db().clone())),
        Arc::new(bus),
        config("b:", Duration::from_secs(1)),
    )
    .await
    .unwrap();

    // A books three Lisbon tours after B started (B's start-up recovery cannot see them), then
    // stops, as a process that dies would.
    let a = Runtime::start(
        Arc::new(SeaStore::new(db.db().clone())),
        Arc::new(InProcessBus::new()),
        config("a:", Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let mut tours = Vec::new();
    for i in 0..3 {
        let payment = one_stop_payment(lisbon(0.002 * f64::from(i)), at(9, 0), at(18, 0));
        tours.push(a.submit_payment(Uuid::new_v4(), payment).await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while versions(&db.store, &tours)
        .await
        .iter()
        .any(|(s, _)| *s != TourStatus::Assigned)
    {
        assert!(Instant::now() < deadline, "A did not assign its tours");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.shutdown().await;
    let booked = versions(&db.store, &tours).await;

    // B gains another partition that is not Lisbon's: the tours stay as A left them, though
    // B's accept timeout (1 s) passes several times over (B looks at its assignment every 2 s).
    owned.lock().unwrap().push(others[1]);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        versions(&db.store, &tours).await,
        booked,
        "adopted too early"
    );

    // B gains Lisbon's partition: it adopts them, and their accept timeouts fire in B.
    owned.lock().unwrap().push(lisbon_partition);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = versions(&db.store, &tours).await;
        if now.iter().zip(&booked).all(|(n, b)| n.1 > b.1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not adopted: {now:?}, booked {booked:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.shutdown().await;
}
