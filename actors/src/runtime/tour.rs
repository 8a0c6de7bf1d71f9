//! `TourActor`: one per open tour (registry name `tour:{uuid}`), the single writer of that
//! tour. It matches the tour ring by ring over the shards, reserves the winner, stores the
//! assignment, waits for accept/decline with a timeout, handles reschedule and cancel, and
//! stops (passivates) at a terminal state. A restarted tour actor reloads its tour from the
//! store and carries on from its status.

use std::collections::HashMap;
use std::sync::Arc;

use engine::geo::{ring, ring_bound_km};
use engine::realtor::MAX_SERVICE_RADIUS_KM;
use engine::{Booking, Decision, RealtorId, TimeWindow, TourId, TourPlan, TourStatus, Transition};
use h3o::CellIndex;
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort};
use tokio::task::JoinSet;

use super::ctx::{call_shard, Ctx};
use super::shard::ShardMsg;
use super::RuntimeError;
use crate::reminders::reminders_for;
use crate::store::{Assignment, Change, StoreError, TourRecord};

/// Attempts at reserving and storing before the actor gives up (and fails, so the supervisor
/// restarts it); each failed attempt means another tour won the slot.
const MAX_MATCH_ATTEMPTS: usize = 200;

/// A request about one tour.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// The realtor accepts.
    Accept,
    /// The realtor declines: match again without them.
    Decline,
    /// The realtor starts the tour.
    Start,
    /// The realtor completes the tour.
    Complete,
    /// The customer or an admin cancels.
    Cancel,
    /// The customer or an admin moves the window: match again in it.
    Reschedule(TimeWindow),
}

impl Command {
    /// The state-machine transition this command asks for.
    #[must_use]
    pub fn transition(&self) -> Transition {
        match self {
            Command::Accept => Transition::Accept,
            Command::Decline => Transition::Decline,
            Command::Start => Transition::Start,
            Command::Complete => Transition::Complete,
            Command::Cancel => Transition::Cancel,
            Command::Reschedule(_) => Transition::Reschedule,
        }
    }
}

/// Messages of a [`TourActor`].
pub enum TourMsg {
    /// Match a pending tour.
    Match,
    /// Availability changed: search again for an unassignable tour.
    Retry,
    /// The accept timeout of the assignment stored at `version` ran out.
    AcceptTimeout {
        /// Version of the tour right after the assignment.
        version: i32,
    },
    /// A command from the API, answered with the tour after it.
    Command(Command, RpcReplyPort<Result<TourRecord, RuntimeError>>),
    /// The tour as the actor holds it.
    Get(RpcReplyPort<TourRecord>),
    /// Fault injection for tests: panics inside the handler.
    #[doc(hidden)]
    Crash,
}

/// Start-up arguments of a tour actor.
pub struct TourArgs {
    pub(crate) ctx: Arc<Ctx>,
    /// The tour.
    pub id: TourId,
    /// The tour as just stored, or `None` to load it (restart).
    pub record: Option<Box<TourRecord>>,
}

/// The tour actor (stateless; see [`TourState`]).
pub struct TourActor;

/// A tour actor's state: the tour as stored and the pending accept timer.
pub struct TourState {
    ctx: Arc<Ctx>,
    record: TourRecord,
    accept_timer: Option<JoinHandle<Result<(), MessagingErr<TourMsg>>>>,
}

