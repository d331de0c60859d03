//! Test support, behind the `testing` feature, for this crate's tests and
//! those of the crates above it:
//!
//! - [`TestDatabase`]: a fresh, migrated database per test, so tests never
//!   share rows and can run in parallel.
//! - [`TestCluster`] (`cluster.rs`): a PostgreSQL server of the tests' own,
//!   for TLS and for stopping it under load.
//! - [`probe_listener_connection`]: whether the listener's connection to a
//!   URL is encrypted.

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, QueryDsl, RunQueryDsl};
use tempfile::TempDir;
use webhooks_domain::UnixMillis;

use crate::database::{claim_transaction, storage_error, Database, DbConnection};
use crate::deliveries::explain_claim_unordered;

mod cluster;

use crate::schema::{api_keys, attempts, deliveries, events, groups, organizations, webhooks};
pub use cluster::TestCluster;

/// The PostgreSQL server used when `TEST_DATABASE_URL` is not set.
///
/// TLS is off: the server is on loopback, where it only costs CPU. TLS is
/// tested on a cluster of the tests' own ([`crate::TestCluster`]).
pub const DEFAULT_TEST_DATABASE_URL: &str =
    "postgres://postgres@127.0.0.1:5432/test?sslmode=disable";

/// The PostgreSQL server the tests make their databases on:
/// `TEST_DATABASE_URL`, or [`DEFAULT_TEST_DATABASE_URL`] when it is unset or
/// empty.
pub fn test_server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_DATABASE_URL.to_owned())
}

/// Connections per test database: enough for the concurrency a test exercises,
/// few enough that parallel tests stay far below PostgreSQL's connection limit.
pub(crate) const POOL_SIZE: u32 = 4;

/// A database that exists for one test: migrated, empty, and removed when
/// dropped. Set-up failures panic with the reason, as a test should.
///
/// - [`TestDatabase::sqlite`]: a file in a new temporary folder.
/// - [`TestDatabase::postgres`]: a new database `test_<ulid>` on the server
///   of `TEST_DATABASE_URL` (a `postgres://` URL whose user may create
///   databases; default [`DEFAULT_TEST_DATABASE_URL`]), dropped `WITH (FORCE)`
///   so connections still open elsewhere (say, an app started on
///   [`TestDatabase::url`]) do not keep it alive.
///
/// ```
/// use webhooks_adapters_diesel::{DieselTenancyRepository, TestDatabase};
/// use webhooks_domain::TenancyRepository;
///
/// # async fn example() {
/// let test_database = TestDatabase::sqlite().await;
/// let tenancy = DieselTenancyRepository::new(test_database.database().clone());
/// assert!(tenancy.is_empty().await.unwrap());
/// // Or start a whole app on `test_database.url()`.
/// # }
/// ```
#[derive(Debug)]
pub struct TestDatabase {
    // Declared before `_cleanup` so that our own pool closes before the
    // database or its folder is removed.
    database: Database,
    url: String,
    _cleanup: Cleanup,
}

impl TestDatabase {
    /// A migrated SQLite database in a new temporary folder, deleted on drop.
    pub async fn sqlite() -> TestDatabase {
        let folder = tempfile::tempdir()
            .unwrap_or_else(|error| panic!("cannot create a temporary folder: {error}"));
        let url = format!("sqlite://{}", folder.path().join("webhooks.db").display());
        let database = connect_and_migrate(url.clone()).await;
        TestDatabase {
            database,
            url,
            _cleanup: Cleanup::Sqlite { _folder: folder },
        }
    }

    /// A migrated PostgreSQL database of its own on the server of
    /// [`test_server_url`], dropped on drop.
    pub async fn postgres() -> TestDatabase {
        Self::postgres_on(&test_server_url()).await
    }

    /// As [`TestDatabase::postgres`], on the server of `admin_url` (a
    /// `postgres://` URL whose user may create databases), whose query
    /// options (TLS ones included) the test database's URL keeps.
    pub async fn postgres_on(admin_url: &str) -> TestDatabase {
        let admin_url = admin_url.to_owned();
        let name = format!(
            "test_{}",
            ulid::Ulid::new().to_string().to_ascii_lowercase()
        );
        let url = url_of_database(&admin_url, &name);

        let create = {
            let admin_url = admin_url.clone();
            let name = name.clone();
            tokio::task::spawn_blocking(move || {
                admin_connection(&admin_url)
                    .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                    .unwrap_or_else(|error| panic!("cannot create test database {name}: {error}"));
            })
        };
        if let Err(error) = create.await {
            panic!("creating the test database failed: {error}");
        }
        // From here on the guard drops the database, even if migrating panics.
        let cleanup = Cleanup::Postgres {
            _database: DroppedDatabase { admin_url, name },
        };
        let database = connect_and_migrate(url.clone()).await;
        TestDatabase {
            database,
            url,
            _cleanup: cleanup,
        }
    }

