//! `compare`: Tourwise's matching against the designs a team would pick instead (issue #7), on
//! one seeded city, side by side in one run.
//!
//! ```sh
//! cargo run --release -p benches --bin compare               # 10k and 100k realtors
//! cargo run --release -p benches --bin compare -- scale      # decisions/s and RSS vs size
//! ```
//! Needs PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379 (as in CI); installs PostGIS
//! (Debian's package) when the server lacks it. Every design answers the same queries; any answer
//! that differs from the engine's is reported with both candidates, because a design whose answers
//! differ is not faster, it is wrong.

mod scale;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use benches::peers::{ActorsDesign, Design, EngineDesign, PostgisDesign, RedisDesign};
use benches::slots::{SlotCity, SlotQuery};
use clap::{Parser, Subcommand};
use engine::RealtorId;

#[derive(Parser)]
#[command(about = "Tourwise's matching against Redis- and PostGIS-based designs")]
struct Args {
    /// City sizes (realtors), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    realtors: Vec<usize>,
    /// One-listing queries per city.
    #[arg(long, default_value_t = 10_000)]
    queries: usize,
    /// Days of one-hour slots (12 a day).
    #[arg(long, default_value_t = 2)]
    days: usize,
    /// Share of slots each realtor has free.
    #[arg(long, default_value_t = 0.3)]
    free: f64,
    /// Concurrency levels, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    /// Seed of the city and queries.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Redis.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// PostgreSQL server (a database of the compare's own is created and dropped).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    pg_url: String,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Subcommand)]
enum Sub {
    /// Decisions/s and resident memory against city size and bookings per realtor.
    Scale(scale::ScaleArgs),
    /// One point of the scaling curve, in a fresh process (run by `scale`).
    #[command(hide = true)]
    ScaleOne(scale::ScaleOneArgs),
}

/// What one design did with one batch of queries at one concurrency.
struct Run {
    design: &'static str,
    concurrency: usize,
    per_s: f64,
    p50: Duration,
    p99: Duration,
    cpu_per_1k: f64,
    answers: Vec<Option<RealtorId>>,
    errors: usize,
}

/// CPU seconds used so far by this process and by every process named in `servers`.
fn cpu_seconds(servers: &[&str]) -> f64 {
    let ticks = |stat: &str| -> f64 {
        // Fields after the parenthesised command name: utime is the 12th, stime the 13th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (t(11) + t(12)) / 100.0
    };
    let mut total = std::fs::read_to_string("/proc/self/stat").map_or(0.0, |s| ticks(&s));
    if servers.is_empty() {
        return total;
    }
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let path = entry.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if servers.contains(&comm.trim()) {
            total += std::fs::read_to_string(path.join("stat")).map_or(0.0, |s| ticks(&s));
        }
    }
    total
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len().max(1) - 1) as f64 * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// Runs every query through `design` with `concurrency` tasks pulling from one queue.
async fn run(
    design: Arc<dyn Design>,
    queries: Arc<Vec<SlotQuery>>,
    concurrency: usize,
    servers: &[&str],
) -> Run {
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(vec![
        (Duration::ZERO, None, false);
        queries.len()
    ]));
    let cpu0 = cpu_seconds(servers);
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (design, queries, next, results) = (
            design.clone(),
            queries.clone(),
            next.clone(),
            results.clone(),
        );
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(q) = queries.get(i) else { break };
                let t = Instant::now();
                let answer = design.nearest(q).await;
                let took = t.elapsed();
                if let Err(e) = &answer {
                    eprintln!("{}: query {i}: {e:#}", design.name());
                }
                if let Ok(mut r) = results.lock() {
                    r[i] = (
                        took,
                        answer.as_ref().ok().copied().flatten(),
                        answer.is_err(),
                    );
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = began.elapsed();
    let cpu = cpu_seconds(servers) - cpu0;
    let results = results.lock().map(|r| r.clone()).unwrap_or_default();
    let mut latencies: Vec<Duration> = results.iter().map(|r| r.0).collect();
    latencies.sort();
    Run {
        design: design.name(),
        concurrency,
        per_s: queries.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        cpu_per_1k: cpu / queries.len() as f64 * 1000.0,
        answers: results.iter().map(|r| r.1).collect(),
        errors: results.iter().filter(|r| r.2).count(),
    }
}

fn micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.1} µs")
    }
}

