//! Scale-out regions (README, "Scale-out"): the coarse H3 cell a place belongs to, and the
//! `payments` partition of that region. A producer that sends each payment to the partition
//! of its first listing's region lets one `tourwise serve` process of the consumer group make
//! all the bookings of a region; any partitioning stays correct (PostgreSQL guards every
//! booking), this one keeps the processes out of each other's way.

use h3o::{CellIndex, Resolution};

use crate::geo::Location;

/// Regions are H3 cells at resolution 3 (about 12,400 km², 60 km across): a metro area and
/// the realtors who serve it, who rarely reach past the neighbouring region.
pub const REGION_RESOLUTION: Resolution = Resolution::Three;

/// The region holding `location`.
#[must_use]
pub fn region(location: &Location) -> CellIndex {
    location.cell(REGION_RESOLUTION)
}

/// The partition (of `partitions`, at least 1) that the region of `location` maps to:
/// splitmix64 of the region's 64-bit H3 index, modulo `partitions`. (A coarse cell's index
/// ends in constant bits, so it is mixed before taking the modulo.)
#[must_use]
pub fn region_partition(location: &Location, partitions: u32) -> u32 {
    let mixed = splitmix64(u64::from(region(location)));
    // The remainder is below `partitions`, a u32.
    u32::try_from(mixed % u64::from(partitions.max(1))).unwrap_or(0)
}

/// The finaliser of splitmix64 (Steele, Lea, Flood 2014).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn at(lat: f64, lng: f64) -> Location {
        Location::new(lat, lng).unwrap()
    }

    #[test]
    fn a_metro_area_is_one_region() {
        let centre = at(38.7223, -9.1393);
        for (dlat, dlng) in [(0.05, 0.05), (-0.05, 0.05), (0.05, -0.05), (-0.05, -0.05)] {
            let near = at(38.7223 + dlat, -9.1393 + dlng);
            assert_eq!(region(&near), region(&centre));
            assert_eq!(region_partition(&near, 12), region_partition(&centre, 12));
        }
    }

    #[test]
    fn the_mapping_is_pinned_for_producers() {
        // Producers in other languages reimplement it: these values must never change.
        let lisbon = at(38.7223, -9.1393);
        assert_eq!(region(&lisbon).to_string(), "833933fffffffff");
        assert_eq!(region_partition(&lisbon, 4), 2);
        assert_eq!(region_partition(&lisbon, 1), 0);
        assert_eq!(region_partition(&lisbon, 0), 0);
    }

    #[test]
    fn cities_spread_over_the_partitions() {
        let cities = [
            (38.72, -9.14),
            (41.15, -8.61),
            (40.42, -3.70),
            (41.39, 2.17),
            (48.86, 2.35),
            (52.52, 13.40),
            (51.51, -0.13),
            (45.46, 9.19),
            (50.85, 4.35),
            (52.37, 4.90),
            (48.21, 16.37),
            (59.33, 18.07),
        ];
        let used: HashSet<u32> = cities
            .iter()
            .map(|(lat, lng)| region_partition(&at(*lat, *lng), 4))
            .collect();
        assert_eq!(used.len(), 4, "{used:?}");
    }
}
