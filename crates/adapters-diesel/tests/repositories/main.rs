#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The repositories against real databases. Each behaviour is written once as
//! an `async fn` and run on SQLite and on PostgreSQL (`TEST_DATABASE_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`), each run on a fresh
//! database: `cargo test` names them `<behaviour>::sqlite` and
//! `<behaviour>::postgres`. This file holds the shared helpers and the
//! webhook and tenancy repositories; `events` and `deliveries` the event
//! store and the delivery queue.

use std::sync::Arc;

use diesel::{Connection, QueryableByName, RunQueryDsl};
use serde_json::{Map, Value};
use webhooks_adapters_diesel::{
    Database, DbConnection, DieselEventStore, DieselTenancyRepository, DieselWebhookRepository,
    TestDatabase,
};
use webhooks_domain::{
    ApiKey, ApiKeyId, ApiKeySecret, Description, EnabledEvents, Event, EventId, EventType, Group,
    GroupId, IdempotencyKey, Organization, OrganizationId, RandomIds, RateLimit, RepositoryError,
    SealedSecret, SecretCipher, SigningSecret, SystemClock, TenancyRepository, TenancyService,
    UnixMillis, Webhook, WebhookId, WebhookRepository, WebhookStatus, WebhookUrl,
};

/// One test module per behaviour, holding its `sqlite` and `postgres` runs.
/// The behaviour gets the migrated [`Database`].
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn sqlite() {
                let test_database = super::TestDatabase::sqlite().await;
                super::$test(test_database.database()).await;
            }

            #[tokio::test]
            async fn postgres() {
                let test_database = super::TestDatabase::postgres().await;
                super::$test(test_database.database()).await;
            }
        }
    )+};
}

/// As [`on_both_backends`], for behaviours that also reach the database
/// behind the repositories' back: they get the whole [`TestDatabase`].
macro_rules! on_both_test_databases {
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn sqlite() {
                let test_database = super::TestDatabase::sqlite().await;
                super::$test(&test_database).await;
            }

            #[tokio::test]
            async fn postgres() {
                let test_database = super::TestDatabase::postgres().await;
                super::$test(&test_database).await;
            }
        }
    )+};
}

mod deliveries;
mod events;
mod tls;

on_both_backends!(
    ping_answers_on_a_live_database,
    inserted_webhook_is_found_unchanged,
    list_by_group_is_oldest_first_then_by_id,
    list_by_group_without_webhooks_is_empty,
    webhook_of_another_group_is_neither_found_nor_changed,
    update_overwrites_the_mutable_fields_only,
    update_of_an_unknown_webhook_is_false,
    rate_limit_can_be_set_and_cleared,
    enabled_events_round_trip,
    delete_removes_the_webhook_once,
    inserting_an_existing_webhook_id_is_conflict,
    inserted_organization_is_found,
    is_empty_until_an_organization_exists,
    inserted_group_is_found_and_unknown_group_is_none,
    taking_a_group_id_twice_is_conflict,
    api_key_is_found_by_its_hash_only,
    duplicate_api_key_hash_is_conflict,
    revoking_twice_keeps_the_first_time,
    revoking_an_unknown_key_is_false,
    concurrent_inserts_all_land,
);

// ---- helpers ---------------------------------------------------------------

fn ulid_id<T>(from_ulid: fn(ulid::Ulid) -> T) -> T {
    from_ulid(ulid::Ulid::new())
}

async fn organization(db: &Database) -> Organization {
    let organization = Organization {
        id: ulid_id(OrganizationId::from_ulid),
        name: "Acme".to_owned(),
        created_at: UnixMillis(1_700_000_000_000),
    };
    DieselTenancyRepository::new(db.clone())
        .insert_organization(&organization)
        .await
        .unwrap();
    organization
}

/// An organization and a group with this id.
async fn group(db: &Database, id: i64) -> Group {
    let organization = organization(db).await;
    let group = Group {
        id: GroupId::new(id).unwrap(),
        organization_id: organization.id,
        name: "Production".to_owned(),
        created_at: UnixMillis(1_700_000_000_001),
    };
    DieselTenancyRepository::new(db.clone())
        .insert_group(&group)
        .await
        .unwrap();
    group
}

fn sealed_secret() -> SealedSecret {
    SecretCipher::new(&[7u8; 32])
        .unwrap()
        .seal(&SigningSecret::generate())
}

