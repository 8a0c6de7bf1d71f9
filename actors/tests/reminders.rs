//! Reminders fire at the configured offsets: paused tokio time, the in-memory store and a
//! [`TokioClock`], so 25 hours pass in milliseconds and every firing time is exact. The
//! store's part (sent once, never for a tour that no longer expects it, with its
//! `notification.sent` event) also runs on PostgreSQL and SQLite.

#[allow(
    dead_code,
    reason = "each test binary uses a different part of the support module"
)]
mod support;

use std::sync::Arc;
use std::time::Duration;

use actors::bus::InProcessBus;
use actors::mail::{EmlFolder, LogMailer, Mail, MailError, Mailer};
use actors::memstore::MemoryStore;
use actors::notices::{Delivery, DueNotification};
use actors::payments::PaymentSucceeded;
use actors::reminders::reminders_for;
use actors::runtime::{Clock, MailNotifier, Notifier, Runtime, RuntimeConfig, TokioClock};
use actors::store::{Assignment, Change, CreateOutcome, Store, StoreError, TourRecord};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use engine::{RealtorId, TimeWindow, TourId, TourStatus, Transition};
use support::{
    at, explanation, insert_users, lisbon, new_tour, one_stop_payment, outbox, realtor, Backend,
    TestDb,
};
use tokio::sync::mpsc;
use uuid::Uuid;

/// `(tour, kind, when, sent)` of every reminder handed to the notifier.
type Fired = (TourId, String, DateTime<Utc>, bool);

/// The default notifier, reporting each reminder with the clock's time.
#[derive(Debug)]
struct Recorder {
    inner: MailNotifier,
    clock: TokioClock,
    fired: mpsc::UnboundedSender<Fired>,
}

#[async_trait]
impl Notifier for Recorder {
    async fn send(&self, r: &DueNotification) -> Result<Delivery, StoreError> {
        let delivery = self.inner.send(r).await?;
        let sent = matches!(delivery, Delivery::Sent);
        let tour = r.tour_id.expect("reminders have a tour");
        let _ = self
            .fired
            .send((tour, r.kind.clone(), self.clock.now(), sent));
        Ok(delivery)
    }
}

struct Setup {
    store: Arc<MemoryStore>,
    clock: TokioClock,
    namespace: String,
}

const HOUR: Duration = Duration::from_secs(3600);
const MINUTE: Duration = Duration::from_secs(60);

/// A store with one realtor and a clock 25 hours before 09:00 on the test day.
async fn setup() -> Setup {
    let store = Arc::new(MemoryStore::new());
    store
        .upsert_realtor_profiles(&[realtor(RealtorId(Uuid::new_v4()), lisbon(0.0))])
        .await
        .unwrap();
    Setup {
        store,
        clock: TokioClock::starting_at(at(9, 0) - chrono::Duration::hours(25)),
        namespace: format!("t{}/", Uuid::new_v4().simple()),
    }
}

async fn start(s: &Setup) -> (Runtime, mpsc::UnboundedReceiver<Fired>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let notifier = Recorder {
        inner: MailNotifier::new(s.store.clone(), Arc::new(LogMailer), Arc::new(s.clock)),
        clock: s.clock,
        fired: tx,
    };
    let config = RuntimeConfig {
        namespace: s.namespace.clone(),
        clock: Arc::new(s.clock),
        notifier: Some(Arc::new(notifier)),
        ..RuntimeConfig::default()
    };
    let rt = Runtime::start(s.store.clone(), Arc::new(InProcessBus::new()), config)
        .await
        .unwrap();
    (rt, rx)
}

fn payment(from: DateTime<Utc>, to: DateTime<Utc>) -> PaymentSucceeded {
    one_stop_payment(lisbon(0.001), from, to)
}

