//! The chat wires (issue #10): `GET /tours/{id}/chat` upgrades to a WebSocket,
//! `GET /tours/{id}/messages` pages the history, `POST /tours/{id}/messages` sends without a
//! socket. The rules (who may, limits, progress) are in [`crate::chat`].
//!
//! The socket's protocol, one JSON text frame each way:
//! - client: `{"type":"message","body":"..."}`, `{"type":"location","lat":..,"lng":..}`;
//! - server: `{"type":"message",...}` (stored messages: first those after `?after=`, then live),
//!   `{"type":"location",...}` (the last known one at connect, then live),
//!   `{"type":"status","status":..}`, and `{"type":"error","code":..,"message":..}` for a frame
//!   it refused (the socket stays open). Frames over 16 KiB close it with 1009.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError, Session};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::auth::{caller_from_header_or_query, Caller};
use crate::chat::{self, Event, Incoming, MAX_FRAME_BYTES};
use crate::error::{ApiError, Code};
use crate::list::Page;
use crate::state::AppState;

/// How often the server pings; a client silent for [`CLIENT_TIMEOUT`] is dropped.
const PING_EVERY: Duration = Duration::from_secs(15);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(45);
/// History replayed per read at connect (and after falling behind).
const REPLAY_BATCH: u64 = 500;

/// `GET /tours/{id}/chat` and `GET /tours/{id}/messages` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChatQuery {
    /// Only messages with a larger id (the last one a client saw).
    after: Option<i64>,
    /// Items per page (default 50, max 500; history only).
    limit: Option<u32>,
    /// `next_cursor` of the previous page (history only).
    cursor: Option<String>,
    /// The access token, for browsers' WebSocket (which cannot send headers).
    #[allow(dead_code)]
    access_token: Option<String>,
}

/// `POST /tours/{id}/messages` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// 1..=2000 characters.
    body: String,
}

/// `GET /tours/{id}/messages`: the tour's messages, oldest first.
///
/// # Errors
/// 401, 403 for anyone but the tour's customer and realtor, 404 for an unknown tour.
pub async fn history(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    query: web::Query<ChatQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::parse(query.limit, query.cursor.as_deref())?;
    let (tour, _) = chat::participant(&state, &caller, *id).await?;
    let after = query.after.unwrap_or(0);
    let items = chat::after(&state.db, tour.id.0, after, page.limit + 1, page.offset).await?;
    Ok(HttpResponse::Ok().json(page.finish(items)))
}

/// `POST /tours/{id}/messages`: sends a message without a socket (delivered live all the same).
///
/// # Errors
/// As [`chat::send_message`].
pub async fn post(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: web::Json<NewMessage>,
) -> Result<HttpResponse, ApiError> {
    let message = chat::send_message(&state, &caller, *id, &body.body).await?;
    Ok(HttpResponse::Created().json(message))
}

/// `GET /tours/{id}/chat`: the WebSocket.
///
/// # Errors
/// Before the upgrade: 401 without a valid token (header or `?access_token=`), 404 for an
/// unknown tour, 403 for anyone but its customer and realtor, 400 for a request that is not a
/// WebSocket handshake.
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<ChatQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller_from_header_or_query(&req)?;
    let (tour, _) = chat::participant(&state, &caller, *id).await?;
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|_| ApiError::new(Code::BadRequest, "expected a WebSocket handshake"))?;
    let stream = stream
        .max_frame_size(MAX_FRAME_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME_BYTES);
    let connection = Connection {
        state: state.into_inner(),
        caller,
        tour: tour.id.0,
        session,
        last_id: query.after.unwrap_or(0),
    };
    actix_web::rt::spawn(connection.run(stream));
    Ok(response)
}

/// One open socket.
struct Connection {
    state: Arc<AppState>,
    caller: Caller,
    tour: Uuid,
    session: Session,
    /// The largest message id sent: history and live messages are never sent twice.
    last_id: i64,
}

/// Why a connection ends.
enum End {
    /// The client went away (or the socket broke): nothing more to send.
    Gone,
    /// Close with this reason.
    Close(CloseReason),
}

