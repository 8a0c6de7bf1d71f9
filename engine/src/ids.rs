//! Typed ids: a `RealtorId` can never be passed where a `TourId` is expected.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random id.
            #[must_use]
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    )*};
}

id_type!(
    /// A realtor (the professional sent to the place): also their user id.
    RealtorId,
    /// A tour: one booking made from one succeeded payment.
    TourId,
    /// A property listing (a place to visit).
    ListingId,
    /// A customer (the one who pays): also their user id.
    CustomerId,
    /// A payment; one succeeded payment makes exactly one tour.
    PaymentId,
);
