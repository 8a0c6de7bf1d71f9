//! Supply: `realtor_profiles` (who can guide tours, from where, when) and `listings`.
//!
//! Locations carry both lat/lng and the H3 resolution-15 cell as a signed 64-bit integer
//! (H3 indexes never set the top bit, so the cast is lossless and the order is kept).
//! A cell of any coarser resolution covers one contiguous range of res-15 ids, so
//! "inside cell C" is `cell BETWEEN lo AND hi`, answered by a plain B-tree index.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RealtorProfiles::Table)
                    // One profile per realtor user: the user id is the key.
                    .col(pk_uuid(RealtorProfiles::UserId))
                    .col(double(RealtorProfiles::HomeLat))
                    .col(double(RealtorProfiles::HomeLng))
                    .col(big_integer(RealtorProfiles::HomeCell))
                    .col(double(RealtorProfiles::ServiceRadiusKm))
                    // IANA name, e.g. "Europe/Lisbon".
                    .col(text(RealtorProfiles::TimeZone))
                    // [{weekday: 1..7, start: "HH:MM", end: "HH:MM"}]
                    .col(json_binary(RealtorProfiles::WorkingHours))
                    // available | unavailable
                    .col(text(RealtorProfiles::Status))
                    .col(timestamp_with_time_zone(RealtorProfiles::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_realtor_profiles_user")
                            .from(RealtorProfiles::Table, RealtorProfiles::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_realtor_profiles_home_cell")
                    .table(RealtorProfiles::Table)
                    .col(RealtorProfiles::HomeCell)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Listings::Table)
                    .col(pk_uuid(Listings::Id))
                    .col(uuid(Listings::OwnerId))
                    .col(text(Listings::Title))
                    .col(text(Listings::Address))
                    .col(double(Listings::Lat))
                    .col(double(Listings::Lng))
                    .col(big_integer(Listings::Cell))
                    .col(big_integer(Listings::PriceCents))
                    // draft | published | unpublished
                    .col(text(Listings::Status))
                    .col(timestamp_with_time_zone(Listings::CreatedAt))
                    .col(timestamp_with_time_zone(Listings::UpdatedAt))
                    // Soft delete: carts, payments and tours keep pointing at the row.
                    .col(timestamp_with_time_zone_null(Listings::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_listings_owner")
                            .from(Listings::Table, Listings::OwnerId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_listings_cell", Listings::Cell),
            ("idx_listings_owner_id", Listings::OwnerId),
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
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Listings::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RealtorProfiles::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RealtorProfiles {
    Table,
    UserId,
    HomeLat,
    HomeLng,
    HomeCell,
    ServiceRadiusKm,
    TimeZone,
    WorkingHours,
    Status,
    UpdatedAt,
}

/// Referenced by `cart_items`.
#[derive(DeriveIden)]
pub(crate) enum Listings {
    Table,
    Id,
    OwnerId,
    Title,
    Address,
    Lat,
    Lng,
    Cell,
    PriceCents,
    Status,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}
