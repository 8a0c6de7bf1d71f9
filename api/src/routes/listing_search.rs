//! `GET /listings`: search by category, place (`near`, `radius_km`) and text (`q`), sorted by
//! distance, relevance or creation, paginated, answers cached ([`crate::search_cache`]).
//!
//! Text goes through a real index: PostgreSQL full text (`search_vector @@ to_tsquery`, ranked
//! by `ts_rank`) or SQLite FTS5 (`listings_fts MATCH`, ranked by `bm25`); every word of `q`
//! must match the start of a word of the title or address. A place search reads only the rows
//! of a latitude/longitude box that holds the whole circle (`idx_listings_lat`), then keeps the
//! exact great-circle distances.

use actix_web::{web, HttpResponse};
use engine::Location;
use sea_orm::sea_query::{Alias, Cond, Expr, ExprTrait, JoinType, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DbBackend};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::listings::{from_row, Listing, RawPoint, COLUMNS};
use crate::auth::MaybeCaller;
use crate::error::ApiError;
use crate::list::Page;
use crate::perm::Role;
use crate::state::AppState;

/// Most rows a distance- or relevance-sorted search reads (it sorts them in memory).
const MAX_CANDIDATES: u64 = 20_000;
/// Most words of `q` used.
const MAX_WORDS: usize = 8;
/// Earth radius, km (CONTRACT 5.1).
const EARTH_KM: f64 = 6371.0088;

/// `GET /listings` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListingQuery {
    /// `LAT,LNG`: only listings within `radius_km` of this point.
    near: Option<String>,
    /// Radius around `near` in km (default 10).
    radius_km: Option<f64>,
    /// Words searched in title and address (each matches the start of a word).
    q: Option<String>,
    /// Only listings of this category.
    category: Option<Uuid>,
    /// `distance` (default with `near`), `relevance` (default with `q`), or `created`
    /// (creation order, oldest first; the default otherwise).
    sort: Option<String>,
    /// Items per page (default 50, max 500).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Sort {
    Distance,
    Relevance,
    Created,
}

/// Who is asking, as far as what they may see goes.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
enum Audience {
    /// Published listings only.
    Public,
    /// Published ones and their own.
    Owner(Uuid),
    /// All of them.
    Admin,
}

/// The search, validated: also the cache key.
#[derive(Debug, Serialize)]
struct Search {
    audience: Audience,
    category: Option<Uuid>,
    near: Option<(f64, f64, f64)>,
    words: Vec<String>,
    sort: Sort,
    offset: u64,
    limit: u64,
}

/// The words of `q`: letters and digits only (nothing reaches a query syntax), lower case.
fn words(q: &str) -> Vec<String> {
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
        .map(|w| w.chars().take(64).collect::<String>().to_lowercase())
        .collect()
}

fn parse(query: &ListingQuery, caller: &MaybeCaller, page: Page) -> Result<Search, ApiError> {
    let near = match &query.near {
        None => None,
        Some(text) => {
            let (lat, lng) = text
                .split_once(',')
                .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
                .ok_or_else(|| ApiError::invalid("near must be LAT,LNG"))?;
            let radius = query.radius_km.unwrap_or(10.0);
            if !(radius > 0.0 && radius <= 20_000.0) {
                return Err(ApiError::invalid("radius_km must be in (0, 20000]"));
            }
            let at = RawPoint { lat, lng }.location()?;
            Some((at.lat(), at.lng(), radius))
        }
    };
    let words = match &query.q {
        None => Vec::new(),
        Some(q) => {
            let w = words(q);
            if w.is_empty() && !q.trim().is_empty() {
                return Err(ApiError::invalid("q must contain a letter or a digit"));
            }
            w
        }
    };
    let sort = match query.sort.as_deref() {
        None if near.is_some() => Sort::Distance,
        None if !words.is_empty() => Sort::Relevance,
        None | Some("created") => Sort::Created,
        Some("distance") if near.is_some() => Sort::Distance,
        Some("relevance") if !words.is_empty() => Sort::Relevance,
        Some("distance") => return Err(ApiError::invalid("sort=distance needs near")),
        Some("relevance") => return Err(ApiError::invalid("sort=relevance needs q")),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "sort must be distance, relevance or created, not {other:?}"
            )))
        }
    };
    let audience = match &caller.0 {
        Some(c) if c.role == Role::Admin => Audience::Admin,
        Some(c) if c.role == Role::Provider => Audience::Owner(c.id),
        _ => Audience::Public,
    };
    Ok(Search {
        audience,
        category: query.category,
        near,
        words,
        sort,
        offset: page.offset,
        limit: page.limit,
    })
}

