//! [`MemoryStore`]: the [`Store`] port in memory, for benchmarks and quick tests. Same
//! semantics as the database where the runtime relies on them (one tour per payment, version
//! checks, the state machine, the double-booking guard, carts in cart order, reminders sent
//! at most once and only while their tour expects them); no outbox or history, except the
//! `notification.sent` events ([`MemoryStore::notifications_sent`]). Reminders go to the
//! customer and the realtor, named `customer:{id}` and `realtor:{id}`. Listings a cart can
//! hold are put in with [`MemoryStore::put_listing`].

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use engine::{
    Booking, CustomerId, ListingId, PaymentId, Realtor, RealtorId, RealtorStatus, TourId,
    TourStatus, Transition,
};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::mail::{Mail, Mailer};
use crate::notices::{Delivery, DueNotification};
use crate::reminders::Reminder;
use crate::runtime::lock;
use crate::store::{
    Assignment, CartListing, Change, CreateOutcome, NewPayment, NewTour, Store, StoreError,
    TourRecord,
};

#[derive(Default)]
struct Inner {
    tours: HashMap<TourId, TourRecord>,
    by_payment: HashMap<PaymentId, TourId>,
    realtors: HashMap<RealtorId, Realtor>,
    listings: HashMap<ListingId, CartListing>,
    carts: HashMap<CustomerId, Vec<ListingId>>,
    payments: Vec<NewPayment>,
    /// Reminder rows and their status (`pending`, `sent`, `cancelled`).
    reminders: Vec<(DueNotification, &'static str)>,
    sent: Vec<serde_json::Value>,
    /// Bookings held by no tour of this store (see [`MemoryStore::import_bookings`]).
    imported: Vec<(RealtorId, Booking)>,
}

/// Tours and realtors in memory.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bookings that belong to no tour of this store, as if their tours were active: a
    /// calendar imported from elsewhere (the peer comparison seeds its city this way).
    pub fn import_bookings(&self, bookings: impl IntoIterator<Item = (RealtorId, Booking)>) {
        lock(&self.inner).imported.extend(bookings);
    }

    /// Every tour (in no particular order).
    #[must_use]
    pub fn tours(&self) -> Vec<TourRecord> {
        lock(&self.inner).tours.values().cloned().collect()
    }

    /// Creates or replaces a listing (what the listing API does in the database).
    pub fn put_listing(&self, listing: CartListing) {
        lock(&self.inner).listings.insert(listing.id, listing);
    }

    /// Every reminder row with its status (`pending`, `sent`, `cancelled`), in creation order.
    #[must_use]
    pub fn reminders(&self) -> Vec<(DueNotification, String)> {
        lock(&self.inner)
            .reminders
            .iter()
            .map(|(r, status)| (r.clone(), (*status).to_owned()))
            .collect()
    }

    /// The data of every `notification.sent` event, in order.
    #[must_use]
    pub fn notifications_sent(&self) -> Vec<serde_json::Value> {
        lock(&self.inner).sent.clone()
    }

    /// Every payment a checkout created, in order.
    #[must_use]
    pub fn payments(&self) -> Vec<NewPayment> {
        lock(&self.inner).payments.clone()
    }
}