/// Compares every design's answers with the engine's, printing the first disagreements.
fn disagreements(city: &SlotCity, queries: &[SlotQuery], engine: &Run, other: &Run) -> usize {
    let mut n = 0;
    for (i, (a, b)) in engine.answers.iter().zip(&other.answers).enumerate() {
        if a == b {
            continue;
        }
        n += 1;
        if n <= 5 {
            let km = |id: &Option<RealtorId>| {
                id.and_then(|id| city.realtors.iter().find(|r| r.id == id))
                    .map(|r| engine::geo::distance_km(&r.home, queries[i].at()))
            };
            eprintln!(
                "disagreement on query {i} (slot {}): engine {a:?} at {:?} km, {} {b:?} at {:?} km",
                queries[i].slot,
                km(a),
                other.design,
                km(b)
            );
        }
    }
    n
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

async fn compare(args: &Args, realtors: usize) -> anyhow::Result<()> {
    eprintln!("building a city of {realtors} realtors ...");
    let city = Arc::new(SlotCity::generate(
        args.seed, realtors, args.days, args.free,
    ));
    let queries = Arc::new(city.queries(args.seed, args.queries));
    let rss0 = rss_bytes();
    let engine: Arc<dyn Design> = Arc::new(EngineDesign {
        index: city.index(engine::matching::index::DEFAULT_SEARCH_RESOLUTION),
    });
    let engine_bytes = rss_bytes().saturating_sub(rss0);
    let through_actors = Arc::new(ActorsDesign::start(&city).await?);
    eprintln!("loading Redis ...");
    let redis = Arc::new(RedisDesign::load(&args.redis_url, city.clone()).await?);
    let redis_bytes = redis.bytes;
    eprintln!("loading PostgreSQL + PostGIS ...");
    let max_c = args.concurrency.iter().copied().max().unwrap_or(1) as u32;
    let postgis = Arc::new(PostgisDesign::load(&args.pg_url, city.clone(), max_c).await?);
    let postgis_bytes = postgis.size().await;

    let designs: [(Arc<dyn Design>, &[&str], u64); 4] = [
        (engine, &[], engine_bytes),
        (through_actors.clone(), &[], 0),
        (redis.clone(), &["redis-server"], redis_bytes),
        (postgis.clone(), &["postgres"], postgis_bytes),
    ];
    // Warm every design (caches, plans, connections) on queries of its own.
    let warm = Arc::new(city.queries(args.seed + 1, 500));
    for (d, servers, _) in &designs {
        run(d.clone(), warm.clone(), 4, servers).await;
    }
    let mut runs = Vec::new();
    for &c in &args.concurrency {
        for (d, servers, _) in &designs {
            eprintln!("{} at concurrency {c} ...", d.name());
            runs.push(run(d.clone(), queries.clone(), c, servers).await);
        }
    }

    let assigned = runs[0].answers.iter().filter(|a| a.is_some()).count();
    println!(
        "\n### {realtors} realtors, {} slots, {:.0}% free per slot, {} queries ({assigned} assignable)\n",
        city.slots(),
        args.free * 100.0,
        queries.len()
    );
    println!("| design | concurrency | queries/s | p50 | p99 | CPU-s / 1k queries | Tourwise is | agrees with engine |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut total_wrong = 0;
    for r in &runs {
        let Some(base) = runs
            .iter()
            .find(|b| b.concurrency == r.concurrency && b.design == runs[0].design)
        else {
            continue;
        };
        let wrong = disagreements(&city, &queries, base, r);
        total_wrong += wrong + r.errors;
        println!(
            "| {} | {} | {:.0} | {} | {} | {:.3} | {:.1}x | {}{} |",
            r.design,
            r.concurrency,
            r.per_s,
            micros(r.p50),
            micros(r.p99),
            r.cpu_per_1k,
            base.per_s / r.per_s,
            if wrong == 0 {
                "yes".to_owned()
            } else {
                format!("NO: {wrong} differ")
            },
            if r.errors > 0 {
                format!(" ({} errors)", r.errors)
            } else {
                String::new()
            },
        );
    }
    println!(
        "\nMemory for the data set: engine {:.1} MiB resident, Redis {:.1} MiB used_memory, PostgreSQL {:.1} MiB of tables and indexes.",
        mib(engine_bytes),
        mib(redis_bytes),
        mib(postgis_bytes)
    );
    through_actors.runtime.clone().shutdown().await;
    redis.unload().await?;
    drop(designs);
    if let Ok(p) = Arc::try_unwrap(postgis) {
        p.unload().await?;
    }
    anyhow::ensure!(
        total_wrong == 0,
        "{total_wrong} answers differ from the engine's or failed (see above)"
    );
    Ok(())
}

/// Starts the local PostgreSQL and Redis the way `.ci/run` does when nothing listens on their
/// ports (the compare's own set-up on a fresh machine); a remote URL is left alone.
fn ensure_local_services(args: &Args) {
    let listening = |port: u16| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    let local = |url: &str, port: u16| url.contains(&format!("127.0.0.1:{port}"));
    if local(&args.redis_url, 6379) && !listening(6379) {
        eprintln!("starting redis-server on 127.0.0.1:6379");
        let _ = std::process::Command::new("redis-server")
            .args([
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                "6379",
            ])
            .args(["--save", "", "--appendonly", "no"])
            .status();
    }
    if local(&args.pg_url, 5432) && !listening(5432) {
        eprintln!("starting PostgreSQL");
        let version = std::fs::read_dir("/etc/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .next()
            .unwrap_or_default();
        let _ = std::process::Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &version, "main", "start"])
            .status();
    }
    for _ in 0..30 {
        if listening(6379) && listening(5432) {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match &args.command {
        Some(Sub::Scale(a)) => return scale::scale(a),
        Some(Sub::ScaleOne(a)) => return scale::scale_one(a),
        None => {}
    }
    ensure_local_services(&args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for &n in &args.realtors {
            compare(&args, n).await?;
        }
        Ok(())
    })
}
