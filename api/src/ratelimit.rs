//! In-process sliding-window rate limits (CONTRACT 2): N events per key per window.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys kept before idle ones are swept.
const SWEEP_AT: usize = 10_000;

/// At most `limit` events per key in any `window`.
pub struct Limiter {
    limit: usize,
    window: Duration,
    hits: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Limiter {
    /// A limiter of `limit` events per `window`.
    #[must_use]
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit as usize,
            window,
            hits: Mutex::new(HashMap::new()),
        }
    }

    fn with_key<R>(&self, key: &str, f: impl FnOnce(&mut VecDeque<Instant>, Instant) -> R) -> R {
        let now = Instant::now();
        let mut hits = self
            .hits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if hits.len() > SWEEP_AT {
            let window = self.window;
            hits.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let queue = hits.entry(key.to_owned()).or_default();
        while queue
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            queue.pop_front();
        }
        f(queue, now)
    }

    fn retry_after(&self, queue: &VecDeque<Instant>, now: Instant) -> u64 {
        let oldest = queue.front().copied().unwrap_or(now);
        let wait = self.window.saturating_sub(now.duration_since(oldest));
        wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
    }

    /// `Err(seconds to wait)` when `key` is at its limit; otherwise nothing is recorded.
    ///
    /// # Errors
    /// The seconds until the oldest event leaves the window.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.with_key(key, |queue, now| {
            if queue.len() >= self.limit {
                Err(self.retry_after(queue, now))
            } else {
                Ok(())
            }
        })
    }

    /// Records an event for `key`.
    pub fn record(&self, key: &str) {
        self.with_key(key, |queue, now| queue.push_back(now));
    }

    /// [`Limiter::check`] then [`Limiter::record`], atomically.
    ///
    /// # Errors
    /// As [`Limiter::check`] (nothing is recorded then).
    pub fn hit(&self, key: &str) -> Result<(), u64> {
        self.with_key(key, |queue, now| {
            if queue.len() >= self.limit {
                Err(self.retry_after(queue, now))
            } else {
                queue.push_back(now);
                Ok(())
            }
        })
    }

    /// Forgets `key` (e.g. after a successful login).
    pub fn reset(&self, key: &str) {
        self.with_key(key, |queue, _| queue.clear());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_says_how_long_to_wait() {
        let limiter = Limiter::new(2, Duration::from_secs(60));
        assert!(limiter.hit("a").is_ok());
        assert!(limiter.hit("a").is_ok());
        let wait = limiter.hit("a").unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(limiter.hit("b").is_ok());
        limiter.reset("a");
        assert!(limiter.check("a").is_ok());
    }
}
