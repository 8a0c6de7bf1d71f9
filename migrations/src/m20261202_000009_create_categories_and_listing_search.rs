//! Catalog breadth (issue #12): admin-managed `categories`, a listing's `category_id`, and a
//! real text index over listings' title and address: a generated `tsvector` with a GIN index
//! on PostgreSQL, an FTS5 table kept in step by triggers on SQLite. `idx_listings_lat` serves
//! the bounding box of `near` searches.

use sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Categories {
    Table,
    Id,
    Name,
    /// Lower-cased name: names are unique without regard to case.
    NameKey,
    ArchivedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Listings {
    Table,
    CategoryId,
    Lat,
}

/// SQLite: the FTS5 index over `listings` (external content: the text stays in `listings`).
const SQLITE_UP: [&str; 5] = [
    "CREATE VIRTUAL TABLE listings_fts USING fts5(title, address, content='listings', \
     content_rowid='rowid', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER listings_fts_insert AFTER INSERT ON listings BEGIN \
     INSERT INTO listings_fts(rowid, title, address) VALUES (new.rowid, new.title, new.address); END",
    "CREATE TRIGGER listings_fts_delete AFTER DELETE ON listings BEGIN \
     INSERT INTO listings_fts(listings_fts, rowid, title, address) \
     VALUES ('delete', old.rowid, old.title, old.address); END",
    "CREATE TRIGGER listings_fts_update AFTER UPDATE OF title, address ON listings BEGIN \
     INSERT INTO listings_fts(listings_fts, rowid, title, address) \
     VALUES ('delete', old.rowid, old.title, old.address); \
     INSERT INTO listings_fts(rowid, title, address) VALUES (new.rowid, new.title, new.address); END",
    "INSERT INTO listings_fts(listings_fts) VALUES ('rebuild')",
];

const SQLITE_DOWN: [&str; 4] = [
    "DROP TRIGGER IF EXISTS listings_fts_insert",
    "DROP TRIGGER IF EXISTS listings_fts_delete",
    "DROP TRIGGER IF EXISTS listings_fts_update",
    "DROP TABLE IF EXISTS listings_fts",
];

/// PostgreSQL: `simple` keeps every word as written (addresses are names, not prose).
const POSTGRES_UP: [&str; 2] = [
    "ALTER TABLE listings ADD COLUMN search_vector tsvector GENERATED ALWAYS AS \
     (to_tsvector('simple', title || ' ' || address)) STORED",
    "CREATE INDEX idx_listings_search ON listings USING GIN (search_vector)",
];

const POSTGRES_DOWN: [&str; 2] = [
    "DROP INDEX IF EXISTS idx_listings_search",
    "ALTER TABLE listings DROP COLUMN IF EXISTS search_vector",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Categories::Table)
                    .col(pk_uuid(Categories::Id))
                    .col(text(Categories::Name))
                    .col(text(Categories::NameKey).unique_key())
                    .col(timestamp_with_time_zone_null(Categories::ArchivedAt))
                    .col(timestamp_with_time_zone(Categories::CreatedAt))
                    .col(timestamp_with_time_zone(Categories::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // No foreign key: SQLite cannot add one to an existing table; the API checks it.
        manager
            .alter_table(
                Table::alter()
                    .table(Listings::Table)
                    .add_column(ColumnDef::new(Listings::CategoryId).uuid().null())
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_listings_category_id", Listings::CategoryId),
            ("idx_listings_lat", Listings::Lat),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Listings::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        let db = manager.get_connection();
        let statements: &[&str] = match manager.get_database_backend() {
            DbBackend::Postgres => &POSTGRES_UP,
            _ => &SQLITE_UP,
        };
        for sql in statements {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let statements: &[&str] = match manager.get_database_backend() {
            DbBackend::Postgres => &POSTGRES_DOWN,
            _ => &SQLITE_DOWN,
        };
        for sql in statements {
            db.execute_unprepared(sql).await?;
        }
        for name in ["idx_listings_category_id", "idx_listings_lat"] {
            manager
                .drop_index(Index::drop().name(name).table(Listings::Table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Listings::Table)
                    .drop_column(Listings::CategoryId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Categories::Table).to_owned())
            .await
    }
}
