#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The repositories against real databases. Each behaviour is written once as
//! an `async fn` and run on SQLite and on PostgreSQL (`TEST_DATABASE_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`), each run on a fresh
//! database: `cargo test` names them `<module>::<behaviour>::sqlite` and
//! `<module>::<behaviour>::postgres`.
//!
//! - `support`: the fixtures every module builds on.
//! - `database`: the database itself and the test harness.
//! - `webhooks`, `tenancy`, `events`, `portal`: the webhook and tenancy
//!   repositories, the event store and the portal's links and sessions.
//! - `hand_off`: the event store handing new deliveries to its process's
//!   dispatcher.
//! - `deliveries/`: the delivery queue and log (claims, attempts, the log).
//! - `tls`: PostgreSQL over TLS, on a cluster of the tests' own.

use webhooks_adapters_diesel::TestDatabase;

/// One test module per behaviour, holding its `sqlite` and `postgres` runs.
///
/// - `on_both_backends!(a, b)`: each behaviour gets the migrated
///   [`Database`](webhooks_adapters_diesel::Database).
/// - `on_both_backends!(test_database: c, d)`: each gets the whole
///   [`TestDatabase`], for behaviours that also reach the database behind
///   the repositories' back.
macro_rules! on_both_backends {
    (test_database: $($test:ident),+ $(,)?) => {
        on_both_backends!(@runs (|test_database| test_database); $($test),+);
    };
    (@runs ($given:expr); $($test:ident),+) => {$(
        mod $test {
            #[tokio::test]
            async fn sqlite() {
                let test_database = $crate::TestDatabase::sqlite().await;
                super::$test(($given)(&test_database)).await;
            }

            #[tokio::test]
            async fn postgres() {
                let test_database = $crate::TestDatabase::postgres().await;
                super::$test(($given)(&test_database)).await;
            }
        }
    )+};
    ($($test:ident),+ $(,)?) => {
        on_both_backends!(@runs ($crate::TestDatabase::database); $($test),+);
    };
}

mod database;
mod deliveries;
mod events;
mod hand_off;
mod portal;
mod support;
mod tenancy;
mod tls;
mod webhooks;