/// Waits (in paused time, so without letting the clock run) for `tour` to be assigned.
async fn assigned(rt: &Runtime, tour: TourId) -> TourRecord {
    let wait = async {
        loop {
            if let Some(t) = rt.tour(tour).await.unwrap() {
                if t.status == TourStatus::Assigned {
                    return t;
                }
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(MINUTE, wait)
        .await
        .expect("assigned within a minute")
}

/// Books a one-listing tour in `[from, to)` and accepts it; returns it with its start.
async fn book(rt: &Runtime, from: DateTime<Utc>, to: DateTime<Utc>) -> TourRecord {
    let id = rt
        .submit_payment(Uuid::new_v4(), payment(from, to))
        .await
        .unwrap();
    assigned(rt, id).await;
    rt.accept(id).await.unwrap()
}

/// Lets the actors handle what is due now, without moving the clock.
async fn drain() {
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
}

/// The next `n` reminders, as the clock lets them come due.
async fn next(rx: &mut mpsc::UnboundedReceiver<Fired>, n: usize) -> Vec<Fired> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(rx.recv().await.expect("a reminder"));
    }
    out
}

/// Every one of `fired` is `kind` for `tour`, sent within a second after `due`.
fn all_at(fired: &[Fired], tour: TourId, kind: &str, due: DateTime<Utc>) {
    for (t, k, when, sent) in fired {
        assert_eq!((*t, k.as_str(), *sent), (tour, kind, true), "{fired:?}");
        assert!(
            *when >= due && *when <= due + chrono::Duration::seconds(1),
            "{kind} due {due}, fired {when}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn reminders_fire_24h_and_1h_before_the_start_and_not_before() {
    let s = setup().await;
    let (rt, mut rx) = start(&s).await;
    let tour = book(&rt, at(9, 0), at(10, 0)).await;
    assert_eq!(tour.start, Some(at(9, 0)));
    assert_eq!(
        rt.notifications_queued().await,
        Some(4),
        "2 kinds x 2 people"
    );

    tokio::time::advance(59 * MINUTE).await;
    drain().await;
    assert!(rx.try_recv().is_err(), "the 24 h reminder is not due yet");
    all_at(
        &next(&mut rx, 2).await,
        tour.id,
        "reminder_24h",
        at(9, 0) - chrono::Duration::hours(24),
    );

    tokio::time::advance(22 * HOUR + 58 * MINUTE).await;
    drain().await;
    assert!(rx.try_recv().is_err(), "the 1 h reminder is not due yet");
    all_at(&next(&mut rx, 2).await, tour.id, "reminder_1h", at(8, 0));

    let sent = s.store.notifications_sent();
    assert_eq!(sent.len(), 4);
    assert!(sent.iter().all(|e| e["tour_id"] == tour.id.0.to_string()));
    assert!(s.store.reminders().iter().all(|(_, st)| st == "sent"));
    assert_eq!(rt.notifications_queued().await, Some(0));
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_tours_reminders_never_fire() {
    let s = setup().await;
    let (rt, mut rx) = start(&s).await;
    let cancelled = book(&rt, at(9, 0), at(10, 0)).await;
    let kept = book(&rt, at(11, 0), at(12, 0)).await;
    assert_eq!(kept.start, Some(at(11, 0)));
    rt.cancel(cancelled.id).await.unwrap();

    // Everything the clock brings until the kept tour's last reminder: only the kept tour's.
    let fired = next(&mut rx, 4).await;
    all_at(
        &fired[..2],
        kept.id,
        "reminder_24h",
        at(11, 0) - chrono::Duration::hours(24),
    );
    all_at(&fired[2..], kept.id, "reminder_1h", at(10, 0));
    tokio::time::advance(48 * HOUR).await;
    drain().await;
    assert!(rx.try_recv().is_err());
    for (r, status) in s.store.reminders() {
        let expected = if r.tour_id == Some(cancelled.id) {
            "cancelled"
        } else {
            "sent"
        };
        assert_eq!(status, expected, "{r:?}");
    }
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_rescheduled_tours_reminders_follow_the_new_start() {
    let s = setup().await;
    let (rt, mut rx) = start(&s).await;
    let tour = book(&rt, at(9, 0), at(10, 0)).await;
    let moved = rt
        .reschedule(tour.id, TimeWindow::new(at(14, 0), at(15, 0)).unwrap())
        .await
        .unwrap();
    assert_eq!(moved.status, TourStatus::Pending);
    assigned(&rt, tour.id).await;
    let tour = rt.accept(tour.id).await.unwrap();
    assert_eq!(tour.start, Some(at(14, 0)));

    all_at(
        &next(&mut rx, 2).await,
        tour.id,
        "reminder_24h",
        at(14, 0) - chrono::Duration::hours(24),
    );
    all_at(&next(&mut rx, 2).await, tour.id, "reminder_1h", at(13, 0));
    let due: Vec<(DateTime<Utc>, String)> = s
        .store
        .reminders()
        .into_iter()
        .map(|(r, status)| (r.due_at, status))
        .collect();
    assert_eq!(due.len(), 8);
    for (at_time, status) in due {
        let old = at_time == at(8, 0) || at_time == at(9, 0) - chrono::Duration::hours(24);
        assert_eq!(status, if old { "cancelled" } else { "sent" });
    }
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_restarted_runtime_rearms_from_the_store_and_sends_nothing_twice() {
    let s = setup().await;
    let (rt, mut rx) = start(&s).await;
    let tour = book(&rt, at(9, 0), at(10, 0)).await;
    all_at(
        &next(&mut rx, 2).await,
        tour.id,
        "reminder_24h",
        at(9, 0) - chrono::Duration::hours(24),
    );
    rt.shutdown().await;

    tokio::time::advance(HOUR).await;
    let (rt, mut rx) = start(&s).await;
    assert_eq!(
        rt.notifications_queued().await,
        Some(2),
        "only the 1 h ones"
    );
    all_at(&next(&mut rx, 2).await, tour.id, "reminder_1h", at(8, 0));
    tokio::time::advance(48 * HOUR).await;
    drain().await;
    assert!(rx.try_recv().is_err());
    assert_eq!(s.store.notifications_sent().len(), 4);
    rt.shutdown().await;
}

/// A mailer that fails its first `failures` deliveries (transiently, or for good when
/// `permanent`), recording the clock's time of every attempt.
#[derive(Debug)]
struct Flaky {
    clock: TokioClock,
    failures: usize,
    permanent: bool,
    tries: std::sync::Mutex<Vec<DateTime<Utc>>>,
}

#[async_trait]
impl Mailer for Flaky {
    async fn deliver(&self, _: &Mail) -> Result<(), MailError> {
        let mut tries = self.tries.lock().unwrap();
        tries.push(self.clock.now());
        if tries.len() <= self.failures {
            return Err(MailError {
                permanent: self.permanent,
                message: "relay said no".into(),
            });
        }
        Ok(())
    }
}

impl Flaky {
    fn tries(&self) -> Vec<DateTime<Utc>> {
        self.tries.lock().unwrap().clone()
    }
}

/// A runtime whose default notifier delivers through `mailer`.
async fn start_mailing(s: &Setup, mailer: Arc<Flaky>) -> Runtime {
    let config = RuntimeConfig {
        namespace: s.namespace.clone(),
        clock: Arc::new(s.clock),
        mailer: Some(mailer),
        ..RuntimeConfig::default()
    };
    Runtime::start(s.store.clone(), Arc::new(InProcessBus::new()), config)
        .await
        .unwrap()
}

/// Lets paused time run until `mailer` has been tried `n` times (a day at most).
async fn tried(mailer: &Flaky, n: usize) -> Vec<DateTime<Utc>> {
    for _ in 0..(24 * 60 * 6) {
        if mailer.tries().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    mailer.tries()
}

#[tokio::test(start_paused = true)]
async fn a_failed_delivery_is_tried_again_after_a_backoff() {
    let s = setup().await;
    let mailer = Arc::new(Flaky {
        clock: s.clock,
        failures: 2,
        permanent: false,
        tries: std::sync::Mutex::default(),
    });
    let rt = start_mailing(&s, mailer.clone()).await;
    book(&rt, at(9, 0), at(10, 0)).await;
    let due = at(9, 0) - chrono::Duration::hours(24);
    // Both 24 h reminders fail once at their due time and go out 30 s later.
    let tries = tried(&mailer, 4).await;
    assert_eq!(tries.len(), 4, "{tries:?}");
    for (i, t) in tries.iter().enumerate() {
        let expected = if i < 2 {
            due
        } else {
            due + chrono::Duration::seconds(30)
        };
        assert!(
            *t >= expected && *t <= expected + chrono::Duration::seconds(1),
            "try {i} at {t}, expected {expected}"
        );
    }
    drain().await;
    let day_before: Vec<_> = s
        .store
        .reminders()
        .into_iter()
        .filter(|(r, _)| r.kind == "reminder_24h")
        .collect();
    assert_eq!(day_before.len(), 2);
    for (r, status) in &day_before {
        assert_eq!((status.as_str(), r.attempts), ("sent", 1), "{r:?}");
    }
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_is_given_up_at_once_and_kept_as_failed() {
    let s = setup().await;
    let mailer = Arc::new(Flaky {
        clock: s.clock,
        failures: usize::MAX,
        permanent: true,
        tries: std::sync::Mutex::default(),
    });
    let rt = start_mailing(&s, mailer.clone()).await;
    book(&rt, at(9, 0), at(10, 0)).await;
    assert_eq!(tried(&mailer, 2).await.len(), 2);
    // An hour later nothing was tried again.
    tokio::time::sleep(HOUR).await;
    drain().await;
    assert_eq!(mailer.tries().len(), 2);
    for (r, status) in s.store.reminders() {
        let expected = if r.kind == "reminder_24h" {
            "failed"
        } else {
            "pending"
        };
        assert_eq!(status, expected, "{r:?}");
    }
    rt.shutdown().await;
}

/// The pending reminder rows (the table also holds the tours' other notifications).
async fn pending_reminders(db: &TestDb, tour: Option<TourId>) -> Vec<DueNotification> {
    let mut pending = db.store.pending_notifications(tour).await.unwrap();
    pending.retain(|n| n.kind.starts_with("reminder_"));
    pending
}

/// The store's guards: a reminder is recorded sent once, with one `notification.sent` event,
/// and never once its tour was cancelled.
async fn reminders_are_recorded_once_and_only_for_booked_tours(db: &TestDb, _: Backend) {
    let realtor_id = RealtorId(Uuid::new_v4());
    insert_users(db.db(), &[realtor_id.0]).await;
    db.store
        .upsert_realtor_profiles(&[realtor(realtor_id, lisbon(0.0))])
        .await
        .unwrap();
    let mut tours = Vec::new();
    for hour in [10, 12] {
        let new = new_tour();
        insert_users(db.db(), &[new.customer_id.0]).await;
        let CreateOutcome::Created(tour) = db.store.create_tour_from_payment(new).await.unwrap()
        else {
            panic!("created");
        };
        let why = explanation(realtor_id);
        let assigned = db
            .store
            .assign(Assignment {
                tour_id: tour.id,
                realtor_id,
                start: at(hour, 0),
                end: at(hour + 1, 0),
                explanation: &why,
                expected_version: tour.version,
            })
            .await
            .unwrap();
        let offsets = [HOUR * 24, HOUR];
        let now = at(hour, 0) - chrono::Duration::hours(25);
        db.store
            .schedule_reminders(&assigned, &reminders_for(at(hour, 0), &offsets, now))
            .await
            .unwrap();
        tours.push(assigned);
    }
    let (kept, cancelled) = (&tours[0], &tours[1]);
    let pending = pending_reminders(db, None).await;
    assert_eq!(pending.len(), 8, "2 tours x 2 kinds x 2 people");
    assert!(pending.windows(2).all(|w| w[0].due_at <= w[1].due_at));
    let of_kept = pending_reminders(db, Some(kept.id)).await;
    assert_eq!(of_kept.len(), 4);

    let folder = tempfile::tempdir().unwrap();
    let mailer = EmlFolder::new(folder.path(), "no-reply@tourwise.local").unwrap();
    let now = at(9, 30);
    for r in &of_kept {
        let first = db.store.deliver_notification(r.id, now, &mailer).await;
        assert!(matches!(first, Ok(Delivery::Sent)), "{first:?}");
        let again = db.store.deliver_notification(r.id, now, &mailer).await;
        assert!(matches!(again, Ok(Delivery::Skipped)), "{again:?}");
        let eml = std::fs::read_to_string(folder.path().join(format!("{}.eml", r.id))).unwrap();
        assert!(eml.contains(&format!("To: {}", r.recipient)), "{eml}");
    }
    assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 4);
    // Cancelled in the store, its reminders not yet: the guard still refuses them.
    db.store
        .transition(Change::new(
            cancelled.id,
            Transition::Cancel,
            cancelled.version,
        ))
        .await
        .unwrap();
    let of_cancelled = pending_reminders(db, Some(cancelled.id)).await;
    assert_eq!(of_cancelled.len(), 4);
    for r in &of_cancelled {
        let skipped = db.store.deliver_notification(r.id, now, &mailer).await;
        assert!(matches!(skipped, Ok(Delivery::Skipped)), "{skipped:?}");
    }
    assert!(pending_reminders(db, None).await.is_empty());
    assert_eq!(
        std::fs::read_dir(folder.path()).unwrap().count(),
        4,
        "none for the cancelled"
    );

    let notifications: Vec<_> = outbox(db.db())
        .await
        .into_iter()
        .filter(|(topic, ..)| topic == "notifications")
        .collect();
    // Every reminder row announced once when scheduled, on its tour's key.
    let scheduled: Vec<_> = notifications
        .iter()
        .filter(|(_, event, ..)| event == "notification.scheduled")
        .collect();
    assert_eq!(scheduled.len(), 8);
    for (_, _, key, payload) in &scheduled {
        assert_eq!(payload["data"]["tour_id"].as_str(), Some(key.as_str()));
        assert!(tours.iter().any(|t| t.id.0.to_string() == *key));
        assert!(payload["data"]["recipient_email"].is_string());
        assert!(payload["data"]["kind"]
            .as_str()
            .is_some_and(|k| k == "reminder_24h" || k == "reminder_1h"));
    }
    let sent: Vec<_> = notifications
        .iter()
        .filter(|(_, event, ..)| event == "notification.sent")
        .collect();
    assert_eq!(sent.len(), 4);
    assert_eq!(notifications.len(), 12, "nothing but scheduled and sent");
    for (_, _, key, payload) in &sent {
        assert_eq!(key, &kept.id.0.to_string());
        assert_eq!(payload["data"]["tour_id"], kept.id.0.to_string());
        assert!(of_kept
            .iter()
            .any(|r| payload["data"]["notification_id"] == r.id.to_string()));
    }
}
on_both!(reminders_are_recorded_once_and_only_for_booked_tours);

/// Delivers like `folder`, then fails as a process killed before recording the delivery would.
#[derive(Debug)]
struct DiesAfterSending(EmlFolder);

#[async_trait]
impl Mailer for DiesAfterSending {
    async fn deliver(&self, mail: &Mail) -> Result<(), MailError> {
        self.0.deliver(mail).await?;
        Err(MailError {
            permanent: false,
            message: "killed before the commit".into(),
        })
    }
}

/// An assignment writes its two emails with it; a crash between mailing one and recording it
/// leaves it pending, and delivering it again makes no second email and one event.
async fn a_crash_after_sending_does_not_send_twice(db: &TestDb, _: Backend) {
    let realtor_id = RealtorId(Uuid::new_v4());
    let new = new_tour();
    insert_users(db.db(), &[realtor_id.0, new.customer_id.0]).await;
    db.store
        .upsert_realtor_profiles(&[realtor(realtor_id, lisbon(0.0))])
        .await
        .unwrap();
    let CreateOutcome::Created(tour) = db.store.create_tour_from_payment(new).await.unwrap() else {
        panic!("created");
    };
    let why = explanation(realtor_id);
    db.store
        .assign(Assignment {
            tour_id: tour.id,
            realtor_id,
            start: at(10, 0),
            end: at(11, 0),
            explanation: &why,
            expected_version: tour.version,
        })
        .await
        .unwrap();
    let pending = db.store.pending_notifications(Some(tour.id)).await.unwrap();
    let kinds: Vec<&str> = pending.iter().map(|n| n.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["tour_assigned", "tour_assigned"],
        "customer and realtor"
    );

    let dir = tempfile::tempdir().unwrap();
    let folder = EmlFolder::new(dir.path(), "no-reply@tourwise.local").unwrap();
    let first = &pending[0];
    let now = at(9, 0);
    let crashed = db
        .store
        .deliver_notification(first.id, now, &DiesAfterSending(folder.clone()))
        .await;
    assert!(matches!(crashed, Ok(Delivery::Failed(_))), "{crashed:?}");
    let still = db.store.pending_notifications(Some(tour.id)).await.unwrap();
    assert!(still.iter().any(|n| n.id == first.id), "still pending");

    let again = db.store.deliver_notification(first.id, now, &folder).await;
    assert!(matches!(again, Ok(Delivery::Sent)), "{again:?}");
    let once_more = db.store.deliver_notification(first.id, now, &folder).await;
    assert!(matches!(once_more, Ok(Delivery::Skipped)), "{once_more:?}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "one email"
    );
    let eml = std::fs::read_to_string(dir.path().join(format!("{}.eml", first.id))).unwrap();
    assert!(eml.contains(&format!("To: {}", first.recipient)), "{eml}");
    assert!(eml.contains(&tour.id.0.to_string()), "{eml}");
    let sent = outbox(db.db())
        .await
        .into_iter()
        .filter(|(_, event, _, payload)| {
            event == "notification.sent"
                && payload["data"]["notification_id"] == first.id.to_string()
        })
        .count();
    assert_eq!(sent, 1);
}
on_both!(a_crash_after_sending_does_not_send_twice);
