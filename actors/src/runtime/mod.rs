//! The actor runtime (DESIGN "actors") and [`Runtime`], the cheap handle the HTTP API calls.
//!
//! Tree: under `supervisor:root` (see [`root`]), `supervisor:shards` owns the `shard:{cell}`
//! actors, `supervisor:tours` the `tour:{uuid}` actors and the reminder scheduler,
//! `supervisor:carts` the `cart:{customer}` actors; a task consumes the `payments` topic.
//! Names are resolved through
//! ractor's registry, prefixed by [`RuntimeConfig::namespace`] (empty by default; tests that
//! run several runtimes in one process give each its own).

pub mod cart;
pub mod clock;
mod commands;
mod consumer;
mod ctx;
pub mod notification_worker;
pub mod notifier;
mod peers;
pub mod root;
pub mod shard;
pub mod supervisor;
mod throttled;
pub mod tour;
mod view_publisher;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use engine::geo::{ring, ring_bound_km};
use engine::{
    IllegalTransition, ListingId, Location, Nearest, Policy, Realtor, RealtorId, RealtorStatus,
    TimeWindow, TourId, TourPlan,
};
use h3o::{CellIndex, Resolution};
use ractor::ActorRef;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::bus::{topics, EventBus};
use crate::payments::{self, PaymentEvent, PaymentSucceeded};
use crate::store::{CreateOutcome, NewTour, Store, StoreError, TourRecord};
pub use cart::{Added, CartError, CartView, Checkout};
pub use clock::{Clock, SystemClock, TokioClock};
use consumer::consume_payments;
pub(crate) use ctx::lock;
use ctx::{ask, call_shard, Ctx};
pub use notifier::{MailNotifier, Notifier};
use root::Tree;
use shard::{ShardMsg, ShardSeed};
pub use supervisor::SupervisionConfig;
use supervisor::{ChildSpec, SupMsg};
use throttled::Throttled;
pub use throttled::TourChangeObserver;
use tour::{Command, TourMsg};

/// Tour changes a slow [`Runtime::tour_changes`] receiver may fall behind before it misses some.
const TOUR_CHANGES_BUFFER: usize = 4096;

/// Consumer group of the payments consumer.
pub const PAYMENTS_GROUP: &str = "tourwise";

/// How the runtime matches and waits.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How to choose among feasible realtors (CONTRACT 5.4).
    pub policy: Arc<dyn Policy>,
    /// Minutes per listing visit (CONTRACT 5.1).
    pub visit_minutes: i64,
    /// Resolution of the shard cells (one shard actor per occupied cell).
    pub shard_resolution: Resolution,
    /// Resolution of each shard's realtor index.
    pub search_resolution: Resolution,
    /// How long an assigned realtor has to accept before the tour is matched again.
    pub accept_timeout: Duration,
    /// Reminders before a tour's start (default 24 h and 1 h).
    pub reminder_offsets: Vec<Duration>,
    /// Timeout of every actor call.
    pub call_timeout: Duration,
    /// Restart policy of the supervisors.
    pub supervision: SupervisionConfig,
    /// Prefix of every registry name (`{namespace}shard:{cell}`).
    pub namespace: String,
    /// Store operations in flight at most (the rest queue here, not on the pool's timeout).
    pub store_concurrency: usize,
    /// A cart actor without a message for this long is stopped (passivated).
    pub cart_idle_timeout: Duration,
    /// The calendar time of the runtime's decisions (reminders, checkout windows).
    pub clock: Arc<dyn Clock>,
    /// Where due notifications go; `None`: a [`MailNotifier`] with [`RuntimeConfig::mailer`]
    /// over the runtime's store.
    pub notifier: Option<Arc<dyn Notifier>>,
    /// How emails are delivered; `None`: [`crate::mail::LogMailer`] (logged, not sent).
    pub mailer: Option<Arc<dyn crate::mail::Mailer>>,
    /// Where the shards publish availability (Redis, `--redis-url`); `None`: nowhere, the
    /// actors answer availability themselves.
    pub availability_view: Option<crate::availability_view::RedisView>,
    /// This process's id among several `serve` processes sharing the database and the
    /// brokers (the store marks its events with it: `SeaStore::with_origin`). With a remote
    /// bus, the runtime then follows the other processes' bookings ([`peers`]).
    pub origin: Option<String>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            policy: Arc::new(Nearest),
            visit_minutes: engine::tour::DEFAULT_VISIT_MINUTES,
            shard_resolution: Resolution::Five,
            search_resolution: engine::matching::index::DEFAULT_SEARCH_RESOLUTION,
            accept_timeout: Duration::from_secs(15 * 60),
            reminder_offsets: vec![Duration::from_secs(24 * 3600), Duration::from_secs(3600)],
            call_timeout: Duration::from_secs(10),
            supervision: SupervisionConfig::default(),
            namespace: String::new(),
            store_concurrency: 8,
            cart_idle_timeout: Duration::from_secs(10 * 60),
            clock: Arc::new(SystemClock),
            notifier: None,
            mailer: None,
            availability_view: None,
            origin: None,
        }
    }
}

