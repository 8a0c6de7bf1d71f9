//! Explanations: every candidate a decision looked at, and why each won or lost.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::feasibility::RejectReason;
use crate::ids::RealtorId;
use crate::matching::policy::{choose, Feasible, Policy};
use crate::time::to_datetime;

/// What became of one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The policy chose this realtor.
    Chosen,
    /// Feasible, but the policy preferred another.
    Lost,
    /// Cannot take the tour (see `rejected`).
    Rejected,
    /// Farther than the decision needed to look: a nearer realtor settled it first.
    NotEvaluated,
}

/// One realtor a decision looked at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateReport {
    /// Who.
    pub realtor_id: RealtorId,
    /// Home to the tour's first listing, km.
    pub distance_km: f64,
    /// Earliest feasible start, when feasible.
    pub earliest_start: Option<DateTime<Utc>>,
    /// Why not, when rejected.
    pub rejected: Option<RejectReason>,
    /// The policy's score, when feasible (lower is better).
    pub score: Option<f64>,
    /// Active tours that realtor has on the local day of `earliest_start`, when feasible.
    pub active_tours_that_day: Option<u32>,
    /// Chosen, lost, rejected or not evaluated.
    pub outcome: Outcome,
}

impl CandidateReport {
    pub(crate) fn rejected(realtor_id: RealtorId, distance_km: f64, reason: RejectReason) -> Self {
        Self {
            realtor_id,
            distance_km,
            earliest_start: None,
            rejected: Some(reason),
            score: None,
            active_tours_that_day: None,
            outcome: Outcome::Rejected,
        }
    }

    pub(crate) fn not_evaluated(realtor_id: RealtorId, distance_km: f64) -> Self {
        Self {
            realtor_id,
            distance_km,
            earliest_start: None,
            rejected: None,
            score: None,
            active_tours_that_day: None,
            outcome: Outcome::NotEvaluated,
        }
    }

    pub(crate) fn feasible(c: &Feasible) -> Self {
        Self {
            realtor_id: c.realtor_id,
            distance_km: c.distance_km,
            earliest_start: Some(to_datetime(c.start)),
            rejected: None,
            score: None,
            active_tours_that_day: Some(c.day_load),
            outcome: Outcome::Lost,
        }
    }
}

/// How many candidates an explanation lists; the rest are counted.
pub const MAX_REPORTED: usize = 100;

/// The `omitted` keys, in a fixed order: counting into an array and naming the non-zero
/// slots once is far cheaper than formatting a key per omitted report (an unassignable tour
/// omits thousands).
const OUTCOME_KEYS: [&str; 9] = [
    "chosen",
    "lost",
    "rejected",
    "not_evaluated",
    "rejected:out_of_radius",
    "rejected:outside_working_hours",
    "rejected:overlap",
    "rejected:unavailable",
    "rejected:declined",
];

/// Candidates counted by outcome, in the order of `OUTCOME_KEYS`.
pub(crate) type OutcomeCounts = [usize; OUTCOME_KEYS.len()];

/// The slot of `OutcomeCounts` for a candidate rejected for `reason`.
pub(crate) fn rejected_slot(reason: RejectReason) -> usize {
    outcome_slot(Outcome::Rejected, Some(reason))
}

fn outcome_slot(outcome: Outcome, rejected: Option<RejectReason>) -> usize {
    match (outcome, rejected) {
        (Outcome::Chosen, _) => 0,
        (Outcome::Lost, _) => 1,
        (Outcome::Rejected, None) => 2,
        (Outcome::NotEvaluated, _) => 3,
        (Outcome::Rejected, Some(reason)) => match reason {
            RejectReason::OutOfRadius => 4,
            RejectReason::OutsideWorkingHours => 5,
            RejectReason::Overlap => 6,
            RejectReason::Unavailable => 7,
            RejectReason::Declined => 8,
        },
    }
}

fn nearer_or_as_near(a: &Seen, b: &Seen) -> bool {
    a.distance_km <= b.distance_km
}

/// Sorts `seen` nearest first, exact ties by realtor id: by the distances' bits alone (never
/// negative, so ordered as `total_cmp` orders them; one integer key, cheaper to sort by than a
/// comparison that may look ids up), then each run of equal distances (rare) by id.
fn sort_nearest_first(seen: &mut [Seen], id: impl Fn(u32) -> RealtorId) {
    seen.sort_unstable_by_key(|s| s.distance_km.to_bits());
    let mut i = 0;
    while i < seen.len() {
        let bits = seen[i].distance_km.to_bits();
        let run = seen[i..]
            .iter()
            .take_while(|s| s.distance_km.to_bits() == bits)
            .count();
        if run > 1 {
            seen[i..i + run].sort_unstable_by_key(|s| id(s.entry));
        }
        i += run;
    }
}

