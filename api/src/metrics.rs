//! Prometheus metrics: request counts and a latency histogram per route, tours by status, and
//! match latency (a tour's creation to its first assigned/unassignable outcome).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use actors::store::TourRecord;
use chrono::{DateTime, Utc};
use engine::{TourId, TourStatus};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::ConnectionTrait;
use tokio::sync::{broadcast, watch};

use crate::error::ApiError;
use crate::state::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Upper bounds of the match latency buckets, in seconds (an unassignable tour has to look
/// at every calendar in reach, so the tail is long).
const MATCH_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The outcomes match latency is split by.
const OUTCOMES: [TourStatus; 2] = [TourStatus::Assigned, TourStatus::Unassignable];

struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new(&BUCKETS)
    }
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            count: 0,
            sum: 0.0,
        }
    }

    fn observe(&mut self, seconds: f64) {
        self.count += 1;
        self.sum += seconds;
        for (bound, n) in self.bounds.iter().zip(&mut self.counts) {
            if seconds <= *bound {
                *n += 1;
            }
        }
    }

    /// The `_bucket`, `_sum` and `_count` lines (cumulative buckets, as Prometheus wants).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (bound, n) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
    matching: BTreeMap<&'static str, Histogram>,
}

/// The process's counters.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *inner
            .requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        inner
            .latency
            .entry((method.to_owned(), route.to_owned()))
            .or_default()
            .observe(seconds);
    }

    /// Records how long a tour waited for its first outcome (`assigned` or `unassignable`).
    pub fn observe_match(&self, outcome: TourStatus, seconds: f64) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner
            .matching
            .entry(outcome.as_str())
            .or_insert_with(|| Histogram::new(&MATCH_BUCKETS))
            .observe(seconds);
    }

    fn render(&self, out: &mut String) {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        out.push_str("# HELP tourwise_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE tourwise_http_requests_total counter\n");
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "tourwise_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP tourwise_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE tourwise_http_request_duration_seconds histogram\n");
        for ((method, route), h) in &inner.latency {
            h.render(
                out,
                "tourwise_http_request_duration_seconds",
                &format!("method=\"{method}\",route=\"{route}\""),
            );
        }
        out.push_str(
            "# HELP tourwise_match_latency_seconds Time from a tour's creation to its first \
             outcome (assigned or unassignable).\n",
        );
        out.push_str("# TYPE tourwise_match_latency_seconds histogram\n");
        let empty = Histogram::new(&MATCH_BUCKETS);
        for outcome in OUTCOMES.map(TourStatus::as_str) {
            inner.matching.get(outcome).unwrap_or(&empty).render(
                out,
                "tourwise_match_latency_seconds",
                &format!("outcome=\"{outcome}\""),
            );
        }
    }
}

/// Tours followed for their first outcome at most; past it the oldest are forgotten.
const MAX_WAITING: usize = 100_000;

/// Feeds `tourwise_match_latency_seconds` from the runtime's committed tour changes until
/// `stopping` turns true: a tour's first `assigned` or `unassignable` record observes
/// `updated_at - created_at` (both stamped by the store).
pub async fn match_latency(
    metrics: Arc<Metrics>,
    mut changes: broadcast::Receiver<TourRecord>,
    mut stopping: watch::Receiver<bool>,
) {
    // Tours seen created here and not settled yet.
    let mut waiting: HashMap<TourId, DateTime<Utc>> = HashMap::new();
    loop {
        let received = tokio::select! {
            r = changes.recv() => r,
            _ = stopping.changed() => return,
        };
        let tour = match received {
            Ok(tour) => tour,
            // Missed changes: their tours are still counted by the version rule below.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        match tour.status {
            TourStatus::Pending if tour.version == 0 => {
                if waiting.len() >= MAX_WAITING {
                    let cutoff = Utc::now() - chrono::Duration::hours(1);
                    waiting.retain(|_, created| *created > cutoff);
                    if waiting.len() >= MAX_WAITING {
                        waiting.clear();
                    }
                }
                waiting.insert(tour.id, tour.created_at);
            }
            TourStatus::Assigned | TourStatus::Unassignable => {
                // A tour's first change after creation (version 1) is its first outcome
                // when it is one; tours created while this task was behind count that way.
                if waiting.remove(&tour.id).is_some() || tour.version == 1 {
                    let seconds = (tour.updated_at - tour.created_at)
                        .to_std()
                        .map_or(0.0, |d| d.as_secs_f64());
                    metrics.observe_match(tour.status, seconds);
                }
            }
            _ => {
                waiting.remove(&tour.id);
            }
        }
    }
}

/// Middleware: counts and times every request under its route pattern.
///
/// # Errors
/// Those of the inner service.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().to_string();
    let response = next.call(req).await?;
    if let Some(state) = state {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        state.metrics.observe(
            &method,
            &route,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(response)
}

/// `GET /metrics`.
///
/// # Errors
/// When the database fails.
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut out = String::new();
    state.metrics.render(&mut out);
    let select = Query::select()
        .column("status")
        .expr_as(Expr::cust("COUNT(*)"), "n")
        .from("tours")
        .group_by_col("status")
        .to_owned();
    let rows = state.db.query_all(&select).await?;
    out.push_str("# HELP tourwise_tours Tours by status.\n# TYPE tourwise_tours gauge\n");
    let mut counts: BTreeMap<&str, i64> = engine::TourStatus::ALL
        .iter()
        .map(|s| (s.as_str(), 0))
        .collect();
    for row in &rows {
        let status: String = row.try_get("", "status")?;
        let n: i64 = row.try_get("", "n")?;
        if let Some(slot) = engine::TourStatus::parse(&status).map(|s| s.as_str()) {
            counts.insert(slot, n);
        }
    }
    for (status, n) in counts {
        let _ = writeln!(out, "tourwise_tours{{status=\"{status}\"}} {n}");
    }
    let runtime = &state.runtime;
    out.push_str(
        "# HELP tourwise_consumer_lag Messages of the payments topic not yet committed by the engine's consumer group (-1: not measured yet).\n# TYPE tourwise_consumer_lag gauge\n",
    );
    let _ = writeln!(
        out,
        "tourwise_consumer_lag{{topic=\"payments\"}} {}",
        runtime.consumer_lag().unwrap_or(-1)
    );
    out.push_str("# HELP tourwise_payments_dead_lettered_total Payment messages sent to payments.dlq.\n# TYPE tourwise_payments_dead_lettered_total counter\n");
    let _ = writeln!(
        out,
        "tourwise_payments_dead_lettered_total {}",
        runtime.dead_lettered()
    );
    out.push_str("# HELP tourwise_payments_duplicates_total Payment events absorbed because their payment already had its tour.\n# TYPE tourwise_payments_duplicates_total counter\n");
    let _ = writeln!(
        out,
        "tourwise_payments_duplicates_total {}",
        runtime.duplicates_absorbed()
    );
    out.push_str("# HELP tourwise_events_published_total Events the outbox relay published.\n# TYPE tourwise_events_published_total counter\n");
    let _ = writeln!(
        out,
        "tourwise_events_published_total {}",
        runtime.events_published()
    );
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out))
}
