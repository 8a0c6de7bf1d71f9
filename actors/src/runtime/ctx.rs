//! What every actor of one runtime shares: the ports, the configuration, the directory of
//! shards and realtors, and the parked (unassignable) tours waiting for availability.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use engine::geo::ring_bound_km;
use engine::{CustomerId, RealtorId, TourId};
use h3o::CellIndex;
use ractor::rpc::CallResult;
use ractor::{ActorRef, Message, RpcReplyPort};

use super::cart::CartMsg;
use super::notification_worker::WorkerMsg;
use super::notifier::{MailNotifier, Notifier};
use super::shard::ShardMsg;
use super::tour::TourMsg;
use super::view_publisher::ViewChange;
use super::{RuntimeConfig, RuntimeError};
use crate::bus::EventBus;
use crate::store::Store;

/// Locks a std mutex, ignoring poisoning (the data is a plain set; a panic elsewhere does
/// not leave it half-written).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Shared by the runtime facade and every actor.
pub(crate) struct Ctx {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub config: RuntimeConfig,
    /// Where due notifications go ([`RuntimeConfig::notifier`], or the mailer).
    pub notifier: Arc<dyn Notifier>,
    /// Every committed tour change (the notification worker follows it: a change may have
    /// written notifications).
    pub changes: tokio::sync::broadcast::Sender<crate::store::TourRecord>,
    /// Cells with a shard actor.
    pub shard_cells: RwLock<HashSet<CellIndex>>,
    /// Which shard holds each realtor.
    pub realtor_cells: RwLock<HashMap<RealtorId, CellIndex>>,
    /// Unassignable tours and the shard cell of their first listing.
    pub parked: Mutex<HashMap<TourId, CellIndex>>,
    /// Bumped on every availability change (release, upsert, status, shard rebuilt).
    pub epoch: AtomicU64,
    /// Tours with a matching or retry queued or running.
    pub matching: Mutex<HashSet<TourId>>,
    /// Restarts performed by the supervisors.
    pub restarts: AtomicU64,
    /// Set once shutdown begins: supervisors stop restarting.
    pub shutting_down: AtomicBool,
    /// Supervisors that escalated to the root (`"{name}: {reason}"`).
    pub escalations: Mutex<Vec<String>>,
    /// The availability view's publisher, when there is one.
    pub view_changes: Option<tokio::sync::mpsc::UnboundedSender<ViewChange>>,
}

