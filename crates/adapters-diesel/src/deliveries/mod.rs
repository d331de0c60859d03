//! The delivery queue and log: the `deliveries` and `attempts` tables behind
//! [`DeliveryQueue`].
//!
//! The queue is the table itself. A pending delivery is due once its
//! `next_attempt_at` has passed; a claim moves `next_attempt_at` to the end of
//! the claim's lease, so the claimed delivery is hidden from other claims
//! while it is being sent, and due again if its worker dies. The claim also
//! writes the lease's end into `leased_until`, which recording the attempt or
//! handing the delivery back clears: a manual retry checks it, since a
//! scheduled retry puts `next_attempt_at` in the future too.

use async_trait::async_trait;
use diesel::connection::SimpleConnection;
use diesel::dsl::{case_when, count_star, min, sql};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use webhooks_domain::{
    AttemptRecord, Delivery, DeliveryDetail, DeliveryId, DeliveryJob, DeliveryQueue,
    DeliveryStatus, OperationalEvent, QueueDepth, RepositoryError, Requeue, StatsWindow,
    UnixMillis, WebhookId, WebhookStatus, WindowActivity,
};

use crate::batching::record_batch;
use crate::database::{
    bookkeeping_transaction, claim_transaction, record_transaction, storage_error, Database,
    DbConnection,
};
use crate::schema::{attempts, deliveries, events, webhooks};

mod claim;
#[cfg(feature = "testing")]
pub(crate) use claim::explain_claim_unordered;
mod log;
mod rows;
mod stats;

use log::log_page;
pub(crate) use rows::{new_delivery_id, AttemptRow, JobRow, NewDeliveryRow};
use rows::{DeliveryRow, DELIVERY_COLUMNS};

/// The PostgreSQL channel notified when deliveries become due now.
pub const DELIVERIES_CHANNEL: &str = "webhooks_deliveries";

/// The queue and log of deliveries in PostgreSQL or SQLite, whichever
/// [`Database`] points at. Any number of processes may share one PostgreSQL
/// database; on SQLite, claims of one file take turns.
#[derive(Debug, Clone)]
pub struct DieselDeliveryQueue {
    db: Database,
}

