//! Group commit: publishes without an idempotency key share transactions.
//! A writer task (up to three at once) writes every such publish waiting,
//! up to 256, in one transaction, while the next ones gather; each caller
//! gets its own outcome once its event is committed. A publish alone is
//! written at once.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;
use webhooks_domain::{Event, PublishOutcome, RepositoryError, UnixMillis};

use crate::database::{write_transaction, Database, DbConnection};
use crate::events::{enabled_receivers, fan_out_and_store, FanOut, HandOffSlot, Leases};

/// The most events written in one transaction.
const PUBLISH_BATCH: usize = 256;

/// The most writer tasks at once: while one waits for its commit, the next
/// batch is written beside it.
const PUBLISH_WRITERS: usize = 3;

/// Publishes waiting for the next transaction, and how many writer tasks
/// are at work on them.
#[derive(Debug, Default)]
struct Waiting {
    publishes: Vec<WaitingPublish>,
    writers: usize,
}

/// An event waiting to be written, and where its outcome goes.
#[derive(Debug)]
struct WaitingPublish {
    event: Event,
    outcome: oneshot::Sender<Result<PublishOutcome, RepositoryError>>,
}

/// The line of publishes waiting for a shared transaction. Clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupCommit {
    waiting: Arc<Mutex<Waiting>>,
}

impl GroupCommit {
    /// Queues `event` for the next shared transaction, starting a writer
    /// task if fewer than three are at work; answers its outcome once
    /// written.
    pub(crate) async fn publish(
        &self,
        db: &Database,
        hand_off: &HandOffSlot,
        event: Event,
    ) -> Result<PublishOutcome, RepositoryError> {
        let (outcome, answer) = oneshot::channel();
        let start_writer = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            waiting.publishes.push(WaitingPublish { event, outcome });
            let start = waiting.writers < PUBLISH_WRITERS;
            if start {
                waiting.writers += 1;
            }
            start
        };
        if start_writer {
            tokio::spawn(write_waiting(
                db.clone(),
                hand_off.clone(),
                Arc::clone(&self.waiting),
            ));
        }
        answer.await.unwrap_or_else(|_| {
            Err(RepositoryError::Unavailable(
                "the publish was dropped unwritten (shutting down?)".to_owned(),
            ))
        })
    }
}

/// The writer task: writes the waiting publishes, a batch per transaction,
/// until none is left.
async fn write_waiting(db: Database, hand_off: HandOffSlot, waiting: Arc<Mutex<Waiting>>) {
    loop {
        let batch: Vec<WaitingPublish> = {
            let mut waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
            if waiting.publishes.is_empty() {
                waiting.writers -= 1;
                return;
            }
            let take = waiting.publishes.len().min(PUBLISH_BATCH);
            waiting.publishes.drain(..take).collect()
        };
        let events: Vec<Event> = batch.iter().map(|waiting| waiting.event.clone()).collect();
        let batch_hand_off = hand_off.clone();
        let written = db
            .run(move |connection| publish_batch(connection, &batch_hand_off, &events))
            .await;
        match written {
            Ok(outcomes) => {
                for (waiting, outcome) in batch.into_iter().zip(outcomes) {
                    // A caller that went away has nobody to tell.
                    let _ = waiting.outcome.send(Ok(outcome));
                }
            }
            Err(error) if batch.len() == 1 => {
                for waiting in batch {
                    let _ = waiting.outcome.send(Err(error.clone()));
                }
            }
            Err(_) => {
                for waiting in batch {
                    let event = waiting.event;
                    let hand_off = hand_off.clone();
                    let alone = db
                        .run(move |connection| {
                            let slice = std::slice::from_ref(&event);
                            Ok(publish_batch(connection, &hand_off, slice)?.remove(0))
                        })
                        .await;
                    let _ = waiting.outcome.send(alone);
                }
            }
        }
    }
}

/// Stores a batch of events without idempotency keys and their deliveries,
/// handing those the process's dispatcher has room for over to it once
/// committed (see the `hand_off` module of `events`).
/// On PostgreSQL a batch takes two round trips and no explicit
/// transaction: the read of the receivers, then one statement that inserts
/// events and deliveries and notifies, atomic and durable by itself. On
/// SQLite, one write transaction.
fn publish_batch(
    connection: &mut DbConnection,
    hand_off: &HandOffSlot,
    events: &[Event],
) -> Result<Vec<PublishOutcome>, RepositoryError> {
    let now = events
        .iter()
        .map(|event| event.created_at)
        .max()
        .unwrap_or(UnixMillis(0));
    let fan_out_of = |connection: &mut DbConnection| {
        let receivers = enabled_receivers(connection, events)?;
        let mut fan_out = FanOut::of(events, &receivers);
        let leases = Leases::take(hand_off.get(), &mut fan_out, &receivers, now);
        Ok::<_, RepositoryError>((fan_out, leases))
    };
    if matches!(connection, DbConnection::Sqlite(_)) {
        let (fan_out, leases) = write_transaction(connection, |connection| {
            fan_out_and_store(connection, fan_out_of)
        })?;
        leases.hand_over();
        return Ok(fan_out.outcomes);
    }
    let (fan_out, leases) = fan_out_and_store(connection, fan_out_of)?;
    leases.hand_over();
    Ok(fan_out.outcomes)
}
