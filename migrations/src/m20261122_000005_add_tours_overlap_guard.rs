//! The database's own guard against double booking (CONTRACT 5.5): no realtor holds two
//! active (assigned/accepted/in_progress) tours whose [start_at, end_at) overlap.
//!
//! The engine already serialises a realtor's reservations in one shard actor; this is the
//! last line for anything that bypasses it (a second process, a bug, a manual edit).
//! Intervals are half-open, so back-to-back tours ([a, b) then [b, c)) are allowed.
//! Travel time between tours is the engine's rule, not the database's.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

use crate::{ACTIVE_TOUR_STATUSES, TOURS_NO_OVERLAP};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let active = active_list();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                // btree_gist lets a GiST index compare the uuid with `=` next to the range.
                // It is a trusted extension (PostgreSQL 13+): the database owner may create it.
                db.execute_unprepared("CREATE EXTENSION IF NOT EXISTS btree_gist")
                    .await?;
                // tstzrange's default bounds are '[)': touching tours do not overlap.
                // Checked at insert/update time, also against concurrent uncommitted rows:
                // the second writer waits and then fails with SQLSTATE 23P01.
                db.execute_unprepared(&format!(
                    "ALTER TABLE tours ADD CONSTRAINT {TOURS_NO_OVERLAP} \
                     EXCLUDE USING gist (realtor_id WITH =, tstzrange(start_at, end_at) WITH &&) \
                     WHERE (status IN ({active}))"
                ))
                .await?;
            }
            DbBackend::Sqlite => {
                // SQLite has no exclusion constraints: triggers do the same check. Writers are
                // serialised by SQLite's single write lock, so check-then-write cannot race.
                // Times are compared with julianday(): sqlx stores chrono times as RFC 3339
                // text ("2026-12-01T14:00:00+00:00", fraction of 0/3/6/9 digits), and other
                // writers may use "Z" or a space; text order is not time order across them.
                // (julianday keeps milliseconds: sub-millisecond overlaps are not seen.)
                let overlaps = format!(
                    "SELECT RAISE(ABORT, '{TOURS_NO_OVERLAP}') WHERE EXISTS (\
                     SELECT 1 FROM tours AS t \
                     WHERE t.realtor_id = NEW.realtor_id \
                     AND t.status IN ({active}) \
                     AND julianday(t.start_at) < julianday(NEW.end_at) \
                     AND julianday(NEW.start_at) < julianday(t.end_at)"
                );
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER {TOURS_NO_OVERLAP}_insert BEFORE INSERT ON tours \
                     WHEN NEW.status IN ({active}) \
                     BEGIN {overlaps}); END"
                ))
                .await?;
                // The row being updated is still in the table: leave it out of the search.
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER {TOURS_NO_OVERLAP}_update \
                     BEFORE UPDATE OF status, realtor_id, start_at, end_at ON tours \
                     WHEN NEW.status IN ({active}) \
                     BEGIN {overlaps} AND t.id <> OLD.id); END"
                ))
                .await?;
            }
            other => {
                return Err(DbErr::Migration(format!(
                    "no double-booking guard for {other:?}: use PostgreSQL or SQLite"
                )))
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                // btree_gist stays: it may have been there before us, other objects or
                // databases' schemas may use it, and dropping it needs more privilege than
                // creating it. It is harmless when unused.
                db.execute_unprepared(&format!(
                    "ALTER TABLE tours DROP CONSTRAINT IF EXISTS {TOURS_NO_OVERLAP}"
                ))
                .await?;
            }
            DbBackend::Sqlite => {
                for event in ["insert", "update"] {
                    db.execute_unprepared(&format!(
                        "DROP TRIGGER IF EXISTS {TOURS_NO_OVERLAP}_{event}"
                    ))
                    .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// `'assigned', 'accepted', 'in_progress'`: the SQL list of active statuses.
fn active_list() -> String {
    ACTIVE_TOUR_STATUSES
        .iter()
        .map(|status| format!("'{status}'"))
        .collect::<Vec<_>>()
        .join(", ")
}
