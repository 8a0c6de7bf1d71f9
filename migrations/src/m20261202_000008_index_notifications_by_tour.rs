//! `notifications` by tour: the notification worker re-reads a tour's pending rows after
//! every change of that tour, and admins filter `/notifications?tour_id=`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Notifications {
    Table,
    TourId,
    Status,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_tour_id_status")
                    .table(Notifications::Table)
                    .col(Notifications::TourId)
                    .col(Notifications::Status)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_notifications_tour_id_status")
                    .table(Notifications::Table)
                    .to_owned(),
            )
            .await
    }
}
