//! The publisher of the Redis availability view ([`crate::availability_view`]): write-behind.
//!
//! Shard actors hand it each changed realtor's entry (never waiting on Redis); it keeps the
//! latest entry per realtor and writes them in one pipeline every [`FLUSH_EVERY`]. A failed write
//! keeps the batch for the next flush (a later entry of the same realtor replaces it, so
//! nothing older is ever written over something newer). Every [`CHECK_EVERY`] it asks Redis
//! whether the snapshot marker is there; when it is not (first start, a `FLUSHALL`, a Redis
//! restart that lost data) it asks every shard for all of its realtors, writes them, and sets
//! the marker: the view rebuilds itself with no manual step. A full refresh also runs every
//! [`REFRESH_EVERY`], since each entry's `next_free_at` ages.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use engine::RealtorId;
use h3o::CellIndex;
use tokio::sync::{mpsc, watch};

use super::ctx::Ctx;
use super::shard::ShardMsg;
use crate::availability_view::{RedisView, ViewEntry};

/// One realtor's new entry in a shard cell (`None`: no longer there).
pub(crate) type ViewChange = (CellIndex, RealtorId, Option<ViewEntry>);

/// How often pending changes are written.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// How often the snapshot marker is checked.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How often every entry is written again.
const REFRESH_EVERY: Duration = Duration::from_secs(300);

/// Runs until `stop` turns true, then writes what is pending once more.
pub(crate) async fn run(
    ctx: Arc<Ctx>,
    view: RedisView,
    mut changes: mpsc::UnboundedReceiver<ViewChange>,
    mut stop: watch::Receiver<bool>,
) {
    let mut pending: HashMap<(CellIndex, RealtorId), Option<ViewEntry>> = HashMap::new();
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    let mut check = tokio::time::interval(CHECK_EVERY);
    let mut last_full = tokio::time::Instant::now();
    // Whether the last write failed (logged once per outage).
    let mut failing = false;
    // The first check always rebuilds: entries left from an earlier run may be stale.
    let mut built = false;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            change = changes.recv() => match change {
                Some((cell, realtor, entry)) => { pending.insert((cell, realtor), entry); }
                None => break,
            },
            _ = flush.tick() => {
                failing = write(&view, &mut pending, failing).await;
            }
            _ = check.tick() => {
                let stale = last_full.elapsed() >= REFRESH_EVERY;
                match view.is_built().await {
                    Ok(true) if built && !stale => continue,
                    Ok(_) => {}
                    Err(_) => continue,
                }
                if !snapshot(&ctx, &mut changes, &mut pending).await {
                    continue;
                }
                failing = write(&view, &mut pending, failing).await;
                if pending.is_empty() && view.mark_built().await.is_ok() {
                    built = true;
                    last_full = tokio::time::Instant::now();
                    tracing::info!("availability view written in full to Redis");
                }
            }
        }
    }
    while let Ok((cell, realtor, entry)) = changes.try_recv() {
        pending.insert((cell, realtor), entry);
    }
    write(&view, &mut pending, failing).await;
}

/// Asks every shard for all of its entries and takes them into `pending`; `false` when a
/// shard did not answer (the next check tries again).
async fn snapshot(
    ctx: &Ctx,
    changes: &mut mpsc::UnboundedReceiver<ViewChange>,
    pending: &mut HashMap<(CellIndex, RealtorId), Option<ViewEntry>>,
) -> bool {
    for cell in ctx.shard_cells() {
        // A shard sends its entries into the channel before it replies.
        if super::ctx::call_shard(ctx, cell, ShardMsg::PublishAll)
            .await
            .is_err()
        {
            tracing::warn!(%cell, "shard did not publish its availability; will retry");
            return false;
        }
    }
    while let Ok((cell, realtor, entry)) = changes.try_recv() {
        pending.insert((cell, realtor), entry);
    }
    true
}

/// Writes `pending` in one pipeline; keeps it when Redis fails. Returns whether it failed.
async fn write(
    view: &RedisView,
    pending: &mut HashMap<(CellIndex, RealtorId), Option<ViewEntry>>,
    was_failing: bool,
) -> bool {
    if pending.is_empty() {
        return was_failing;
    }
    let batch: Vec<_> = pending
        .iter()
        .map(|((cell, realtor), entry)| (*cell, *realtor, entry.clone()))
        .collect();
    match view.write(&batch).await {
        Ok(()) => {
            pending.clear();
            if was_failing {
                tracing::info!("availability view: Redis writes succeed again");
            }
            false
        }
        Err(err) => {
            if !was_failing {
                tracing::warn!(%err, pending = batch.len(), "availability view: Redis write failed; keeping the changes");
            }
            true
        }
    }
}
