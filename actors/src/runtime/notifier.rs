//! The `Notifier` port: what happens to a reminder when it is due. The runtime's default,
//! [`OutboxNotifier`], records it: the `notifications` row becomes `sent` and a
//! `notification.sent` event goes to the outbox in the same transaction. Delivering email is
//! the notification worker's job (it reads those rows and events), not the runtime's.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::clock::Clock;
use crate::reminders::DueReminder;
use crate::store::{Store, StoreError};

/// Hands a due reminder on.
#[async_trait]
pub trait Notifier: fmt::Debug + Send + Sync + 'static {
    /// Sends `reminder`, now due. `Ok(true)` when it went out; `Ok(false)` when it no longer
    /// applies (sent before, cancelled, or its tour was cancelled, moved or started). Must
    /// be idempotent: after a crash the same reminder may be handed over again.
    ///
    /// # Errors
    /// When it could not be sent; the scheduler tries again later.
    async fn send(&self, reminder: &DueReminder) -> Result<bool, StoreError>;
}

/// The default [`Notifier`]: [`Store::record_reminder_sent`] at the clock's time.
pub struct OutboxNotifier {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl OutboxNotifier {
    /// A notifier recording reminders in `store`, timed by `clock`.
    #[must_use]
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }
}

impl fmt::Debug for OutboxNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxNotifier")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Notifier for OutboxNotifier {
    async fn send(&self, reminder: &DueReminder) -> Result<bool, StoreError> {
        self.store
            .record_reminder_sent(reminder.id, self.clock.now())
            .await
    }
}
