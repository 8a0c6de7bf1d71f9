//! The transactional outbox (CONTRACT 6: an event is published if and only if its state change
//! committed). Every change writes its events into the `outbox` table in its own transaction
//! ([`append`] for callers outside the store); [`spawn_relay`] publishes unpublished rows in id
//! order and marks them published. A crash between publishing and marking re-publishes the
//! same envelope (same `event_id`) after restart: at-least-once, deduplicated by consumers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement, TransactionTrait,
};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::bus::{Envelope, EventBus, Outgoing};

/// Rows published per round.
const BATCH: u64 = 500;
/// How often the relay looks without being woken (rows written by another process).
const POLL: Duration = Duration::from_millis(500);

/// Appends `envelope` to the outbox on `conn` (use the transaction of the state change).
///
/// # Errors
/// The database fails.
pub async fn append<C: ConnectionTrait>(
    conn: &C,
    topic: &str,
    key: &str,
    envelope: &Envelope,
) -> Result<(), DbErr> {
    let payload = serde_json::to_value(envelope).map_err(|e| DbErr::Json(e.to_string()))?;
    let insert = Query::insert()
        .into_table("outbox")
        .columns([
            "event_id",
            "topic",
            "key",
            "event_type",
            "payload",
            "created_at",
        ])
        .values([
            envelope.event_id.into(),
            topic.into(),
            key.into(),
            envelope.event_type.clone().into(),
            payload.into(),
            Utc::now().into(),
        ])
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .to_owned();
    conn.execute(&insert).await?;
    Ok(())
}

/// Counters of a running relay.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Events published so far.
    pub published: AtomicU64,
    /// Publish or database failures so far (each retried).
    pub failures: AtomicU64,
}

/// Publishes the outbox until `stop` turns true: woken by `wake` (a change wrote rows) and
/// every half second regardless.
pub fn spawn_relay(
    db: DatabaseConnection,
    bus: Arc<dyn EventBus>,
    wake: Arc<Notify>,
    stats: Arc<RelayStats>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(50);
        loop {
            if *stop.borrow() {
                return;
            }
            let waited = match relay_once(&db, bus.as_ref(), &stats).await {
                Ok(0) => {
                    backoff = Duration::from_millis(50);
                    POLL
                }
                Ok(_) => continue, // there may be more
                Err(err) => {
                    stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %err, "outbox relay failed; retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    backoff
                }
            };
            tokio::select! {
                _ = stop.changed() => {}
                () = wake.notified() => {}
                () = tokio::time::sleep(waited) => {}
            }
        }
    })
}

/// The header naming the process that wrote an event (when the store knows it).
pub const ORIGIN_HEADER: &str = "origin";

/// The PostgreSQL advisory lock a relay holds while it publishes.
const RELAY_LOCK: i64 = 0x7477_6f75_7462_6f78; // "twoutbox"

/// Publishes one batch of unpublished rows; returns how many were published (0 also when
/// another process's relay is publishing).
///
/// One relay at a time across processes (PostgreSQL: a transaction-scoped advisory lock held
/// while publishing): two relays publishing the same rows would interleave them on the
/// topic, and a reader applying events in order (a peer's shards, [`crate::runtime::peers`])
/// could then see a tour's booking again after its release.
///
/// # Errors
/// The database fails, or the bus refused every row of the batch.
pub async fn relay_once(
    db: &DatabaseConnection,
    bus: &dyn EventBus,
    stats: &RelayStats,
) -> Result<usize, String> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        // SQLite: one process only. (A read-then-write transaction there could not upgrade
        // its snapshot once another writer committed.)
        return publish_unpublished(db, bus, stats).await;
    }
    let txn = db.begin().await.map_err(|e| e.to_string())?;
    let lock = Statement::from_string(
        DatabaseBackend::Postgres,
        format!("SELECT pg_try_advisory_xact_lock({RELAY_LOCK})"),
    );
    let row = txn.query_one_raw(lock).await.map_err(|e| e.to_string())?;
    let locked = row
        .map(|r| r.try_get_by_index::<bool>(0))
        .transpose()
        .map_err(|e| e.to_string())?;
    if locked != Some(true) {
        return Ok(0);
    }
    let published = publish_unpublished(&txn, bus, stats).await?;
    txn.commit().await.map_err(|e| e.to_string())?;
    Ok(published)
}

async fn publish_unpublished<C: ConnectionTrait>(
    db: &C,
    bus: &dyn EventBus,
    stats: &RelayStats,
) -> Result<usize, String> {
    let select = Query::select()
        .columns(["id", "topic", "key", "payload", "origin"])
        .from("outbox")
        .and_where(Expr::col("published_at").is_null())
        .order_by("id", sea_orm::Order::Asc)
        .limit(BATCH)
        .to_owned();
    let rows = db.query_all(&select).await.map_err(|e| e.to_string())?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut messages = Vec::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.try_get("", "id").map_err(|e| e.to_string())?;
        let payload: serde_json::Value = row.try_get("", "payload").map_err(|e| e.to_string())?;
        let origin: Option<String> = row.try_get("", "origin").map_err(|e| e.to_string())?;
        ids.push(id);
        messages.push(Outgoing {
            topic: row.try_get("", "topic").map_err(|e| e.to_string())?,
            key: row.try_get("", "key").map_err(|e| e.to_string())?,
            payload: serde_json::to_vec(&payload).map_err(|e| e.to_string())?,
            headers: origin
                .map(|o| vec![(ORIGIN_HEADER.to_owned(), o)])
                .unwrap_or_default(),
        });
    }
    let results = bus.publish_batch(&messages).await;
    let mut published = Vec::with_capacity(ids.len());
    let mut first_error = None;
    for (id, result) in ids.into_iter().zip(results) {
        match result {
            Ok(()) => published.push(id),
            Err(err) => {
                first_error.get_or_insert(err.to_string());
            }
        }
    }
    if !published.is_empty() {
        let mark = Query::update()
            .table("outbox")
            .value("published_at", Utc::now())
            .and_where(Expr::col("id").is_in(published.iter().copied()))
            .to_owned();
        db.execute(&mark).await.map_err(|e| e.to_string())?;
        stats
            .published
            .fetch_add(published.len() as u64, Ordering::Relaxed);
    }
    match first_error {
        Some(err) if published.is_empty() => Err(err),
        Some(err) => {
            stats.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %err, "some outbox events not published yet");
            Ok(published.len())
        }
        None => Ok(published.len()),
    }
}
