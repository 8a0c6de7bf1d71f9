//! CONTRACT 3 as one table: which role may use which capability, and on what (own or any).
//! Handlers ask [`crate::auth::Caller::may`]; no handler checks a role by itself.

use serde::{Deserialize, Serialize};

/// The four roles (CONTRACT 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Books tours.
    Customer,
    /// Guides tours.
    Realtor,
    /// Lists properties.
    Provider,
    /// Operates the system.
    Admin,
}

impl Role {
    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Realtor => "realtor",
            Role::Provider => "provider",
            Role::Admin => "admin",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Role::Customer, Role::Realtor, Role::Provider, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// What a caller wants to do (the rows of CONTRACT 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Create, update, publish, delete a listing.
    ManageListing,
    /// Own cart, checkout, pay.
    Shop,
    /// Read a tour.
    ReadTour,
    /// Reschedule or cancel a tour.
    ChangeTour,
    /// Accept, decline, start, complete a tour.
    WorkTour,
    /// Set a realtor profile, hours, status.
    SetRealtorProfile,
    /// `/availability`.
    QueryAvailability,
    /// `/assignments` (a realtor sees own).
    QueryAssignments,
    /// `/assignments/{id}/explain` and `/assignments/stats`.
    ExplainAssignments,
    /// Review the realtor of a completed tour (own tour, once).
    ReviewTour,
    /// Hide a review (moderation).
    ModerateReviews,
    /// `/notifications`: the emails and their delivery state.
    ReadNotifications,
    /// Create, rename, archive listing categories.
    ManageCategories,
}

/// How far a permitted caller may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only what is theirs (own listing, own tour, tour assigned to them, own profile).
    Own,
    /// Anything.
    Any,
}

use Access::{Any, Own};
use Capability::*;

/// CONTRACT 3: `(capability, [customer, realtor, provider, admin])`; `None` forbids.
const TABLE: [(Capability, [Option<Access>; 4]); 13] = [
    (ManageListing, [None, None, Some(Own), Some(Any)]),
    (Shop, [Some(Own), None, None, None]),
    (ReadTour, [Some(Own), Some(Own), None, Some(Any)]),
    (ChangeTour, [Some(Own), None, None, Some(Any)]),
    (WorkTour, [None, Some(Own), None, Some(Any)]),
    (SetRealtorProfile, [None, Some(Own), None, Some(Any)]),
    (QueryAvailability, [None, None, None, Some(Any)]),
    (QueryAssignments, [None, Some(Own), None, Some(Any)]),
    (ExplainAssignments, [None, None, None, Some(Any)]),
    // Admins moderate reviews; they do not write them.
    (ReviewTour, [Some(Own), None, None, None]),
    (ModerateReviews, [None, None, None, Some(Any)]),
    (ReadNotifications, [None, None, None, Some(Any)]),
    (ManageCategories, [None, None, None, Some(Any)]),
];

/// What `role` may do with `capability`, `None` when forbidden.
#[must_use]
pub fn access(role: Role, capability: Capability) -> Option<Access> {
    let column = match role {
        Role::Customer => 0,
        Role::Realtor => 1,
        Role::Provider => 2,
        Role::Admin => 3,
    };
    TABLE
        .iter()
        .find(|(c, _)| *c == capability)
        .and_then(|(_, row)| row[column])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_capability_has_one_row_and_admins_may_do_all_but_shop_and_review() {
        for (i, (c, _)) in TABLE.iter().enumerate() {
            assert!(TABLE[..i].iter().all(|(d, _)| d != c), "{c:?} twice");
            let admin = access(Role::Admin, *c);
            assert_eq!(admin.is_none(), matches!(c, Shop | ReviewTour), "{c:?}");
        }
        assert_eq!(access(Role::Provider, ManageListing), Some(Own));
        assert_eq!(access(Role::Customer, WorkTour), None);
        assert_eq!(access(Role::Customer, ReviewTour), Some(Own));
        assert_eq!(access(Role::Customer, ModerateReviews), None);
    }
}
