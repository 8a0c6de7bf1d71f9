//! The HTTP server: binds, applies migrations, serves until SIGTERM/Ctrl-C.

use std::net::SocketAddr;

use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context as _;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;

use crate::config::Config;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: DatabaseConnection,
}

/// A bound, not yet running server.
pub struct Bound {
    /// The address it listens on (the real port when 0 was asked).
    pub addr: SocketAddr,
    server: actix_web::dev::Server,
}

impl Bound {
    /// Serves until the process is told to stop (SIGTERM, SIGINT), then drains in-flight requests.
    ///
    /// # Errors
    /// When the server fails while running.
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Connects to every configured dependency (failing with a one-line reason when one is
/// unreachable), applies migrations and binds the HTTP address.
///
/// # Errors
/// An unreachable database, failed migrations or an address that cannot be bound.
pub async fn bind(config: &Config) -> anyhow::Result<Bound> {
    let db = migrations::connect_and_migrate(&config.database.database_url)
        .await
        .with_context(|| {
            format!(
                "database {} is unreachable or its migrations failed",
                redact(&config.database.database_url)
            )
        })?;
    let state = AppState { db };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .default_service(web::to(not_found))
    })
    .workers(2)
    .bind(&config.http_addr)
    .with_context(|| format!("cannot listen on {}", config.http_addr))?;
    let addr = *server
        .addrs()
        .first()
        .context("the server bound no address")?;
    Ok(Bound {
        addr,
        server: server.shutdown_timeout(10).run(),
    })
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = state.db.execute_unprepared("SELECT 1").await.is_ok();
    let body = json!({"ready": database, "dependencies": {"database": database}});
    if database {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .json(json!({"error": {"code": "not_found", "message": "no such endpoint"}}))
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://***@h:5432/db"
        );
        assert_eq!(
            redact("sqlite://tourwise.db?mode=rwc"),
            "sqlite://tourwise.db?mode=rwc"
        );
    }
}
