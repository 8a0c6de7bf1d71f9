//! Tourwise's rules: where realtors are, when they are free, which one takes a tour and why.
//!
//! Pure and deterministic: no I/O, no clock, no async. The actors own instances of these types
//! and feed them messages; everything here is testable without them. CONTRACT.md section 5 is
//! the law this crate implements; each module names the part it owns.
#![deny(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

pub mod calendar;
pub mod disk;
pub mod feasibility;
pub mod geo;
pub mod ids;
pub mod lifecycle;
pub mod matching;
pub mod realtor;
pub mod region;
pub mod route;
pub mod time;
pub mod tour;
pub mod tracking;

pub use calendar::{Booking, Calendar};
pub use feasibility::RejectReason;
pub use geo::Location;
pub use ids::{CustomerId, ListingId, PaymentId, RealtorId, TourId};
pub use lifecycle::{IllegalTransition, TourStatus, Transition};
pub use matching::explain::{CandidateReport, Decision, Explanation, Outcome};
pub use matching::index::{RealtorIndex, ReserveError, SearchScratch};
pub use matching::policy::{Balanced, Feasible, Nearest, Policy};
pub use realtor::{Realtor, RealtorStatus};
pub use time::{TimeWindow, TimeZone, WorkingHours, WorkingInterval};
pub use tour::{Stop, TourPlan};
