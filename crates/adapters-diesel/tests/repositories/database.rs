//! The database itself, and the test harness.

use diesel::{Connection, RunQueryDsl};
use webhooks_adapters_diesel::{Database, DbConnection, TestDatabase};

on_both_backends!(ping_answers_on_a_live_database);

async fn ping_answers_on_a_live_database(db: &Database) {
    assert_eq!(db.ping().await, Ok(()));
}

#[tokio::test]
async fn a_postgres_test_database_is_dropped_with_its_handle() {
    let test_database = TestDatabase::postgres().await;
    let url = test_database.url().to_owned();
    let name = url.rsplit('/').next().unwrap().to_owned();
    assert!(name.starts_with("test_"), "{name}");
    // A connection still open elsewhere (an app under test) must not stop it.
    let mut lingering = DbConnection::establish(&url).unwrap();
    diesel::sql_query("SELECT 1")
        .execute(&mut lingering)
        .unwrap();

    drop(test_database);

    assert!(DbConnection::establish(&url).is_err());
}
