//! A coarse cell of the index: its realtors sorted by service radius, and the columns derived
//! from them that searches far from a tour read instead of whole slots (radii, entries,
//! availability, homes on the unit sphere, and 16-byte `f32` records of home and radius).

use h3o::CellIndex;

use crate::geo::{GeoPoint, Location, EARTH_RADIUS_KM};
use crate::matching::index::Slot;

/// A coarse cell's realtors, sorted by service radius, and how far their homes lie from its
/// centre: by the triangle inequality nobody here is nearer a point than its distance to
/// the centre minus `reach_km`, so a search passes over everyone whose radius is smaller
/// without reading them.
#[derive(Debug, Clone)]
pub(super) struct CoarseCell {
    pub(super) centre: GeoPoint,
    /// Largest distance from the centre to a home ever indexed here (never shrinks).
    pub(super) reach_km: f64,
    /// Largest distance from a home here to a stop booked on that realtor's calendar (never
    /// shrinks): no booked stop of the cell lies farther than `reach_km` plus this from the
    /// centre.
    pub(super) stop_reach_km: f64,
    pub(super) slots: Vec<Slot>,
    /// For each slot, in the same order: its home on the unit sphere, the cosine of its
    /// radius's angle and whether it is available, to tell who is available within radius
    /// with one dot product, reading 40 bytes a realtor instead of the slot's 72 as well.
    pub(super) reach: Vec<Reach>,
    /// Each slot's service radius, in the same order (ascending): what the binary searches
    /// for a radius range read, 8 bytes apart instead of a slot apart.
    pub(super) radii: Vec<f64>,
    /// Each slot's entry, in the same order: what telling apart the realtors a search has
    /// seen reads, 4 bytes apart.
    pub(super) entries: Vec<u32>,
    /// Each slot's home relative to the centre on the unit sphere and the square of the chord
    /// its radius spans (`-1` when unavailable), as `f32`, in the same order: the count of
    /// realtors within radius of a point reads 16 bytes a realtor instead of `reach`'s 40
    /// (see [`CoarseCell::available_within`] for why `f32` decides exactly).
    pub(super) near: Vec<[f32; 4]>,
    /// `unavailable_from[i]`: how many of `slots[i..]` are not available (one more entry than
    /// slots), so that a search can count the realtors of a radius range it rules out at once.
    pub(super) unavailable_from: Vec<u32>,
    /// The working hours every realtor here shares, if they all share one set.
    pub(super) one_hours: Option<u32>,
    /// The centre on the unit sphere, and the cosine of the angle beyond which no realtor
    /// here can reach a point (the largest radius plus `reach_km`): a search passes over
    /// the cell for one dot product.
    pub(super) centre_unit: [f64; 3],
    pub(super) cos_nobody_reaches: f64,
    /// A number no other coarse cell of the index has now: where a searcher keeps what it
    /// learnt of this cell during one search (see [`super::scratch::CoarseMark`]).
    pub(super) id: u32,
    /// Changes whenever a realtor joins or leaves the cell (a move or new hours is both);
    /// never repeats. Summaries built for another version are rebuilt; bookings and releases
    /// reach them directly (see [`super::free_time`]).
    pub(super) version: u64,
}

/// The centre of `cell` as a point (H3's centres are always valid coordinates).
pub(super) fn cell_centre(cell: CellIndex) -> Option<GeoPoint> {
    let c = h3o::LatLng::from(cell);
    Location::new(c.lat(), c.lng()).ok().map(|l| l.point())
}

impl CoarseCell {
    /// Brings `unavailable_from`, `one_hours`, `radii`, `entries` and the availability in
    /// `reach` up to date with `slots`.
    pub(super) fn recount(&mut self) {
        self.radii.clear();
        self.radii.extend(self.slots.iter().map(|s| s.radius_km));
        self.entries.clear();
        self.entries.extend(self.slots.iter().map(|s| s.entry));
        for (r, s) in self.reach.iter_mut().zip(&self.slots) {
            r.available = s.available;
        }
        let c = self.centre_unit;
        self.near.clear();
        self.near.extend(self.reach.iter().map(|r| {
            let chord_squared = if r.available {
                (2.0 - 2.0 * r.cos_radius) as f32
            } else {
                -1.0
            };
            [
                (r.unit[0] - c[0]) as f32,
                (r.unit[1] - c[1]) as f32,
                (r.unit[2] - c[2]) as f32,
                chord_squared,
            ]
        }));
        self.unavailable_from.clear();
        self.unavailable_from.resize(self.slots.len() + 1, 0);
        for (i, s) in self.slots.iter().enumerate().rev() {
            self.unavailable_from[i] = self.unavailable_from[i + 1] + u32::from(!s.available);
        }
        let first = self.slots.first().map(|s| s.hours);
        self.one_hours = first.filter(|&h| self.slots.iter().all(|s| s.hours == h));
        let largest = self.slots.last().map_or(0.0, |s| s.radius_km);
        self.cos_nobody_reaches =
            Reach::new(&self.centre, largest + self.reach_km + 1e-6).cos_radius;
    }

