//! Scaling curves: decisions/s on one core and resident memory against the number of realtors
//! and the bookings each holds. Each point runs in a fresh process (`compare scale-one`), so the
//! memory figure is the resident set of exactly one city, not what earlier points left behind.

use std::process::Command;
use std::time::{Duration, Instant};

use benches::City;
use clap::Args;
use engine::{Nearest, SearchScratch};

#[derive(Args)]
pub struct ScaleArgs {
    /// City sizes for the realtor curve (10 bookings each).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,10000,100000,1000000"
    )]
    realtors: Vec<usize>,
    /// Bookings per realtor for the booking curve (at 100k realtors, over 2 days).
    #[arg(long, value_delimiter = ',', default_value = "0,4,10,20")]
    bookings: Vec<usize>,
    /// Seconds of matching per point.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

#[derive(Args)]
pub struct ScaleOneArgs {
    #[arg(long)]
    realtors: usize,
    /// Bookings per realtor per day (2 days).
    #[arg(long)]
    per_day: usize,
    #[arg(long)]
    seconds: f64,
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Builds one city and prints `rss_bytes decisions_per_s assignable_share`.
pub fn scale_one(a: &ScaleOneArgs) -> anyhow::Result<()> {
    let before = rss_bytes();
    let mut city = City::generate(
        7,
        a.realtors,
        a.per_day,
        2,
        engine::matching::index::DEFAULT_SEARCH_RESOLUTION,
    );
    let rss = rss_bytes().saturating_sub(before);
    let tours = city.one_listing_tours(20_000);
    anyhow::ensure!(!tours.is_empty(), "no tours generated");
    let mut scratch = SearchScratch::default();
    let (mut n, mut assigned) = (0usize, 0usize);
    let budget = Duration::from_secs_f64(a.seconds);
    let began = Instant::now();
    while began.elapsed() < budget {
        for t in tours.iter().skip(n % tours.len()).take(256) {
            let d = city.index.search_with(t, &Nearest, &mut scratch);
            assigned += usize::from(d.choice.is_some());
            n += 1;
        }
    }
    let per_s = n as f64 / began.elapsed().as_secs_f64();
    println!("{rss} {per_s} {}", assigned as f64 / n.max(1) as f64);
    Ok(())
}

/// Runs every point in a child process and prints both curves as tables.
pub fn scale(a: &ScaleArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let point = |realtors: usize, per_day: usize| -> anyhow::Result<(f64, f64, f64)> {
        eprintln!("{realtors} realtors x {} bookings ...", per_day * 2);
        let out = Command::new(&exe)
            .args([
                "scale-one",
                "--realtors",
                &realtors.to_string(),
                "--per-day",
                &per_day.to_string(),
                "--seconds",
                &a.seconds.to_string(),
            ])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "scale-one failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<f64> = text
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        anyhow::ensure!(f.len() == 3, "scale-one printed {text:?}");
        Ok((f[0], f[1], f[2]))
    };
    let mib = |b: f64| b / (1024.0 * 1024.0);

    println!("\n### Decisions/s (one core) and resident memory vs realtors (10 bookings each)\n");
    println!("| realtors | bookings | decisions/s | resident | bytes per realtor | assignable |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for &n in &a.realtors {
        let (rss, per_s, share) = point(n, 5)?;
        println!(
            "| {n} | {} | {per_s:.0} | {:.1} MiB | {:.0} | {:.0}% |",
            n * 10,
            mib(rss),
            rss / n.max(1) as f64,
            share * 100.0
        );
    }
    println!("\n### Decisions/s (one core) and resident memory vs bookings per realtor (100k realtors)\n");
    println!("| bookings per realtor | bookings | decisions/s | resident | assignable |");
    println!("|---:|---:|---:|---:|---:|");
    for &b in &a.bookings {
        let per_day = b.div_ceil(2);
        let (rss, per_s, share) = point(100_000, per_day)?;
        println!(
            "| {} | {} | {per_s:.0} | {:.1} MiB | {:.0}% |",
            per_day * 2,
            100_000 * per_day * 2,
            mib(rss),
            share * 100.0
        );
    }
    Ok(())
}
