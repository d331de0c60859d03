//! What every test module builds on: the repositories over a database,
//! tenants, webhooks and events made and stored, and SQL straight to the
//! database behind the repositories' back. The databases themselves come
//! from the crate's `testing` feature ([`TestDatabase`](super::TestDatabase)).

use diesel::{Connection, QueryableByName, RunQueryDsl};
use serde_json::{Map, Value};
use webhooks_adapters_diesel::{
    Database, DbConnection, DieselDeliveryQueue, DieselEventStore, DieselPortalStore,
    DieselTenancyRepository, DieselWebhookRepository, TestDatabase,
};
use webhooks_domain::{
    CustomHeaders, Description, EnabledEvents, Event, EventId, EventType, Group, GroupId,
    IdempotencyKey, Organization, OrganizationId, SealedHeaders, SealedSecret, SecretCipher,
    SigningSecret, TenancyRepository, UnixMillis, Webhook, WebhookId, WebhookRepository,
    WebhookStatus, WebhookUrl,
};

// ---- the repositories ------------------------------------------------------

/// Runs `write` on each item in a task of its own, all at once (so that
/// the writes can share transactions); answers their outcomes in order.
pub(crate) async fn all_at_once<I, T, F>(items: &[I], write: impl Fn(I) -> F) -> Vec<T>
where
    I: Clone,
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let writing: Vec<_> = items
        .iter()
        .map(|item| tokio::spawn(write(item.clone())))
        .collect();
    let mut outcomes = Vec::with_capacity(writing.len());
    for handle in writing {
        outcomes.push(handle.await.unwrap());
    }
    outcomes
}

pub(crate) fn webhooks(db: &Database) -> DieselWebhookRepository {
    DieselWebhookRepository::new(db.clone())
}

pub(crate) fn tenancy(db: &Database) -> DieselTenancyRepository {
    DieselTenancyRepository::new(db.clone())
}

pub(crate) fn events_store(db: &Database) -> DieselEventStore {
    DieselEventStore::new(db.clone())
}

pub(crate) fn queue(db: &Database) -> DieselDeliveryQueue {
    DieselDeliveryQueue::new(db.clone())
}

pub(crate) fn portal(db: &Database) -> DieselPortalStore {
    DieselPortalStore::new(db.clone())
}

// ---- tenants, webhooks and events ------------------------------------------

/// A fresh id of any of the domain's ULID-based kinds.
pub(crate) fn ulid_id<T>(from_ulid: fn(ulid::Ulid) -> T) -> T {
    from_ulid(ulid::Ulid::new())
}

pub(crate) async fn organization(db: &Database) -> Organization {
    let organization = Organization {
        id: ulid_id(OrganizationId::from_ulid),
        name: "Acme".to_owned(),
        created_at: UnixMillis(1_700_000_000_000),
    };
    tenancy(db)
        .insert_organization(&organization)
        .await
        .unwrap();
    organization
}

/// An organization and a group with this id.
pub(crate) async fn group(db: &Database, id: i64) -> Group {
    let organization = organization(db).await;
    let group = Group {
        id: GroupId::new(id).unwrap(),
        organization_id: organization.id,
        name: "Production".to_owned(),
        operations: false,
        created_at: UnixMillis(1_700_000_000_001),
    };
    tenancy(db).insert_group(&group).await.unwrap();
    group
}

pub(crate) fn sealed_secret() -> SealedSecret {
    SecretCipher::new(&[7u8; 32])
        .unwrap()
        .seal(&SigningSecret::generate())
}

/// An enabled webhook of the group that receives every event; not stored.
pub(crate) fn webhook(group: &Group, created_at: i64) -> Webhook {
    Webhook {
        id: ulid_id(WebhookId::from_ulid),
        group_id: group.id,
        url: WebhookUrl::new("https://integration.example/webhook").unwrap(),
        description: Description::new("Orders").unwrap(),
        status: WebhookStatus::Enabled,
        enabled_events: EnabledEvents::all(),
        rate_limit: None,
        secret: sealed_secret(),
        headers: None,
        ordering: None,
        created_at: UnixMillis(created_at),
        updated_at: UnixMillis(created_at),
    }
}

/// The custom header `X-Api-Key: k3y`, sealed as the service seals it.
pub(crate) fn sealed_headers() -> SealedHeaders {
    let headers = CustomHeaders::new([("X-Api-Key", "k3y")]).unwrap();
    SecretCipher::new(&[7u8; 32])
        .unwrap()
        .seal_headers(&headers)
}

/// Another webhook of `of`'s group, like it but with its own id and secret,
/// made at `created_at`; not stored.
pub(crate) fn sibling(of: &Webhook, created_at: i64) -> Webhook {
    Webhook {
        id: ulid_id(WebhookId::from_ulid),
        secret: sealed_secret(),
        created_at: UnixMillis(created_at),
        updated_at: UnixMillis(created_at),
        ..of.clone()
    }
}