impl Connection {
    async fn run(mut self, mut stream: actix_ws::AggregatedMessageStream) {
        let (mut live, last_location) = self.state.chat.join(self.tour);
        let mut stopping = self.state.stopping.clone();
        let mut ping = tokio::time::interval(PING_EVERY);
        let mut heard = Instant::now();
        let mut end = self.replay().await;
        if end.is_none() {
            if let Some(location) = last_location {
                end = self.send(&location).await.err();
            }
        }
        while end.is_none() {
            end = tokio::select! {
                frame = stream.recv() => {
                    heard = Instant::now();
                    self.on_frame(frame).await
                }
                event = live.recv() => match event {
                    Ok(event) => self.deliver(&event).await,
                    // Fell behind: the stored messages say what was missed.
                    Err(RecvError::Lagged(_)) => self.replay().await,
                    Err(RecvError::Closed) => Some(End::Gone),
                },
                _ = ping.tick() => {
                    if heard.elapsed() > CLIENT_TIMEOUT {
                        Some(End::Gone)
                    } else {
                        self.session.ping(b"").await.err().map(|_| End::Gone)
                    }
                }
                _ = stopping.changed() => Some(End::Close(CloseReason {
                    code: CloseCode::Away,
                    description: Some("the server is shutting down".into()),
                })),
            };
        }
        drop(live);
        self.state.chat.leave(self.tour);
        if let Some(End::Close(reason)) = end {
            let _ = self.session.close(Some(reason)).await;
        }
    }

    /// Sends the stored messages after `last_id`.
    async fn replay(&mut self) -> Option<End> {
        loop {
            let batch =
                match chat::after(&self.state.db, self.tour, self.last_id, REPLAY_BATCH, 0).await {
                    Ok(batch) => batch,
                    Err(err) => {
                        tracing::warn!(tour = %self.tour, error = %err, "chat history unavailable");
                        return Some(End::Close(CloseReason {
                            code: CloseCode::Error,
                            description: Some("history unavailable; reconnect".into()),
                        }));
                    }
                };
            let full = batch.len() as u64 == REPLAY_BATCH;
            for message in batch {
                self.last_id = self.last_id.max(message.id);
                if self.send(&Event::Message(message)).await.is_err() {
                    return Some(End::Gone);
                }
            }
            if !full {
                return None;
            }
        }
    }

    /// A live event, unless it is a message already sent.
    async fn deliver(&mut self, event: &Event) -> Option<End> {
        if let Event::Message(message) = event {
            if message.id <= self.last_id {
                return None;
            }
            self.last_id = message.id;
        }
        self.send(event).await.err()
    }

    async fn send(&mut self, event: &Event) -> Result<(), End> {
        let text = serde_json::to_string(event).map_err(|_| End::Gone)?;
        self.session.text(text).await.map_err(|_| End::Gone)
    }

    async fn refuse(&mut self, err: &ApiError) -> Option<End> {
        let mut frame = json!({"type": "error", "code": err.code.name(), "message": err.message});
        if let Some(seconds) = err.retry_after {
            frame["retry_after"] = json!(seconds);
        }
        self.session
            .text(frame.to_string())
            .await
            .err()
            .map(|_| End::Gone)
    }

    async fn on_frame(
        &mut self,
        frame: Option<Result<AggregatedMessage, ProtocolError>>,
    ) -> Option<End> {
        match frame {
            None | Some(Ok(AggregatedMessage::Close(_))) => Some(End::Gone),
            Some(Ok(AggregatedMessage::Ping(bytes))) => {
                self.session.pong(&bytes).await.err().map(|_| End::Gone)
            }
            Some(Ok(AggregatedMessage::Pong(_))) => None,
            Some(Ok(AggregatedMessage::Binary(_))) => {
                let err = ApiError::new(Code::UnsupportedMediaType, "send JSON text frames");
                self.refuse(&err).await
            }
            Some(Ok(AggregatedMessage::Text(text))) => match self.on_text(&text).await {
                Ok(()) => None,
                Err(err) => self.refuse(&err).await,
            },
            Some(Err(ProtocolError::Overflow)) => Some(End::Close(CloseReason {
                code: CloseCode::Size,
                description: Some(format!("frames are limited to {MAX_FRAME_BYTES} bytes")),
            })),
            Some(Err(err)) => {
                tracing::debug!(tour = %self.tour, error = %err, "chat socket broke");
                Some(End::Close(CloseReason {
                    code: CloseCode::Protocol,
                    description: Some("protocol error".into()),
                }))
            }
        }
    }

    /// A client frame: a message (stored, then delivered to the room, this socket included)
    /// or a location.
    async fn on_text(&mut self, text: &str) -> Result<(), ApiError> {
        let incoming: Incoming = serde_json::from_str(text).map_err(|e| {
            ApiError::new(
                Code::MalformedJson,
                format!("expected {{\"type\":\"message\"|\"location\",...}}: {e}"),
            )
        })?;
        match incoming {
            Incoming::Message { body } => {
                chat::send_message(&self.state, &self.caller, self.tour, &body).await?;
            }
            Incoming::Location { lat, lng } => {
                chat::send_location(&self.state, &self.caller, self.tour, lat, lng).await?;
            }
        }
        Ok(())
    }
}
