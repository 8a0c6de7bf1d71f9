//! `actors::store` against real databases: every case runs on PostgreSQL and on SQLite.

mod support;

use std::time::Instant;

use actors::store::{Assignment, Change, CreateOutcome, SeaStore, Store, StoreError, TourRecord};
use chrono::Duration;
use engine::{RealtorId, RealtorStatus, TimeWindow, TourId, TourStatus, Transition};
use sea_orm::{ConnectionTrait, TransactionTrait};
use support::{
    at, count, explanation, insert_assigned_tours, insert_users, lisbon, new_tour, outbox, realtor,
    Backend, TestDb,
};
use uuid::Uuid;

/// A realtor with a user row and a profile.
async fn seed_realtor(db: &TestDb) -> RealtorId {
    let id = RealtorId(Uuid::new_v4());
    insert_users(db.db(), &[id.0]).await;
    db.store
        .upsert_realtor_profiles(&[realtor(id, lisbon(0.0))])
        .await
        .expect("upsert profile");
    id
}

/// Creates a fresh pending tour.
async fn create(store: &SeaStore) -> TourRecord {
    match store
        .create_tour_from_payment(new_tour())
        .await
        .expect("create")
    {
        CreateOutcome::Created(tour) => *tour,
        other => panic!("expected a new tour, got {other:?}"),
    }
}

async fn assign(
    store: &SeaStore,
    tour: &TourRecord,
    realtor: RealtorId,
    hour: u32,
) -> Result<TourRecord, StoreError> {
    let why = explanation(realtor);
    store
        .assign(Assignment {
            tour_id: tour.id,
            realtor_id: realtor,
            start: at(hour, 0),
            end: at(hour + 1, 0),
            explanation: &why,
            expected_version: tour.version,
        })
        .await
}

#[test]
fn guard_name_matches_the_migration() {
    assert_eq!(
        actors::store::TOURS_NO_OVERLAP,
        migrations::TOURS_NO_OVERLAP
    );
}

async fn duplicate_payment_makes_one_tour(db: &TestDb, _: Backend) {
    let first = new_tour();
    let CreateOutcome::Created(created) = db
        .store
        .create_tour_from_payment(first.clone())
        .await
        .expect("create")
    else {
        panic!("first delivery must create");
    };
    let created = *created;
    assert_eq!(created.status, TourStatus::Pending);
    assert_eq!(
        db.store.get_tour(created.id).await.unwrap(),
        Some(created.clone())
    );

    // Redelivery with a new event id and tour id: nothing new.
    let mut again = first.clone();
    again.tour_id = TourId(Uuid::new_v4());
    again.payment_event_id = Uuid::new_v4();
    let outcome = db.store.create_tour_from_payment(again).await.unwrap();
    assert_eq!(outcome, CreateOutcome::AlreadyExists(created.id));
    assert_eq!(count(db.db(), "tours", None).await, 1);
    assert_eq!(count(db.db(), "outbox", None).await, 1);
    assert_eq!(
        db.store.tour_by_payment(first.payment_id).await.unwrap(),
        Some(created)
    );

    // Two racing deliveries of another payment: one tour, one AlreadyExists.
    let racing = new_tour();
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (store, mut tour) = (db.store.clone(), racing.clone());
            tour.tour_id = TourId(Uuid::new_v4());
            tokio::spawn(async move { store.create_tour_from_payment(tour).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap().expect("no error on a race"));
    }
    let created: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            CreateOutcome::Created(t) => Some(t.id),
            CreateOutcome::AlreadyExists(_) => None,
        })
        .collect();
    assert_eq!(created.len(), 1, "{outcomes:?}");
    assert!(outcomes.contains(&CreateOutcome::AlreadyExists(created[0])));
    assert_eq!(
        count(db.db(), "tours", Some(("payment_id", racing.payment_id.0))).await,
        1
    );
    assert_eq!(count(db.db(), "outbox", None).await, 2);
}
on_both!(duplicate_payment_makes_one_tour);

