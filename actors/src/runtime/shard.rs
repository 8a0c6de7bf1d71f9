//! `ShardActor`: one per H3 cell at the shard resolution (registry name `shard:{cell}`), the
//! single writer of the calendars of the realtors homed in that cell. Its state is an
//! [`engine::RealtorIndex`]; a reservation re-checks CONTRACT 5.3 inside the actor, so a stale
//! search result can never double-book. Built from the store in `pre_start`, so a restarted
//! shard holds every stored booking again.

use std::collections::HashMap;
use std::sync::Arc;

use engine::matching::index::UnknownRealtor;
use engine::{
    Booking, Decision, Policy, Realtor, RealtorId, RealtorIndex, RealtorStatus, ReserveError,
    SearchScratch, TourId, TourPlan,
};
use h3o::CellIndex;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::ctx::Ctx;
use crate::availability_view::ViewEntry;

/// Messages of a [`ShardActor`]. Requests carry an [`RpcReplyPort`]; callers give a timeout.
pub enum ShardMsg {
    /// The exact decision among this shard's realtors.
    Search {
        /// The tour.
        plan: Arc<TourPlan>,
        /// How to choose.
        policy: Arc<dyn Policy>,
        /// Distance of a feasible realtor another shard already found: only those who might
        /// still win are searched for ([`engine::RealtorIndex::search_beating`]).
        known_km: Option<f64>,
        /// The decision.
        reply: RpcReplyPort<Decision>,
    },
    /// Books `plan` for `realtor` at `start` after re-checking CONTRACT 5.3 (tentative until
    /// confirmed).
    Reserve {
        /// Who.
        realtor: RealtorId,
        /// The tour.
        plan: Arc<TourPlan>,
        /// Start, UTC seconds.
        start: i64,
        /// The booking, or why not.
        reply: RpcReplyPort<Result<Booking, ReserveError>>,
    },
    /// The booking is stored: keep it (restores it if this shard was rebuilt meanwhile).
    Confirm {
        /// Who.
        realtor: RealtorId,
        /// The stored booking.
        booking: Booking,
        /// Done.
        reply: RpcReplyPort<()>,
    },
    /// Frees the time `tour` held on `realtor`'s calendar.
    Release {
        /// Who.
        realtor: RealtorId,
        /// Which tour.
        tour: TourId,
        /// The freed booking, if there was one.
        reply: RpcReplyPort<Option<Booking>>,
    },
    /// Re-reads the stored active bookings of this shard's realtors and restores missing ones.
    Resync(RpcReplyPort<()>),
    /// Adds a realtor or replaces their profile (their calendar stays).
    UpsertRealtor(Realtor, RpcReplyPort<()>),
    /// Sets a realtor's status.
    SetStatus {
        /// Who.
        realtor: RealtorId,
        /// The new status.
        status: RealtorStatus,
        /// Done, or unknown here.
        reply: RpcReplyPort<Result<(), UnknownRealtor>>,
    },
    /// A realtor's profile.
    GetRealtor(RealtorId, RpcReplyPort<Option<Realtor>>),
    /// Removes a realtor (moving to another shard), returning their profile and bookings.
    Remove(RealtorId, RpcReplyPort<Option<(Realtor, Vec<Booking>)>>),
    /// Takes over a realtor with their bookings (moved from another shard).
    Adopt(Realtor, Vec<Booking>, RpcReplyPort<()>),
    /// Realtors able to take a one-stop tour of `plan` within `radius_km`.
    Available {
        /// A one-stop plan at the place asked about.
        plan: Arc<TourPlan>,
        /// How far, km.
        radius_km: f64,
        /// `(realtor, km, earliest start)`.
        reply: RpcReplyPort<Vec<(RealtorId, f64, i64)>>,
    },
    /// Sends every realtor's entry to the availability view's publisher, then replies with how
    /// many (0 when there is no view).
    PublishAll(RpcReplyPort<usize>),
    /// Every realtor's bookings (tests and diagnostics).
    Bookings(RpcReplyPort<Vec<(RealtorId, Vec<Booking>)>>),
    /// Fault injection for tests: panics inside the handler.
    #[doc(hidden)]
    Crash,
}

