//! What the handlers share.

use std::sync::Arc;
use std::time::Duration;

use actors::bus::EventBus;
use actors::runtime::Runtime;
use actors::store::SeaStore;
use sea_orm::DatabaseConnection;

use crate::auth::Jwt;
use crate::config::Limits;
use crate::metrics::Metrics;
use crate::ratelimit::{Limiter, RedisCounts};
use crate::tour_views::TourViews;

/// The rate limiters of CONTRACT 2.
pub struct Limiters {
    /// Failed logins per email.
    pub login_failures: Limiter,
    /// Login attempts per client IP.
    pub login_ip: Limiter,
    /// Payment attempts per customer.
    pub payments: Limiter,
    /// Password-reset emails per address (beyond it requests are still 202, and send nothing).
    pub password_resets: Limiter,
    /// Chat messages per sender and tour.
    pub chat_messages: Limiter,
    /// Location updates per realtor and tour (one a second on average).
    pub chat_locations: Limiter,
}

impl Limiters {
    /// Limiters with the configured numbers, counting in Redis when it is given.
    #[must_use]
    pub fn new(limits: &Limits, redis: Option<&RedisCounts>) -> Self {
        let minute = Duration::from_secs(60);
        let quarter = Duration::from_secs(900);
        Self {
            login_failures: Limiter::shared(
                limits.login_failures_per_email,
                quarter,
                redis,
                "login_failures",
            ),
            login_ip: Limiter::shared(limits.login_attempts_per_ip, minute, redis, "login_ip"),
            payments: Limiter::shared(limits.payments_per_customer, minute, redis, "payments"),
            password_resets: Limiter::shared(5, quarter, redis, "password_resets"),
            chat_messages: Limiter::shared(30, minute, redis, "chat_messages"),
            chat_locations: Limiter::shared(10, Duration::from_secs(10), redis, "chat_locations"),
        }
    }
}

/// Shared by every handler (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: DatabaseConnection,
    /// Tour reads.
    pub store: Arc<SeaStore>,
    /// Redis, when configured (`/readyz` asks it).
    pub redis: Option<redis::aio::ConnectionManager>,
    /// The availability view in Redis, when configured (`GET /availability` reads it).
    pub availability_view: Option<actors::availability_view::RedisView>,
    /// Listing media and realtor photos.
    pub media: crate::media::MediaStore,
    /// Cached `GET /listings` answers (Redis or in process).
    pub search_cache: Arc<crate::search_cache::SearchCache>,
    /// Tour answers kept in memory, replaced on every change this process commits.
    pub tour_views: Arc<TourViews>,
    /// Live chat delivery.
    pub chat: Arc<crate::chat::ChatHub>,
    /// Where `payment.succeeded` goes.
    pub bus: Arc<dyn EventBus>,
    /// Token keys.
    pub jwt: Arc<Jwt>,
    /// Rate limits.
    pub limits: Arc<Limiters>,
    /// Prometheus counters.
    pub metrics: Arc<Metrics>,
    /// The actor runtime (tours, realtors).
    pub runtime: Runtime,
    /// Where users reach the API (links in emails); set once bound.
    pub public_url: Arc<std::sync::OnceLock<String>>,
    /// Turns true when the server starts shutting down (long-lived streams end then).
    pub stopping: tokio::sync::watch::Receiver<bool>,
}
