//! Scale-out (RELIABILITY.md, "Scale-out"): several `tourwise serve` processes share one
//! database and one Kafka consumer group. Kafka decides who owns which `payments` partition;
//! PostgreSQL stays the judge of every booking (`tours_no_overlap`). What a process needs
//! from its peers is here:
//!
//! - [`follow_peers`]: every process holds every realtor's calendar in its shards, and learns
//!   what the others committed by following the `availability` topic in a consumer group of
//!   its own: bookings, releases, status and profile changes. Events carry the `origin`
//!   header of the process that wrote them; a process skips its own (its shards applied them
//!   already). Per realtor the topic keeps the order the changes committed in (one relay at a
//!   time publishes the outbox), so applying them converges on the database. A booking learnt
//!   too late is caught by PostgreSQL; the tour actor then re-reads the shard's bookings.
//! - [`adopt_regions`]: when the group hands this process more partitions (a peer died or
//!   left), it starts actors for the open tours of those partitions' regions, so that their
//!   timers (accept timeouts) and retries run again. A tour may briefly have an actor in two
//!   processes; versioned writes let exactly one of them change it.

use chrono::{DateTime, Utc};
use engine::{Booking, RealtorStatus, Stop};
use serde::Deserialize;

use super::*;
use crate::bus::{Envelope, Message};
use crate::outbox::ORIGIN_HEADER;
use crate::store::realtor_from_event;

/// Events older than this before the process started are in the state it loaded at start.
const LOADED_MARGIN: chrono::Duration = chrono::Duration::minutes(5);

/// `realtor.booked` / `realtor.released` data (written by the store's `OutboxEvent::slot`).
#[derive(Deserialize)]
struct Slot {
    tour_id: TourId,
    realtor_id: RealtorId,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    listings: Vec<Stop>,
}

/// `realtor.status_changed` data.
#[derive(Deserialize)]
struct StatusChanged {
    realtor_id: RealtorId,
    status: RealtorStatus,
}

/// Follows the other processes' availability changes until `stop` (see the module docs).
pub(super) async fn follow_peers(
    core: Arc<Core>,
    origin: String,
    started: DateTime<Utc>,
    mut stop: watch::Receiver<bool>,
) {
    let bus = core.ctx.bus.clone();
    let group = format!("tourwise-peers-{origin}");
    let mut consumer = loop {
        match bus.consumer(topics::AVAILABILITY, &group).await {
            Ok(c) => break c,
            Err(err) => {
                tracing::warn!(%err, "availability follower unavailable; retrying");
                tokio::select! {
                    _ = stop.changed() => return,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    };
    let since = started - LOADED_MARGIN;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            message = consumer.next() => match message {
                Ok(message) => apply(&core, &origin, since, &message).await,
                Err(err) => {
                    tracing::warn!(%err, "availability follower failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            },
        }
    }
    let _ = consumer.close().await;
}

/// Applies one peer event to the shards; logs what it cannot apply (and moves on: the
/// database guard and the next start's load cover it).
async fn apply(core: &Core, origin: &str, since: DateTime<Utc>, message: &Message) {
    let own = message
        .headers
        .iter()
        .any(|(name, value)| name == ORIGIN_HEADER && value == origin);
    if own {
        return;
    }
    let envelope: Envelope = match serde_json::from_slice(&message.payload) {
        Ok(envelope) => envelope,
        Err(err) => {
            tracing::warn!(%err, offset = message.offset, "undecodable availability event");
            return;
        }
    };
    if envelope.occurred_at < since {
        return;
    }
    let applied = match envelope.event_type.as_str() {
        "realtor.booked" => booked(core, &envelope.data).await,
        "realtor.released" => released(core, &envelope.data).await,
        "realtor.status_changed" => status_changed(core, &envelope.data).await,
        "realtor.updated" => match realtor_from_event(&envelope.data) {
            Ok(realtor) => core.place_realtor(realtor).await.map_err(|e| e.to_string()),
            Err(err) => Err(err),
        },
        _ => Ok(()),
    };
    match applied {
        Ok(()) => tracing::debug!(event = %envelope.event_type, "applied a peer's change"),
        Err(err) => tracing::warn!(
            event = %envelope.event_type,
            event_id = %envelope.event_id,
            %err,
            "peer change not applied"
        ),
    }
}

fn decode<T: for<'de> Deserialize<'de>>(data: &serde_json::Value) -> Result<T, String> {
    T::deserialize(data).map_err(|err| err.to_string())
}

async fn booked(core: &Core, data: &serde_json::Value) -> Result<(), String> {
    let slot: Slot = decode(data)?;
    let (Some(first), Some(last)) = (slot.listings.first(), slot.listings.last()) else {
        return Err("a booking without listings".into());
    };
    let booking = Booking {
        tour_id: slot.tour_id,
        start: slot.start.timestamp(),
        end: slot.end.timestamp(),
        first: first.location,
        last: last.location,
    };
    let ctx = &core.ctx;
    let Some(cell) = ctx.realtor_cell(slot.realtor_id) else {
        return Err(format!("realtor {} not in any shard", slot.realtor_id.0));
    };
    let realtor = slot.realtor_id;
    call_shard(ctx, cell, |reply| ShardMsg::Confirm {
        realtor,
        booking,
        reply,
    })
    .await
    .map_err(|e| e.to_string())
}

async fn released(core: &Core, data: &serde_json::Value) -> Result<(), String> {
    let slot: Slot = decode(data)?;
    let ctx = &core.ctx;
    let Some(cell) = ctx.realtor_cell(slot.realtor_id) else {
        return Err(format!("realtor {} not in any shard", slot.realtor_id.0));
    };
    let (realtor, tour) = (slot.realtor_id, slot.tour_id);
    call_shard(ctx, cell, |reply| ShardMsg::Release {
        realtor,
        tour,
        reply,
    })
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

async fn status_changed(core: &Core, data: &serde_json::Value) -> Result<(), String> {
    let change: StatusChanged = decode(data)?;
    let ctx = &core.ctx;
    let Some(cell) = ctx.realtor_cell(change.realtor_id) else {
        return Err(format!("realtor {} not in any shard", change.realtor_id.0));
    };
    call_shard(ctx, cell, |reply| ShardMsg::SetStatus {
        realtor: change.realtor_id,
        status: change.status,
        reply,
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}

/// Starts actors for the open tours whose region maps to one of `gained` (of `partitions`
/// partitions) and that have none here; returns how many were started.
pub(super) async fn adopt_regions(
    core: &Core,
    gained: &[i32],
    partitions: i32,
) -> Result<usize, RuntimeError> {
    let partitions = u32::try_from(partitions).unwrap_or(1);
    let mut adopted = 0;
    for tour in core.ctx.store.load_open_tours().await? {
        let Some(first) = tour.stops.first() else {
            continue;
        };
        let region = engine::region::region_partition(&first.location, partitions);
        let ours = i32::try_from(region).is_ok_and(|p| gained.contains(&p));
        if ours && core.ctx.tour(tour.id).is_none() {
            let id = tour.id;
            // Started meanwhile (a redelivered payment) is fine; the rest still needs adopting.
            match core
                .start_child(&core.tours, ChildSpec::Tour(id, Some(Box::new(tour))))
                .await
            {
                Ok(()) => adopted += 1,
                Err(err) => tracing::warn!(tour = %id.0, %err, "open tour not adopted"),
            }
        }
    }
    Ok(adopted)
}
