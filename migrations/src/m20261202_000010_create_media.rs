//! `media`: images and videos of listings and realtor photos (issue #12). The bytes live in the
//! media store (`object_store`); a row says whose they are, what they are and where.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Media {
    Table,
    Id,
    /// `listing` or `realtor_photo`.
    OwnerKind,
    /// The listing, or the realtor's user id.
    OwnerId,
    UploadedBy,
    /// `image` or `video`.
    Kind,
    ContentType,
    SizeBytes,
    Sha256,
    ObjectKey,
    ThumbnailKey,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Media::Table)
                    .col(pk_uuid(Media::Id))
                    .col(text(Media::OwnerKind))
                    .col(uuid(Media::OwnerId))
                    .col(uuid(Media::UploadedBy))
                    .col(text(Media::Kind))
                    .col(text(Media::ContentType))
                    .col(big_integer(Media::SizeBytes))
                    .col(text(Media::Sha256))
                    .col(text(Media::ObjectKey))
                    .col(text_null(Media::ThumbnailKey))
                    .col(timestamp_with_time_zone(Media::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_media_owner")
                    .table(Media::Table)
                    .col(Media::OwnerKind)
                    .col(Media::OwnerId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Media::Table).to_owned())
            .await
    }
}