/// Degrees of latitude and longitude ranges holding every point within `radius_km` of
/// `(lat, lng)`: `(lat range, lng ranges)`; no longitude ranges when the circle reaches a pole.
fn bounding_box(lat: f64, lng: f64, radius_km: f64) -> ((f64, f64), Vec<(f64, f64)>) {
    // A great-circle distance is at least the difference of latitudes (times R).
    let r = radius_km / EARTH_KM;
    let (phi, lambda) = (lat.to_radians(), lng.to_radians());
    let (lo, hi) = (phi - r, phi + r);
    // Slack for rounding: the SQL filter must never drop a row the exact check keeps.
    let eps = 1e-9;
    let lat_range = (lo.to_degrees() - eps, hi.to_degrees() + eps);
    let half_pi = std::f64::consts::FRAC_PI_2;
    if lo <= -half_pi || hi >= half_pi {
        return (lat_range, Vec::new());
    }
    // Widest longitude difference on the circle (the tangent meridians).
    let d = (r.sin() / phi.cos()).asin();
    if !d.is_finite() || d >= std::f64::consts::PI {
        return (lat_range, Vec::new());
    }
    let (west, east) = ((lambda - d).to_degrees(), (lambda + d).to_degrees());
    let ranges = if west < -180.0 {
        vec![(west + 360.0 - eps, 180.0), (-180.0, east + eps)]
    } else if east > 180.0 {
        vec![(west - eps, 180.0), (-180.0, east - 360.0 + eps)]
    } else {
        vec![(west - eps, east + eps)]
    };
    (lat_range, ranges)
}

fn col(name: &str) -> Expr {
    Expr::col((Alias::new("listings"), Alias::new(name)))
}

/// The SQL of `search`: filters by visibility, category, box and text; `rank` is the text
/// relevance (higher is better), 0 without text.
fn select(search: &Search, backend: DbBackend) -> SelectStatement {
    let mut select = Query::select();
    select
        .columns(COLUMNS.map(|c| (Alias::new("listings"), Alias::new(c))))
        .from("listings")
        .and_where(col("deleted_at").is_null());
    match search.audience {
        Audience::Admin => {}
        Audience::Owner(id) => {
            select.cond_where(
                Cond::any()
                    .add(col("status").eq("published"))
                    .add(col("owner_id").eq(id)),
            );
        }
        Audience::Public => {
            select.and_where(col("status").eq("published"));
        }
    }
    if let Some(category) = search.category {
        select.and_where(col("category_id").eq(category));
    }
    if let Some((lat, lng, radius)) = search.near {
        let ((south, north), lngs) = bounding_box(lat, lng, radius);
        select.and_where(col("lat").between(south, north));
        if !lngs.is_empty() {
            let mut any = Cond::any();
            for (west, east) in lngs {
                any = any.add(col("lng").between(west, east));
            }
            select.cond_where(any);
        }
    }
    if search.words.is_empty() {
        select.expr_as(Expr::val(0.0), Alias::new("rank"));
    } else if backend == DbBackend::Postgres {
        let tsquery = search
            .words
            .iter()
            .map(|w| format!("{w}:*"))
            .collect::<Vec<_>>()
            .join(" & ");
        select
            .and_where(Expr::cust_with_values(
                "listings.search_vector @@ to_tsquery('simple', $1)",
                [tsquery.clone()],
            ))
            .expr_as(
                Expr::cust_with_values(
                    "CAST(ts_rank(listings.search_vector, to_tsquery('simple', $1)) AS DOUBLE PRECISION)",
                    [tsquery],
                ),
                Alias::new("rank"),
            );
    } else {
        let fts = search
            .words
            .iter()
            .map(|w| format!("\"{w}\"*"))
            .collect::<Vec<_>>()
            .join(" AND ");
        select
            .join(
                JoinType::InnerJoin,
                Alias::new("listings_fts"),
                Expr::cust("listings_fts.rowid = listings.rowid"),
            )
            .and_where(Expr::cust_with_values("listings_fts MATCH ?", [fts]))
            .expr_as(Expr::cust("-bm25(listings_fts)"), Alias::new("rank"));
    }
    select
}