fn omitted_map(counts: [usize; OUTCOME_KEYS.len()]) -> std::collections::BTreeMap<String, usize> {
    // Inserted one by one: collecting a map gathers and sorts a vector first, which costs
    // even a decision that omits nobody (nearly every assignable one).
    let mut omitted = std::collections::BTreeMap::new();
    if counts == [0; OUTCOME_KEYS.len()] {
        return omitted; // nearly every assignable decision: no pass over the keys
    }
    for (key, n) in OUTCOME_KEYS.iter().zip(counts) {
        if n > 0 {
            omitted.insert((*key).to_owned(), n);
        }
    }
    omitted
}

/// A candidate as a search records it (24 bytes; a [`CandidateReport`] is built only for the
/// candidates an explanation lists).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen {
    /// Home to the tour's first listing, km.
    pub(crate) distance_km: f64,
    /// The realtor's entry in the index searched.
    pub(crate) entry: u32,
    /// What the search made of them.
    pub(crate) verdict: Verdict,
}

/// What a search made of one candidate.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Verdict {
    /// Feasible: the details are `feasible[i]` of the decision.
    Feasible(u32),
    /// Cannot take the tour.
    Rejected(RejectReason),
    /// Never evaluated: a nearer realtor settled the decision.
    NotEvaluated,
}

/// Why a decision came out as it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The policy that decided (borrowed from the policy, not copied per decision).
    pub policy: std::borrow::Cow<'static, str>,
    /// H3 rings searched around the first listing (at the index's resolution), summed over
    /// the indexes asked.
    pub rings_searched: u32,
    /// The realtors looked at, nearest first: the [`MAX_REPORTED`] nearest (the chosen one
    /// always included); the rest are counted in `omitted`. Near the tour (the fine rings)
    /// everyone is looked at; farther out (the coarse rings) only realtors whose service
    /// radius reaches the tour: the others appear nowhere.
    pub candidates: Vec<CandidateReport>,
    /// Realtors looked at but not listed, counted by outcome (`rejected:overlap`, `lost`, ...).
    /// A search that must prove nobody can take a tour looks at thousands; storing each with
    /// every tour would cost more than it tells.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub omitted: std::collections::BTreeMap<String, usize>,
    /// The winner, if any.
    pub chosen: Option<RealtorId>,
    /// Why nobody, when nobody (`no_feasible_realtor`, `window_too_short`).
    pub reason: Option<String>,
}

/// The result of matching one tour: the choice, every feasible option, and the explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The chosen realtor and times.
    pub choice: Option<Feasible>,
    /// Every feasible candidate evaluated (for merging decisions of several indexes).
    pub feasible: Vec<Feasible>,
    /// Why.
    pub explanation: Explanation,
}

impl Decision {
    /// Builds a decision from what a search found: lets `policy` choose and marks the reports.
    #[must_use]
    pub fn decide(
        policy: &dyn Policy,
        feasible: Vec<Feasible>,
        mut reports: Vec<CandidateReport>,
        rings_searched: u32,
    ) -> Decision {
        let choice = choose(policy, &feasible).copied();
        for r in &mut reports {
            if let Some(f) = feasible.iter().find(|f| f.realtor_id == r.realtor_id) {
                r.score = Some(policy.score(f));
                r.outcome = if choice.is_some_and(|c| c.realtor_id == r.realtor_id) {
                    Outcome::Chosen
                } else {
                    Outcome::Lost
                };
            }
        }
        let nearest_first = |a: &CandidateReport, b: &CandidateReport| {
            a.distance_km
                .total_cmp(&b.distance_km)
                .then(a.realtor_id.cmp(&b.realtor_id))
        };
        let mut counts = [0usize; OUTCOME_KEYS.len()];
        if reports.len() > MAX_REPORTED {
            reports.select_nth_unstable_by(MAX_REPORTED - 1, nearest_first);
            let rest = reports.split_off(MAX_REPORTED);
            for r in rest {
                if r.outcome == Outcome::Chosen {
                    reports.push(r); // the winner is always listed
                } else {
                    counts[outcome_slot(r.outcome, r.rejected)] += 1;
                }
            }
        }
        let omitted = omitted_map(counts);
        reports.sort_unstable_by(nearest_first);
        Decision {
            choice,
            explanation: Explanation {
                policy: policy.name().into(),
                rings_searched,
                candidates: reports,
                omitted,
                chosen: choice.map(|c| c.realtor_id),
                reason: choice.is_none().then(|| "no_feasible_realtor".to_owned()),
            },
            feasible,
        }
    }

