//! [`MemoryStore`]: the [`Store`] port in memory, for benchmarks and quick tests. Same
//! semantics as the database where the runtime relies on them (one tour per payment, version
//! checks, the state machine, the double-booking guard); no outbox, history or reminders.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use engine::{Booking, PaymentId, Realtor, RealtorId, TourId, TourStatus, Transition};

use crate::reminders::Reminder;
use crate::runtime::lock;
use crate::store::{Assignment, Change, CreateOutcome, NewTour, Store, StoreError, TourRecord};

#[derive(Default)]
struct Inner {
    tours: HashMap<TourId, TourRecord>,
    by_payment: HashMap<PaymentId, TourId>,
    realtors: HashMap<RealtorId, Realtor>,
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

    /// Every tour (in no particular order).
    #[must_use]
    pub fn tours(&self) -> Vec<TourRecord> {
        lock(&self.inner).tours.values().cloned().collect()
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
        Ok(lock(&self.inner)
            .tours
            .values()
            .filter(|t| t.status.is_active())
            .filter_map(TourRecord::booking)
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

    async fn schedule_reminders(
        &self,
        _tour: &TourRecord,
        _reminders: &[Reminder],
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn cancel_reminders(&self, _tour: TourId) -> Result<u64, StoreError> {
        Ok(0)
    }
}
