//! Tourwise's database schema (see ARCHITECTURE.md): sea-orm migrations for PostgreSQL
//! (production) and SQLite (the embedded default).
//!
//! One file per step, each reversible, applied in the order [`Migrator`] lists them.
//! The schema builder is used wherever it means the same on both backends; raw SQL only
//! for what one backend lacks (the double-booking guard).

// Every migration implements `MigrationTrait`, whose `&SchemaManager` must be written as the
// trait writes it (lifetime elided): with `<'_>` async_trait's generated lifetimes differ.
#![allow(elided_lifetimes_in_paths)]

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_users;
mod m20261122_000002_create_realtors_and_listings;
mod m20261122_000003_create_carts_and_payments;
mod m20261122_000004_create_tours;
mod m20261122_000005_add_tours_overlap_guard;
mod m20261122_000006_create_inbox_outbox_notifications;
mod m20261122_000007_create_reviews_and_reset_tokens;
mod m20261202_000008_index_notifications_by_tour;
mod m20261202_000009_create_categories_and_listing_search;
mod m20261202_000010_create_media;
mod m20261202_000011_create_chat_messages;
mod m20261203_000012_add_outbox_origin;

/// Name of the constraint (PostgreSQL) and of the trigger error (SQLite) that rejects
/// overlapping active tours of one realtor; callers match on it to map the error.
pub const TOURS_NO_OVERLAP: &str = "tours_no_overlap";

/// The tour statuses that hold a realtor's time (CONTRACT 5.2): only they may not overlap.
pub const ACTIVE_TOUR_STATUSES: [&str; 3] = ["assigned", "accepted", "in_progress"];

/// How long a SQLite connection waits for the write lock before failing with "database is locked".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Every Tourwise migration, in the order they apply.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_users::Migration),
            Box::new(m20261122_000002_create_realtors_and_listings::Migration),
            Box::new(m20261122_000003_create_carts_and_payments::Migration),
            Box::new(m20261122_000004_create_tours::Migration),
            Box::new(m20261122_000005_add_tours_overlap_guard::Migration),
            Box::new(m20261122_000006_create_inbox_outbox_notifications::Migration),
            Box::new(m20261122_000007_create_reviews_and_reset_tokens::Migration),
            Box::new(m20261202_000008_index_notifications_by_tour::Migration),
            Box::new(m20261202_000009_create_categories_and_listing_search::Migration),
            Box::new(m20261202_000010_create_media::Migration),
            Box::new(m20261202_000011_create_chat_messages::Migration),
            Box::new(m20261203_000012_add_outbox_origin::Migration),
        ]
    }
}

/// Opens a connection pool to `url` (`postgres://...` or `sqlite://...`) without migrating.
///
/// SQLite connections get WAL (readers do not block the writer), enforced foreign keys
/// (off by default in SQLite), `synchronous = NORMAL` (durable under WAL except on power
/// loss) and a busy timeout, so concurrent writers queue instead of failing at once.
///
/// # Errors
/// When the URL is invalid or the database is unreachable.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    // An unreachable database must fail start-up within seconds, not sqlx's default 30 s.
    options
        .sqlx_logging(false)
        .connect_timeout(std::time::Duration::from_secs(5))
        .acquire_timeout(std::time::Duration::from_secs(5));
    if url.starts_with("sqlite:") {
        options.map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
        });
    }
    Database::connect(options).await
}

/// Opens a connection pool to `url` (see [`connect`]) and applies every pending migration.
///
/// # Errors
/// When the database is unreachable or a migration fails.
pub async fn connect_and_migrate(url: &str) -> Result<DatabaseConnection, DbErr> {
    let db = connect(url).await?;
    Migrator::up(&db, None).await?;
    Ok(db)
}
