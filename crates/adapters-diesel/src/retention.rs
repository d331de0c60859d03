//! Retention's deletes: finished deliveries with their attempts, and events
//! of which no delivery remains, behind [`RetentionStore`].
//!
//! Each chunk picks its rows, then deletes them, in one transaction.
//! Locks: PostgreSQL picks them `FOR UPDATE SKIP LOCKED`, skipping the
//! rows another transaction holds, so a concurrent pruner takes other rows
//! and a manual retry waits for the chunk, then finds none; SQLite has no
//! row locks, and its `BEGIN IMMEDIATE` transaction makes writers take turns.
//!
//! Old events are found without looking at the whole history on every
//! pass. An event loses its last delivery in one of three ways, each with
//! its own path:
//! - it never had one (no webhook took its type): the walk over events in
//!   `(created_at, id)` order finds it when it passes the events' retention;
//!   the walk's mark (`events_checked`, one row) remembers how far it got;
//! - retention pruned its deliveries: the chunk that deletes the last one
//!   deletes the event too, once old enough;
//! - its webhook was deleted (the deliveries go by cascade): the delete
//!   moves the walk's mark back to the webhook's oldest delivery (see
//!   [`rewind_events_checked`]).

use async_trait::async_trait;
use diesel::dsl::{exists, min, not, sql};
use diesel::expression::SqlLiteral;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use webhooks_domain::{
    DeliveryStatus, OldestKept, PrunedDeliveries, PrunedEvents, RepositoryError, RetentionStore,
    UnixMillis,
};

use crate::database::{bookkeeping_transaction, storage_error, Database, DbConnection};
use crate::schema::{attempts, deliveries, events, events_checked};
use crate::statements::ROWS_PER_PRUNE;

/// The finished statuses: only these are ever pruned.
const FINISHED: [&str; 2] = [
    DeliveryStatus::Succeeded.as_str(),
    DeliveryStatus::Failed.as_str(),
];

/// The condition of the partial index `deliveries_finished_updated_at`
/// (migration `finished_index`), written as literals, as the index's is:
/// a query that spells it may use the index (a bound status would not).
const IS_FINISHED: &str = "deliveries.status IN ('succeeded', 'failed')";

// The literals of `IS_FINISHED` (and of the migration) are the statuses of
// `FINISHED`.
const _: () = assert!(
    matches!(FINISHED[0].as_bytes(), b"succeeded") && matches!(FINISHED[1].as_bytes(), b"failed")
);

/// Retention's deletes in PostgreSQL or SQLite, whichever [`Database`]
/// points at.
#[derive(Debug, Clone)]
pub struct DieselRetention {
    db: Database,
}

impl DieselRetention {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl RetentionStore for DieselRetention {
    /// One transaction: picks the deliveries, deletes their attempts, then
    /// them, then (with `events_accepted_before`) their events accepted
    /// before it of which no delivery remains.
    /// At most [`ROWS_PER_PRUNE`] deliveries, whatever `limit` asks.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn prune_finished_deliveries(
        &self,
        finished_before: UnixMillis,
        events_accepted_before: Option<UnixMillis>,
        limit: usize,
    ) -> Result<PrunedDeliveries, RepositoryError> {
        let limit = i64::try_from(limit.min(ROWS_PER_PRUNE)).unwrap_or(0);
        self.db
            .run(move |connection| {
                bookkeeping_transaction(connection, |connection| {
                    prune_finished(connection, finished_before, events_accepted_before, limit)
                        .map_err(storage_error)
                })
            })
            .await
    }

    /// One transaction: reads the walk's mark, takes the next events after
    /// it (index `events_created_at_id`), deletes those without a delivery,
    /// and moves the mark to the last one taken; at most [`ROWS_PER_PRUNE`],
    /// whatever `limit` asks. PostgreSQL locks the mark, so concurrent
    /// pruners take turns rather than walk the same events.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn prune_events(
        &self,
        accepted_before: UnixMillis,
        limit: usize,
    ) -> Result<PrunedEvents, RepositoryError> {
        let limit = i64::try_from(limit.min(ROWS_PER_PRUNE)).unwrap_or(0);
        self.db
            .run(move |connection| {
                bookkeeping_transaction(connection, |connection| {
                    walk_events(connection, accepted_before, limit).map_err(storage_error)
                })
            })
            .await
    }

    /// One index lookup per finished status (the partial index
    /// `deliveries_finished_updated_at`) and one for events (`created_at`).
    /// Errors: [`RepositoryError::Unavailable`].
    async fn oldest_kept(&self) -> Result<OldestKept, RepositoryError> {
        self.db
            .run(move |connection| {
                let mut finished_delivery: Option<i64> = None;
                for status in FINISHED {
                    let oldest = diesel::sql_query(oldest_finished(status))
                        .get_result::<Oldest>(connection)
                        .map_err(storage_error)?
                        .updated_at;
                    finished_delivery = finished_delivery.into_iter().chain(oldest).min();
                }
                let event = events::table
                    .select(min(events::created_at))
                    .get_result::<Option<i64>>(connection)
                    .map_err(storage_error)?;
                Ok(OldestKept {
                    finished_delivery: finished_delivery.map(UnixMillis),
                    event: event.map(UnixMillis),
                })
            })
            .await
    }
}

