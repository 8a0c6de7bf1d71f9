//! Cached answers of `GET /listings` searches: in Redis when it is configured (shared by every
//! instance), in process otherwise.
//!
//! Invalidation is by generation: every listing or category change bumps a counter after it
//! commits, and answers are stored under the generation read *before* their query ran. A
//! search that raced a change can only store its answer under a generation nobody reads any
//! more, so no change is ever hidden by the cache. Entries also expire after [`TTL`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;

/// How long an answer is kept.
const TTL: Duration = Duration::from_secs(300);
/// Answers kept in process at most.
const LOCAL_CAPACITY: u64 = 10_000;

/// The search cache.
pub struct SearchCache {
    generation: AtomicU64,
    local: moka::sync::Cache<(u64, String), String>,
    redis: Option<(ConnectionManager, String)>,
}

impl SearchCache {
    /// In Redis under `{prefix}:search:` when `redis` is given, else in process.
    #[must_use]
    pub fn new(redis: Option<(ConnectionManager, String)>) -> Self {
        Self {
            generation: AtomicU64::new(0),
            local: moka::sync::Cache::builder()
                .max_capacity(LOCAL_CAPACITY)
                .time_to_live(TTL)
                .build(),
            redis,
        }
    }

    /// The current generation: read it before querying, store the answer under it.
    pub async fn generation(&self) -> Option<u64> {
        let Some((conn, prefix)) = &self.redis else {
            return Some(self.generation.load(Ordering::SeqCst));
        };
        let mut conn = conn.clone();
        let read: redis::RedisResult<Option<u64>> = redis::cmd("GET")
            .arg(format!("{prefix}:search:generation"))
            .query_async(&mut conn)
            .await;
        match read {
            Ok(generation) => Some(generation.unwrap_or(0)),
            Err(err) => {
                tracing::warn!(%err, "search cache: Redis failed; not caching");
                None
            }
        }
    }

    /// The answer stored for `key` at `generation`.
    pub async fn get(&self, generation: u64, key: &str) -> Option<String> {
        let Some((conn, prefix)) = &self.redis else {
            return self.local.get(&(generation, key.to_owned()));
        };
        let mut conn = conn.clone();
        redis::cmd("GET")
            .arg(format!("{prefix}:search:{generation}:{key}"))
            .query_async(&mut conn)
            .await
            .unwrap_or(None)
    }

    /// Stores `answer` for `key` at `generation`.
    pub async fn put(&self, generation: u64, key: &str, answer: String) {
        let Some((conn, prefix)) = &self.redis else {
            self.local.insert((generation, key.to_owned()), answer);
            return;
        };
        let mut conn = conn.clone();
        let stored: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("{prefix}:search:{generation}:{key}"))
            .arg(answer)
            .arg("EX")
            .arg(TTL.as_secs())
            .query_async(&mut conn)
            .await;
        if let Err(err) = stored {
            tracing::warn!(%err, "search cache: Redis failed to store an answer");
        }
    }

    /// Forgets every answer (call after a listing or category change commits).
    pub async fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.local.invalidate_all();
        if let Some((conn, prefix)) = &self.redis {
            let mut conn = conn.clone();
            let bumped: redis::RedisResult<u64> = redis::cmd("INCR")
                .arg(format!("{prefix}:search:generation"))
                .query_async(&mut conn)
                .await;
            if let Err(err) = bumped {
                // Answers stored before expire within the TTL.
                tracing::warn!(%err, "search cache: Redis failed to invalidate");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answers_until_invalidated(cache: &SearchCache) {
        let g = cache.generation().await.unwrap();
        assert_eq!(cache.get(g, "q=rua").await, None);
        cache.put(g, "q=rua", "[1]".into()).await;
        assert_eq!(cache.get(g, "q=rua").await.as_deref(), Some("[1]"));
        cache.invalidate().await;
        let after = cache.generation().await.unwrap();
        assert_ne!(after, g);
        assert_eq!(cache.get(after, "q=rua").await, None);
    }

    #[tokio::test]
    async fn in_process() {
        answers_until_invalidated(&SearchCache::new(None)).await;
    }

    /// Two instances over the Redis at 127.0.0.1:6379: one's change invalidates the other's.
    #[tokio::test]
    async fn in_redis_across_instances() {
        let url = std::env::var("TOURWISE_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let conn = ConnectionManager::new(redis::Client::open(url).unwrap())
            .await
            .expect("Redis at 127.0.0.1:6379");
        let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
        let one = SearchCache::new(Some((conn.clone(), prefix.clone())));
        answers_until_invalidated(&one).await;
        let other = SearchCache::new(Some((conn.clone(), prefix.clone())));
        let g = one.generation().await.unwrap();
        one.put(g, "k", "v".into()).await;
        assert_eq!(
            other
                .get(other.generation().await.unwrap(), "k")
                .await
                .as_deref(),
            Some("v")
        );
        other.invalidate().await;
        assert_eq!(one.get(one.generation().await.unwrap(), "k").await, None);
        let mut c = conn.clone();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query_async(&mut c)
            .await
            .unwrap();
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .unwrap();
    }
}
