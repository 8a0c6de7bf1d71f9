//! The notification worker: one actor per runtime (registry name `notifications` after the
//! namespace, under `supervisor:tours`) that delivers the rows of the `notifications` table
//! (the email outbox, see [`crate::notices`]) when they are due.
//!
//! Why one worker and not a timer in each tour actor: the store holds the notifications
//! (written in the transaction of the change they tell of; reminders by the tour actor when
//! it assigns a tour, cancelled when the tour is cancelled or moved), and a reminder must go
//! out whether or not its tour's actor runs at that moment (restarting, or passivated while
//! the tour waits days for its start). The worker keeps the pending notifications in a queue
//! ordered by due time with a single timer for the earliest, so any number costs one timer:
//! - at start (also after a crash or a restart of the process) it loads every pending
//!   notification from the store; the store is the only truth, the queue is a cache of it;
//! - it follows the runtime's committed tour changes (each may have written notifications)
//!   and re-reads that tour's pending rows; writers of other notifications (the API: reviews,
//!   listings, password resets) send `Reload(None)`; a reload lost in a crash is covered by
//!   the load at restart, which comes after the write;
//! - when the timer fires, each due notification goes to the [`super::Notifier`]. The default
//!   one claims the row only if it is still `pending` (and, for a reminder, its tour is still
//!   assigned or accepted and not started), mails it and records it `sent` with the
//!   `notification.sent` event in one transaction, so nothing is sent twice by a restart
//!   (only pending rows are reloaded; a crash between mailing and committing repeats the same
//!   Message-ID and .eml file) and no reminder goes out for a cancelled or moved tour;
//! - a failed delivery is tried again after [`backoff`] (30 s, doubling, at most an hour), and
//!   after [`MAX_ATTEMPTS`] attempts, or at once for a permanent failure (a bad address, an SMTP
//!   5xx answer), the row is `failed` with its last error, for admins to see.
//!
//! Due times are read from [`super::RuntimeConfig::clock`]; the timer sleeps on tokio's clock,
//! at most [`MAX_SLEEP`] at a time so a wall clock that jumps is caught up with.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use engine::TourId;
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort};
use uuid::Uuid;

use super::ctx::Ctx;
use crate::notices::{Delivery, DueNotification};
use engine::TourStatus;

/// Longest single sleep of the timer.
pub const MAX_SLEEP: Duration = Duration::from_secs(10 * 60);
/// Delay before a notification is tried again after the store failed.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);
/// Delivery attempts before a notification is `failed` for good.
pub const MAX_ATTEMPTS: i32 = 6;

/// The wait before attempt `attempts + 1`, after `attempts` failed ones: 30 s, doubling, at
/// most an hour.
#[must_use]
pub fn backoff(attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(0);
    (RETRY_AFTER * 2_u32.pow(doublings)).min(Duration::from_secs(3600))
}

/// Messages of the [`NotificationWorker`].
pub enum WorkerMsg {
    /// The timer ran out: send what is due, re-arm.
    Tick,
    /// Notifications of a tour (or, `None`, of anything) were written or cancelled: re-read.
    Reload(Option<TourId>),
    /// How many notifications are queued.
    Queued(RpcReplyPort<usize>),
}

/// Start-up arguments of the scheduler.
pub struct WorkerArgs {
    pub(crate) ctx: Arc<Ctx>,
}

/// The scheduler actor (stateless; see [`WorkerState`]).
pub struct NotificationWorker;

/// The queue: reminders by the time they fire next, and the armed timer.
pub struct WorkerState {
    ctx: Arc<Ctx>,
    /// `(fires at, notification id)`, earliest first.
    queue: BTreeSet<(DateTime<Utc>, Uuid)>,
    /// Each queued notification and when it fires (its due time, or later after a failure).
    queued: HashMap<Uuid, (DateTime<Utc>, DueNotification)>,
    timer: Option<JoinHandle<Result<(), MessagingErr<WorkerMsg>>>>,
    /// The task forwarding tour changes (see [`follow_changes`]).
    follower: Option<tokio::task::JoinHandle<()>>,
}

impl WorkerState {
    fn insert(&mut self, at: DateTime<Utc>, reminder: DueNotification) {
        self.remove(reminder.id);
        self.queue.insert((at, reminder.id));
        self.queued.insert(reminder.id, (at, reminder));
    }

    fn remove(&mut self, id: Uuid) {
        if let Some((at, _)) = self.queued.remove(&id) {
            self.queue.remove(&(at, id));
        }
    }

