//! Geography: checked locations, great-circle distance, travel time and H3 cells.
//!
//! CONTRACT 5.1: distance is haversine on a sphere of radius 6371.0088 km; travel is that
//! distance at 30 km/h, rounded up to the whole minute.

use h3o::{CellIndex, LatLng, Resolution};
use serde::{Deserialize, Serialize};

/// Mean Earth radius used for every distance (CONTRACT 5.1).
pub const EARTH_RADIUS_KM: f64 = 6371.0088;
/// Travel speed between two places (CONTRACT 5.1).
pub const TRAVEL_SPEED_KMH: f64 = 30.0;

/// Why a latitude/longitude pair was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum GeoError {
    /// Latitude not a finite number in [-90, 90].
    #[error("latitude {0} is outside [-90, 90]")]
    Latitude(f64),
    /// Longitude not a finite number in [-180, 180].
    #[error("longitude {0} is outside [-180, 180]")]
    Longitude(f64),
}

/// A point on Earth in degrees. The only way in is [`Location::new`], so every `Location` is valid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawLocation", into = "RawLocation")]
pub struct Location {
    lat: f64,
    lng: f64,
    point: GeoPoint,
    h3: LatLng,
}

#[derive(Serialize, Deserialize)]
struct RawLocation {
    lat: f64,
    lng: f64,
}

impl TryFrom<RawLocation> for Location {
    type Error = GeoError;
    fn try_from(raw: RawLocation) -> Result<Self, GeoError> {
        Location::new(raw.lat, raw.lng)
    }
}

impl From<Location> for RawLocation {
    fn from(loc: Location) -> Self {
        RawLocation {
            lat: loc.lat,
            lng: loc.lng,
        }
    }
}

impl Location {
    /// A location from degrees.
    ///
    /// # Errors
    /// When latitude is not finite or outside [-90, 90], or longitude outside [-180, 180].
    pub fn new(lat: f64, lng: f64) -> Result<Self, GeoError> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(GeoError::Latitude(lat));
        }
        if !lng.is_finite() || !(-180.0..=180.0).contains(&lng) {
            return Err(GeoError::Longitude(lng));
        }
        let h3 = LatLng::new(lat, lng).map_err(|_| GeoError::Latitude(lat))?;
        Ok(Self {
            lat,
            lng,
            point: GeoPoint::from_degrees(lat, lng),
            h3,
        })
    }

    /// Latitude in degrees.
    #[must_use]
    pub fn lat(&self) -> f64 {
        self.lat
    }

    /// Longitude in degrees.
    #[must_use]
    pub fn lng(&self) -> f64 {
        self.lng
    }

    /// The point in the form distance computations want.
    #[must_use]
    pub fn point(&self) -> GeoPoint {
        self.point
    }

    /// The square of about 6 m (radians times 10^6, floored) holding the location, and for each
    /// coordinate whether the point lies within 10^-6 of the square's lower (-1) or upper (1)
    /// edge. Two points at distance zero (the only distance with no travel time) share a square
    /// unless one of them lies on such an edge.
    /// (From the degrees kept: a search asks this of every tour.)
    pub(crate) fn square(&self) -> ((i64, i8), (i64, i8)) {
        let key = |rad: f64| {
            let x = (rad + 0.0) * 1e6; // `+ 0.0`: -0.0 and 0.0 are one square
            let floor = x.floor();
            let edge = if x - floor < 1e-6 {
                -1
            } else if x - floor > 1.0 - 1e-6 {
                1
            } else {
                0
            };
            (floor as i64, edge) // saturating
        };
        (key(self.lat.to_radians()), key(self.lng.to_radians()))
    }

    /// The square of [`Location::square`] alone.
    pub(crate) fn square_key(&self) -> (i64, i64) {
        let ((lat, _), (lng, _)) = self.square();
        (lat, lng)
    }

    /// The H3 cell holding this location at `resolution`.
    #[must_use]
    pub fn cell(&self, resolution: Resolution) -> CellIndex {
        self.h3.to_cell(resolution)
    }
}