/// One search, from the database.
async fn run(state: &AppState, search: &Search) -> Result<Vec<Listing>, ApiError> {
    let backend = state.db.get_database_backend();
    let mut select = select(search, backend);
    if search.sort == Sort::Created && search.near.is_none() {
        // The database pages: no distances to compute.
        select
            .order_by((Alias::new("listings"), Alias::new("id")), Order::Asc)
            .limit(search.limit + 1)
            .offset(search.offset);
        let rows = state.db.query_all(&select).await?;
        return Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?);
    }
    select
        .order_by((Alias::new("listings"), Alias::new("id")), Order::Asc)
        .limit(MAX_CANDIDATES);
    let origin = search
        .near
        .map(|(lat, lng, radius)| (Location::new(lat, lng), radius));
    let mut found: Vec<(f64, f64, Listing)> = Vec::new();
    for row in state.db.query_all(&select).await? {
        let listing = from_row(&row)?;
        let rank: f64 = row.try_get("", "rank")?;
        let km = match &origin {
            Some((Ok(origin), radius)) => {
                let here = listing.location.location()?;
                let km = engine::geo::distance_km(origin, &here);
                if km > *radius {
                    continue;
                }
                km
            }
            _ => 0.0,
        };
        found.push((km, rank, listing));
    }
    match search.sort {
        Sort::Distance => found.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then(b.1.total_cmp(&a.1))
                .then(a.2.id.cmp(&b.2.id))
        }),
        Sort::Relevance => found.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then(a.0.total_cmp(&b.0))
                .then(a.2.id.cmp(&b.2.id))
        }),
        Sort::Created => found.sort_by_key(|f| f.2.id),
    }
    let from = usize::try_from(search.offset).unwrap_or(usize::MAX);
    let take = usize::try_from(search.limit + 1).unwrap_or(usize::MAX);
    Ok(found
        .into_iter()
        .skip(from)
        .take(take)
        .map(|(_, _, l)| l)
        .collect())
}

/// `GET /listings?category=&near=LAT,LNG&radius_km=R&q=TEXT&sort=`.
///
/// # Errors
/// 422 for a malformed `near`, a radius outside (0, 20000], a `q` without words, or a sort
/// that does not fit the query.
pub async fn list(
    state: web::Data<AppState>,
    caller: MaybeCaller,
    query: web::Query<ListingQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::parse(query.limit, query.cursor.as_deref())?;
    let search = parse(&query, &caller, page)?;
    let key = serde_json::to_string(&search).map_err(|e| ApiError::internal(&e))?;
    // Read before the query: a change committed meanwhile bumps it (see search_cache).
    let generation = state.search_cache.generation().await;
    if let Some(generation) = generation {
        if let Some(answer) = state.search_cache.get(generation, &key).await {
            return Ok(HttpResponse::Ok()
                .content_type("application/json")
                .insert_header(("X-Cache", "hit"))
                .body(answer));
        }
    }
    let mut items = run(&state, &search).await?;
    super::media::of_listings(&state, &mut items).await?;
    let answer = serde_json::to_string(&page.finish(items)).map_err(|e| ApiError::internal(&e))?;
    if let Some(generation) = generation {
        state
            .search_cache
            .put(generation, &key, answer.clone())
            .await;
    }
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("X-Cache", "miss"))
        .body(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_letters_and_digits_only() {
        assert_eq!(words("Rua  Augusta, 12!"), ["rua", "augusta", "12"]);
        assert_eq!(words("São* & (x) | 'y'"), ["são", "x", "y"]);
        assert!(words(":*&|!()'\"").is_empty());
    }

    #[test]
    fn the_box_holds_the_whole_circle() {
        let cases = [
            (38.72, -9.14, 10.0),
            (0.0, 179.95, 30.0),
            (0.0, -179.95, 30.0),
            (89.9, 10.0, 50.0),
            (-60.0, 0.0, 500.0),
        ];
        for (lat, lng, radius) in cases {
            let centre = Location::new(lat, lng).unwrap();
            let ((south, north), lngs) = bounding_box(lat, lng, radius);
            // Points on and inside the circle, every 5 degrees of bearing.
            for step in 0..72 {
                for fraction in [0.5, 0.999] {
                    let bearing = f64::from(step) * 5.0_f64.to_radians();
                    let d = radius * fraction / EARTH_KM;
                    let (p1, l1) = (lat.to_radians(), lng.to_radians());
                    let p2 = (p1.sin() * d.cos() + p1.cos() * d.sin() * bearing.cos()).asin();
                    let l2 = l1
                        + (bearing.sin() * d.sin() * p1.cos()).atan2(d.cos() - p1.sin() * p2.sin());
                    let (plat, mut plng) = (p2.to_degrees(), l2.to_degrees());
                    if plng > 180.0 {
                        plng -= 360.0;
                    }
                    if plng < -180.0 {
                        plng += 360.0;
                    }
                    let p = Location::new(plat, plng).unwrap();
                    assert!(engine::geo::distance_km(&centre, &p) <= radius);
                    assert!(
                        (south..=north).contains(&plat),
                        "{lat},{lng} r{radius}: {plat}"
                    );
                    assert!(
                        lngs.is_empty() || lngs.iter().any(|(w, e)| (*w..=*e).contains(&plng)),
                        "{lat},{lng} r{radius}: {plng} not in {lngs:?}"
                    );
                }
            }
        }
    }
}
