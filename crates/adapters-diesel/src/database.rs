//! The connection pool, the migrations and the bridge from async callers to
//! synchronous Diesel. Everything backend-specific about connecting lives here;
//! the repositories write each query once against [`DbConnection`].

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{CustomizeConnection, HandleError, ManageConnection, Pool, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use thiserror::Error;
use webhooks_domain::RepositoryError;

use crate::health::{Health, Probe};

pub(crate) const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
pub(crate) const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// How long a checkout waits for a connection. Short, so that a dead database
/// turns into an error (503 at the HTTP layer) instead of a hanging request;
/// once a connection has failed, calls fail at once instead (see
/// [`crate::health`]).
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// libpq's own connect timeout (seconds), added to PostgreSQL URLs that set
/// none: libpq waits forever by default, which would pin a pool thread on an
/// unreachable host.
const POSTGRES_CONNECT_TIMEOUT_SECS: u32 = 5;

/// Applied to every SQLite connection. `busy_timeout` comes first so that the
/// switch to WAL, which needs a moment of exclusive access, waits for other
/// connections instead of failing. WAL lets readers run beside the one writer;
/// SQLite leaves foreign keys off unless asked; `synchronous = NORMAL` is safe
/// under WAL (a power cut may lose the last commits, never corrupt the file).
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; \
                              PRAGMA journal_mode = WAL; \
                              PRAGMA foreign_keys = ON; \
                              PRAGMA synchronous = NORMAL;";

/// Serializes migrations of processes that start together on one PostgreSQL:
/// an arbitrary constant naming this service's advisory lock.
const MIGRATION_LOCK_KEY: i64 = 0x7765_6268_6f6f_6b73; // "webhooks" in ASCII

/// A connection to either backend. Queries are written once against this type;
/// Diesel's derive dispatches them to the inner connection.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Which database a [`Database`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

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

/// Where to connect, read from the URL once.
#[derive(Debug, Clone)]
enum Target {
    Postgres { url: String },
    Sqlite { path: String },
}

impl Target {
    fn parse(url: &str) -> Result<Self, DatabaseError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            // Diesel would read a `file:` name as an SQLite URI, with its own
            // query options; `./` keeps it a plain file name.
            let path = if path.starts_with("file:") {
                format!("./{path}")
            } else {
                path.to_owned()
            };
            return match path.as_str() {
                "" => Err(DatabaseError::MissingSqlitePath),
                ":memory:" => Err(DatabaseError::InMemorySqlite),
                _ => Ok(Target::Sqlite { path }),
            };
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target::Postgres {
                url: with_connect_timeout(url),
            });
        }
        // Name only the scheme: the rest may hold a password.
        match url.split_once(':') {
            Some((scheme, _))
                if !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                Err(DatabaseError::UnsupportedScheme(scheme.to_owned()))
            }
            _ => Err(DatabaseError::MissingScheme),
        }
    }

    fn backend(&self) -> Backend {
        match self {
            Target::Postgres { .. } => Backend::Postgres,
            Target::Sqlite { .. } => Backend::Sqlite,
        }
    }
}

fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        url.to_owned()
    } else {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}connect_timeout={POSTGRES_CONNECT_TIMEOUT_SECS}")
    }
}

/// How long [`Database::close`] waits for connections still in use or
/// still being opened: longer than libpq's connect timeout.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(POSTGRES_CONNECT_TIMEOUT_SECS as u64 + 5);

/// Opens connections of the backend the URL named. Diesel's own
/// `ConnectionManager<DbConnection>` would instead try every backend in turn
/// with the raw URL, and SQLite accepts any string as a file name: a mistyped
/// PostgreSQL URL would silently become a new SQLite file.
///
/// A connection that cannot be opened marks the database down.
#[derive(Debug)]
struct Connector {
    target: Target,
    lifecycle: Arc<Lifecycle>,
    health: Arc<Health>,
}

