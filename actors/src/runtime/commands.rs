//! What the API asks of tours: the lifecycle commands (sent to the tour's actor, which is
//! started when the tour is open but not running), reading a tour, and availability queries
//! over the shards.

use super::*;
use crate::availability_view::{one_stop_plan, RedisView};

/// The one-listing visit an availability question is about (`radius_km` checked).
fn availability_plan(
    config: &RuntimeConfig,
    at: Location,
    radius_km: f64,
    window: TimeWindow,
) -> Result<TourPlan, RuntimeError> {
    if !(radius_km.is_finite() && radius_km >= 0.0) {
        return Err(RuntimeError::Invalid(format!("radius {radius_km} km")));
    }
    let (start, end) = window.seconds();
    one_stop_plan(
        at,
        engine::time::to_datetime(start),
        engine::time::to_datetime(end),
        config.visit_minutes,
    )
    .map_err(RuntimeError::Invalid)
}

impl Runtime {
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
        let ctx = &self.core.ctx;
        let plan = Arc::new(availability_plan(&ctx.config, at, radius_km, window)?);
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

    /// [`Runtime::availability`] answered from the published availability view (Redis) instead
    /// of the shard actors: what another instance, or this one without asking its actors, sees.
    ///
    /// # Errors
    /// [`RuntimeError::Invalid`] for an unusable radius; [`RuntimeError::Unavailable`] when
    /// Redis fails.
    pub async fn availability_in_view(
        &self,
        view: &RedisView,
        at: Location,
        radius_km: f64,
        window: TimeWindow,
    ) -> Result<Vec<(RealtorId, f64, DateTime<Utc>)>, RuntimeError> {
        let config = &self.core.ctx.config;
        let plan = availability_plan(config, at, radius_km, window)?;
        view.available(
            &plan,
            radius_km,
            config.shard_resolution,
            config.search_resolution,
        )
        .await
        .map_err(|e| RuntimeError::Unavailable(format!("availability view: {e}")))
    }

    /// What matching would decide for `plan` now, over every shard, without reserving anything
    /// (the search a tour actor runs before it books).
    ///
    /// # Errors
    /// A shard does not answer.
    pub async fn decide(&self, plan: TourPlan) -> Result<engine::Decision, RuntimeError> {
        let plan = Arc::new(plan);
        tour::search(&self.core.ctx, &plan).await.map(|(d, _)| d)
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
}

impl Core {
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
