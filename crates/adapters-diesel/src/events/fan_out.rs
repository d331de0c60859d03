//! An event's fan-out: one pending delivery per enabled webhook of its group
//! whose enabled events name its type, and the statements that store a batch
//! of events with their deliveries.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use webhooks_domain::{Event, PublishOutcome, RepositoryError};

use super::receivers::{enabled_receivers, Receiver};
use super::EventRow;
use crate::database::{storage_error, DbConnection};
use crate::deliveries::{
    announce_new_deliveries, new_delivery_id, NewDeliveryRow, DELIVERIES_CHANNEL,
};
use crate::schema::{deliveries, events};
use crate::statements::{on_its_backend, prepared_statement, ROWS_PER_STATEMENT};

/// How many times a publish reads its receivers at most. A webhook it
/// delivers to may be deleted between the read and the store (PostgreSQL);
/// the store then stores nothing, and the publish starts again from a new
/// read.
const RECEIVER_READS: usize = 3;

/// Stores the events and their deliveries (see
/// [`EventStore::publish`](webhooks_domain::EventStore::publish)) in
/// the caller's transaction, in a constant number of statements; answers an
/// outcome per event, in order.
pub(crate) fn publish_all(
    connection: &mut DbConnection,
    events: &[Event],
) -> Result<Vec<PublishOutcome>, RepositoryError> {
    let (fan_out, ()) = fan_out_and_store(connection, |connection| {
        Ok((
            FanOut::of(events, &enabled_receivers(connection, events)?),
            (),
        ))
    })?;
    Ok(fan_out.outcomes)
}

/// Makes a fan-out with `fan_out_of` (which reads the receivers, and may
/// reserve what it needs beside) and [`store`]s it. When a webhook of the
/// fan-out was deleted after the read, nothing was stored and it starts
/// again, up to [`RECEIVER_READS`] times: a publish that races a delete
/// reaches the webhooks left, as if it had come just after the delete.
/// What `fan_out_of` made beside a fan-out that was not stored is dropped.
///
/// Errors: those of `fan_out_of` and [`store`];
/// [`RepositoryError::Unavailable`] when webhooks were deleted during every
/// try.
pub(crate) fn fan_out_and_store<T>(
    connection: &mut DbConnection,
    mut fan_out_of: impl FnMut(&mut DbConnection) -> Result<(FanOut, T), RepositoryError>,
) -> Result<(FanOut, T), RepositoryError> {
    for _ in 0..RECEIVER_READS {
        let (fan_out, beside) = fan_out_of(connection)?;
        if store(connection, &fan_out)? == Stored::Everything {
            return Ok((fan_out, beside));
        }
    }
    Err(RepositoryError::Unavailable(format!(
        "webhooks of the publish were deleted during each of its {RECEIVER_READS} tries; \
         nothing was stored"
    )))
}

/// What [`store`] did with a fan-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    Everything,
    /// PostgreSQL: a webhook the deliveries go to was deleted since the
    /// receivers were read.
    NothingAsAWebhookIsGone,
}

/// Inserts the rows of `fan_out` and announces its deliveries: on
/// PostgreSQL in one statement (atomic by itself), on SQLite in chunks,
/// which the caller wraps in a transaction (there the receivers' read and
/// the store take one turn of the single writer, so no delete comes
/// between them).
fn store(connection: &mut DbConnection, fan_out: &FanOut) -> Result<Stored, RepositoryError> {
    if fan_out.events.is_empty() {
        return Ok(Stored::Everything);
    }
    if let DbConnection::Postgres(postgres) = connection {
        return match insert_in_one_statement(postgres, fan_out).map_err(storage_error)? {
            true => Ok(Stored::Everything),
            false => Ok(Stored::NothingAsAWebhookIsGone),
        };
    }
    for chunk in fan_out.events.chunks(ROWS_PER_STATEMENT) {
        insert_events(connection, chunk).map_err(storage_error)?;
    }
    for chunk in fan_out.deliveries.chunks(ROWS_PER_STATEMENT) {
        insert_deliveries(connection, chunk).map_err(storage_error)?;
    }
    if fan_out.any_due() {
        announce_new_deliveries(connection).map_err(storage_error)?;
    }
    Ok(Stored::Everything)
}

/// The rows a batch of events adds, and the outcome of each event.
pub(crate) struct FanOut {
    pub(super) events: Vec<EventRow>,
    pub(super) deliveries: Vec<NewDeliveryRow>,
    pub(crate) outcomes: Vec<PublishOutcome>,
}

