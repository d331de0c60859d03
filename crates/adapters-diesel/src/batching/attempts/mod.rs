//! Writing a batch of attempts: the statements of
//! [`DeliveryQueue::record_attempts`](webhooks_domain::DeliveryQueue::record_attempts),
//! a constant number whatever the batch's size.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::Sqlite;
use diesel::SqliteConnection;
use webhooks_domain::{
    AttemptRecord, DeliveryStatus, DisabledReason, EndpointHealth, EventId, EventType,
    FailedDelivery, GroupId, NextStep, OperationalEvent, RepositoryError, StatusChange, WebhookId,
    WebhookStatus,
};

use crate::database::{storage_error, DbConnection};
use crate::deliveries::AttemptRow;
use crate::operations::{announce, no_probes};
use crate::schema::{attempts, deliveries, events, webhooks};
use crate::statements::ROWS_PER_STATEMENT;

mod postgres;

/// What [`record_batch`] wrote that its caller tells on.
pub(crate) struct Recorded {
    /// The types of the operational events written.
    pub announced: Vec<EventType>,
    /// Whether a webhook was disabled for its failures.
    pub disabled: bool,
}

/// The statements of [`DeliveryQueue::record_attempts`](webhooks_domain::DeliveryQueue::record_attempts),
/// in its transaction: the attempts, where each delivery stands, what the
/// attempts say about their webhooks' health, and the operational events
/// of the webhooks they disabled and the deliveries they failed.
pub(crate) fn record_batch(
    connection: &mut DbConnection,
    records: &[AttemptRecord],
) -> Result<Recorded, RepositoryError> {
    let (news, disabled) = record_statements(connection, records).map_err(storage_error)?;
    let Some(at) = records
        .iter()
        .map(|record| record.attempt.attempted_at)
        .max()
    else {
        return Ok(Recorded {
            announced: Vec::new(),
            disabled,
        });
    };
    let announced = announce(connection, &news, at)?;
    Ok(Recorded {
        announced,
        disabled,
    })
}

/// [`record_batch`]'s writes; answers the operational events they call for,
/// and whether they disabled a webhook.
///
/// Where each delivery stands is written first: that statement locks the
/// delivery rows and answers those that still exist, so the attempts are
/// stored only for deliveries that stay until the commit. A delivery deleted
/// meanwhile (with its webhook) leaves nothing to record. No foreign key
/// checks each attempt's delivery (see the migration `attempts_unchecked`):
/// this order, and the deletes' (see `WebhookRepository::delete`), keep
/// every attempt's delivery there.
fn record_statements(
    connection: &mut DbConnection,
    records: &[AttemptRecord],
) -> QueryResult<(Vec<OperationalEvent>, bool)> {
    let mut webhook_of: HashMap<String, String> = HashMap::with_capacity(records.len());
    for chunk in last_outcomes(records).chunks(ROWS_PER_STATEMENT) {
        webhook_of.extend(update_deliveries(connection, chunk)?);
    }
    let records: Vec<(&AttemptRecord, &str)> = records
        .iter()
        .filter_map(|record| {
            let webhook = webhook_of.get(record.attempt.delivery_id.as_str())?;
            Some((record, webhook.as_str()))
        })
        .collect();
    if records.is_empty() {
        return Ok((Vec::new(), false));
    }
    let rows: Vec<AttemptRow> = records
        .iter()
        .map(|(record, _)| AttemptRow::from_attempt(&record.attempt))
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        insert_attempts_once(connection, chunk)?;
    }
    let disabled = apply_health_in_order(connection, &records)?;
    let mut news = disabled_news(connection, &disabled)?;
    news.extend(failed_news(connection, &records)?);
    Ok((news, !disabled.is_empty()))
}

/// `webhook.disabled` for each webhook the batch disabled, in order.
fn disabled_news(
    connection: &mut DbConnection,
    disabled: &[(&str, DisabledReason)],
) -> QueryResult<Vec<OperationalEvent>> {
    if disabled.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = disabled.iter().map(|(webhook, _)| *webhook).collect();
    let found: HashMap<String, (i64, String)> = webhooks::table
        .filter(webhooks::id.eq_any(&ids))
        .select((webhooks::id, (webhooks::group_id, webhooks::url)))
        .load::<(String, (i64, String))>(connection)?
        .into_iter()
        .collect();
    Ok(disabled
        .iter()
        .filter_map(|(webhook, reason)| {
            let (group, url) = found.get(*webhook)?;
            let (group, id) = (GroupId::new(*group).ok()?, WebhookId::parse(webhook)?);
            let change = StatusChange::Disabled(*reason);
            Some(OperationalEvent::status_changed(group, &id, url, change))
        })
        .collect())
}

