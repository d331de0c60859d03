//! The signal that new work is due, so idle workers start at once instead of
//! at their next poll.

use std::sync::Arc;

use tokio::sync::Notify;

/// Shared between publishers and dispatchers of one process; a storage
/// adapter may also fire it on a cross-process notification. Clones share
/// one signal; a wake-up with no one waiting is kept for the next to wait.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use webhooks_domain::Wakeup;
/// let wakeup = Wakeup::default();
/// let publisher_side = wakeup.clone();
/// publisher_side.notify();
/// wakeup.notified().await; // at once: the wake-up was kept
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Wakeup(Arc<Notify>);

impl Wakeup {
    /// Wakes a waiting dispatcher, or the next one to wait.
    pub fn notify(&self) {
        self.0.notify_one();
    }

    /// Resolves at the next [`Wakeup::notify`] (or at once if one is pending).
    pub async fn notified(&self) {
        self.0.notified().await;
    }
}
