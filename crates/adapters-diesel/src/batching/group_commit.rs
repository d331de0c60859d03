//! Group commit: writes of one kind that share transactions. A writer task
//! (up to three at once) writes every such item waiting, up to 256, in one
//! transaction, while the next ones gather; each caller gets its own
//! outcome once its item is committed. An item alone is written at once.
//! When a shared transaction fails, each of its items is tried again alone,
//! so that one bad item fails only itself.
//!
//! Two kinds use it: publishes without an idempotency key
//! ([`DieselEventStore`](crate::DieselEventStore)) and new webhooks
//! ([`DieselWebhookRepository`](crate::DieselWebhookRepository)).

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;
use webhooks_domain::RepositoryError;

use crate::database::{Database, DbConnection};
use crate::statements::ROWS_PER_STATEMENT;

/// The most items written in one transaction: few enough for one
/// multi-row statement.
const BATCH: usize = 256;

const _: () = assert!(BATCH <= ROWS_PER_STATEMENT);

/// The most writer tasks at once: while one waits for its commit, the next
/// batch is written beside it.
const WRITERS: usize = 3;

/// How one kind of item is written, a batch at a time.
pub(crate) trait BatchWrite: Send + Sync + 'static {
    type Item: Clone + Send + 'static;
    type Outcome: Send + 'static;

    /// Writes `items` in one transaction (or one statement, atomic and
    /// durable by itself), answering an outcome per item, in their order;
    /// on an error, none is written.
    fn write(
        &self,
        connection: &mut DbConnection,
        items: &[Self::Item],
    ) -> Result<Vec<Self::Outcome>, RepositoryError>;
}

type Answer<W> = oneshot::Sender<Result<<W as BatchWrite>::Outcome, RepositoryError>>;

/// Items waiting for the next transaction, and how many writer tasks are at
/// work on them.
struct Waiting<W: BatchWrite> {
    items: Vec<(W::Item, Answer<W>)>,
    writers: usize,
}

/// The line of items waiting for a shared transaction. Clones share it.
pub(crate) struct GroupCommit<W: BatchWrite> {
    db: Database,
    write: Arc<W>,
    waiting: Arc<Mutex<Waiting<W>>>,
}

impl<W: BatchWrite> GroupCommit<W> {
    pub(crate) fn new(db: Database, write: W) -> Self {
        Self {
            db,
            write: Arc::new(write),
            waiting: Arc::new(Mutex::new(Waiting {
                items: Vec::new(),
                writers: 0,
            })),
        }
    }

    /// Queues `item` for the next shared transaction, starting a writer
    /// task if fewer than three are at work; answers its outcome once
    /// written.
    pub(crate) async fn write(&self, item: W::Item) -> Result<W::Outcome, RepositoryError> {
        let (outcome, answer) = oneshot::channel();
        let start_writer = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            waiting.items.push((item, outcome));
            let start = waiting.writers < WRITERS;
            if start {
                waiting.writers += 1;
            }
            start
        };
        if start_writer {
            tokio::spawn(self.clone().write_waiting());
        }
        answer.await.unwrap_or_else(|_| {
            Err(RepositoryError::Unavailable(
                "the write was dropped undone (shutting down?)".to_owned(),
            ))
        })
    }

    /// The writer task: writes the waiting items, a batch per transaction,
    /// until none is left.
    async fn write_waiting(self) {
        loop {
            let batch: Vec<(W::Item, Answer<W>)> = {
                let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
                if waiting.items.is_empty() {
                    waiting.writers -= 1;
                    return;
                }
                let take = waiting.items.len().min(BATCH);
                waiting.items.drain(..take).collect()
            };
            let items: Vec<W::Item> = batch.iter().map(|(item, _)| item.clone()).collect();
            let write = Arc::clone(&self.write);
            let written = self
                .db
                .run(move |connection| write.write(connection, &items))
                .await;
            match written {
                Ok(outcomes) => {
                    for ((_, answer), outcome) in batch.into_iter().zip(outcomes) {
                        // A caller that went away has nobody to tell.
                        let _ = answer.send(Ok(outcome));
                    }
                }
                Err(error) if batch.len() == 1 => {
                    for (_, answer) in batch {
                        let _ = answer.send(Err(error.clone()));
                    }
                }
                Err(_) => {
                    for (item, answer) in batch {
                        let write = Arc::clone(&self.write);
                        let alone = self
                            .db
                            .run(move |connection| {
                                let mut outcomes =
                                    write.write(connection, std::slice::from_ref(&item))?;
                                outcomes.pop().ok_or_else(|| {
                                    RepositoryError::Unavailable(
                                        "a write answered no outcome".to_owned(),
                                    )
                                })
                            })
                            .await;
                        let _ = answer.send(alone);
                    }
                }
            }
        }
    }
}

impl<W: BatchWrite> Clone for GroupCommit<W> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            write: Arc::clone(&self.write),
            waiting: Arc::clone(&self.waiting),
        }
    }
}

impl<W: BatchWrite> std::fmt::Debug for GroupCommit<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("GroupCommit")
            .field("waiting", &waiting.items.len())
            .field("writers", &waiting.writers)
            .finish_non_exhaustive()
    }
}
