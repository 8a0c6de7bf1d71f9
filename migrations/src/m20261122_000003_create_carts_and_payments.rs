//! Demand: `cart_items` (a customer's open cart) and `payments` (a checked-out cart).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_create_users::Users;
use crate::m20261122_000002_create_realtors_and_listings::Listings;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CartItems::Table)
                    .col(uuid(CartItems::CustomerId))
                    .col(uuid(CartItems::ListingId))
                    // Cart order: the route's tie-break (CONTRACT 5.1).
                    .col(integer(CartItems::Position))
                    .col(timestamp_with_time_zone(CartItems::AddedAt))
                    // A listing is in a cart at most once.
                    .primary_key(
                        Index::create()
                            .col(CartItems::CustomerId)
                            .col(CartItems::ListingId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_cart_items_customer")
                            .from(CartItems::Table, CartItems::CustomerId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_cart_items_listing")
                            .from(CartItems::Table, CartItems::ListingId)
                            .to(Listings::Table, Listings::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        // No foreign keys: a payment row is a record of what was charged, kept as it was
        // even if the customer or a listing goes away (the listings travel as a snapshot).
        manager
            .create_table(
                Table::create()
                    .table(Payments::Table)
                    // The payment_id of the API and of `payment.succeeded`.
                    .col(pk_uuid(Payments::Id))
                    .col(uuid(Payments::CustomerId))
                    .col(big_integer(Payments::AmountCents))
                    .col(text(Payments::Currency))
                    // pending | succeeded | declined
                    .col(text(Payments::Status))
                    .col(timestamp_with_time_zone(Payments::WindowStart))
                    .col(timestamp_with_time_zone(Payments::WindowEnd))
                    // Snapshot at checkout: [{id, lat, lng}] in cart order.
                    .col(json_binary(Payments::Listings))
                    .col(timestamp_with_time_zone(Payments::CreatedAt))
                    .col(timestamp_with_time_zone(Payments::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_payments_customer_id")
                    .table(Payments::Table)
                    .col(Payments::CustomerId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Payments::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(CartItems::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum CartItems {
    Table,
    CustomerId,
    ListingId,
    Position,
    AddedAt,
}

#[derive(DeriveIden)]
enum Payments {
    Table,
    Id,
    CustomerId,
    AmountCents,
    Currency,
    Status,
    WindowStart,
    WindowEnd,
    Listings,
    CreatedAt,
    UpdatedAt,
}