/// `delivery.failed` for each delivery the batch failed for good, in order.
fn failed_news(
    connection: &mut DbConnection,
    records: &[(&AttemptRecord, &str)],
) -> QueryResult<Vec<OperationalEvent>> {
    let failed: Vec<(&AttemptRecord, &str)> = records
        .iter()
        .filter(|(record, _)| record.next == NextStep::Failed)
        .copied()
        .collect();
    if failed.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = failed
        .iter()
        .map(|(record, _)| record.attempt.delivery_id.as_str())
        .collect();
    let found: HashMap<String, (i64, String, String)> = deliveries::table
        .inner_join(events::table)
        .filter(deliveries::id.eq_any(&ids))
        .select((
            deliveries::id,
            (deliveries::group_id, events::id, events::event_type),
        ))
        .load::<(String, (i64, String, String))>(connection)?
        .into_iter()
        .collect();
    Ok(failed
        .iter()
        .filter_map(|(record, webhook)| {
            let attempt = &record.attempt;
            let (group, event, event_type) = found.get(attempt.delivery_id.as_str())?;
            let failed = FailedDelivery {
                delivery_id: attempt.delivery_id.clone(),
                event_id: EventId::parse(event)?,
                event_type: event_type.clone(),
                attempts: attempt.number,
                last_status: attempt.response_status,
            };
            let (group, webhook) = (GroupId::new(*group).ok()?, WebhookId::parse(webhook)?);
            Some(OperationalEvent::delivery_failed(group, &webhook, &failed))
        })
        .collect())
}

/// Where each delivery stands after the batch: its last record decides.
fn last_outcomes(records: &[AttemptRecord]) -> Vec<DeliveryOutcome> {
    let mut outcomes: Vec<DeliveryOutcome> = Vec::with_capacity(records.len());
    let mut position: HashMap<&str, usize> = HashMap::with_capacity(records.len());
    for record in records {
        let outcome = DeliveryOutcome::of(record);
        match position.get(outcome.id.as_str()) {
            Some(&at) => outcomes[at] = outcome,
            None => {
                position.insert(record.attempt.delivery_id.as_str(), outcomes.len());
                outcomes.push(outcome);
            }
        }
    }
    outcomes
}

/// Applies each record's news about its webhook's health, in order. Healthy
/// webhooks are collected and cleared in one statement; a webhook's other
/// news applies in order after its earlier successes. Answers the webhooks
/// it disabled, and why.
fn apply_health_in_order<'r>(
    connection: &mut DbConnection,
    records: &[(&AttemptRecord, &'r str)],
) -> QueryResult<Vec<(&'r str, DisabledReason)>> {
    let mut disabled = Vec::new();
    let mut healthy: Vec<&str> = Vec::new();
    for (record, webhook) in records {
        let attempted_at = record.attempt.attempted_at.as_millis();
        match record.health {
            EndpointHealth::Healthy => {
                if !healthy.contains(webhook) {
                    healthy.push(webhook);
                }
            }
            EndpointHealth::Unchanged => {}
            health => {
                if healthy.contains(webhook) {
                    end_failure_streaks(connection, &healthy)?;
                    healthy.clear();
                }
                if let Some(reason) = apply_health(connection, webhook, health, attempted_at)? {
                    disabled.push((*webhook, reason));
                }
            }
        }
    }
    if !healthy.is_empty() {
        end_failure_streaks(connection, &healthy)?;
    }
    Ok(disabled)
}

/// Where a delivery stands after an attempt.
struct DeliveryOutcome {
    id: String,
    status: &'static str,
    attempt_count: i64,
    next_attempt_at: Option<i64>,
    updated_at: i64,
}

impl DeliveryOutcome {
    fn of(record: &AttemptRecord) -> Self {
        let (status, next_attempt_at) = match record.next {
            NextStep::Succeeded => (DeliveryStatus::Succeeded, None),
            NextStep::RetryAt(at) => (DeliveryStatus::Pending, Some(at.as_millis())),
            NextStep::Failed => (DeliveryStatus::Failed, None),
        };
        Self {
            id: record.attempt.delivery_id.as_str().to_owned(),
            status: status.as_str(),
            attempt_count: i64::from(record.attempt.number),
            next_attempt_at,
            updated_at: record.attempt.attempted_at.as_millis(),
        }
    }
}

/// A delivery the batch updated, and its webhook.
#[derive(QueryableByName)]
struct Updated {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    webhook_id: String,
}

/// Where each delivery stands, in one statement for them all, answering
/// the webhook of each delivery it found (`RETURNING`), by delivery id.
fn update_deliveries(
    connection: &mut DbConnection,
    outcomes: &[DeliveryOutcome],
) -> QueryResult<Vec<(String, String)>> {
    let updated = match connection {
        DbConnection::Postgres(postgres) => postgres::update_deliveries(postgres, outcomes)?,
        DbConnection::Sqlite(sqlite) => update_deliveries_on_sqlite(sqlite, outcomes)?,
    };
    Ok(updated
        .into_iter()
        .map(|row| (row.id, row.webhook_id))
        .collect())
}

/// [`update_deliveries`] on SQLite: one `UPDATE … FROM` a list of values
/// (SQLite since 3.33; `RETURNING` since 3.35).
fn update_deliveries_on_sqlite(
    connection: &mut SqliteConnection,
    outcomes: &[DeliveryOutcome],
) -> QueryResult<Vec<Updated>> {
    // One row of values per outcome, bound in `bind_outcomes`' order.
    let row = "(?, ?, CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))";
    let sql = format!(
        "WITH outcome(id, status, attempt_count, next_attempt_at, updated_at) AS (VALUES {}) \
         UPDATE deliveries SET status = outcome.status, attempt_count = outcome.attempt_count, \
         next_attempt_at = outcome.next_attempt_at, leased_until = NULL, \
         updated_at = outcome.updated_at \
         FROM outcome WHERE deliveries.id = outcome.id \
         RETURNING deliveries.id, deliveries.webhook_id",
        vec![row; outcomes.len()].join(", ")
    );
    bind_outcomes(diesel::sql_query(sql).into_boxed(), outcomes).load(connection)
}

/// Binds the values of [`update_deliveries_on_sqlite`], five per delivery,
/// in order.
fn bind_outcomes<'q>(
    mut query: BoxedSqlQuery<'q, Sqlite, SqlQuery>,
    outcomes: &[DeliveryOutcome],
) -> BoxedSqlQuery<'q, Sqlite, SqlQuery> {
    for outcome in outcomes {
        query = query
            .bind::<Text, _>(outcome.id.clone())
            .bind::<Text, _>(outcome.status)
            .bind::<BigInt, _>(outcome.attempt_count)
            .bind::<Nullable<BigInt>, _>(outcome.next_attempt_at)
            .bind::<BigInt, _>(outcome.updated_at);
    }
    query
}

