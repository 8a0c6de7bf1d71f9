//! Every migration applies, rolls back and applies again, on both backends, and the
//! uniqueness rules that make writes idempotent hold.

use chrono::Utc;
use migrations::{DbErr, Migrator, MigratorTrait, Query, SchemaManager};
use sea_orm::{DatabaseConnection, SqlErr};
use uuid::Uuid;

use crate::support::{at, count, insert_tour, NewTour, TestPg, TestSqlite, TABLES};

async fn assert_up_down_up(db: &DatabaseConnection) {
    Migrator::up(db, None).await.expect("first up");
    assert_tables_exist(db).await;
    assert!(Migrator::get_pending_migrations(db)
        .await
        .unwrap()
        .is_empty());

    Migrator::down(db, None).await.expect("down all");
    let manager = SchemaManager::new(db);
    for table in TABLES {
        assert!(
            !manager.has_table(table).await.unwrap(),
            "{table} left behind by down"
        );
    }

    Migrator::up(db, None).await.expect("second up");
    assert_tables_exist(db).await;
}

async fn assert_tables_exist(db: &DatabaseConnection) {
    for table in TABLES {
        let rows = count(db, table)
            .await
            .unwrap_or_else(|err| panic!("table {table} is not queryable: {err}"));
        assert_eq!(rows, 0, "{table} starts empty");
    }
}

#[tokio::test]
async fn postgres_migrations_go_up_down_and_up_again() {
    let pg = TestPg::create().await;
    assert_up_down_up(&pg.connect().await).await;
}

#[tokio::test]
async fn sqlite_migrations_go_up_down_and_up_again() {
    let sqlite = TestSqlite::create();
    assert_up_down_up(&sqlite.connect().await).await;
}

async fn assert_duplicate_payment_rejected(db: &DatabaseConnection) {
    Migrator::up(db, None).await.expect("migrate");
    let first = NewTour::assigned(Uuid::new_v4(), at(10, 0), at(11, 0)).with_status("pending");
    insert_tour(db, &first)
        .await
        .expect("first tour of the payment");
    let again = NewTour {
        id: Uuid::new_v4(),
        ..first.clone()
    };
    let err = insert_tour(db, &again)
        .await
        .expect_err("a second tour for one payment must be rejected");
    assert!(
        matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))),
        "unexpected error: {err}"
    );
    assert_eq!(count(db, "tours").await.unwrap(), 1);
}

#[tokio::test]
async fn postgres_rejects_a_second_tour_for_one_payment() {
    let pg = TestPg::create().await;
    assert_duplicate_payment_rejected(&pg.connect().await).await;
}

#[tokio::test]
async fn sqlite_rejects_a_second_tour_for_one_payment() {
    let sqlite = TestSqlite::create();
    assert_duplicate_payment_rejected(&sqlite.connect().await).await;
}

async fn insert_notification(db: &DatabaseConnection, tour_id: Option<Uuid>) -> Result<(), DbErr> {
    let insert = Query::insert()
        .into_table("notifications")
        .columns([
            "id",
            "kind",
            "tour_id",
            "recipient_email",
            "subject",
            "body",
            "due_at",
            "created_at",
        ])
        .values_panic([
            Uuid::new_v4().into(),
            "tour_reminder".into(),
            tour_id.into(),
            "ana@example.com".into(),
            "Your tour".into(),
            "See you tomorrow.".into(),
            at(9, 0).into(),
            Utc::now().into(),
        ])
        .to_owned();
    sea_orm::ConnectionTrait::execute(db, &insert)
        .await
        .map(|_| ())
}

/// Scheduling one reminder twice must conflict, with or without a tour.
async fn assert_notifications_dedup(db: &DatabaseConnection) {
    Migrator::up(db, None).await.expect("migrate");
    for tour_id in [Some(Uuid::new_v4()), None] {
        insert_notification(db, tour_id).await.expect("first");
        let err = insert_notification(db, tour_id)
            .await
            .expect_err("same reminder twice");
        assert!(
            matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))),
            "unexpected error: {err}"
        );
    }
    // Other tours' reminders at the same time are distinct.
    insert_notification(db, Some(Uuid::new_v4())).await.unwrap();
    assert_eq!(count(db, "notifications").await.unwrap(), 3);
}

#[tokio::test]
async fn postgres_notifications_are_unique_per_reminder() {
    let pg = TestPg::create().await;
    assert_notifications_dedup(&pg.connect().await).await;
}

#[tokio::test]
async fn sqlite_notifications_are_unique_per_reminder() {
    let sqlite = TestSqlite::create();
    assert_notifications_dedup(&sqlite.connect().await).await;
}