/// A location pre-digested for fast haversine: the latitude's cosine and the sines and cosines
/// of half the latitude and longitude.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    cos_lat: f64,
    /// Sine and cosine of half the latitude and of half the longitude: the haversine's
    /// `sin(dlat / 2)` and `sin(dlng / 2)` follow from them by the angle-difference identity,
    /// with no trigonometry per distance.
    half_lat: (f64, f64),
    half_lng: (f64, f64),
}

impl GeoPoint {
    fn from_degrees(lat: f64, lng: f64) -> Self {
        let lat_rad = lat.to_radians();
        let lng_rad = lng.to_radians();
        Self {
            cos_lat: lat_rad.cos(),
            half_lat: (lat_rad * 0.5).sin_cos(),
            half_lng: (lng_rad * 0.5).sin_cos(),
        }
    }

    /// The point on the unit sphere: two points' dot product is the cosine of the angle
    /// between them, a cheap stand-in for comparing a distance with a fixed one.
    pub(crate) fn unit(&self) -> [f64; 3] {
        // Double-angle formulas from the halves kept.
        let double = |(sin, cos): (f64, f64)| (2.0 * sin * cos, cos * cos - sin * sin);
        let (sin_lng, cos_lng) = double(self.half_lng);
        [
            self.cos_lat * cos_lng,
            self.cos_lat * sin_lng,
            double(self.half_lat).0,
        ]
    }

    /// Great-circle (haversine) distance in km. The one implementation every rule uses.
    ///
    /// `sin((b - a) / 2) = sin(b / 2) cos(a / 2) - cos(b / 2) sin(a / 2)`, from the halves
    /// each point keeps: the same formula as computing the sines of the differences, about
    /// twice as fast (a search measures thousands of distances), exactly symmetric, and exactly
    /// zero between a point and itself.
    #[must_use]
    pub fn distance_km(&self, other: &GeoPoint) -> f64 {
        let sine_of_half_difference = |a: (f64, f64), b: (f64, f64)| b.0 * a.1 - b.1 * a.0;
        let s_lat = sine_of_half_difference(self.half_lat, other.half_lat);
        let s_lng = sine_of_half_difference(self.half_lng, other.half_lng);
        let h = s_lat * s_lat + self.cos_lat * other.cos_lat * s_lng * s_lng;
        2.0 * EARTH_RADIUS_KM * asin(h.sqrt().min(1.0))
    }
}

/// `asin(x)` for `0 <= x <= 1`. Distances within a metro (up to ~250 km, `x <= 0.02`) take
/// the first five terms of the Taylor series, whose remainder (below `x^11 / 40`) is under a
/// hundredth of an ulp there: ten instructions instead of libm's hundred, for the distance
/// a search measures to every realtor it meets. Longer ones ask libm.
#[inline]
fn asin(x: f64) -> f64 {
    if x > 0.02 {
        return x.asin();
    }
    let x2 = x * x;
    // 1, 1/6, 3/40, 5/112, 35/1152: (2n)! / (4^n (n!)^2 (2n + 1)).
    x * (1.0 + x2 * (1.0 / 6.0 + x2 * (3.0 / 40.0 + x2 * (5.0 / 112.0 + x2 * (35.0 / 1152.0)))))
}

/// Great-circle distance between two locations in km (CONTRACT 5.1).
#[must_use]
pub fn distance_km(a: &Location, b: &Location) -> f64 {
    a.point.distance_km(&b.point)
}

/// Travel minutes for a distance: at 30 km/h, rounded up to the whole minute.
#[must_use]
pub fn travel_minutes_for_km(km: f64) -> i64 {
    // km / 30 km/h * 60 min/h = km * 2 minutes; the cast saturates on absurd input. This is
    // `ceil` done by hand: without SSE4.1 the standard one is a software routine, and a
    // search rounds a travel time for every booking it looks at. Same result for every input.
    let minutes = km * 60.0 / TRAVEL_SPEED_KMH;
    let whole = minutes as i64; // towards zero
    if (whole as f64) < minutes {
        whole.saturating_add(1)
    } else {
        whole
    }
}