impl Ctx {
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        config: RuntimeConfig,
        changes: tokio::sync::broadcast::Sender<crate::store::TourRecord>,
        view_changes: Option<tokio::sync::mpsc::UnboundedSender<ViewChange>>,
    ) -> Self {
        let notifier = config.notifier.clone().unwrap_or_else(|| {
            let mailer = config
                .mailer
                .clone()
                .unwrap_or_else(|| Arc::new(crate::mail::LogMailer));
            Arc::new(MailNotifier::new(
                store.clone(),
                mailer,
                config.clock.clone(),
            ))
        });
        Self {
            store,
            bus,
            config,
            notifier,
            changes,
            shard_cells: RwLock::default(),
            realtor_cells: RwLock::default(),
            parked: Mutex::default(),
            epoch: AtomicU64::new(0),
            matching: Mutex::default(),
            restarts: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            escalations: Mutex::default(),
            view_changes,
        }
    }

    /// Registry name of the shard of `cell`: `shard:{cell}` (after the namespace).
    pub fn shard_name(&self, cell: CellIndex) -> String {
        format!("{}shard:{cell}", self.config.namespace)
    }

    /// Registry name of a tour actor: `tour:{uuid}` (after the namespace).
    pub fn tour_name(&self, tour: TourId) -> String {
        format!("{}tour:{}", self.config.namespace, tour.0)
    }

    /// Registry name of a customer's cart actor: `cart:{uuid}` (after the namespace).
    pub fn cart_name(&self, customer: CustomerId) -> String {
        format!("{}cart:{}", self.config.namespace, customer.0)
    }

    pub fn cart(&self, customer: CustomerId) -> Option<ActorRef<CartMsg>> {
        ractor::registry::where_is(self.cart_name(customer)).map(ActorRef::from)
    }

    /// Registry name of the notification worker: `notifications` (after the namespace).
    pub fn worker_name(&self) -> String {
        format!("{}notifications", self.config.namespace)
    }

    pub fn notification_worker(&self) -> Option<ActorRef<WorkerMsg>> {
        ractor::registry::where_is(self.worker_name()).map(ActorRef::from)
    }

    /// Tells the notification worker that notifications of `tour` (or, for `None`, any) were
    /// written or cancelled (call after the write: if the worker is down, it loads them when
    /// it starts).
    pub fn notifications_changed(&self, tour: Option<TourId>) {
        if let Some(worker) = self.notification_worker() {
            let _ = worker.cast(WorkerMsg::Reload(tour));
        }
    }

    pub fn shard(&self, cell: CellIndex) -> Option<ActorRef<ShardMsg>> {
        ractor::registry::where_is(self.shard_name(cell)).map(ActorRef::from)
    }

    pub fn tour(&self, tour: TourId) -> Option<ActorRef<TourMsg>> {
        ractor::registry::where_is(self.tour_name(tour)).map(ActorRef::from)
    }

    pub fn shard_cells(&self) -> HashSet<CellIndex> {
        self.shard_cells
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn add_shard_cell(&self, cell: CellIndex) {
        self.shard_cells
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(cell);
    }

    pub fn realtor_cell(&self, realtor: RealtorId) -> Option<CellIndex> {
        self.realtor_cells
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&realtor)
            .copied()
    }

    pub fn set_realtor_cell(&self, realtor: RealtorId, cell: CellIndex) {
        self.realtor_cells
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(realtor, cell);
    }

    /// Marks `tour` as having a matching queued (before the message is sent).
    pub fn begin_matching(&self, tour: TourId) {
        lock(&self.matching).insert(tour);
    }

    pub fn end_matching(&self, tour: TourId) {
        lock(&self.matching).remove(&tour);
    }

    /// Parks an unassignable tour. `epoch` is what [`Ctx::epoch`] was when its last search
    /// began: if availability changed since, the caller must search again (returns `true`).
    pub fn park(&self, tour: TourId, cell: CellIndex, epoch: u64) -> bool {
        lock(&self.parked).insert(tour, cell);
        self.epoch.load(Ordering::SeqCst) != epoch
    }

    pub fn unpark(&self, tour: TourId) {
        lock(&self.parked).remove(&tour);
    }

    /// Availability changed in shard `cell` for realtors reaching `radius_km`: every parked
    /// tour that such a realtor could serve is asked to search again.
    pub fn availability_changed(&self, cell: CellIndex, radius_km: f64) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let res = self.config.shard_resolution;
        let woken: Vec<TourId> = lock(&self.parked)
            .iter()
            .filter(|(_, &tour_cell)| match tour_cell.grid_distance(cell) {
                Ok(0) => true,
                Ok(d) => ring_bound_km(res, u32::try_from(d - 1).unwrap_or(u32::MAX)) <= radius_km,
                Err(_) => true,
            })
            .map(|(&t, _)| t)
            .collect();
        for tour in woken {
            if let Some(actor) = self.tour(tour) {
                self.begin_matching(tour);
                if actor.cast(TourMsg::Retry).is_err() {
                    self.end_matching(tour);
                }
            }
        }
    }
}

/// Calls `actor` with the configured timeout; `None` when it did not answer (stopped,
/// failed while handling, or timed out).
pub(crate) async fn ask<M: Message, R: Send + 'static>(
    actor: &ActorRef<M>,
    build: impl FnOnce(RpcReplyPort<R>) -> M,
    timeout: Duration,
) -> Option<R> {
    match actor.call(build, Some(timeout)).await {
        Ok(CallResult::Success(r)) => Some(r),
        _ => None,
    }
}

/// Calls the shard of `cell`, retrying with a short backoff while it is (re)starting, until
/// the call timeout has passed. Every shard message is idempotent, so a retry is safe.
pub(crate) async fn call_shard<R: Send + 'static>(
    ctx: &Ctx,
    cell: CellIndex,
    build: impl Fn(RpcReplyPort<R>) -> ShardMsg,
) -> Result<R, RuntimeError> {
    let timeout = ctx.config.call_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = Duration::from_millis(2);
    loop {
        if let Some(shard) = ctx.shard(cell) {
            if let Some(r) = ask(&shard, &build, timeout).await {
                return Ok(r);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(RuntimeError::Unavailable(format!(
                "shard {cell} did not answer"
            )));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}