/// Picks, then deletes the attempts and the deliveries picked, then the
/// events of those accepted before `events_before` left without a delivery.
fn prune_finished(
    connection: &mut DbConnection,
    finished_before: UnixMillis,
    events_before: Option<UnixMillis>,
    limit: i64,
) -> QueryResult<PrunedDeliveries> {
    let query = finished(finished_before.as_millis(), limit);
    // The backends differ only here: see the module comment on locks.
    let picked: Vec<(String, String)> = match connection {
        DbConnection::Postgres(postgres) => query.for_update().skip_locked().load(postgres)?,
        DbConnection::Sqlite(sqlite) => query.load(sqlite)?,
    };
    if picked.is_empty() {
        return Ok(PrunedDeliveries::default());
    }
    let (picked, mut their_events): (Vec<String>, Vec<String>) = picked.into_iter().unzip();
    their_events.sort_unstable();
    their_events.dedup();
    if let (Some(_), DbConnection::Postgres(postgres)) = (events_before, &mut *connection) {
        // Two pruners deleting the last two deliveries of one event would
        // each still see the other's, and neither would delete the event:
        // the event's lock makes the second wait, then see the first's
        // deletes. In id order, so that two such waits never cross.
        events::table
            .filter(events::id.eq_any(&their_events))
            .order_by(events::id)
            .select(events::id)
            .for_update()
            .load::<String>(postgres)?;
    }
    let attempts = diesel::delete(attempts::table.filter(attempts::delivery_id.eq_any(&picked)))
        .execute(connection)?;
    let deliveries = diesel::delete(deliveries::table.filter(deliveries::id.eq_any(&picked)))
        .execute(connection)?;
    let events = match events_before {
        Some(before) => delete_without_deliveries(connection, &their_events, before)?,
        None => 0,
    };
    Ok(PrunedDeliveries {
        deliveries: u64::try_from(deliveries).unwrap_or(0),
        attempts: u64::try_from(attempts).unwrap_or(0),
        events: u64::try_from(events).unwrap_or(0),
    })
}

/// Deletes those of the events `ids` accepted before `before` of which no
/// delivery remains. A delivery is only ever stored with its event, in the
/// event's transaction, so such an event never gains one.
fn delete_without_deliveries(
    connection: &mut DbConnection,
    ids: &[String],
    before: UnixMillis,
) -> QueryResult<usize> {
    diesel::delete(
        events::table
            .filter(events::id.eq_any(ids))
            .filter(events::created_at.lt(before.as_millis()))
            .filter(not(exists(
                deliveries::table.filter(deliveries::event_id.eq(events::id)),
            ))),
    )
    .execute(connection)
}

/// One step of the walk over old events: the next `limit` events accepted
/// before `before` after the mark, those without a delivery deleted, the
/// mark moved to the last one (index `events_created_at_id`).
fn walk_events(
    connection: &mut DbConnection,
    before: UnixMillis,
    limit: i64,
) -> QueryResult<PrunedEvents> {
    let mark = events_checked::table.select((events_checked::created_at, events_checked::id));
    let (at, id): (i64, String) = match connection {
        DbConnection::Postgres(postgres) => mark.for_update().first(postgres)?,
        DbConnection::Sqlite(sqlite) => mark.first(sqlite)?,
    };
    // After (at, id) in the order of `events_created_at_id`, written so
    // that both backends start the index range at `at`.
    let next: Vec<(i64, String)> = events::table
        .filter(events::created_at.lt(before.as_millis()))
        .filter(events::created_at.ge(at))
        .filter(events::created_at.gt(at).or(events::id.gt(id)))
        .order_by((events::created_at, events::id))
        .select((events::created_at, events::id))
        .limit(limit)
        .load(connection)?;
    let Some((last_at, last_id)) = next.last().cloned() else {
        return Ok(PrunedEvents::default());
    };
    let ids: Vec<String> = next.into_iter().map(|(_, id)| id).collect();
    let deleted = delete_without_deliveries(connection, &ids, before)?;
    diesel::update(events_checked::table)
        .set((
            events_checked::created_at.eq(last_at),
            events_checked::id.eq(last_id),
        ))
        .execute(connection)?;
    Ok(PrunedEvents {
        checked: ids.len() as u64,
        deleted: u64::try_from(deleted).unwrap_or(0),
    })
}