    /// [`Decision::decide`] for what a search recorded: the same decision, built without a
    /// full report per candidate (an unassignable tour records thousands and lists 100).
    /// `id` names the realtor of an entry; `seen` is left empty for reuse. `counted` are
    /// candidates rejected together, never recorded one by one (their area's free time ruled
    /// them out): they are only counted.
    pub(crate) fn from_search(
        policy: &dyn Policy,
        feasible: Vec<Feasible>,
        seen: &mut Vec<Seen>,
        counted: OutcomeCounts,
        rings_searched: u32,
        id: impl Fn(u32) -> RealtorId,
    ) -> Decision {
        let choice = choose(policy, &feasible).copied();
        let outcome = |s: &Seen| match s.verdict {
            Verdict::Feasible(i) => {
                let f = &feasible[i as usize];
                if choice.is_some_and(|c| c.realtor_id == f.realtor_id) {
                    (Outcome::Chosen, None)
                } else {
                    (Outcome::Lost, None)
                }
            }
            Verdict::Rejected(reason) => (Outcome::Rejected, Some(reason)),
            Verdict::NotEvaluated => (Outcome::NotEvaluated, None),
        };
        let mut counts = counted;
        if seen.len() > MAX_REPORTED && choice.is_none() && seen.is_sorted_by(nearer_or_as_near) {
            // Recorded nearest first (a decision read from a cover): the first MAX_REPORTED
            // but for ties at the cut, which go by id.
            let cut = seen[MAX_REPORTED - 1].distance_km;
            let below = seen.partition_point(|s| s.distance_km < cut);
            let upto = seen.partition_point(|s| s.distance_km <= cut);
            sort_nearest_first(&mut seen[below..upto], &id); // one distance: by id
            for s in seen.drain(MAX_REPORTED..) {
                let (o, reason) = outcome(&s);
                counts[outcome_slot(o, reason)] += 1;
            }
        } else if seen.len() > MAX_REPORTED {
            // The listed are the first MAX_REPORTED by (distance, id): everyone nearer than the
            // MAX_REPORTED-th distance, then those at exactly that distance by id. Finding
            // that distance among plain floats (as bits: never negative, so ordered as
            // `total_cmp` orders them) is cheaper than selecting whole records.
            let mut distances: Vec<u64> = seen.iter().map(|s| s.distance_km.to_bits()).collect();
            let (_, &mut cut, _) = distances.select_nth_unstable(MAX_REPORTED - 1);
            let cut = f64::from_bits(cut);
            let mut listed = Vec::with_capacity(MAX_REPORTED + 1);
            let mut at_cut = Vec::new();
            let mut chosen = None;
            let mut omit = |s: Seen| match outcome(&s) {
                (Outcome::Chosen, _) => chosen = Some(s), // the winner is always listed
                (o, reason) => counts[outcome_slot(o, reason)] += 1,
            };
            for s in seen.drain(..) {
                match s.distance_km.total_cmp(&cut) {
                    Ordering::Less => listed.push(s),
                    Ordering::Equal => at_cut.push(s),
                    Ordering::Greater => omit(s),
                }
            }
            sort_nearest_first(&mut at_cut, &id); // one distance: by id
            let room = MAX_REPORTED - listed.len();
            at_cut.drain(room.min(at_cut.len())..).for_each(&mut omit);
            listed.append(&mut at_cut);
            listed.extend(chosen);
            *seen = listed;
        }
        sort_nearest_first(seen, &id);
        let candidates = seen
            .drain(..)
            .map(|s| match s.verdict {
                Verdict::Feasible(i) => {
                    let f = &feasible[i as usize];
                    let mut r = CandidateReport::feasible(f);
                    r.score = Some(policy.score(f));
                    r.outcome = outcome(&s).0;
                    r
                }
                Verdict::Rejected(reason) => {
                    CandidateReport::rejected(id(s.entry), s.distance_km, reason)
                }
                Verdict::NotEvaluated => CandidateReport::not_evaluated(id(s.entry), s.distance_km),
            })
            .collect();
        Decision {
            choice,
            explanation: Explanation {
                policy: policy.name().into(),
                rings_searched,
                candidates,
                omitted: omitted_map(counts),
                chosen: choice.map(|c| c.realtor_id),
                reason: choice.is_none().then(|| "no_feasible_realtor".to_owned()),
            },
            feasible,
        }
    }

