//! The reminder scheduler: one actor per runtime (registry name `reminders` after the
//! namespace, under `supervisor:tours`) that fires reminders when they are due.
//!
//! Why one scheduler and not a timer in each tour actor: the store holds the reminders (the
//! tour actor writes them when it assigns a tour and cancels them when the tour is cancelled
//! or moved, see [`super::tour`]), and a reminder must fire whether or not its tour's actor
//! runs at that moment (restarting, or later passivated while the tour waits days for its
//! start). The scheduler keeps the pending reminders in a queue ordered by due time with a
//! single timer for the earliest, so any number of reminders costs one timer:
//! - at start (also after a crash or a restart of the process) it loads every pending
//!   reminder from the store; the store is the only truth, the queue is a cache of it;
//! - after writing or cancelling a tour's reminders the tour actor sends `Reload(tour)`, and
//!   the scheduler re-reads that tour's pending reminders (a reload lost in a crash is
//!   covered by the load at restart, which comes after the write);
//! - when the timer fires, each due reminder goes to the [`Notifier`]. The default notifier
//!   marks the row sent only if it is still `pending` and its tour is still assigned or
//!   accepted and not started, in one transaction with the `notification.sent` event, so a
//!   reminder is never sent twice (a restart reloads only pending rows) and never for a tour
//!   that was cancelled or moved, even if the queue has not caught up yet.
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
use crate::reminders::DueReminder;

/// Longest single sleep of the timer.
pub const MAX_SLEEP: Duration = Duration::from_secs(10 * 60);
/// Delay before a reminder whose sending failed is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Messages of the [`ReminderScheduler`].
pub enum ReminderMsg {
    /// The timer ran out: send what is due, re-arm.
    Tick,
    /// A tour's reminders were written or cancelled: re-read them.
    Reload(TourId),
    /// How many reminders are queued.
    Queued(RpcReplyPort<usize>),
}

/// Start-up arguments of the scheduler.
pub struct ReminderArgs {
    pub(crate) ctx: Arc<Ctx>,
}

/// The scheduler actor (stateless; see [`ReminderState`]).
pub struct ReminderScheduler;

/// The queue: reminders by the time they fire next, and the armed timer.
pub struct ReminderState {
    ctx: Arc<Ctx>,
    /// `(fires at, reminder id)`, earliest first.
    queue: BTreeSet<(DateTime<Utc>, Uuid)>,
    /// Each queued reminder and when it fires (its due time, or later after a failure).
    queued: HashMap<Uuid, (DateTime<Utc>, DueReminder)>,
    timer: Option<JoinHandle<Result<(), MessagingErr<ReminderMsg>>>>,
}

impl ReminderState {
    fn insert(&mut self, at: DateTime<Utc>, reminder: DueReminder) {
        self.remove(reminder.id);
        self.queue.insert((at, reminder.id));
        self.queued.insert(reminder.id, (at, reminder));
    }

    fn remove(&mut self, id: Uuid) {
        if let Some((at, _)) = self.queued.remove(&id) {
            self.queue.remove(&(at, id));
        }
    }

    /// Replaces the queued reminders of `tour` with `pending`.
    fn replace(&mut self, tour: TourId, pending: Vec<DueReminder>) {
        let stale: Vec<Uuid> = self
            .queued
            .iter()
            .filter(|(_, (_, r))| r.tour_id == tour)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.remove(id);
        }
        for r in pending {
            self.insert(r.due_at, r);
        }
    }

    /// Arms the timer for the earliest reminder (or none).
    fn arm(&mut self, myself: &ActorRef<ReminderMsg>) {
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
        self.timer = Some(myself.send_after(wait, || ReminderMsg::Tick));
    }

    /// Hands every due reminder to the notifier; a failed one is tried again later.
    async fn fire_due(&mut self) {
        let now = self.ctx.config.clock.now();
        while let Some(&(at, id)) = self.queue.first() {
            if at > now {
                break;
            }
            let Some((_, reminder)) = self.queued.get(&id).cloned() else {
                self.queue.remove(&(at, id));
                continue;
            };
            self.remove(id);
            match self.ctx.notifier.send(&reminder).await {
                Ok(true) => tracing::info!(
                    tour = %reminder.tour_id.0, kind = %reminder.kind, "reminder sent"
                ),
                Ok(false) => tracing::debug!(
                    tour = %reminder.tour_id.0, kind = %reminder.kind, "reminder no longer applies"
                ),
                Err(err) => {
                    tracing::warn!(tour = %reminder.tour_id.0, %err, "reminder not sent; retrying");
                    let retry = chrono::Duration::from_std(RETRY_AFTER).unwrap_or_default();
                    self.insert(now + retry, reminder);
                }
            }
        }
    }
}

impl Actor for ReminderScheduler {
    type Msg = ReminderMsg;
    type State = ReminderState;
    type Arguments = ReminderArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<ReminderMsg>,
        args: ReminderArgs,
    ) -> Result<ReminderState, ActorProcessingErr> {
        let pending = args.ctx.store.pending_reminders(None).await?;
        let mut state = ReminderState {
            ctx: args.ctx,
            queue: BTreeSet::new(),
            queued: HashMap::new(),
            timer: None,
        };
        for r in pending {
            state.insert(r.due_at, r);
        }
        Ok(state)
    }

    async fn post_start(
        &self,
        myself: ActorRef<ReminderMsg>,
        state: &mut ReminderState,
    ) -> Result<(), ActorProcessingErr> {
        state.arm(&myself);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ReminderMsg>,
        state: &mut ReminderState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.timer.take() {
            timer.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ReminderMsg>,
        message: ReminderMsg,
        state: &mut ReminderState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ReminderMsg::Tick => state.fire_due().await,
            ReminderMsg::Reload(tour) => {
                let pending = state.ctx.store.pending_reminders(Some(tour)).await?;
                state.replace(tour, pending);
            }
            ReminderMsg::Queued(reply) => {
                let _ = reply.send(state.queued.len());
                return Ok(());
            }
        }
        state.arm(&myself);
        Ok(())
    }
}

impl super::Runtime {
    /// Reminders the scheduler has queued (`None` while it is not running).
    pub async fn reminders_queued(&self) -> Option<usize> {
        let ctx = &self.core.ctx;
        let scheduler = ctx.reminders()?;
        super::ctx::ask(&scheduler, ReminderMsg::Queued, ctx.config.call_timeout).await
    }
}
