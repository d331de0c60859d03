//! A batch of attempts on PostgreSQL: statements of constant text whatever
//! the batch's size (each column bound as an array and `unnest`ed), so
//! Diesel prepares each once per connection and the record's transaction
//! has PostgreSQL plan it once (see
//! [`record_transaction`](crate::database::record_transaction)).

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel::PgConnection;

use super::{DeliveryOutcome, Updated};
use crate::deliveries::AttemptRow;
use crate::statements::{no_value_to_bind, prepared_statement, push_with_binds, BIND};

/// Where each delivery stands, in one `UPDATE … FROM unnest(…)`, answering
/// the deliveries it found with their webhooks.
pub(super) fn update_deliveries(
    connection: &mut PgConnection,
    outcomes: &[DeliveryOutcome],
) -> QueryResult<Vec<Updated>> {
    UpdateDeliveries {
        id: outcomes.iter().map(|outcome| outcome.id.clone()).collect(),
        status: outcomes.iter().map(|outcome| outcome.status).collect(),
        attempt_count: outcomes
            .iter()
            .map(|outcome| outcome.attempt_count)
            .collect(),
        next_attempt_at: outcomes
            .iter()
            .map(|outcome| outcome.next_attempt_at)
            .collect(),
        updated_at: outcomes.iter().map(|outcome| outcome.updated_at).collect(),
    }
    .load(connection)
}

/// The statement of [`update_deliveries`], a column per array.
struct UpdateDeliveries {
    id: Vec<String>,
    status: Vec<&'static str>,
    attempt_count: Vec<i64>,
    next_attempt_at: Vec<Option<i64>>,
    updated_at: Vec<i64>,
}

impl QueryFragment<Pg> for UpdateDeliveries {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let sql = format!(
            "UPDATE deliveries SET status = outcome.status, \
               attempt_count = outcome.attempt_count, \
               next_attempt_at = outcome.next_attempt_at, leased_until = NULL, \
               updated_at = outcome.updated_at \
             FROM unnest({BIND}, {BIND}, {BIND}, {BIND}, {BIND}) \
               AS outcome(id, status, attempt_count, next_attempt_at, updated_at) \
             WHERE deliveries.id = outcome.id \
             RETURNING deliveries.id, deliveries.webhook_id"
        );
        push_with_binds(&mut out, &sql, |out, n| match n {
            0 => out.push_bind_param::<Array<Text>, _>(&self.id),
            1 => out.push_bind_param::<Array<Text>, _>(&self.status),
            2 => out.push_bind_param::<Array<BigInt>, _>(&self.attempt_count),
            3 => out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.next_attempt_at),
            4 => out.push_bind_param::<Array<BigInt>, _>(&self.updated_at),
            n => Err(no_value_to_bind(n)),
        })
    }
}

/// Inserts the attempts in one statement, each unless its number is already
/// stored for its delivery (an earlier row of the same statement included).
pub(super) fn insert_attempts_once(
    connection: &mut PgConnection,
    rows: &[AttemptRow],
) -> QueryResult<()> {
    InsertAttempts {
        delivery_id: rows.iter().map(|row| row.delivery_id.clone()).collect(),
        number: rows.iter().map(|row| row.number).collect(),
        attempted_at: rows.iter().map(|row| row.attempted_at).collect(),
        duration_ms: rows.iter().map(|row| row.duration_ms).collect(),
        response_status: rows.iter().map(|row| row.response_status).collect(),
        response_body: rows.iter().map(|row| row.response_body.clone()).collect(),
        error: rows.iter().map(|row| row.error.clone()).collect(),
    }
    .execute(connection)
    .map(drop)
}

/// The statement of [`insert_attempts_once`], a column per array.
struct InsertAttempts {
    delivery_id: Vec<String>,
    number: Vec<i64>,
    attempted_at: Vec<i64>,
    duration_ms: Vec<i64>,
    response_status: Vec<Option<i64>>,
    response_body: Vec<Option<String>>,
    error: Vec<Option<String>>,
}

impl QueryFragment<Pg> for InsertAttempts {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let sql = format!(
            "INSERT INTO attempts (delivery_id, number, attempted_at, duration_ms, \
               response_status, response_body, error) \
             SELECT * FROM unnest({BIND}, {BIND}, {BIND}, {BIND}, {BIND}, {BIND}, {BIND}) \
             ON CONFLICT DO NOTHING"
        );
        push_with_binds(&mut out, &sql, |out, n| match n {
            0 => out.push_bind_param::<Array<Text>, _>(&self.delivery_id),
            1 => out.push_bind_param::<Array<BigInt>, _>(&self.number),
            2 => out.push_bind_param::<Array<BigInt>, _>(&self.attempted_at),
            3 => out.push_bind_param::<Array<BigInt>, _>(&self.duration_ms),
            4 => out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.response_status),
            5 => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.response_body),
            6 => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.error),
            n => Err(no_value_to_bind(n)),
        })
    }
}

