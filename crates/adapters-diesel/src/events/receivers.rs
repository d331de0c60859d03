//! The receivers of a batch of events: the enabled webhooks of their groups,
//! read before each publish.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Array, BigInt};
use webhooks_domain::{EnabledEvents, Event, RepositoryError, WebhookStatus};

use crate::database::{storage_error, DbConnection};
use crate::schema::webhooks;
use crate::statements::{no_value_to_bind, prepared_statement, push_with_binds, BIND};
use crate::webhooks::decode_events;

/// An enabled webhook, the event types it receives, and what sending to
/// it needs (for a hand-off).
pub(crate) struct Receiver {
    pub(super) id: String,
    group_id: i64,
    enabled: EnabledEvents,
    pub(super) sending: Sending,
}

/// A webhook's columns that a delivery job carries, as stored.
pub(super) struct Sending {
    pub(super) url: String,
    pub(super) secret: String,
    pub(super) previous_secret: Option<String>,
    pub(super) previous_secret_expires_at: Option<i64>,
    pub(super) rate_limit: Option<i64>,
    pub(super) headers: Option<String>,
    pub(super) ordering: Option<String>,
}

impl Receiver {
    pub(crate) fn receives(&self, event: &Event) -> bool {
        self.group_id == event.group_id.get()
            && self
                .enabled
                .iter()
                .any(|kind| kind.as_str() == event.event_type)
    }
}

/// The enabled webhooks of the events' groups, oldest webhook first, in one
/// query: on PostgreSQL a statement of constant text planned once per
/// connection ([`ReceiversOf`]).
pub(crate) fn enabled_receivers(
    connection: &mut DbConnection,
    events: &[Event],
) -> Result<Vec<Receiver>, RepositoryError> {
    let mut groups: Vec<i64> = events.iter().map(|event| event.group_id.get()).collect();
    groups.sort_unstable();
    groups.dedup();
    let rows = match connection {
        DbConnection::Postgres(postgres) => ReceiversOf { groups }.load::<ReceiverRow>(postgres),
        DbConnection::Sqlite(sqlite) => webhooks::table
            .filter(webhooks::group_id.eq_any(groups))
            .filter(webhooks::status.eq(WebhookStatus::Enabled.as_str()))
            .order_by((webhooks::created_at.asc(), webhooks::id.asc()))
            .select(ReceiverRow::as_select())
            .load::<ReceiverRow>(sqlite),
    };
    rows.map_err(storage_error)?
        .into_iter()
        .map(ReceiverRow::into_receiver)
        .collect()
}

/// A receiver as stored: selected by the query builder on SQLite, loaded
/// by name on PostgreSQL.
#[derive(Queryable, QueryableByName, Selectable)]
#[diesel(table_name = webhooks)]
struct ReceiverRow {
    id: String,
    group_id: i64,
    enabled_events: String,
    url: String,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_expires_at: Option<i64>,
    rate_limit: Option<i64>,
    headers: Option<String>,
    ordering: Option<String>,
}

impl ReceiverRow {
    fn into_receiver(self) -> Result<Receiver, RepositoryError> {
        let enabled = decode_events(&self.enabled_events).ok_or_else(|| {
            RepositoryError::Corrupt(format!("webhook {}: invalid enabled_events", self.id))
        })?;
        Ok(Receiver {
            id: self.id,
            group_id: self.group_id,
            enabled,
            sending: Sending {
                url: self.url,
                secret: self.secret,
                previous_secret: self.previous_secret,
                previous_secret_expires_at: self.previous_secret_expires_at,
                rate_limit: self.rate_limit,
                headers: self.headers,
                ordering: self.ordering,
            },
        })
    }
}

/// PostgreSQL's read of the receivers of `groups`.
///
/// Its text is constant, so Diesel keeps it prepared, and the groups are
/// read out of a sub-select, so PostgreSQL plans it once per connection:
/// with the groups in view, a prepared statement's plan for the values at
/// hand always looked cheaper than a shared one (an array of unknown
/// length), and every publish was planned again. A one-webhook run's
/// statement log had 170 ms of planning against 26 ms of running this read.
/// The shared plan still follows the table's statistics: an index scan of
/// the groups once the table is larger than a page or two.
struct ReceiversOf {
    groups: Vec<i64>,
}

impl ReceiversOf {
    /// The statement's text, the groups at its [`BIND`].
    fn sql() -> String {
        format!(
            "SELECT id, group_id, enabled_events, url, secret, previous_secret, \
               previous_secret_expires_at, rate_limit, headers, ordering \
             FROM webhooks \
             WHERE group_id = ANY((SELECT {BIND}::bigint[] LIMIT 1)::bigint[]) \
               AND status = '{}' \
             ORDER BY created_at, id",
            WebhookStatus::Enabled.as_str()
        )
    }
}

impl QueryFragment<Pg> for ReceiversOf {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        push_with_binds(&mut out, &Self::sql(), |out, n| match n {
            0 => out.push_bind_param::<Array<BigInt>, _>(&self.groups),
            n => Err(no_value_to_bind(n)),
        })
    }
}

prepared_statement!(ReceiversOf);