fn overlaps(a: &TourRecord, realtor: RealtorId, start: i64, end: i64) -> bool {
    a.status.is_active()
        && a.realtor_id == Some(realtor)
        && a.booking()
            .is_some_and(|(_, b)| b.start < end && start < b.end)
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_tour_from_payment(&self, tour: NewTour) -> Result<CreateOutcome, StoreError> {
        let mut inner = lock(&self.inner);
        if let Some(id) = inner.by_payment.get(&tour.payment_id) {
            return Ok(CreateOutcome::AlreadyExists(*id));
        }
        let now = chrono::Utc::now();
        let record = TourRecord {
            id: tour.tour_id,
            payment_id: tour.payment_id,
            customer_id: tour.customer_id,
            status: TourStatus::Pending,
            stops: tour.stops,
            window: tour.window,
            duration_minutes: tour.duration_minutes,
            realtor_id: None,
            start: None,
            end: None,
            reason: None,
            declined: Vec::new(),
            explanation: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        inner.by_payment.insert(tour.payment_id, tour.tour_id);
        inner.tours.insert(tour.tour_id, record.clone());
        Ok(CreateOutcome::Created(Box::new(record)))
    }

    async fn assign(&self, a: Assignment<'_>) -> Result<TourRecord, StoreError> {
        let mut inner = lock(&self.inner);
        let current = inner
            .tours
            .get(&a.tour_id)
            .ok_or(StoreError::NotFound(a.tour_id))?;
        if current.version != a.expected_version || current.status != TourStatus::Pending {
            return Err(StoreError::Conflict(a.tour_id));
        }
        let (start, end) = (a.start.timestamp(), a.end.timestamp());
        if inner
            .tours
            .values()
            .any(|t| t.id != a.tour_id && overlaps(t, a.realtor_id, start, end))
        {
            return Err(StoreError::Overlap);
        }
        let t = inner
            .tours
            .get_mut(&a.tour_id)
            .ok_or(StoreError::NotFound(a.tour_id))?;
        t.status = TourStatus::Assigned;
        t.realtor_id = Some(a.realtor_id);
        t.start = Some(a.start);
        t.end = Some(a.end);
        t.explanation = Some(a.explanation.clone());
        t.reason = None;
        t.version += 1;
        t.updated_at = chrono::Utc::now();
        Ok(t.clone())
    }

    async fn transition(&self, change: Change) -> Result<TourRecord, StoreError> {
        let mut inner = lock(&self.inner);
        let t = inner
            .tours
            .get_mut(&change.tour_id)
            .ok_or(StoreError::NotFound(change.tour_id))?;
        if t.version != change.expected_version || change.transition == Transition::Assign {
            return Err(StoreError::Conflict(change.tour_id));
        }
        let next = t
            .status
            .apply(change.transition)
            .map_err(|_| StoreError::Conflict(change.tour_id))?;
        t.status = next;
        t.reason = change.reason;
        if let Some(d) = change.declined {
            if !t.declined.contains(&d) {
                t.declined.push(d);
            }
        }
        if let Some(w) = change.new_window {
            t.window = w;
        }
        if next == TourStatus::Pending {
            t.realtor_id = None;
            t.start = None;
            t.end = None;
            t.explanation = None;
        }
        t.version += 1;
        t.updated_at = chrono::Utc::now();
        Ok(t.clone())
    }

    async fn get_tour(&self, id: TourId) -> Result<Option<TourRecord>, StoreError> {
        Ok(lock(&self.inner).tours.get(&id).cloned())
    }

    async fn tour_by_payment(&self, payment: PaymentId) -> Result<Option<TourRecord>, StoreError> {
        let inner = lock(&self.inner);
        Ok(inner
            .by_payment
            .get(&payment)
            .and_then(|id| inner.tours.get(id))
            .cloned())
    }

    async fn load_realtors(&self) -> Result<Vec<Realtor>, StoreError> {
        Ok(lock(&self.inner).realtors.values().cloned().collect())
    }

    async fn load_active_bookings(&self) -> Result<Vec<(RealtorId, Booking)>, StoreError> {
        let inner = lock(&self.inner);
        Ok(inner
            .tours
            .values()
            .filter(|t| t.status.is_active())
            .filter_map(TourRecord::booking)
            .chain(inner.imported.iter().copied())
            .collect())
    }

    async fn load_open_tours(&self) -> Result<Vec<TourRecord>, StoreError> {
        Ok(lock(&self.inner)
            .tours
            .values()
            .filter(|t| !t.status.is_terminal())
            .cloned()
            .collect())
    }

    async fn upsert_realtor_profiles(&self, realtors: &[Realtor]) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        for r in realtors {
            inner.realtors.insert(r.id, r.clone());
        }
        Ok(())
    }

    async fn set_realtor_status(
        &self,
        realtor: RealtorId,
        status: RealtorStatus,
    ) -> Result<bool, StoreError> {
        let mut inner = lock(&self.inner);
        Ok(match inner.realtors.get_mut(&realtor) {
            Some(r) if r.status != status => {
                r.status = status;
                true
            }
            _ => false,
        })
    }

    async fn schedule_reminders(
        &self,
        tour: &TourRecord,
        reminders: &[Reminder],
    ) -> Result<(), StoreError> {
        let mut people = vec![format!("customer:{}", tour.customer_id)];
        people.extend(tour.realtor_id.map(|r| format!("realtor:{r}")));
        let mut inner = lock(&self.inner);
        for recipient in people {
            for r in reminders {
                let same = |(row, _): &&mut (DueNotification, &'static str)| {
                    row.tour_id == Some(tour.id)
                        && row.kind == r.kind
                        && row.recipient == recipient
                        && row.due_at == r.due_at
                };
                if let Some((_, status)) = inner.reminders.iter_mut().find(same) {
                    if *status == "cancelled" {
                        *status = "pending";
                    }
                    continue;
                }
                let row = DueNotification {
                    id: Uuid::new_v4(),
                    tour_id: Some(tour.id),
                    kind: r.kind.clone(),
                    recipient: recipient.clone(),
                    due_at: r.due_at,
                    attempts: 0,
                };
                inner.reminders.push((row, "pending"));
            }
        }
        Ok(())
    }

    async fn cancel_reminders(&self, tour: TourId) -> Result<u64, StoreError> {
        let mut n = 0;
        for (row, status) in &mut lock(&self.inner).reminders {
            if row.tour_id == Some(tour) && *status == "pending" {
                *status = "cancelled";
                n += 1;
            }
        }
        Ok(n)
    }

    async fn pending_notifications(
        &self,
        tour: Option<TourId>,
    ) -> Result<Vec<DueNotification>, StoreError> {
        let mut due: Vec<DueNotification> = lock(&self.inner)
            .reminders
            .iter()
            .filter(|(row, status)| *status == "pending" && (tour.is_none() || row.tour_id == tour))
            .map(|(row, _)| row.clone())
            .collect();
        due.sort_by_key(|r| r.due_at);
        Ok(due)
    }

    async fn deliver_notification(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        mailer: &dyn Mailer,
    ) -> Result<Delivery, StoreError> {
        let row = {
            let mut inner = lock(&self.inner);
            let Some(at) = inner
                .reminders
                .iter()
                .position(|(row, status)| row.id == id && *status == "pending")
            else {
                return Ok(Delivery::Skipped);
            };
            let row = inner.reminders[at].0.clone();
            let wanted = row
                .tour_id
                .and_then(|t| inner.tours.get(&t))
                .is_some_and(|t| {
                    matches!(t.status, TourStatus::Assigned | TourStatus::Accepted)
                        && t.start.is_some_and(|start| start > now)
                });
            if !wanted {
                inner.reminders[at].1 = "cancelled";
                return Ok(Delivery::Skipped);
            }
            row
        };
        let mail = Mail {
            id,
            to: row.recipient.clone(),
            subject: "Reminder: your tour is coming up".into(),
            body: format!("Tour {:?} is coming up.", row.tour_id),
        };
        if let Err(err) = mailer.deliver(&mail).await {
            return Ok(Delivery::Failed(err));
        }
        let mut inner = lock(&self.inner);
        let Some(entry) = inner
            .reminders
            .iter_mut()
            .find(|(r, status)| r.id == id && *status == "pending")
        else {
            return Ok(Delivery::Skipped);
        };
        entry.1 = "sent";
        inner.sent.push(serde_json::json!({
            "notification_id": row.id,
            "kind": row.kind,
            "tour_id": row.tour_id,
            "recipient_email": row.recipient,
            "due_at": row.due_at,
            "sent_at": now,
        }));
        Ok(Delivery::Sent)
    }

    async fn record_notification_failure(
        &self,
        id: Uuid,
        _error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        if let Some((row, status)) = inner
            .reminders
            .iter_mut()
            .find(|(r, status)| r.id == id && *status == "pending")
        {
            row.attempts += 1;
            match retry_at {
                Some(at) => row.due_at = at,
                None => *status = "failed",
            }
        }
        Ok(())
    }

    async fn cart_listing(&self, listing: ListingId) -> Result<Option<CartListing>, StoreError> {
        Ok(lock(&self.inner).listings.get(&listing).cloned())
    }

    async fn cart_items(&self, customer: CustomerId) -> Result<Vec<CartListing>, StoreError> {
        let inner = lock(&self.inner);
        Ok(inner
            .carts
            .get(&customer)
            .into_iter()
            .flatten()
            .filter_map(|id| inner.listings.get(id).cloned())
            .collect())
    }

    async fn add_cart_item(
        &self,
        customer: CustomerId,
        listing: ListingId,
    ) -> Result<bool, StoreError> {
        let mut inner = lock(&self.inner);
        let cart = inner.carts.entry(customer).or_default();
        if cart.contains(&listing) {
            return Ok(false);
        }
        cart.push(listing);
        Ok(true)
    }

    async fn remove_cart_item(
        &self,
        customer: CustomerId,
        listing: ListingId,
    ) -> Result<bool, StoreError> {
        let mut inner = lock(&self.inner);
        let cart = inner.carts.entry(customer).or_default();
        let before = cart.len();
        cart.retain(|l| *l != listing);
        Ok(cart.len() < before)
    }

    async fn create_payment(&self, payment: &NewPayment) -> Result<(), StoreError> {
        lock(&self.inner).payments.push(payment.clone());
        Ok(())
    }
}
