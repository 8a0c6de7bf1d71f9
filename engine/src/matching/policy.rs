//! Policies: how to choose among realtors that can all take a tour (CONTRACT 5.4).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::ids::RealtorId;

/// A realtor that can take the tour, with what the policies rank on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Feasible {
    /// Who.
    pub realtor_id: RealtorId,
    /// Home to first listing, km.
    pub distance_km: f64,
    /// Earliest feasible start, UTC seconds.
    pub start: i64,
    /// End of the tour at that start, UTC seconds.
    pub end: i64,
    /// Active tours the realtor already has on the local day of `start`.
    pub day_load: u32,
}

/// A rule for choosing among feasible realtors.
///
/// The search guarantees that every feasible realtor within `nearest + slack_km()` has been
/// evaluated, so a policy whose choice never lies farther than that is exact.
pub trait Policy: Send + Sync + std::fmt::Debug {
    /// The name used by `--policy` and in explanations.
    fn name(&self) -> &'static str;
    /// How much farther than the nearest feasible realtor the chosen one may be, in km.
    fn slack_km(&self) -> f64;
    /// The number shown as the candidate's score in explanations (lower is better).
    fn score(&self, candidate: &Feasible) -> f64;
    /// Total order: `Less` means `a` is preferred.
    fn compare(&self, a: &Feasible, b: &Feasible) -> Ordering;
}

/// CONTRACT 5.4 `nearest`: smallest distance; ties by earlier start, then fewer active tours
/// that day, then the smaller realtor id.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nearest;

impl Policy for Nearest {
    fn name(&self) -> &'static str {
        "nearest"
    }

    fn slack_km(&self) -> f64 {
        0.0
    }

    fn score(&self, candidate: &Feasible) -> f64 {
        candidate.distance_km
    }

    fn compare(&self, a: &Feasible, b: &Feasible) -> Ordering {
        a.distance_km
            .total_cmp(&b.distance_km)
            .then(a.start.cmp(&b.start))
            .then(a.day_load.cmp(&b.day_load))
            .then(a.realtor_id.cmp(&b.realtor_id))
    }
}

/// `balanced`: spreads load. Among realtors at most `slack_km` farther than the nearest
/// feasible one, the fewest active tours that day; then as `nearest`.
#[derive(Debug, Clone, Copy)]
pub struct Balanced {
    /// Extra distance a less busy realtor may be from the nearest, km.
    pub slack_km: f64,
}

impl Default for Balanced {
    fn default() -> Self {
        Self { slack_km: 5.0 }
    }
}

impl Policy for Balanced {
    fn name(&self) -> &'static str {
        "balanced"
    }

    fn slack_km(&self) -> f64 {
        self.slack_km
    }

    fn score(&self, candidate: &Feasible) -> f64 {
        f64::from(candidate.day_load)
    }

    fn compare(&self, a: &Feasible, b: &Feasible) -> Ordering {
        a.day_load
            .cmp(&b.day_load)
            .then_with(|| Nearest.compare(a, b))
    }
}

/// The policy called `name` (`nearest`, `balanced`), if there is one.
#[must_use]
pub fn policy_by_name(name: &str) -> Option<Box<dyn Policy>> {
    match name {
        "nearest" => Some(Box::new(Nearest)),
        "balanced" => Some(Box::new(Balanced::default())),
        _ => None,
    }
}

/// The policy's choice among `feasible`: only those within `nearest + slack` compete.
#[must_use]
pub fn choose<'a>(policy: &dyn Policy, feasible: &'a [Feasible]) -> Option<&'a Feasible> {
    let nearest = feasible
        .iter()
        .map(|c| c.distance_km)
        .min_by(f64::total_cmp)?;
    let limit = nearest + policy.slack_km();
    feasible
        .iter()
        .filter(|c| c.distance_km <= limit)
        .min_by(|a, b| policy.compare(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn f(id: u128, km: f64, start: i64, load: u32) -> Feasible {
        Feasible {
            realtor_id: RealtorId(Uuid::from_u128(id)),
            distance_km: km,
            start,
            end: start + 1,
            day_load: load,
        }
    }

    #[test]
    fn nearest_tie_breaks() {
        let cands = [
            f(3, 1.0, 100, 0),
            f(2, 1.0, 100, 0),
            f(1, 1.0, 200, 0),
            f(4, 2.0, 0, 0),
        ];
        assert_eq!(
            choose(&Nearest, &cands).unwrap().realtor_id.0,
            Uuid::from_u128(2)
        );
        let cands = [f(3, 1.0, 100, 2), f(2, 1.0, 100, 3)];
        assert_eq!(
            choose(&Nearest, &cands).unwrap().realtor_id.0,
            Uuid::from_u128(3)
        );
        assert!(choose(&Nearest, &[]).is_none());
    }

    #[test]
    fn balanced_prefers_the_less_busy_within_slack() {
        let p = Balanced { slack_km: 5.0 };
        let cands = [f(1, 1.0, 0, 4), f(2, 5.9, 0, 1), f(3, 6.1, 0, 0)];
        assert_eq!(choose(&p, &cands).unwrap().realtor_id.0, Uuid::from_u128(2));
        assert_eq!(policy_by_name("balanced").unwrap().name(), "balanced");
        assert!(policy_by_name("random").is_none());
    }
}
