//! The supervisors: one for the shards, one for the tours, one for the carts (registry names
//! `supervisor:shards`, `supervisor:tours`, `supervisor:carts`), all under the root
//! (see [`super::root`]). ractor restarts nothing by itself: a supervisor
//! handles its children's failures in `handle_supervisor_evt`, restarting each with
//! exponential backoff; more than `max_restarts` restarts within `within` (Erlang's
//! intensity/period) and it escalates: it stops its children and itself.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use engine::{CustomerId, TourId};
use h3o::CellIndex;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::time::Instant;

use super::cart::{CartActor, CartArgs};
use super::ctx::Ctx;
use super::notification_worker::{NotificationWorker, WorkerArgs};
use super::shard::{ShardActor, ShardArgs, ShardSeed};
use super::tour::{TourActor, TourArgs};
use crate::store::TourRecord;

/// Restart policy of a supervisor.
#[derive(Debug, Clone)]
pub struct SupervisionConfig {
    /// At most this many restarts within [`SupervisionConfig::within`]; one more escalates.
    pub max_restarts: usize,
    /// The window of the restart limit.
    pub within: Duration,
    /// Delay before a child's first restart; doubled for each further restart in the window.
    pub backoff_base: Duration,
    /// Longest delay before a restart.
    pub backoff_max: Duration,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        Self {
            max_restarts: 20,
            within: Duration::from_secs(10),
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// Which child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildKey {
    /// The shard of a cell.
    Shard(CellIndex),
    /// The actor of a tour.
    Tour(TourId),
    /// The cart of a customer.
    Cart(CustomerId),
    /// The reminder scheduler.
    Reminders,
}

/// How to start a child.
pub enum ChildSpec {
    /// A shard, with preloaded state or (`None`) loading it from the store.
    Shard(CellIndex, Option<ShardSeed>),
    /// A tour actor, with the tour as stored or (`None`) loading it.
    Tour(TourId, Option<Box<TourRecord>>),
    /// A customer's cart actor (it reads the cart from the store on each command).
    Cart(CustomerId),
    /// The reminder scheduler (it loads the pending reminders from the store).
    Reminders,
}

impl ChildSpec {
    fn key(&self) -> ChildKey {
        match self {
            ChildSpec::Shard(cell, _) => ChildKey::Shard(*cell),
            ChildSpec::Tour(id, _) => ChildKey::Tour(*id),
            ChildSpec::Cart(customer) => ChildKey::Cart(*customer),
            ChildSpec::Reminders => ChildKey::Reminders,
        }
    }
}

/// Messages of a [`Supervisor`].
pub enum SupMsg {
    /// Starts the child unless it runs; replies once it is started (or its restart scheduled).
    Start(ChildSpec, RpcReplyPort<Result<(), String>>),
    /// Restarts a failed child (sent to itself after the backoff).
    Restart(ChildKey),
    /// How many children run.
    Count(RpcReplyPort<usize>),
}

/// Start-up arguments of a supervisor (the runtime's shared context).
pub struct SupArgs {
    pub(crate) ctx: Arc<Ctx>,
}

/// The supervisor actor (stateless; see [`SupState`]).
pub struct Supervisor;

/// A supervisor's state: its children and its recent restarts.
pub struct SupState {
    ctx: Arc<Ctx>,
    by_id: HashMap<ActorId, ChildKey>,
    running: HashMap<ChildKey, ActorId>,
    recent: VecDeque<(Instant, ChildKey)>,
}

impl Supervisor {
    async fn spawn_child(
        myself: &ActorRef<SupMsg>,
        state: &mut SupState,
        spec: ChildSpec,
    ) -> Result<(), String> {
        let key = spec.key();
        let ctx = state.ctx.clone();
        let id = match spec {
            ChildSpec::Shard(cell, seed) => {
                let args = ShardArgs {
                    ctx: ctx.clone(),
                    cell,
                    seed,
                };
                Actor::spawn_linked(
                    Some(ctx.shard_name(cell)),
                    ShardActor,
                    args,
                    myself.get_cell(),
                )
                .await
                .map(|(r, _)| r.get_id())
            }
            ChildSpec::Tour(tour, record) => {
                let args = TourArgs {
                    ctx: ctx.clone(),
                    id: tour,
                    record,
                };
                Actor::spawn_linked(
                    Some(ctx.tour_name(tour)),
                    TourActor,
                    args,
                    myself.get_cell(),
                )
                .await
                .map(|(r, _)| r.get_id())
            }
            ChildSpec::Cart(customer) => {
                let args = CartArgs {
                    ctx: ctx.clone(),
                    customer,
                };
                Actor::spawn_linked(
                    Some(ctx.cart_name(customer)),
                    CartActor,
                    args,
                    myself.get_cell(),
                )
                .await
                .map(|(r, _)| r.get_id())
            }
            ChildSpec::Reminders => Actor::spawn_linked(
                Some(ctx.worker_name()),
                NotificationWorker,
                WorkerArgs { ctx: ctx.clone() },
                myself.get_cell(),
            )
            .await
            .map(|(r, _)| r.get_id()),
        }
        .map_err(|e| e.to_string())?;
        state.by_id.insert(id, key);
        state.running.insert(key, id);
        Ok(())
    }

