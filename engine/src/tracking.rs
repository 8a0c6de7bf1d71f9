//! Live location during a tour: which listing the realtor is heading to and when they will be
//! there. The stops are the tour's visiting order; a stop counts as reached once a location
//! came within [`ARRIVAL_RADIUS_KM`] of it, and stops are reached in order (a realtor passing
//! the third listing on the way to the second has not visited it yet).

use crate::geo::{distance_km, travel_minutes_for_km, Location};
use crate::tour::Stop;

/// How near a location must come to a listing for the listing to count as reached.
pub const ARRIVAL_RADIUS_KM: f64 = 0.1;

/// Where a realtor is in a tour, after a location update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// How many stops (in visiting order) have been reached.
    pub reached: usize,
    /// The index of the next stop, `None` once every stop was reached.
    pub next: Option<usize>,
    /// Great-circle distance to the next stop in km (0 once all were reached).
    pub distance_km: f64,
    /// Travel minutes to the next stop at the contract's speed (CONTRACT 5.1), rounded up.
    pub eta_minutes: i64,
}

/// The progress after a location update at `at`, given the stops reached before.
///
/// Reaching a stop can also reach the ones after it that lie within the arrival radius of the
/// same point (two listings in one building).
#[must_use]
pub fn advance(stops: &[Stop], reached_before: usize, at: &Location) -> Progress {
    let mut reached = reached_before.min(stops.len());
    while let Some(stop) = stops.get(reached) {
        if distance_km(at, &stop.location) > ARRIVAL_RADIUS_KM {
            break;
        }
        reached += 1;
    }
    match stops.get(reached) {
        Some(stop) => {
            let km = distance_km(at, &stop.location);
            Progress {
                reached,
                next: Some(reached),
                distance_km: km,
                eta_minutes: travel_minutes_for_km(km),
            }
        }
        None => Progress {
            reached,
            next: None,
            distance_km: 0.0,
            eta_minutes: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ListingId;

    fn stop(n: u128, lat: f64, lng: f64) -> Stop {
        Stop {
            id: ListingId(uuid::Uuid::from_u128(n)),
            location: Location::new(lat, lng).expect("valid"),
        }
    }

    fn at(lat: f64, lng: f64) -> Location {
        Location::new(lat, lng).expect("valid")
    }

    #[test]
    fn far_away_heads_to_the_first_stop_with_travel_minutes() {
        let stops = [stop(1, 40.0, -74.0), stop(2, 40.1, -74.0)];
        let p = advance(&stops, 0, &at(40.05, -74.0));
        assert_eq!(p.reached, 0);
        assert_eq!(p.next, Some(0));
        let km = distance_km(&at(40.05, -74.0), &stops[0].location);
        assert!((p.distance_km - km).abs() < 1e-12);
        // ~5.56 km at 30 km/h is 11.1 minutes: rounded up.
        assert_eq!(p.eta_minutes, 12);
    }

    #[test]
    fn arriving_reaches_the_stop_and_points_to_the_next() {
        let stops = [stop(1, 40.0, -74.0), stop(2, 40.1, -74.0)];
        let p = advance(&stops, 0, &at(40.0005, -74.0));
        assert_eq!((p.reached, p.next), (1, Some(1)));
        assert!(p.eta_minutes > 0);
    }

    #[test]
    fn stops_are_reached_in_order_only() {
        let stops = [stop(1, 40.0, -74.0), stop(2, 40.1, -74.0)];
        // Standing on the second listing before the first one was visited.
        let p = advance(&stops, 0, &at(40.1, -74.0));
        assert_eq!((p.reached, p.next), (0, Some(0)));
    }

    #[test]
    fn listings_in_one_building_are_reached_together() {
        let stops = [stop(1, 40.0, -74.0), stop(2, 40.0001, -74.0)];
        let p = advance(&stops, 0, &at(40.0, -74.0));
        assert_eq!((p.reached, p.next, p.eta_minutes), (2, None, 0));
    }

    #[test]
    fn progress_never_goes_back() {
        let stops = [stop(1, 40.0, -74.0), stop(2, 40.1, -74.0)];
        let p = advance(&stops, 1, &at(39.0, -74.0));
        assert_eq!((p.reached, p.next), (1, Some(1)));
        let done = advance(&stops, 7, &at(39.0, -74.0));
        assert_eq!((done.reached, done.next), (2, None));
    }
}
