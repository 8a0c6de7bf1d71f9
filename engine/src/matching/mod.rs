//! Matching: candidates -> feasibility -> policy -> choice, with an explanation (CONTRACT 5.4).

mod coarse;
mod cover;
pub mod explain;
mod free_time;
pub mod index;
pub mod policy;
mod scratch;
pub mod search;
mod settle;
mod walk;
