//! Test support: a fresh, migrated database per test (PostgreSQL or SQLite) behind a
//! [`SeaStore`], and typed builders for tours, realtors and explanations.

use std::env;

use actors::payments::PaymentSucceeded;
use actors::store::{NewTour, SeaStore};
use chrono::{DateTime, Duration, TimeZone as _, Utc};
use engine::{
    CustomerId, Explanation, ListingId, Location, PaymentId, Realtor, RealtorId, RealtorStatus,
    Stop, TimeWindow, TimeZone, TourId, WorkingHours, WorkingInterval,
};
use migrations::{Expr, ExprTrait, MigratorTrait, Query};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use uuid::Uuid;

/// Env var overriding the PostgreSQL server (no database name in it).
const PG_URL_ENV: &str = "TOURWISE_TEST_PG_URL";
const PG_DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A migrated database for one test, removed when dropped (also when the test panics).
pub struct TestDb {
    pub store: SeaStore,
    guard: Guard,
}

enum Guard {
    Postgres {
        server: String,
        name: String,
    },
    Sqlite(
        #[allow(dead_code, reason = "held only to delete the directory on drop")] tempfile::TempDir,
    ),
}

impl TestDb {
    pub async fn create(backend: Backend) -> Self {
        let (url, guard) = match backend {
            Backend::Postgres => {
                let server = env::var(PG_URL_ENV)
                    .unwrap_or_else(|_| PG_DEFAULT_URL.to_owned())
                    .trim_end_matches('/')
                    .to_owned();
                let name = format!("tourwise_test_{}", Uuid::new_v4().simple());
                let admin = Database::connect(format!("{server}/postgres"))
                    .await
                    .unwrap_or_else(|err| {
                        panic!("PostgreSQL at {server} is required ({err}); set {PG_URL_ENV}")
                    });
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.close().await.expect("close admin connection");
                (format!("{server}/{name}"), Guard::Postgres { server, name })
            }
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
                (url, Guard::Sqlite(dir))
            }
        };
        let db = migrations::connect(&url).await.expect("connect");
        migrations::Migrator::up(&db, None).await.expect("migrate");
        Self {
            store: SeaStore::new(db),
            guard,
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        self.store.connection()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Guard::Postgres { server, name } = &self.guard else {
            return;
        };
        let (admin_url, name) = (format!("{server}/postgres"), name.clone());
        let label = name.clone();
        // Drop cannot await and must not block the test's runtime: a thread with its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async {
                let admin = Database::connect(admin_url).await?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                admin.close().await
            })
        });
        if let Ok(Err(err)) = cleanup.join() {
            eprintln!("could not drop test database {label}: {err}");
        }
    }
}

/// Runs a test body once on PostgreSQL and once on SQLite, as two tests.
#[macro_export]
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            use super::support::{Backend, TestDb};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = TestDb::create(Backend::Postgres).await;
                super::$name(&db, Backend::Postgres).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = TestDb::create(Backend::Sqlite).await;
                super::$name(&db, Backend::Sqlite).await;
            }
        }
    };
}

/// 2026-12-01 (a Tuesday) at `hour:minute` UTC.
pub fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, hour, minute, 0)
        .single()
        .expect("valid time")
}

pub fn lisbon(offset: f64) -> Location {
    Location::new(38.7223 + offset, -9.1393 + offset).expect("valid location")
}

