//! The recorder task: one per dispatcher, it writes the attempts the
//! workers hand over (and the deferrals of circuits that opened) in the
//! order they came, as many as have arrived at a time, so that a busy queue
//! records many deliveries per transaction and a quiet one each at once.
//! When more than one has arrived (the queue is busy), it gathers for
//! [`RECORD_GATHER`] more before writing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::delivery::AttemptRecord;
use crate::ids::WebhookId;
use crate::ports::DeliveryQueue;
use crate::time::UnixMillis;

/// The most attempts written in one transaction.
pub(super) const RECORD_BATCH: usize = 256;

/// How long a busy recorder gathers more attempts before it writes.
///
/// Recording is off the delivery's path (the receiver has its request;
/// the delivery stays leased until its record is written), so a busy
/// recorder can wait a moment to write more per transaction. Without it,
/// a recorder writes back to back whatever arrived during its last write:
/// under load, batches of a few attempts, each paying a transaction's
/// round trips. A lone attempt (a quiet queue) is written at once.
pub(super) const RECORD_GATHER: Duration = Duration::from_millis(2);

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
                if received > 1 {
                    gather(&mut unrecorded, &mut batch).await;
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

/// Adds to `batch` what arrives within [`RECORD_GATHER`], up to
/// [`RECORD_BATCH`] in all; stops early once the workers are gone.
async fn gather(unrecorded: &mut mpsc::Receiver<Bookkeeping>, batch: &mut Vec<Bookkeeping>) {
    let more = async {
        while batch.len() < RECORD_BATCH {
            let room = RECORD_BATCH - batch.len();
            if unrecorded.recv_many(batch, room).await == 0 {
                return;
            }
        }
    };
    // Whatever arrived by then is in `batch`: `recv_many` adds nothing
    // unless it returns.
    let _ = tokio::time::timeout(RECORD_GATHER, more).await;
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::time::Instant;

    use super::*;
    use crate::delivery::{Attempt, EndpointHealth, NextStep};
    use crate::ids::DeliveryId;
    use crate::ports::MockDeliveryQueue;

    /// The `n`th attempt, a success.
    fn record(n: u32) -> Bookkeeping {
        Bookkeeping::Attempt(AttemptRecord {
            attempt: Attempt {
                delivery_id: DeliveryId::from_ulid(ulid::Ulid::from_parts(u64::from(n), 1)),
                number: n,
                attempted_at: UnixMillis(1_000),
                duration_ms: 3,
                response_status: Some(200),
                response_body: None,
                error: None,
            },
            next: NextStep::Succeeded,
            health: EndpointHealth::Healthy,
        })
    }

    /// Each batch written: its attempts' numbers, and when it was written.
    type Written = Arc<Mutex<Vec<(Vec<u32>, Duration)>>>;

    fn queue_keeping_batches(started: Instant) -> (Arc<dyn DeliveryQueue>, Written) {
        let written = Written::default();
        let kept = Arc::clone(&written);
        let mut queue = MockDeliveryQueue::new();
        queue.expect_record_attempts().returning(move |records| {
            let numbers = records.iter().map(|record| record.attempt.number).collect();
            kept.lock().unwrap().push((numbers, started.elapsed()));
            Ok(())
        });
        (Arc::new(queue), written)
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_attempt_is_written_at_once() {
        let started = Instant::now();
        let (queue, written) = queue_keeping_batches(started);
        let (workers, unrecorded) = mpsc::channel(8);
        let (_done, workers_done) = watch::channel(false);

        workers.send(record(1)).await.unwrap();
        let later = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            workers.send(record(2)).await.unwrap();
        });

        record_batches(queue, unrecorded, workers_done).await;
        later.await.unwrap();

        assert_eq!(
            *written.lock().unwrap(),
            vec![
                (vec![1], Duration::ZERO),
                (vec![2], Duration::from_millis(10)),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_recorder_gathers_for_a_moment_before_writing() {
        let started = Instant::now();
        let (queue, written) = queue_keeping_batches(started);
        let (workers, unrecorded) = mpsc::channel(8);
        let (_done, workers_done) = watch::channel(false);
        // Two arrived together: the queue is busy.
        workers.send(record(1)).await.unwrap();
        workers.send(record(2)).await.unwrap();
        let later = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            workers.send(record(3)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            workers.send(record(4)).await.unwrap();
        });

        record_batches(queue, unrecorded, workers_done).await;
        later.await.unwrap();

        assert_eq!(
            *written.lock().unwrap(),
            vec![
                (vec![1, 2, 3], RECORD_GATHER),
                (vec![4], Duration::from_millis(6)),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_is_written_without_waiting() {
        let started = Instant::now();
        let (queue, written) = queue_keeping_batches(started);
        let (workers, unrecorded) = mpsc::channel(RECORD_BATCH + 1);
        let (_done, workers_done) = watch::channel(false);
        for n in 0..=u32::try_from(RECORD_BATCH).unwrap() {
            workers.send(record(n)).await.unwrap();
        }
        drop(workers);

        record_batches(queue, unrecorded, workers_done).await;

        let written = written.lock().unwrap();
        let sizes: Vec<(usize, Duration)> = written
            .iter()
            .map(|(numbers, at)| (numbers.len(), *at))
            .collect();
        assert_eq!(
            sizes,
            vec![(RECORD_BATCH, Duration::ZERO), (1, Duration::ZERO)]
        );
    }
}
