//! PostgreSQL's exclusion constraint `tours_no_overlap`, under real concurrency.

use std::sync::Arc;

use chrono::Duration;
use migrations::{connect_and_migrate, MigratorTrait, TOURS_NO_OVERLAP};
use sea_orm::TransactionTrait;
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::support::{at, count, insert_tour, sqlstate, update_tour, NewTour, TestPg};

const EXCLUSION_VIOLATION: &str = "23P01";
const DEADLOCK_DETECTED: &str = "40P01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_overlapping_bookings_one_commits_the_other_gets_23p01() {
    let pg = TestPg::create().await;
    connect_and_migrate(&pg.url()).await.expect("migrate");
    let realtor = Uuid::new_v4();
    // Both transactions are open before either inserts: neither sees the other's row,
    // so only the constraint can stop the second one.
    let barrier = Arc::new(Barrier::new(2));
    let mut tasks = Vec::new();
    for offset in [0, 30] {
        let db = pg.connect().await; // one pool per writer: two server connections
        let barrier = Arc::clone(&barrier);
        let start = at(10, 0) + Duration::minutes(offset);
        let tour = NewTour::assigned(realtor, start, start + Duration::hours(1));
        tasks.push(tokio::spawn(async move {
            let txn = db.begin().await?;
            barrier.wait().await;
            insert_tour(&txn, &tour).await?;
            txn.commit().await
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("writer task"));
    }

    let failures: Vec<_> = outcomes.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(
        failures.len(),
        1,
        "exactly one writer must fail: {outcomes:?}"
    );
    // Usually the second writer waits for the first and then fails the constraint. When both
    // insert before either checks, each waits for the other's exclusion check and PostgreSQL
    // breaks the tie by aborting one with a deadlock: the guard held either way (the store
    // treats both codes as "overlap, re-check and retry").
    match sqlstate(failures[0]).as_deref() {
        Some(EXCLUSION_VIOLATION) => {
            assert!(failures[0].to_string().contains(TOURS_NO_OVERLAP));
        }
        Some(DEADLOCK_DETECTED) => {}
        other => panic!("unexpected failure {other:?}: {}", failures[0]),
    }
    assert_eq!(count(&pg.connect().await, "tours").await.unwrap(), 1);
}

#[tokio::test]
async fn only_overlapping_active_tours_of_one_realtor_are_excluded() {
    let pg = TestPg::create().await;
    let db = pg.connect().await;
    migrations::Migrator::up(&db, None).await.expect("migrate");
    let realtor = Uuid::new_v4();

    // Disjoint and touching ([10:00, 11:00) then [11:00, 12:00)) tours both fit.
    for (start, end) in [
        (at(8, 0), at(9, 0)),
        (at(10, 0), at(11, 0)),
        (at(11, 0), at(12, 0)),
    ] {
        insert_tour(&db, &NewTour::assigned(realtor, start, end))
            .await
            .unwrap_or_else(|err| panic!("[{start}, {end}) must fit: {err}"));
    }
    // Inactive tours and other realtors' tours may overlap anything.
    for status in ["cancelled", "completed", "pending", "unassignable"] {
        let tour = NewTour::assigned(realtor, at(10, 30), at(11, 30)).with_status(status);
        insert_tour(&db, &tour)
            .await
            .unwrap_or_else(|err| panic!("a {status} tour may overlap: {err}"));
    }
    insert_tour(
        &db,
        &NewTour::assigned(Uuid::new_v4(), at(10, 30), at(11, 30)),
    )
    .await
    .expect("another realtor may overlap");

    // Every active status is guarded, on insert...
    for status in ["assigned", "accepted", "in_progress"] {
        let tour = NewTour::assigned(realtor, at(10, 59), at(11, 1)).with_status(status);
        let err = insert_tour(&db, &tour)
            .await
            .expect_err("overlapping active tour");
        assert_eq!(
            sqlstate(&err).as_deref(),
            Some(EXCLUSION_VIOLATION),
            "{err}"
        );
    }
    // ...and on update: re-activating a cancelled tour that overlaps is refused.
    let cancelled = NewTour::assigned(realtor, at(8, 30), at(9, 30)).with_status("cancelled");
    insert_tour(&db, &cancelled).await.unwrap();
    let err = update_tour(&db, &cancelled.clone().with_status("accepted"))
        .await
        .expect_err("reactivating into an overlap");
    assert_eq!(
        sqlstate(&err).as_deref(),
        Some(EXCLUSION_VIOLATION),
        "{err}"
    );
}
