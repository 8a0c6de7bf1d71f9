//! The tour state machine (CONTRACT 5.2): legal transitions only, each with the event it emits.

use serde::{Deserialize, Serialize};

/// Where a tour is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TourStatus {
    /// Created, being matched.
    Pending,
    /// A realtor and times are fixed.
    Assigned,
    /// The realtor accepted.
    Accepted,
    /// The tour is under way.
    InProgress,
    /// Done.
    Completed,
    /// Cancelled by the customer or an admin.
    Cancelled,
    /// No feasible realtor; retried when availability nearby changes.
    Unassignable,
}

impl TourStatus {
    /// Every status, for tables and metrics.
    pub const ALL: [TourStatus; 7] = [
        TourStatus::Pending,
        TourStatus::Assigned,
        TourStatus::Accepted,
        TourStatus::InProgress,
        TourStatus::Completed,
        TourStatus::Cancelled,
        TourStatus::Unassignable,
    ];

    /// The wire name (`in_progress`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TourStatus::Pending => "pending",
            TourStatus::Assigned => "assigned",
            TourStatus::Accepted => "accepted",
            TourStatus::InProgress => "in_progress",
            TourStatus::Completed => "completed",
            TourStatus::Cancelled => "cancelled",
            TourStatus::Unassignable => "unassignable",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Holds realtor time: counts against the calendar (CONTRACT 5.3 "active").
    #[must_use]
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TourStatus::Assigned | TourStatus::Accepted | TourStatus::InProgress
        )
    }

    /// Nothing more will happen to the tour.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(self, TourStatus::Completed | TourStatus::Cancelled)
    }

    /// The status after `transition`.
    ///
    /// # Errors
    /// When the transition is not legal from this status.
    pub fn apply(self, transition: Transition) -> Result<TourStatus, IllegalTransition> {
        use TourStatus as S;
        use Transition as T;
        let next = match (self, transition) {
            (S::Pending, T::Assign) => S::Assigned,
            (S::Pending, T::MarkUnassignable) => S::Unassignable,
            // A retry after availability changed, a decline or a timeout go back to matching.
            (S::Unassignable, T::Retry) => S::Pending,
            (S::Assigned, T::Decline) => S::Pending,
            (S::Assigned, T::Accept) => S::Accepted,
            (S::Accepted, T::Start) => S::InProgress,
            (S::InProgress, T::Complete) => S::Completed,
            (S::Pending | S::Assigned | S::Accepted | S::Unassignable, T::Reschedule) => S::Pending,
            // Cancelling an unassignable tour is an extension of CONTRACT 5.2: a customer must be
            // able to give up on a tour nobody can take.
            (S::Pending | S::Assigned | S::Accepted | S::Unassignable, T::Cancel) => S::Cancelled,
            (from, transition) => return Err(IllegalTransition { from, transition }),
        };
        Ok(next)
    }
}

/// Something that happens to a tour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// Matching fixed a realtor and times.
    Assign,
    /// Matching found no feasible realtor.
    MarkUnassignable,
    /// Availability changed: match again.
    Retry,
    /// The realtor accepted.
    Accept,
    /// The realtor declined (or did not answer in time): match again without them.
    Decline,
    /// The realtor started the tour.
    Start,
    /// The realtor completed the tour.
    Complete,
    /// The customer or an admin moved the window: match again.
    Reschedule,
    /// The customer or an admin cancelled.
    Cancel,
}

impl Transition {
    /// The event type this transition publishes on the `tours` topic (CONTRACT 6).
    #[must_use]
    pub fn event_type(self) -> &'static str {
        match self {
            Transition::Assign => "tour.assigned",
            Transition::MarkUnassignable => "tour.unassignable",
            Transition::Retry => "tour.retried",
            Transition::Accept => "tour.accepted",
            Transition::Decline => "tour.declined",
            Transition::Start => "tour.started",
            Transition::Complete => "tour.completed",
            Transition::Reschedule => "tour.rescheduled",
            Transition::Cancel => "tour.cancelled",
        }
    }
}

/// A transition that the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {transition:?} a tour that is {}", from.as_str())]
pub struct IllegalTransition {
    /// The status the tour was in.
    pub from: TourStatus,
    /// What was attempted.
    pub transition: Transition,
}

#[cfg(test)]
mod tests {
    use super::*;
    use TourStatus as S;
    use Transition as T;

    const ALL_T: [Transition; 9] = [
        T::Assign,
        T::MarkUnassignable,
        T::Retry,
        T::Accept,
        T::Decline,
        T::Start,
        T::Complete,
        T::Reschedule,
        T::Cancel,
    ];

    #[test]
    fn the_happy_path() {
        let mut s = S::Pending;
        for t in [T::Assign, T::Accept, T::Start, T::Complete] {
            s = s.apply(t).unwrap();
        }
        assert_eq!(s, S::Completed);
        assert!(s.is_terminal());
    }

    #[test]
    fn exactly_the_contract_transitions_are_legal() {
        let legal = [
            (S::Pending, T::Assign),
            (S::Pending, T::MarkUnassignable),
            (S::Pending, T::Reschedule),
            (S::Pending, T::Cancel),
            (S::Unassignable, T::Retry),
            (S::Unassignable, T::Reschedule),
            (S::Unassignable, T::Cancel),
            (S::Assigned, T::Accept),
            (S::Assigned, T::Decline),
            (S::Assigned, T::Reschedule),
            (S::Assigned, T::Cancel),
            (S::Accepted, T::Start),
            (S::Accepted, T::Reschedule),
            (S::Accepted, T::Cancel),
            (S::InProgress, T::Complete),
        ];
        for s in S::ALL {
            for t in ALL_T {
                assert_eq!(s.apply(t).is_ok(), legal.contains(&(s, t)), "{s:?} {t:?}");
            }
        }
        // Terminal states accept nothing; completed and cancelled never come back.
        for t in ALL_T {
            assert!(S::Completed.apply(t).is_err());
            assert!(S::Cancelled.apply(t).is_err());
        }
    }

    #[test]
    fn wire_names_round_trip() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(S::parse("nope"), None);
    }
}
