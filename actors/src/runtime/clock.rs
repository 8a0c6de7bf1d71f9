//! What time it is, for the runtime's own decisions (when reminders are due, whether a window
//! is in the past). Timers sleep on tokio's clock; [`TokioClock`] ties the calendar time to
//! it, so a test that pauses and advances tokio's time (`tokio::time::pause`/`advance`) moves
//! both together.

use std::fmt::Debug;

use chrono::{DateTime, Utc};

/// The calendar time the runtime reads.
pub trait Clock: Debug + Send + Sync + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A calendar time that starts at a given instant and then follows tokio's monotonic clock:
/// under `tokio::time::pause` it stands still until the test advances it.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: DateTime<Utc>,
    since: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `origin` now (must be called inside a tokio runtime).
    #[must_use]
    pub fn starting_at(origin: DateTime<Utc>) -> Self {
        Self {
            origin,
            since: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().duration_since(self.since);
        chrono::Duration::from_std(elapsed)
            .ok()
            .and_then(|d| self.origin.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}
