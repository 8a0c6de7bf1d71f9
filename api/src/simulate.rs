//! `tourwise simulate` (CONTRACT 1): a generated city and a stream of payment events through an
//! embedded engine (the real runtime: shard and tour actors, the payments consumer on the
//! in-process bus), with a progress bar and a summary; optionally the assignments as CSV or
//! GeoJSON.
//!
//! The city comes from [`benches::City`], the same seeded Lisbon-like metro the benchmarks use:
//! realtor homes clustered around five centres, service radii of 8-30 km, working hours
//! 08:00-20:00 every day. Customers buy tours of 1 to 3 listings close to each other, with
//! windows of 2 to 6 hours on one of `--days` days. Tours are kept in memory (the engine's
//! in-memory store), so the figures are the engine's, not a database's.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actors::bus::{topics, EventBus, InProcessBus};
use actors::memstore::MemoryStore;
use actors::payments::{PaymentSucceeded, PAYMENT_SUCCEEDED};
use actors::runtime::{Runtime, RuntimeConfig};
use actors::store::{Store, TourRecord};
use anyhow::Context as _;
use clap::Args;
use engine::{CustomerId, ListingId, PaymentId, RealtorId, Stop, TimeWindow, TourStatus};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::broadcast::error::RecvError;

/// Events published but not yet settled, at most, when running as fast as possible.
const MAX_BACKLOG: usize = 512;
/// How long the simulation waits for an engine that settles nothing.
const STALL: Duration = Duration::from_secs(60);

/// `tourwise simulate` flags.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// Realtors in the city.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub realtors: u32,
    /// Payment events to drive through the engine.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub events: u32,
    /// Days the customers' windows are spread over.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=365))]
    pub days: u32,
    /// Seed of the city and the events (same seed, same city and events).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Events offered per second; 0 for as fast as the engine takes them.
    #[arg(long, default_value_t = 0)]
    pub rate: u32,
    /// How to choose among feasible realtors (CONTRACT 5.4).
    #[arg(long, default_value = "nearest", value_parser = ["nearest", "balanced"])]
    pub policy: String,
    /// Write the tours as CSV here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the tours as GeoJSON (a point per first listing) here.
    #[arg(long)]
    pub geojson: Option<PathBuf>,
    /// No progress bar (for logs and scripts).
    #[arg(long)]
    pub quiet: bool,
}

