//! The top of the supervision tree: `supervisor:root` above `supervisor:shards`,
//! `supervisor:tours` (tour actors and the reminder scheduler) and `supervisor:carts`.
//!
//! A child supervisor restarts its own children (see [`super::supervisor`]); when one of them
//! fails too often it escalates: it stops its children and itself. That reaches the root as
//! the termination of a linked child, which the root records instead of restarting the
//! subtree: the process can no longer keep its guarantees (a shard's calendars or a tour's
//! lifecycle are gone), so [`super::Runtime::healthy`] turns false and `/readyz` says so,
//! and the orchestrator replaces the process, which recovers everything from the store on
//! start (Erlang's "escalate to the top, restart the node"). The root ignores terminations
//! during shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, ActorStatus, SupervisionEvent};

use super::ctx::{lock, Ctx};
use super::supervisor::{SupArgs, SupMsg, Supervisor};
use super::RuntimeError;

/// The root has no messages of its own: it only receives its children's supervision events.
pub enum RootMsg {}

/// The root supervisor (stateless; it records escalations in the runtime's shared context).
pub struct Root;

/// The root's arguments and state: the runtime's shared context.
pub struct RootState {
    pub(crate) ctx: Arc<Ctx>,
}

impl Actor for Root {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = RootState;

    async fn pre_start(
        &self,
        _myself: ActorRef<RootMsg>,
        state: RootState,
    ) -> Result<RootState, ActorProcessingErr> {
        Ok(state)
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<RootMsg>,
        event: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let ctx = &state.ctx;
        let (cell, why) = match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("failed: {err}")),
            _ => return Ok(()),
        };
        if !ctx.shutting_down.load(Ordering::SeqCst) {
            let name = cell.get_name().unwrap_or_else(|| cell.get_id().to_string());
            tracing::error!(supervisor = %name, reason = %why, "supervisor escalated: runtime unhealthy");
            lock(&ctx.escalations).push(format!("{name}: {why}"));
        }
        Ok(())
    }
}

/// The supervision tree of one runtime.
pub(super) struct Tree {
    pub root: ActorRef<RootMsg>,
    pub shards: ActorRef<SupMsg>,
    pub tours: ActorRef<SupMsg>,
    pub carts: ActorRef<SupMsg>,
}

impl Tree {
    /// Spawns the root and the three supervisors under it.
    pub async fn spawn(ctx: &Arc<Ctx>) -> Result<Tree, RuntimeError> {
        let ns = &ctx.config.namespace;
        let unavailable = |e: ractor::SpawnErr| RuntimeError::Unavailable(e.to_string());
        let (root, _) = Actor::spawn(
            Some(format!("{ns}supervisor:root")),
            Root,
            RootState { ctx: ctx.clone() },
        )
        .await
        .map_err(unavailable)?;
        let mut sups = Vec::new();
        for name in ["shards", "tours", "carts"] {
            let spawned = Actor::spawn_linked(
                Some(format!("{ns}supervisor:{name}")),
                Supervisor,
                SupArgs { ctx: ctx.clone() },
                root.get_cell(),
            )
            .await;
            match spawned {
                Ok((sup, _)) => sups.push(sup),
                Err(e) => {
                    ctx.shutting_down.store(true, Ordering::SeqCst);
                    root.stop_children(None);
                    root.stop(None);
                    return Err(unavailable(e));
                }
            }
        }
        let [shards, tours, carts] = <[ActorRef<SupMsg>; 3]>::try_from(sups)
            .unwrap_or_else(|_| unreachable!("three supervisors"));
        Ok(Tree {
            root,
            shards,
            tours,
            carts,
        })
    }

    /// The supervisors in stopping order: tours (and reminders) and carts first, shards last.
    pub fn supervisors(&self) -> [&ActorRef<SupMsg>; 3] {
        [&self.tours, &self.carts, &self.shards]
    }

    /// Stops everything without waiting (a failed start).
    pub fn stop(&self) {
        for sup in self.supervisors() {
            sup.stop_children(None);
            sup.stop(None);
        }
        self.root.stop(None);
    }

    /// Stops the supervisors (children first), then the root.
    pub async fn stop_and_wait(&self, wait: std::time::Duration) {
        for sup in self.supervisors() {
            sup.stop_children_and_wait(Some("shutdown".into()), Some(wait))
                .await;
            let _ = sup.stop_and_wait(Some("shutdown".into()), Some(wait)).await;
        }
        let _ = self
            .root
            .stop_and_wait(Some("shutdown".into()), Some(wait))
            .await;
    }

    /// Whether the whole tree runs and no supervisor escalated.
    pub fn healthy(&self, ctx: &Ctx) -> bool {
        lock(&ctx.escalations).is_empty()
            && self.root.get_status() == ActorStatus::Running
            && self
                .supervisors()
                .iter()
                .all(|s| s.get_status() == ActorStatus::Running)
    }
}