/// Travel minutes between two locations (CONTRACT 5.1).
#[must_use]
pub fn travel_minutes(a: &Location, b: &Location) -> i64 {
    travel_minutes_for_km(distance_km(a, b))
}

/// Travel seconds between two locations: [`travel_minutes`] in seconds.
#[must_use]
pub fn travel_seconds(a: &Location, b: &Location) -> i64 {
    travel_minutes(a, b) * 60
}

/// A lower bound, in km, on the distance from any point of an H3 cell to any point of any cell
/// at grid distance greater than `k` from it. This is what makes the ring search exact: after
/// exploring rings 0..=k, nobody unexplored can be nearer than this.
///
/// Why it holds: H3 is a trivalent tiling, so no vertex touches both ring j-1 and ring j+1, and a
/// path leaving the disk of radius k must cross every ring 1..=k from one boundary to another it
/// does not touch. Measured at the most distorted places (the 12 pentagons and their
/// neighbours, where edges are ~0.70 of the average), the true minimum is about
/// `(1.03 k - 0.33)` average edge lengths; we take `0.9 (k - 0.4)` for margin.
/// `tests::ring_bound_holds_at_pentagons` re-measures it on every test run.
#[must_use]
pub fn ring_bound_km(resolution: Resolution, k: u32) -> f64 {
    if k == 0 {
        return 0.0;
    }
    0.9 * (f64::from(k) - 0.4) * resolution.edge_length_km()
}

/// The H3 cells at exactly grid distance `k` from `origin` (pentagon-safe).
#[must_use]
pub fn ring(origin: CellIndex, k: u32) -> Vec<CellIndex> {
    let mut out = Vec::new();
    ring_into(origin, k, &mut out);
    out
}

/// [`ring`] into a reused buffer: the fast algorithm, or the pentagon-safe one where the fast
/// one gives up.
pub fn ring_into(origin: CellIndex, k: u32, out: &mut Vec<CellIndex>) {
    out.clear();
    for cell in origin.grid_ring_fast(k) {
        match cell {
            Some(cell) => out.push(cell),
            None => {
                out.clear();
                out.extend(
                    origin
                        .grid_disk_distances_safe(k)
                        .filter(|&(_, d)| d == k)
                        .map(|(c, _)| c),
                );
                return;
            }
        }
    }
}

/// H3 resolution 15 cell id of a location as a signed integer, for database columns: the cells of
/// any coarser H3 cell form one contiguous range of these ids (see [`cell_id_range`]).
#[must_use]
pub fn fine_cell_id(location: &Location) -> i64 {
    i64::try_from(u64::from(location.cell(Resolution::Fifteen))).unwrap_or(i64::MAX)
}

/// The inclusive range of resolution-15 cell ids ([`fine_cell_id`]) descending from `cell`.
///
/// H3 ids store the resolution in bits 52..56 and one 3-bit digit per resolution below that;
/// the descendants of `cell` share its base cell and first digits, so they are contiguous.
/// H3's hierarchy is only approximately geometric: a point inside `cell` may have a fine cell
/// descending from a neighbour of `cell`. [`covering_id_ranges`] accounts for that.
#[must_use]
pub fn cell_id_range(cell: CellIndex) -> (i64, i64) {
    let res = u8::from(cell.resolution()) as u32;
    let raw = u64::from(cell);
    let res_mask: u64 = 0xF << 52;
    let with_res15 = (raw & !res_mask) | (15u64 << 52);
    // Digits for resolutions res+1..=15 occupy the low 3*(15-res) bits.
    let free_bits = 3 * (15 - res);
    let digits_mask: u64 = if free_bits == 0 {
        0
    } else {
        (1u64 << free_bits) - 1
    };
    let lo = with_res15 & !digits_mask;
    let hi = with_res15 | digits_mask;
    (
        i64::try_from(lo).unwrap_or(i64::MAX),
        i64::try_from(hi).unwrap_or(i64::MAX),
    )
}

