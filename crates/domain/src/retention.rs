//! Retention: finished deliveries (with their attempts) and events nobody
//! needs any more are deleted, a chunk at a time, so the tables stop growing
//! without holding long locks or stalling deliveries.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::RepositoryError;
use crate::events::IDEMPOTENCY_WINDOW_MILLIS;
use crate::ports::{Clock, RetentionStore};
use crate::time::{millis, stopped_within, UnixMillis};

/// How long finished rows are kept, and how the pruning is paced.
///
/// ```
/// use std::time::Duration;
/// use webhooks_domain::RetentionPolicy;
///
/// let policy = RetentionPolicy {
///     deliveries: Some(Duration::from_secs(7 * 24 * 3600)),
///     ..RetentionPolicy::default()
/// };
/// assert_eq!(policy.rows_per_chunk, 2_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// How long a succeeded or failed delivery and its attempts are kept
    /// after it finished; `None` keeps them forever. Pending deliveries are
    /// never pruned.
    pub deliveries: Option<Duration>,
    /// How long an event is kept after it was accepted, once none of its
    /// deliveries remains; `None` keeps events forever. Never less than the
    /// idempotency window (a day), so a repeated idempotency key still finds
    /// its event.
    pub events: Option<Duration>,
    /// The wait between two passes.
    pub interval: Duration,
    /// Rows one delete statement takes at most. A pass ends at the first
    /// chunk that comes back short, so keep it within what the store takes
    /// at once (`webhooks-adapters-diesel`: 5,000).
    pub rows_per_chunk: usize,
    /// The pause between two chunks, which lets claims and records through.
    pub pause: Duration,
}

impl Default for RetentionPolicy {
    /// Deliveries 30 days, events a day, a pass every 5 minutes, 2,000 rows
    /// per chunk and 50 ms between chunks.
    fn default() -> Self {
        Self {
            deliveries: Some(Duration::from_secs(30 * 24 * 3600)),
            events: Some(Duration::from_secs(24 * 3600)),
            interval: Duration::from_secs(300),
            rows_per_chunk: 2_000,
            pause: Duration::from_millis(50),
        }
    }
}

/// What one chunk of [`RetentionStore::prune_finished_deliveries`] deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrunedDeliveries {
    /// Deliveries deleted.
    pub deliveries: u64,
    /// Their attempts, deleted with them.
    pub attempts: u64,
    /// Their events deleted with them: those old enough of which no
    /// delivery remains.
    pub events: u64,
}

/// What one chunk of [`RetentionStore::prune_events`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrunedEvents {
    /// Old events looked at for the first time.
    pub checked: u64,
    /// Those of them deleted, having no delivery left.
    pub deleted: u64,
}

/// The oldest rows retention keeps, for the age gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OldestKept {
    /// When the oldest finished delivery finished.
    pub finished_delivery: Option<UnixMillis>,
    /// When the oldest event was accepted.
    pub event: Option<UnixMillis>,
}

/// What one pass of [`Pruner::prune`] deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneReport {
    /// Deliveries deleted.
    pub deliveries: u64,
    /// Attempts deleted.
    pub attempts: u64,
    /// Events deleted.
    pub events: u64,
}

/// The retention task of a worker process: a pass at start, then one every
/// [`RetentionPolicy::interval`]. Passes of several processes on one
/// database may overlap: each chunk deletes rows no other one holds.
pub struct Pruner {
    store: Arc<dyn RetentionStore>,
    clock: Arc<dyn Clock>,
    policy: RetentionPolicy,
}

impl Pruner {
    /// A pruner applying `policy` to `store`.
    pub fn new(
        store: Arc<dyn RetentionStore>,
        clock: Arc<dyn Clock>,
        policy: RetentionPolicy,
    ) -> Self {
        Self {
            store,
            clock,
            policy,
        }
    }

    /// Prunes until `shutdown` turns true; a pass in progress stops at its
    /// next chunk. A failed pass is logged and retried at the next interval.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if self.policy.deliveries.is_none() && self.policy.events.is_none() {
            return;
        }
        while !*shutdown.borrow() {
            match self.prune(&shutdown).await {
                Ok(report) if report != PruneReport::default() => {
                    tracing::info!(
                        deliveries = report.deliveries,
                        attempts = report.attempts,
                        events = report.events,
                        "retention pruned old rows"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "retention pass failed"),
            }
            self.observe_oldest().await;
            if stopped_within(&mut shutdown, self.policy.interval).await {
                return;
            }
        }
    }

    /// One pass: finished deliveries first (their events may then go), then
    /// events, a chunk at a time with a pause between chunks, until a chunk
    /// comes back short or `shutdown` turns true.
    /// Errors: those of the [`RetentionStore`].
    pub async fn prune(
        &self,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<PruneReport, RepositoryError> {
        let mut report = PruneReport::default();
        let now = self.clock.now();
        let limit = self.policy.rows_per_chunk.max(1);
        let events_before = self
            .policy
            .events
            .map(|keep| now.plus_millis(-millis(keep).max(IDEMPOTENCY_WINDOW_MILLIS)));
        if let Some(keep) = self.policy.deliveries {
            let before = now.plus_millis(-millis(keep));
            loop {
                let chunk = self
                    .store
                    .prune_finished_deliveries(before, events_before, limit)
                    .await?;
                report.deliveries += chunk.deliveries;
                report.attempts += chunk.attempts;
                report.events += chunk.events;
                metrics::counter!("webhooks_retention_pruned_rows_total", "table" => "deliveries")
                    .increment(chunk.deliveries);
                metrics::counter!("webhooks_retention_pruned_rows_total", "table" => "attempts")
                    .increment(chunk.attempts);
                metrics::counter!("webhooks_retention_pruned_rows_total", "table" => "events")
                    .increment(chunk.events);
                if !self.next_chunk(chunk.deliveries, limit, shutdown).await {
                    break;
                }
            }
        }
        if let Some(before) = events_before {
            loop {
                let chunk = self.store.prune_events(before, limit).await?;
                report.events += chunk.deleted;
                metrics::counter!("webhooks_retention_pruned_rows_total", "table" => "events")
                    .increment(chunk.deleted);
                if !self.next_chunk(chunk.checked, limit, shutdown).await {
                    break;
                }
            }
        }
        Ok(report)
    }

    /// Whether another chunk follows one that took `taken` rows: only
    /// after a full chunk, and after the pause.
    async fn next_chunk(&self, taken: u64, limit: usize, shutdown: &watch::Receiver<bool>) -> bool {
        if taken < limit as u64 || *shutdown.borrow() {
            return false;
        }
        tokio::time::sleep(self.policy.pause).await;
        !*shutdown.borrow()
    }

    /// Sets the age gauges of the oldest kept rows.
    async fn observe_oldest(&self) {
        let oldest = match self.store.oldest_kept().await {
            Ok(oldest) => oldest,
            Err(error) => {
                tracing::warn!(%error, "cannot read the oldest kept rows");
                return;
            }
        };
        let now = self.clock.now();
        let age = |at: Option<UnixMillis>| {
            at.map_or(0.0, |at| {
                (now.as_millis() - at.as_millis()).max(0) as f64 / 1000.0
            })
        };
        metrics::gauge!("webhooks_retention_oldest_age_seconds", "table" => "deliveries")
            .set(age(oldest.finished_delivery));
        metrics::gauge!("webhooks_retention_oldest_age_seconds", "table" => "events")
            .set(age(oldest.event));
    }
}