impl DieselDeliveryQueue {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl DeliveryQueue for DieselDeliveryQueue {
    /// One write transaction: picks the due deliveries (see
    /// `claim_on_postgres` and `select_due_for_claim_on_sqlite`), moves
    /// their `next_attempt_at` to `lease_until`, and reads what sending
    /// needs, in the order picked. A
    /// row that no longer parses is logged and left claimed rather than
    /// failing the whole claim, so it cannot block the queue: it comes back
    /// after its lease, and is logged again.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn claim_due(
        &self,
        now: UnixMillis,
        limit: usize,
        lease_until: UnixMillis,
        exclude: &[WebhookId],
    ) -> Result<Vec<DeliveryJob>, RepositoryError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let exclude: Vec<String> = exclude.iter().map(|id| id.as_str().to_owned()).collect();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .db
            .run(move |connection| {
                claim_transaction(connection, |connection| {
                    claim::claim(connection, now, limit, lease_until, &exclude)
                        .map_err(storage_error)
                })
            })
            .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in rows {
            match row.into_job(now) {
                Ok(job) => jobs.push(job),
                Err(error) => tracing::error!(%error, "cannot send a claimed delivery"),
            }
        }
        Ok(jobs)
    }

    /// One write transaction for the whole batch, in a constant number of
    /// statements: stores the attempts (a second record of the same attempt
    /// number, say after a lease ran out mid-send, keeps the first), sets
    /// each delivery's attempt count, status and next attempt (the last
    /// record of a delivery wins), and applies each `health` to its webhook
    /// in order: `Healthy` ends the failure streak; `Failing` starts one at
    /// the attempt unless one runs, and disables the webhook when the streak
    /// began at or before `disable_if_failing_since`; `Gone` disables it;
    /// `Unchanged` leaves it as it is. A delivery deleted meanwhile (with its
    /// webhook) leaves nothing to record. The statements are in the
    /// `batching` module.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<(), RepositoryError> {
        if records.is_empty() {
            return Ok(());
        }
        let records = records.to_vec();
        let recorded = self
            .db
            .run(move |connection| {
                record_transaction(connection, |connection| record_batch(connection, &records))
            })
            .await?;
        OperationalEvent::count_sent(&recorded.announced);
        if recorded.disabled {
            self.db.webhook_status_changed();
        }
        Ok(())
    }

    /// Only a pending delivery moves; one that was meanwhile recorded final
    /// stays final.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn release(&self, delivery: &DeliveryId, at: UnixMillis) -> Result<(), RepositoryError> {
        self.release_many(std::slice::from_ref(delivery), at).await
    }

    /// One `UPDATE` for them all, in a bookkeeping transaction; final
    /// deliveries stay as they are.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn release_many(
        &self,
        deliveries: &[DeliveryId],
        at: UnixMillis,
    ) -> Result<(), RepositoryError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = deliveries.iter().map(|id| id.as_str().to_owned()).collect();
        self.db
            .run(move |connection| {
                // Bookkeeping: planned for the queue as it is now (see there).
                bookkeeping_transaction(connection, |connection| {
                    diesel::update(
                        deliveries::table
                            .filter(deliveries::id.eq_any(ids))
                            .filter(deliveries::status.eq(DeliveryStatus::Pending.as_str())),
                    )
                    .set((
                        deliveries::next_attempt_at.eq(Some(at.as_millis())),
                        deliveries::leased_until.eq(None::<i64>),
                    ))
                    .execute(connection)
                    .map(drop)
                    .map_err(storage_error)
                })
            })
            .await
    }

    async fn defer_webhook(
        &self,
        webhook: &WebhookId,
        until: UnixMillis,
    ) -> Result<u64, RepositoryError> {
        let webhook = webhook.as_str().to_owned();
        self.db
            .run(move |connection| {
                bookkeeping_transaction(connection, |connection| {
                    diesel::update(
                        deliveries::table
                            .filter(deliveries::webhook_id.eq(webhook))
                            .filter(deliveries::status.eq(DeliveryStatus::Pending.as_str()))
                            .filter(deliveries::next_attempt_at.lt(until.as_millis())),
                    )
                    .set(deliveries::next_attempt_at.eq(Some(until.as_millis())))
                    .execute(connection)
                    .map(|moved| u64::try_from(moved).unwrap_or(0))
                    .map_err(storage_error)
                })
            })
            .await
    }

    /// One `UPDATE` that takes the slot or changes nothing: a window older
    /// than `second` starts over at 1; the current window counts up while
    /// below `per_second`. Both backends apply an `UPDATE` to a row one
    /// writer at a time (PostgreSQL re-checks the condition on the row a
    /// concurrent writer left), so processes never overbook a window.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn take_rate_slot(
        &self,
        webhook: &WebhookId,
        second: i64,
        per_second: u32,
    ) -> Result<bool, RepositoryError> {
        let webhook = webhook.as_str().to_owned();
        let per_second = i64::from(per_second);
        self.db
            .run(move |connection| {
                let new_window = webhooks::rate_window
                    .is_null()
                    .or(webhooks::rate_window.lt(second));
                let taken = diesel::update(
                    webhooks::table
                        .filter(webhooks::id.eq(webhook))
                        .filter(new_window.or(webhooks::rate_count.lt(per_second).nullable())),
                )
                .set((
                    webhooks::rate_window
                        .eq(case_when(new_window, Some(second)).otherwise(webhooks::rate_window)),
                    webhooks::rate_count.eq(case_when::<_, _, BigInt>(new_window, 1_i64)
                        .otherwise(webhooks::rate_count + 1_i64)),
                ))
                .execute(connection)
                .map_err(storage_error)?;
                Ok(taken > 0)
            })
            .await
    }

    /// Newest first by id: delivery ids are ULIDs, which sort by creation.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn list(
        &self,
        webhook: &WebhookId,
        status: Option<DeliveryStatus>,
        before: Option<DeliveryId>,
        limit: usize,
    ) -> Result<Vec<Delivery>, RepositoryError> {
        let webhook = webhook.as_str().to_owned();
        self.db
            .run(move |connection| log_page(connection, webhook, status, before, limit))
            .await
    }

    /// `None` when the delivery is unknown or belongs to another webhook.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find(
        &self,
        webhook: &WebhookId,
        delivery: &DeliveryId,
    ) -> Result<Option<DeliveryDetail>, RepositoryError> {
        let webhook = webhook.as_str().to_owned();
        let delivery = delivery.as_str().to_owned();
        self.db
            .run(move |connection| {
                let found = deliveries::table
                    .inner_join(events::table)
                    .filter(deliveries::webhook_id.eq(webhook))
                    .filter(deliveries::id.eq(&delivery))
                    .select((DELIVERY_COLUMNS, events::payload))
                    .first::<(DeliveryRow, String)>(connection)
                    .optional()
                    .map_err(storage_error)?;
                let Some((row, payload)) = found else {
                    return Ok(None);
                };
                let attempts = attempts::table
                    .filter(attempts::delivery_id.eq(&delivery))
                    .order_by(attempts::number.asc())
                    .select(AttemptRow::as_select())
                    .load(connection)
                    .map_err(storage_error)?
                    .into_iter()
                    .map(AttemptRow::into_attempt)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(DeliveryDetail {
                    delivery: row.into_delivery()?,
                    payload,
                    attempts,
                }))
            })
            .await
    }

    /// The attempt count stays (the next attempt continues the numbering),
    /// so a failed delivery retried by hand gets one more attempt.
    ///
    /// One conditional `UPDATE` decides: it applies only while no lease runs
    /// past `now`. Both backends apply an `UPDATE` to a row one writer at a
    /// time, and PostgreSQL re-checks the condition on the row a concurrent
    /// claim or record left, so a retry never slips in beside a claim. When
    /// it changed nothing, a read tells an unknown delivery from one in
    /// flight (a lease that ended in between answers "in flight" once more:
    /// the caller may simply ask again).
    /// Errors: [`RepositoryError::Unavailable`].
    async fn requeue(
        &self,
        webhook: &WebhookId,
        delivery: &DeliveryId,
        now: UnixMillis,
    ) -> Result<Requeue, RepositoryError> {
        let webhook = webhook.as_str().to_owned();
        let delivery = delivery.as_str().to_owned();
        self.db
            .run(move |connection| {
                let this_delivery = || {
                    deliveries::table
                        .filter(deliveries::webhook_id.eq(&webhook))
                        .filter(deliveries::id.eq(&delivery))
                };
                let not_leased = deliveries::leased_until
                    .is_null()
                    .or(deliveries::leased_until.le(now.as_millis()));
                let requeued = diesel::update(this_delivery().filter(not_leased))
                    .set(due_again(now))
                    .execute(connection)
                    .map_err(storage_error)?;
                if requeued > 0 {
                    announce_new_deliveries(connection).map_err(storage_error)?;
                    return Ok(Requeue::Requeued);
                }
                let exists = this_delivery()
                    .select(deliveries::id)
                    .first::<String>(connection)
                    .optional()
                    .map_err(storage_error)?;
                Ok(match exists {
                    Some(_) => Requeue::InFlight,
                    None => Requeue::NotFound,
                })
            })
            .await
    }

    /// Errors: [`RepositoryError::Unavailable`].
    async fn requeue_failed_since(
        &self,
        webhook: &WebhookId,
        since: UnixMillis,
        now: UnixMillis,
    ) -> Result<u64, RepositoryError> {
        let webhook = webhook.as_str().to_owned();
        self.db
            .run(move |connection| {
                let requeued = diesel::update(
                    deliveries::table
                        .filter(deliveries::webhook_id.eq(webhook))
                        .filter(deliveries::status.eq(DeliveryStatus::Failed.as_str()))
                        .filter(deliveries::created_at.ge(since.as_millis())),
                )
                .set(due_again(now))
                .execute(connection)
                .map_err(storage_error)?;
                if requeued > 0 {
                    announce_new_deliveries(connection).map_err(storage_error)?;
                }
                Ok(requeued as u64)
            })
            .await
    }

    /// Counts the pending deliveries of enabled webhooks only: those are the
    /// work a claim can take. A disabled webhook's deliveries wait, not
    /// counted, until it is enabled again.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn depth(&self, now: UnixMillis) -> Result<QueueDepth, RepositoryError> {
        self.db
            .run(move |connection| {
                // The literal lets the planner use the partial index of
                // pending deliveries (a bound status could not).
                let waiting = || {
                    deliveries::table
                        .inner_join(webhooks::table)
                        .filter(sql::<Bool>("deliveries.status = 'pending'"))
                        .filter(webhooks::status.eq(WebhookStatus::Enabled.as_str()))
                };
                let (due, oldest_due_at) = waiting()
                    .filter(deliveries::next_attempt_at.le(now.as_millis()))
                    .select((count_star(), min(deliveries::next_attempt_at)))
                    .get_result::<(i64, Option<i64>)>(connection)
                    .map_err(storage_error)?;
                let scheduled = waiting()
                    .filter(deliveries::next_attempt_at.gt(now.as_millis()))
                    .select(count_star())
                    .get_result::<i64>(connection)
                    .map_err(storage_error)?;
                Ok(QueueDepth {
                    due: u64::try_from(due).unwrap_or(0),
                    scheduled: u64::try_from(scheduled).unwrap_or(0),
                    oldest_due_at: oldest_due_at.map(UnixMillis),
                })
            })
            .await
    }

    /// See `stats.rs`: two statements, each reading one index range per status.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn window_activity(
        &self,
        webhook: &WebhookId,
        window: StatsWindow,
    ) -> Result<WindowActivity, RepositoryError> {
        let webhook = webhook.as_str().to_owned();
        self.db
            .run(move |connection| stats::window_activity(connection, &webhook, window))
            .await
    }
}