/// A success ends the failure streaks of these webhooks; those without one
/// are not written.
fn end_failure_streaks(connection: &mut DbConnection, webhook_ids: &[&str]) -> QueryResult<()> {
    if let DbConnection::Postgres(postgres) = connection {
        return postgres::end_failure_streaks(postgres, webhook_ids);
    }
    diesel::update(
        webhooks::table
            .filter(webhooks::id.eq_any(webhook_ids))
            .filter(webhooks::failing_since.is_not_null()),
    )
    .set(webhooks::failing_since.eq(None::<i64>))
    .execute(connection)
    .map(drop)
}

/// Applies what an attempt says about its webhook's health; answers why
/// it disabled the webhook, if it did.
fn apply_health(
    connection: &mut DbConnection,
    webhook: &str,
    health: EndpointHealth,
    attempted_at: i64,
) -> QueryResult<Option<DisabledReason>> {
    let this_webhook = || webhooks::table.filter(webhooks::id.eq(webhook));
    let disable = |reason: DisabledReason| {
        (
            webhooks::status.eq(WebhookStatus::Disabled.as_str()),
            webhooks::updated_at.eq(attempted_at),
            webhooks::disabled_reason.eq(Some(reason.as_str())),
            webhooks::disabled_at.eq(Some(attempted_at)),
            no_probes(),
        )
    };
    let enabled = webhooks::status.eq(WebhookStatus::Enabled.as_str());
    let (reason, disabled) = match health {
        EndpointHealth::Healthy => {
            end_failure_streaks(connection, &[webhook])?;
            return Ok(None);
        }
        EndpointHealth::Failing {
            disable_if_failing_since,
        } => {
            diesel::update(this_webhook().filter(webhooks::failing_since.is_null()))
                .set(webhooks::failing_since.eq(Some(attempted_at)))
                .execute(connection)?;
            let disabled = diesel::update(
                this_webhook()
                    .filter(enabled)
                    .filter(webhooks::failing_since.le(disable_if_failing_since.as_millis())),
            )
            .set(disable(DisabledReason::Failures))
            .execute(connection)?;
            (DisabledReason::Failures, disabled)
        }
        EndpointHealth::Gone => {
            let disabled = diesel::update(this_webhook().filter(enabled))
                .set(disable(DisabledReason::Gone))
                .execute(connection)?;
            (DisabledReason::Gone, disabled)
        }
        EndpointHealth::Unchanged => return Ok(None),
    };
    Ok((disabled > 0).then_some(reason))
}

/// Inserts the attempts in one statement, each unless its number is already
/// stored for its delivery (an earlier row of the same statement included).
/// Both backends say `ON CONFLICT DO NOTHING`.
fn insert_attempts_once(connection: &mut DbConnection, rows: &[AttemptRow]) -> QueryResult<()> {
    match connection {
        DbConnection::Postgres(postgres) => postgres::insert_attempts_once(postgres, rows),
        DbConnection::Sqlite(sqlite) => diesel::insert_into(attempts::table)
            .values(rows)
            .on_conflict_do_nothing()
            .execute(sqlite)
            .map(drop),
    }
}