/// What a shard starts from when the runtime already loaded it (start-up); `None` in
/// [`ShardArgs::seed`] means "load from the store" (restart).
pub struct ShardSeed {
    /// Realtors homed in the cell.
    pub realtors: Vec<Realtor>,
    /// Their active bookings.
    pub bookings: Vec<(RealtorId, Booking)>,
}

/// Start-up arguments of a shard.
pub struct ShardArgs {
    pub(crate) ctx: Arc<Ctx>,
    /// The shard's cell.
    pub cell: CellIndex,
    /// Preloaded state, or `None` to load it from the store.
    pub seed: Option<ShardSeed>,
}

/// The shard actor (stateless; see [`ShardState`]).
pub struct ShardActor;

/// A shard's state: the index of its realtors and which of its bookings are not yet stored.
pub struct ShardState {
    ctx: Arc<Ctx>,
    cell: CellIndex,
    index: RealtorIndex,
    /// Reservations not yet confirmed as stored, by tour.
    tentative: HashMap<TourId, RealtorId>,
    scratch: SearchScratch,
    rebuilt: bool,
}

impl ShardState {
    /// Hands `realtor`'s current entry (or their absence) to the availability view, if any.
    fn publish(&self, realtor: RealtorId) {
        let Some(view) = &self.ctx.view_changes else {
            return;
        };
        let entry = self.index.get(realtor).map(|(r, calendar)| {
            ViewEntry::of(
                r,
                calendar,
                self.ctx.config.clock.now(),
                self.ctx.config.visit_minutes,
            )
        });
        let _ = view.send((self.cell, realtor, entry));
    }

    /// Publishes every realtor of the shard; how many.
    fn publish_all(&self) -> usize {
        if self.ctx.view_changes.is_none() {
            return 0;
        }
        let ids: Vec<RealtorId> = self.index.iter().map(|(r, _)| r.id).collect();
        for id in &ids {
            self.publish(*id);
        }
        ids.len()
    }

    fn radius_of(&self, realtor: RealtorId) -> f64 {
        self.index
            .get(realtor)
            .map_or(engine::realtor::MAX_SERVICE_RADIUS_KM, |(r, _)| {
                r.service_radius_km()
            })
    }
}

