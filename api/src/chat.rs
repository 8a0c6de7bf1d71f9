//! Chat and live location between a tour's customer and its assigned realtor (issue #10).
//!
//! Messages are rows (`chat_messages`, growing ids), so history pages over HTTP and a client
//! that reconnects asks for what came after the last id it saw. Live delivery goes through a
//! [`ChatHub`]: one broadcast channel per tour with someone connected, in this process.
//! Locations are not stored: the hub keeps the last one per tour and how many of the tour's
//! listings the realtor has reached (`engine::tracking`), so a customer who joins late sees
//! where the realtor is at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actors::store::{Store, TourRecord};
use chrono::{DateTime, SubsecRound as _, Utc};
use engine::{Location, TourId, TourStatus};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DbErr};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, Code};
use crate::perm::Role;
use crate::state::AppState;

/// The longest message body, in characters.
pub const MAX_BODY_CHARS: usize = 2000;
/// The largest WebSocket frame a client may send; a larger one closes the socket (1009).
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
/// Live events a slow connection may fall behind by before it re-reads the history.
const ROOM_BUFFER: usize = 256;

/// Which side of a tour's conversation a caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The customer who booked the tour.
    Customer,
    /// The realtor the tour is assigned to now.
    Realtor,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Customer => "customer",
            Side::Realtor => "realtor",
        }
    }
}

/// The caller's side of `tour`'s conversation; `None` for everyone else (admins included:
/// the conversation is the two parties').
#[must_use]
pub fn side_of(caller: &Caller, tour: &TourRecord) -> Option<Side> {
    match caller.role {
        Role::Customer if caller.id == tour.customer_id.0 => Some(Side::Customer),
        Role::Realtor if tour.realtor_id.map(|r| r.0) == Some(caller.id) => Some(Side::Realtor),
        _ => None,
    }
}

/// The tour `id` and the caller's side of it.
///
/// # Errors
/// 404 for an unknown tour, 403 when the caller is neither its customer nor its realtor.
pub async fn participant(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<(TourRecord, Side), ApiError> {
    let tour = state
        .store
        .get_tour(TourId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("tour"))?;
    let side = side_of(caller, &tour).ok_or_else(|| {
        ApiError::new(
            Code::Forbidden,
            "only the tour's customer and its assigned realtor take part in its chat",
        )
    })?;
    Ok((tour, side))
}

/// One chat message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChatMessage {
    /// Grows with every message of every tour: resume after the last one seen.
    pub id: i64,
    /// The tour.
    pub tour_id: Uuid,
    /// Who wrote it.
    pub sender_id: Uuid,
    /// `customer` or `realtor`.
    pub sender_role: String,
    /// The text.
    pub body: String,
    /// When the server stored it.
    pub created_at: DateTime<Utc>,
}

/// A realtor's position during a tour, with where they are heading.
#[derive(Debug, Clone, Serialize)]
pub struct LocationUpdate {
    /// The tour.
    pub tour_id: Uuid,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lng: f64,
    /// When the server received it.
    pub at: DateTime<Utc>,
    /// Listings reached so far, in visiting order.
    pub reached: usize,
    /// The listing the realtor heads to next; `null` once every listing was reached.
    pub next_listing_id: Option<Uuid>,
    /// Great-circle distance to it in km.
    pub distance_km: f64,
    /// Minutes to it at the contract's travel speed (CONTRACT 5.1), rounded up.
    pub eta_minutes: i64,
}

/// What a chat connection receives (one JSON text frame each).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A stored message (also each message of the history replayed at connect).
    Message(ChatMessage),
    /// The realtor's latest position.
    Location(LocationUpdate),
    /// The tour changed status.
    Status {
        /// The tour.
        tour_id: Uuid,
        /// Its new status.
        status: TourStatus,
    },
}

/// What a client sends (one JSON text frame each).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Incoming {
    /// A message to the other side.
    Message {
        /// The text, 1..=2000 characters.
        body: String,
    },
    /// The realtor's position (realtor only, while the tour is `in_progress`).
    Location {
        /// Latitude.
        lat: f64,
        /// Longitude.
        lng: f64,
    },
}

