//! Tours: `tours` (one per succeeded payment) and `tour_history` (its status changes).
//!
//! The double-booking guard on `tours` is the next migration; the checks here keep its
//! input sane: an active tour always has a realtor and a non-empty [start_at, end_at).

use sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

use crate::ACTIVE_TOUR_STATUSES;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite keeps times as text; writers differ ("Z" or "+00:00", "T" or a space), so
        // order them as instants (julianday) rather than as strings.
        let slot_ordered = match manager.get_database_backend() {
            DbBackend::Sqlite => Expr::cust(
                "start_at IS NULL OR end_at IS NULL OR julianday(end_at) > julianday(start_at)",
            ),
            _ => Expr::col(Tours::StartAt)
                .is_null()
                .or(Expr::col(Tours::EndAt).is_null())
                .or(Expr::col(Tours::EndAt).gt(Expr::col(Tours::StartAt))),
        };
        let active_has_slot =
            Expr::col(Tours::Status)
                .is_not_in(ACTIVE_TOUR_STATUSES)
                .or(Expr::col(Tours::RealtorId)
                    .is_not_null()
                    .and(Expr::col(Tours::StartAt).is_not_null())
                    .and(Expr::col(Tours::EndAt).is_not_null()));

        manager
            .create_table(
                Table::create()
                    .table(Tours::Table)
                    .col(pk_uuid(Tours::Id))
                    // One succeeded payment makes exactly one tour (CONTRACT 5.5).
                    .col(uuid_uniq(Tours::PaymentId))
                    .col(uuid(Tours::CustomerId))
                    // pending | assigned | accepted | in_progress | completed | cancelled | unassignable
                    .col(text(Tours::Status))
                    .col(timestamp_with_time_zone(Tours::WindowStart))
                    .col(timestamp_with_time_zone(Tours::WindowEnd))
                    // Visiting order: [{id, lat, lng}].
                    .col(json_binary(Tours::Listings))
                    // Res-15 H3 cell of the first listing, for `/assignments?cell=` ranges.
                    .col(big_integer(Tours::FirstCell))
                    .col(integer(Tours::DurationMinutes))
                    .col(uuid_null(Tours::RealtorId))
                    .col(timestamp_with_time_zone_null(Tours::StartAt))
                    .col(timestamp_with_time_zone_null(Tours::EndAt))
                    // Why the tour is unassignable, when it is.
                    .col(text_null(Tours::Reason))
                    // Realtor ids that declined this tour: never offered it again.
                    .col(json_binary(Tours::Declined).default("[]"))
                    .col(json_binary_null(Tours::Explanation))
                    // Optimistic concurrency: writers bump it and compare.
                    .col(integer(Tours::Version).default(0))
                    .col(timestamp_with_time_zone(Tours::CreatedAt))
                    .col(timestamp_with_time_zone(Tours::UpdatedAt))
                    .check(("tours_active_has_slot", active_has_slot))
                    .check(("tours_slot_ordered", slot_ordered))
                    .to_owned(),
            )
            .await?;
        let indexes: [(&str, &[Tours]); 4] = [
            ("idx_tours_customer_id", &[Tours::CustomerId]),
            ("idx_tours_first_cell", &[Tours::FirstCell]),
            ("idx_tours_status", &[Tours::Status]),
            // Also serves lookups by realtor_id alone (leading column).
            (
                "idx_tours_realtor_start",
                &[Tours::RealtorId, Tours::StartAt],
            ),
        ];
        for (name, columns) in indexes {
            let mut index = Index::create();
            index.name(name).table(Tours::Table);
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(TourHistory::Table)
                    .col(big_pk_auto(TourHistory::Id))
                    .col(uuid(TourHistory::TourId))
                    .col(text(TourHistory::Status))
                    .col(timestamp_with_time_zone(TourHistory::At))
                    .col(json_binary_null(TourHistory::Detail))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tour_history_tour")
                            .from(TourHistory::Table, TourHistory::TourId)
                            .to(Tours::Table, Tours::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_tour_history_tour_id")
                    .table(TourHistory::Table)
                    .col(TourHistory::TourId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TourHistory::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Tours::Table).to_owned())
            .await
    }
}

/// Referenced by the overlap guard and by `reviews`.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum Tours {
    Table,
    Id,
    PaymentId,
    CustomerId,
    Status,
    WindowStart,
    WindowEnd,
    Listings,
    FirstCell,
    DurationMinutes,
    RealtorId,
    StartAt,
    EndAt,
    Reason,
    Declined,
    Explanation,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TourHistory {
    Table,
    Id,
    TourId,
    Status,
    At,
    Detail,
}