    /// Whether the realtor of `slots[i]` is available, read from `near` (16 bytes apart).
    pub(super) fn is_available(&self, i: usize) -> bool {
        self.near[i][3] >= 0.0
    }

    /// How many realtors of `slots[band]` are available and within their radius of the point
    /// `t` (on the unit sphere): from `near` when that can tell, else from `reach`; `None`
    /// when one of them is too close to their radius for either (the caller then asks one
    /// by one, with the haversine).
    pub(super) fn available_within(
        &self,
        band: std::ops::Range<usize>,
        t: [f64; 3],
    ) -> Option<usize> {
        self.available_within_f32(band.clone(), t)
            .or_else(|| self.available_within_f64(band, t))
    }

    /// [`CoarseCell::available_within`] from `near`; `None` when one of them is too close to
    /// their radius to tell this way, or the cell or `t`'s distance from it is too large.
    ///
    /// Why `f32` decides exactly. With every home and `t` within 0.01 of the centre (chords
    /// on the unit sphere, ~64 km), each coordinate of a difference is under 0.02 and, with
    /// its two roundings to `f32` and the subtraction, errs by under 2.4e-9; the squared
    /// chord then errs by under 5e-10, and the radius's (when under 1e-3; a larger one is
    /// surely reached) by under 6e-11. A squared chord at least `MARGIN` (2e-9) from the
    /// radius's is thus on the same side of it as the exact one, by over 1.4e-9, which puts
    /// the cosines (1 minus half the squared chord) over 7e-10 apart: far beyond the 1e-12
    /// below which the `f64` test hands over to the haversine, so both say the same.
    pub(super) fn available_within_f32(
        &self,
        band: std::ops::Range<usize>,
        t: [f64; 3],
    ) -> Option<usize> {
        const MARGIN: f32 = 2e-9;
        if self.reach_km / EARTH_RADIUS_KM > 0.01 {
            return None;
        }
        let c = self.centre_unit;
        let d = [t[0] - c[0], t[1] - c[1], t[2] - c[2]];
        if d[0] * d[0] + d[1] * d[1] + d[2] * d[2] > 1e-4 {
            return None;
        }
        let d = [d[0] as f32, d[1] as f32, d[2] as f32];
        let mut within = 0;
        let mut too_close = false;
        for n in &self.near[band] {
            let (x, y, z) = (n[0] - d[0], n[1] - d[1], n[2] - d[2]);
            let chord_squared = x * x + y * y + z * z;
            too_close |= (chord_squared - n[3]).abs() < MARGIN;
            within += usize::from(chord_squared <= n[3]);
        }
        (!too_close).then_some(within)
    }

    /// [`CoarseCell::available_within`] from `reach`: one dot product each, branch-free. `None`
    /// when one of them is too close to their radius for the cosines to decide.
    fn available_within_f64(&self, band: std::ops::Range<usize>, t: [f64; 3]) -> Option<usize> {
        let mut within = 0;
        let mut too_close = false;
        for r in &self.reach[band] {
            let cos = r.unit[0] * t[0] + r.unit[1] * t[1] + r.unit[2] * t[2];
            too_close |= (cos - r.cos_radius).abs() < 1e-12;
            within += usize::from(r.available & (cos >= r.cos_radius));
        }
        (!too_close).then_some(within)
    }
}

/// A home on the unit sphere and the cosine of the angle its service radius spans (and, in a
/// coarse cell, whether that realtor is available).
#[derive(Debug, Clone, Copy)]
pub(super) struct Reach {
    pub(super) unit: [f64; 3],
    pub(super) cos_radius: f64,
    pub(super) available: bool,
}

impl Reach {
    pub(super) fn new(point: &GeoPoint, radius_km: f64) -> Self {
        Self {
            unit: point.unit(),
            cos_radius: cos_of_km(radius_km),
            available: true,
        }
    }

    /// Whether the radius reaches the point `t` on the unit sphere: when the angle to it is at
    /// most the radius's. The cosines decide, unless they are too close to call, where
    /// `haversine_within` (the test of a realtor read one by one) does.
    #[inline]
    pub(super) fn reaches(&self, t: [f64; 3], haversine_within: impl FnOnce() -> bool) -> bool {
        let cos = self.unit[0] * t[0] + self.unit[1] * t[1] + self.unit[2] * t[2];
        if (cos - self.cos_radius).abs() < 1e-12 {
            haversine_within()
        } else {
            cos >= self.cos_radius
        }
    }
}

/// The cosine of the angle a great-circle distance of `km` spans: what a dot product of two
/// homes on the unit sphere is compared with. No angle between two points exceeds pi: a
/// distance that long reaches everywhere (`-2`, below every cosine).
pub(super) fn cos_of_km(km: f64) -> f64 {
    let angle = km / EARTH_RADIUS_KM;
    if angle >= std::f64::consts::PI {
        -2.0
    } else {
        angle.cos()
    }
}
