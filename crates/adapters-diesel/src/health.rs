//! Whether the database answers, as this process last saw it, so that a
//! request during an outage fails at once instead of waiting out the pool's
//! checkout timeout.
//!
//! - **Down** when opening a connection fails, or when a query failed and its
//!   connection no longer answers a ping. From then on every call answers
//!   [`RepositoryError::Unavailable`] (503 at the HTTP layer) without touching
//!   the pool, and one probe thread tries a fresh connection at once and then
//!   every [`PROBE_INTERVAL`].
//! - **Up** again when a probe connects and its `SELECT 1` answers.
//! - Each outage bumps a counter. A pooled connection opened before the
//!   latest outage is pinged once before its next use, so the connections
//!   left idle through an outage are replaced quietly instead of failing one
//!   request each.
//!
//! Nothing is lost by failing fast: the call is refused before it writes
//! anything, exactly as when the checkout times out.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use webhooks_domain::RepositoryError;

/// How long a probe waits after a failed attempt before the next.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// What a call answers while the database is down. Logged, never shown to a
/// client.
const DOWN: &str = "the database is down (a connection failed); \
                    failing fast until a probe reconnects";

/// What one probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    Reachable,
    Unreachable,
    /// The pool was closed: nothing to probe for any more.
    Stop,
}

/// The database's state as this process sees it; shared by the clones of a
/// `Database`.
pub(crate) struct Health {
    down: AtomicBool,
    /// How many times the database was marked down.
    outages: AtomicU64,
    /// Opens a fresh connection and runs `SELECT 1` on it.
    probe: Box<dyn Fn() -> Probe + Send + Sync>,
}

impl Health {
    pub(crate) fn new(probe: impl Fn() -> Probe + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self {
            down: AtomicBool::new(false),
            outages: AtomicU64::new(0),
            probe: Box::new(probe),
        })
    }

    /// `Err` at once while the database is down.
    pub(crate) fn check(&self) -> Result<(), RepositoryError> {
        if self.down.load(Ordering::Acquire) {
            Err(RepositoryError::Unavailable(DOWN.to_owned()))
        } else {
            Ok(())
        }
    }

    /// The outages so far: a connection opened under a lower count may have
    /// died since.
    pub(crate) fn outages(&self) -> u64 {
        self.outages.load(Ordering::Acquire)
    }

    /// Marks the database down, unless it already is, and starts the probe
    /// that will mark it up. The probe holds no strong reference: it stops
    /// once every clone of its `Database` is gone.
    pub(crate) fn mark_down(self: &Arc<Self>, cause: &str) {
        if self
            .down
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        self.outages.fetch_add(1, Ordering::AcqRel);
        tracing::error!(
            %cause,
            "database unreachable: requests fail fast until it answers again"
        );
        let health = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("database-probe".to_owned())
            .spawn(move || probe_until_up(&health));
        if let Err(error) = spawned {
            // Without a probe nothing would ever mark it up: stay usable.
            tracing::error!(%error, "cannot start the database probe");
            self.down.store(false, Ordering::Release);
        }
    }
}

fn probe_until_up(health: &Weak<Health>) {
    loop {
        let Some(health) = health.upgrade() else {
            return;
        };
        match (health.probe)() {
            Probe::Reachable => {
                health.down.store(false, Ordering::Release);
                tracing::info!("database reachable again");
                return;
            }
            Probe::Stop => return,
            Probe::Unreachable => {}
        }
        drop(health);
        std::thread::sleep(PROBE_INTERVAL);
    }
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("down", &self.down.load(Ordering::Relaxed))
            .field("outages", &self.outages.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn wait_until(condition: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn down_fails_at_once_until_a_probe_succeeds() {
        let reachable = Arc::new(AtomicBool::new(false));
        let probed = reachable.clone();
        let health = Health::new(move || {
            if probed.load(Ordering::Acquire) {
                Probe::Reachable
            } else {
                Probe::Unreachable
            }
        });
        assert_eq!(health.check(), Ok(()));
        assert_eq!(health.outages(), 0);

        health.mark_down("connection refused");
        health.mark_down("connection refused again");
        assert!(matches!(
            health.check(),
            Err(RepositoryError::Unavailable(_))
        ));
        // Marking down twice is one outage.
        assert_eq!(health.outages(), 1);
        std::thread::sleep(Duration::from_millis(50));
        assert!(health.check().is_err());

        reachable.store(true, Ordering::Release);
        assert!(wait_until(|| health.check().is_ok()));
        let marked = Instant::now();
        health.mark_down("again");
        assert_eq!(health.outages(), 2);
        // The first probe goes at once, not after an interval.
        assert!(wait_until(|| health.check().is_ok()));
        assert!(marked.elapsed() < PROBE_INTERVAL / 2);
    }
}
