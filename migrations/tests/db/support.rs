//! Test support: a fresh database per test (PostgreSQL and SQLite), and typed helpers
//! that write tours the way sea-orm entities do (bound chrono/uuid/json values).

use std::env;

use chrono::{DateTime, TimeZone, Utc};
use migrations::{connect, DbErr, Expr, ExprTrait, Query};
use sea_orm::{sqlx, ConnectionTrait, Database, DatabaseConnection, RuntimeErr};
use serde_json::json;
use uuid::Uuid;

/// Env var overriding where the test PostgreSQL server is (no database name in it).
const PG_URL_ENV: &str = "TOURWISE_TEST_PG_URL";
const PG_DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432";

/// A PostgreSQL database created for one test and dropped (forcefully) when it goes out of
/// scope, also when the test panics.
pub struct TestPg {
    server: String,
    name: String,
}

impl TestPg {
    /// Creates `tourwise_test_<uuid>`. Panics with a clear message when PostgreSQL is down:
    /// these tests are about PostgreSQL's own guarantees, skipping them would hide that.
    pub async fn create() -> Self {
        let server = env::var(PG_URL_ENV)
            .unwrap_or_else(|_| PG_DEFAULT_URL.to_owned())
            .trim_end_matches('/')
            .to_owned();
        let name = format!("tourwise_test_{}", Uuid::new_v4().simple());
        let admin = Database::connect(format!("{server}/postgres"))
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "PostgreSQL is required by these tests and {server}/postgres is unreachable \
                     ({err}); start it or point {PG_URL_ENV} at one"
                )
            });
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|err| panic!("cannot create test database {name}: {err}"));
        admin.close().await.expect("close admin connection");
        Self { server, name }
    }

    /// The URL of this test's database.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    /// A new connection pool to this test's database, not migrated.
    pub async fn connect(&self) -> DatabaseConnection {
        connect(&self.url())
            .await
            .expect("connect to test database")
    }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        let admin_url = format!("{}/postgres", self.server);
        let name = self.name.clone();
        // Drop cannot await, and blocking inside the test's runtime would stall it:
        // a short-lived thread with its own runtime does the cleanup.
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
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("could not drop test database {}: {err}", self.name),
            Err(_) => eprintln!("cleanup of test database {} panicked", self.name),
        }
    }
}

/// A SQLite database file in its own temporary directory, removed with it.
pub struct TestSqlite {
    dir: tempfile::TempDir,
}

impl TestSqlite {
    pub fn create() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn url(&self) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            self.dir.path().join("test.db").display()
        )
    }

    pub async fn connect(&self) -> DatabaseConnection {
        connect(&self.url()).await.expect("open test SQLite file")
    }
}

/// Every table the migrations create.
pub const TABLES: [&str; 12] = [
    "users",
    "realtor_profiles",
    "listings",
    "cart_items",
    "payments",
    "tours",
    "tour_history",
    "processed_payments",
    "outbox",
    "notifications",
    "reviews",
    "password_reset_tokens",
];

/// 2026-12-01 at `hour:minute` UTC.
pub fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, hour, minute, 0)
        .single()
        .expect("valid time")
}

/// The columns of a tour that the overlap rules look at; the rest is filler.
#[derive(Clone, Debug)]
pub struct NewTour {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub status: &'static str,
    pub realtor_id: Option<Uuid>,
    pub start_at: Option<DateTime<Utc>>,
    pub end_at: Option<DateTime<Utc>>,
}

impl NewTour {
    /// An `assigned` tour of `realtor` over [start, end).
    pub fn assigned(realtor: Uuid, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::new_v4(),
            payment_id: Uuid::new_v4(),
            status: "assigned",
            realtor_id: Some(realtor),
            start_at: Some(start),
            end_at: Some(end),
        }
    }

    pub fn with_status(mut self, status: &'static str) -> Self {
        self.status = status;
        self
    }
}

/// Inserts `tour` with bound values, as a sea-orm entity insert would.
pub async fn insert_tour<C: ConnectionTrait>(db: &C, tour: &NewTour) -> Result<(), DbErr> {
    let now = Utc::now();
    let insert = Query::insert()
        .into_table("tours")
        .columns([
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
        ])
        .values_panic([
            tour.id.into(),
            tour.payment_id.into(),
            Uuid::new_v4().into(),
            tour.status.into(),
            at(8, 0).into(),
            at(20, 0).into(),
            json!([{"id": Uuid::new_v4(), "lat": 38.7223, "lng": -9.1393}]).into(),
            644_733_868_587_089_919_i64.into(),
            60.into(),
            tour.realtor_id.into(),
            tour.start_at.into(),
            tour.end_at.into(),
            now.into(),
            now.into(),
        ])
        .to_owned();
    db.execute(&insert).await.map(|_| ())
}

/// Sets a tour's status and slot, as an entity update would.
pub async fn update_tour<C: ConnectionTrait>(db: &C, tour: &NewTour) -> Result<(), DbErr> {
    let update = Query::update()
        .table("tours")
        .values([
            ("status", tour.status.into()),
            ("realtor_id", tour.realtor_id.into()),
            ("start_at", tour.start_at.into()),
            ("end_at", tour.end_at.into()),
        ])
        .and_where(Expr::col("id").eq(tour.id))
        .to_owned();
    db.execute(&update).await.map(|_| ())
}

/// Number of rows in `table`.
pub async fn count<C: ConnectionTrait>(db: &C, table: &str) -> Result<i64, DbErr> {
    let select = Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from(table.to_owned())
        .to_owned();
    let row = db
        .query_one(&select)
        .await?
        .expect("COUNT(*) returns a row");
    row.try_get_by_index::<i64>(0)
}

/// The SQLSTATE of a database error (PostgreSQL: e.g. "23P01"), if it is one.
pub fn sqlstate(err: &DbErr) -> Option<String> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            match inner.as_ref() {
                sqlx::Error::Database(db_err) => db_err.code().map(|code| code.into_owned()),
                _ => None,
            }
        }
        _ => None,
    }
}