fn webhook(group: &Group, created_at: i64) -> Webhook {
    Webhook {
        id: ulid_id(WebhookId::from_ulid),
        group_id: group.id,
        url: WebhookUrl::new("https://integration.example/webhook").unwrap(),
        description: Description::new("Orders").unwrap(),
        status: WebhookStatus::Enabled,
        enabled_events: EnabledEvents::all(),
        rate_limit: None,
        secret: sealed_secret(),
        created_at: UnixMillis(created_at),
        updated_at: UnixMillis(created_at),
    }
}

fn api_key(organization: &Organization, secret: &ApiKeySecret) -> ApiKey {
    ApiKey {
        id: ulid_id(ApiKeyId::from_ulid),
        organization_id: organization.id.clone(),
        hash: secret.hash(),
        created_at: UnixMillis(1_700_000_000_002),
        revoked_at: None,
    }
}

fn ids(webhooks: &[Webhook]) -> Vec<&str> {
    webhooks.iter().map(|webhook| webhook.id.as_str()).collect()
}

/// A `user.created` event of the group, made at `created_at`.
fn event(group: GroupId, created_at: i64, key: Option<&str>) -> Event {
    event_of_type(group, EventType::UserCreated.as_str(), created_at, key)
}

fn event_of_type(group: GroupId, event_type: &str, created_at: i64, key: Option<&str>) -> Event {
    let mut data = Map::new();
    data.insert("userID".into(), Value::from("u_1"));
    Event::new(
        ulid_id(EventId::from_ulid),
        group,
        event_type,
        &data,
        UnixMillis(created_at),
        key.map(|key| IdempotencyKey::new(key).unwrap()),
    )
}

/// Stores the webhooks and answers them back.
async fn stored(db: &Database, webhooks: Vec<Webhook>) -> Vec<Webhook> {
    let repository = DieselWebhookRepository::new(db.clone());
    for webhook in &webhooks {
        repository.insert(webhook).await.unwrap();
    }
    webhooks
}

fn events_store(db: &Database) -> DieselEventStore {
    DieselEventStore::new(db.clone())
}

/// Counts the rows of a table, behind the repositories' back.
fn count_rows(url: &str, table: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    let mut connection = DbConnection::establish(url).unwrap();
    diesel::sql_query(format!("SELECT COUNT(*) AS count FROM {table}"))
        .get_result::<Count>(&mut connection)
        .unwrap()
        .count
}

// ---- the database ----------------------------------------------------------

async fn ping_answers_on_a_live_database(db: &Database) {
    assert_eq!(db.ping().await, Ok(()));
}

// ---- webhooks --------------------------------------------------------------

async fn inserted_webhook_is_found_unchanged(db: &Database) {
    let group = group(db, 123_456).await;
    let repository = DieselWebhookRepository::new(db.clone());
    let mut stored = webhook(&group, 1_700_000_000_500);
    stored.description = Description::new("Café ☕ — 注文 🚀").unwrap();
    stored.url = WebhookUrl::new("http://127.0.0.1:8080/hook?x=1&y=é").unwrap();
    stored.rate_limit = Some(RateLimit::new(25).unwrap());
    stored.enabled_events = EnabledEvents::new([EventType::UserSessionResult]).unwrap();

    repository.insert(&stored).await.unwrap();

    assert_eq!(
        repository.find(group.id, &stored.id).await,
        Ok(Some(stored.clone()))
    );
    assert_eq!(repository.list_by_group(group.id).await, Ok(vec![stored]));
}

async fn list_by_group_is_oldest_first_then_by_id(db: &Database) {
    let group = group(db, 42).await;
    let repository = DieselWebhookRepository::new(db.clone());
    let with_id = |created_at: i64, random: u128| Webhook {
        id: WebhookId::from_ulid(ulid::Ulid::from_parts(1_000, random)),
        ..webhook(&group, created_at)
    };
    // The creation time decides, whatever the ids say…
    let newest = with_id(3_000, 1);
    let oldest = with_id(1_000, 4);
    // …and at the same instant the id breaks the tie.
    let tied_first = with_id(2_000, 2);
    let tied_second = with_id(2_000, 3);

    for webhook in [&tied_second, &newest, &oldest, &tied_first] {
        repository.insert(webhook).await.unwrap();
    }

    let listed = repository.list_by_group(group.id).await.unwrap();
    assert_eq!(
        ids(&listed),
        ids(&[oldest, tied_first, tied_second, newest])
    );
}

