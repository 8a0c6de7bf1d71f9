//! The actor runtime (DESIGN "actors") and [`Runtime`], the cheap handle the HTTP API calls.
//!
//! Tree: two supervisors (`supervisor:shards`, `supervisor:tours`) own the `shard:{cell}` and
//! `tour:{uuid}` actors; a task consumes the `payments` topic. Names are resolved through
//! ractor's registry, prefixed by [`RuntimeConfig::namespace`] (empty by default; tests that
//! run several runtimes in one process give each its own).

mod consumer;
mod ctx;
pub mod shard;
pub mod supervisor;
mod throttled;
pub mod tour;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use engine::geo::{ring, ring_bound_km};
use engine::{
    IllegalTransition, ListingId, Location, Nearest, Policy, Realtor, RealtorId, RealtorStatus,
    Stop, TimeWindow, TourId, TourPlan,
};
use h3o::{CellIndex, Resolution};
use ractor::{Actor, ActorRef};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::bus::{topics, EventBus};
use crate::payments::{self, PaymentEvent, PaymentSucceeded};
use crate::store::{CreateOutcome, NewTour, Store, StoreError, TourRecord};
use consumer::consume_payments;
pub(crate) use ctx::lock;
use ctx::{ask, call_shard, Ctx};
use shard::{ShardMsg, ShardSeed};
pub use supervisor::SupervisionConfig;
use supervisor::{ChildSpec, SupArgs, SupMsg, Supervisor};
use throttled::Throttled;
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
    /// Woken whenever a change wrote outbox rows.
    outbox_written: Arc<tokio::sync::Notify>,
    /// Uncommitted messages of the payments topic at the last measure; -1 while unknown.
    consumer_lag: std::sync::atomic::AtomicI64,
    /// Payment messages sent to the dead-letter topic.
    dead_lettered: std::sync::atomic::AtomicU64,
    shards: ActorRef<SupMsg>,
    tours: ActorRef<SupMsg>,
}