impl FanOut {
    /// One pending delivery per event and receiver of its group and type,
    /// in event order, oldest webhook first.
    pub(crate) fn of(events: &[Event], receivers: &[Receiver]) -> Self {
        let mut deliveries = Vec::new();
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            let before = deliveries.len();
            deliveries.extend(
                receivers
                    .iter()
                    .filter(|receiver| receiver.receives(event))
                    .map(|receiver| {
                        NewDeliveryRow::due_at_once(new_delivery_id(), event, receiver.id.clone())
                    }),
            );
            outcomes.push(PublishOutcome {
                event_id: event.id.clone(),
                deliveries: (deliveries.len() - before) as u64,
                handed_over: 0,
                created: true,
            });
        }
        Self {
            events: events.iter().map(EventRow::from_event).collect(),
            deliveries,
            outcomes,
        }
    }

    /// Whether a claim has to find some of its deliveries: those not
    /// leased to this process's dispatcher (see the `hand_off` module).
    fn any_due(&self) -> bool {
        self.deliveries
            .iter()
            .any(|delivery| delivery.leased_until.is_none())
    }
}

/// PostgreSQL: the events, their deliveries and, when some of them wait
/// for a claim, the notification of [`DELIVERIES_CHANNEL`], in one
/// statement of constant text whatever the batch's size (each column is
/// bound as an array and `unnest`ed): Diesel prepares it once per
/// connection, and PostgreSQL parses it once. Answers false, having stored
/// nothing, when a webhook of the deliveries is gone.
///
/// No foreign key checks a delivery's event or webhook on PostgreSQL (see
/// the migration `deliveries_unchecked`): the statement stores the events
/// with their deliveries, and locks the rows of the deliveries' webhooks
/// itself, once per webhook (`FOR KEY SHARE`, the lock a key check takes
/// once per delivery), storing nothing unless it locked them all. A
/// webhook's delete locks its row first (`FOR UPDATE`), so it waits for
/// this statement's transaction and then deletes what it stored, or this
/// statement waits for the delete and finds the webhook gone.
fn insert_in_one_statement(connection: &mut PgConnection, fan_out: &FanOut) -> QueryResult<bool> {
    PublishStatement::of(fan_out)
        .get_result::<StatementAnswer>(connection)
        .map(|row| row.stored)
}

/// The answer of [`PublishStatement`].
#[derive(QueryableByName)]
struct StatementAnswer {
    #[diesel(sql_type = Bool)]
    stored: bool,
}

/// The columns of a batch's rows, for [`insert_in_one_statement`].
#[derive(Default)]
struct PublishStatement {
    /// The webhooks of the deliveries, each once.
    webhooks: Vec<String>,
    event_id: Vec<String>,
    event_group_id: Vec<i64>,
    event_type: Vec<String>,
    payload: Vec<String>,
    idempotency_key: Vec<Option<String>>,
    event_created_at: Vec<i64>,
    delivery_id: Vec<String>,
    delivery_event_id: Vec<String>,
    webhook_id: Vec<String>,
    delivery_group_id: Vec<i64>,
    status: Vec<String>,
    attempt_count: Vec<i64>,
    next_attempt_at: Vec<Option<i64>>,
    leased_until: Vec<Option<i64>>,
    delivery_created_at: Vec<i64>,
    updated_at: Vec<i64>,
    announce: bool,
}

impl PublishStatement {
    fn of(fan_out: &FanOut) -> Self {
        let mut columns = Self {
            announce: fan_out.any_due(),
            ..Self::default()
        };
        for event in &fan_out.events {
            columns.event_id.push(event.id.clone());
            columns.event_group_id.push(event.group_id);
            columns.event_type.push(event.event_type.clone());
            columns.payload.push(event.payload.clone());
            columns.idempotency_key.push(event.idempotency_key.clone());
            columns.event_created_at.push(event.created_at);
        }
        for delivery in &fan_out.deliveries {
            columns.delivery_id.push(delivery.id.clone());
            columns.delivery_event_id.push(delivery.event_id.clone());
            columns.webhook_id.push(delivery.webhook_id.clone());
            columns.delivery_group_id.push(delivery.group_id);
            columns.status.push(delivery.status.clone());
            columns.attempt_count.push(delivery.attempt_count);
            columns.next_attempt_at.push(delivery.next_attempt_at);
            columns.leased_until.push(delivery.leased_until);
            columns.delivery_created_at.push(delivery.created_at);
            columns.updated_at.push(delivery.updated_at);
        }
        columns.webhooks = columns.webhook_id.clone();
        columns.webhooks.sort_unstable();
        columns.webhooks.dedup();
        columns
    }
}