/// Moves the walk over old events back before the oldest delivery of
/// `webhook` in `group` (none when the webhook is another group's), in the
/// transaction that deletes the webhook (and, by cascade, its deliveries):
/// their events, walked past while they had deliveries, are looked at again
/// by the next pass. Costs a pass the events since that delivery, once.
pub(crate) fn rewind_events_checked(
    connection: &mut DbConnection,
    group: i64,
    webhook: &str,
) -> QueryResult<()> {
    let oldest: Option<i64> = deliveries::table
        .filter(deliveries::webhook_id.eq(webhook))
        .filter(deliveries::group_id.eq(group))
        .select(min(deliveries::created_at))
        .get_result(connection)?;
    let Some(oldest) = oldest else {
        return Ok(());
    };
    diesel::update(events_checked::table.filter(events_checked::created_at.ge(oldest)))
        .set((
            events_checked::created_at.eq(oldest - 1),
            events_checked::id.eq(""),
        ))
        .execute(connection)?;
    Ok(())
}

/// The statement that reads when the oldest delivery of a finished
/// `status` finished, through the partial index (its condition and the
/// status written as literals).
fn oldest_finished(status: &str) -> String {
    format!(
        "SELECT min(updated_at) AS updated_at FROM deliveries \
         WHERE {IS_FINISHED} AND deliveries.status = '{status}'"
    )
}

/// The answer of [`oldest_finished`].
#[derive(QueryableByName)]
struct Oldest {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    updated_at: Option<i64>,
}

/// Up to `limit` deliveries (id, event) that finished before `before`, in no
/// particular order (an order would sort every old row per chunk).
#[diesel::dsl::auto_type]
fn finished(before: i64, limit: i64) -> _ {
    let is_finished: SqlLiteral<Bool> = sql::<Bool>(IS_FINISHED);
    deliveries::table
        .filter(is_finished)
        .filter(deliveries::updated_at.lt(before))
        .select((deliveries::id, deliveries::event_id))
        .limit(limit)
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::pg::Pg;
    use diesel::sql_types::Text;
    use diesel::sqlite::Sqlite;

    use super::*;
    use crate::testing::PlanLine;

    /// A line of SQLite's `EXPLAIN QUERY PLAN` (its `detail` names the index).
    #[derive(QueryableByName)]
    struct SqliteLine {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    /// The plans of retention's reads of finished deliveries: a chunk to
    /// prune, then the oldest of each finished status. PostgreSQL's with
    /// sequential scans off, so that a plan that can use an index does.
    fn plans(connection: &mut DbConnection) -> QueryResult<Vec<String>> {
        let chunk = match connection {
            DbConnection::Postgres(postgres) => {
                postgres.batch_execute("SET enable_seqscan = off")?;
                diesel::debug_query::<Pg, _>(&finished(0, 10)).to_string()
            }
            DbConnection::Sqlite(_) => {
                diesel::debug_query::<Sqlite, _>(&finished(0, 10)).to_string()
            }
        };
        let mut plans = Vec::new();
        for statement in [chunk].into_iter().chain(FINISHED.map(oldest_finished)) {
            let sql = statement.split(" -- binds").next().unwrap_or_default();
            let lines: Vec<String> = match connection {
                DbConnection::Postgres(postgres) => {
                    postgres.batch_execute(&format!("PREPARE explained AS {sql}"))?;
                    let arguments = if sql.contains("$2") { "(1000, 10)" } else { "" };
                    let lines = diesel::sql_query(format!("EXPLAIN EXECUTE explained{arguments}"))
                        .load::<PlanLine>(postgres)?;
                    postgres.batch_execute("DEALLOCATE explained")?;
                    lines.into_iter().map(|line| line.line).collect()
                }
                DbConnection::Sqlite(sqlite) => {
                    diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
                        .load::<SqliteLine>(sqlite)?
                        .into_iter()
                        .map(|line| line.detail)
                        .collect()
                }
            };
            plans.push(lines.join("\n"));
        }
        Ok(plans)
    }

    #[tokio::test]
    async fn retention_reads_finished_deliveries_through_their_partial_index() {
        for test_database in [
            crate::TestDatabase::sqlite().await,
            crate::TestDatabase::postgres().await,
        ] {
            let plans = test_database
                .database()
                .run(|connection| plans(connection).map_err(storage_error))
                .await
                .unwrap();
            assert_eq!(plans.len(), 3);
            for plan in plans {
                assert!(plan.contains("deliveries_finished_updated_at"), "{plan}");
            }
        }
    }
}