struct Tasks {
    stop: watch::Sender<bool>,
    consumer: Mutex<Option<JoinHandle<()>>>,
    relay: Mutex<Option<(sea_orm::DatabaseConnection, JoinHandle<()>)>>,
    relay_stats: Arc<crate::outbox::RelayStats>,
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
        let store: Arc<dyn Store> = Arc::new(Throttled::new(
            store,
            config.store_concurrency,
            changes.clone(),
            outbox_written.clone(),
        ));
        let ctx = Arc::new(Ctx::new(store, bus, config));
        let ns = ctx.config.namespace.clone();
        let unavailable = |e: ractor::SpawnErr| RuntimeError::Unavailable(e.to_string());
        let (shards, _) = Actor::spawn(
            Some(format!("{ns}supervisor:shards")),
            Supervisor,
            SupArgs { ctx: ctx.clone() },
        )
        .await
        .map_err(unavailable)?;
        let (tours, _) = match Actor::spawn(
            Some(format!("{ns}supervisor:tours")),
            Supervisor,
            SupArgs { ctx: ctx.clone() },
        )
        .await
        {
            Ok(started) => started,
            Err(e) => {
                shards.stop(None);
                return Err(unavailable(e));
            }
        };
        let core = Arc::new(Core {
            ctx,
            changes,
            outbox_written,
            consumer_lag: std::sync::atomic::AtomicI64::new(-1),
            dead_lettered: std::sync::atomic::AtomicU64::new(0),
            shards,
            tours,
        });
        if let Err(err) = core.recover().await {
            core.ctx.shutting_down.store(true, Ordering::SeqCst);
            for sup in [&core.tours, &core.shards] {
                sup.stop_children(None);
                sup.stop(None);
            }
            return Err(err);
        }
        let (stop, stopped) = watch::channel(false);
        let consumer = tokio::spawn(consume_payments(core.clone(), stopped));
        Ok(Runtime {
            core,
            tasks: Arc::new(Tasks {
                stop,
                consumer: Mutex::new(Some(consumer)),
                relay: Mutex::new(None),
                relay_stats: Arc::default(),
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
        self.core.ensure_shard(cell).await?;
        call_shard(ctx, cell, |reply| {
            ShardMsg::Adopt(r.clone(), bookings.clone(), reply)
        })
        .await
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
        let mut realtor = call_shard(ctx, cell, |reply| ShardMsg::GetRealtor(id, reply))
            .await?
            .ok_or(RuntimeError::UnknownRealtor(id))?;
        realtor.status = s;
        ctx.store.upsert_realtor_profiles(&[realtor]).await?;
        call_shard(ctx, cell, |reply| ShardMsg::SetStatus {
            realtor: id,
            status: s,
            reply,
        })
        .await?
        .map_err(|_| RuntimeError::UnknownRealtor(id))
    }

    /// The realtor accepts the assigned tour.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`], [`RuntimeError::Illegal`], store or actor failures.
    pub async fn accept(&self, t: TourId) -> Result<TourRecord, RuntimeError> {
        self.core.command(t, Command::Accept).await
    }

    /// The realtor declines: the tour is matched again without them.
    ///
    /// # Errors
    /// As [`Runtime::accept`].
    pub async fn decline(&self, t: TourId) -> Result<TourRecord, RuntimeError> {
        self.core.command(t, Command::Decline).await
    }

    /// The realtor starts the tour.
    ///
    /// # Errors
    /// As [`Runtime::accept`].
    pub async fn start_tour(&self, t: TourId) -> Result<TourRecord, RuntimeError> {
        self.core.command(t, Command::Start).await
    }

    /// The realtor completes the tour.
    ///
    /// # Errors
    /// As [`Runtime::accept`].
    pub async fn complete(&self, t: TourId) -> Result<TourRecord, RuntimeError> {
        self.core.command(t, Command::Complete).await
    }

    /// Cancels the tour, freeing its realtor's time.
    ///
    /// # Errors
    /// As [`Runtime::accept`].
    pub async fn cancel(&self, t: TourId) -> Result<TourRecord, RuntimeError> {
        self.core.command(t, Command::Cancel).await
    }

    /// Moves the tour to a new window: the old slot is freed and the tour matched again.
    ///
    /// # Errors
    /// As [`Runtime::accept`].
    pub async fn reschedule(
        &self,
        t: TourId,
        window: TimeWindow,
    ) -> Result<TourRecord, RuntimeError> {
        self.core.command(t, Command::Reschedule(window)).await
    }

    /// Realtors able to take a one-listing visit at `at` within `radius_km` during `window`:
    /// `(realtor, km, earliest start)`, nearest first.
    ///
    /// # Errors
    /// [`RuntimeError::Invalid`] for an unusable radius, or a shard does not answer.
    pub async fn availability(
        &self,
        at: Location,
        radius_km: f64,
        window: TimeWindow,
    ) -> Result<Vec<(RealtorId, f64, DateTime<Utc>)>, RuntimeError> {
        if !(radius_km.is_finite() && radius_km >= 0.0) {
            return Err(RuntimeError::Invalid(format!("radius {radius_km} km")));
        }
        let ctx = &self.core.ctx;
        let stop = Stop {
            id: ListingId(Uuid::nil()),
            location: at,
        };
        let plan = Arc::new(
            TourPlan::new(
                TourId(Uuid::nil()),
                &[stop],
                window,
                ctx.config.visit_minutes,
                vec![],
            )
            .map_err(|e| RuntimeError::Invalid(e.to_string()))?,
        );
        let res = ctx.config.shard_resolution;
        let origin = at.cell(res);
        let occupied = ctx.shard_cells();
        let mut seen = 0;
        let mut found = Vec::new();
        for k in 0.. {
            for cell in ring(origin, k).into_iter().filter(|c| occupied.contains(c)) {
                seen += 1;
                found.extend(
                    call_shard(ctx, cell, |reply| ShardMsg::Available {
                        plan: plan.clone(),
                        radius_km,
                        reply,
                    })
                    .await?,
                );
            }
            if seen >= occupied.len() || ring_bound_km(res, k) > radius_km {
                break;
            }
        }
        found.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        Ok(found
            .into_iter()
            .map(|(id, km, start)| (id, km, engine::time::to_datetime(start)))
            .collect())
    }

    /// The tour as its actor holds it, or as stored when no actor runs it.
    ///
    /// # Errors
    /// The store fails.
    pub async fn tour(&self, t: TourId) -> Result<Option<TourRecord>, RuntimeError> {
        let ctx = &self.core.ctx;
        if let Some(actor) = ctx.tour(t) {
            if let Some(record) = ask(&actor, TourMsg::Get, ctx.config.call_timeout).await {
                return Ok(Some(record));
            }
        }
        Ok(ctx.store.get_tour(t).await?)
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

    /// Whether both supervisors run (false once one escalated after too many restarts).
    #[must_use]
    pub fn healthy(&self) -> bool {
        [&self.core.shards, &self.core.tours]
            .iter()
            .all(|s| s.get_status() == ractor::ActorStatus::Running)
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

    /// Stops the payments consumer, then the tour actors, then the shards.
    pub async fn shutdown(self) {
        let ctx = &self.core.ctx;
        ctx.shutting_down.store(true, Ordering::SeqCst);
        let _ = self.tasks.stop.send(true);
        let consumer = lock(&self.tasks.consumer).take();
        if let Some(consumer) = consumer {
            let _ = consumer.await;
        }
        let wait = Some(ctx.config.call_timeout);
        for sup in [&self.core.tours, &self.core.shards] {
            sup.stop_children_and_wait(Some("shutdown".into()), wait)
                .await;
            let _ = sup.stop_and_wait(Some("shutdown".into()), wait).await;
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

    /// Sends `command` to the tour's actor, starting it if the tour is open but not running;
    /// a closed tour answers from the store.
    async fn command(&self, t: TourId, command: Command) -> Result<TourRecord, RuntimeError> {
        let ctx = &self.ctx;
        let timeout = ctx.config.call_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut delay = Duration::from_millis(2);
        loop {
            if let Some(actor) = ctx.tour(t) {
                let cmd = command.clone();
                if let Some(result) =
                    ask(&actor, |reply| TourMsg::Command(cmd, reply), timeout).await
                {
                    return result;
                }
            } else {
                let record = ctx
                    .store
                    .get_tour(t)
                    .await?
                    .ok_or(RuntimeError::NotFound(t))?;
                if record.status.is_terminal() {
                    return match record.status.apply(command.transition()) {
                        Err(illegal) => Err(RuntimeError::Illegal(illegal)),
                        Ok(_) => Err(RuntimeError::Conflict),
                    };
                }
                let _ = self
                    .start_child(&self.tours, ChildSpec::Tour(t, Some(Box::new(record))))
                    .await;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RuntimeError::Unavailable(format!(
                    "tour {} did not answer",
                    t.0
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }
}
