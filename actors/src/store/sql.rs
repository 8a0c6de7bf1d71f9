//! Helpers shared by the [`super::SeaStore`] writes: the guarded tour update, error
//! classification and value conversions.

use chrono::{DateTime, SubsecRound, Utc};
use engine::{TourId, TourStatus};
use sea_orm::sea_query::{Expr, ExprTrait, Query, UpdateStatement};
use sea_orm::{sqlx, ConnectionTrait, DbErr, RuntimeErr};

use super::rows::TOUR_COLUMNS;
use super::{StoreError, TOURS_NO_OVERLAP};

/// SQLSTATE of an exclusion constraint violation (PostgreSQL).
const EXCLUSION_VIOLATION: &str = "23P01";
/// SQLSTATE of a detected deadlock (PostgreSQL). Two transactions inserting overlapping tours
/// of one realtor at the same moment can each wait for the other's exclusion check; PostgreSQL
/// then aborts one with this instead of 23P01.
const DEADLOCK_DETECTED: &str = "40P01";

/// `UPDATE tours SET version = version + 1 WHERE id = .. AND version = .. AND status IN (..)
/// RETURNING <tour columns>`: the caller adds the other values.
pub(super) fn guarded_update(
    tour: TourId,
    expected_version: i32,
    from: &[TourStatus],
) -> UpdateStatement {
    Query::update()
        .table("tours")
        .value("version", Expr::col("version").add(1))
        .and_where(Expr::col("id").eq(tour.0))
        .and_where(Expr::col("version").eq(expected_version))
        .and_where(Expr::col("status").is_in(from.iter().map(|status| status.as_str())))
        .returning(Query::returning().columns(TOUR_COLUMNS))
        .to_owned()
}

/// Why a guarded update matched nothing: no such tour, or it changed (`Conflict`).
pub(super) async fn diagnose<C: ConnectionTrait>(conn: &C, tour: TourId) -> StoreError {
    let exists = Query::select()
        .column("id")
        .from("tours")
        .and_where(Expr::col("id").eq(tour.0))
        .to_owned();
    match conn.query_one(&exists).await {
        Ok(Some(_)) => StoreError::Conflict(tour),
        Ok(None) => StoreError::NotFound(tour),
        Err(err) => StoreError::Database(err),
    }
}

/// A write error: the double-booking guard is [`StoreError::Overlap`], the rest as is.
pub(super) fn classify(err: DbErr) -> StoreError {
    if is_overlap(&err) {
        StoreError::Overlap
    } else {
        StoreError::Database(err)
    }
}

/// SQLSTATE 23P01 on PostgreSQL, the guard trigger's message on SQLite; also 40P01, a deadlock
/// between two writers, which a concurrent overlapping booking causes: either way this write
/// did not happen, and the caller re-checks the calendar and tries again.
fn is_overlap(err: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner))) =
        err
    else {
        return false;
    };
    let sqlx::Error::Database(db_err) = inner.as_ref() else {
        return false;
    };
    let code = db_err.code();
    code.as_deref() == Some(EXCLUSION_VIOLATION)
        || code.as_deref() == Some(DEADLOCK_DETECTED)
        || db_err.message().contains(TOURS_NO_OVERLAP)
}

/// Now, at the precision both backends keep (microseconds), so records equal what is stored.
pub(super) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub(super) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<serde_json::Value, DbErr> {
    serde_json::to_value(value).map_err(|err| DbErr::Json(err.to_string()))
}

pub(super) fn custom(err: impl std::fmt::Display) -> DbErr {
    DbErr::Custom(err.to_string())
}
