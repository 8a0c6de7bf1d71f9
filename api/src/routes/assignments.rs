//! Admin queries (CONTRACT 4): assignments by realtor, H3 cell (any resolution), time and
//! status; why a realtor was chosen; per-cell statistics.

use std::collections::BTreeMap;
use std::str::FromStr as _;

use actix_web::{web, HttpResponse};
use actors::store::{Store, TourRecord};
use chrono::{DateTime, Utc};
use engine::{TourId, TourStatus};
use h3o::{CellIndex, Resolution};
use sea_orm::sea_query::{Cond, Expr, ExprTrait, Order, Query};
use sea_orm::ConnectionTrait;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::list::Page;
use crate::perm::{Access, Capability};
use crate::routes::tours;
use crate::state::AppState;

/// `GET /assignments` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AssignmentQuery {
    /// Only this realtor's assignments.
    realtor_id: Option<Uuid>,
    /// An H3 index of any resolution: tours whose first listing lies inside it.
    cell: Option<String>,
    /// Tours starting at or after this time.
    from: Option<DateTime<Utc>>,
    /// Tours starting before this time.
    to: Option<DateTime<Utc>>,
    /// Only tours in this status.
    status: Option<String>,
    /// Items per page (default 50, max 500).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn parse_cell(text: &str) -> Result<CellIndex, ApiError> {
    CellIndex::from_str(text.trim()).map_err(|_| ApiError::invalid("cell is not an H3 index"))
}

fn first_cell(tour: &TourRecord, resolution: Resolution) -> Option<CellIndex> {
    tour.stops.first().map(|s| s.location.cell(resolution))
}

fn in_range(
    t: Option<DateTime<Utc>>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> bool {
    match t {
        Some(t) => from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e),
        None => from.is_none() && to.is_none(),
    }
}

/// `GET /assignments`: tours with a realtor (a realtor sees own), filtered.
///
/// # Errors
/// 403 for customers and providers, 422 for a bad cell or status.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AssignmentQuery>,
) -> Result<HttpResponse, ApiError> {
    let access = caller.may(Capability::QueryAssignments)?;
    let page = Page::parse(query.limit, query.cursor.as_deref())?;
    let status = tours::parse_status(query.status.as_deref())?;
    let cell = query.cell.as_deref().map(parse_cell).transpose()?;
    let mut select = Query::select();
    select
        .column("id")
        .from("tours")
        .and_where(Expr::col("realtor_id").is_not_null())
        .order_by("id", Order::Asc);
    let realtor = match access {
        Access::Own => Some(caller.id),
        Access::Any => query.realtor_id,
    };
    if let Some(realtor) = realtor {
        select.and_where(Expr::col("realtor_id").eq(realtor));
    }
    if let Some(status) = status {
        select.and_where(Expr::col("status").eq(status.as_str()));
    }
    if let Some(cell) = cell {
        let mut any = Cond::any();
        for (lo, hi) in engine::geo::covering_id_ranges(cell) {
            any = any.add(Expr::col("first_cell").between(lo, hi));
        }
        select.cond_where(any);
    }
    let mut matched = Vec::new();
    for row in state.db.query_all(&select).await? {
        let id: Uuid = row.try_get("", "id")?;
        let Some(tour) = state.store.get_tour(TourId(id)).await? else {
            continue;
        };
        let cell_ok = cell.is_none_or(|c| first_cell(&tour, c.resolution()) == Some(c));
        if cell_ok && in_range(tour.start, query.from, query.to) {
            matched.push(tour);
        }
    }
    let items: Vec<_> = matched
        .into_iter()
        .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit + 1).unwrap_or(usize::MAX))
        .map(|mut t| {
            t.explanation = None;
            t
        })
        .collect();
    Ok(HttpResponse::Ok().json(page.finish(items)))
}

/// `GET /assignments/{tour_id}/explain`.
///
/// # Errors
/// 403 for non-admins, 404 for unknown tours.
pub async fn explain(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Capability::ExplainAssignments)?;
    let tour = state
        .store
        .get_tour(TourId(*id))
        .await?
        .ok_or_else(|| ApiError::not_found("tour"))?;
    Ok(HttpResponse::Ok().json(json!({
        "tour_id": tour.id,
        "status": tour.status,
        "realtor_id": tour.realtor_id,
        "reason": tour.reason,
        "explanation": tour.explanation,
    })))
}

/// `GET /assignments/stats` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// H3 resolution of the cells, 0..=15.
    resolution: Option<u8>,
    /// Tours created at or after this time.
    from: Option<DateTime<Utc>>,
    /// Tours created before this time.
    to: Option<DateTime<Utc>>,
}

/// `GET /assignments/stats?resolution=R&from=&to=`: per cell of the first listing, tours
/// created in the range that are assigned (or beyond), unassignable, pending.
///
/// # Errors
/// 403 for non-admins, 422 for a resolution outside 0..=15.
pub async fn stats(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Capability::ExplainAssignments)?;
    let resolution = Resolution::try_from(query.resolution.unwrap_or(7))
        .map_err(|_| ApiError::invalid("resolution must be between 0 and 15"))?;
    let select = Query::select()
        .column("id")
        .from("tours")
        .order_by("id", Order::Asc)
        .to_owned();
    let mut counts: BTreeMap<CellIndex, [u64; 3]> = BTreeMap::new();
    for row in state.db.query_all(&select).await? {
        let id: Uuid = row.try_get("", "id")?;
        let Some(tour) = state.store.get_tour(TourId(id)).await? else {
            continue;
        };
        if !in_range(Some(tour.created_at), query.from, query.to) {
            continue;
        }
        let slot = match tour.status {
            TourStatus::Pending => 2,
            TourStatus::Unassignable => 1,
            TourStatus::Cancelled => continue,
            _ => 0,
        };
        if let Some(cell) = first_cell(&tour, resolution) {
            counts.entry(cell).or_default()[slot] += 1;
        }
    }
    let rows: Vec<_> = counts
        .into_iter()
        .map(|(cell, [assigned, unassignable, pending])| {
            // The outline lets a map draw the cell without an H3 library of its own.
            let boundary: Vec<[f64; 2]> =
                cell.boundary().iter().map(|v| [v.lat(), v.lng()]).collect();
            json!({"cell": cell.to_string(), "assigned": assigned, "unassignable": unassignable,
                   "pending": pending, "boundary": boundary})
        })
        .collect();
    Ok(HttpResponse::Ok().json(rows))
}