async fn assigned_tour_is_recovered(db: &TestDb, _: Backend) {
    let realtor_id = seed_realtor(db).await;
    let tour = create(&db.store).await;
    let assigned = assign(&db.store, &tour, realtor_id, 10)
        .await
        .expect("assign");
    assert_eq!(assigned.status, TourStatus::Assigned);
    assert_eq!(assigned.version, tour.version + 1);
    assert_eq!(assigned.realtor_id, Some(realtor_id));
    assert_eq!(assigned.explanation, Some(explanation(realtor_id)));
    assert_eq!(
        db.store.get_tour(tour.id).await.unwrap(),
        Some(assigned.clone())
    );

    let bookings = db.store.load_active_bookings().await.unwrap();
    assert_eq!(bookings, vec![assigned.booking().expect("booking")]);
    let (_, booking) = bookings[0];
    assert_eq!(
        (booking.start, booking.end),
        (at(10, 0).timestamp(), at(11, 0).timestamp())
    );
    assert_eq!(booking.first, tour.stops[0].location);
    assert_eq!(booking.last, tour.stops[1].location);

    // An invalid profile (unknown time zone) is skipped, the valid one loads as written.
    let broken = Uuid::new_v4();
    insert_users(db.db(), &[broken]).await;
    db.store
        .upsert_realtor_profiles(&[realtor(RealtorId(broken), lisbon(0.1))])
        .await
        .unwrap();
    db.db()
        .execute_unprepared("UPDATE realtor_profiles SET time_zone = 'Mars/Olympus'")
        .await
        .unwrap();
    db.store
        .upsert_realtor_profiles(&[realtor(realtor_id, lisbon(0.0))])
        .await
        .unwrap();
    assert_eq!(
        db.store.load_realtors().await.unwrap(),
        vec![realtor(realtor_id, lisbon(0.0))]
    );

    let pending = create(&db.store).await;
    let open = db.store.load_open_tours().await.unwrap();
    assert_eq!(open, vec![assigned, pending]);
}
on_both!(assigned_tour_is_recovered);