async fn list_by_group_without_webhooks_is_empty(db: &Database) {
    let group = group(db, 7).await;
    let repository = DieselWebhookRepository::new(db.clone());
    assert_eq!(repository.list_by_group(group.id).await, Ok(vec![]));
    // A group that does not exist at all reads the same.
    assert_eq!(
        repository.list_by_group(GroupId::new(8).unwrap()).await,
        Ok(vec![])
    );
}

async fn webhook_of_another_group_is_neither_found_nor_changed(db: &Database) {
    let mine = group(db, 1).await;
    let theirs = group(db, 2).await;
    let repository = DieselWebhookRepository::new(db.clone());
    let stored = webhook(&theirs, 1_000);
    repository.insert(&stored).await.unwrap();

    assert_eq!(repository.find(mine.id, &stored.id).await, Ok(None));
    assert_eq!(repository.list_by_group(mine.id).await, Ok(vec![]));
    let mut moved = stored.clone();
    moved.group_id = mine.id;
    moved.description = Description::new("hijacked").unwrap();
    assert_eq!(repository.update(&moved).await, Ok(false));
    assert_eq!(repository.delete(mine.id, &stored.id).await, Ok(false));

    assert_eq!(
        repository.find(theirs.id, &stored.id).await,
        Ok(Some(stored))
    );
}

async fn update_overwrites_the_mutable_fields_only(db: &Database) {
    let group = group(db, 123_456).await;
    let repository = DieselWebhookRepository::new(db.clone());
    let stored = webhook(&group, 1_000);
    repository.insert(&stored).await.unwrap();

    let mut changed = stored.clone();
    changed.url = WebhookUrl::new("https://elsewhere.example/v2").unwrap();
    changed.description = Description::new("Renamed ✓").unwrap();
    changed.status = WebhookStatus::Disabled;
    changed.enabled_events = EnabledEvents::new([EventType::UserCreated]).unwrap();
    changed.rate_limit = Some(RateLimit::new(3).unwrap());
    changed.updated_at = UnixMillis(2_000);
    // Not the update's business: these must stay as stored.
    changed.secret = sealed_secret();
    changed.created_at = UnixMillis(9_999);

    assert_eq!(repository.update(&changed).await, Ok(true));

    let expected = Webhook {
        secret: stored.secret.clone(),
        created_at: stored.created_at,
        ..changed
    };
    assert_eq!(
        repository.find(group.id, &stored.id).await,
        Ok(Some(expected))
    );
}

async fn update_of_an_unknown_webhook_is_false(db: &Database) {
    let group = group(db, 5).await;
    let repository = DieselWebhookRepository::new(db.clone());
    assert_eq!(repository.update(&webhook(&group, 1_000)).await, Ok(false));
    assert_eq!(repository.list_by_group(group.id).await, Ok(vec![]));
}

async fn rate_limit_can_be_set_and_cleared(db: &Database) {
    let group = group(db, 9).await;
    let repository = DieselWebhookRepository::new(db.clone());
    let mut stored = webhook(&group, 1_000);
    repository.insert(&stored).await.unwrap();

    // The largest limit the domain accepts survives the round trip.
    stored.rate_limit = Some(RateLimit::new(i64::from(u32::MAX)).unwrap());
    assert_eq!(repository.update(&stored).await, Ok(true));
    let found = repository
        .find(group.id, &stored.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.rate_limit, stored.rate_limit);

    stored.rate_limit = None;
    assert_eq!(repository.update(&stored).await, Ok(true));
    let found = repository
        .find(group.id, &stored.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.rate_limit, None);
}

async fn enabled_events_round_trip(db: &Database) {
    let group = group(db, 11).await;
    let repository = DieselWebhookRepository::new(db.clone());
    for events in [
        EnabledEvents::new([EventType::UserCreated]).unwrap(),
        EnabledEvents::new([EventType::UserSessionResult]).unwrap(),
        EnabledEvents::all(),
    ] {
        let mut stored = webhook(&group, 1_000);
        stored.enabled_events = events.clone();
        repository.insert(&stored).await.unwrap();
        let found = repository
            .find(group.id, &stored.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.enabled_events, events);
    }
}

async fn delete_removes_the_webhook_once(db: &Database) {
    let group = group(db, 13).await;
    let repository = DieselWebhookRepository::new(db.clone());
    let doomed = webhook(&group, 1_000);
    let kept = webhook(&group, 2_000);
    repository.insert(&doomed).await.unwrap();
    repository.insert(&kept).await.unwrap();

    assert_eq!(repository.delete(group.id, &doomed.id).await, Ok(true));
    assert_eq!(repository.find(group.id, &doomed.id).await, Ok(None));
    assert_eq!(repository.delete(group.id, &doomed.id).await, Ok(false));
    assert_eq!(repository.list_by_group(group.id).await, Ok(vec![kept]));
}

