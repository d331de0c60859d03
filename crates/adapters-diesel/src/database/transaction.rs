//! The kinds of write transaction the repositories use, each begun the
//! way its backend needs.

use std::sync::{Mutex, PoisonError};

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::Connection;
use webhooks_domain::RepositoryError;

use super::{storage_error, DbConnection};

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

/// How PostgreSQL begins a [`bookkeeping_transaction`]: both settings travel
/// with the `BEGIN`, in the same round trip.
const BEGIN_BOOKKEEPING: &str = "BEGIN; SET LOCAL synchronous_commit TO OFF; \
                                 SET LOCAL plan_cache_mode TO force_custom_plan";

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
/// scan of the whole table per statement. The API's statements keep their
/// cached plans.
pub(crate) fn bookkeeping_transaction<T>(
    connection: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, RepositoryError>,
) -> Result<T, RepositoryError> {
    transaction_begun_with(connection, Some(BEGIN_BOOKKEEPING), f)
}

/// How PostgreSQL begins a [`claim_transaction`] or a
/// [`record_transaction`]: the bookkeeping transaction's commit, generic
/// plans, and no bitmap or sequential scans.
const BEGIN_PLANNED_ONCE: &str = "BEGIN; SET LOCAL synchronous_commit TO OFF; \
                                  SET LOCAL plan_cache_mode TO force_generic_plan; \
                                  SET LOCAL enable_bitmapscan TO off; \
                                  SET LOCAL enable_seqscan TO off";

/// A [`bookkeeping_transaction`] for a claim, in which PostgreSQL reads the
/// pending deliveries through an index in due order, stopping at the
/// claim's limit, whatever its statistics say.
///
/// A backlog builds faster than autovacuum analyzes the table: a burst of
/// ten thousand publishes, then a claim a second later, still planned with
/// the statistics of a nearly empty queue (tens of pending rows). With
/// those, reading every due delivery (a bitmap scan of the index, or the
/// table) and sorting them looked as cheap as the ordered index scan, and
/// each claim then cost as much as the whole backlog: 5 ms per claim of 30
/// deliveries in a backlog of 10,000 (see docs/benchmarks.md). The other
/// statements of a claim (the FIFO heads) read through indexes anyway.
///
/// Unlike the other bookkeeping, a claim's statements are planned once per
/// connection (`force_generic_plan`): their text is constant and they are
/// kept prepared, and with bitmap and sequential scans ruled out the plan
/// made without the values is an index path whatever the statistics were
/// when it was made, so planning them again at every claim (about a third
/// of a millisecond each, two or three statements a round) bought nothing.
pub(crate) fn claim_transaction<T>(
    connection: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, RepositoryError>,
) -> Result<T, RepositoryError> {
    transaction_begun_with(connection, Some(BEGIN_PLANNED_ONCE), f)
}

/// A [`bookkeeping_transaction`] for a batch of attempt records, begun as
/// a claim's: its busiest statements on PostgreSQL (where each delivery
/// stands, the attempts, the end of failure streaks) have constant text
/// and are planned once per connection, through indexes. Every statement
/// of a record finds its rows by key (deliveries and webhooks by id, the
/// receivers of an operational event by group), so ruling out sequential
/// and bitmap scans leaves each its index path, whatever the statistics
/// were when the plan was made. Planning them at each batch cost about a
/// third of PostgreSQL's time for a batch (statement log of a one-webhook
/// run: 315 of 790 ms in parsing and planning).
pub(crate) fn record_transaction<T>(
    connection: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, RepositoryError>,
) -> Result<T, RepositoryError> {
    transaction_begun_with(connection, Some(BEGIN_PLANNED_ONCE), f)
}

/// The turn of this process's SQLite write transactions: one at a time,
/// the next woken as soon as the last one ends.
///
/// SQLite has one writer per database file. Without this line, a write
/// transaction that found the lock taken by another connection of the
/// pool waited in SQLite's busy handler, which sleeps 1, 2, 5, 10, 15, 20,
/// 25 … ms between tries whenever the writer is done: under load,
/// publishes, claims and records took turns through those sleeps (the
/// machine about half idle during a drain, send-to-arrival p99 of 265 ms
/// with one webhook flat out). Other processes on the same file still meet
/// the busy handler. One line for the whole process: a process serves one
/// database, and no write transaction waits for another one.
static SQLITE_WRITER: Mutex<()> = Mutex::new(());