/// A pooled connection and the outage count when it was opened (or last
/// found alive).
pub(crate) struct PooledConnection {
    connection: DbConnection,
    outages: u64,
}

/// Whether the pool was closed, and how many connections are being opened
/// right now (by r2d2's own threads, which refill the pool).
#[derive(Debug, Default)]
struct Lifecycle {
    closed: AtomicBool,
    opening: AtomicUsize,
}

impl Lifecycle {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

/// Counts one connection being opened until dropped.
struct Opening<'a>(&'a Lifecycle);

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        self.0.opening.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Target {
    /// Opens one connection of the backend the URL named.
    fn open(&self) -> Result<DbConnection, diesel::ConnectionError> {
        match self {
            Target::Postgres { url } => PgConnection::establish(url).map(DbConnection::Postgres),
            Target::Sqlite { path } => SqliteConnection::establish(path).map(DbConnection::Sqlite),
        }
    }
}

fn pool_closed() -> diesel::r2d2::Error {
    diesel::r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(
        "the database pool is closed".into(),
    ))
}

impl ManageConnection for Connector {
    type Connection = PooledConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PooledConnection, Self::Error> {
        // Counted before the check, so that `close` either sees this
        // attempt and waits for it, or this attempt sees the pool closed.
        self.lifecycle.opening.fetch_add(1, Ordering::SeqCst);
        let _opening = Opening(&self.lifecycle);
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

#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<PooledConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, pooled: &mut PooledConnection) -> Result<(), diesel::r2d2::Error> {
        pooled
            .connection
            .batch_execute(SQLITE_PRAGMAS)
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
    postgres_url: Option<std::sync::Arc<str>>,
    lifecycle: Arc<Lifecycle>,
}

impl Database {
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
            Health::new(move || {
                // Counted like the pool's own attempts, so that `close` waits
                // for a probe's connection too.
                lifecycle.opening.fetch_add(1, Ordering::SeqCst);
                let _opening = Opening(&lifecycle);
                if lifecycle.is_closed() {
                    return Probe::Stop;
                }
                match target.open().map(|mut connection| connection.ping()) {
                    Ok(Ok(())) => Probe::Reachable,
                    _ => Probe::Unreachable,
                }
            })
        };
        let mut builder = Pool::builder()
            .max_size(pool_size)
            // No `SELECT 1` before every use (two extra round trips per
            // delivery, measured): `Connector::is_valid` pings only the
            // connections opened before the latest outage. A connection the
            // server dropped otherwise fails its query once, is seen broken
            // when it comes back, and is replaced.
            .test_on_check_out(true)
            .connection_timeout(CHECKOUT_TIMEOUT)
            .error_handler(Box::new(TraceConnectionErrors(lifecycle.clone())));
        if backend == Backend::Sqlite {
            builder = builder.connection_customizer(Box::new(SqlitePragmas));
        }
        let postgres_url = match &target {
            Target::Postgres { url } => Some(url.as_str().into()),
            Target::Sqlite { .. } => None,
        };
        let pool = builder
            .build(Connector {
                target,
                lifecycle: lifecycle.clone(),
                health: health.clone(),
            })
            .map_err(|error| DatabaseError::Connect(error.to_string()))?;
        Ok(Database {
            pool,
            health,
            backend,
            postgres_url,
            lifecycle,
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
        self.lifecycle.closed.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        loop {
            // Each connection taken is closed when dropped (`has_broken`).
            while let Some(connection) = self.pool.try_get() {
                drop(connection);
            }
            let open = self.pool.state().connections;
            let opening = self.lifecycle.opening.load(Ordering::SeqCst);
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
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Applies the embedded migrations not yet applied, from
    /// `migrations/postgres` or `migrations/sqlite`. Blocks; call it at
    /// start-up, before serving.
    pub fn migrate(&self) -> Result<(), DatabaseError> {
        let mut connection = self
            .pool
            .get()
            .map_err(|error| DatabaseError::Connect(error.to_string()))?;
        let applied = match &mut connection.connection {
            DbConnection::Postgres(connection) => migrate_postgres(connection)?,
            DbConnection::Sqlite(connection) => connection
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|applied| applied.len())
                .map_err(|error| DatabaseError::Migration(error.to_string()))?,
        };
        if applied > 0 {
            tracing::info!(backend = ?self.backend, applied, "database migrations applied");
        } else {
            tracing::info!(backend = ?self.backend, "database schema is up to date");
        }
        Ok(())
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
            return Err(RepositoryError::Unavailable(
                "the database pool is closed".into(),
            ));
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

    /// Undoes every migration, to prove the `down.sql` files work.
    #[cfg(test)]
    pub(crate) fn revert_all_migrations(&self) -> Result<(), DatabaseError> {
        let mut connection = self
            .pool
            .get()
            .map_err(|error| DatabaseError::Connect(error.to_string()))?;
        let reverted = match &mut connection.connection {
            DbConnection::Postgres(connection) => connection
                .revert_all_migrations(POSTGRES_MIGRATIONS)
                .map(drop),
            DbConnection::Sqlite(connection) => connection
                .revert_all_migrations(SQLITE_MIGRATIONS)
                .map(drop),
        };
        reverted.map_err(|error| DatabaseError::Migration(error.to_string()))
    }
}

/// Runs the PostgreSQL migrations under an advisory lock, so that several
/// processes starting at once on one database apply them one at a time.
fn migrate_postgres(connection: &mut PgConnection) -> Result<usize, DatabaseError> {
    let lock = |connection: &mut PgConnection, function: &str| {
        connection
            .batch_execute(&format!("SELECT {function}({MIGRATION_LOCK_KEY})"))
            .map_err(|error| DatabaseError::Migration(error.to_string()))
    };
    lock(connection, "pg_advisory_lock")?;
    let applied = connection
        .run_pending_migrations(POSTGRES_MIGRATIONS)
        .map(|applied| applied.len())
        .map_err(|error| DatabaseError::Migration(error.to_string()));
    // Unlock even when a migration failed: the connection goes back to the pool.
    let unlocked = lock(connection, "pg_advisory_unlock");
    let applied = applied?;
    unlocked?;
    Ok(applied)
}

fn create_parent_folder(path: &str) -> Result<(), DatabaseError> {
    match Path::new(path).parent() {
        Some(folder) if !folder.as_os_str().is_empty() => {
            std::fs::create_dir_all(folder).map_err(|source| DatabaseError::CreateFolder {
                path: folder.display().to_string(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// Runs `f` in a transaction meant to write: committed when `f` answers `Ok`,
/// rolled back otherwise.
///
/// SQLite begins it with `BEGIN IMMEDIATE`, taking the write lock up front. A
/// plain (deferred) transaction that reads first and writes later must upgrade
/// its lock, and when another writer got in between SQLite answers
/// `SQLITE_BUSY` at once instead of waiting out the busy timeout. PostgreSQL
/// locks rows as it goes, so its plain `BEGIN` is right.
pub(crate) fn write_transaction<T>(
    connection: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, RepositoryError>,
) -> Result<T, RepositoryError> {
    transaction_begun_with(connection, None, f)
}

/// A [`write_transaction`] for the queue's own bookkeeping (claims, attempt
/// records), which PostgreSQL commits without waiting for its WAL flush.
///
/// Why this keeps the guarantee: events and their deliveries are stored by
/// durable transactions. What a crash of PostgreSQL can lose here is at most
/// the last fraction of a second of claims and attempt records, and a lost
/// claim or record only makes its delivery due again: it is sent once more
/// (at least once), never lost. Not waiting for the flush per delivery is what
/// lets a 2-core machine record thousands of attempts a second.
///
/// Its statements are also planned for the data at hand every time
/// (`plan_cache_mode`). Diesel prepares and caches its statements per
/// connection, and after five runs PostgreSQL may keep one generic plan for
/// a statement, costed on the table as it was then. A queue starts empty and
/// grows by thousands of rows a second, so a plan made on the empty table (a
/// sequential scan for `id = ANY($1)`) stayed long after it had become a
/// scan of the whole table per statement: measured, it took most of
/// PostgreSQL's time. Both settings travel with the `BEGIN`, in the same
/// round trip; the API's statements keep their cached plans.
pub(crate) fn bookkeeping_transaction<T>(
    connection: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, RepositoryError>,
) -> Result<T, RepositoryError> {
    transaction_begun_with(
        connection,
        Some(
            "BEGIN; SET LOCAL synchronous_commit TO OFF; \
             SET LOCAL plan_cache_mode TO force_custom_plan",
        ),
        f,
    )
}

/// Runs `f` in a transaction that PostgreSQL begins with `postgres_begin`
/// (plain `BEGIN` when `None`) and SQLite with `BEGIN IMMEDIATE`.
fn transaction_begun_with<T>(
    connection: &mut DbConnection,
    postgres_begin: Option<&str>,
    f: impl FnOnce(&mut DbConnection) -> Result<T, RepositoryError>,
) -> Result<T, RepositoryError> {
    type Manager = <DbConnection as Connection>::TransactionManager;
    let begun = match (&mut *connection, postgres_begin) {
        (DbConnection::Sqlite(sqlite), _) => {
            AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")
        }
        (DbConnection::Postgres(postgres), Some(begin)) => {
            AnsiTransactionManager::begin_transaction_sql(postgres, begin)
        }
        (DbConnection::Postgres(_), None) => Manager::begin_transaction(connection),
    };
    begun.map_err(storage_error)?;
    match f(connection) {
        Ok(value) => {
            Manager::commit_transaction(connection).map_err(storage_error)?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = Manager::rollback_transaction(connection) {
                // The pool discards a connection left inside a transaction.
                tracing::warn!(error = %rollback, "cannot roll back a transaction");
            }
            Err(error)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn migration_names(backend: &str) -> Vec<String> {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let mut names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.path().is_dir())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn both_backends_have_the_same_migrations_each_with_up_and_down() {
        let postgres = migration_names("postgres");
        assert!(!postgres.is_empty());
        assert_eq!(postgres, migration_names("sqlite"));
        for backend in ["postgres", "sqlite"] {
            for name in &postgres {
                for file in ["up.sql", "down.sql"] {
                    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("migrations")
                        .join(backend)
                        .join(name)
                        .join(file);
                    assert!(path.is_file(), "missing {}", path.display());
                }
            }
        }
    }

    #[test]
    fn urls_of_other_schemes_are_refused_naming_only_the_scheme() {
        let refused = |url: &str| Target::parse(url).map(|_| ()).unwrap_err().to_string();
        assert_eq!(
            refused("mysql://root:hunter2@db/webhooks"),
            "unsupported database URL scheme `mysql`: use sqlite://PATH or postgres://…"
        );
        assert_eq!(
            refused("data/webhooks.db"),
            "the database URL has no scheme: use sqlite://PATH or postgres://…"
        );
        assert!(matches!(
            Target::parse("sqlite://"),
            Err(DatabaseError::MissingSqlitePath)
        ));
        assert!(matches!(
            Target::parse("sqlite://:memory:"),
            Err(DatabaseError::InMemorySqlite)
        ));
    }

    #[test]
    fn sqlite_urls_become_plain_paths() {
        let path = |url: &str| match Target::parse(url).unwrap() {
            Target::Sqlite { path } => path,
            Target::Postgres { .. } => panic!("{url} is not SQLite"),
        };
        assert_eq!(path("sqlite://data/webhooks.db"), "data/webhooks.db");
        assert_eq!(
            path("sqlite:///var/lib/webhooks.db"),
            "/var/lib/webhooks.db"
        );
        assert_eq!(path("sqlite://file:x.db"), "./file:x.db");
    }

    #[test]
    fn postgres_urls_get_a_connect_timeout_unless_they_set_one() {
        let url = |raw: &str| match Target::parse(raw).unwrap() {
            Target::Postgres { url } => url,
            Target::Sqlite { .. } => panic!("{raw} is not PostgreSQL"),
        };
        assert_eq!(
            url("postgres://u@h/db"),
            "postgres://u@h/db?connect_timeout=5"
        );
        assert_eq!(
            url("postgresql://u@h/db?sslmode=disable"),
            "postgresql://u@h/db?sslmode=disable&connect_timeout=5"
        );
        assert_eq!(
            url("postgres://u@h/db?connect_timeout=1"),
            "postgres://u@h/db?connect_timeout=1"
        );
    }

    #[tokio::test]
    async fn a_closed_pool_closes_its_connections_and_answers_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("webhooks.db").display());
        let database = Database::connect(&url, 3).unwrap();
        let clone = database.clone();
        assert_eq!(clone.ping().await, Ok(()));
        assert_eq!(database.pool.state().connections, 3);

        database.close();
        assert_eq!(database.pool.state().connections, 0);
        let started = std::time::Instant::now();
        assert_eq!(
            clone.ping().await,
            Err(RepositoryError::Unavailable(
                "the database pool is closed".into()
            ))
        );
        assert!(started.elapsed() < Duration::from_millis(500));
        // r2d2 tries to refill the pool; nothing is opened.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(database.pool.state().connections, 0);
    }

    #[test]
    fn a_zero_pool_is_refused() {
        assert!(matches!(
            Database::connect("sqlite://unused.db", 0),
            Err(DatabaseError::EmptyPool)
        ));
    }

    #[test]
    fn sqlite_creates_the_missing_folder_and_applies_the_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nested/deeper/webhooks.db");
        let database = Database::connect(&format!("sqlite://{}", file.display()), 2).unwrap();
        database.migrate().unwrap();
        assert!(file.is_file());
        assert_eq!(database.backend(), Backend::Sqlite);

        #[derive(diesel::QueryableByName)]
        struct Mode {
            #[diesel(sql_type = diesel::sql_types::Text)]
            journal_mode: String,
        }
        #[derive(diesel::QueryableByName)]
        struct ForeignKeys {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            foreign_keys: i64,
        }
        let mut pooled = database.pool.get().unwrap();
        let mode: Mode = diesel::sql_query("PRAGMA journal_mode")
            .get_result(&mut pooled.connection)
            .unwrap();
        let keys: ForeignKeys = diesel::sql_query("PRAGMA foreign_keys")
            .get_result(&mut pooled.connection)
            .unwrap();
        assert_eq!(mode.journal_mode, "wal");
        assert_eq!(keys.foreign_keys, 1);
    }

    #[test]
    fn sqlite_migrations_revert_and_reapply() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("webhooks.db").display());
        let database = Database::connect(&url, 1).unwrap();
        database.migrate().unwrap();
        database.revert_all_migrations().unwrap();
        database.migrate().unwrap();
    }

    #[cfg(feature = "testing")]
    #[tokio::test]
    async fn postgres_migrations_revert_and_reapply() {
        let test_database = crate::TestDatabase::postgres().await;
        let database = test_database.database().clone();
        tokio::task::spawn_blocking(move || {
            database.revert_all_migrations().unwrap();
            database.migrate().unwrap();
        })
        .await
        .unwrap();
    }

    #[cfg(feature = "testing")]
    #[tokio::test]
    async fn postgres_bookkeeping_commits_without_waiting_for_the_flush_and_others_wait() {
        #[derive(diesel::QueryableByName)]
        struct Settings {
            #[diesel(sql_type = diesel::sql_types::Text)]
            synchronous_commit: String,
            #[diesel(sql_type = diesel::sql_types::Text)]
            plan_cache_mode: String,
        }
        fn setting(connection: &mut DbConnection) -> Result<String, RepositoryError> {
            let DbConnection::Postgres(postgres) = connection else {
                unreachable!("a PostgreSQL test database");
            };
            diesel::sql_query(
                "SELECT current_setting('synchronous_commit') AS synchronous_commit, \
                 current_setting('plan_cache_mode') AS plan_cache_mode",
            )
            .get_result::<Settings>(postgres)
            .map(|row| format!("{} {}", row.synchronous_commit, row.plan_cache_mode))
            .map_err(storage_error)
        }
        let test_database = crate::TestDatabase::postgres().await;
        let database = test_database.database().clone();
        let (bookkeeping, durable, after) = database
            .run(|connection| {
                let bookkeeping = bookkeeping_transaction(connection, setting)?;
                let durable = write_transaction(connection, setting)?;
                Ok((bookkeeping, durable, setting(connection)?))
            })
            .await
            .unwrap();
        assert_eq!(bookkeeping, "off force_custom_plan");
        assert_eq!(durable, "on auto");
        assert_eq!(after, "on auto");
    }

    /// An outage of our own test database: its connections are killed and
    /// new ones refused (`ALLOW_CONNECTIONS false`), then allowed again.
    #[cfg(feature = "testing")]
    #[tokio::test]
    async fn after_an_outage_calls_fail_at_once_then_idle_connections_are_replaced_quietly() {
        fn admin_sql(sql: String) {
            let admin_url = std::env::var("TEST_DATABASE_URL")
                .ok()
                .filter(|url| !url.is_empty())
                .unwrap_or_else(|| crate::DEFAULT_TEST_DATABASE_URL.to_owned());
            PgConnection::establish(&admin_url)
                .unwrap()
                .batch_execute(&sql)
                .unwrap();
        }
        let test_database = crate::TestDatabase::postgres().await;
        let name = test_database.url().rsplit('/').next().unwrap().to_owned();
        let name = name.split('?').next().unwrap().to_owned();
        let database = test_database.database().clone();
        // Every pooled connection is open (the pool fills itself at start).
        assert_eq!(database.pool.state().connections, crate::testing::POOL_SIZE);
        database.ping().await.unwrap();

        let cut = name.clone();
        tokio::task::spawn_blocking(move || {
            admin_sql(format!(
                "ALTER DATABASE \"{cut}\" ALLOW_CONNECTIONS false; \
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{cut}'"
            ))
        })
        .await
        .unwrap();
        // The first call finds its connection dead; from then on calls fail
        // without waiting for a connection.
        assert!(database.ping().await.is_err());
        for _ in 0..5 {
            let started = std::time::Instant::now();
            assert!(database.ping().await.is_err());
            assert!(started.elapsed() < Duration::from_millis(100));
        }

        tokio::task::spawn_blocking(move || {
            admin_sql(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"))
        })
        .await
        .unwrap();
        // Nothing uses the pool while the probe reconnects.
        tokio::time::sleep(crate::health::PROBE_INTERVAL * 2 + Duration::from_millis(500)).await;
        // The connections opened before the outage are pinged before use and
        // replaced: no call fails on one. (Calls at once, so that every
        // pooled connection is taken, not just the latest returned.)
        for _ in 0..3 {
            let mut calls = tokio::task::JoinSet::new();
            for _ in 0..crate::testing::POOL_SIZE {
                let database = database.clone();
                calls.spawn(async move { database.ping().await });
            }
            while let Some(answer) = calls.join_next().await {
                assert_eq!(answer.unwrap(), Ok(()));
            }
        }
    }

    #[tokio::test]
    async fn an_unreachable_postgres_fails_fast() {
        let started = std::time::Instant::now();
        // Port 1 on loopback: nothing listens, so the connection is refused.
        let result = tokio::task::spawn_blocking(|| {
            Database::connect("postgres://postgres@127.0.0.1:1/none", 1)
        })
        .await
        .unwrap();
        assert!(matches!(result, Err(DatabaseError::Connect(_))));
        assert!(started.elapsed() < Duration::from_secs(15));
    }
}
