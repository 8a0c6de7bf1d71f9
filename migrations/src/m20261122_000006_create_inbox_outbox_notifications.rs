//! Messaging: `processed_payments` (inbox: payment events already turned into tours),
//! `outbox` (events written with the state change, published afterwards) and
//! `notifications` (emails to send, e.g. tour reminders).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ProcessedPayments::Table)
                    // The key is the dedup: a redelivered (or re-sent, new event_id) payment
                    // event hits it and creates nothing.
                    .col(pk_uuid(ProcessedPayments::PaymentId))
                    .col(uuid(ProcessedPayments::EventId))
                    .col(uuid(ProcessedPayments::TourId))
                    .col(timestamp_with_time_zone(ProcessedPayments::ProcessedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    // Increasing: the publisher sends in write order.
                    .col(big_pk_auto(Outbox::Id))
                    .col(uuid_uniq(Outbox::EventId))
                    .col(text(Outbox::Topic))
                    // Kafka message key (e.g. the tour or payment id).
                    .col(text(Outbox::Key))
                    .col(text(Outbox::EventType))
                    // The whole envelope {event_id, type, occurred_at, data}.
                    .col(json_binary(Outbox::Payload))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(Outbox::PublishedAt))
                    .col(integer(Outbox::Attempts).default(0))
                    .to_owned(),
            )
            .await?;
        // Partial: only the (few) unpublished rows, which is all the publisher scans for.
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_unpublished")
                    .table(Outbox::Table)
                    .col(Outbox::Id)
                    .and_where(Expr::col(Outbox::PublishedAt).is_null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(pk_uuid(Notifications::Id))
                    // e.g. tour_reminder, tour_assigned, password_reset
                    .col(text(Notifications::Kind))
                    .col(uuid_null(Notifications::TourId))
                    .col(text(Notifications::RecipientEmail))
                    .col(text(Notifications::Subject))
                    .col(text(Notifications::Body))
                    .col(timestamp_with_time_zone(Notifications::DueAt))
                    // pending | sent | failed | cancelled
                    .col(text(Notifications::Status).default("pending"))
                    .col(integer(Notifications::Attempts).default(0))
                    .col(text_null(Notifications::LastError))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .col(timestamp_with_time_zone_null(Notifications::SentAt))
                    .to_owned(),
            )
            .await?;
        // Scheduling the same reminder twice is a no-op (`ON CONFLICT DO NOTHING`).
        manager
            .create_index(
                Index::create()
                    .name("notifications_dedup")
                    .table(Notifications::Table)
                    .unique()
                    .col(Notifications::Kind)
                    .col(Notifications::TourId)
                    .col(Notifications::RecipientEmail)
                    .col(Notifications::DueAt)
                    .to_owned(),
            )
            .await?;
        // NULLs are distinct in unique indexes (both backends; NULLS NOT DISTINCT needs
        // PostgreSQL 15), so notifications without a tour get their own partial index.
        manager
            .create_index(
                Index::create()
                    .name("notifications_dedup_no_tour")
                    .table(Notifications::Table)
                    .unique()
                    .col(Notifications::Kind)
                    .col(Notifications::RecipientEmail)
                    .col(Notifications::DueAt)
                    .and_where(Expr::col(Notifications::TourId).is_null())
                    .to_owned(),
            )
            .await?;
        // The worker's query: pending rows that are due, oldest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_status_due_at")
                    .table(Notifications::Table)
                    .col(Notifications::Status)
                    .col(Notifications::DueAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Notifications::Table.into_iden(),
            Outbox::Table.into_iden(),
            ProcessedPayments::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ProcessedPayments {
    Table,
    PaymentId,
    EventId,
    TourId,
    ProcessedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    EventId,
    Topic,
    Key,
    EventType,
    Payload,
    CreatedAt,
    PublishedAt,
    Attempts,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    Kind,
    TourId,
    RecipientEmail,
    Subject,
    Body,
    DueAt,
    Status,
    Attempts,
    LastError,
    CreatedAt,
    SentAt,
}
