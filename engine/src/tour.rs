//! Tours: what a succeeded payment asks for, and the plan the engine matches (CONTRACT 5.1).

use std::sync::OnceLock;

use h3o::{CellIndex, Resolution};
use serde::{Deserialize, Serialize};

use crate::geo::Location;
use crate::ids::{ListingId, RealtorId, TourId};
use crate::route::{plan_route, MAX_LISTINGS};
use crate::time::TimeWindow;

/// Minutes spent at each listing unless configured otherwise (CONTRACT 5.1).
pub const DEFAULT_VISIT_MINUTES: i64 = 30;

/// One listing to visit: its id and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stop {
    /// The listing.
    pub id: ListingId,
    /// Where it is.
    #[serde(flatten)]
    pub location: Location,
}

/// Why a tour cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A tour needs at least one listing.
    #[error("a tour needs at least one listing")]
    NoListings,
    /// More than 8 listings.
    #[error("a tour visits at most {MAX_LISTINGS} listings, got {0}")]
    TooManyListings(usize),
    /// The same listing twice.
    #[error("listing {0} appears twice")]
    DuplicateListing(ListingId),
    /// Visit minutes must be positive.
    #[error("visit minutes must be positive")]
    VisitMinutes,
}

/// A tour ready for matching: stops in visiting order, duration, window, and who declined it.
#[derive(Debug, Clone, PartialEq)]
pub struct TourPlan {
    /// The tour.
    pub tour_id: TourId,
    /// Stops in visiting order.
    pub stops: Vec<Stop>,
    /// The customer's window.
    pub window: TimeWindow,
    /// Visits plus travel between stops, in seconds.
    pub duration_seconds: i64,
    /// Travel between stops, in minutes.
    pub travel_minutes: i64,
    /// Realtors that declined this tour; never offered it again.
    pub declined: Vec<RealtorId>,
    first_cell: CellMemo,
}

/// The first stop's H3 cell at the resolution first asked for: every shard searching the plan
/// asks for the same, and locating a point in H3 costs as much as a whole short search.
/// Equal plans are equal whatever this holds.
#[derive(Debug, Clone, Default)]
struct CellMemo(OnceLock<(Resolution, CellIndex)>);

impl PartialEq for CellMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl TourPlan {
    /// Orders the cart's listings (exact, ties keep cart order) and computes the duration.
    ///
    /// # Errors
    /// When there are no listings, more than 8, a listing twice, or `visit_minutes <= 0`.
    pub fn new(
        tour_id: TourId,
        cart: &[Stop],
        window: TimeWindow,
        visit_minutes: i64,
        declined: Vec<RealtorId>,
    ) -> Result<Self, PlanError> {
        if cart.is_empty() {
            return Err(PlanError::NoListings);
        }
        if cart.len() > MAX_LISTINGS {
            return Err(PlanError::TooManyListings(cart.len()));
        }
        if visit_minutes <= 0 {
            return Err(PlanError::VisitMinutes);
        }
        for (i, a) in cart.iter().enumerate() {
            if cart[..i].iter().any(|b| b.id == a.id) {
                return Err(PlanError::DuplicateListing(a.id));
            }
        }
        let locations: Vec<Location> = cart.iter().map(|s| s.location).collect();
        let route = plan_route(&locations);
        let stops = route.order.iter().map(|&i| cart[i]).collect();
        let visits = visit_minutes * i64::try_from(cart.len()).unwrap_or(i64::MAX);
        Ok(Self {
            tour_id,
            stops,
            window,
            duration_seconds: (visits + route.travel_minutes) * 60,
            travel_minutes: route.travel_minutes,
            declined,
            first_cell: CellMemo::default(),
        })
    }

    /// The first stop (where the realtor's service radius is measured to).
    #[must_use]
    pub fn first(&self) -> &Location {
        // `new` refuses an empty cart, so there is always a first stop.
        &self.stops[0].location
    }

    /// The H3 cell of the first stop at `resolution` (remembered for the first resolution
    /// asked for).
    #[must_use]
    pub fn first_cell(&self, resolution: Resolution) -> CellIndex {
        let &(r, cell) = self
            .first_cell
            .0
            .get_or_init(|| (resolution, self.first().cell(resolution)));
        if r == resolution {
            cell
        } else {
            self.first().cell(resolution)
        }
    }

    /// The last stop.
    #[must_use]
    pub fn last(&self) -> &Location {
        &self.stops[self.stops.len() - 1].location
    }

    /// Whether `realtor` declined this tour.
    #[must_use]
    pub fn is_declined_by(&self, realtor: RealtorId) -> bool {
        self.declined.contains(&realtor)
    }

    /// Whether the window can hold the tour at all (ignoring every realtor).
    #[must_use]
    pub fn fits_window(&self) -> bool {
        let (ws, we) = self.window.seconds();
        we - ws >= self.duration_seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn stop(lat: f64, lng: f64) -> Stop {
        Stop {
            id: ListingId::new_random(),
            location: Location::new(lat, lng).unwrap(),
        }
    }

    fn window() -> TimeWindow {
        TimeWindow::new(
            Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 1, 18, 0, 0).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn duration_is_visits_plus_travel() {
        // 0.1 degree of longitude at 38.7N is about 8.7 km: 18 minutes at 30 km/h.
        let cart = [stop(38.7, -9.1), stop(38.7, -9.0)];
        let plan = TourPlan::new(TourId::new_random(), &cart, window(), 30, vec![]).unwrap();
        assert_eq!(plan.travel_minutes, 18);
        assert_eq!(plan.duration_seconds, (60 + 18) * 60);
        assert!(plan.fits_window());
    }

    #[test]
    fn refuses_bad_carts() {
        let id = TourId::new_random();
        assert_eq!(
            TourPlan::new(id, &[], window(), 30, vec![]),
            Err(PlanError::NoListings)
        );
        let nine: Vec<Stop> = (0..9)
            .map(|i| stop(38.7, -9.0 - f64::from(i) * 0.01))
            .collect();
        assert_eq!(
            TourPlan::new(id, &nine, window(), 30, vec![]),
            Err(PlanError::TooManyListings(9))
        );
        let s = stop(38.7, -9.1);
        assert!(matches!(
            TourPlan::new(id, &[s, s], window(), 30, vec![]),
            Err(PlanError::DuplicateListing(_))
        ));
    }

    #[test]
    fn stop_wire_shape_is_flat() {
        let s = stop(38.7, -9.1);
        let json = serde_json::to_value(s).unwrap();
        assert_eq!(json["lat"], 38.7);
        assert!(json["id"].is_string());
        let back: Stop = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }
}
