//! The r2d2 pool's parts: how a pooled connection is opened, checked and
//! discarded; the SQLite pragmas; the closing state shared with
//! [`Database::close`](super::Database::close).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{
    CustomizeConnection, HandleError, ManageConnection, Pool, PoolError, R2D2Connection,
};

use super::connection::{Backend, DbConnection, Target};
use crate::health::{Health, Probe};

/// How long a checkout waits for a connection. Short, so that a dead database
/// turns into an error (503 at the HTTP layer) instead of a hanging request;
/// once a connection has failed, calls fail at once instead (see
/// [`crate::health`]).
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an SQLite connection waits for another's write lock before
/// answering `SQLITE_BUSY`: as long as a checkout waits for a connection.
const SQLITE_BUSY_TIMEOUT: Duration = CHECKOUT_TIMEOUT;

/// What a call answers once the pool is closed.
pub(super) const POOL_CLOSED: &str = "the database pool is closed";

/// Opens connections of the backend the URL named. Diesel's own
/// `ConnectionManager<DbConnection>` would instead try every backend in turn
/// with the raw URL, and SQLite accepts any string as a file name: a mistyped
/// PostgreSQL URL would silently become a new SQLite file.
///
/// A connection that cannot be opened marks the database down.
#[derive(Debug)]
pub(super) struct Connector {
    target: Target,
    lifecycle: Arc<Lifecycle>,
    health: Arc<Health>,
}

/// A pooled connection and the outage count when it was opened (or last
/// found alive).
pub(super) struct PooledConnection {
    pub(super) connection: DbConnection,
    outages: u64,
}

/// Whether the pool was closed, and how many connections are being opened
/// right now (by r2d2's own threads, which refill the pool).
#[derive(Debug, Default)]
pub(super) struct Lifecycle {
    closed: AtomicBool,
    opening: AtomicUsize,
}

impl Lifecycle {
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// How many connections are being opened right now.
    pub(super) fn opening(&self) -> usize {
        self.opening.load(Ordering::SeqCst)
    }

    /// Counts one connection being opened until the guard is dropped.
    /// Counted before the caller checks [`Lifecycle::is_closed`], so that
    /// `close` either sees this attempt and waits for it, or the attempt
    /// sees the pool closed.
    fn start_opening(&self) -> Opening<'_> {
        self.opening.fetch_add(1, Ordering::SeqCst);
        Opening(self)
    }
}

/// Counts one connection being opened until dropped.
struct Opening<'a>(&'a Lifecycle);

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        self.0.opening.fetch_sub(1, Ordering::SeqCst);
    }
}

fn pool_closed() -> diesel::r2d2::Error {
    diesel::r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(POOL_CLOSED.into()))
}

/// Builds the pool of `size` connections to `target`, opening them all
/// before it answers.
pub(super) fn build(
    target: Target,
    size: u32,
    lifecycle: Arc<Lifecycle>,
    health: Arc<Health>,
) -> Result<Pool<Connector>, PoolError> {
    let mut builder = Pool::builder()
        .max_size(size)
        // No `SELECT 1` before every use (two extra round trips per
        // delivery): `Connector::is_valid` pings only the
        // connections opened before the latest outage. A connection the
        // server dropped otherwise fails its query once, is seen broken
        // when it comes back, and is replaced.
        .test_on_check_out(true)
        .connection_timeout(CHECKOUT_TIMEOUT)
        .error_handler(Box::new(TraceConnectionErrors(lifecycle.clone())));
    if target.backend() == Backend::Sqlite {
        builder = builder.connection_customizer(Box::new(SqlitePragmas));
    }
    builder.build(Connector {
        target,
        lifecycle,
        health,
    })
}

/// One probe of [`crate::health`]: a fresh connection and its `SELECT 1`.
/// Counted like the pool's own attempts, so that `close` waits for a probe's
/// connection too.
pub(super) fn probe(target: &Target, lifecycle: &Lifecycle) -> Probe {
    let _opening = lifecycle.start_opening();
    if lifecycle.is_closed() {
        return Probe::Stop;
    }
    match target.open().map(|mut connection| connection.ping()) {
        Ok(Ok(())) => Probe::Reachable,
        _ => Probe::Unreachable,
    }
}

impl ManageConnection for Connector {
    type Connection = PooledConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PooledConnection, Self::Error> {
        let _opening = self.lifecycle.start_opening();
        if self.lifecycle.is_closed() {
            return Err(pool_closed());
        }
        let outages = self.health.outages();
        let connection = self.target.open().map_err(|error| {
            self.health.mark_down(&error.to_string());
            diesel::r2d2::Error::ConnectionError(error)
        })?;
        if self.lifecycle.is_closed() {
            // Closed while connecting: close this one too, still counted.
            drop(connection);
            return Err(pool_closed());
        }
        Ok(PooledConnection {
            connection,
            outages,
        })
    }

    /// The pool asks on every checkout. Only a connection opened before the
    /// latest outage is pinged (once); the others cost nothing.
    fn is_valid(&self, pooled: &mut PooledConnection) -> Result<(), Self::Error> {
        if self.lifecycle.is_closed() {
            return Err(pool_closed());
        }
        let outages = self.health.outages();
        if pooled.outages == outages {
            return Ok(());
        }
        pooled
            .connection
            .ping()
            .map_err(diesel::r2d2::Error::QueryError)?;
        pooled.outages = outages;
        Ok(())
    }

    fn has_broken(&self, pooled: &mut PooledConnection) -> bool {
        // After `close`, every connection handed back is closed, not kept.
        self.lifecycle.is_closed() || pooled.connection.is_broken()
    }
}

/// Applied to every SQLite connection. `busy_timeout` comes first so that the
/// switch to WAL, which needs a moment of exclusive access, waits for other
/// connections instead of failing. WAL lets readers run beside the one writer;
/// SQLite leaves foreign keys off unless asked; `synchronous = NORMAL` is safe
/// under WAL (a power cut may lose the last commits, never corrupt the file).
/// No checkpoint in a commit: the database's own thread does them
/// (`checkpoint.rs`).
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<PooledConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, pooled: &mut PooledConnection) -> Result<(), diesel::r2d2::Error> {
        let pragmas = format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
             PRAGMA wal_autocheckpoint = 0;",
            SQLITE_BUSY_TIMEOUT.as_millis()
        );
        pooled
            .connection
            .batch_execute(&pragmas)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// r2d2 reports failed connection attempts, and pooled connections that
/// failed their check after an outage, through the `log` crate, which the
/// service does not collect; this sends them to `tracing` instead.
/// Once the pool is closed, r2d2's refills fail on purpose: not logged.
#[derive(Debug)]
struct TraceConnectionErrors(Arc<Lifecycle>);

impl HandleError<diesel::r2d2::Error> for TraceConnectionErrors {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        if !self.0.is_closed() {
            tracing::warn!(%error, "database connection failed");
        }
    }
}
