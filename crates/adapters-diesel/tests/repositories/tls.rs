//! PostgreSQL over TLS, on the cluster of `TEST_TLS_CLUSTER` (made by
//! `scripts/pg-test-cluster.sh`, set by `scripts/test.sh`): the `LISTEN`
//! connection reads the URL's TLS parameters as libpq reads them for the pool,
//! notifications reach it over TLS, and closing ends every connection.

use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use webhooks_adapters_diesel::{
    probe_listener_connection, Database, ListenerHooks, TestCluster, TestDatabase,
};
use webhooks_domain::RepositoryError;

const CLUSTER: &str = "TEST_TLS_CLUSTER";

/// Opens a connection as the pool does (libpq) and answers whether it is
/// encrypted, or why it could not be opened.
fn probe_libpq_connection(url: &str) -> Result<bool, String> {
    #[derive(QueryableByName)]
    struct Encrypted {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ssl: bool,
    }
    let mut connection = PgConnection::establish(url).map_err(|error| error.to_string())?;
    diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result::<Encrypted>(&mut connection)
        .map(|row| row.ssl)
        .map_err(|error| error.to_string())
}

#[tokio::test]
async fn the_listener_connects_exactly_when_and_as_libpq_does() {
    let Some(cluster) = TestCluster::from_env(CLUSTER) else {
        return;
    };
    let cases = connection_cases(&cluster);
    let outcomes = tokio::task::spawn_blocking(move || {
        cases
            .into_iter()
            .map(|(user, host, query, expected)| {
                let url = cluster.url(user, host, &query);
                let libpq = probe_libpq_connection(&url);
                let listener = probe_listener_connection(&url);
                (url, expected, libpq, listener)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (url, expected, libpq, listener) in outcomes {
        assert_eq!(
            libpq.as_ref().ok(),
            expected.as_ref(),
            "libpq, {url}: {libpq:?}"
        );
        assert_eq!(
            listener.as_ref().ok(),
            expected.as_ref(),
            "listener, {url}: {listener:?}"
        );
    }
}

/// A way of connecting to the cluster: user, host, the URL's query, and
/// what libpq does (`None`: refused; `Some(encrypted)`).
type ConnectionCase = (&'static str, &'static str, String, Option<bool>);

/// The cases both connections must answer alike: each `sslmode`, root and
/// client certificates that fit or do not, and libpq's fallbacks.
fn connection_cases(cluster: &TestCluster) -> Vec<ConnectionCase> {
    let ca = cluster.certificate("ca.crt");
    let other_ca = cluster.certificate("other-ca.crt");
    let client_cert = format!(
        "sslcert={}&sslkey={}",
        cluster.certificate("client.crt"),
        cluster.certificate("client.key")
    );
    vec![
        (
            "postgres",
            "localhost",
            "sslmode=disable".into(),
            Some(false),
        ),
        ("postgres", "localhost", "sslmode=allow".into(), Some(false)),
        // `allow` falls back to TLS when the server wants it.
        ("tlsonly", "localhost", "sslmode=allow".into(), Some(true)),
        ("tlsonly", "localhost", "sslmode=disable".into(), None),
        ("postgres", "localhost", "sslmode=prefer".into(), Some(true)),
        // No sslmode: libpq's default, prefer.
        (
            "postgres",
            "localhost",
            "connect_timeout=5".into(),
            Some(true),
        ),
        (
            "postgres",
            "localhost",
            "sslmode=require".into(),
            Some(true),
        ),
        (
            "postgres",
            "127.0.0.1",
            format!("sslmode=verify-ca&sslrootcert={ca}"),
            Some(true),
        ),
        (
            "postgres",
            "localhost",
            format!("sslmode=verify-full&sslrootcert={ca}"),
            Some(true),
        ),
        // The certificate names localhost, not 127.0.0.1.
        (
            "postgres",
            "127.0.0.1",
            format!("sslmode=verify-full&sslrootcert={ca}"),
            None,
        ),
        (
            "postgres",
            "localhost",
            format!("sslmode=verify-ca&sslrootcert={other_ca}"),
            None,
        ),
        // With a root file, even `require` checks the chain...
        (
            "postgres",
            "localhost",
            format!("sslmode=require&sslrootcert={other_ca}"),
            None,
        ),
        // ...and `prefer` then falls back to no TLS.
        (
            "postgres",
            "localhost",
            format!("sslmode=prefer&sslrootcert={other_ca}"),
            Some(false),
        ),
        (
            "certuser",
            "localhost",
            format!("sslmode=verify-full&sslrootcert={ca}&{client_cert}"),
            Some(true),
        ),
        (
            "certuser",
            "localhost",
            format!("sslmode=verify-full&sslrootcert={ca}"),
            None,
        ),
        (
            "postgres",
            "localhost",
            "sslmode=require&ssl_min_protocol_version=TLSv1.3&sslsni=0".into(),
            Some(true),
        ),
    ]
}

#[tokio::test]
async fn a_publish_wakes_the_listener_of_another_handle_over_tls() {
    let Some(cluster) = TestCluster::from_env(CLUSTER) else {
        return;
    };
    let test_database = TestDatabase::postgres_on(&cluster.verified_url()).await;
    crate::events::a_publish_wakes_the_listener_of_another_handle(&test_database).await;
}

/// Connections to the test database other than the observer's own, by kind.
fn connections(url: &str) -> (i64, i64) {
    #[derive(QueryableByName)]
    struct Counts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        listening: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        others: i64,
    }
    let mut observer = PgConnection::establish(url).unwrap();
    let counts: Counts = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE query LIKE 'LISTEN%') AS listening, \
                count(*) FILTER (WHERE query NOT LIKE 'LISTEN%') AS others \
         FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .get_result(&mut observer)
    .unwrap();
    (counts.listening, counts.others)
}

/// Waits until `connections` answers `expected` (the server notices closed
/// connections a moment after the client).
fn wait_for_connections(url: &str, expected: (i64, i64)) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = connections(url);
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "connections {now:?}, expected {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn stopping_the_listener_and_closing_the_pool_end_every_connection_over_tls() {
    let Some(cluster) = TestCluster::from_env(CLUSTER) else {
        return;
    };
    let test_database = TestDatabase::postgres_on(&cluster.verified_url()).await;
    let url = test_database.url().to_owned();
    let wakeup = webhooks_domain::Wakeup::default();
    let database = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || Database::connect(&url, 3).unwrap())
            .await
            .unwrap()
    };
    let listener = database.spawn_listener(ListenerHooks {
        deliveries: Some(wakeup.clone()),
        api_key_revoked: None,
    });
    tokio::time::timeout(Duration::from_secs(10), wakeup.notified())
        .await
        .expect("the listener starts");
    // The test database's own pool (4) and ours (3), and the listener.
    let observed = url.clone();
    tokio::task::spawn_blocking(move || wait_for_connections(&observed, (1, 7)))
        .await
        .unwrap();

    let closing = database.clone();
    let started = Instant::now();
    tokio::task::spawn_blocking(move || {
        listener.stop();
        closing.close();
    })
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let observed = url.clone();
    tokio::task::spawn_blocking(move || wait_for_connections(&observed, (0, 4)))
        .await
        .unwrap();
    // A closed pool answers at once, and opens nothing again.
    let started = Instant::now();
    assert_eq!(
        database.ping().await,
        Err(RepositoryError::Unavailable(
            "the database pool is closed".into()
        ))
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    tokio::time::sleep(Duration::from_millis(600)).await;
    tokio::task::spawn_blocking(move || wait_for_connections(&url, (0, 4)))
        .await
        .unwrap();
}