/// Runs the simulation and prints the summary.
///
/// # Errors
/// The runtime does not start, the engine stops answering, or an output file cannot be written.
pub async fn run(args: &SimulateArgs) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let days = i64::from(args.days);
    let city = benches::City::generate(
        args.seed,
        args.realtors as usize,
        0,
        days,
        engine::matching::index::DEFAULT_SEARCH_RESOLUTION,
    );
    let realtors: Vec<engine::Realtor> = city.index.iter().map(|(r, _)| r.clone()).collect();
    let store = Arc::new(MemoryStore::new());
    store.upsert_realtor_profiles(&realtors).await?;
    let bus = Arc::new(InProcessBus::new());
    let policy: Arc<dyn engine::Policy> = match args.policy.as_str() {
        "balanced" => Arc::new(engine::Balanced::default()),
        _ => Arc::new(engine::Nearest),
    };
    let runtime = Runtime::start(
        store.clone(),
        bus.clone(),
        RuntimeConfig {
            policy,
            // Nobody accepts in a simulation; keep assignments as they are made.
            accept_timeout: Duration::from_secs(365 * 86_400),
            ..RuntimeConfig::default()
        },
    )
    .await
    .context("the engine did not start")?;

    // Every tour's first outcome (assigned or unassignable), timed from its event's publication.
    let total = args.events as usize;
    let sent: Arc<Mutex<HashMap<PaymentId, Instant>>> = Arc::default();
    let settled = Arc::new(AtomicUsize::new(0));
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let watcher = tokio::spawn(watch_outcomes(
        runtime.tour_changes(),
        sent.clone(),
        settled.clone(),
        latencies.clone(),
    ));
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} tours settled  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let started = Instant::now();
    let tick = (args.rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    for i in 0..total {
        match tick {
            Some(tick) => {
                let due = started + tick.mul_f64(i as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    tokio::time::sleep(wait).await;
                }
            }
            // As fast as the engine takes them: a bounded backlog, so that latencies measure
            // the engine rather than a queue of everything.
            None => {
                let waiting = Instant::now();
                while i - settled.load(Ordering::Relaxed).min(i) >= MAX_BACKLOG {
                    if waiting.elapsed() > Duration::from_secs(1) {
                        recount(&store, &settled);
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        let payment = payment(&mut rng, days);
        let envelope = actors::bus::Envelope::new(
            PAYMENT_SUCCEEDED,
            serde_json::to_value(&payment).context("payment JSON")?,
        );
        lock(&sent).insert(payment.payment_id, Instant::now());
        bus.publish(
            topics::PAYMENTS,
            &payment.payment_id.0.to_string(),
            serde_json::to_vec(&envelope).context("envelope JSON")?,
            Vec::new(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("publishing a payment: {e}"))?;
        if i % 256 == 0 {
            bar.set_position(settled.load(Ordering::Relaxed) as u64);
        }
    }
    // Wait for the last outcomes (counted from the store when the watcher missed changes);
    // give up when nothing moves for a minute.
    let (mut last, mut moved) = (0, Instant::now());
    loop {
        let mut now = settled.load(Ordering::Relaxed);
        if now < total && moved.elapsed() > Duration::from_millis(500) {
            now = recount(&store, &settled);
        }
        bar.set_position(now as u64);
        if now >= total {
            break;
        }
        if now != last {
            (last, moved) = (now, Instant::now());
        } else if moved.elapsed() > STALL {
            anyhow::bail!("the engine settled {now} of {total} tours and then stopped moving");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watcher.abort();
    let latencies = std::mem::take(&mut *lock(&latencies));
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    runtime.shutdown().await;

    let tours = store.tours();
    let summary = Summary::new(&tours, &latencies, elapsed, args, realtors.len());
    summary.print();
    if let Some(path) = &args.csv {
        write_csv(path, &tours).with_context(|| format!("writing {}", path.display()))?;
        println!("tours written to {}", path.display());
    }
    if let Some(path) = &args.geojson {
        write_geojson(path, &tours).with_context(|| format!("writing {}", path.display()))?;
        println!("tours written to {}", path.display());
    }
    Ok(())
}

/// One generated payment: 1 to 3 listings within ~1 km of a metro point, a window of 2 to 6
/// hours starting between 08:00 and 16:00 UTC on one of the days.
fn payment(rng: &mut StdRng, days: i64) -> PaymentSucceeded {
    let first = benches::metro_point(rng, 0.15);
    let listings: Vec<Stop> = (0..rng.random_range(1..=3))
        .map(|i| Stop {
            id: ListingId::new_random(),
            location: if i == 0 {
                first
            } else {
                benches::near(rng, &first, 1.0)
            },
        })
        .collect();
    let day = benches::first_day() + chrono::Duration::days(rng.random_range(0..days));
    let start = day + chrono::Duration::minutes(8 * 60 + 30 * rng.random_range(0..16));
    let end = start + chrono::Duration::hours(rng.random_range(2..=6));
    PaymentSucceeded {
        payment_id: PaymentId(uuid::Uuid::new_v4()),
        customer_id: CustomerId(uuid::Uuid::new_v4()),
        amount_cents: 5000 * listings.len() as i64,
        currency: "EUR".to_owned(),
        listings,
        window: TimeWindow::new(start, end).unwrap_or_else(|_| unreachable!("end > start")),
    }
}

/// Tours settled so far by the store's count (when the watcher missed changes), raising the
/// shared count to it.
fn recount(store: &MemoryStore, settled: &AtomicUsize) -> usize {
    let n = store
        .tours()
        .iter()
        .filter(|t| t.status != TourStatus::Pending)
        .count();
    settled.fetch_max(n, Ordering::Relaxed).max(n)
}

/// Records each tour's first outcome: `settled` counts them, `latencies` holds the time from
/// its event's publication.
async fn watch_outcomes(
    mut changes: tokio::sync::broadcast::Receiver<TourRecord>,
    sent: Arc<Mutex<HashMap<PaymentId, Instant>>>,
    settled: Arc<AtomicUsize>,
    latencies: Arc<Mutex<Vec<Duration>>>,
) {
    let mut seen = HashSet::new();
    loop {
        match changes.recv().await {
            Ok(tour) if tour.status != TourStatus::Pending => {
                if seen.insert(tour.id) {
                    settled.fetch_max(seen.len(), Ordering::Relaxed);
                    if let Some(at) = lock(&sent).get(&tour.payment_id) {
                        lock(&latencies).push(at.elapsed());
                    }
                }
            }
            Ok(_) => {}
            // Missed changes: their tours are counted from the store at the end; their
            // latencies are not known.
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "simulation watcher lagged");
            }
            Err(RecvError::Closed) => break,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The figures printed at the end.
struct Summary {
    lines: Vec<(String, String)>,
}

impl Summary {
    fn new(
        tours: &[TourRecord],
        latencies: &[Duration],
        elapsed: Duration,
        args: &SimulateArgs,
        realtors: usize,
    ) -> Self {
        let mut sorted = latencies.to_vec();
        sorted.sort_unstable();
        let pct = |q: f64| -> String {
            if sorted.is_empty() {
                return "-".to_owned();
            }
            let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
            format!("{:.2} ms", sorted[i].as_secs_f64() * 1e3)
        };
        let assigned = tours.iter().filter(|t| t.realtor_id.is_some()).count();
        let unassignable: Vec<&TourRecord> = tours
            .iter()
            .filter(|t| t.status == TourStatus::Unassignable)
            .collect();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for t in &unassignable {
            *reasons.entry(why_unassignable(t)).or_default() += 1;
        }
        let mut load: HashMap<RealtorId, usize> = HashMap::new();
        for t in tours {
            if let Some(r) = t.realtor_id {
                *load.entry(r).or_default() += 1;
            }
        }
        let mut per_realtor: Vec<usize> = load.values().copied().collect();
        per_realtor.resize(realtors.max(per_realtor.len()), 0);
        per_realtor.sort_unstable();
        let quantile = |q: f64| per_realtor[((per_realtor.len() - 1) as f64 * q) as usize];

        let mut lines = vec![
            ("policy".to_owned(), args.policy.clone()),
            ("realtors".to_owned(), realtors.to_string()),
            ("events".to_owned(), tours.len().to_string()),
            (
                "events/s (to outcome)".to_owned(),
                format!("{:.0}", tours.len() as f64 / elapsed.as_secs_f64()),
            ),
            ("event -> outcome p50".to_owned(), pct(0.50)),
            ("event -> outcome p99".to_owned(), pct(0.99)),
            (
                "assigned".to_owned(),
                format!("{assigned} ({:.1}%)", percent(assigned, tours.len())),
            ),
            (
                "unassignable".to_owned(),
                format!(
                    "{} ({:.1}%)",
                    unassignable.len(),
                    percent(unassignable.len(), tours.len())
                ),
            ),
        ];
        for (reason, n) in reasons {
            lines.push((format!("  {reason}"), n.to_string()));
        }
        lines.push((
            "tours per realtor".to_owned(),
            format!(
                "min {} / median {} / p90 {} / max {} ({} realtors without any)",
                quantile(0.0),
                quantile(0.5),
                quantile(0.9),
                quantile(1.0),
                per_realtor.iter().filter(|&&n| n == 0).count()
            ),
        ));
        Self { lines }
    }

    fn print(&self) {
        let width = self.lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in &self.lines {
            println!("{k:<width$}  {v}");
        }
    }
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// Why nobody took a tour: the tour's reason, and for `no_feasible_realtor` what stopped the
/// realtors in reach (the most common rejection in the explanation, or nobody in reach).
fn why_unassignable(tour: &TourRecord) -> String {
    let reason = tour.reason.as_deref().unwrap_or("unknown");
    let Some(explanation) = &tour.explanation else {
        return reason.to_owned();
    };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &explanation.candidates {
        if let Some(r) = c.rejected {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    for (outcome, n) in &explanation.omitted {
        if let Some(r) = outcome.strip_prefix("rejected:") {
            *counts.entry(r).or_default() += n;
        }
    }
    match counts.into_iter().max_by_key(|(_, n)| *n) {
        Some((most, _)) => format!("{reason}: mostly {most}"),
        None => format!("{reason}: nobody in reach"),
    }
}

fn write_csv(path: &PathBuf, tours: &[TourRecord]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        out,
        "tour_id,payment_id,status,realtor_id,start,end,listings,first_lat,first_lng,reason"
    )?;
    for t in tours {
        let first = t.stops.first().map(|s| s.location);
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            t.id.0,
            t.payment_id.0,
            t.status.as_str(),
            t.realtor_id.map(|r| r.0.to_string()).unwrap_or_default(),
            t.start.map(|s| s.to_rfc3339()).unwrap_or_default(),
            t.end.map(|s| s.to_rfc3339()).unwrap_or_default(),
            t.stops.len(),
            first.map(|l| l.lat().to_string()).unwrap_or_default(),
            first.map(|l| l.lng().to_string()).unwrap_or_default(),
            t.reason.as_deref().unwrap_or_default(),
        )?;
    }
    out.flush()
}

fn write_geojson(path: &PathBuf, tours: &[TourRecord]) -> std::io::Result<()> {
    let features: Vec<serde_json::Value> = tours
        .iter()
        .filter_map(|t| {
            let first = t.stops.first()?.location;
            Some(serde_json::json!({
                "type": "Feature",
                // GeoJSON positions are [longitude, latitude].
                "geometry": {"type": "Point", "coordinates": [first.lng(), first.lat()]},
                "properties": {
                    "tour_id": t.id,
                    "status": t.status.as_str(),
                    "realtor_id": t.realtor_id,
                    "start": t.start,
                    "end": t.end,
                    "listings": t.stops.len(),
                    "reason": t.reason,
                },
            }))
        })
        .collect();
    let collection = serde_json::json!({"type": "FeatureCollection", "features": features});
    std::fs::write(path, serde_json::to_vec(&collection)?)
}
