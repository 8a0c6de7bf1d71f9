//! Instruction-count profile of unassignable decisions only (run under callgrind): each one
//! must prove that nobody within reach can take the tour.
use benches::City;
use engine::{Nearest, SearchScratch};
use h3o::Resolution;

fn main() {
    let mut city = City::generate(42, 10_000, 8, 7, Resolution::Eight);
    let tours = city.one_listing_tours(2_000);
    let unassignable: Vec<_> = tours
        .into_iter()
        .filter(|t| city.index.search(t, &Nearest).choice.is_none())
        .take(40)
        .collect();
    // Warm: the free-time summaries each cell and day needs are built by its first search.
    let mut scratch = SearchScratch::default();
    for t in &unassignable {
        city.index.search_with(t, &Nearest, &mut scratch);
    }
    let n = hot(&city, &unassignable, &mut scratch);
    println!("{n} candidates listed over {} tours", unassignable.len());
}

/// The measured part: `valgrind --tool=callgrind --toggle-collect='*hot*'`.
#[inline(never)]
fn hot(city: &City, tours: &[engine::TourPlan], scratch: &mut SearchScratch) -> usize {
    tours
        .iter()
        .map(|t| {
            city.index
                .search_with(t, &Nearest, scratch)
                .explanation
                .candidates
                .len()
        })
        .sum()
}
