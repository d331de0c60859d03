//! SQLite's WAL checkpoints, off the commit path.
//!
//! By default SQLite checkpoints (copies the write-ahead log back into the
//! database file and syncs it) inside the commit that grows the log past
//! 1,000 pages, so now and then one publish, claim or record waited for a
//! checkpoint: on an idle system, single events arrived in about 1.2 ms,
//! and the one in a hundred that met a checkpoint in 11–15 ms. The pool's
//! connections therefore never checkpoint (`PRAGMA wal_autocheckpoint = 0`,
//! see `pool.rs`); a thread of the [`Database`](super::Database) does, every
//! [`CHECKPOINT_EVERY`], on a connection of its own, in `PASSIVE` mode:
//! it copies what no reader still needs and waits for nobody, while
//! writers go on appending to the log.

use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};

use super::pool::Lifecycle;

/// How often the log is checkpointed: at the service's write rates, a
/// second of log is a few thousand pages at most.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Starts the checkpoint thread of the SQLite database at `path`. It stops
/// once the pool is closed or gone (`lifecycle` no longer held by anyone
/// else). A checkpoint that fails is retried at the next tick; the log then
/// grows meanwhile, as it would behind a long reader.
pub(super) fn spawn(path: String, lifecycle: &Arc<Lifecycle>) -> std::io::Result<()> {
    let lifecycle = Arc::downgrade(lifecycle);
    std::thread::Builder::new()
        .name("sqlite-checkpoint".to_owned())
        .spawn(move || run(&path, &lifecycle))
        .map(drop)
}

fn run(path: &str, lifecycle: &Weak<Lifecycle>) {
    let mut connection: Option<SqliteConnection> = None;
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        match lifecycle.upgrade() {
            Some(lifecycle) if !lifecycle.is_closed() => {}
            _ => return,
        }
        if connection.is_none() {
            connection = SqliteConnection::establish(path)
                .map_err(|error| tracing::warn!(%error, "cannot open SQLite to checkpoint"))
                .ok();
        }
        if let Some(open) = connection.as_mut() {
            if let Err(error) = open.batch_execute("PRAGMA wal_checkpoint(PASSIVE)") {
                tracing::warn!(%error, "SQLite checkpoint failed");
                connection = None;
            }
        }
    }
}
