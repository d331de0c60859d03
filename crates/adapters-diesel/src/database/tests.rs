//! The pool's life: opening, the SQLite pragmas, outages, closing.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};
use webhooks_domain::RepositoryError;

use super::*;

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
    #[derive(diesel::QueryableByName)]
    struct BusyTimeout {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        timeout: i64,
    }
    let mut pooled = database.pool.get().unwrap();
    let mode: Mode = diesel::sql_query("PRAGMA journal_mode")
        .get_result(&mut pooled.connection)
        .unwrap();
    let keys: ForeignKeys = diesel::sql_query("PRAGMA foreign_keys")
        .get_result(&mut pooled.connection)
        .unwrap();
    let busy: BusyTimeout = diesel::sql_query("PRAGMA busy_timeout")
        .get_result(&mut pooled.connection)
        .unwrap();
    assert_eq!(mode.journal_mode, "wal");
    assert_eq!(keys.foreign_keys, 1);
    assert_eq!(busy.timeout, 5_000);
}

#[test]
fn sqlite_checkpoints_outside_the_commits_on_a_thread_of_its_own() {
    #[derive(diesel::QueryableByName)]
    struct AutoCheckpoint {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        wal_autocheckpoint: i64,
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("webhooks.db");
    let database = Database::connect(&format!("sqlite://{}", file.display()), 2).unwrap();
    database.migrate().unwrap();
    let mut pooled = database.pool.get().unwrap();
    let auto: AutoCheckpoint = diesel::sql_query("PRAGMA wal_autocheckpoint")
        .get_result(&mut pooled.connection)
        .unwrap();
    assert_eq!(auto.wal_autocheckpoint, 0);

    // About 2,000 pages of log, more than a commit used to checkpoint at.
    let before = std::fs::metadata(&file).unwrap().len();
    pooled
        .connection
        .batch_execute(
            "CREATE TABLE filler (body TEXT); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
             INSERT INTO filler SELECT printf('%.4000c', 'x') FROM n;",
        )
        .unwrap();
    drop(pooled);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), before);

    // The checkpoint thread copies the log into the file within a tick or two.
    let deadline = std::time::Instant::now() + 10 * super::checkpoint::CHECKPOINT_EVERY;
    while std::fs::metadata(&file).unwrap().len() < before + 4_000_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the log was not checkpointed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    database.close();
}

/// An outage of our own test database: its connections are killed and
/// new ones refused (`ALLOW_CONNECTIONS false`), then allowed again.
#[cfg(feature = "testing")]
#[tokio::test]
async fn after_an_outage_calls_fail_at_once_then_idle_connections_are_replaced_quietly() {
    fn admin_sql(sql: String) {
        PgConnection::establish(&crate::test_server_url())
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
