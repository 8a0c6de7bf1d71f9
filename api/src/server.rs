//! The HTTP server: binds, applies migrations, serves until SIGTERM/Ctrl-C.

use std::net::SocketAddr;

use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse, HttpServer};
use actors::availability_view::RedisView;
use actors::bus::{BusError, EventBus, InProcessBus, KafkaBus, KafkaConfig};
use actors::mail::{EmlFolder, Mailer, SmtpMailer};
use actors::runtime::{Runtime, RuntimeConfig};
use actors::store::SeaStore;
use anyhow::Context as _;
use redis::aio::ConnectionManager;
use sea_orm::ConnectionTrait;
use serde_json::json;
use tokio::sync::watch;

use crate::auth::{self, Jwt};
use crate::config::Config;
use crate::error::extractors;
use crate::media::MediaStore;
use crate::metrics::{self, Metrics};
use crate::ratelimit::RedisCounts;
use crate::routes;
use crate::search_cache::SearchCache;
pub use crate::state::AppState;
use crate::state::Limiters;
use crate::tour_views::TourViews;

/// A bound, not yet running server.
pub struct Bound {
    /// The address it listens on (the real port when 0 was asked).
    pub addr: SocketAddr,
    /// The event bus the API publishes on (the engine consumes it).
    pub bus: Arc<dyn EventBus>,
    runtime: Runtime,
    server: actix_web::dev::Server,
    stopping: Arc<watch::Sender<bool>>,
}

/// Stops a running server as SIGTERM does (for embedding and tests).
#[derive(Clone)]
pub struct Stopper {
    handle: actix_web::dev::ServerHandle,
    stopping: Arc<watch::Sender<bool>>,
}

impl Stopper {
    /// Ends the event streams, stops accepting, drains in-flight requests; [`Bound::run`]
    /// then stops the engine and returns.
    pub async fn stop(&self) {
        let _ = self.stopping.send(true);
        self.handle.stop(true).await;
    }
}

impl Bound {
    /// A handle that stops the server.
    #[must_use]
    pub fn stopper(&self) -> Stopper {
        Stopper {
            handle: self.server.handle(),
            stopping: self.stopping.clone(),
        }
    }

    /// Serves until the process is told to stop (SIGTERM, SIGINT) or [`Stopper::stop`], then
    /// ends the event streams, drains in-flight requests and stops the engine.
    ///
    /// # Errors
    /// When the server fails while running.
    pub async fn run(self) -> std::io::Result<()> {
        let stopper = self.stopper();
        let signals = tokio::spawn(async move {
            shutdown_signal().await;
            stopper.stop().await;
        });
        let result = self.server.await;
        signals.abort();
        let _ = self.stopping.send(true);
        self.runtime.shutdown().await;
        result
    }
}

/// SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Connects to every configured dependency (failing with a one-line reason when one is
/// unreachable), applies migrations, ensures the bootstrap admin and binds the HTTP address.
///
/// # Errors
/// An unreachable database, failed migrations, an unusable data dir, bad admin credentials
/// or an address that cannot be bound.
pub async fn bind(config: &Config) -> anyhow::Result<Bound> {
    let db = migrations::connect_and_migrate(&config.database.database_url)
        .await
        .with_context(|| {
            format!(
                "database {} is unreachable or its migrations failed",
                redact(&config.database.database_url)
            )
        })?;
    let secret = auth::load_secret(config.jwt_secret.as_deref(), &config.data_dir())
        .context("JWT secret")?;
    match (&config.admin_email, &config.admin_password) {
        (Some(email), Some(password)) => routes::iam::bootstrap_admin(&db, email, password)
            .await
            .context("admin bootstrap")?,
        (None, None) => {}
        _ => anyhow::bail!("--admin-email and --admin-password go together"),
    }
    let bus: Arc<dyn EventBus> = match &config.kafka_brokers {
        None => Arc::new(InProcessBus::new()),
        Some(brokers) => {
            let mut kafka = KafkaConfig::new(brokers);
            kafka.partitions = config.kafka_partitions;
            kafka.instance_id.clone_from(&config.kafka_instance_id);
            // The error already names the brokers and what failed.
            let bus = KafkaBus::connect(kafka).await.map_err(|e| match e {
                BusError::Broker(message) => anyhow::Error::msg(message),
                other => anyhow::Error::msg(other),
            })?;
            Arc::new(bus)
        }
    };
    let mailer = mailer(config).await?;
    let redis = match &config.redis_url {
        None => None,
        Some(url) => Some(redis_connection(url).await?),
    };
    let availability_view = redis
        .clone()
        .map(|conn| RedisView::new(conn, &config.redis_prefix));
    let media = media_store(config).await?;
    let search_cache = Arc::new(SearchCache::new(
        redis
            .clone()
            .map(|conn| (conn, config.redis_prefix.clone())),
    ));
    let redis_counts = redis.clone().map(|conn| RedisCounts {
        conn,
        prefix: config.redis_prefix.clone(),
    });
    // This process among others sharing the database and brokers (scale-out): its events
    // carry this id, so that it can tell its own from its peers' on `availability`.
    let origin = uuid::Uuid::now_v7().to_string();
    let store = Arc::new(SeaStore::new(db.clone()).with_origin(&origin));
    let policy: Arc<dyn engine::Policy> = match config.policy.as_str() {
        "balanced" => Arc::new(engine::Balanced::default()),
        _ => Arc::new(engine::Nearest),
    };
    let runtime = Runtime::start(
        store.clone() as Arc<dyn actors::store::Store>,
        bus.clone(),
        RuntimeConfig {
            policy,
            // ractor's registry is per process: each bound server (tests bind several) gets
            // its own names.
            namespace: format!("{}:", uuid::Uuid::new_v4().simple()),
            mailer: Some(mailer),
            availability_view: availability_view.clone(),
            origin: Some(origin),
            accept_timeout: Duration::from_secs(config.accept_timeout_secs),
            reminder_offsets: config
                .mail
                .reminder_minutes
                .iter()
                .map(|m| Duration::from_secs(u64::from(*m) * 60))
                .collect(),
            ..RuntimeConfig::default()
        },
    )
    .await
    .context("the engine runtime did not start")?;
    runtime.start_outbox_relay(db.clone());
    let tour_views = Arc::new(TourViews::new(
        config.tour_cache,
        Duration::from_millis(config.tour_cache_ttl_ms),
    ));
    let observer = tour_views.clone();
    runtime.observe_tour_changes(Arc::new(move |tour| observer.changed(tour)));
    let (stopping, stopping_rx) = watch::channel(false);
    let metrics = Arc::new(Metrics::default());
    tokio::spawn(metrics::match_latency(
        metrics.clone(),
        runtime.tour_changes(),
        stopping_rx.clone(),
    ));
    let chat = Arc::new(crate::chat::ChatHub::default());
    tokio::spawn(chat.clone().follow(runtime.tour_changes()));
    let public_url = Arc::new(std::sync::OnceLock::new());
    let state = AppState {
        chat,
        public_url: public_url.clone(),
        stopping: stopping_rx,
        runtime: runtime.clone(),
        store,
        redis,
        availability_view,
        search_cache,
        media,
        tour_views,
        db,
        bus: bus.clone(),
        jwt: Arc::new(Jwt::new(&secret)),
        limits: Arc::new(Limiters::new(&config.limits, redis_counts.as_ref())),
        metrics,
    };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(extractors::json())
            .app_data(extractors::query())
            .app_data(extractors::path())
            .wrap(from_fn(metrics::track))
            .configure(routes::configure)
            .configure(routes::dashboard::configure)
            .default_service(web::to(not_found))
    })
    .workers(2)
    // Signals are handled in `Bound::run`, which ends the event streams first.
    .disable_signals()
    .bind(&config.http_addr)
    .with_context(|| format!("cannot listen on {}", config.http_addr))?;
    let addr = *server
        .addrs()
        .first()
        .context("the server bound no address")?;
    let _ = public_url.set(
        config
            .mail
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}")),
    );
    Ok(Bound {
        addr,
        bus,
        runtime,
        server: server.shutdown_timeout(10).run(),
        stopping: Arc::new(stopping),
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

/// `GET /healthz`.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = state.db.execute_unprepared("SELECT 1").await.is_ok();
    // False once a supervisor of the actor runtime escalated (see actors::runtime::root).
    let engine = state.runtime.healthy();
    let mut dependencies = json!({"database": database, "engine": engine});
    let mut ready = database && engine;
    if state.bus.is_remote() {
        let up = state.bus.reachable().await;
        dependencies["kafka"] = json!(up);
        ready &= up;
    }
    if let Some(redis) = &state.redis {
        let up = redis_ready(redis).await;
        dependencies["redis"] = json!(up);
        ready &= up;
    }
    let body = json!({"ready": ready, "dependencies": dependencies});
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// A connection to the configured Redis that answered `PING`.
///
/// # Errors
/// One line naming Redis when it is unreachable.
async fn redis_connection(url: &str) -> anyhow::Result<ConnectionManager> {
    let unreachable = || format!("Redis {} is unreachable", redact(url));
    let client = redis::Client::open(url).with_context(unreachable)?;
    // Reconnects by itself after Redis restarts; each command waits at most 2 s.
    let manager = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(1);
    let mut connection = tokio::time::timeout(
        Duration::from_secs(5),
        ConnectionManager::new_with_config(client, manager),
    )
    .await
    .map_err(anyhow::Error::msg)
    .and_then(|c| c.map_err(anyhow::Error::from))
    .with_context(unreachable)?;
    let _: String = redis::cmd("PING")
        .query_async(&mut connection)
        .await
        .with_context(unreachable)?;
    Ok(connection)
}

/// Whether Redis answers `PING` within a second.
async fn redis_ready(connection: &ConnectionManager) -> bool {
    let mut connection = connection.clone();
    let cmd = redis::cmd("PING");
    let ping = cmd.query_async::<String>(&mut connection);
    matches!(
        tokio::time::timeout(Duration::from_secs(1), ping).await,
        Ok(Ok(_))
    )
}

/// The media store (checked now: an unreachable one stops the start with a one-line reason).
async fn media_store(config: &Config) -> anyhow::Result<MediaStore> {
    let data = config.data_dir();
    let url = config
        .media_url
        .clone()
        .unwrap_or_else(|| data.join("media").display().to_string());
    let store = MediaStore::open(&url, &data.join("spool"))
        .with_context(|| format!("media store {} is unusable", redact(&url)))?;
    anyhow::ensure!(
        store.reachable().await,
        "media store {} is unreachable",
        redact(&url)
    );
    Ok(store)
}

/// The configured mailer: SMTP (checked now: an unreachable relay stops the start) or the
/// `.eml` folder.
async fn mailer(config: &Config) -> anyhow::Result<Arc<dyn Mailer>> {
    let mail = &config.mail;
    if let Some(url) = &mail.smtp_url {
        let smtp = SmtpMailer::new(url, &mail.mail_from).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            smtp.reachable().await,
            "SMTP relay {} is unreachable",
            redact(url)
        );
        return Ok(Arc::new(smtp));
    }
    let dir = mail
        .mail_dir
        .clone()
        .unwrap_or_else(|| config.data_dir().join("mail"));
    let folder = EmlFolder::new(&dir, &mail.mail_from).map_err(anyhow::Error::msg)?;
    tracing::info!(dir = %dir.display(), "emails are written as .eml files");
    Ok(Arc::new(folder))
}

/// The JSON 404 of any path that is not an endpoint.
pub async fn not_found() -> HttpResponse {
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