#[cfg(all(test, feature = "testing"))]
mod tests {
    use diesel::connection::SimpleConnection;
    use webhooks_domain::{EventId, GroupId, UnixMillis};

    use super::*;
    use crate::testing::PreparedPlans;

    /// Three groups: one with two enabled webhooks (the younger first in
    /// the table) and a disabled one, the others with one enabled webhook
    /// each.
    const WEBHOOKS: &str = "
        INSERT INTO organizations (id, name, created_at) VALUES ('org_1', 'Receivers', 0);
        INSERT INTO groups (id, organization_id, name, created_at, operations)
        VALUES (1, 'org_1', 'One', 0, FALSE), (2, 'org_1', 'Two', 0, FALSE),
               (3, 'org_1', 'Three', 0, FALSE);
        INSERT INTO webhooks (id, group_id, url, description, status, enabled_events,
                              rate_limit, secret, created_at, updated_at)
        VALUES ('we_young', 1, 'http://127.0.0.1:9/young', 'r', 'enabled', 'user.created', NULL, 's', 20, 0),
               ('we_old', 1, 'http://127.0.0.1:9/old', 'r', 'enabled', 'user.created', 5, 's', 10, 0),
               ('we_off', 1, 'http://127.0.0.1:9/off', 'r', 'disabled', 'user.created', NULL, 's', 0, 0),
               ('we_two', 2, 'http://127.0.0.1:9/two', 'r', 'enabled', 'user.created', NULL, 's', 0, 0),
               ('we_three', 3, 'http://127.0.0.1:9/three', 'r', 'enabled', 'user.created', NULL, 's', 0, 0);
    ";

    /// PostgreSQL: 200 more groups of 10 webhooks, so that the table is read
    /// through its index, analyzed, as autovacuum soon does (with a table
    /// of a page and no statistics, any plan is as cheap as another).
    const OTHER_GROUPS: &str = "
        INSERT INTO groups (id, organization_id, name, created_at, operations)
        SELECT n, 'org_1', 'Other', 0, FALSE FROM generate_series(4, 203) AS n;
        INSERT INTO webhooks (id, group_id, url, description, status, enabled_events,
                              rate_limit, secret, created_at, updated_at)
        SELECT 'we_' || n, 4 + n % 200, 'http://127.0.0.1:9/', 'r', 'enabled', 'user.created',
               NULL, 's', n, 0
        FROM generate_series(1, 2000) AS n;
        ANALYZE webhooks;
    ";

    /// An event of `group`'s (a group of [`WEBHOOKS`]).
    fn event(group: u8) -> Result<Event, RepositoryError> {
        let invalid = |error| RepositoryError::Corrupt(format!("test event: {error}"));
        Ok(Event {
            id: EventId::parse("evt_01hzzzzzzzzzzzzzzzzzzzzzzz")
                .ok_or_else(|| invalid("event id".to_owned()))?,
            group_id: GroupId::new(i64::from(group)).map_err(|error| invalid(error.to_string()))?,
            event_type: "user.created".to_owned(),
            payload: "{}".to_owned(),
            idempotency_key: None,
            created_at: UnixMillis(0),
        })
    }

    /// The receivers' ids, per read: groups 1 and 2, then 3, then 1, ….
    fn reads(connection: &mut DbConnection) -> Result<Vec<Vec<String>>, RepositoryError> {
        let batches = [vec![event(1)?, event(2)?], vec![event(3)?], vec![event(1)?]];
        let mut reads = Vec::new();
        for round in 0..10 {
            let receivers = enabled_receivers(connection, &batches[round % batches.len()])?;
            reads.push(receivers.into_iter().map(|receiver| receiver.id).collect());
        }
        Ok(reads)
    }

    #[tokio::test]
    async fn the_receivers_of_a_batch_are_its_groups_enabled_webhooks_oldest_first() {
        for test_database in [
            crate::TestDatabase::sqlite().await,
            crate::TestDatabase::postgres().await,
        ] {
            let reads = test_database
                .database()
                .run(|connection| {
                    connection.batch_execute(WEBHOOKS).map_err(storage_error)?;
                    reads(connection)
                })
                .await
                .unwrap();
            assert_eq!(reads[0], ["we_two", "we_old", "we_young"]);
            assert_eq!(reads[1], ["we_three"]);
            assert_eq!(reads[2], ["we_old", "we_young"]);
            assert_eq!(reads[9], reads[0]);
        }
    }

    #[tokio::test]
    async fn postgres_prepares_and_plans_the_receivers_read_once_per_connection() {
        let test_database = crate::TestDatabase::postgres().await;
        let plans = test_database
            .database()
            .run(|connection| {
                connection.batch_execute(WEBHOOKS).map_err(storage_error)?;
                connection
                    .batch_execute(OTHER_GROUPS)
                    .map_err(storage_error)?;
                reads(connection)?;
                PreparedPlans::of(
                    connection,
                    &["%FROM webhooks WHERE group_id = ANY((SELECT%"],
                )
            })
            .await
            .unwrap();

        // PostgreSQL's trial of five calls planned each, then its one plan.
        let once = PreparedPlans {
            statements: 1,
            generic: 5,
            custom: 5,
        };
        assert_eq!(plans, once);
    }
}
