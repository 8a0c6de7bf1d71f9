//! A store wrapper that bounds concurrent operations and announces committed tour changes.

use std::sync::OnceLock;

use tokio::sync::{broadcast, Notify};

use super::*;

/// Told of every committed tour change synchronously, before the change is broadcast and
/// before the writer gets its answer (see [`Runtime::observe_tour_changes`]).
pub type TourChangeObserver = Arc<dyn Fn(&TourRecord) + Send + Sync>;

/// The store behind a semaphore: at most `n` operations in flight, the rest wait here (no
/// timeout) instead of on the connection pool's acquire timeout. Every committed tour change
/// is sent on `changes` (for live streams such as SSE) and wakes `outbox_written` (the outbox
/// relay), since each such change wrote outbox rows in its transaction.
pub(super) struct Throttled {
    inner: Arc<dyn Store>,
    permits: tokio::sync::Semaphore,
    changes: broadcast::Sender<TourRecord>,
    observer: Arc<OnceLock<TourChangeObserver>>,
    outbox_written: Arc<Notify>,
}

impl Throttled {
    pub(super) fn new(
        inner: Arc<dyn Store>,
        n: usize,
        changes: broadcast::Sender<TourRecord>,
        observer: Arc<OnceLock<TourChangeObserver>>,
        outbox_written: Arc<Notify>,
    ) -> Self {
        Self {
            inner,
            permits: tokio::sync::Semaphore::new(n.max(1)),
            changes,
            observer,
            outbox_written,
        }
    }

    fn committed(&self, record: &TourRecord) {
        if let Some(observer) = self.observer.get() {
            observer(record);
        }
        self.outbox_written.notify_one();
        if self.changes.receiver_count() > 0 {
            // Lagging or absent receivers are their own business.
            let _ = self.changes.send(record.clone());
        }
    }

    async fn permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        // The semaphore is never closed.
        self.permits
            .acquire()
            .await
            .unwrap_or_else(|_| unreachable!("semaphore closed"))
    }
}

#[async_trait::async_trait]
impl Store for Throttled {
    async fn create_tour_from_payment(&self, tour: NewTour) -> Result<CreateOutcome, StoreError> {
        let _p = self.permit().await;
        let outcome = self.inner.create_tour_from_payment(tour).await?;
        if let CreateOutcome::Created(record) = &outcome {
            self.committed(record);
        }
        Ok(outcome)
    }
    async fn assign(
        &self,
        assignment: crate::store::Assignment<'_>,
    ) -> Result<TourRecord, StoreError> {
        let _p = self.permit().await;
        let record = self.inner.assign(assignment).await?;
        self.committed(&record);
        Ok(record)
    }
    async fn transition(&self, change: crate::store::Change) -> Result<TourRecord, StoreError> {
        let _p = self.permit().await;
        let record = self.inner.transition(change).await?;
        self.committed(&record);
        Ok(record)
    }
    async fn get_tour(&self, id: TourId) -> Result<Option<TourRecord>, StoreError> {
        let _p = self.permit().await;
        self.inner.get_tour(id).await
    }
    async fn tour_by_payment(
        &self,
        payment: engine::PaymentId,
    ) -> Result<Option<TourRecord>, StoreError> {
        let _p = self.permit().await;
        self.inner.tour_by_payment(payment).await
    }
    async fn load_realtors(&self) -> Result<Vec<Realtor>, StoreError> {
        let _p = self.permit().await;
        self.inner.load_realtors().await
    }
    async fn load_active_bookings(&self) -> Result<Vec<(RealtorId, engine::Booking)>, StoreError> {
        let _p = self.permit().await;
        self.inner.load_active_bookings().await
    }
    async fn load_open_tours(&self) -> Result<Vec<TourRecord>, StoreError> {
        let _p = self.permit().await;
        self.inner.load_open_tours().await
    }
    async fn upsert_realtor_profiles(&self, realtors: &[Realtor]) -> Result<(), StoreError> {
        let _p = self.permit().await;
        self.inner.upsert_realtor_profiles(realtors).await
    }
    async fn set_realtor_status(
        &self,
        realtor: RealtorId,
        status: RealtorStatus,
    ) -> Result<bool, StoreError> {
        let _p = self.permit().await;
        let changed = self.inner.set_realtor_status(realtor, status).await?;
        if changed {
            self.outbox_written.notify_one();
        }
        Ok(changed)
    }
    async fn schedule_reminders(
        &self,
        tour: &TourRecord,
        reminders: &[crate::reminders::Reminder],
    ) -> Result<(), StoreError> {
        let _p = self.permit().await;
        self.inner.schedule_reminders(tour, reminders).await?;
        // `notification.scheduled` rows for the relay.
        self.outbox_written.notify_one();
        Ok(())
    }
    async fn cancel_reminders(&self, tour: TourId) -> Result<u64, StoreError> {
        let _p = self.permit().await;
        self.inner.cancel_reminders(tour).await
    }
    async fn pending_notifications(
        &self,
        tour: Option<TourId>,
    ) -> Result<Vec<crate::notices::DueNotification>, StoreError> {
        let _p = self.permit().await;
        self.inner.pending_notifications(tour).await
    }
    async fn deliver_notification(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        mailer: &dyn crate::mail::Mailer,
    ) -> Result<crate::notices::Delivery, StoreError> {
        let _p = self.permit().await;
        let delivery = self.inner.deliver_notification(id, now, mailer).await?;
        if matches!(delivery, crate::notices::Delivery::Sent) {
            // Its `notification.sent` row for the relay.
            self.outbox_written.notify_one();
        }
        Ok(delivery)
    }
    async fn record_notification_failure(
        &self,
        id: Uuid,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let _p = self.permit().await;
        self.inner
            .record_notification_failure(id, error, retry_at)
            .await
    }
    async fn cart_listing(
        &self,
        listing: ListingId,
    ) -> Result<Option<crate::store::CartListing>, StoreError> {
        let _p = self.permit().await;
        self.inner.cart_listing(listing).await
    }
    async fn cart_items(
        &self,
        customer: engine::CustomerId,
    ) -> Result<Vec<crate::store::CartListing>, StoreError> {
        let _p = self.permit().await;
        self.inner.cart_items(customer).await
    }
    async fn add_cart_item(
        &self,
        customer: engine::CustomerId,
        listing: ListingId,
    ) -> Result<bool, StoreError> {
        let _p = self.permit().await;
        self.inner.add_cart_item(customer, listing).await
    }
    async fn remove_cart_item(
        &self,
        customer: engine::CustomerId,
        listing: ListingId,
    ) -> Result<bool, StoreError> {
        let _p = self.permit().await;
        self.inner.remove_cart_item(customer, listing).await
    }
    async fn create_payment(&self, payment: &crate::store::NewPayment) -> Result<(), StoreError> {
        let _p = self.permit().await;
        self.inner.create_payment(payment).await
    }
}