async fn concurrent_overlapping_assigns_one_wins(db: &TestDb, _: Backend) {
    let realtor_id = seed_realtor(db).await;
    let (a, b) = (create(&db.store).await, create(&db.store).await);
    let why = explanation(realtor_id);
    let tasks: Vec<_> = [(a, 10, 0), (b, 10, 30)]
        .into_iter()
        .map(|(tour, hour, minute)| {
            let (store, why) = (db.store.clone(), why.clone());
            tokio::spawn(async move {
                let start = at(hour, minute);
                store
                    .assign(Assignment {
                        tour_id: tour.id,
                        realtor_id,
                        start,
                        end: start + Duration::hours(1),
                        explanation: &why,
                        expected_version: tour.version,
                    })
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let won = results.iter().filter(|r| r.is_ok()).count();
    let overlaps = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Overlap)))
        .count();
    assert_eq!((won, overlaps), (1, 1), "{results:?}");
    assert_eq!(db.store.load_active_bookings().await.unwrap().len(), 1);
    // The loser wrote nothing: still pending at its version, no events beyond the winner's.
    let pending = db.store.load_open_tours().await.unwrap();
    assert_eq!(
        pending
            .iter()
            .filter(|t| t.status == TourStatus::Pending && t.version == 0)
            .count(),
        1
    );
    // The realtor's `realtor.updated`, two `tour.created`, the winner's three.
    assert_eq!(count(db.db(), "outbox", None).await, 1 + 2 + 3);
    assert_eq!(
        StoreError::Overlap.to_string(),
        "the realtor already holds an overlapping tour"
    );
}
on_both!(concurrent_overlapping_assigns_one_wins);

async fn dropped_transaction_leaves_nothing(db: &TestDb, _: Backend) {
    let tour = new_tour();
    let txn = db.db().begin().await.unwrap();
    let outcome = db.store.create_tour_in(&txn, &tour).await.unwrap();
    assert!(matches!(outcome, CreateOutcome::Created(_)));
    drop(txn);

    assert_eq!(
        db.store.tour_by_payment(tour.payment_id).await.unwrap(),
        None
    );
    for table in ["tours", "processed_payments", "tour_history", "outbox"] {
        assert_eq!(count(db.db(), table, None).await, 0, "{table}");
    }
    // The payment is not marked processed: its redelivery creates the tour.
    let again = db.store.create_tour_from_payment(tour).await.unwrap();
    assert!(matches!(again, CreateOutcome::Created(_)));
}
on_both!(dropped_transaction_leaves_nothing);

async fn stale_version_and_illegal_moves_conflict(db: &TestDb, _: Backend) {
    let realtor_id = seed_realtor(db).await;
    let tour = create(&db.store).await;
    let stale = TourRecord {
        version: tour.version + 1,
        ..tour.clone()
    };
    assert!(matches!(
        assign(&db.store, &stale, realtor_id, 10).await,
        Err(StoreError::Conflict(id)) if id == tour.id
    ));
    let started = db
        .store
        .transition(Change::new(tour.id, Transition::Start, tour.version))
        .await;
    assert!(
        matches!(started, Err(StoreError::Conflict(_))),
        "{started:?}"
    );
    let missing = TourRecord {
        id: TourId(Uuid::new_v4()),
        ..tour.clone()
    };
    assert!(matches!(
        assign(&db.store, &missing, realtor_id, 10).await,
        Err(StoreError::NotFound(_))
    ));

    let assigned = assign(&db.store, &tour, realtor_id, 10).await.unwrap();
    // The version read before the assignment is stale now.
    let accept_stale = db
        .store
        .transition(Change::new(tour.id, Transition::Accept, tour.version))
        .await;
    assert!(matches!(accept_stale, Err(StoreError::Conflict(_))));
    let accepted = db
        .store
        .transition(Change::new(tour.id, Transition::Accept, assigned.version))
        .await
        .unwrap();
    assert_eq!(
        (accepted.status, accepted.version),
        (TourStatus::Accepted, 2)
    );
    assert_eq!(accepted.realtor_id, Some(realtor_id));
    assert_eq!(
        db.store.get_tour(tour.id).await.unwrap(),
        Some(accepted.clone())
    );

    // Finishing a tour is not a cancellation: only `tours` events.
    let events_before = count(db.db(), "outbox", None).await;
    let started = db
        .store
        .transition(Change::new(tour.id, Transition::Start, accepted.version))
        .await
        .unwrap();
    let completed = db
        .store
        .transition(Change::new(tour.id, Transition::Complete, started.version))
        .await
        .unwrap();
    assert_eq!(completed.status, TourStatus::Completed);
    assert_eq!(completed.realtor_id, Some(realtor_id));
    let rows = outbox(db.db()).await;
    let tail: Vec<_> = rows[usize::try_from(events_before).unwrap()..]
        .iter()
        .map(|(topic, event, _, _)| (topic.as_str(), event.as_str()))
        .collect();
    assert_eq!(
        tail,
        [("tours", "tour.started"), ("tours", "tour.completed")]
    );
    let reopened = db
        .store
        .transition(Change::new(tour.id, Transition::Cancel, completed.version))
        .await;
    assert!(matches!(reopened, Err(StoreError::Conflict(_))));
}
on_both!(stale_version_and_illegal_moves_conflict);

async fn outbox_and_history_follow_the_lifecycle(db: &TestDb, _: Backend) {
    let realtor_id = seed_realtor(db).await;
    let tour = create(&db.store).await;
    let assigned = assign(&db.store, &tour, realtor_id, 10).await.unwrap();
    let declined = db
        .store
        .transition(Change {
            declined: Some(realtor_id),
            ..Change::new(tour.id, Transition::Decline, assigned.version)
        })
        .await
        .unwrap();
    assert_eq!(declined.status, TourStatus::Pending);
    assert_eq!(
        (
            declined.realtor_id,
            declined.start,
            declined.explanation.as_ref()
        ),
        (None, None, None)
    );
    assert_eq!(declined.declined, vec![realtor_id]);
    let window = TimeWindow::new(at(12, 0), at(17, 0)).unwrap();
    let rescheduled = db
        .store
        .transition(Change {
            new_window: Some(window),
            ..Change::new(tour.id, Transition::Reschedule, declined.version)
        })
        .await
        .unwrap();
    let cancelled = db
        .store
        .transition(Change {
            reason: Some("customer changed plans".into()),
            ..Change::new(tour.id, Transition::Cancel, rescheduled.version)
        })
        .await
        .unwrap();
    assert_eq!(cancelled.window, window);
    assert_eq!(cancelled.declined, vec![realtor_id]);
    assert_eq!(
        db.store.get_tour(tour.id).await.unwrap(),
        Some(cancelled.clone())
    );
    assert!(db.store.load_open_tours().await.unwrap().is_empty());
    assert!(db.store.load_active_bookings().await.unwrap().is_empty());

    let rows = outbox(db.db()).await;
    let kinds: Vec<(&str, &str)> = rows
        .iter()
        .map(|(topic, event, _, _)| (topic.as_str(), event.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("availability", "realtor.updated"),
            ("tours", "tour.created"),
            ("tours", "tour.assigned"),
            ("appointments", "appointment.scheduled"),
            ("availability", "realtor.booked"),
            ("tours", "tour.declined"),
            ("appointments", "appointment.cancelled"),
            ("availability", "realtor.released"),
            ("tours", "tour.rescheduled"),
            ("tours", "tour.cancelled"),
        ]
    );
    for (topic, event, key, payload) in &rows {
        assert_eq!(payload["type"], event.as_str());
        assert!(Uuid::parse_str(payload["event_id"].as_str().unwrap()).is_ok());
        assert!(
            chrono::DateTime::parse_from_rfc3339(payload["occurred_at"].as_str().unwrap()).is_ok()
        );
        let expected_key = if topic == "tours" {
            tour.id.0
        } else {
            realtor_id.0
        };
        assert_eq!(key, &expected_key.to_string());
    }
    let profile = &rows[0].3["data"];
    assert_eq!(profile["realtor_id"], realtor_id.0.to_string());
    assert_eq!(profile["home"]["lat"], lisbon(0.0).lat());
    assert_eq!(profile["time_zone"], "Europe/Lisbon");
    assert_eq!(profile["status"], "available");
    // Peers read it back into the same profile (scale-out, runtime::peers).
    assert_eq!(
        actors::store::realtor_from_event(profile),
        Ok(realtor(realtor_id, lisbon(0.0)))
    );
    let created = &rows[1].3["data"];
    assert_eq!(created["id"], tour.id.0.to_string());
    assert_eq!(created["status"], "pending");
    assert_eq!(created["listings"].as_array().map(Vec::len), Some(2));
    assert_eq!(rows[4].3["data"]["realtor_id"], realtor_id.0.to_string());
    assert_eq!(rows[9].3["data"]["reason"], "customer changed plans");

    assert_eq!(
        count(db.db(), "tour_history", Some(("tour_id", tour.id.0))).await,
        5
    );
}
on_both!(outbox_and_history_follow_the_lifecycle);

/// A status change is stored with one `realtor.status_changed` event keyed by the realtor; setting
/// the status it already has, or an unknown realtor's, writes nothing.
async fn status_changes_emit_one_event_each(db: &TestDb, _: Backend) {
    let realtor_id = seed_realtor(db).await;
    let store = &db.store;
    assert!(store
        .set_realtor_status(realtor_id, RealtorStatus::Unavailable)
        .await
        .unwrap());
    assert!(!store
        .set_realtor_status(realtor_id, RealtorStatus::Unavailable)
        .await
        .unwrap());
    assert!(!store
        .set_realtor_status(RealtorId(Uuid::new_v4()), RealtorStatus::Unavailable)
        .await
        .unwrap());
    assert!(store
        .set_realtor_status(realtor_id, RealtorStatus::Available)
        .await
        .unwrap());
    let loaded = store.load_realtors().await.unwrap();
    assert_eq!(loaded[0].status, RealtorStatus::Available);
    let events: Vec<_> = outbox(db.db())
        .await
        .into_iter()
        .filter(|(topic, event, ..)| topic == "availability" && event != "realtor.updated")
        .collect();
    assert_eq!(events.len(), 2);
    for ((_, event, key, payload), want) in events.iter().zip(["unavailable", "available"]) {
        assert_eq!(event, "realtor.status_changed");
        assert_eq!(key, &realtor_id.0.to_string());
        assert_eq!(payload["data"]["status"], want);
        assert_eq!(payload["data"]["realtor_id"], realtor_id.0.to_string());
    }
}
on_both!(status_changes_emit_one_event_each);

/// 10k realtors with 8 active tours each (80k bookings): seeded in batches, then loaded as a
/// restart would. Prints the time; timing claims belong to the benchmarks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_of_10k_realtors_and_80k_bookings() {
    const REALTORS: usize = 10_000;
    const PER_REALTOR: usize = 8;
    let db = TestDb::create(Backend::Postgres).await;
    let ids: Vec<Uuid> = (0..REALTORS).map(|_| Uuid::new_v4()).collect();
    insert_users(db.db(), &ids).await;
    let profiles: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            #[allow(clippy::cast_precision_loss, reason = "i < 10k")]
            let offset = (i % 100) as f64 * 0.001;
            realtor(RealtorId(*id), lisbon(offset))
        })
        .collect();
    db.store.upsert_realtor_profiles(&profiles).await.unwrap();
    let tours: Vec<_> = ids
        .iter()
        .flat_map(|realtor| {
            (0..PER_REALTOR).map(move |slot| {
                let start = at(8, 0) + Duration::minutes(90 * i64::try_from(slot).unwrap());
                (Uuid::new_v4(), *realtor, start)
            })
        })
        .collect();
    insert_assigned_tours(db.db(), &tours, 60).await;
    db.db().execute_unprepared("ANALYZE").await.unwrap();

    let started = Instant::now();
    let realtors = db.store.load_realtors().await.unwrap();
    let bookings = db.store.load_active_bookings().await.unwrap();
    let elapsed = started.elapsed();
    println!(
        "recovery: {} realtors + {} bookings loaded in {elapsed:?}",
        realtors.len(),
        bookings.len()
    );
    assert_eq!(realtors.len(), REALTORS);
    assert_eq!(bookings.len(), REALTORS * PER_REALTOR);
}