impl QueryFragment<Pg> for PublishStatement {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH receivers AS (SELECT id FROM webhooks WHERE id = ANY(");
        out.push_bind_param::<Array<Text>, _>(&self.webhooks)?;
        out.push_sql(") FOR KEY SHARE), complete AS (SELECT count(*) = cardinality(");
        out.push_bind_param::<Array<Text>, _>(&self.webhooks)?;
        out.push_sql(
            ") AS yes FROM receivers), new_events AS (INSERT INTO events \
             (id, group_id, event_type, payload, idempotency_key, created_at) \
             SELECT * FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.event_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.event_group_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.event_type)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.payload)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.idempotency_key)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.event_created_at)?;
        out.push_sql(
            ") WHERE (SELECT yes FROM complete)), new_deliveries AS (INSERT INTO deliveries \
             (id, event_id, webhook_id, group_id, status, attempt_count, next_attempt_at, \
             leased_until, created_at, updated_at) SELECT * FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.delivery_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.delivery_event_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.webhook_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.delivery_group_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.status)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.attempt_count)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.next_attempt_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.leased_until)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.delivery_created_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.updated_at)?;
        // The notification only when stored; `count(*)` makes the row
        // whether or not it is sent.
        out.push_sql(&format!(
            ") WHERE (SELECT yes FROM complete)) \
             SELECT complete.yes AS stored FROM complete CROSS JOIN LATERAL \
             (SELECT count(*) FROM (SELECT pg_notify('{DELIVERIES_CHANNEL}', '') \
             WHERE complete.yes AND "
        ));
        out.push_bind_param::<Bool, _>(&self.announce)?;
        out.push_sql(") AS announce) AS announced");
        Ok(())
    }
}

prepared_statement!(PublishStatement);

/// One multi-row `INSERT`, the same statement on both backends.
fn insert_events(connection: &mut DbConnection, rows: &[EventRow]) -> QueryResult<()> {
    on_its_backend!(connection, inner => diesel::insert_into(events::table)
        .values(rows)
        .execute(inner))
    .map(drop)
}

/// One multi-row `INSERT`, as [`insert_events`].
fn insert_deliveries(connection: &mut DbConnection, rows: &[NewDeliveryRow]) -> QueryResult<()> {
    on_its_backend!(connection, inner => diesel::insert_into(deliveries::table)
        .values(rows)
        .execute(inner))
    .map(drop)
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use diesel::connection::SimpleConnection;
    use webhooks_domain::{EventId, GroupId, UnixMillis};

    use super::*;
    use crate::testing::PreparedPlans;

    /// A group with two enabled webhooks.
    const WEBHOOKS: &str = "
        INSERT INTO organizations (id, name, created_at) VALUES ('org_1', 'Fan-out', 0);
        INSERT INTO groups (id, organization_id, name, created_at, operations)
        VALUES (1, 'org_1', 'One', 0, FALSE);
        INSERT INTO webhooks (id, group_id, url, description, status, enabled_events,
                              rate_limit, secret, created_at, updated_at)
        VALUES ('we_a', 1, 'http://127.0.0.1:9/a', 'f', 'enabled', 'user.created', NULL, 's', 1, 0),
               ('we_b', 1, 'http://127.0.0.1:9/b', 'f', 'enabled', 'user.created', NULL, 's', 2, 0);
    ";

    fn event(n: u32) -> Result<Event, RepositoryError> {
        let invalid = |error: String| RepositoryError::Corrupt(format!("test event: {error}"));
        Ok(Event {
            id: EventId::parse(&format!("evt_01hzzzzzzzzzzzzzzzzzzzz{n:03}"))
                .ok_or_else(|| invalid("event id".to_owned()))?,
            group_id: GroupId::new(1).map_err(|error| invalid(error.to_string()))?,
            event_type: "user.created".to_owned(),
            payload: "{}".to_owned(),
            idempotency_key: None,
            created_at: UnixMillis(0),
        })
    }

    #[tokio::test]
    async fn postgres_prepares_and_plans_the_publish_statement_once_per_connection() {
        let test_database = crate::TestDatabase::postgres().await;
        let plans = test_database
            .database()
            .run(|connection| {
                connection.batch_execute(WEBHOOKS).map_err(storage_error)?;
                for n in 0..10 {
                    let outcomes = publish_all(connection, &[event(n)?])?;
                    assert_eq!(outcomes[0].deliveries, 2);
                }
                PreparedPlans::of(connection, &["WITH receivers AS%"])
            })
            .await
            .unwrap();

        assert_eq!(
            plans,
            PreparedPlans {
                statements: 1,
                generic: 5,
                custom: 5,
            }
        );
    }
}
