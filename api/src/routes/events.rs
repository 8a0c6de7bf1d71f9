//! `GET /tours/{id}/events`: Server-Sent Events, one `data: <tour JSON>` event per status
//! change of one tour (CONTRACT 4). The current tour comes first, then every change the
//! runtime commits ([`actors::runtime::Runtime::tour_changes`]); the stream ends after a
//! terminal status. Browsers' `EventSource` cannot send headers, so the token may also come
//! as `?access_token=` (this endpoint only).

use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use actors::store::{Store, TourRecord};
use engine::{TourId, TourStatus};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::auth::caller_from_header_or_query;
use crate::error::ApiError;
use crate::perm::Capability;
use crate::routes::tours::{tour_json, visible};
use crate::state::AppState;

/// A comment line this often keeps proxies and clients from timing the stream out.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Whether nothing more will happen to a tour (the stream ends after it).
fn ends(status: TourStatus) -> bool {
    matches!(status, TourStatus::Completed | TourStatus::Cancelled)
}

struct Follow {
    state: web::Data<AppState>,
    tour: TourId,
    changes: broadcast::Receiver<TourRecord>,
    stopping: watch::Receiver<bool>,
    /// The last tour sent (status and version).
    status: TourStatus,
    version: i32,
    /// The first event, not sent yet.
    first: Option<Bytes>,
    done: bool,
}

async fn event(state: &AppState, tour: &TourRecord) -> Result<Bytes, ApiError> {
    let json = tour_json(state, tour).await?;
    Ok(Bytes::from(format!("data: {json}\n\n")))
}

impl Follow {
    /// The event for `record` if it is a newer tour with another status.
    async fn offer(&mut self, record: &TourRecord) -> Option<Option<Bytes>> {
        if record.version <= self.version || record.status == self.status {
            self.version = self.version.max(record.version);
            return Some(None);
        }
        self.version = record.version;
        self.status = record.status;
        self.done = ends(record.status);
        match event(&self.state, record).await {
            Ok(bytes) => Some(Some(bytes)),
            Err(err) => {
                tracing::warn!(tour = %self.tour.0, error = %err, "tour event stream ended");
                None
            }
        }
    }

    /// The next chunk: an event or a keep-alive comment; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        if self.done || *self.stopping.borrow() {
            return None;
        }
        loop {
            let received = tokio::select! {
                r = tokio::time::timeout(KEEP_ALIVE, self.changes.recv()) => r,
                _ = self.stopping.changed() => return None,
            };
            let record = match received {
                Err(_) => return Some(Bytes::from_static(b": keep-alive\n\n")),
                Ok(Ok(record)) if record.id == self.tour => record,
                Ok(Ok(_)) => continue,
                Ok(Err(RecvError::Lagged(_))) => {
                    // Changes were missed: the stored tour says where it is now.
                    match self.state.store.get_tour(self.tour).await {
                        Ok(Some(record)) => record,
                        Ok(None) => return None,
                        Err(err) => {
                            tracing::warn!(tour = %self.tour.0, error = %err, "tour event stream ended");
                            return None;
                        }
                    }
                }
                Ok(Err(RecvError::Closed)) => return None,
            };
            match self.offer(&record).await? {
                Some(bytes) => return Some(bytes),
                None => continue,
            }
        }
    }
}

/// `GET /tours/{id}/events` (`text/event-stream`).
///
/// # Errors
/// 401 without a valid token (header or `?access_token=`), 403 for providers, 404 for
/// tours the caller may not see.
pub async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller_from_header_or_query(&req)?;
    // Subscribe before reading, so no change between the read and the first event is lost.
    let changes = state.runtime.tour_changes();
    let tour = visible(&state, &caller, Capability::ReadTour, *id).await?;
    let first = event(&state, &tour).await?;
    let follow = Follow {
        tour: tour.id,
        changes,
        stopping: state.stopping.clone(),
        status: tour.status,
        version: tour.version,
        first: Some(first),
        done: ends(tour.status),
        state,
    };
    let body = futures_util::stream::unfold(follow, |mut follow| async move {
        let chunk = follow.next().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), follow))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
