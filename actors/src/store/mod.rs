//! Persistence (DESIGN "persistence"): the [`Store`] port the actors write through, its record
//! types, and [`SeaStore`], the sea-orm adapter for PostgreSQL and SQLite.
//!
//! Every state change is one transaction that also appends a `tour_history` row and the
//! change's events to the `outbox` (CONTRACT 6), so an event is published if and only if the
//! change it describes was committed. The database guards double booking itself
//! ([`StoreError::Overlap`]); versions guard against lost updates ([`StoreError::Conflict`]).

mod cart;
mod events;
mod notifications;
mod rows;
mod sea;
mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use engine::{
    Booking, CustomerId, Explanation, ListingId, PaymentId, Realtor, RealtorId, RealtorStatus,
    Stop, TimeWindow, TourId, TourStatus, Transition,
};
use sea_orm::DbErr;
use serde::Serialize;
use uuid::Uuid;

pub use cart::{CartListing, NewPayment, Point};
pub use rows::realtor_from_event;
pub use sea::SeaStore;

/// Name of the PostgreSQL exclusion constraint and of the SQLite trigger error that reject
/// overlapping active tours of one realtor (mirrors `migrations::TOURS_NO_OVERLAP`).
pub const TOURS_NO_OVERLAP: &str = "tours_no_overlap";

/// Why a store operation failed. Display texts never carry driver messages; the whole chain
/// is in [`std::error::Error::source`] for the logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The double-booking guard fired: the realtor already holds an overlapping active tour.
    #[error("the realtor already holds an overlapping tour")]
    Overlap,
    /// The tour changed since it was read (stale version) or is not in a state that allows
    /// the change.
    #[error("tour {0:?} changed concurrently or does not allow this change")]
    Conflict(TourId),
    /// No such tour.
    #[error("tour {0:?} not found")]
    NotFound(TourId),
    /// Anything else the database reported, or a stored row that does not decode.
    #[error("database error")]
    Database(#[from] DbErr),
}

/// A tour to create from one succeeded payment (CONTRACT 5.1, 6).
#[derive(Debug, Clone, PartialEq)]
pub struct NewTour {
    /// The new tour's id (used only if the payment has no tour yet).
    pub tour_id: TourId,
    /// The payment; at most one tour exists per payment.
    pub payment_id: PaymentId,
    /// Who booked.
    pub customer_id: CustomerId,
    /// The listings in visiting order (1 to 8).
    pub stops: Vec<Stop>,
    /// The customer's window.
    pub window: TimeWindow,
    /// Visits plus travel, in minutes.
    pub duration_minutes: i32,
    /// The `event_id` of the `payment.succeeded` event, kept in the inbox for tracing.
    pub payment_event_id: Uuid,
}

/// What [`Store::create_tour_from_payment`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    /// The tour was created (status `pending`).
    Created(Box<TourRecord>),
    /// The payment already had a tour, this one; nothing was written.
    AlreadyExists(TourId),
}

/// A stored tour. Serializes to the CONTRACT 5.2 tour JSON (without `history`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TourRecord {
    /// The tour.
    pub id: TourId,
    /// The payment it came from.
    pub payment_id: PaymentId,
    /// Who booked.
    pub customer_id: CustomerId,
    /// Where it is in its life.
    pub status: TourStatus,
    /// The listings in visiting order.
    #[serde(rename = "listings")]
    pub stops: Vec<Stop>,
    /// The customer's window.
    pub window: TimeWindow,
    /// Visits plus travel, in minutes.
    pub duration_minutes: i32,
    /// The assigned realtor, once assigned.
    pub realtor_id: Option<RealtorId>,
    /// The assigned start, once assigned.
    pub start: Option<DateTime<Utc>>,
    /// The assigned end (exclusive), once assigned.
    pub end: Option<DateTime<Utc>>,
    /// Why the tour is unassignable or was cancelled, when given.
    pub reason: Option<String>,
    /// Realtors who declined: never offered this tour again.
    pub declined: Vec<RealtorId>,
    /// Why the current realtor was chosen (or why nobody was).
    pub explanation: Option<Explanation>,
    /// Bumped by every change; writers pass the version they read.
    pub version: i32,
    /// When the tour was created.
    pub created_at: DateTime<Utc>,
    /// When the tour last changed.
    pub updated_at: DateTime<Utc>,
}

impl TourRecord {
    /// The calendar entry of an assigned tour, `None` while it has no realtor and times.
    #[must_use]
    pub fn booking(&self) -> Option<(RealtorId, Booking)> {
        let (realtor, start, end) = (self.realtor_id?, self.start?, self.end?);
        let (first, last) = (self.stops.first()?, self.stops.last()?);
        Some((
            realtor,
            Booking {
                tour_id: self.id,
                start: start.timestamp(),
                end: end.timestamp(),
                first: first.location,
                last: last.location,
            },
        ))
    }
}

/// A fixed realtor and time for a pending tour ([`Store::assign`]).
#[derive(Debug, Clone, Copy)]
pub struct Assignment<'a> {
    /// The tour.
    pub tour_id: TourId,
    /// The chosen realtor.
    pub realtor_id: RealtorId,
    /// Start of the tour.
    pub start: DateTime<Utc>,
    /// End of the tour (exclusive).
    pub end: DateTime<Utc>,
    /// Why this realtor.
    pub explanation: &'a Explanation,
    /// The version the caller read.
    pub expected_version: i32,
}

