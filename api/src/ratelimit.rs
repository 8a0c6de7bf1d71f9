//! Sliding-window rate limits (CONTRACT 2): N events per key per window, counted in Redis when
//! it is configured (so every instance shares the counts), in process otherwise.
//!
//! In Redis each key is a sorted set of event times (ms, Redis's own clock, so instances with
//! skewed clocks agree), trimmed to the window by one Lua script that also decides: the check
//! and the record are atomic across instances. When Redis fails, the limiter counts in
//! process until it answers again: limits stay enforced per instance instead of failing every
//! login or payment.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

/// Keys kept before idle ones are swept.
const SWEEP_AT: usize = 10_000;

/// `KEYS[1]` the key; `ARGV`: limit, window ms, mode (`check`, `hit`, `record`), a unique
/// member. Returns 0 when allowed (and recorded unless `check`), else the ms to wait.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if ARGV[3] ~= 'record' then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + window - now)
  end
  if ARGV[3] == 'check' then return 0 end
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return 0
";

/// Where a limiter counts in Redis: the connection and the key prefix
/// (`{prefix}:ratelimit:{name}:{key}`).
#[derive(Clone)]
pub struct RedisCounts {
    /// The connection (reconnects by itself).
    pub conn: ConnectionManager,
    /// Key prefix (`--redis-prefix`).
    pub prefix: String,
}

/// At most `limit` events per key in any `window`.
pub struct Limiter {
    limit: usize,
    window: Duration,
    hits: Mutex<HashMap<String, VecDeque<Instant>>>,
    redis: Option<(RedisCounts, String, redis::Script)>,
}

/// What the Redis script is asked.
#[derive(Clone, Copy)]
enum Mode {
    Check,
    Hit,
    Record,
}

impl Limiter {
    /// An in-process limiter of `limit` events per `window`.
    #[must_use]
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit as usize,
            window,
            hits: Mutex::new(HashMap::new()),
            redis: None,
        }
    }

    /// A limiter counting in Redis under `name` (falling back to in process while Redis fails).
    #[must_use]
    pub fn shared(limit: u32, window: Duration, redis: Option<&RedisCounts>, name: &str) -> Self {
        let mut limiter = Self::new(limit, window);
        limiter.redis = redis.map(|r| (r.clone(), name.to_owned(), redis::Script::new(SCRIPT)));
        limiter
    }

    /// Asks Redis; `None` when there is no Redis or it failed (then the caller counts locally).
    async fn in_redis(&self, key: &str, mode: Mode) -> Option<Result<(), u64>> {
        let (counts, name, script) = self.redis.as_ref()?;
        let mode_arg = match mode {
            Mode::Check => "check",
            Mode::Hit => "hit",
            Mode::Record => "record",
        };
        let mut conn = counts.conn.clone();
        let answer: redis::RedisResult<u64> = script
            .key(format!("{}:ratelimit:{name}:{key}", counts.prefix))
            .arg(self.limit)
            .arg(u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX))
            .arg(mode_arg)
            .arg(uuid::Uuid::now_v7().to_string())
            .invoke_async(&mut conn)
            .await;
        match answer {
            Ok(0) => Some(Ok(())),
            Ok(wait_ms) => Some(Err(wait_ms.div_ceil(1000))),
            Err(err) => {
                tracing::warn!(%err, limiter = %name, "rate limit: Redis failed; counting in process");
                None
            }
        }
    }

    /// `Err(seconds to wait)` when `key` is at its limit; otherwise nothing is recorded.
    ///
    /// # Errors
    /// The seconds until the oldest event leaves the window.
    pub async fn check(&self, key: &str) -> Result<(), u64> {
        match self.in_redis(key, Mode::Check).await {
            Some(answer) => answer,
            None => self.check_here(key),
        }
    }

    /// Records an event for `key`.
    pub async fn record(&self, key: &str) {
        if self.in_redis(key, Mode::Record).await.is_none() {
            self.record_here(key);
        }
    }

    /// [`Limiter::check`] then [`Limiter::record`], atomically.
    ///
    /// # Errors
    /// As [`Limiter::check`] (nothing is recorded then).
    pub async fn hit(&self, key: &str) -> Result<(), u64> {
        match self.in_redis(key, Mode::Hit).await {
            Some(answer) => answer,
            None => self.hit_here(key),
        }
    }

    /// Forgets `key` (e.g. after a successful login).
    pub async fn reset(&self, key: &str) {
        if let Some((counts, name, _)) = &self.redis {
            let mut conn = counts.conn.clone();
            let deleted: redis::RedisResult<()> = redis::cmd("DEL")
                .arg(format!("{}:ratelimit:{name}:{key}", counts.prefix))
                .query_async(&mut conn)
                .await;
            if let Err(err) = deleted {
                tracing::warn!(%err, limiter = %name, "rate limit: Redis failed to reset a key");
            }
        }
        self.reset_here(key);
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

    fn check_here(&self, key: &str) -> Result<(), u64> {
        self.with_key(key, |queue, now| {
            if queue.len() >= self.limit {
                Err(self.retry_after(queue, now))
            } else {
                Ok(())
            }
        })
    }

    fn record_here(&self, key: &str) {
        self.with_key(key, |queue, now| queue.push_back(now));
    }

    fn hit_here(&self, key: &str) -> Result<(), u64> {
        self.with_key(key, |queue, now| {
            if queue.len() >= self.limit {
                Err(self.retry_after(queue, now))
            } else {
                queue.push_back(now);
                Ok(())
            }
        })
    }

    fn reset_here(&self, key: &str) {
        self.with_key(key, |queue, _| queue.clear());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn limits_per_key_and_says_how_long_to_wait(limiter: &Limiter) {
        assert!(limiter.hit("a").await.is_ok());
        limiter.record("a").await;
        let wait = limiter.hit("a").await.unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(limiter.check("a").await, Err(wait));
        assert!(limiter.hit("b").await.is_ok());
        limiter.reset("a").await;
        assert!(limiter.check("a").await.is_ok());
    }

    #[tokio::test]
    async fn in_process() {
        limits_per_key_and_says_how_long_to_wait(&Limiter::new(2, Duration::from_secs(60))).await;
    }

    /// Against the Redis at 127.0.0.1:6379 (`.ci/run` starts it): two limiters over one Redis
    /// (two instances) share their counts.
    #[tokio::test]
    async fn in_redis_shared_between_instances() {
        let url = std::env::var("TOURWISE_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let client = redis::Client::open(url).unwrap();
        let conn = ConnectionManager::new(client)
            .await
            .expect("Redis at 127.0.0.1:6379");
        let counts = RedisCounts {
            conn,
            prefix: format!("test-{}", uuid::Uuid::new_v4().simple()),
        };
        let window = Duration::from_secs(60);
        let one = Limiter::shared(2, window, Some(&counts), "logins");
        limits_per_key_and_says_how_long_to_wait(&one).await;
        let other = Limiter::shared(2, window, Some(&counts), "logins");
        assert!(one.hit("c").await.is_ok());
        assert!(other.hit("c").await.is_ok());
        assert!(
            one.hit("c").await.is_err(),
            "the second instance's hit counts"
        );
        // Nothing was counted in process.
        assert!(one.check_here("c").is_ok() && other.check_here("c").is_ok());
        for key in ["a", "b", "c"] {
            one.reset(key).await;
        }
    }
}