/// Fine-id ranges that hold every location geometrically inside `cell`: those of `cell` and its
/// neighbours. Filter the rows they select with `location.cell(res) == cell` for the exact set.
#[must_use]
pub fn covering_id_ranges(cell: CellIndex) -> Vec<(i64, i64)> {
    cell.grid_disk_safe(1).map(cell_id_range).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(lat: f64, lng: f64) -> Location {
        Location::new(lat, lng).unwrap()
    }

    #[test]
    fn series_asin_agrees_with_libm_and_never_decreases() {
        let mut last = 0.0;
        for i in 0..=200_000 {
            let x = 0.021 * f64::from(i) / 200_000.0;
            let (ours, libm) = (asin(x), x.asin());
            assert!(
                (ours - libm).abs() <= 2.0 * f64::EPSILON * libm,
                "{x}: {ours} vs {libm}"
            );
            assert!(ours >= last, "not monotone at {x}");
            last = ours;
        }
        assert_eq!(asin(0.0), 0.0);
        assert_eq!(asin(1.0), std::f64::consts::FRAC_PI_2);
    }

    #[test]
    fn rejects_out_of_range_and_non_finite() {
        assert!(Location::new(90.1, 0.0).is_err());
        assert!(Location::new(-90.1, 0.0).is_err());
        assert!(Location::new(0.0, 180.5).is_err());
        assert!(Location::new(f64::NAN, 0.0).is_err());
        assert!(Location::new(0.0, f64::INFINITY).is_err());
        assert!(Location::new(90.0, -180.0).is_ok());
    }

    #[test]
    fn serde_goes_through_the_checked_constructor() {
        let ok: Location = serde_json::from_str(r#"{"lat":38.7223,"lng":-9.1393}"#).unwrap();
        assert_eq!((ok.lat(), ok.lng()), (38.7223, -9.1393));
        assert!(serde_json::from_str::<Location>(r#"{"lat":200,"lng":0}"#).is_err());
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"lat":38.7223,"lng":-9.1393}"#
        );
    }

    #[test]
    fn haversine_matches_known_distances() {
        // Lisbon - Porto, about 274 km.
        let d = distance_km(&loc(38.7223, -9.1393), &loc(41.1579, -8.6291));
        assert!((d - 274.0).abs() < 1.0, "{d}");
        // One degree of latitude on this sphere: R * pi / 180.
        let d = distance_km(&loc(0.0, 0.0), &loc(1.0, 0.0));
        assert!((d - EARTH_RADIUS_KM * std::f64::consts::PI / 180.0).abs() < 1e-9);
        // Across the antimeridian is short, not half the planet.
        let d = distance_km(&loc(0.0, 179.9), &loc(0.0, -179.9));
        assert!(d < 23.0, "{d}");
        // Antipodes: half the circumference, no NaN.
        let d = distance_km(&loc(90.0, 0.0), &loc(-90.0, 0.0));
        assert!((d - EARTH_RADIUS_KM * std::f64::consts::PI).abs() < 1e-6);
    }

    #[test]
    fn travel_rounding_equals_ceil() {
        let mut x = 0.000_123_f64;
        while x < 1e7 {
            for v in [
                x,
                -x,
                x.next_up(),
                x.next_down(),
                x.round(),
                x.round() / 2.0,
            ] {
                assert_eq!(
                    travel_minutes_for_km(v),
                    (v * 60.0 / 30.0).ceil() as i64,
                    "{v}"
                );
            }
            x *= 1.37;
        }
        for v in [
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            -1e300,
        ] {
            assert_eq!(
                travel_minutes_for_km(v),
                (v * 60.0 / 30.0).ceil() as i64,
                "{v}"
            );
        }
    }

    #[test]
    fn travel_rounds_up_to_the_minute() {
        assert_eq!(travel_minutes_for_km(0.0), 0);
        assert_eq!(travel_minutes_for_km(0.001), 1);
        assert_eq!(travel_minutes_for_km(0.5), 1);
        assert_eq!(travel_minutes_for_km(0.5001), 2);
        assert_eq!(travel_minutes_for_km(15.0), 30);
        let a = loc(38.7, -9.1);
        assert_eq!(travel_seconds(&a, &a), 0);
    }

    /// Points along a cell's boundary (vertices and points between them).
    fn boundary_points(cell: CellIndex, per_edge: usize) -> Vec<Location> {
        let v: Vec<LatLng> = cell.boundary().iter().copied().collect();
        let mut out = Vec::new();
        for i in 0..v.len() {
            let (p, q) = (v[i], v[(i + 1) % v.len()]);
            let mut dlng = q.lng() - p.lng();
            if dlng > 180.0 {
                dlng -= 360.0;
            } else if dlng < -180.0 {
                dlng += 360.0;
            }
            for s in 0..per_edge {
                let t = s as f64 / per_edge as f64;
                let mut lng = p.lng() + dlng * t;
                if lng > 180.0 {
                    lng -= 360.0;
                } else if lng < -180.0 {
                    lng += 360.0;
                }
                out.push(loc(p.lat() + (q.lat() - p.lat()) * t, lng));
            }
        }
        out
    }

    #[test]
    fn ring_bound_holds_at_pentagons() {
        // Around every pentagon (where H3 is most distorted), the antimeridian and a pole: the
        // origin cell's boundary stays at least `ring_bound_km(k)` from cells at distance k+1.
        for res in [Resolution::Five, Resolution::Six, Resolution::Eight] {
            let mut origins: Vec<CellIndex> = res.pentagons().collect();
            origins.extend(res.pentagons().flat_map(|p| ring(p, 1)));
            origins.push(loc(0.0, 179.999).cell(res));
            origins.push(loc(89.99, 0.0).cell(res));
            for origin in origins {
                let inner = boundary_points(origin, 6);
                for (cell, dist) in origin.grid_disk_distances_safe(7) {
                    if dist < 2 {
                        continue;
                    }
                    let bound = ring_bound_km(res, dist - 1);
                    for q in boundary_points(cell, 6) {
                        for p in &inner {
                            let d = distance_km(p, &q);
                            assert!(d >= bound, "{origin} -> {cell} (k={dist}): {d} < {bound}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn covering_ranges_hold_every_point_inside_a_cell() {
        // Points scattered around Lisbon: whenever a point lies in a cell (at any resolution),
        // its fine id falls in one of that cell's covering ranges.
        for i in 0..400 {
            let p = loc(
                38.70 + f64::from(i % 20) * 0.0037,
                -9.20 + f64::from(i / 20) * 0.0041,
            );
            let id = fine_cell_id(&p);
            for r in 0..=15u8 {
                let cell = p.cell(Resolution::try_from(r).unwrap());
                let ranges = covering_id_ranges(cell);
                assert!(
                    ranges.iter().any(|&(lo, hi)| lo <= id && id <= hi),
                    "res {r}"
                );
            }
        }
        // A far point falls in none of them.
        let lisbon = loc(38.7223, -9.1393).cell(Resolution::Seven);
        let far_id = fine_cell_id(&loc(-33.9, 151.2));
        assert!(!covering_id_ranges(lisbon)
            .iter()
            .any(|&(lo, hi)| lo <= far_id && far_id <= hi));
        // Neighbouring cells' own ranges are disjoint.
        let (lo, hi) = cell_id_range(lisbon);
        for n in ring(lisbon, 1) {
            let (nlo, nhi) = cell_id_range(n);
            assert!(nhi < lo || nlo > hi);
        }
    }
}
