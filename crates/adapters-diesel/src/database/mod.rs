//! The connection pool, the migrations and the bridge from async callers to
//! synchronous Diesel. Everything backend-specific about connecting lives here;
//! the repositories write each query once against [`DbConnection`].
//!
//! - `mod.rs`: [`Database`], its opening and closing, and [`Database::run`],
//!   the one place that knows Diesel is synchronous.
//! - `connection.rs`: [`DbConnection`] and [`Backend`], and how a URL names
//!   one of them.
//! - `pool.rs`: the r2d2 pool's parts (opening, checking, the SQLite pragmas).
//! - `migrations.rs`: the embedded migrations of both backends.
//! - `transaction.rs`: the write and bookkeeping transactions.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use diesel::r2d2::{Pool, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::RunQueryDsl;
use thiserror::Error;
use webhooks_domain::RepositoryError;

use crate::health::Health;

mod checkpoint;
mod connection;
mod migrations;
mod pool;
#[cfg(test)]
mod tests;
mod transaction;

use connection::{create_parent_folder, Target, POSTGRES_CONNECT_TIMEOUT_SECS};
pub use connection::{Backend, DbConnection};
use pool::{Connector, Lifecycle, POOL_CLOSED};
pub(crate) use transaction::{
    bookkeeping_transaction, claim_transaction, record_transaction, write_transaction,
};

/// How long [`Database::close`] waits for connections still in use or
/// still being opened: longer than libpq's connect timeout.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(POSTGRES_CONNECT_TIMEOUT_SECS as u64 + 5);

/// How often [`Database::close`] looks again for connections to close.
const CLOSE_POLL: Duration = Duration::from_millis(10);

/// What can go wrong while connecting or migrating, at start-up. The texts
/// are for operators; they never contain the URL's password.
#[derive(Debug, Error)]
pub enum DatabaseError {
    #[error("unsupported database URL scheme `{0}`: use sqlite://PATH or postgres://…")]
    UnsupportedScheme(String),
    #[error("the database URL has no scheme: use sqlite://PATH or postgres://…")]
    MissingScheme,
    #[error("the SQLite URL names no file: use sqlite://PATH")]
    MissingSqlitePath,
    #[error("in-memory SQLite is not supported (each pooled connection would get its own empty database): use sqlite://PATH")]
    InMemorySqlite,
    #[error("cannot create the folder {path} of the SQLite database: {source}")]
    CreateFolder {
        path: String,
        source: std::io::Error,
    },
    #[error("the database pool size must be at least 1")]
    EmptyPool,
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("database migration failed: {0}")]
    Migration(String),
}

/// A pool of connections to PostgreSQL or SQLite. Cloning is cheap and shares
/// the pool.
///
/// ```no_run
/// # fn main() -> Result<(), webhooks_adapters_diesel::DatabaseError> {
/// use webhooks_adapters_diesel::{Database, DieselWebhookRepository};
/// let database = Database::connect("sqlite://data/webhooks.db", 8)?;
/// database.migrate()?;
/// let webhooks = DieselWebhookRepository::new(database.clone());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Database {
    pool: Pool<Connector>,
    health: Arc<Health>,
    backend: Backend,
    /// The PostgreSQL URL, kept for the notification listener.
    postgres_url: Option<Arc<str>>,
    lifecycle: Arc<Lifecycle>,
    /// See [`Database::on_webhook_status_change`].
    status_changed: Arc<OnceLock<StatusChangeHook>>,
}

type StatusChangeHook = Box<dyn Fn() + Send + Sync>;

impl Database {
    /// Calls `hook` after each commit of this process that disabled a
    /// webhook for its failures or enabled it again after a probe: the
    /// changes of a webhook that [`DieselWebhookRepository`](crate::DieselWebhookRepository)
    /// does not make, so a cache in front of it can forget what they
    /// changed. Set once; later calls are ignored.
    pub fn on_webhook_status_change(&self, hook: impl Fn() + Send + Sync + 'static) {
        let _ = self.status_changed.set(Box::new(hook));
    }

    /// Runs the hook of [`Database::on_webhook_status_change`], if any.
    pub(crate) fn webhook_status_changed(&self) {
        if let Some(hook) = self.status_changed.get() {
            hook();
        }
    }

    /// The PostgreSQL URL this database connects to; `None` for SQLite.
    pub(crate) fn postgres_url(&self) -> Option<&str> {
        self.postgres_url.as_deref()
    }

