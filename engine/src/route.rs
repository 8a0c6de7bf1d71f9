//! Route: the order in which a tour visits its listings (CONTRACT 5.1).
//!
//! Exact for up to 8 listings: a depth-first search over permutations in cart order with
//! branch-and-bound. Visiting permutations in lexicographic order and replacing the best only on
//! a strictly smaller total means ties keep the cart order.

use crate::geo::{travel_minutes, Location};

/// The most listings one tour may visit.
pub const MAX_LISTINGS: usize = 8;

/// A visiting order and its travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Indexes into the cart, in visiting order.
    pub order: Vec<usize>,
    /// Total travel minutes between consecutive stops.
    pub travel_minutes: i64,
}

/// The visiting order of `stops` minimising total travel minutes; ties keep cart order.
/// An empty slice gives an empty route. More than [`MAX_LISTINGS`] stops are planned greedily
/// (nearest next stop), which callers avoid by validating first.
#[must_use]
pub fn plan_route(stops: &[Location]) -> Route {
    let n = stops.len();
    let mut legs = vec![0i64; n * n];
    for i in 0..n {
        for j in 0..n {
            legs[i * n + j] = travel_minutes(&stops[i], &stops[j]);
        }
    }
    if n > MAX_LISTINGS {
        return greedy(n, &legs);
    }
    let mut search = Search {
        n,
        legs: &legs,
        used: vec![false; n],
        path: Vec::with_capacity(n),
        best: Vec::new(),
        best_cost: i64::MAX,
    };
    search.visit(0);
    Route {
        order: search.best,
        travel_minutes: if n == 0 { 0 } else { search.best_cost },
    }
}

struct Search<'a> {
    n: usize,
    legs: &'a [i64],
    used: Vec<bool>,
    path: Vec<usize>,
    best: Vec<usize>,
    best_cost: i64,
}

impl Search<'_> {
    fn visit(&mut self, cost: i64) {
        if self.path.len() == self.n {
            if cost < self.best_cost {
                self.best_cost = cost;
                self.best.clone_from(&self.path);
            }
            return;
        }
        for next in 0..self.n {
            if self.used[next] {
                continue;
            }
            let leg = self
                .path
                .last()
                .map_or(0, |&prev| self.legs[prev * self.n + next]);
            // Legs are never negative, so a partial path already at the best cannot beat it.
            if cost + leg >= self.best_cost {
                continue;
            }
            self.used[next] = true;
            self.path.push(next);
            self.visit(cost + leg);
            self.path.pop();
            self.used[next] = false;
        }
    }
}

fn greedy(n: usize, legs: &[i64]) -> Route {
    let mut order = vec![0];
    let mut used = vec![false; n];
    used[0] = true;
    let mut total = 0;
    while order.len() < n {
        let prev = order[order.len() - 1];
        let (next, leg) = (0..n)
            .filter(|&j| !used[j])
            .map(|j| (j, legs[prev * n + j]))
            .min_by_key(|&(j, leg)| (leg, j))
            .unwrap_or((0, 0));
        used[next] = true;
        order.push(next);
        total += leg;
    }
    Route {
        order,
        travel_minutes: total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn loc(lat: f64, lng: f64) -> Location {
        Location::new(lat, lng).unwrap()
    }

    fn brute_force(stops: &[Location]) -> (Vec<usize>, i64) {
        // Every permutation in lexicographic order; keep the first of the cheapest.
        fn perms(n: usize) -> Vec<Vec<usize>> {
            if n == 0 {
                return vec![vec![]];
            }
            let mut out = Vec::new();
            let mut p: Vec<usize> = (0..n).collect();
            loop {
                out.push(p.clone());
                // next lexicographic permutation
                let Some(i) = (0..n - 1).rev().find(|&i| p[i] < p[i + 1]) else {
                    break;
                };
                let j = (i + 1..n).rev().find(|&j| p[j] > p[i]).unwrap();
                p.swap(i, j);
                p[i + 1..].reverse();
            }
            out
        }
        let mut best = (Vec::new(), i64::MAX);
        for p in perms(stops.len()) {
            let cost: i64 = p
                .windows(2)
                .map(|w| travel_minutes(&stops[w[0]], &stops[w[1]]))
                .sum();
            if cost < best.1 {
                best = (p, cost);
            }
        }
        if stops.is_empty() {
            best.1 = 0;
        }
        best
    }

    #[test]
    fn single_and_empty() {
        assert_eq!(plan_route(&[]).order, Vec::<usize>::new());
        let r = plan_route(&[loc(1.0, 1.0)]);
        assert_eq!((r.order, r.travel_minutes), (vec![0], 0));
    }

    #[test]
    fn ties_keep_cart_order() {
        // Three listings at one spot: every order costs 0, so the cart order stays.
        let p = loc(38.7, -9.1);
        assert_eq!(plan_route(&[p, p, p]).order, vec![0, 1, 2]);
    }

    #[test]
    fn orders_along_a_line() {
        // Cart order zig-zags; the best route walks the line end to end.
        let a = loc(38.70, -9.10);
        let b = loc(38.70, -9.00);
        let c = loc(38.70, -9.05);
        let r = plan_route(&[a, b, c]);
        assert_eq!(r.order, vec![0, 2, 1]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn route_equals_brute_force(points in prop::collection::vec((38.6f64..38.8, -9.3f64..-9.0), 1..=7)) {
            let stops: Vec<Location> = points.iter().map(|&(a, b)| loc(a, b)).collect();
            let r = plan_route(&stops);
            let (order, cost) = brute_force(&stops);
            prop_assert_eq!(r.order, order);
            prop_assert_eq!(r.travel_minutes, cost);
        }

        #[test]
        fn route_with_duplicates_equals_brute_force(idx in prop::collection::vec(0usize..3, 1..=8)) {
            // Few distinct points: many ties, which must resolve to the lexicographically first order.
            let pts = [loc(38.70, -9.10), loc(38.71, -9.12), loc(38.75, -9.20)];
            let stops: Vec<Location> = idx.iter().map(|&i| pts[i]).collect();
            let r = plan_route(&stops);
            let (order, cost) = brute_force(&stops);
            prop_assert_eq!(r.order, order);
            prop_assert_eq!(r.travel_minutes, cost);
        }
    }
}