/// A success ends the failure streaks of these webhooks; those without one
/// are not written.
pub(super) fn end_failure_streaks(
    connection: &mut PgConnection,
    webhook_ids: &[&str],
) -> QueryResult<()> {
    EndFailureStreaks {
        webhook_ids: webhook_ids.iter().map(|id| (*id).to_owned()).collect(),
    }
    .execute(connection)
    .map(drop)
}

/// The statement of [`end_failure_streaks`].
struct EndFailureStreaks {
    webhook_ids: Vec<String>,
}

impl QueryFragment<Pg> for EndFailureStreaks {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let sql = format!(
            "UPDATE webhooks SET failing_since = NULL \
             WHERE id = ANY({BIND}) AND failing_since IS NOT NULL"
        );
        push_with_binds(&mut out, &sql, |out, n| match n {
            0 => out.push_bind_param::<Array<Text>, _>(&self.webhook_ids),
            n => Err(no_value_to_bind(n)),
        })
    }
}

prepared_statement!(UpdateDeliveries, InsertAttempts, EndFailureStreaks);

#[cfg(all(test, feature = "testing"))]
mod tests {
    use diesel::connection::SimpleConnection;
    use webhooks_domain::{
        Attempt, AttemptRecord, DeliveryId, EndpointHealth, NextStep, UnixMillis,
    };

    use super::*;
    use crate::batching::record_batch;
    use crate::database::{record_transaction, storage_error};
    use crate::testing::PreparedPlans;

    /// A webhook with one pending delivery, `DELIVERY`.
    const QUEUE: &str = "
        INSERT INTO organizations (id, name, created_at) VALUES ('org_1', 'Records', 0);
        INSERT INTO groups (id, organization_id, name, created_at, operations)
        VALUES (1, 'org_1', 'Records', 0, FALSE);
        INSERT INTO webhooks (id, group_id, url, description, status, enabled_events,
                              rate_limit, secret, created_at, updated_at, failing_since)
        VALUES ('we_01', 1, 'http://127.0.0.1:9/', 'records', 'enabled', 'record.sample',
                NULL, 'x1:records', 0, 0, 5);
        INSERT INTO events (id, group_id, event_type, payload, idempotency_key, created_at)
        VALUES ('evt_01', 1, 'record.sample', '{}', NULL, 0);
        INSERT INTO deliveries (id, event_id, webhook_id, group_id, status, attempt_count,
                                next_attempt_at, created_at, updated_at, leased_until)
        VALUES ('dlv_01hzzzzzzzzzzzzzzzzzzzzzzz', 'evt_01', 'we_01', 1, 'pending', 0, 0, 0, 0, 10);
    ";

    /// A failed attempt `number` of `delivery`, retried later, that ends
    /// the webhook's failure streak when `healthy`.
    fn record(delivery: &DeliveryId, number: u32, healthy: bool) -> AttemptRecord {
        AttemptRecord {
            attempt: Attempt {
                delivery_id: delivery.clone(),
                number,
                attempted_at: UnixMillis(i64::from(number) * 1_000),
                duration_ms: 3,
                response_status: Some(500),
                response_body: Some("busy".to_owned()),
                error: None,
            },
            next: NextStep::RetryAt(UnixMillis(1_000_000)),
            health: if healthy {
                EndpointHealth::Healthy
            } else {
                EndpointHealth::Unchanged
            },
        }
    }

    #[tokio::test]
    async fn postgres_prepares_and_plans_a_records_statements_once_per_connection() {
        let test_database = crate::TestDatabase::postgres().await;
        let delivery = DeliveryId::parse("dlv_01hzzzzzzzzzzzzzzzzzzzzzzz").unwrap();
        let (plans, attempts) = test_database
            .database()
            .run(move |connection| {
                connection.batch_execute(QUEUE).map_err(storage_error)?;
                for number in 1..=4 {
                    // Batches of one and of two records: one text either way.
                    let mut batch = vec![record(&delivery, number, true)];
                    if number % 2 == 0 {
                        batch.insert(0, record(&delivery, number + 10, false));
                    }
                    record_transaction(connection, |connection| record_batch(connection, &batch))?;
                }
                let attempts = crate::schema::attempts::table
                    .count()
                    .get_result::<i64>(connection)
                    .map_err(storage_error)?;
                let plans = PreparedPlans::of(
                    connection,
                    &[
                        "UPDATE deliveries SET status%",
                        "INSERT INTO attempts%",
                        "UPDATE webhooks SET failing_since = NULL%",
                    ],
                )?;
                Ok((plans, attempts))
            })
            .await
            .unwrap();

        assert_eq!(attempts, 6);
        // Where the delivery stands, its attempts, the end of the streak:
        // each planned once, that plan used by the four batches.
        let once = PreparedPlans {
            statements: 3,
            generic: 12,
            custom: 0,
        };
        assert_eq!(plans, once);
    }
}
