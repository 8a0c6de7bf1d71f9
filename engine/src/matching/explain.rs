//! Explanations: every candidate a decision looked at, and why each won or lost.

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

/// Why a decision came out as it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The policy that decided.
    pub policy: String,
    /// H3 rings searched around the first listing (at the index's resolution), summed over
    /// the indexes asked.
    pub rings_searched: u32,
    /// Every realtor looked at, nearest first.
    pub candidates: Vec<CandidateReport>,
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
        reports.sort_unstable_by(|a, b| {
            a.distance_km
                .total_cmp(&b.distance_km)
                .then(a.realtor_id.cmp(&b.realtor_id))
        });
        Decision {
            choice,
            explanation: Explanation {
                policy: policy.name().to_owned(),
                rings_searched,
                candidates: reports,
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
        for p in parts {
            feasible.extend(p.feasible);
            reports.extend(p.explanation.candidates);
            rings += p.explanation.rings_searched;
        }
        Decision::decide(policy, feasible, reports, rings)
    }
}