/// A fresh payment (new ids, 50.00 EUR) for a tour of one new listing at `location` within
/// `from..to`.
#[allow(dead_code, reason = "the store tests build no payments")]
pub fn one_stop_payment(
    location: Location,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> PaymentSucceeded {
    PaymentSucceeded {
        payment_id: PaymentId(Uuid::new_v4()),
        customer_id: CustomerId(Uuid::new_v4()),
        amount_cents: 5000,
        currency: "EUR".into(),
        listings: vec![Stop {
            id: ListingId(Uuid::new_v4()),
            location,
        }],
        window: TimeWindow::new(from, to).expect("window"),
    }
}

/// A new two-stop tour over 09:00-18:00 for a fresh payment.
pub fn new_tour() -> NewTour {
    NewTour {
        tour_id: TourId(Uuid::new_v4()),
        payment_id: PaymentId(Uuid::new_v4()),
        customer_id: CustomerId(Uuid::new_v4()),
        stops: vec![
            Stop {
                id: ListingId(Uuid::new_v4()),
                location: lisbon(0.0),
            },
            Stop {
                id: ListingId(Uuid::new_v4()),
                location: lisbon(0.01),
            },
        ],
        window: TimeWindow::new(at(9, 0), at(18, 0)).expect("window"),
        duration_minutes: 60,
        payment_event_id: Uuid::new_v4(),
    }
}

/// A realtor working Monday to Friday 09:00-18:00 in Lisbon.
pub fn realtor(id: RealtorId, home: Location) -> Realtor {
    let intervals = (1..=5)
        .map(|day| WorkingInterval::parse(day, "09:00", "18:00").expect("interval"))
        .collect();
    let zone = TimeZone::parse("Europe/Lisbon").expect("zone");
    Realtor::new(
        id,
        home,
        25.0,
        WorkingHours::new(zone, intervals),
        RealtorStatus::Available,
    )
    .expect("realtor")
}

pub fn explanation(chosen: RealtorId) -> Explanation {
    Explanation {
        policy: "nearest".into(),
        rings_searched: 1,
        candidates: Vec::new(),
        omitted: Default::default(),
        chosen: Some(chosen),
        reason: None,
    }
}

/// Inserts `users` rows with role `realtor` for `ids`, in batches.
pub async fn insert_users(db: &DatabaseConnection, ids: &[Uuid]) {
    let now = Utc::now();
    for chunk in ids.chunks(1000) {
        let mut insert = Query::insert();
        insert.into_table("users").columns([
            "id",
            "email",
            "password_hash",
            "name",
            "role",
            "created_at",
            "updated_at",
        ]);
        for id in chunk {
            insert
                .values([
                    (*id).into(),
                    format!("{}@example.com", id.simple()).into(),
                    "x".into(),
                    "Realtor".into(),
                    "realtor".into(),
                    now.into(),
                    now.into(),
                ])
                .expect("values");
        }
        db.execute(&insert).await.expect("insert users");
    }
}

/// Inserts active (`assigned`) tours as `(tour, realtor, start)` with the given duration,
/// in batches, the way the store writes them.
pub async fn insert_assigned_tours(
    db: &DatabaseConnection,
    tours: &[(Uuid, Uuid, DateTime<Utc>)],
    minutes: i64,
) {
    let now = Utc::now();
    let stops = serde_json::to_value(new_tour().stops).expect("stops");
    for chunk in tours.chunks(1000) {
        let mut insert = Query::insert();
        insert.into_table("tours").columns([
            "id",
            "payment_id",
            "customer_id",
            "status",
            "window_start",
            "window_end",
            "listings",
            "first_cell",
            "duration_minutes",
            "realtor_id",
            "start_at",
            "end_at",
            "created_at",
            "updated_at",
        ]);
        for (id, realtor, start) in chunk {
            let end = *start + Duration::minutes(minutes);
            insert
                .values([
                    (*id).into(),
                    Uuid::new_v4().into(),
                    Uuid::new_v4().into(),
                    "assigned".into(),
                    (*start).into(),
                    end.into(),
                    stops.clone().into(),
                    1_i64.into(),
                    i32::try_from(minutes).expect("minutes").into(),
                    (*realtor).into(),
                    (*start).into(),
                    end.into(),
                    now.into(),
                    now.into(),
                ])
                .expect("values");
        }
        db.execute(&insert).await.expect("insert tours");
    }
}

/// `(topic, event_type, key, payload)` of every outbox row, in write order.
pub async fn outbox(db: &DatabaseConnection) -> Vec<(String, String, String, serde_json::Value)> {
    let select = Query::select()
        .columns(["topic", "event_type", "key", "payload"])
        .from("outbox")
        .order_by("id", sea_orm::sea_query::Order::Asc)
        .to_owned();
    db.query_all(&select)
        .await
        .expect("outbox")
        .iter()
        .map(|row| {
            (
                row.try_get("", "topic").expect("topic"),
                row.try_get("", "event_type").expect("event_type"),
                row.try_get("", "key").expect("key"),
                row.try_get("", "payload").expect("payload"),
            )
        })
        .collect()
}

/// Rows of `table` (optionally only those whose `column` equals `value`).
pub async fn count(
    db: &DatabaseConnection,
    table: &'static str,
    filter: Option<(&'static str, Uuid)>,
) -> i64 {
    let mut select = Query::select();
    select.expr_as(Expr::cust("COUNT(*)"), "n").from(table);
    if let Some((column, value)) = filter {
        select.and_where(Expr::col(column).eq(value));
    }
    let row = db.query_one(&select).await.expect("count").expect("a row");
    row.try_get("", "n").expect("n")
}
