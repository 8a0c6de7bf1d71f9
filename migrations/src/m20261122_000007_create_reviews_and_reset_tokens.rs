//! `reviews` (a customer's rating of a completed tour's realtor) and
//! `password_reset_tokens` (only the token's hash is stored).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_create_users::Users;
use crate::m20261122_000004_create_tours::Tours;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Reviews::Table)
                    .col(pk_uuid(Reviews::Id))
                    // One review per tour (the API answers 409 on a second).
                    .col(uuid_uniq(Reviews::TourId))
                    .col(uuid(Reviews::RealtorId))
                    .col(uuid(Reviews::CustomerId))
                    .col(small_integer(Reviews::Rating).check((
                        "reviews_rating_range",
                        Expr::col(Reviews::Rating).between(1, 5),
                    )))
                    .col(text(Reviews::Comment))
                    // Moderation hides instead of deleting: the rating mean skips hidden rows.
                    .col(boolean(Reviews::Hidden).default(false))
                    .col(text_null(Reviews::ModerationReason))
                    .col(timestamp_with_time_zone(Reviews::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_reviews_tour")
                            .from(Reviews::Table, Reviews::TourId)
                            .to(Tours::Table, Tours::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_reviews_realtor_id")
                    .table(Reviews::Table)
                    .col(Reviews::RealtorId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PasswordResetTokens::Table)
                    // A hash, so a leaked table does not leak usable tokens.
                    .col(text(PasswordResetTokens::TokenHash).primary_key())
                    .col(uuid(PasswordResetTokens::UserId))
                    .col(timestamp_with_time_zone(PasswordResetTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(PasswordResetTokens::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_password_reset_tokens_user")
                            .from(PasswordResetTokens::Table, PasswordResetTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_password_reset_tokens_user_id")
                    .table(PasswordResetTokens::Table)
                    .col(PasswordResetTokens::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PasswordResetTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Reviews::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Reviews {
    Table,
    Id,
    TourId,
    RealtorId,
    CustomerId,
    Rating,
    Comment,
    Hidden,
    ModerationReason,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PasswordResetTokens {
    Table,
    TokenHash,
    UserId,
    ExpiresAt,
    UsedAt,
}