impl Actor for ShardActor {
    type Msg = ShardMsg;
    type State = ShardState;
    type Arguments = ShardArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<ShardMsg>,
        args: ShardArgs,
    ) -> Result<ShardState, ActorProcessingErr> {
        let ShardArgs { ctx, cell, seed } = args;
        let rebuilt = seed.is_none();
        let seed = match seed {
            Some(seed) => seed,
            None => {
                let res = ctx.config.shard_resolution;
                let realtors: Vec<Realtor> = ctx
                    .store
                    .load_realtors()
                    .await?
                    .into_iter()
                    .filter(|r| r.home.cell(res) == cell)
                    .collect();
                let bookings = ctx.store.load_active_bookings().await?;
                ShardSeed { realtors, bookings }
            }
        };
        let mut index = RealtorIndex::new(ctx.config.search_resolution);
        for r in seed.realtors {
            ctx.set_realtor_cell(r.id, cell);
            index.upsert(r);
        }
        for (realtor, booking) in seed.bookings {
            // Bookings of realtors homed elsewhere are not this shard's.
            let _ = index.restore(realtor, booking);
        }
        ctx.add_shard_cell(cell);
        Ok(ShardState {
            ctx,
            cell,
            index,
            tentative: HashMap::new(),
            scratch: SearchScratch::default(),
            rebuilt,
        })
    }

    async fn post_start(
        &self,
        _myself: ActorRef<ShardMsg>,
        state: &mut ShardState,
    ) -> Result<(), ActorProcessingErr> {
        if state.rebuilt {
            state.publish_all();
            // Reservations that were never stored are gone: time may have come free.
            state
                .ctx
                .availability_changed(state.cell, engine::realtor::MAX_SERVICE_RADIUS_KM);
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<ShardMsg>,
        message: ShardMsg,
        state: &mut ShardState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ShardMsg::Search {
                plan,
                policy,
                known_km,
                reply,
            } => {
                // A tour searches only while it holds no reservation: one still here is left
                // over from a tour actor that failed before storing it.
                if let Some(realtor) = state.tentative.remove(&plan.tour_id) {
                    state.index.release(realtor, plan.tour_id);
                }
                let decision = state.index.search_beating(
                    &plan,
                    policy.as_ref(),
                    known_km,
                    &mut state.scratch,
                );
                let _ = reply.send(decision);
            }
            ShardMsg::Reserve {
                realtor,
                plan,
                start,
                reply,
            } => {
                let result = state.index.reserve(realtor, &plan, start);
                if result.is_ok() {
                    state.tentative.insert(plan.tour_id, realtor);
                }
                let _ = reply.send(result);
            }
            ShardMsg::Confirm {
                realtor,
                booking,
                reply,
            } => {
                state.tentative.remove(&booking.tour_id);
                let _ = state.index.restore(realtor, booking);
                state.publish(realtor);
                let _ = reply.send(());
            }
            ShardMsg::Release {
                realtor,
                tour,
                reply,
            } => {
                state.tentative.remove(&tour);
                let freed = state.index.release(realtor, tour);
                if freed.is_some() {
                    state.publish(realtor);
                    let radius = state.radius_of(realtor);
                    state.ctx.availability_changed(state.cell, radius);
                }
                let _ = reply.send(freed);
            }
            ShardMsg::Resync(reply) => {
                for (realtor, booking) in state.ctx.store.load_active_bookings().await? {
                    let _ = state.index.restore(realtor, booking);
                }
                let _ = reply.send(());
            }
            ShardMsg::UpsertRealtor(realtor, reply) => {
                let (id, radius) = (realtor.id, realtor.service_radius_km());
                state.index.upsert(realtor);
                state.ctx.set_realtor_cell(id, state.cell);
                state.publish(id);
                state.ctx.availability_changed(state.cell, radius);
                let _ = reply.send(());
            }
            ShardMsg::SetStatus {
                realtor,
                status,
                reply,
            } => {
                let result = state.index.set_status(realtor, status);
                if result.is_ok() {
                    state.publish(realtor);
                }
                if result.is_ok() && status == RealtorStatus::Available {
                    let radius = state.radius_of(realtor);
                    state.ctx.availability_changed(state.cell, radius);
                }
                let _ = reply.send(result);
            }
            ShardMsg::GetRealtor(id, reply) => {
                let _ = reply.send(state.index.get(id).map(|(r, _)| r.clone()));
            }
            ShardMsg::Remove(id, reply) => {
                let removed = state
                    .index
                    .remove(id)
                    .map(|(r, cal)| (r, cal.bookings().to_vec()));
                state.tentative.retain(|_, r| *r != id);
                state.publish(id);
                let _ = reply.send(removed);
            }
            ShardMsg::Adopt(realtor, bookings, reply) => {
                let (id, radius) = (realtor.id, realtor.service_radius_km());
                state.index.upsert(realtor);
                for b in bookings {
                    let _ = state.index.restore(id, b);
                }
                state.ctx.set_realtor_cell(id, state.cell);
                state.publish(id);
                state.ctx.availability_changed(state.cell, radius);
                let _ = reply.send(());
            }
            ShardMsg::Available {
                plan,
                radius_km,
                reply,
            } => {
                let _ = reply.send(state.index.available_near(&plan, radius_km));
            }
            ShardMsg::PublishAll(reply) => {
                let _ = reply.send(state.publish_all());
            }
            ShardMsg::Bookings(reply) => {
                let all = state
                    .index
                    .iter()
                    .map(|(r, cal)| (r.id, cal.bookings().to_vec()))
                    .collect();
                let _ = reply.send(all);
            }
            ShardMsg::Crash => panic!("injected shard failure"),
        }
        Ok(())
    }
}