/// Runs `f` in a transaction that PostgreSQL begins with `postgres_begin`
/// (plain `BEGIN` when `None`) and SQLite with `BEGIN IMMEDIATE`, once it
/// is this process's turn ([`SQLITE_WRITER`]).
fn transaction_begun_with<T>(
    connection: &mut DbConnection,
    postgres_begin: Option<&str>,
    f: impl FnOnce(&mut DbConnection) -> Result<T, RepositoryError>,
) -> Result<T, RepositoryError> {
    type Manager = <DbConnection as Connection>::TransactionManager;
    // Held until the commit or the rollback below. A panic inside `f`
    // poisons the line, which stays usable.
    let _turn = matches!(connection, DbConnection::Sqlite(_))
        .then(|| SQLITE_WRITER.lock().unwrap_or_else(PoisonError::into_inner));
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

#[cfg(all(test, feature = "testing"))]
mod tests {
    use diesel::RunQueryDsl;

    use super::*;

    #[tokio::test]
    async fn postgres_bookkeeping_commits_without_waiting_for_the_flush_and_others_wait() {
        #[derive(diesel::QueryableByName)]
        struct Settings {
            #[diesel(sql_type = diesel::sql_types::Text)]
            synchronous_commit: String,
            #[diesel(sql_type = diesel::sql_types::Text)]
            plan_cache_mode: String,
            #[diesel(sql_type = diesel::sql_types::Text)]
            enable_bitmapscan: String,
            #[diesel(sql_type = diesel::sql_types::Text)]
            enable_seqscan: String,
        }
        fn setting(connection: &mut DbConnection) -> Result<String, RepositoryError> {
            let DbConnection::Postgres(postgres) = connection else {
                unreachable!("a PostgreSQL test database");
            };
            diesel::sql_query(
                "SELECT current_setting('synchronous_commit') AS synchronous_commit, \
                 current_setting('plan_cache_mode') AS plan_cache_mode, \
                 current_setting('enable_bitmapscan') AS enable_bitmapscan, \
                 current_setting('enable_seqscan') AS enable_seqscan",
            )
            .get_result::<Settings>(postgres)
            .map(|row| {
                format!(
                    "{} {} {} {}",
                    row.synchronous_commit,
                    row.plan_cache_mode,
                    row.enable_bitmapscan,
                    row.enable_seqscan
                )
            })
            .map_err(storage_error)
        }
        let test_database = crate::TestDatabase::postgres().await;
        let database = test_database.database().clone();
        let (bookkeeping, claim, record, durable, after) = database
            .run(|connection| {
                let bookkeeping = bookkeeping_transaction(connection, setting)?;
                let claim = claim_transaction(connection, setting)?;
                let record = record_transaction(connection, setting)?;
                let durable = write_transaction(connection, setting)?;
                Ok((bookkeeping, claim, record, durable, setting(connection)?))
            })
            .await
            .unwrap();
        assert_eq!(bookkeeping, "off force_custom_plan on on");
        assert_eq!(claim, "off force_generic_plan off off");
        assert_eq!(record, "off force_generic_plan off off");
        assert_eq!(durable, "on auto on on");
        assert_eq!(after, "on auto on on");
    }

    #[tokio::test]
    async fn sqlite_write_transactions_of_a_process_take_turns_without_the_busy_handler() {
        use diesel::connection::SimpleConnection;
        use std::sync::mpsc;

        /// With SQLite's busy handler off, as if every wait in it were
        /// too long: a write transaction that met another's lock would
        /// fail with "database is locked".
        fn impatient(connection: &mut DbConnection) -> Result<(), RepositoryError> {
            connection
                .batch_execute("PRAGMA busy_timeout = 0")
                .map_err(storage_error)
        }
        fn insert(connection: &mut DbConnection, id: &str) -> Result<(), RepositoryError> {
            connection
                .batch_execute(&format!(
                    "INSERT INTO organizations (id, name, created_at) VALUES ('{id}', 'Turns', 0)"
                ))
                .map_err(storage_error)
        }
        let test_database = crate::TestDatabase::sqlite().await;
        let database = test_database.database().clone();
        let (begun, wait_for_begun) = mpsc::channel();
        let (release, wait_for_release) = mpsc::channel::<()>();
        let first = tokio::spawn({
            let database = database.clone();
            async move {
                database
                    .run(move |connection| {
                        impatient(connection)?;
                        write_transaction(connection, |connection| {
                            insert(connection, "org_first")?;
                            let _ = begun.send(());
                            // Holds the write lock until the second is under way.
                            let _ = wait_for_release.recv();
                            Ok(())
                        })
                    })
                    .await
            }
        });
        tokio::task::spawn_blocking(move || wait_for_begun.recv())
            .await
            .unwrap()
            .unwrap();
        let second = tokio::spawn({
            let database = database.clone();
            async move {
                database
                    .run(|connection| {
                        impatient(connection)?;
                        write_transaction(connection, |connection| insert(connection, "org_second"))
                    })
                    .await
            }
        });
        // Time for the second to reach its turn; had it not waited, it
        // would already have failed (a shorter wait makes the test pass
        // without proving anything, never fail).
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        release.send(()).unwrap();

        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        assert_eq!(test_database.row_counts().await.organizations, 2);
    }
}