/// Stores the webhooks and answers them back.
pub(crate) async fn stored(db: &Database, list: Vec<Webhook>) -> Vec<Webhook> {
    let repository = webhooks(db);
    for webhook in &list {
        repository.insert(webhook).await.unwrap();
    }
    list
}

/// A group with one enabled webhook, stored, that receives every event.
pub(crate) async fn receiver(db: &Database, group_id: i64) -> Webhook {
    let group = group(db, group_id).await;
    stored(db, vec![webhook(&group, 1_000)]).await.remove(0)
}

/// A [`sibling`] of `of`, stored.
pub(crate) async fn receiver_in(db: &Database, of: &Webhook, created_at: i64) -> Webhook {
    stored(db, vec![sibling(of, created_at)]).await.remove(0)
}

/// A `user.created` event of the group, made at `created_at`.
pub(crate) fn event(group: GroupId, created_at: i64, key: Option<&str>) -> Event {
    event_of_type(group, EventType::UserCreated.as_str(), created_at, key)
}

pub(crate) fn event_of_type(
    group: GroupId,
    event_type: &str,
    created_at: i64,
    key: Option<&str>,
) -> Event {
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

// ---- behind the repositories' back -----------------------------------------

/// Writes SQL straight to the test database, as an operator with a SQL shell
/// would. `DbConnection::establish` picks the backend from the URL.
pub(crate) fn execute_raw(url: &str, sql: &str) {
    let mut connection = DbConnection::establish(url).unwrap();
    diesel::sql_query(sql).execute(&mut connection).unwrap();
}

/// `SELECT COUNT(*) FROM <from>`, for what
/// [`TestDatabase::row_counts`](super::TestDatabase::row_counts) does not
/// count (a subquery).
pub(crate) fn count_from(url: &str, from: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    let mut connection = DbConnection::establish(url).unwrap();
    diesel::sql_query(format!("SELECT COUNT(*) AS count FROM {from}"))
        .get_result::<Count>(&mut connection)
        .unwrap()
        .count
}

/// PostgreSQL: asserts that the rows of `table` were written by fewer
/// transactions than `rows` (rows written by one transaction share its id,
/// `xmin`). SQLite keeps no such id: nothing to check.
pub(crate) fn assert_fewer_transactions_than_rows(
    test_database: &TestDatabase,
    table: &str,
    rows: i64,
) {
    if !test_database.url().starts_with("postgres") {
        return;
    }
    let transactions = count_from(
        test_database.url(),
        &format!("(SELECT DISTINCT xmin::text FROM {table}) AS written_by"),
    );
    assert!(
        transactions < rows,
        "{transactions} transactions for {rows} {table}"
    );
}

/// A webhook's delete in a session of its own (PostgreSQL), held after its
/// first lock: for tests of what waits for a delete. [`DeleteInProgress::begin`]
/// takes the lock before the test starts what should wait for it.
pub(crate) struct DeleteInProgress {
    connection: diesel::PgConnection,
    webhook: String,
}

impl DeleteInProgress {
    /// Begins the delete of `webhook` and runs `lock` (a `SELECT … FOR
    /// UPDATE` of the rows the repository's delete locks).
    pub(crate) fn begin(test_database: &TestDatabase, webhook: &str, lock: &str) -> Self {
        let mut connection = diesel::PgConnection::establish(test_database.url()).unwrap();
        for sql in ["BEGIN", lock] {
            diesel::sql_query(sql).execute(&mut connection).unwrap();
        }
        Self {
            connection,
            webhook: webhook.to_owned(),
        }
    }

    /// Once another session waits for the lock: deletes the webhook's
    /// deliveries, then the webhook, as the repository does (no foreign key
    /// cascades on PostgreSQL), and commits.
    pub(crate) async fn finish(mut self) {
        wait_until_a_query_waits_for_a_lock(&mut self.connection).await;
        let webhook = &self.webhook;
        for sql in [
            format!("DELETE FROM deliveries WHERE webhook_id = '{webhook}'"),
            format!("DELETE FROM webhooks WHERE id = '{webhook}'"),
            "COMMIT".to_owned(),
        ] {
            diesel::sql_query(sql)
                .execute(&mut self.connection)
                .unwrap();
        }
    }
}

/// Waits (up to 10 s) until another session of the database waits for a
/// lock.
async fn wait_until_a_query_waits_for_a_lock(connection: &mut diesel::PgConnection) {
    use diesel::sql_types::BigInt;
    use diesel::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = BigInt)]
        count: i64,
    }
    for _ in 0..1_000 {
        let waiting: Waiting = diesel::sql_query(
            "SELECT count(*) AS count FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .get_result(connection)
        .unwrap();
        if waiting.count > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no query waited for the lock");
}