    /// Opens a pool of `pool_size` connections to `url`: `sqlite://PATH`
    /// (relative or absolute; the folder is created if missing) or
    /// `postgres://…` / `postgresql://…`. Fails within a few seconds when the
    /// database cannot be reached.
    pub fn connect(url: &str, pool_size: u32) -> Result<Database, DatabaseError> {
        if pool_size == 0 {
            return Err(DatabaseError::EmptyPool);
        }
        let target = Target::parse(url)?;
        let backend = target.backend();
        if let Target::Sqlite { path } = &target {
            create_parent_folder(path)?;
        }
        let lifecycle = Arc::new(Lifecycle::default());
        let health = {
            let (target, lifecycle) = (target.clone(), lifecycle.clone());
            Health::new(move || pool::probe(&target, &lifecycle))
        };
        let (postgres_url, sqlite_path): (Option<Arc<str>>, _) = match &target {
            Target::Postgres { url } => (Some(url.as_str().into()), None),
            Target::Sqlite { path } => (None, Some(path.clone())),
        };
        let pool = pool::build(target, pool_size, lifecycle.clone(), health.clone())
            .map_err(|error| DatabaseError::Connect(error.to_string()))?;
        if let Some(path) = sqlite_path {
            checkpoint::spawn(path, &lifecycle)
                .map_err(|error| DatabaseError::Connect(error.to_string()))?;
        }
        Ok(Database {
            pool,
            health,
            backend,
            postgres_url,
            lifecycle,
            status_changed: Arc::default(),
        })
    }

    /// Closes the pool for every clone of this `Database`: idle connections
    /// are closed at once, those in use when they come back, and no new one
    /// is opened; queries afterwards answer
    /// [`RepositoryError::Unavailable`]. Blocks until no connection is open
    /// or being opened (at most a few seconds), so that nothing of the pool,
    /// libpq's TLS included, is still running when the process exits. Call
    /// it at shutdown, after the work that needs the database has finished.
    pub fn close(&self) {
        self.lifecycle.close();
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        loop {
            // Each connection taken is closed when dropped (`has_broken`).
            while let Some(connection) = self.pool.try_get() {
                drop(connection);
            }
            let open = self.pool.state().connections;
            let opening = self.lifecycle.opening();
            if open == 0 && opening == 0 {
                tracing::debug!(backend = ?self.backend, "database pool closed");
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    open,
                    opening,
                    "database connections still in use at shutdown"
                );
                return;
            }
            std::thread::sleep(CLOSE_POLL);
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers (`SELECT 1`), for readiness probes.
    /// Errors: [`RepositoryError::Unavailable`].
    pub async fn ping(&self) -> Result<(), RepositoryError> {
        self.run(|connection| {
            diesel::sql_query("SELECT 1")
                .execute(connection)
                .map(drop)
                .map_err(storage_error)
        })
        .await
    }

    /// Runs `f` with a pooled connection on Tokio's blocking pool, inside the
    /// caller's tracing span. Diesel is synchronous; this is the one place
    /// that knows it. A failed checkout (database down, pool exhausted past
    /// the timeout) is [`RepositoryError::Unavailable`]; so is every call,
    /// at once and without a checkout, while the database is known to be
    /// down (see [`crate::health`]).
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, RepositoryError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, RepositoryError> + Send + 'static,
        T: Send + 'static,
    {
        if self.lifecycle.is_closed() {
            return Err(RepositoryError::Unavailable(POOL_CLOSED.into()));
        }
        self.health.check()?;
        let pool = self.pool.clone();
        let health = self.health.clone();
        let span = tracing::Span::current();
        let task = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut pooled = pool.get().map_err(|error| {
                RepositoryError::Unavailable(format!("no database connection: {error}"))
            })?;
            let result = f(&mut pooled.connection);
            // A query that failed on a connection that no longer answers:
            // the server is likely gone, not just this connection.
            if let Err(RepositoryError::Unavailable(error)) = &result {
                if pooled.connection.ping().is_err() {
                    health.mark_down(error);
                }
            }
            result
        });
        match task.await {
            Ok(result) => result,
            // A panic inside a query is a bug of ours; answer it as a fault
            // (logged, 503) rather than taking the caller's task down with it.
            Err(error) => Err(RepositoryError::Unavailable(format!(
                "database task failed: {error}"
            ))),
        }
    }
}

/// Translates a Diesel error into the domain's terms. The database's own text
/// goes into the error string, which is logged and never shown to a client.
pub(crate) fn storage_error(error: DieselError) -> RepositoryError {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            RepositoryError::Conflict(info.message().to_owned())
        }
        DieselError::DeserializationError(error) => RepositoryError::Corrupt(error.to_string()),
        other => RepositoryError::Unavailable(other.to_string()),
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.pool.state();
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .field("health", &self.health)
            .field("connections", &state.connections)
            .field("idle_connections", &state.idle_connections)
            .finish()
    }
}
