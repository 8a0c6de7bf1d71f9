//! The admin dashboard (issue #10): the built front end of `admin/` (its `dist/`, inside the
//! binary) under `/admin`, and `GET /assignments/events`, the stream of every tour change it
//! follows live.

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use actors::store::TourRecord;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use crate::auth::caller_from_header_or_query;
use crate::error::ApiError;
use crate::perm::Capability;
use crate::routes::events::KEEP_ALIVE;
use crate::state::AppState;

/// `admin/dist`, built by `npm run build` in `admin/` (`.ci/run` checks it is current).
#[derive(rust_embed::RustEmbed)]
#[folder = "../admin/dist"]
struct AdminFiles;

/// The dashboard's pages only talk to this server: no CDN, no inline scripts.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   connect-src 'self'; frame-ancestors 'none'";

/// Registers `/admin` and its files (outside the API's endpoint table: pages, not API).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(page))
        .route("/admin/{path:.*}", web::get().to(page));
}

/// A file of the dashboard; any other path under `/admin` is the page itself (the front end
/// reads its state from the URL).
async fn page(req: HttpRequest) -> HttpResponse {
    let path = req.match_info().get("path").unwrap_or("");
    let found = AdminFiles::get(path).filter(|_| !path.is_empty());
    let (name, file) = match found {
        Some(file) => (path, file),
        // A missing asset is a 404: answering the page would hide a broken build.
        None if path.starts_with("assets/") => return crate::server::not_found().await,
        None => match AdminFiles::get("index.html") {
            Some(file) => ("index.html", file),
            None => return crate::server::not_found().await,
        },
    };
    // Vite names assets by content hash: those may be cached for good; the page may not.
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    HttpResponse::Ok()
        .content_type(file.metadata.mimetype())
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(file.data.into_owned())
}

struct Follow {
    changes: broadcast::Receiver<TourRecord>,
    stopping: watch::Receiver<bool>,
    /// Whether the opening comment went out (it lets clients know they are connected).
    opened: bool,
}

impl Follow {
    /// The next chunk: a tour, a `lagged` event (reload everything), or a keep-alive.
    async fn next(&mut self) -> Option<Bytes> {
        if !self.opened {
            self.opened = true;
            return Some(Bytes::from_static(b": connected\n\n"));
        }
        if *self.stopping.borrow() {
            return None;
        }
        let received = tokio::select! {
            r = tokio::time::timeout(KEEP_ALIVE, self.changes.recv()) => r,
            _ = self.stopping.changed() => return None,
        };
        Some(match received {
            Err(_) => Bytes::from_static(b": keep-alive\n\n"),
            Ok(Ok(mut tour)) => {
                tour.explanation = None;
                let json = serde_json::to_string(&tour).ok()?;
                Bytes::from(format!("data: {json}\n\n"))
            }
            Ok(Err(RecvError::Lagged(_))) => Bytes::from_static(b"event: lagged\ndata: {}\n\n"),
            Ok(Err(RecvError::Closed)) => return None,
        })
    }
}

/// `GET /assignments/events` (`text/event-stream`): every tour change this process commits,
/// as the tour (without its explanation); `event: lagged` when changes were skipped.
///
/// # Errors
/// 401 without a valid token (header or `?access_token=`), 403 for non-admins.
pub async fn assignment_events(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller_from_header_or_query(&req)?;
    caller.may(Capability::ExplainAssignments)?;
    let follow = Follow {
        changes: state.runtime.tour_changes(),
        stopping: state.stopping.clone(),
        opened: false,
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