struct Room {
    events: broadcast::Sender<Arc<Event>>,
    /// Listings reached so far.
    reached: usize,
    last_location: Option<Arc<Event>>,
}

impl Room {
    fn new() -> Self {
        Self {
            events: broadcast::channel(ROOM_BUFFER).0,
            reached: 0,
            last_location: None,
        }
    }
}

/// Live delivery: one broadcast channel per tour that someone is connected to or tracking.
#[derive(Default)]
pub struct ChatHub {
    rooms: Mutex<HashMap<Uuid, Room>>,
}

impl ChatHub {
    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Room>> {
        // A panic while holding the lock cannot leave a room half-changed: recover it.
        self.rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Live events of `tour` from now on, and its last known location.
    pub fn join(&self, tour: Uuid) -> (broadcast::Receiver<Arc<Event>>, Option<Arc<Event>>) {
        let mut rooms = self.rooms();
        let room = rooms.entry(tour).or_insert_with(Room::new);
        (room.events.subscribe(), room.last_location.clone())
    }

    /// Forgets `tour`'s room once nobody listens and it tracks nothing.
    pub fn leave(&self, tour: Uuid) {
        let mut rooms = self.rooms();
        if rooms
            .get(&tour)
            .is_some_and(|r| r.events.receiver_count() == 0 && r.last_location.is_none())
        {
            rooms.remove(&tour);
        }
    }

    /// Hands `event` to everyone connected to `tour` (nobody: nothing happens).
    pub fn publish(&self, tour: Uuid, event: Event) {
        if let Some(room) = self.rooms().get(&tour) {
            let _ = room.events.send(Arc::new(event));
        }
    }

    /// Records the realtor at `at` on `tour` and tells the room.
    pub fn locate(&self, tour: &TourRecord, at: &Location, now: DateTime<Utc>) -> Arc<Event> {
        let mut rooms = self.rooms();
        let room = rooms.entry(tour.id.0).or_insert_with(Room::new);
        let progress = engine::tracking::advance(&tour.stops, room.reached, at);
        room.reached = progress.reached;
        let event = Arc::new(Event::Location(LocationUpdate {
            tour_id: tour.id.0,
            lat: at.lat(),
            lng: at.lng(),
            at: now,
            reached: progress.reached,
            next_listing_id: progress.next.map(|i| tour.stops[i].id.0),
            distance_km: progress.distance_km,
            eta_minutes: progress.eta_minutes,
        }));
        room.last_location = Some(event.clone());
        let _ = room.events.send(event.clone());
        event
    }

    /// Follows committed tour changes: tells rooms about status changes, and forgets the
    /// tracking of tours that ended.
    pub async fn follow(self: Arc<Self>, mut changes: broadcast::Receiver<TourRecord>) {
        loop {
            let tour = match changes.recv().await {
                Ok(tour) => tour,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let mut rooms = self.rooms();
            let Some(room) = rooms.get_mut(&tour.id.0) else {
                continue;
            };
            let _ = room.events.send(Arc::new(Event::Status {
                tour_id: tour.id.0,
                status: tour.status,
            }));
            if tour.status != TourStatus::InProgress {
                room.last_location = None;
                if room.events.receiver_count() == 0 {
                    rooms.remove(&tour.id.0);
                }
            }
        }
    }
}

/// Checks a message body: trimmed, 1..=[`MAX_BODY_CHARS`] characters.
///
/// # Errors
/// 422 for an empty or too long body.
pub fn checked_body(body: &str) -> Result<String, ApiError> {
    let body = body.trim();
    if body.is_empty() {
        return Err(ApiError::invalid("body must not be empty"));
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(ApiError::invalid(format!(
            "body must be at most {MAX_BODY_CHARS} characters"
        )));
    }
    Ok(body.to_owned())
}

/// Stores a message from `caller` on tour `id` and delivers it live.
///
/// # Errors
/// 404/403 as [`participant`], 422 for a bad body, 429 beyond the per-sender limit.
pub async fn send_message(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    body: &str,
) -> Result<ChatMessage, ApiError> {
    let body = checked_body(body)?;
    let (tour, side) = participant(state, caller, id).await?;
    state
        .limits
        .chat_messages
        .hit(&format!("{}:{}", caller.id, tour.id.0))
        .await
        .map_err(ApiError::rate_limited)?;
    // Stored at the precision every database keeps (microseconds): the live copy and the
    // history read back are the same.
    let now = Utc::now().trunc_subsecs(6);
    let message = insert(&state.db, tour.id.0, caller.id, side, &body, now).await?;
    state
        .chat
        .publish(tour.id.0, Event::Message(message.clone()));
    Ok(message)
}

/// Records the realtor's position on tour `id` and delivers it live.
///
/// # Errors
/// 404/403 as [`participant`], 403 for the customer, 409 unless the tour is `in_progress`,
/// 422 for coordinates off the globe, 429 beyond the per-realtor rate.
pub async fn send_location(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    lat: f64,
    lng: f64,
) -> Result<Arc<Event>, ApiError> {
    let at = Location::new(lat, lng).map_err(|e| ApiError::invalid(e.to_string()))?;
    let (tour, side) = participant(state, caller, id).await?;
    if side != Side::Realtor {
        return Err(ApiError::new(
            Code::Forbidden,
            "only the assigned realtor sends locations",
        ));
    }
    if tour.status != TourStatus::InProgress {
        return Err(ApiError::new(
            Code::Conflict,
            format!(
                "locations are shared while the tour is in_progress (it is {})",
                tour.status.as_str()
            ),
        ));
    }
    state
        .limits
        .chat_locations
        .hit(&format!("{}:{}", caller.id, tour.id.0))
        .await
        .map_err(ApiError::rate_limited)?;
    Ok(state.chat.locate(&tour, &at, Utc::now()))
}

/// Stores one message and returns it with its id.
///
/// # Errors
/// When the database fails.
pub async fn insert(
    db: &impl ConnectionTrait,
    tour: Uuid,
    sender: Uuid,
    side: Side,
    body: &str,
    now: DateTime<Utc>,
) -> Result<ChatMessage, DbErr> {
    let insert = Query::insert()
        .into_table("chat_messages")
        .columns(["tour_id", "sender_id", "sender_role", "body", "created_at"])
        .values_panic([
            tour.into(),
            sender.into(),
            side.as_str().into(),
            body.into(),
            now.into(),
        ])
        .returning_col("id")
        .to_owned();
    let row = db
        .query_one(&insert)
        .await?
        .ok_or_else(|| DbErr::RecordNotInserted)?;
    let id: i32 = row.try_get("", "id")?;
    Ok(ChatMessage {
        id: i64::from(id),
        tour_id: tour,
        sender_id: sender,
        sender_role: side.as_str().to_owned(),
        body: body.to_owned(),
        created_at: now,
    })
}

/// Up to `limit` messages of `tour` with ids above `after`, skipping `offset`, oldest first.
///
/// # Errors
/// When the database fails.
pub async fn after(
    db: &impl ConnectionTrait,
    tour: Uuid,
    after: i64,
    limit: u64,
    offset: u64,
) -> Result<Vec<ChatMessage>, DbErr> {
    let select = Query::select()
        .columns([
            "id",
            "tour_id",
            "sender_id",
            "sender_role",
            "body",
            "created_at",
        ])
        .from("chat_messages")
        .and_where(Expr::col("tour_id").eq(tour))
        .and_where(Expr::col("id").gt(after))
        .order_by("id", Order::Asc)
        .limit(limit)
        .offset(offset)
        .to_owned();
    db.query_all(&select)
        .await?
        .iter()
        .map(|row| {
            let id: i32 = row.try_get("", "id")?;
            Ok(ChatMessage {
                id: i64::from(id),
                tour_id: row.try_get("", "tour_id")?,
                sender_id: row.try_get("", "sender_id")?,
                sender_role: row.try_get("", "sender_role")?,
                body: row.try_get("", "body")?,
                created_at: row.try_get("", "created_at")?,
            })
        })
        .collect()
}