    /// Records a failure of `key` and schedules its restart, or escalates.
    fn failed(myself: &ActorRef<SupMsg>, state: &mut SupState, key: ChildKey) {
        if state.ctx.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        let cfg = &state.ctx.config.supervision;
        let now = Instant::now();
        state.recent.push_back((now, key));
        while state
            .recent
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > cfg.within)
        {
            state.recent.pop_front();
        }
        if state.recent.len() > cfg.max_restarts {
            tracing::error!(
                supervisor = ?myself.get_name(),
                restarts = state.recent.len(),
                "restart limit reached: escalating"
            );
            myself.stop_children(Some("escalated".into()));
            myself.stop(Some("restart limit reached".into()));
            return;
        }
        let n = state.recent.iter().filter(|(_, k)| *k == key).count();
        let factor = 1u32 << (n.saturating_sub(1)).min(16);
        let delay = (cfg.backoff_base * factor).min(cfg.backoff_max);
        let me = myself.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = me.cast(SupMsg::Restart(key));
        });
    }

    fn forget(state: &mut SupState, id: ActorId) -> Option<ChildKey> {
        let key = state.by_id.remove(&id)?;
        if state.running.get(&key) == Some(&id) {
            state.running.remove(&key);
        }
        Some(key)
    }
}

impl Actor for Supervisor {
    type Msg = SupMsg;
    type State = SupState;
    type Arguments = SupArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<SupMsg>,
        args: SupArgs,
    ) -> Result<SupState, ActorProcessingErr> {
        Ok(SupState {
            ctx: args.ctx,
            by_id: HashMap::new(),
            running: HashMap::new(),
            recent: VecDeque::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupMsg>,
        message: SupMsg,
        state: &mut SupState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupMsg::Start(spec, reply) => {
                let key = spec.key();
                let result = if state.running.contains_key(&key) {
                    Ok(())
                } else {
                    match Self::spawn_child(&myself, state, spec).await {
                        Ok(()) => Ok(()),
                        Err(err) => {
                            tracing::warn!(?key, %err, "child failed to start; retrying");
                            Self::failed(&myself, state, key);
                            Err(err)
                        }
                    }
                };
                let _ = reply.send(result);
            }
            SupMsg::Restart(key) => {
                if !state.running.contains_key(&key)
                    && !state.ctx.shutting_down.load(Ordering::SeqCst)
                {
                    let spec = match key {
                        ChildKey::Shard(cell) => ChildSpec::Shard(cell, None),
                        ChildKey::Tour(tour) => ChildSpec::Tour(tour, None),
                        ChildKey::Cart(customer) => ChildSpec::Cart(customer),
                        ChildKey::Reminders => ChildSpec::Reminders,
                    };
                    match Self::spawn_child(&myself, state, spec).await {
                        Ok(()) => {
                            state.ctx.restarts.fetch_add(1, Ordering::SeqCst);
                            tracing::info!(?key, "child restarted");
                        }
                        Err(err) => {
                            tracing::warn!(?key, %err, "restart failed");
                            Self::failed(&myself, state, key);
                        }
                    }
                }
            }
            SupMsg::Count(reply) => {
                let _ = reply.send(state.running.len());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupMsg>,
        event: SupervisionEvent,
        state: &mut SupState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(key) = Self::forget(state, cell.get_id()) {
                    tracing::warn!(?key, %err, "child failed");
                    Self::failed(&myself, state, key);
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                // A clean stop: passivation or shutdown, never restarted.
                if let Some(key) = Self::forget(state, cell.get_id()) {
                    tracing::debug!(?key, ?reason, "child stopped");
                }
            }
            _ => {}
        }
        Ok(())
    }
}
