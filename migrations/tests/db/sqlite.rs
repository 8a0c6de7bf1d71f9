//! SQLite's triggers standing in for the exclusion constraint, and the time format they
//! compare.

use chrono::Duration;
use migrations::{connect_and_migrate, DbErr, TOURS_NO_OVERLAP};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;

use crate::support::{at, insert_tour, update_tour, NewTour, TestSqlite};

fn assert_overlap_error(result: Result<(), DbErr>) {
    let err = result.expect_err("an overlapping active tour must be refused");
    assert!(
        err.to_string().contains(TOURS_NO_OVERLAP),
        "unexpected error: {err}"
    );
}

async fn migrated(sqlite: &TestSqlite) -> DatabaseConnection {
    connect_and_migrate(&sqlite.url()).await.expect("migrate")
}

#[tokio::test]
async fn trigger_refuses_overlapping_active_inserts_only() {
    let sqlite = TestSqlite::create();
    let db = migrated(&sqlite).await;
    let realtor = Uuid::new_v4();

    for (start, end) in [
        (at(8, 0), at(9, 0)),
        (at(10, 0), at(11, 0)),
        (at(11, 0), at(12, 0)),
    ] {
        insert_tour(&db, &NewTour::assigned(realtor, start, end))
            .await
            .unwrap_or_else(|err| panic!("[{start}, {end}) must fit: {err}"));
    }
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

    for status in ["assigned", "accepted", "in_progress"] {
        let tour = NewTour::assigned(realtor, at(10, 59), at(11, 1)).with_status(status);
        assert_overlap_error(insert_tour(&db, &tour).await);
    }
    // Containing and contained intervals overlap too.
    assert_overlap_error(insert_tour(&db, &NewTour::assigned(realtor, at(7, 0), at(13, 0))).await);
    assert_overlap_error(insert_tour(&db, &NewTour::assigned(realtor, at(8, 10), at(8, 20))).await);
}

#[tokio::test]
async fn trigger_refuses_updates_into_an_overlap() {
    let sqlite = TestSqlite::create();
    let db = migrated(&sqlite).await;
    let realtor = Uuid::new_v4();
    insert_tour(&db, &NewTour::assigned(realtor, at(10, 0), at(11, 0)))
        .await
        .unwrap();
    let later = NewTour::assigned(realtor, at(12, 0), at(13, 0));
    insert_tour(&db, &later).await.unwrap();

    // Moving a tour onto another is refused; moving it within its own slot is not a clash
    // with itself; moving it to touch the other is fine.
    let mut moved = later.clone();
    moved.start_at = Some(at(10, 30));
    assert_overlap_error(update_tour(&db, &moved).await);
    moved.start_at = Some(at(12, 15));
    update_tour(&db, &moved).await.expect("shrinking in place");
    moved.start_at = Some(at(11, 0));
    update_tour(&db, &moved)
        .await
        .expect("touching the earlier tour");

    // Another realtor's tour taken over by this realtor is refused when it overlaps.
    let other = NewTour::assigned(Uuid::new_v4(), at(10, 15), at(10, 45));
    insert_tour(&db, &other).await.unwrap();
    let mut taken_over = other.clone();
    taken_over.realtor_id = Some(realtor);
    assert_overlap_error(update_tour(&db, &taken_over).await);

    // A cancelled overlapping tour may exist, but not come back to life.
    let cancelled = NewTour::assigned(realtor, at(10, 30), at(11, 30)).with_status("cancelled");
    insert_tour(&db, &cancelled).await.unwrap();
    assert_overlap_error(update_tour(&db, &cancelled.clone().with_status("accepted")).await);
    // Cancelling an active tour frees its slot.
    let freed = NewTour::assigned(realtor, at(14, 0), at(15, 0));
    insert_tour(&db, &freed).await.unwrap();
    update_tour(&db, &freed.clone().with_status("cancelled"))
        .await
        .unwrap();
    insert_tour(&db, &NewTour::assigned(realtor, at(14, 0), at(15, 0)))
        .await
        .expect("the freed slot");
}

#[tokio::test]
async fn times_are_rfc3339_text_and_compared_as_instants() {
    let sqlite = TestSqlite::create();
    let db = migrated(&sqlite).await;
    let realtor = Uuid::new_v4();
    let whole = NewTour::assigned(realtor, at(10, 0), at(11, 0));
    insert_tour(&db, &whole).await.unwrap();

    // The format sqlx gives chrono's DateTime<Utc> in SQLite.
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "SELECT start_at, typeof(realtor_id) FROM tours WHERE id = ?",
            [whole.id.into()],
        ))
        .await
        .unwrap()
        .expect("the tour");
    assert_eq!(
        row.try_get_by_index::<String>(0).unwrap(),
        "2026-12-01T10:00:00+00:00"
    );
    assert_eq!(row.try_get_by_index::<String>(1).unwrap(), "blob");

    // Fractions of a second count (sqlx writes 0, 3, 6 or 9 digits of them).
    let just_before = at(11, 0) - Duration::milliseconds(250);
    assert_overlap_error(
        insert_tour(&db, &NewTour::assigned(realtor, just_before, at(11, 30))).await,
    );
    let fractional = NewTour::assigned(realtor, at(12, 0), at(13, 0) + Duration::milliseconds(250));
    insert_tour(&db, &fractional).await.unwrap();
    assert_overlap_error(insert_tour(&db, &NewTour::assigned(realtor, at(13, 0), at(14, 0))).await);
    let touching = NewTour::assigned(realtor, at(13, 0) + Duration::milliseconds(250), at(14, 0));
    insert_tour(&db, &touching)
        .await
        .expect("touching at a fractional instant");

    // Another writer's format ("Z", a space for "T") is the same instant to the trigger,
    // where text order would miss this overlap (' ' sorts before 'T').
    let pending = NewTour::assigned(realtor, at(16, 0), at(17, 0)).with_status("pending");
    insert_tour(&db, &pending).await.unwrap();
    let raw_update = db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "UPDATE tours SET status = 'assigned', \
             start_at = '2026-12-01 13:30:00Z', end_at = '2026-12-01 14:30:00Z' WHERE id = ?",
            [pending.id.into()],
        ))
        .await
        .map(|_| ());
    assert_overlap_error(raw_update);
}
