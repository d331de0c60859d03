//! Retention's deletes: finished deliveries with their attempts, and events
//! of which no delivery remains, behind [`RetentionStore`].
//!
//! Each chunk picks its rows, then deletes them, in one transaction.
//! Locks: PostgreSQL picks them `FOR UPDATE SKIP LOCKED`, skipping the
//! rows another transaction holds, so a concurrent pruner takes other rows
//! and a manual retry waits for the chunk, then finds none; SQLite has no
//! row locks, and its `BEGIN IMMEDIATE` transaction makes writers take turns.

use async_trait::async_trait;
use diesel::dsl::{exists, min, not};
use diesel::prelude::*;
use webhooks_domain::{
    DeliveryStatus, OldestKept, PrunedDeliveries, RepositoryError, RetentionStore, UnixMillis,
};

use crate::database::{bookkeeping_transaction, storage_error, Database, DbConnection};
use crate::schema::{attempts, deliveries, events};
use crate::statements::ROWS_PER_PRUNE;

/// The finished statuses: only these are ever pruned.
const FINISHED: [&str; 2] = [
    DeliveryStatus::Succeeded.as_str(),
    DeliveryStatus::Failed.as_str(),
];

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
    /// them.
    /// At most [`ROWS_PER_PRUNE`] deliveries, whatever `limit` asks.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn prune_finished_deliveries(
        &self,
        finished_before: UnixMillis,
        limit: usize,
    ) -> Result<PrunedDeliveries, RepositoryError> {
        let limit = i64::try_from(limit.min(ROWS_PER_PRUNE)).unwrap_or(0);
        self.db
            .run(move |connection| {
                bookkeeping_transaction(connection, |connection| {
                    prune_finished(connection, finished_before, limit).map_err(storage_error)
                })
            })
            .await
    }

    /// One transaction: picks the events, then deletes them; at most
    /// [`ROWS_PER_PRUNE`], whatever `limit` asks.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn prune_events(
        &self,
        accepted_before: UnixMillis,
        limit: usize,
    ) -> Result<u64, RepositoryError> {
        let limit = i64::try_from(limit.min(ROWS_PER_PRUNE)).unwrap_or(0);
        let deleted = self
            .db
            .run(move |connection| {
                bookkeeping_transaction(connection, |connection| {
                    prune_orphan_events(connection, accepted_before, limit).map_err(storage_error)
                })
            })
            .await?;
        Ok(u64::try_from(deleted).unwrap_or(0))
    }

    /// One index lookup per finished status (`status, updated_at`) and one
    /// for events (`created_at`).
    /// Errors: [`RepositoryError::Unavailable`].
    async fn oldest_kept(&self) -> Result<OldestKept, RepositoryError> {
        self.db
            .run(move |connection| {
                let mut finished_delivery: Option<i64> = None;
                for status in FINISHED {
                    let oldest = deliveries::table
                        .filter(deliveries::status.eq(status))
                        .select(min(deliveries::updated_at))
                        .get_result::<Option<i64>>(connection)
                        .map_err(storage_error)?;
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

/// Picks, then deletes the attempts and the deliveries picked.
fn prune_finished(
    connection: &mut DbConnection,
    finished_before: UnixMillis,
    limit: i64,
) -> QueryResult<PrunedDeliveries> {
    let query = finished(finished_before.as_millis(), limit);
    // The backends differ only here: see the module comment on locks.
    let picked: Vec<String> = match connection {
        DbConnection::Postgres(postgres) => query.for_update().skip_locked().load(postgres)?,
        DbConnection::Sqlite(sqlite) => query.load(sqlite)?,
    };
    if picked.is_empty() {
        return Ok(PrunedDeliveries::default());
    }
    let attempts = diesel::delete(attempts::table.filter(attempts::delivery_id.eq_any(&picked)))
        .execute(connection)?;
    let deliveries = diesel::delete(deliveries::table.filter(deliveries::id.eq_any(&picked)))
        .execute(connection)?;
    Ok(PrunedDeliveries {
        deliveries: u64::try_from(deliveries).unwrap_or(0),
        attempts: u64::try_from(attempts).unwrap_or(0),
    })
}

/// Picks, then deletes the events picked.
fn prune_orphan_events(
    connection: &mut DbConnection,
    accepted_before: UnixMillis,
    limit: i64,
) -> QueryResult<usize> {
    let query = orphan_events(accepted_before.as_millis(), limit);
    // The backends differ only here: see the module comment on locks.
    let picked: Vec<String> = match connection {
        DbConnection::Postgres(postgres) => query.for_update().skip_locked().load(postgres)?,
        DbConnection::Sqlite(sqlite) => query.load(sqlite)?,
    };
    if picked.is_empty() {
        return Ok(0);
    }
    diesel::delete(events::table.filter(events::id.eq_any(&picked))).execute(connection)
}

/// Up to `limit` ids of deliveries that finished before `before`, in no
/// particular order (an order would sort every old row per chunk).
#[diesel::dsl::auto_type]
fn finished(before: i64, limit: i64) -> _ {
    let statuses: [&'static str; 2] = FINISHED;
    deliveries::table
        .filter(deliveries::status.eq_any(statuses))
        .filter(deliveries::updated_at.lt(before))
        .select(deliveries::id)
        .limit(limit)
}

/// Up to `limit` ids of events accepted before `before` of which no delivery
/// remains. A delivery is only ever stored with its event, in the event's
/// transaction, so such an event never gains one.
#[diesel::dsl::auto_type]
fn orphan_events(before: i64, limit: i64) -> _ {
    events::table
        .filter(events::created_at.lt(before))
        .filter(not(exists(
            deliveries::table.filter(deliveries::event_id.eq(events::id)),
        )))
        .select(events::id)
        .limit(limit)
}
