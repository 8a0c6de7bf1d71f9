//! How far a place is from leaving a disk of H3 cells: the tight bound of the ring search.
//!
//! After a search has explored the cells within grid distance `k` of the cell holding the
//! tour, nobody unexplored is nearer than the distance from the tour to the nearest cell at
//! distance `k + 1`: a great-circle path from the tour to any unexplored point leaves the disk
//! through one of those cells. [`crate::geo::ring_bound_km`] bounds that distance for any
//! place anywhere on Earth (it must hold at the pentagons, where H3 is most distorted, and for
//! a tour at a corner of its cell), so it is about half the true distance elsewhere, and a
//! search proving a choice must explore about four times the cells it needs.
//!
//! [`escape_km`] measures it instead, from the centre of the cell: the least distance from
//! the centre to the cells of ring `k + 1`, exactly, by the distance to each edge of their
//! boundaries. H3 cell edges are great-circle arcs (straight lines in the gnomonic projection
//! of an icosahedron face, where cells are laid out; cells of the odd resolutions that cross a
//! face edge carry an extra vertex there). A tour at distance `c` from the centre is then at
//! least `escape_km - c` from anything unexplored, by the triangle inequality. Both depend
//! only on the grid, so searchers keep them per cell and ring.

use h3o::{CellIndex, LatLng};

use crate::geo::EARTH_RADIUS_KM;

/// Taken off every measured bound: float error in H3's own vertices and in deciding which
/// cell a point lies in is far below a millimetre; this is a metre.
pub const ESCAPE_MARGIN_KM: f64 = 1e-3;

type Unit = [f64; 3];

fn unit(p: LatLng) -> Unit {
    let (lat, lng) = (p.lat_radians(), p.lng_radians());
    [lat.cos() * lng.cos(), lat.cos() * lng.sin(), lat.sin()]
}