impl Actor for TourActor {
    type Msg = TourMsg;
    type State = TourState;
    type Arguments = TourArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<TourMsg>,
        args: TourArgs,
    ) -> Result<TourState, ActorProcessingErr> {
        // Matching messages queued for a failed predecessor died with it.
        args.ctx.end_matching(args.id);
        let record = match args.record {
            Some(record) => *record,
            None => args
                .ctx
                .store
                .get_tour(args.id)
                .await?
                .ok_or_else(|| format!("tour {} is not stored", args.id.0))?,
        };
        Ok(TourState {
            ctx: args.ctx,
            record,
            accept_timer: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<TourMsg>,
        state: &mut TourState,
    ) -> Result<(), ActorProcessingErr> {
        let id = state.record.id;
        match state.record.status {
            TourStatus::Pending => queue(&state.ctx, &myself, id, TourMsg::Match),
            TourStatus::Unassignable => {
                let cell = first_cell(&state.ctx, &state.record);
                state.ctx.park(id, cell, 0);
                queue(&state.ctx, &myself, id, TourMsg::Retry);
            }
            TourStatus::Assigned | TourStatus::Accepted | TourStatus::InProgress => {
                // The shard may have been rebuilt before this booking was stored.
                confirm(&state.ctx, &state.record).await?;
                schedule_reminders(&state.ctx, &state.record).await?;
                if state.record.status == TourStatus::Assigned {
                    arm_accept_timer(&myself, state);
                }
            }
            TourStatus::Completed | TourStatus::Cancelled => myself.stop(Some("passivated".into())),
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<TourMsg>,
        state: &mut TourState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.accept_timer.take() {
            timer.abort();
        }
        // A Match or Retry still queued dies with the actor (e.g. a cancel that arrived
        // between a decline and its re-matching passivates the tour first).
        state.ctx.end_matching(state.record.id);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<TourMsg>,
        message: TourMsg,
        state: &mut TourState,
    ) -> Result<(), ActorProcessingErr> {
        let id = state.record.id;
        match message {
            TourMsg::Match => {
                let result = if state.record.status == TourStatus::Pending {
                    match_tour(&myself, state).await
                } else {
                    Ok(())
                };
                state.ctx.end_matching(id);
                result?;
            }
            TourMsg::Retry => {
                let result = if state.record.status == TourStatus::Unassignable {
                    retry(&myself, state).await
                } else {
                    Ok(())
                };
                state.ctx.end_matching(id);
                result?;
            }
            TourMsg::AcceptTimeout { version } => {
                if state.record.status == TourStatus::Assigned && state.record.version == version {
                    state.accept_timer = None;
                    // Treated as a decline by the realtor who did not answer.
                    let mut change = Change::new(id, Transition::Decline, version);
                    change.declined = state.record.realtor_id;
                    change.reason = Some("accept_timeout".into());
                    match apply(&myself, state, change).await {
                        Ok(_) => {}
                        // Another process moved the tour first; its record is ours now.
                        Err(RuntimeError::Conflict) => {
                            if state.record.status == TourStatus::Assigned {
                                arm_accept_timer(&myself, state);
                            }
                        }
                        Err(err) => return Err(err.into()),
                    }
                    if state.record.status.is_terminal() {
                        myself.stop(Some("passivated".into()));
                    }
                }
            }
            TourMsg::Command(command, reply) => {
                let result = command_tour(&myself, state, command).await;
                let _ = reply.send(result);
                if state.record.status.is_terminal() {
                    myself.stop(Some("passivated".into()));
                }
            }
            TourMsg::Get(reply) => {
                let _ = reply.send(state.record.clone());
            }
            TourMsg::Crash => panic!("injected tour failure"),
        }
        Ok(())
    }
}

/// Sends `msg` (a `Match` or `Retry`) to the tour itself, recording that matching is queued.
fn queue(ctx: &Ctx, myself: &ActorRef<TourMsg>, tour: TourId, msg: TourMsg) {
    ctx.begin_matching(tour);
    if myself.cast(msg).is_err() {
        ctx.end_matching(tour);
    }
}

fn first_cell(ctx: &Ctx, record: &TourRecord) -> CellIndex {
    record.stops[0].location.cell(ctx.config.shard_resolution)
}

fn plan_of(ctx: &Ctx, record: &TourRecord) -> Result<Arc<TourPlan>, ActorProcessingErr> {
    Ok(Arc::new(TourPlan::new(
        record.id,
        &record.stops,
        record.window,
        ctx.config.visit_minutes,
        record.declined.clone(),
    )?))
}

fn to_runtime(err: StoreError) -> RuntimeError {
    match err {
        StoreError::Conflict(_) => RuntimeError::Conflict,
        StoreError::NotFound(id) => RuntimeError::NotFound(id),
        other => RuntimeError::Store(other),
    }
}

/// Restores the stored booking of an active tour in its shard (idempotent), waiting for the
/// shard if it is restarting.
async fn confirm(ctx: &Ctx, record: &TourRecord) -> Result<(), RuntimeError> {
    let Some((realtor, booking)) = record.booking() else {
        return Ok(());
    };
    let Some(cell) = ctx.realtor_cell(realtor) else {
        return Ok(());
    };
    call_shard(ctx, cell, |reply| ShardMsg::Confirm {
        realtor,
        booking,
        reply,
    })
    .await
}

async fn schedule_reminders(ctx: &Ctx, record: &TourRecord) -> Result<(), StoreError> {
    let Some(start) = record.start else {
        return Ok(());
    };
    let reminders = reminders_for(start, &ctx.config.reminder_offsets, ctx.config.clock.now());
    ctx.store.schedule_reminders(record, &reminders).await?;
    ctx.notifications_changed(Some(record.id));
    Ok(())
}

async fn cancel_reminders(ctx: &Ctx, tour: TourId) -> Result<(), RuntimeError> {
    ctx.store.cancel_reminders(tour).await.map_err(to_runtime)?;
    ctx.notifications_changed(Some(tour));
    Ok(())
}

fn arm_accept_timer(myself: &ActorRef<TourMsg>, state: &mut TourState) {
    if let Some(timer) = state.accept_timer.take() {
        timer.abort();
    }
    let version = state.record.version;
    state.accept_timer = Some(myself.send_after(state.ctx.config.accept_timeout, move || {
        TourMsg::AcceptTimeout { version }
    }));
}

/// Frees the realtor time of `booking` in its shard.
async fn release(ctx: &Ctx, realtor: RealtorId, tour: TourId) -> Result<(), RuntimeError> {
    let Some(cell) = ctx.realtor_cell(realtor) else {
        return Ok(());
    };
    call_shard(ctx, cell, |reply| ShardMsg::Release {
        realtor,
        tour,
        reply,
    })
    .await
    .map(|_| ())
}

/// The exact decision for `plan` over every shard: rings of shard cells around the first
/// listing, in parallel within a ring, until nothing unexplored can beat the best feasible
/// realtor (plus the policy's slack) or lies within any service radius. Returns the merged
/// decision and which shard each feasible realtor lives in.
pub(crate) async fn search(
    ctx: &Arc<Ctx>,
    plan: &Arc<TourPlan>,
) -> Result<(Decision, HashMap<RealtorId, CellIndex>), RuntimeError> {
    let policy = ctx.config.policy.clone();
    let mut owners = HashMap::new();
    if !plan.fits_window() {
        let mut d = Decision::decide(policy.as_ref(), Vec::new(), Vec::new(), 0);
        d.explanation.reason = Some("window_too_short".to_owned());
        return Ok((d, owners));
    }
    let res = ctx.config.shard_resolution;
    let origin = plan.first().cell(res);
    let occupied = ctx.shard_cells();
    let mut seen = 0;
    let mut parts = Vec::new();
    let mut best: Option<f64> = None;
    for k in 0.. {
        let mut calls = JoinSet::new();
        // What earlier rings found bounds this ring's searches: a shard with nobody nearer
        // than that stops at once instead of proving that none of its realtors is feasible.
        let known_km = best;
        for cell in ring(origin, k).into_iter().filter(|c| occupied.contains(c)) {
            seen += 1;
            let (ctx, plan, policy) = (ctx.clone(), plan.clone(), policy.clone());
            calls.spawn(async move {
                let d = call_shard(&ctx, cell, |reply| ShardMsg::Search {
                    plan: plan.clone(),
                    policy: policy.clone(),
                    known_km,
                    reply,
                })
                .await;
                (cell, d)
            });
        }
        while let Some(joined) = calls.join_next().await {
            let (cell, decision) =
                joined.map_err(|e| RuntimeError::Unavailable(format!("search task: {e}")))?;
            let decision = decision?;
            for f in &decision.feasible {
                owners.insert(f.realtor_id, cell);
                best = Some(best.map_or(f.distance_km, |b: f64| b.min(f.distance_km)));
            }
            parts.push(decision);
        }
        let bound = ring_bound_km(res, k);
        let settled = best.is_some_and(|b| bound > b + policy.slack_km());
        if settled || seen >= occupied.len() || bound > MAX_SERVICE_RADIUS_KM {
            break;
        }
    }
    Ok((Decision::merge(policy.as_ref(), parts), owners))
}

/// Matches a pending tour: search, reserve the winner, store the assignment; a lost race or
/// the database's double-booking guard means search again; nobody feasible means
/// `unassignable`, parked until availability changes.
async fn match_tour(
    myself: &ActorRef<TourMsg>,
    state: &mut TourState,
) -> Result<(), ActorProcessingErr> {
    let ctx = state.ctx.clone();
    for _ in 0..MAX_MATCH_ATTEMPTS {
        let plan = plan_of(&ctx, &state.record)?;
        let epoch = ctx.epoch.load(std::sync::atomic::Ordering::SeqCst);
        let (decision, owners) = search(&ctx, &plan).await?;
        let Some(choice) = decision.choice else {
            let mut change = Change::new(
                state.record.id,
                Transition::MarkUnassignable,
                state.record.version,
            );
            change.reason = decision.explanation.reason.clone();
            state.record = ctx.store.transition(change).await?;
            if ctx.park(state.record.id, first_cell(&ctx, &state.record), epoch) {
                queue(&ctx, myself, state.record.id, TourMsg::Retry);
            }
            return Ok(());
        };
        let realtor = choice.realtor_id;
        let cell = owners[&realtor];
        let reserved = call_shard(&ctx, cell, |reply| ShardMsg::Reserve {
            realtor,
            plan: plan.clone(),
            start: choice.start,
            reply,
        })
        .await?;
        let Ok(booking) = reserved else {
            continue; // another tour took the slot first
        };
        let assignment = Assignment {
            tour_id: state.record.id,
            realtor_id: realtor,
            start: engine::time::to_datetime(booking.start),
            end: engine::time::to_datetime(booking.end),
            explanation: &decision.explanation,
            expected_version: state.record.version,
        };
        match ctx.store.assign(assignment).await {
            Ok(record) => {
                state.record = record;
                on_assigned(&ctx, myself, state, realtor, cell, booking).await?;
                return Ok(());
            }
            Err(StoreError::Overlap) => {
                // The shard did not know a stored booking (it was rebuilt): catch up, retry.
                release(&ctx, realtor, state.record.id).await?;
                call_shard(&ctx, cell, ShardMsg::Resync).await?;
            }
            Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => {
                release(&ctx, realtor, state.record.id).await?;
                state.record = ctx
                    .store
                    .get_tour(state.record.id)
                    .await?
                    .ok_or("tour vanished")?;
                if state.record.status != TourStatus::Pending {
                    return Ok(());
                }
            }
            Err(other) => {
                release(&ctx, realtor, state.record.id).await?;
                return Err(other.into());
            }
        }
    }
    Err(format!(
        "tour {}: no stable match after {MAX_MATCH_ATTEMPTS} attempts",
        state.record.id.0
    )
    .into())
}

async fn on_assigned(
    ctx: &Ctx,
    myself: &ActorRef<TourMsg>,
    state: &mut TourState,
    realtor: RealtorId,
    cell: CellIndex,
    booking: Booking,
) -> Result<(), ActorProcessingErr> {
    call_shard(ctx, cell, |reply| ShardMsg::Confirm {
        realtor,
        booking,
        reply,
    })
    .await?;
    schedule_reminders(ctx, &state.record).await?;
    arm_accept_timer(myself, state);
    Ok(())
}

/// Searches again for an unassignable tour; stores nothing unless someone can take it now.
async fn retry(
    myself: &ActorRef<TourMsg>,
    state: &mut TourState,
) -> Result<(), ActorProcessingErr> {
    let ctx = state.ctx.clone();
    let plan = plan_of(&ctx, &state.record)?;
    let epoch = ctx.epoch.load(std::sync::atomic::Ordering::SeqCst);
    let (decision, _) = search(&ctx, &plan).await?;
    if decision.choice.is_none() {
        if ctx.park(state.record.id, first_cell(&ctx, &state.record), epoch) {
            queue(&ctx, myself, state.record.id, TourMsg::Retry);
        }
        return Ok(());
    }
    ctx.unpark(state.record.id);
    let change = Change::new(state.record.id, Transition::Retry, state.record.version);
    state.record = ctx.store.transition(change).await?;
    match_tour(myself, state).await
}

/// Stores `change` and does what follows from it: frees the realtor's time, cancels the
/// reminders, matches again when the tour is pending again.
async fn apply(
    myself: &ActorRef<TourMsg>,
    state: &mut TourState,
    change: Change,
) -> Result<TourRecord, RuntimeError> {
    let ctx = state.ctx.clone();
    let before = state.record.booking();
    let was = state.record.status;
    let record = match ctx.store.transition(change).await {
        Ok(record) => record,
        Err(StoreError::Conflict(_)) => {
            reload(state).await?;
            return Err(RuntimeError::Conflict);
        }
        Err(err) => return Err(to_runtime(err)),
    };
    state.record = record.clone();
    if was == TourStatus::Assigned && record.status != TourStatus::Assigned {
        if let Some(timer) = state.accept_timer.take() {
            timer.abort();
        }
    }
    if was == TourStatus::Unassignable {
        ctx.unpark(record.id);
    }
    if let Some((realtor, _)) = before {
        if !record.status.is_active() {
            if record.status != TourStatus::Completed {
                cancel_reminders(&ctx, record.id).await?;
            }
            release(&ctx, realtor, record.id).await?;
        }
    }
    if record.status == TourStatus::Cancelled && before.is_none() {
        cancel_reminders(&ctx, record.id).await?;
    }
    if record.status == TourStatus::Pending {
        queue(&ctx, myself, record.id, TourMsg::Match);
    }
    Ok(record)
}

/// Another actor of this tour (in another process, scale-out) changed it first: this one takes
/// the stored record as its own.
async fn reload(state: &mut TourState) -> Result<(), RuntimeError> {
    let stored = state.ctx.store.get_tour(state.record.id).await;
    if let Some(record) = stored.map_err(to_runtime)? {
        state.record = record;
    }
    if state.record.status != TourStatus::Assigned {
        if let Some(timer) = state.accept_timer.take() {
            timer.abort();
        }
    }
    Ok(())
}

async fn command_tour(
    myself: &ActorRef<TourMsg>,
    state: &mut TourState,
    command: Command,
) -> Result<TourRecord, RuntimeError> {
    let transition = command.transition();
    // The second attempt runs on the record a conflict reloaded.
    let mut attempts = 2;
    loop {
        state
            .record
            .status
            .apply(transition)
            .map_err(RuntimeError::Illegal)?;
        let mut change = Change::new(state.record.id, transition, state.record.version);
        match &command {
            Command::Decline => change.declined = state.record.realtor_id,
            Command::Reschedule(window) => change.new_window = Some(*window),
            _ => {}
        }
        attempts -= 1;
        match apply(myself, state, change).await {
            Err(RuntimeError::Conflict) if attempts > 0 => {}
            result => return result,
        }
    }
}
