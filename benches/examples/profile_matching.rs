//! Quick look at where matching time goes: assignable vs unassignable decisions.
use benches::City;
use engine::{Nearest, SearchScratch};
use h3o::Resolution;
use std::time::Instant;

fn main() {
    let mut city = City::generate(42, 10_000, 8, 7, Resolution::Eight);
    let tours = city.one_listing_tours(
        std::env::var("TOURS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000),
    );
    let mut scratch = SearchScratch::default();
    // Warm, as a long-running shard is: the rings and free-time summaries the tours need are
    // built by a first pass (`COLD=1` measures that first pass instead).
    if std::env::var_os("COLD").is_none() {
        for t in &tours {
            city.index.search_with(t, &Nearest, &mut scratch);
        }
    }
    let mut times: Vec<(u128, u32, usize)> = Vec::new();
    let (mut ta, mut na, mut tu, mut nu, mut cands) = (0u128, 0u32, 0u128, 0u32, 0usize);
    let (mut evals, mut rings, mut dist) = (0usize, 0u32, 0.0f64);
    for t in &tours {
        let s = Instant::now();
        let d = city.index.search_with(t, &Nearest, &mut scratch);
        let e = s.elapsed().as_nanos();
        cands += d.explanation.candidates.len();
        if let Some(c) = d.choice {
            times.push((
                e,
                d.explanation.rings_searched,
                d.explanation.candidates.len(),
            ));
            ta += e;
            na += 1;
            dist += c.distance_km;
            rings += d.explanation.rings_searched;
            evals += d
                .explanation
                .candidates
                .iter()
                .filter(|r| {
                    r.earliest_start.is_some()
                        || matches!(
                            r.rejected,
                            Some(
                                engine::RejectReason::Overlap
                                    | engine::RejectReason::OutsideWorkingHours
                            )
                        )
                })
                .count();
        } else {
            tu += e;
            nu += 1
        }
    }
    times.sort();
    for q in [0.5, 0.9, 0.99] {
        let t = times[(times.len() as f64 * q) as usize];
        println!("p{}: {} ns rings {} cands {}", q * 100.0, t.0, t.1, t.2);
    }
    println!(
        "assignable: avg distance {:.3} km, rings {:.1}, calendar evaluations {:.1}",
        dist / f64::from(na),
        f64::from(rings) / f64::from(na),
        evals as f64 / f64::from(na)
    );
    println!(
        "assignable {na}: {} ns avg; unassignable {nu}: {} ns avg; candidates avg {}",
        ta / u128::from(na.max(1)),
        tu / u128::from(nu.max(1)),
        cands / tours.len()
    );
}
