//! Identity: the `users` table (every role logs in through it).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(pk_uuid(Users::Id))
                    // Unique as stored; the check makes "stored lowercased" a fact, so the
                    // unique index is also case-insensitive for every writer.
                    .col(
                        text_uniq(Users::Email).check(
                            Expr::col(Users::Email).eq(Func::lower(Expr::col(Users::Email))),
                        ),
                    )
                    .col(text(Users::PasswordHash))
                    .col(text(Users::Name))
                    // customer | realtor | provider | admin
                    .col(text(Users::Role))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}

/// Referenced by later migrations' foreign keys.
#[derive(DeriveIden)]
pub(crate) enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    Name,
    Role,
    CreatedAt,
    UpdatedAt,
}