/// Any change of a tour other than an assignment ([`Store::transition`]).
///
/// The target status comes from the engine's state machine; a transition into `pending`
/// (decline, retry, reschedule) clears the realtor, times and explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The tour.
    pub tour_id: TourId,
    /// What happens (never [`Transition::Assign`]: use [`Store::assign`]).
    pub transition: Transition,
    /// The version the caller read.
    pub expected_version: i32,
    /// Stored as the tour's reason (e.g. why unassignable); `None` clears it.
    pub reason: Option<String>,
    /// A realtor to add to the tour's declined list (on a decline).
    pub declined: Option<RealtorId>,
    /// A new window (on a reschedule).
    pub new_window: Option<TimeWindow>,
}

impl Change {
    /// A change with no reason, decline or new window.
    #[must_use]
    pub fn new(tour_id: TourId, transition: Transition, expected_version: i32) -> Self {
        Self {
            tour_id,
            transition,
            expected_version,
            reason: None,
            declined: None,
            new_window: None,
        }
    }
}

/// The persistence port: the only way the runtime reads or writes tours and realtors.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates the tour of a succeeded payment, with its history and `tour.created` event, in one
    /// transaction; a payment that already has a tour (also one created concurrently) changes
    /// nothing and returns that tour's id.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    async fn create_tour_from_payment(&self, tour: NewTour) -> Result<CreateOutcome, StoreError>;

    /// Assigns a pending tour (`tour.assigned`, `appointment.scheduled`, `realtor.booked`).
    ///
    /// # Errors
    /// [`StoreError::Overlap`] when the realtor already holds an overlapping active tour,
    /// [`StoreError::Conflict`] on a stale version or a tour that is not pending,
    /// [`StoreError::NotFound`], [`StoreError::Database`]; nothing is written on error.
    async fn assign(&self, assignment: Assignment<'_>) -> Result<TourRecord, StoreError>;

    /// Applies any other transition, emitting its `tours` event and, when the tour gives its
    /// realtor's time back, `appointment.cancelled` and `realtor.released`.
    ///
    /// # Errors
    /// As [`Store::assign`]; a transition the state machine refuses is a `Conflict`.
    async fn transition(&self, change: Change) -> Result<TourRecord, StoreError>;

    /// One tour.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn get_tour(&self, id: TourId) -> Result<Option<TourRecord>, StoreError>;

    /// The tour created from a payment.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn tour_by_payment(&self, payment: PaymentId) -> Result<Option<TourRecord>, StoreError>;

    /// Every realtor profile that is valid (invalid rows are logged and skipped).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn load_realtors(&self) -> Result<Vec<Realtor>, StoreError>;

    /// The calendar entries of every active (assigned/accepted/in_progress) tour.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn load_active_bookings(&self) -> Result<Vec<(RealtorId, Booking)>, StoreError>;

    /// Every tour not yet completed or cancelled, for the tour actors to resume.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn load_open_tours(&self) -> Result<Vec<TourRecord>, StoreError>;

    /// Creates or replaces realtor profiles (their `users` rows must exist), in batches.
    ///
    /// # Errors
    /// [`StoreError::Database`], e.g. a missing user.
    async fn upsert_realtor_profiles(&self, realtors: &[Realtor]) -> Result<(), StoreError>;

    /// Sets a realtor's status with its `realtor.status_changed` event in one transaction;
    /// `false` (and no event) when the profile is missing or already has that status.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn set_realtor_status(
        &self,
        realtor: RealtorId,
        status: RealtorStatus,
    ) -> Result<bool, StoreError>;

    /// Schedules reminder notifications of an assigned tour, each with a
    /// `notification.scheduled` event (idempotent; see [`crate::reminders`]).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn schedule_reminders(
        &self,
        tour: &TourRecord,
        reminders: &[crate::reminders::Reminder],
    ) -> Result<(), StoreError>;

    /// Cancels the pending reminders of a tour; returns how many.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn cancel_reminders(&self, tour: TourId) -> Result<u64, StoreError>;

    /// One listing that is not deleted, as a cart shows it (whatever its status).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn cart_listing(&self, listing: ListingId) -> Result<Option<CartListing>, StoreError>;

    /// The customer's cart in cart order (deleted listings have left it).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn cart_items(&self, customer: CustomerId) -> Result<Vec<CartListing>, StoreError>;

    /// Puts a listing last in the customer's cart; `false` when it was already in it.
    ///
    /// # Errors
    /// [`StoreError::Database`], e.g. an unknown customer or listing.
    async fn add_cart_item(
        &self,
        customer: CustomerId,
        listing: ListingId,
    ) -> Result<bool, StoreError>;

    /// Takes a listing out of the customer's cart; `false` when it was not in it.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn remove_cart_item(
        &self,
        customer: CustomerId,
        listing: ListingId,
    ) -> Result<bool, StoreError>;

    /// Pending notifications of one tour (or all), earliest first.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn pending_notifications(
        &self,
        tour: Option<TourId>,
    ) -> Result<Vec<crate::notices::DueNotification>, StoreError>;

    /// Delivers pending notification `id` through `mailer` and records it `sent` with its
    /// `notification.sent` event, all or nothing; a reminder whose tour no longer expects it
    /// (cancelled, being matched again, started) is cancelled instead. Idempotent: what is
    /// not pending any more is [`crate::notices::Delivery::Skipped`].
    ///
    /// # Errors
    /// [`StoreError::Database`] (a mailer failure is a `Delivery::Failed`, not an error).
    async fn deliver_notification(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        mailer: &dyn crate::mail::Mailer,
    ) -> Result<crate::notices::Delivery, StoreError>;

    /// Records a failed delivery: one more attempt, its error, and either the time to try
    /// again or (`None`) `failed` for good.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn record_notification_failure(
        &self,
        id: Uuid,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;

    /// Stores the `pending` payment of a checkout.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn create_payment(&self, payment: &NewPayment) -> Result<(), StoreError>;
}
