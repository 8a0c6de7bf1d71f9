//! What the benchmark's unassignable tours are: for each one of the `matching` bench's sample,
//! its window and how many realtors of the whole city would have a free stretch for it if
//! every travel took a minute (0: a slot the whole city is booked in, which the whole index's
//! free-time summary proves at once), and what its explanation counted.
//!
//! `cargo run --release -p benches --example classify_unassignable`
use benches::City;
use engine::{Nearest, SearchScratch, TourPlan};
use h3o::Resolution;

fn main() {
    let mut city = City::generate(42, 10_000, 8, 7, Resolution::Eight);
    let tours = city.one_listing_tours(4096);
    let mut scratch = SearchScratch::default();
    let (mut unassignable, mut whole_city_booked) = (0, 0);
    for t in &tours {
        let d = city.index.search_with(t, &Nearest, &mut scratch);
        if d.choice.is_some() {
            continue;
        }
        unassignable += 1;
        let loose = free_at_a_minute(&city, t);
        if loose == 0 {
            whole_city_booked += 1;
        }
        println!(
            "{}-{} free at a minute's travel: {loose:>5}  omitted: {:?}",
            t.window.start().format("%d %H:%M"),
            t.window.end().format("%H:%M"),
            d.explanation.omitted
        );
    }
    println!(
        "{unassignable} of {} tours unassignable; {whole_city_booked} in a slot the whole city is booked in",
        tours.len()
    );
}

/// Realtors with some candidate start of `t` inside their hours (08:00-20:00, UTC+0 in the
/// bench's December) at least a minute away from each of their bookings.
fn free_at_a_minute(city: &City, t: &TourPlan) -> usize {
    let (ws, we) = t.window.seconds();
    let d = t.duration_seconds;
    let starts = || {
        (0..)
            .map(move |i| ws + i * 300)
            .take_while(move |s| s + d <= we)
    };
    city.index
        .iter()
        .filter(|(_, calendar)| {
            starts().any(|s| {
                let tod = s.rem_euclid(86_400);
                tod >= 8 * 3600
                    && tod + d <= 20 * 3600
                    && calendar
                        .bookings()
                        .iter()
                        .all(|b| b.end + 60 <= s || s + d + 60 <= b.start)
            })
        })
        .count()
}