fn dot(a: &Unit, b: &Unit) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: &Unit, b: &Unit) -> Unit {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// The central angle between two unit vectors, accurate for small angles too (from the chord).
fn angle(a: &Unit, b: &Unit) -> f64 {
    let d = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    2.0 * (dot(&d, &d).sqrt() * 0.5).min(1.0).asin()
}

/// The least central angle from `p` to the shorter great-circle arc from `a` to `b`: to the
/// arc's own great circle when `p`'s foot on it lies between the ends, else to the nearer end.
fn angle_to_arc(p: &Unit, a: &Unit, b: &Unit) -> f64 {
    let ends = angle(p, a).min(angle(p, b));
    let n = cross(a, b);
    let len = dot(&n, &n).sqrt();
    if len < 1e-15 {
        return ends;
    }
    let n = [n[0] / len, n[1] / len, n[2] / len];
    let s = dot(p, &n);
    let foot = [p[0] - s * n[0], p[1] - s * n[1], p[2] - s * n[2]];
    let between = dot(&cross(a, &foot), &n) >= 0.0 && dot(&cross(&foot, b), &n) >= 0.0;
    if between {
        s.abs().min(1.0).asin().min(ends)
    } else {
        ends
    }
}

/// The least great-circle distance, km, from `centre` to any point of `cells`, none of which
/// holds it: the least distance to an edge of their boundaries.
#[must_use]
pub fn distance_to_cells_km(centre: LatLng, cells: &[CellIndex]) -> f64 {
    let p = unit(centre);
    let mut least = f64::INFINITY;
    for cell in cells {
        let boundary = cell.boundary();
        let vertices: Vec<Unit> = boundary.iter().map(|&v| unit(v)).collect();
        for (i, a) in vertices.iter().enumerate() {
            let b = &vertices[(i + 1) % vertices.len()];
            least = least.min(angle_to_arc(&p, a, b));
        }
    }
    least * EARTH_RADIUS_KM
}

/// The centre of `cell`.
#[must_use]
pub fn centre(cell: CellIndex) -> LatLng {
    LatLng::from(cell)
}

/// How far the centre of `origin` is from leaving the disk of rings `0..=k` around it, given
/// the cells of ring `k + 1` (`outside`), less [`ESCAPE_MARGIN_KM`]. Nobody in a cell farther
/// than `k` from `origin` is nearer a point `c` km from its centre than this less `c`.
#[must_use]
pub fn escape_km(origin: CellIndex, outside: &[CellIndex]) -> f64 {
    distance_to_cells_km(centre(origin), outside) - ESCAPE_MARGIN_KM
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::{ring, ring_bound_km, Location};
    use h3o::Resolution;

    fn loc(lat: f64, lng: f64) -> Location {
        Location::new(lat, lng).unwrap()
    }

    fn to_location(p: LatLng) -> Location {
        loc(p.lat(), p.lng())
    }

    #[test]
    fn the_distance_to_an_arc_is_to_its_middle_or_its_ends() {
        let a = unit(LatLng::new(0.0, 0.0).unwrap());
        let b = unit(LatLng::new(0.0, 10.0).unwrap());
        // Above the middle: the distance to the equator.
        let p = unit(LatLng::new(1.0, 5.0).unwrap());
        assert!((angle_to_arc(&p, &a, &b).to_degrees() - 1.0).abs() < 1e-9);
        // Beyond an end: the distance to that end.
        let q = unit(LatLng::new(0.0, 12.0).unwrap());
        assert!((angle_to_arc(&q, &a, &b).to_degrees() - 2.0).abs() < 1e-9);
        assert_eq!(angle_to_arc(&q, &a, &b), angle_to_arc(&q, &b, &a));
    }

    /// Origins where H3 is hard: every pentagon and a neighbour of each, the antimeridian, a
    /// pole, and Lisbon.
    fn origins(res: Resolution) -> Vec<CellIndex> {
        let mut origins: Vec<CellIndex> = res.pentagons().collect();
        origins.extend(res.pentagons().map(|p| ring(p, 1)[0]));
        origins.push(loc(0.0, 179.999).cell(res));
        origins.push(loc(-0.3, -179.999).cell(res));
        origins.push(loc(89.99, 0.0).cell(res));
        origins.push(loc(38.7223, -9.1393).cell(res));
        origins
    }

    #[test]
    fn nobody_outside_the_disk_is_nearer_than_the_escape_bound() {
        // A lattice of points around each origin, placed in cells by H3 as realtors' homes
        // are: whoever lies farther than `k` rings out is at least `escape_km - c` away from a
        // tour `c` from the origin's centre, for tours all over the origin cell.
        for res in [Resolution::Five, Resolution::Six, Resolution::Eight] {
            let edge = res.edge_length_km();
            for origin in origins(res) {
                let centre_ll = centre(origin);
                let centre_loc = to_location(centre_ll);
                let mut tours: Vec<Location> = vec![centre_loc];
                tours.extend(origin.boundary().iter().map(|&v| to_location(v)));
                let escapes: Vec<f64> = (0..5)
                    .map(|k| escape_km(origin, &ring(origin, k + 1)))
                    .collect();
                const SIDE: i32 = 70;
                for i in 0..SIDE * SIDE {
                    let span = 8.0 * edge / 111.0;
                    let step = |n: i32| (f64::from(n) / f64::from(SIDE - 1) * 2.0 - 1.0) * span;
                    let lat = (centre_loc.lat() + step(i / SIDE)).clamp(-90.0, 90.0);
                    let mut lng = centre_loc.lng() + step(i % SIDE) * 3.0;
                    if lng > 180.0 {
                        lng -= 360.0;
                    } else if lng < -180.0 {
                        lng += 360.0;
                    }
                    let p = loc(lat, lng);
                    let Ok(d) = origin.grid_distance(p.cell(res)) else {
                        continue;
                    };
                    for (k, escape) in escapes.iter().enumerate() {
                        if d <= k as i32 {
                            continue;
                        }
                        for t in &tours {
                            let c = crate::geo::distance_km(t, &centre_loc);
                            let bound = escape - c;
                            let got = crate::geo::distance_km(t, &p);
                            assert!(got >= bound, "{origin} k={k}: {got} < {bound}");
                        }
                    }
                }
                // And it is the tighter bound where H3 is regular (not at the pentagons).
                if !origin.is_pentagon() && ring(origin, 1).iter().all(|c| !c.is_pentagon()) {
                    assert!(escapes[3] > ring_bound_km(res, 3) + 0.5 * edge, "{origin}");
                }
            }
        }
    }
}
