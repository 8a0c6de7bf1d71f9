//! Settling the realtors a search rejected with their areas (see [`super::walk`]): once the
//! search is decided, those within the decisive distance are counted by reason, except the
//! ones the explanation would list (among the [`super::explain::MAX_REPORTED`] nearest
//! recorded), which are recorded one by one like everyone else.

use crate::feasibility::RejectReason;
use crate::geo::GeoPoint;
use crate::matching::coarse::cos_of_km;
use crate::matching::explain::{rejected_slot, OutcomeCounts, Seen, Verdict};
use crate::matching::index::RealtorIndex;
use crate::matching::scratch::{NearestListed, SearchScratch};
use crate::matching::search::Query;
use crate::matching::walk::AreaQuery;

/// Bulk rejections being settled: counted, or recorded when the explanation would list them.
struct Settled {
    listed: NearestListed,
    counted: OutcomeCounts,
    decisive: f64,
    /// `listed`'s cut when last asked, and the cosine of the angle it spans.
    cos_cut: Option<(f64, f64)>,
}

impl Settled {
    /// Whether a realtor whose home's cosine with the tour is `cos` is surely farther than
    /// anyone listed would be, so that they would only be counted: decided by the cosines,
    /// with room for their rounding (1e-12, far above it), before reading their slot.
    fn surely_beyond_listed(&mut self, cos: f64) -> bool {
        let cut_km = self.listed.cut_km();
        let cos_cut = match self.cos_cut {
            Some((km, cos_cut)) if km == cut_km => cos_cut,
            _ => {
                // Infinite until a hundred are listed: then nobody is beyond.
                let cos_cut = cos_of_km(cut_km);
                self.cos_cut = Some((cut_km, cos_cut));
                cos_cut
            }
        };
        cos < cos_cut - 1e-12
    }

    /// A realtor `distance_km` away rejected for `reason`: left out beyond the decisive
    /// distance, like everyone else that far; recorded when among the nearest recorded, else
    /// counted.
    fn record(
        &mut self,
        scratch: &mut SearchScratch,
        distance_km: f64,
        entry: u32,
        reason: RejectReason,
    ) {
        if distance_km > self.decisive {
            return;
        }
        if self.listed.cut_km() < distance_km {
            self.counted[rejected_slot(reason)] += 1;
        } else {
            self.listed.push(distance_km);
            scratch.reports.push(Seen {
                distance_km,
                entry,
                verdict: Verdict::Rejected(reason),
            });
        }
    }
}

impl RealtorIndex {
    /// The realtors rejected with their areas, for a search decided at `decisive` km: left
    /// out beyond it; within it, counted, unless the explanation would list them (they are
    /// among the [`super::explain::MAX_REPORTED`] nearest recorded), when they are recorded
    /// one by one like everyone else. Nobody counted is then nearer than someone listed.
    pub(super) fn settle_bulk(
        &self,
        q: &Query<'_>,
        target: &GeoPoint,
        area: Option<&AreaQuery>,
        decisive: f64,
        scratch: &mut SearchScratch,
    ) -> OutcomeCounts {
        let counted = OutcomeCounts::default();
        if scratch.bulk_counts.is_empty() && scratch.bulk_areas.is_empty() {
            return counted; // nearly every assignable tour
        }
        // Thousands of realtors share a few sets of hours: decide each set's reason once.
        let mut reason_of_hours: Option<(u32, RejectReason)> = None;
        let mut reason_for = |hours: u32, scratch: &mut SearchScratch| match reason_of_hours {
            Some((h, reason)) if h == hours => reason,
            _ => {
                let reason = self.area_reason(q, hours, scratch);
                reason_of_hours = Some((hours, reason));
                reason
            }
        };
        let mut listed = std::mem::take(&mut scratch.listed);
        listed.start(scratch.reports.iter().map(|r| r.distance_km));
        let mut settled = Settled {
            listed,
            counted,
            decisive,
            cos_cut: None,
        };
        let counts = std::mem::take(&mut scratch.bulk_counts);
        for c in &counts {
            if c.nearest > decisive {
                continue;
            }
            let reason = reason_for(c.hours, scratch);
            if c.farthest <= decisive && settled.listed.cut_km() < c.nearest {
                settled.counted[rejected_slot(RejectReason::Unavailable)] += c.unavailable;
                settled.counted[rejected_slot(reason)] += c.available;
                continue;
            }
            // Some here are within the decisive distance, or would be listed: read them.
            let (Some((_, coarse)), Some(area)) = (&self.coarse, area) else {
                continue;
            };
            let Some(cc) = coarse.get(&c.cell) else {
                continue;
            };
            // Read from the cell's columns: its slots only for those who may be listed.
            let t = area.first_unit;
            for i in c.from..cc.slots.len() {
                let entry = cc.entries[i];
                if scratch.seen[entry as usize] == scratch.generation {
                    continue; // found by the fine rings, and reported as they were
                }
                let r = &cc.reach[i];
                let slot = || &cc.slots[i];
                let verdict = area.verdict(r, slot, i >= c.surely_within);
                let Some(v) = verdict else {
                    continue;
                };
                let v = if v == RejectReason::Overlap {
                    reason
                } else {
                    v
                };
                let cos = r.unit[0] * t[0] + r.unit[1] * t[1] + r.unit[2] * t[2];
                if c.farthest <= decisive && settled.surely_beyond_listed(cos) {
                    settled.counted[rejected_slot(v)] += 1; // as `record` would
                    continue;
                }
                settled.record(scratch, slot().point.distance_km(target), entry, v);
            }
        }
        let areas = std::mem::take(&mut scratch.bulk_areas);
        for a in &areas {
            if a.nearest > decisive {
                continue;
            }
            let read = a.farthest > decisive || settled.listed.cut_km() >= a.nearest;
            for b in a.first..a.last {
                let (entry, hours, mut reason) = scratch.bulk[b];
                if reason == RejectReason::Overlap {
                    reason = reason_for(hours, scratch);
                }
                if !read {
                    settled.counted[rejected_slot(reason)] += 1;
                    continue;
                }
                let home = self.entries[entry as usize].realtor.home.point();
                settled.record(scratch, home.distance_km(target), entry, reason);
            }
        }
        // Handed back for their capacity (cleared when the next search begins).
        scratch.bulk_counts = counts;
        scratch.bulk_areas = areas;
        scratch.listed = settled.listed;
        settled.counted
    }
}