/// Why a runtime call failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No such tour.
    #[error("tour {0:?} not found")]
    NotFound(TourId),
    /// The tour's state does not allow this.
    #[error(transparent)]
    Illegal(IllegalTransition),
    /// The tour changed concurrently.
    #[error("the tour changed concurrently")]
    Conflict,
    /// The store failed.
    #[error("store error")]
    Store(#[source] StoreError),
    /// An actor did not answer (restarting, or the runtime is stopping).
    #[error("runtime unavailable: {0}")]
    Unavailable(String),
    /// No realtor profile with this id.
    #[error("realtor {0:?} not found")]
    UnknownRealtor(RealtorId),
    /// The request cannot be planned (e.g. a tour without listings).
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl From<StoreError> for RuntimeError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(id) => RuntimeError::NotFound(id),
            StoreError::Conflict(_) => RuntimeError::Conflict,
            other => RuntimeError::Store(other),
        }
    }
}

struct Core {
    ctx: Arc<Ctx>,
    /// Every committed tour change (see [`Runtime::tour_changes`]).
    changes: tokio::sync::broadcast::Sender<TourRecord>,
    /// Told of every committed tour change before it is broadcast (set once).
    observer: Arc<std::sync::OnceLock<TourChangeObserver>>,
    /// Woken whenever a change wrote outbox rows.
    outbox_written: Arc<tokio::sync::Notify>,
    /// Uncommitted messages of the payments topic at the last measure; -1 while unknown.
    consumer_lag: std::sync::atomic::AtomicI64,
    /// Payment messages sent to the dead-letter topic.
    dead_lettered: std::sync::atomic::AtomicU64,
    /// Payment events whose payment already had its tour (absorbed by the inbox).
    duplicates: std::sync::atomic::AtomicU64,
    shards: ActorRef<SupMsg>,
    tours: ActorRef<SupMsg>,
    /// The root, these two supervisors and the carts' (see [`root`]).
    tree: Tree,
}

struct Tasks {
    stop: watch::Sender<bool>,
    /// The payments consumer and, scaled out, the peers' availability follower.
    consumers: Mutex<Vec<JoinHandle<()>>>,
    relay: Mutex<Option<(sea_orm::DatabaseConnection, JoinHandle<()>)>>,
    relay_stats: Arc<crate::outbox::RelayStats>,
    /// Writes the availability view to Redis, when configured.
    view_publisher: Mutex<Option<JoinHandle<()>>>,
}

/// The running actor system: a cheap [`Clone`] handle.
#[derive(Clone)]
pub struct Runtime {
    core: Arc<Core>,
    tasks: Arc<Tasks>,
}

