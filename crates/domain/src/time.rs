//! Instants as Unix milliseconds: one integer column on every backend.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Milliseconds since the Unix epoch, UTC.
///
/// ```
/// use webhooks_domain::UnixMillis;
/// let now = UnixMillis(1_700_000_000_999);
/// assert_eq!(now.as_secs(), 1_700_000_000);
/// assert_eq!(now.plus_millis(-999).as_millis(), 1_700_000_000_000);
/// assert_eq!(UnixMillis(i64::MAX).plus_millis(1), UnixMillis(i64::MAX));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    /// The milliseconds, as stored.
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds, as receivers see them in `webhook-timestamp`.
    pub fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// `millis` later (earlier when negative), saturating at the ends of `i64`.
    pub fn plus_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_add(millis))
    }
}

/// A duration in whole milliseconds, saturating at `i64::MAX`.
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Waits `wait`, or less when `shutdown` turns true first; whether it did.
/// A dropped sender stops the wait too.
pub(crate) async fn stopped_within(shutdown: &mut watch::Receiver<bool>, wait: Duration) -> bool {
    tokio::time::timeout(wait, shutdown.wait_for(|stop| *stop))
        .await
        .is_ok()
}