async fn inserting_an_existing_webhook_id_is_conflict(db: &Database) {
    let group = group(db, 17).await;
    let repository = DieselWebhookRepository::new(db.clone());
    let stored = webhook(&group, 1_000);
    repository.insert(&stored).await.unwrap();

    let mut again = stored.clone();
    again.description = Description::new("second").unwrap();
    assert!(matches!(
        repository.insert(&again).await,
        Err(RepositoryError::Conflict(_))
    ));
    assert_eq!(
        repository.find(group.id, &stored.id).await,
        Ok(Some(stored))
    );
}

async fn concurrent_inserts_all_land(db: &Database) {
    let group = group(db, 19).await;
    let repository = DieselWebhookRepository::new(db.clone());
    // More writers than pooled connections: checkouts queue, and SQLite's
    // busy timeout lets writers wait for each other instead of failing.
    let mut writers = tokio::task::JoinSet::new();
    for n in 0..24 {
        let repository = repository.clone();
        let webhook = webhook(&group, 1_000 + n);
        writers.spawn(async move { repository.insert(&webhook).await });
    }
    while let Some(result) = writers.join_next().await {
        assert_eq!(result.unwrap(), Ok(()));
    }
    assert_eq!(repository.list_by_group(group.id).await.unwrap().len(), 24);
}

// ---- tenancy ---------------------------------------------------------------

async fn inserted_organization_is_found(db: &Database) {
    let repository = DieselTenancyRepository::new(db.clone());
    let stored = organization(db).await;
    assert_eq!(
        repository.find_organization(&stored.id).await,
        Ok(Some(stored))
    );
    assert_eq!(
        repository
            .find_organization(&ulid_id(OrganizationId::from_ulid))
            .await,
        Ok(None)
    );
}

async fn is_empty_until_an_organization_exists(db: &Database) {
    let repository = DieselTenancyRepository::new(db.clone());
    assert_eq!(repository.is_empty().await, Ok(true));
    organization(db).await;
    assert_eq!(repository.is_empty().await, Ok(false));
}

async fn inserted_group_is_found_and_unknown_group_is_none(db: &Database) {
    let repository = DieselTenancyRepository::new(db.clone());
    // An operator may choose any positive i64, up to the largest.
    let stored = group(db, i64::MAX).await;
    assert_eq!(repository.find_group(stored.id).await, Ok(Some(stored)));
    assert_eq!(
        repository.find_group(GroupId::new(404).unwrap()).await,
        Ok(None)
    );
}

async fn taking_a_group_id_twice_is_conflict(db: &Database) {
    let repository = DieselTenancyRepository::new(db.clone());
    let first = group(db, 123_456).await;
    let other_organization = organization(db).await;
    let second = Group {
        id: first.id,
        organization_id: other_organization.id,
        name: "Staging".to_owned(),
        created_at: UnixMillis(1),
    };
    assert!(matches!(
        repository.insert_group(&second).await,
        Err(RepositoryError::Conflict(_))
    ));
    assert_eq!(repository.find_group(first.id).await, Ok(Some(first)));
}

async fn api_key_is_found_by_its_hash_only(db: &Database) {
    let repository = DieselTenancyRepository::new(db.clone());
    let organization = organization(db).await;
    let secret = ApiKeySecret::generate();
    let stored = api_key(&organization, &secret);
    repository.insert_api_key(&stored).await.unwrap();

    let presented = ApiKeySecret::from_header(secret.expose()).hash();
    assert_eq!(
        repository.find_api_key_by_hash(&presented).await,
        Ok(Some(stored))
    );
    assert_eq!(
        repository
            .find_api_key_by_hash(&ApiKeySecret::generate().hash())
            .await,
        Ok(None)
    );
}

async fn duplicate_api_key_hash_is_conflict(db: &Database) {
    let repository = DieselTenancyRepository::new(db.clone());
    let organization = organization(db).await;
    let secret = ApiKeySecret::generate();
    let first = api_key(&organization, &secret);
    repository.insert_api_key(&first).await.unwrap();

    // A different key id with the same hash.
    let second = api_key(&organization, &secret);
    assert_ne!(first.id, second.id);
    assert!(matches!(
        repository.insert_api_key(&second).await,
        Err(RepositoryError::Conflict(_))
    ));
    assert_eq!(
        repository.find_api_key_by_hash(&secret.hash()).await,
        Ok(Some(first))
    );
}