impl Runtime {
    /// Recovers realtors, bookings and open tours from the store, starts the supervisor tree
    /// (one shard per occupied cell, one actor per open tour) and the payments consumer.
    ///
    /// # Errors
    /// The store fails, or an actor cannot start (e.g. a registry name is taken).
    pub async fn start(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        config: RuntimeConfig,
    ) -> Result<Runtime, RuntimeError> {
        let (changes, _) = tokio::sync::broadcast::channel(TOUR_CHANGES_BUFFER);
        let outbox_written = Arc::new(tokio::sync::Notify::new());
        let observer = Arc::new(std::sync::OnceLock::new());
        let store: Arc<dyn Store> = Arc::new(Throttled::new(
            store,
            config.store_concurrency,
            changes.clone(),
            observer.clone(),
            outbox_written.clone(),
        ));
        let view = config.availability_view.clone();
        let (view_changes, view_rx) = match view {
            Some(_) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let ctx = Arc::new(Ctx::new(store, bus, config, changes.clone(), view_changes));
        let tree = Tree::spawn(&ctx).await?;
        let core = Arc::new(Core {
            ctx,
            changes,
            observer,
            outbox_written,
            consumer_lag: std::sync::atomic::AtomicI64::new(-1),
            dead_lettered: std::sync::atomic::AtomicU64::new(0),
            duplicates: std::sync::atomic::AtomicU64::new(0),
            shards: tree.shards.clone(),
            tours: tree.tours.clone(),
            tree,
        });
        let recovered = match core.recover().await {
            // After the tours: it loads every reminder they (re)scheduled.
            Ok(()) => core.start_child(&core.tours, ChildSpec::Reminders).await,
            Err(err) => Err(err),
        };
        if let Err(err) = recovered {
            core.ctx.shutting_down.store(true, Ordering::SeqCst);
            core.tree.stop();
            return Err(err);
        }
        let (stop, stopped) = watch::channel(false);
        let view_publisher = view.zip(view_rx).map(|(view, rx)| {
            tokio::spawn(view_publisher::run(
                core.ctx.clone(),
                view,
                rx,
                stopped.clone(),
            ))
        });
        let mut consumers = Vec::new();
        if let Some(origin) = core.ctx.config.origin.clone() {
            if core.ctx.bus.is_remote() {
                let started = Utc::now();
                let follower = peers::follow_peers(core.clone(), origin, started, stopped.clone());
                consumers.push(tokio::spawn(follower));
            }
        }
        consumers.push(tokio::spawn(consume_payments(core.clone(), stopped)));
        Ok(Runtime {
            core,
            tasks: Arc::new(Tasks {
                stop,
                consumers: Mutex::new(consumers),
                relay: Mutex::new(None),
                relay_stats: Arc::default(),
                view_publisher: Mutex::new(view_publisher),
            }),
        })
    }

    /// Creates the tour of a succeeded payment (once per payment) and starts matching it;
    /// returns once the tour is durably stored.
    ///
    /// # Errors
    /// The store fails, or the payment cannot be planned.
    pub async fn submit_payment(
        &self,
        envelope_event_id: Uuid,
        p: PaymentSucceeded,
    ) -> Result<TourId, RuntimeError> {
        self.core.submit_payment(envelope_event_id, p).await
    }

    /// Stores a realtor profile and puts it in its shard (moving their calendar if their home
    /// moved to another shard).
    ///
    /// # Errors
    /// The store fails (e.g. no `users` row) or a shard does not answer.
    pub async fn upsert_realtor(&self, r: Realtor) -> Result<(), RuntimeError> {
        let ctx = &self.core.ctx;
        ctx.store
            .upsert_realtor_profiles(std::slice::from_ref(&r))
            .await?;
        self.core.place_realtor(r).await
    }

    /// Sets a realtor's status (stored, then applied in their shard).
    ///
    /// # Errors
    /// [`RuntimeError::UnknownRealtor`], the store fails, or the shard does not answer.
    pub async fn set_realtor_status(
        &self,
        id: RealtorId,
        s: RealtorStatus,
    ) -> Result<(), RuntimeError> {
        let ctx = &self.core.ctx;
        let cell = ctx
            .realtor_cell(id)
            .ok_or(RuntimeError::UnknownRealtor(id))?;
        call_shard(ctx, cell, |reply| ShardMsg::GetRealtor(id, reply))
            .await?
            .ok_or(RuntimeError::UnknownRealtor(id))?;
        // Stored first (with `realtor.status_changed` when it changed), then applied.
        ctx.store.set_realtor_status(id, s).await?;
        call_shard(ctx, cell, |reply| ShardMsg::SetStatus {
            realtor: id,
            status: s,
            reply,
        })
        .await?
        .map_err(|_| RuntimeError::UnknownRealtor(id))
    }

    /// Calls `observer` with every tour change committed from now on, synchronously: before
    /// the change is broadcast on [`Runtime::tour_changes`] and before the command that made it
    /// returns. For caches that must never serve what a caller has just changed; keep it
    /// quick. Only one observer can be set: `false` when one already is.
    pub fn observe_tour_changes(&self, observer: TourChangeObserver) -> bool {
        self.core.observer.set(observer).is_ok()
    }

    /// Every tour change committed from now on (created, assigned, accepted, cancelled, ...),
    /// as the stored record. A receiver that falls more than a few thousand changes behind gets
    /// `RecvError::Lagged` and should re-read the tours it follows.
    #[must_use]
    pub fn tour_changes(&self) -> tokio::sync::broadcast::Receiver<TourRecord> {
        self.core.changes.subscribe()
    }

    /// Starts publishing the outbox of `db` (the database of the store) on the runtime's bus,
    /// until [`Runtime::shutdown`], which publishes what is left first. Call it once.
    pub fn start_outbox_relay(&self, db: sea_orm::DatabaseConnection) {
        let handle = crate::outbox::spawn_relay(
            db.clone(),
            self.core.ctx.bus.clone(),
            self.core.outbox_written.clone(),
            self.tasks.relay_stats.clone(),
            self.tasks.stop.subscribe(),
        );
        *lock(&self.tasks.relay) = Some((db, handle));
    }

    /// Wakes the outbox relay: call after committing outbox rows outside the runtime (e.g. the
    /// API's `payment.succeeded`), so they go out now rather than at the next poll.
    pub fn outbox_written(&self) {
        self.core.outbox_written.notify_one();
    }

    /// Events the outbox relay has published.
    #[must_use]
    pub fn events_published(&self) -> u64 {
        self.tasks.relay_stats.published.load(Ordering::Relaxed)
    }

    /// Uncommitted messages of the `payments` topic at the last measure (every 2 s), `None`
    /// before the first.
    #[must_use]
    pub fn consumer_lag(&self) -> Option<i64> {
        let lag = self.core.consumer_lag.load(Ordering::Relaxed);
        (lag >= 0).then_some(lag)
    }

    /// Payment messages sent to `payments.dlq` so far.
    #[must_use]
    pub fn dead_lettered(&self) -> u64 {
        self.core.dead_lettered.load(Ordering::Relaxed)
    }

    /// Payment events absorbed so far because their payment already had a tour (duplicates,
    /// and redeliveries after a crash).
    #[must_use]
    pub fn duplicates_absorbed(&self) -> u64 {
        self.core.duplicates.load(Ordering::Relaxed)
    }

    /// Whether the supervision tree runs whole (false once a supervisor escalated after too
    /// many restarts of its children; see [`root`]).
    #[must_use]
    pub fn healthy(&self) -> bool {
        self.core.tree.healthy(&self.core.ctx)
    }

    /// What escalated to the root so far (`"{supervisor}: {reason}"`), for logs and `/readyz`.
    #[must_use]
    pub fn escalations(&self) -> Vec<String> {
        lock(&self.core.ctx.escalations).clone()
    }

    /// Tours whose matching is queued or running (0 when the runtime is idle).
    #[must_use]
    pub fn matching_in_flight(&self) -> usize {
        lock(&self.core.ctx.matching).len()
    }

    /// Unassignable tours waiting for availability.
    #[must_use]
    pub fn parked(&self) -> usize {
        lock(&self.core.ctx.parked).len()
    }

    /// Children restarted by the supervisors so far.
    #[must_use]
    pub fn restarts(&self) -> u64 {
        self.core.ctx.restarts.load(Ordering::SeqCst)
    }

    /// Every booking held by the shards, by realtor (diagnostics and tests).
    ///
    /// # Errors
    /// A shard does not answer.
    pub async fn shard_bookings(
        &self,
    ) -> Result<Vec<(RealtorId, Vec<engine::Booking>)>, RuntimeError> {
        let ctx = &self.core.ctx;
        let mut all = Vec::new();
        for cell in ctx.shard_cells() {
            all.extend(call_shard(ctx, cell, ShardMsg::Bookings).await?);
        }
        Ok(all)
    }

    /// Fault injection for tests: makes the shard of `cell` panic.
    #[doc(hidden)]
    pub fn crash_shard(&self, cell: CellIndex) -> bool {
        self.core
            .ctx
            .shard(cell)
            .is_some_and(|s| s.cast(ShardMsg::Crash).is_ok())
    }

    /// Fault injection for tests: makes the actor of `tour` panic.
    #[doc(hidden)]
    pub fn crash_tour(&self, tour: TourId) -> bool {
        self.core
            .ctx
            .tour(tour)
            .is_some_and(|t| t.cast(TourMsg::Crash).is_ok())
    }

    /// Stops the payments consumer, then the tour and cart actors, then the shards.
    pub async fn shutdown(self) {
        let ctx = &self.core.ctx;
        ctx.shutting_down.store(true, Ordering::SeqCst);
        let _ = self.tasks.stop.send(true);
        let consumers = std::mem::take(&mut *lock(&self.tasks.consumers));
        for consumer in consumers {
            let _ = consumer.await;
        }
        self.core.tree.stop_and_wait(ctx.config.call_timeout).await;
        let view_publisher = lock(&self.tasks.view_publisher).take();
        if let Some(view_publisher) = view_publisher {
            let _ = view_publisher.await;
        }
        let relay = lock(&self.tasks.relay).take();
        if let Some((db, handle)) = relay {
            let _ = handle.await;
            // The last changes' events: publish what the bus takes within a few seconds; the
            // rest stays in the outbox for the next start.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while tokio::time::Instant::now() < deadline {
                match crate::outbox::relay_once(&db, ctx.bus.as_ref(), &self.tasks.relay_stats)
                    .await
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    }
}

impl Core {
    async fn recover(&self) -> Result<(), RuntimeError> {
        let ctx = &self.ctx;
        let res = ctx.config.shard_resolution;
        let mut seeds: HashMap<CellIndex, ShardSeed> = HashMap::new();
        let mut home: HashMap<RealtorId, CellIndex> = HashMap::new();
        for r in ctx.store.load_realtors().await? {
            let cell = r.home.cell(res);
            home.insert(r.id, cell);
            seeds
                .entry(cell)
                .or_insert_with(|| ShardSeed {
                    realtors: Vec::new(),
                    bookings: Vec::new(),
                })
                .realtors
                .push(r);
        }
        for (realtor, booking) in ctx.store.load_active_bookings().await? {
            if let Some(seed) = home.get(&realtor).and_then(|c| seeds.get_mut(c)) {
                seed.bookings.push((realtor, booking));
            }
        }
        for (cell, seed) in seeds {
            self.start_child(&self.shards, ChildSpec::Shard(cell, Some(seed)))
                .await?;
        }
        for tour in ctx.store.load_open_tours().await? {
            self.start_child(&self.tours, ChildSpec::Tour(tour.id, Some(Box::new(tour))))
                .await?;
        }
        Ok(())
    }

    async fn start_child(
        &self,
        sup: &ActorRef<SupMsg>,
        spec: ChildSpec,
    ) -> Result<(), RuntimeError> {
        match ask(
            sup,
            |reply| SupMsg::Start(spec, reply),
            self.ctx.config.call_timeout,
        )
        .await
        {
            Some(Ok(())) => Ok(()),
            Some(Err(err)) => Err(RuntimeError::Unavailable(err)),
            None => Err(RuntimeError::Unavailable(
                "supervisor did not answer".into(),
            )),
        }
    }

    /// Puts a (stored) realtor profile in its shard, moving their calendar along when their
    /// home moved to another shard.
    async fn place_realtor(&self, r: Realtor) -> Result<(), RuntimeError> {
        let ctx = &self.ctx;
        let cell = r.home.cell(ctx.config.shard_resolution);
        let mut bookings = Vec::new();
        if let Some(old) = ctx.realtor_cell(r.id).filter(|old| *old != cell) {
            let id = r.id;
            if let Some((_, moved)) =
                call_shard(ctx, old, |reply| ShardMsg::Remove(id, reply)).await?
            {
                bookings = moved;
            }
        }
        self.ensure_shard(cell).await?;
        call_shard(ctx, cell, |reply| {
            ShardMsg::Adopt(r.clone(), bookings.clone(), reply)
        })
        .await
    }

    async fn ensure_shard(&self, cell: CellIndex) -> Result<(), RuntimeError> {
        if self.ctx.shard(cell).is_some() {
            return Ok(());
        }
        let seed = ShardSeed {
            realtors: Vec::new(),
            bookings: Vec::new(),
        };
        self.start_child(&self.shards, ChildSpec::Shard(cell, Some(seed)))
            .await
    }

    async fn submit_payment(
        &self,
        envelope_event_id: Uuid,
        p: PaymentSucceeded,
    ) -> Result<TourId, RuntimeError> {
        let ctx = &self.ctx;
        let plan = TourPlan::new(
            TourId(Uuid::now_v7()),
            &p.listings,
            p.window,
            ctx.config.visit_minutes,
            Vec::new(),
        )
        .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        let new = NewTour {
            tour_id: plan.tour_id,
            payment_id: p.payment_id,
            customer_id: p.customer_id,
            stops: plan.stops,
            window: p.window,
            duration_minutes: i32::try_from(plan.duration_seconds / 60).unwrap_or(i32::MAX),
            payment_event_id: envelope_event_id,
        };
        match ctx.store.create_tour_from_payment(new).await? {
            CreateOutcome::Created(record) => {
                let id = record.id;
                // Stored: a failure to start the actor now is retried by the supervisor.
                if let Err(err) = self
                    .start_child(&self.tours, ChildSpec::Tour(id, Some(record)))
                    .await
                {
                    tracing::warn!(tour = %id.0, %err, "tour actor not started yet");
                }
                Ok(id)
            }
            CreateOutcome::AlreadyExists(id) => {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
                tracing::info!(payment = %p.payment_id.0, tour = %id.0, "duplicate payment absorbed: it already has its tour");
                if ctx.tour(id).is_none() {
                    if let Some(record) = ctx.store.get_tour(id).await? {
                        if !record.status.is_terminal() {
                            let _ = self
                                .start_child(
                                    &self.tours,
                                    ChildSpec::Tour(id, Some(Box::new(record))),
                                )
                                .await;
                        }
                    }
                }
                Ok(id)
            }
        }
    }
}
