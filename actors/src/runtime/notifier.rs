//! The `Notifier` port: what happens to a notification when it is due. The runtime's default,
//! [`MailNotifier`], delivers it through a [`Mailer`] and records it in the same transaction
//! (the row becomes `sent` and a `notification.sent` event goes to the outbox), see
//! [`Store::deliver_notification`].

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::clock::Clock;
use crate::mail::Mailer;
use crate::notices::{Delivery, DueNotification};
use crate::store::{Store, StoreError};

/// Hands a due notification on.
#[async_trait]
pub trait Notifier: fmt::Debug + Send + Sync + 'static {
    /// Sends `notification`, now due. Must be idempotent: after a crash the same notification
    /// may be handed over again, and what is no longer pending is [`Delivery::Skipped`].
    ///
    /// # Errors
    /// When the store fails; the worker tries again later.
    async fn send(&self, notification: &DueNotification) -> Result<Delivery, StoreError>;
}

/// The default [`Notifier`]: [`Store::deliver_notification`] at the clock's time.
pub struct MailNotifier {
    store: Arc<dyn Store>,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
}

impl MailNotifier {
    /// A notifier delivering through `mailer`, recording in `store`, timed by `clock`.
    #[must_use]
    pub fn new(store: Arc<dyn Store>, mailer: Arc<dyn Mailer>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            mailer,
            clock,
        }
    }
}

impl fmt::Debug for MailNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailNotifier")
            .field("mailer", &self.mailer)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Notifier for MailNotifier {
    async fn send(&self, notification: &DueNotification) -> Result<Delivery, StoreError> {
        self.store
            .deliver_notification(notification.id, self.clock.now(), self.mailer.as_ref())
            .await
    }
}