    /// The migrated database, ready for the repositories.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The URL of the database, as [`Database::connect`] takes it, for
    /// starting a whole application on the same data.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many rows each table holds, for tests proving that a refused
    /// request stored nothing.
    pub async fn row_counts(&self) -> RowCounts {
        let counted = self
            .database
            .run(|connection| {
                Ok(RowCounts {
                    organizations: organizations::table
                        .count()
                        .get_result(connection)
                        .map_err(storage_error)?,
                    groups: groups::table
                        .count()
                        .get_result(connection)
                        .map_err(storage_error)?,
                    api_keys: api_keys::table
                        .count()
                        .get_result(connection)
                        .map_err(storage_error)?,
                    webhooks: webhooks::table
                        .count()
                        .get_result(connection)
                        .map_err(storage_error)?,
                    events: events::table
                        .count()
                        .get_result(connection)
                        .map_err(storage_error)?,
                    deliveries: deliveries::table
                        .count()
                        .get_result(connection)
                        .map_err(storage_error)?,
                    attempts: attempts::table
                        .count()
                        .get_result(connection)
                        .map_err(storage_error)?,
                })
            })
            .await;
        counted.unwrap_or_else(|error| panic!("cannot count the test database's rows: {error}"))
    }

    /// The plan PostgreSQL keeps, in a claim's transaction (one made
    /// without the values, for every claim of the connection), for claiming
    /// up to `limit` due deliveries of webhooks without an ordering at
    /// `now`, as `EXPLAIN EXECUTE` writes it (nothing is claimed); `None` on
    /// SQLite.
    pub async fn explain_claim(&self, now: UnixMillis, limit: i64) -> Option<String> {
        let explained = self
            .database
            .run(move |connection| {
                claim_transaction(connection, |connection| match connection {
                    DbConnection::Postgres(postgres) => {
                        explain_claim_unordered(postgres, now, limit)
                            .map(Some)
                            .map_err(storage_error)
                    }
                    DbConnection::Sqlite(_) => Ok(None),
                })
            })
            .await;
        explained.unwrap_or_else(|error| panic!("cannot explain a claim: {error}"))
    }
}

/// A line of PostgreSQL's `EXPLAIN` (text output), for tests that pin a
/// plan.
#[derive(Debug, diesel::QueryableByName)]
pub(crate) struct PlanLine {
    #[diesel(column_name = "QUERY PLAN", sql_type = diesel::sql_types::Text)]
    pub(crate) line: String,
}

/// The number of rows of every table: see [`TestDatabase::row_counts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowCounts {
    pub organizations: i64,
    pub groups: i64,
    pub api_keys: i64,
    pub webhooks: i64,
    pub events: i64,
    pub deliveries: i64,
    pub attempts: i64,
}

/// How often PostgreSQL planned a connection's prepared statements whose
/// text is `LIKE` any of `patterns`: for tests that a statement is
/// prepared and planned once per connection.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::QueryableByName)]
pub(crate) struct PreparedPlans {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(crate) statements: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(crate) generic: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(crate) custom: i64,
}

#[cfg(test)]
impl PreparedPlans {
    /// Reads `pg_prepared_statements` on `connection`, which must be
    /// PostgreSQL's.
    pub(crate) fn of(
        connection: &mut DbConnection,
        patterns: &[&str],
    ) -> Result<Self, webhooks_domain::RepositoryError> {
        let DbConnection::Postgres(postgres) = connection else {
            return Err(webhooks_domain::RepositoryError::Unavailable(
                "prepared statements are read on PostgreSQL".to_owned(),
            ));
        };
        let patterns: Vec<String> = patterns.iter().map(|&pattern| pattern.to_owned()).collect();
        diesel::sql_query(
            "SELECT COUNT(*) AS statements, COALESCE(SUM(generic_plans), 0)::bigint AS generic, \
             COALESCE(SUM(custom_plans), 0)::bigint AS custom \
             FROM pg_prepared_statements WHERE statement LIKE ANY($1)",
        )
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(patterns)
        .get_result::<Self>(postgres)
        .map_err(storage_error)
    }
}