    /// Replaces the queued notifications of `tour` (or all, for `None`) with `pending`.
    fn replace(&mut self, tour: Option<TourId>, pending: Vec<DueNotification>) {
        let stale: Vec<Uuid> = self
            .queued
            .iter()
            .filter(|(_, (_, n))| tour.is_none() || n.tour_id == tour)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.remove(id);
        }
        for n in pending {
            self.insert(n.due_at, n);
        }
    }

    /// Arms the timer for the earliest reminder (or none).
    fn arm(&mut self, myself: &ActorRef<WorkerMsg>) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
        let Some(&(at, _)) = self.queue.first() else {
            return;
        };
        let wait = (at - self.ctx.config.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_SLEEP);
        self.timer = Some(myself.send_after(wait, || WorkerMsg::Tick));
    }

    /// Hands every due notification to the notifier; a failed one is tried again later, or
    /// given up (see the module docs).
    async fn fire_due(&mut self) -> Result<(), crate::store::StoreError> {
        let now = self.ctx.config.clock.now();
        while let Some(&(at, id)) = self.queue.first() {
            if at > now {
                break;
            }
            let Some((_, n)) = self.queued.get(&id).cloned() else {
                self.queue.remove(&(at, id));
                continue;
            };
            self.remove(id);
            let tour = n.tour_id.map(|t| t.0);
            match self.ctx.notifier.send(&n).await {
                Ok(Delivery::Sent) => tracing::info!(?tour, kind = %n.kind, "notification sent"),
                Ok(Delivery::Skipped) => {
                    tracing::debug!(?tour, kind = %n.kind, "notification no longer applies");
                }
                Ok(Delivery::Failed(err)) => {
                    let attempts = n.attempts + 1;
                    let retry_at = (!err.permanent && attempts < MAX_ATTEMPTS).then(|| {
                        now + chrono::Duration::from_std(backoff(attempts)).unwrap_or_default()
                    });
                    self.ctx
                        .store
                        .record_notification_failure(n.id, &err.message, retry_at)
                        .await?;
                    match retry_at {
                        Some(at) => {
                            tracing::warn!(?tour, kind = %n.kind, attempts, %err, %at, "notification not delivered; retrying");
                            self.insert(at, DueNotification { attempts, ..n });
                        }
                        None => {
                            tracing::error!(?tour, kind = %n.kind, attempts, %err, "notification failed for good");
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(?tour, %err, "notification not sent (store); retrying");
                    let retry = chrono::Duration::from_std(RETRY_AFTER).unwrap_or_default();
                    self.insert(now + retry, n);
                }
            }
        }
        Ok(())
    }
}

/// Forwards committed tour changes that may have written notifications to the worker as
/// `Reload(tour)`; after missing some (a lagging receiver), one `Reload(None)`.
fn follow_changes(ctx: &Ctx, myself: ActorRef<WorkerMsg>) -> tokio::task::JoinHandle<()> {
    let mut changes = ctx.changes.subscribe();
    tokio::spawn(async move {
        loop {
            let reload = match changes.recv().await {
                // Starting or finishing a tour tells nobody anything.
                Ok(t) if matches!(t.status, TourStatus::InProgress | TourStatus::Completed) => {
                    continue
                }
                Ok(t) => Some(t.id),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            if myself.cast(WorkerMsg::Reload(reload)).is_err() {
                return;
            }
        }
    })
}

impl Actor for NotificationWorker {
    type Msg = WorkerMsg;
    type State = WorkerState;
    type Arguments = WorkerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<WorkerMsg>,
        args: WorkerArgs,
    ) -> Result<WorkerState, ActorProcessingErr> {
        let pending = args.ctx.store.pending_notifications(None).await?;
        let mut state = WorkerState {
            ctx: args.ctx,
            queue: BTreeSet::new(),
            queued: HashMap::new(),
            timer: None,
            follower: None,
        };
        for r in pending {
            state.insert(r.due_at, r);
        }
        Ok(state)
    }

    async fn post_start(
        &self,
        myself: ActorRef<WorkerMsg>,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        state.follower = Some(follow_changes(&state.ctx, myself.clone()));
        state.arm(&myself);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<WorkerMsg>,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.timer.take() {
            timer.abort();
        }
        if let Some(follower) = state.follower.take() {
            follower.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<WorkerMsg>,
        message: WorkerMsg,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            WorkerMsg::Tick => state.fire_due().await?,
            WorkerMsg::Reload(tour) => {
                let pending = state.ctx.store.pending_notifications(tour).await?;
                state.replace(tour, pending);
            }
            WorkerMsg::Queued(reply) => {
                let _ = reply.send(state.queued.len());
                return Ok(());
            }
        }
        state.arm(&myself);
        Ok(())
    }
}

impl super::Runtime {
    /// Tells the notification worker that notifications were written outside the runtime's
    /// tour changes (e.g. by the API in the transaction of a review or a password reset).
    pub fn notifications_written(&self) {
        self.core.ctx.notifications_changed(None);
    }

    /// Notifications the worker has queued (`None` while it is not running).
    pub async fn notifications_queued(&self) -> Option<usize> {
        let ctx = &self.core.ctx;
        let scheduler = ctx.notification_worker()?;
        super::ctx::ask(&scheduler, WorkerMsg::Queued, ctx.config.call_timeout).await
    }
}