    /// Merges the exact decisions of several indexes (e.g. one per shard) into one.
    #[must_use]
    pub fn merge(policy: &dyn Policy, parts: Vec<Decision>) -> Decision {
        let mut feasible = Vec::new();
        let mut reports = Vec::new();
        let mut rings = 0;
        let mut omitted = std::collections::BTreeMap::new();
        for p in parts {
            feasible.extend(p.feasible);
            reports.extend(p.explanation.candidates);
            rings += p.explanation.rings_searched;
            for (k, n) in p.explanation.omitted {
                *omitted.entry(k).or_insert(0) += n;
            }
        }
        let mut d = Decision::decide(policy, feasible, reports, rings);
        for (k, n) in omitted {
            *d.explanation.omitted.entry(k).or_insert(0) += n;
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::policy::Nearest;
    use uuid::Uuid;

    #[test]
    fn search_records_explain_as_full_reports_do() {
        // Many ties at a few distances, one feasible winner far out: the compact path lists
        // and counts exactly as the report-per-candidate path.
        let id = |e: u32| RealtorId(Uuid::from_u128(u128::from(e.wrapping_mul(2_654_435_761))));
        let reasons = [
            RejectReason::Overlap,
            RejectReason::OutOfRadius,
            RejectReason::OutsideWorkingHours,
        ];
        for n in [5usize, 100, 101, 180, 400] {
            let win = Feasible {
                realtor_id: id(7),
                distance_km: 50.0,
                start: 0,
                end: 60,
                day_load: 1,
            };
            let mut seen = Vec::new();
            let mut reports = Vec::new();
            for e in 0..n as u32 {
                let distance = f64::from(e % 13) * 0.5;
                if e == 7 {
                    seen.push(Seen {
                        distance_km: 50.0,
                        entry: e,
                        verdict: Verdict::Feasible(0),
                    });
                    reports.push(CandidateReport::feasible(&win));
                    continue;
                }
                let reason = reasons[e as usize % 3];
                seen.push(Seen {
                    distance_km: distance,
                    entry: e,
                    verdict: Verdict::Rejected(reason),
                });
                reports.push(CandidateReport::rejected(id(e), distance, reason));
            }
            let compact = Decision::from_search(&Nearest, vec![win], &mut seen, [0; 9], 2, id);
            let full = Decision::decide(&Nearest, vec![win], reports, 2);
            assert_eq!(compact, full, "{n}");
        }
    }

    /// Records that come nearest first (as a decision read from a cover gives them) are
    /// listed and counted as any others: ties at the cut by id, whatever their order.
    #[test]
    fn records_nearest_first_explain_as_full_reports_do() {
        let id = |e: u32| RealtorId(Uuid::from_u128(u128::from(e.wrapping_mul(2_654_435_761))));
        let reasons = [RejectReason::Overlap, RejectReason::Unavailable];
        for n in [5usize, 100, 101, 180, 400] {
            let mut seen: Vec<Seen> = (0..n as u32)
                .map(|e| Seen {
                    distance_km: f64::from(e % 17) * 0.25,
                    entry: e,
                    verdict: Verdict::Rejected(reasons[e as usize % 2]),
                })
                .collect();
            seen.sort_by(|a, b| a.distance_km.total_cmp(&b.distance_km));
            let reports = seen
                .iter()
                .map(|s| match s.verdict {
                    Verdict::Rejected(r) => {
                        CandidateReport::rejected(id(s.entry), s.distance_km, r)
                    }
                    _ => unreachable!(),
                })
                .collect();
            let compact = Decision::from_search(&Nearest, vec![], &mut seen, [0; 9], 2, id);
            let full = Decision::decide(&Nearest, vec![], reports, 2);
            assert_eq!(compact, full, "{n}");
        }
    }

    #[test]
    fn long_explanations_list_the_nearest_and_count_the_rest() {
        let reports: Vec<CandidateReport> = (0..150u32)
            .map(|i| {
                CandidateReport::rejected(
                    RealtorId(Uuid::from_u128(u128::from(i))),
                    f64::from(150 - i),
                    RejectReason::Overlap,
                )
            })
            .collect();
        // The winner is the farthest of all: it must still be listed.
        let far = Feasible {
            realtor_id: RealtorId(Uuid::from_u128(999)),
            distance_km: 500.0,
            start: 0,
            end: 60,
            day_load: 0,
        };
        let mut all = reports;
        all.push(CandidateReport::feasible(&far));
        let d = Decision::decide(&Nearest, vec![far], all, 3);
        let e = &d.explanation;
        assert_eq!(e.candidates.len(), MAX_REPORTED + 1);
        assert_eq!(e.omitted.get("rejected:overlap"), Some(&50));
        assert!(e
            .candidates
            .windows(2)
            .all(|w| w[0].distance_km <= w[1].distance_km));
        assert_eq!(e.candidates.last().unwrap().outcome, Outcome::Chosen);
        let json = serde_json::to_value(e).unwrap();
        assert_eq!(json["omitted"]["rejected:overlap"], 50);
        let back: Explanation = serde_json::from_value(json).unwrap();
        assert_eq!(&back, e);
    }
}
