//! Instruction-count profile of assignable decisions only (run under callgrind).
use benches::City;
use engine::{Nearest, SearchScratch};
use h3o::Resolution;

fn main() {
    let mut city = City::generate(42, 10_000, 8, 7, Resolution::Eight);
    let tours = city.one_listing_tours(4_000);
    let assignable: Vec<_> = tours
        .into_iter()
        .filter(|t| city.index.search(t, &Nearest).choice.is_some())
        .collect();
    // Warm: the free-time summaries each cell and day needs are built by its first search.
    let mut scratch = SearchScratch::default();
    for t in &assignable {
        city.index.search_with(t, &Nearest, &mut scratch);
    }
    let n = hot(&city, &assignable, &mut scratch);
    println!("{n} decisions over {} tours", assignable.len());
}

/// The measured part: `valgrind --tool=callgrind --toggle-collect='*hot*'`.
#[inline(never)]
fn hot(city: &City, tours: &[engine::TourPlan], scratch: &mut SearchScratch) -> usize {
    let mut n = 0;
    for _ in 0..5 {
        for t in tours {
            n += usize::from(
                city.index
                    .search_with(t, &Nearest, scratch)
                    .choice
                    .is_some(),
            );
        }
    }
    n
}
