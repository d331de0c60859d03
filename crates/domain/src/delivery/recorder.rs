//! The recorder task: one per dispatcher, it writes the attempts the
//! workers hand over (and the deferrals of circuits that opened) in the
//! order they came, as many as have arrived at a time, so that a busy queue
//! records many deliveries per transaction and a quiet one each at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::delivery::AttemptRecord;
use crate::ids::WebhookId;
use crate::ports::DeliveryQueue;
use crate::time::UnixMillis;

/// The most attempts written in one transaction.
pub(super) const RECORD_BATCH: usize = 256;

/// What the recorder task writes.
pub(super) enum Bookkeeping {
    /// An attempt and what follows from it.
    Attempt(AttemptRecord),
    /// A circuit opened: the webhook's pending deliveries wait until then.
    /// It travels behind the attempts handed over before it, so none of
    /// them makes a delivery due earlier again.
    Defer(WebhookId, UnixMillis),
}

/// The recorder task: writes the attempts (and deferrals) the workers hand
/// over, as many as have arrived at a time, until `workers_done` turns true;
/// then writes what is left and stops.
pub(super) async fn record_batches(
    queue: Arc<dyn DeliveryQueue>,
    mut unrecorded: mpsc::Receiver<Bookkeeping>,
    mut workers_done: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    loop {
        tokio::select! {
            biased;
            received = unrecorded.recv_many(&mut batch, RECORD_BATCH) => {
                if received == 0 {
                    return;
                }
                write_in_order(queue.as_ref(), &mut batch).await;
            }
            _ = workers_done.changed() => {
                unrecorded.close();
                while unrecorded.recv_many(&mut batch, RECORD_BATCH).await > 0 {
                    write_in_order(queue.as_ref(), &mut batch).await;
                }
                return;
            }
        }
    }
}

/// Writes bookkeeping in the order it came, leaving `items` empty: the
/// attempts between two deferrals in one transaction each.
pub(super) async fn write_in_order(queue: &dyn DeliveryQueue, items: &mut Vec<Bookkeeping>) {
    let mut attempts = Vec::with_capacity(items.len());
    let mut deferrals = Vec::new();
    for item in items.drain(..) {
        match item {
            Bookkeeping::Attempt(record) => attempts.push(record),
            Bookkeeping::Defer(webhook, until) => deferrals.push((attempts.len(), webhook, until)),
        }
    }
    let mut written = 0;
    for (before, webhook, until) in deferrals {
        if before > written {
            record_batch(queue, &attempts[written..before]).await;
            written = before;
        }
        if let Err(err) = queue.defer_webhook(&webhook, until).await {
            // This process skips the endpoint anyway; others find
            // out by their own timeouts.
            tracing::warn!(webhook = %webhook, error = %err, "cannot defer the deliveries of an open circuit");
        }
    }
    if attempts.len() > written {
        record_batch(queue, &attempts[written..]).await;
    }
}

/// Records a batch, trying once more after a failure (a dropped connection,
/// a deadlock between two processes): a lost batch means many deliveries
/// sent twice.
async fn record_batch(queue: &dyn DeliveryQueue, batch: &[AttemptRecord]) {
    if let Err(err) = queue.record_attempts(batch).await {
        tracing::warn!(attempts = batch.len(), error = %err, "cannot record attempts; trying once more");
        tokio::time::sleep(Duration::from_millis(50)).await;
        record_now(queue, batch).await;
    }
}

/// Records attempts in one transaction.
pub(super) async fn record_now(queue: &dyn DeliveryQueue, records: &[AttemptRecord]) {
    if let Err(err) = queue.record_attempts(records).await {
        // The claims' leases run out and the deliveries are sent again: at
        // least once, never lost.
        for record in records {
            tracing::error!(delivery = %record.attempt.delivery_id, error = %err, "cannot record an attempt");
        }
    }
}
