//! `chat_messages`: what a tour's customer and its realtor wrote to each other (issue #10).
//! The id is a growing integer so that a client that reconnects asks for what came after the
//! last id it saw.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ChatMessages {
    Table,
    Id,
    TourId,
    SenderId,
    /// `customer` or `realtor`.
    SenderRole,
    Body,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ChatMessages::Table)
                    .col(pk_auto(ChatMessages::Id))
                    .col(uuid(ChatMessages::TourId))
                    .col(uuid(ChatMessages::SenderId))
                    .col(text(ChatMessages::SenderRole))
                    .col(text(ChatMessages::Body))
                    .col(timestamp_with_time_zone(ChatMessages::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_chat_messages_tour")
                    .table(ChatMessages::Table)
                    .col(ChatMessages::TourId)
                    .col(ChatMessages::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ChatMessages::Table).to_owned())
            .await
    }
}