/// Opens the connection the notification listener of
/// [`Database::spawn_listener`] would open for `url`, with the same reading of
/// its TLS parameters, and answers whether that connection is encrypted
/// (PostgreSQL's `pg_stat_ssl`), or why it could not be opened.
pub fn probe_listener_connection(url: &str) -> Result<bool, String> {
    let mut client = crate::listener::ListenerConnection::from_url(url)?.connect()?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .map_err(|error| error.to_string())?;
    let encrypted: bool = row.get(0);
    client.close().map_err(|error| error.to_string())?;
    Ok(encrypted)
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // No connection of ours is left open (nor inside TLS) when the
        // database is dropped or the test process exits.
        self.database.close();
    }
}

/// What to remove once a test is done.
#[derive(Debug)]
enum Cleanup {
    /// Dropping the folder deletes the file and its WAL companions.
    Sqlite {
        _folder: TempDir,
    },
    Postgres {
        _database: DroppedDatabase,
    },
}

/// A PostgreSQL test database, dropped when this guard is.
#[derive(Debug)]
struct DroppedDatabase {
    admin_url: String,
    name: String,
}

impl Drop for DroppedDatabase {
    fn drop(&mut self) {
        // Drop runs in sync code; a short blocking call is acceptable in tests.
        // Never panic here: that would abort a test that is already unwinding.
        let dropped = PgConnection::establish(&self.admin_url)
            .map_err(|error| error.to_string())
            .and_then(|mut connection| {
                connection
                    .batch_execute(&format!(
                        "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                        self.name
                    ))
                    .map_err(|error| error.to_string())
            });
        if let Err(error) = dropped {
            eprintln!(
                "warning: could not drop test database {}: {error}",
                self.name
            );
        }
    }
}

async fn connect_and_migrate(url: String) -> Database {
    let task = tokio::task::spawn_blocking(move || {
        let database = Database::connect(&url, POOL_SIZE)
            .unwrap_or_else(|error| panic!("cannot open the test database: {error}"));
        database
            .migrate()
            .unwrap_or_else(|error| panic!("cannot migrate the test database: {error}"));
        database
    });
    match task.await {
        Ok(database) => database,
        Err(error) => panic!("setting up the test database failed: {error}"),
    }
}

fn admin_connection(admin_url: &str) -> PgConnection {
    PgConnection::establish(admin_url).unwrap_or_else(|error| {
        panic!(
            "cannot reach PostgreSQL through TEST_DATABASE_URL \
             (default {DEFAULT_TEST_DATABASE_URL}): {error}"
        )
    })
}

/// The admin URL with its database name replaced, keeping user, host, port
/// and query options, and with `gssencmode=disable` unless it names a
/// `gssencmode` of its own.
///
/// libpq's default (`prefer`) first asks Kerberos whether it may encrypt
/// every new connection. A test process that exits while a pool thread is
/// still opening a connection could then abort in Kerberos' code
/// (`k5_mutex_lock: Received error 22`, SIGABRT, after the test passed):
/// seen once in CI. The tests' server never speaks GSSAPI.
fn url_of_database(admin_url: &str, name: &str) -> String {
    let mut url = url::Url::parse(admin_url)
        .unwrap_or_else(|error| panic!("TEST_DATABASE_URL must be a postgres:// URL: {error}"));
    url.set_path(&format!("/{name}"));
    if !url.query_pairs().any(|(key, _)| key == "gssencmode") {
        url.query_pairs_mut().append_pair("gssencmode", "disable");
    }
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_database_url_keeps_everything_but_the_name_and_turns_gss_off() {
        assert_eq!(
            url_of_database("postgres://postgres@127.0.0.1:5432/test", "test_x"),
            "postgres://postgres@127.0.0.1:5432/test_x?gssencmode=disable"
        );
        assert_eq!(
            url_of_database("postgresql://u:p@db/?sslmode=disable", "test_y"),
            "postgresql://u:p@db/test_y?sslmode=disable&gssencmode=disable"
        );
        assert_eq!(
            url_of_database("postgres://u@db/x?gssencmode=require", "test_z"),
            "postgres://u@db/test_z?gssencmode=require"
        );
    }
}