/// The assignments of [`due_again`].
type DueAgain = (
    diesel::dsl::Eq<deliveries::status, &'static str>,
    diesel::dsl::Eq<deliveries::next_attempt_at, Option<i64>>,
    diesel::dsl::Eq<deliveries::leased_until, Option<i64>>,
    diesel::dsl::Eq<deliveries::updated_at, i64>,
);

/// Pending and due at `now`, whatever the delivery's status was, held by no
/// claim.
fn due_again(now: UnixMillis) -> DueAgain {
    (
        deliveries::status.eq(DeliveryStatus::Pending.as_str()),
        deliveries::next_attempt_at.eq(Some(now.as_millis())),
        deliveries::leased_until.eq(None),
        deliveries::updated_at.eq(now.as_millis()),
    )
}

/// Tells every worker process that deliveries are due now.
///
/// - PostgreSQL: `NOTIFY` on [`DELIVERIES_CHANNEL`], which PostgreSQL sends
///   when the transaction commits (never for one rolled back) and merges
///   with the transaction's other notifications.
/// - SQLite: nothing; processes sharing a file share no channel, and the
///   process that made the work wakes its own workers (the domain's `Wakeup`).
pub(crate) fn announce_new_deliveries(connection: &mut DbConnection) -> QueryResult<()> {
    match connection {
        DbConnection::Postgres(postgres) => {
            postgres.batch_execute(&format!("NOTIFY {DELIVERIES_CHANNEL}"))
        }
        DbConnection::Sqlite(_) => Ok(()),
    }
}