async fn revoking_twice_keeps_the_first_time(db: &Database) {
    let repository = DieselTenancyRepository::new(db.clone());
    let organization = organization(db).await;
    let secret = ApiKeySecret::generate();
    let stored = api_key(&organization, &secret);
    repository.insert_api_key(&stored).await.unwrap();

    assert_eq!(
        repository
            .revoke_api_key(&stored.id, UnixMillis(5_000))
            .await,
        Ok(true)
    );
    assert_eq!(
        repository
            .revoke_api_key(&stored.id, UnixMillis(9_000))
            .await,
        Ok(true)
    );

    let found = repository
        .find_api_key_by_hash(&secret.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.revoked_at, Some(UnixMillis(5_000)));
}

async fn revoking_an_unknown_key_is_false(db: &Database) {
    let repository = DieselTenancyRepository::new(db.clone());
    assert_eq!(
        repository
            .revoke_api_key(&ulid_id(ApiKeyId::from_ulid), UnixMillis(5_000))
            .await,
        Ok(false)
    );
}

/// Several processes start at once on one empty database: each has its own
/// pool, all bootstrap together, and one demo tenant results.
async fn processes_bootstrapping_at_once_make_one_demo_tenant(test_database: &TestDatabase) {
    const PROCESSES: usize = 6;
    let start = Arc::new(tokio::sync::Barrier::new(PROCESSES));
    let mut processes = tokio::task::JoinSet::new();
    for _ in 0..PROCESSES {
        let url = test_database.url().to_owned();
        let start = start.clone();
        processes.spawn(async move {
            let database = tokio::task::spawn_blocking(move || Database::connect(&url, 2))
                .await
                .unwrap()
                .unwrap();
            let admin = TenancyService::new(
                Arc::new(DieselTenancyRepository::new(database)),
                Arc::new(SystemClock),
                Arc::new(RandomIds::default()),
            );
            start.wait().await;
            admin.bootstrap_demo().await
        });
    }
    let mut answers = Vec::new();
    while let Some(started) = processes.join_next().await {
        answers.push(started.unwrap().map(|demo| demo.is_some()));
    }
    for table in ["organizations", "groups", "api_keys"] {
        assert_eq!(count_rows(test_database.url(), table), 1, "{table}");
    }
    // One made it; the others found it made, and none failed.
    let made = answers.iter().filter(|made| **made == Ok(true)).count();
    let found = answers.iter().filter(|made| **made == Ok(false)).count();
    assert_eq!((made, found), (1, PROCESSES - 1), "{answers:?}");
}

// ---- rows edited behind the service's back ---------------------------------

/// Writes SQL straight to the test database, as an operator with a SQL shell
/// would. `DbConnection::establish` picks the backend from the URL.
fn execute_raw(url: &str, sql: &str) {
    let mut connection = DbConnection::establish(url).unwrap();
    diesel::sql_query(sql).execute(&mut connection).unwrap();
}

async fn rows_that_no_longer_parse_are_corrupt(test_database: &TestDatabase) {
    let db = test_database.database();
    let group = group(db, 23).await;
    let repository = DieselWebhookRepository::new(db.clone());
    let stored = webhook(&group, 1_000);
    repository.insert(&stored).await.unwrap();

    for sql in [
        "UPDATE webhooks SET status = 'paused'",
        "UPDATE webhooks SET status = 'enabled', enabled_events = 'user.deleted'",
        "UPDATE webhooks SET enabled_events = 'user.created', url = 'not a url'",
        "UPDATE webhooks SET url = 'https://a.example/', rate_limit = 0",
    ] {
        execute_raw(test_database.url(), sql);
        assert!(
            matches!(
                repository.find(group.id, &stored.id).await,
                Err(RepositoryError::Corrupt(_))
            ),
            "{sql}"
        );
        assert!(
            matches!(
                repository.list_by_group(group.id).await,
                Err(RepositoryError::Corrupt(_))
            ),
            "{sql}"
        );
    }
}

on_both_test_databases!(
    rows_that_no_longer_parse_are_corrupt,
    processes_bootstrapping_at_once_make_one_demo_tenant,
);

// ---- the test harness itself -----------------------------------------------

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
