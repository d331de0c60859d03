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

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use diesel::backend::Backend;
use diesel::connection::SimpleConnection;
use diesel::dsl::{case_when, count_star, min};
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Nullable, Text};
use webhooks_domain::{
    Attempt, AttemptRecord, Delivery, DeliveryDetail, DeliveryId, DeliveryJob, DeliveryQueue,
    DeliveryStatus, EndpointHealth, Event, EventId, GroupId, NextStep, QueueDepth, RateLimit,
    RepositoryError, Requeue, SealedSecret, UnixMillis, WebhookId, WebhookStatus,
};

use crate::database::{bookkeeping_transaction, storage_error, Database, DbConnection};
use crate::schema::{attempts, deliveries, events, webhooks};

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

/// Delivery ids of this process, in order: the log lists newest first by id,
/// and ULIDs made within one millisecond sort at random unless one
/// generator makes them all.
static DELIVERY_IDS: Mutex<ulid::Generator> = Mutex::new(ulid::Generator::new());

pub(crate) fn new_delivery_id() -> DeliveryId {
    let mut generator = DELIVERY_IDS.lock().unwrap_or_else(PoisonError::into_inner);
    // Overflow needs 2^80 ids in one millisecond; fall back to a plain ULID.
    let ulid = generator.generate().unwrap_or_else(|_| ulid::Ulid::new());
    DeliveryId::from_ulid(ulid)
}

/// A new `deliveries` row, as publishing inserts it.
#[derive(Debug, Insertable)]
#[diesel(table_name = deliveries)]
// Bind `None` as NULL rather than emit `DEFAULT`, which SQLite's VALUES lacks.
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct NewDeliveryRow {
    pub(crate) id: String,
    pub(crate) event_id: String,
    pub(crate) webhook_id: String,
    pub(crate) group_id: i64,
    pub(crate) status: String,
    pub(crate) attempt_count: i64,
    pub(crate) next_attempt_at: Option<i64>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

impl NewDeliveryRow {
    /// A pending delivery of `event` to the webhook, due when the event was created.
    pub(crate) fn due_at_once(id: DeliveryId, event: &Event, webhook_id: String) -> Self {
        let created_at = event.created_at.as_millis();
        Self {
            id: id.as_str().to_owned(),
            event_id: event.id.as_str().to_owned(),
            webhook_id,
            group_id: event.group_id.get(),
            status: DeliveryStatus::Pending.as_str().to_owned(),
            attempt_count: 0,
            next_attempt_at: Some(created_at),
            created_at,
            updated_at: created_at,
        }
    }
}

/// The columns of a [`DeliveryRow`]: the delivery and its event's type.
type DeliveryColumns = (
    deliveries::id,
    deliveries::event_id,
    events::event_type,
    deliveries::webhook_id,
    deliveries::group_id,
    deliveries::status,
    deliveries::attempt_count,
    deliveries::next_attempt_at,
    deliveries::created_at,
    deliveries::updated_at,
);

const DELIVERY_COLUMNS: DeliveryColumns = (
    deliveries::id,
    deliveries::event_id,
    events::event_type,
    deliveries::webhook_id,
    deliveries::group_id,
    deliveries::status,
    deliveries::attempt_count,
    deliveries::next_attempt_at,
    deliveries::created_at,
    deliveries::updated_at,
);

/// A delivery as the log shows it, read from `deliveries` joined with `events`.
#[derive(Debug, Queryable)]
struct DeliveryRow {
    id: String,
    event_id: String,
    event_type: String,
    webhook_id: String,
    group_id: i64,
    status: String,
    attempt_count: i64,
    next_attempt_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl DeliveryRow {
    /// Parses the row back through the domain's constructors.
    fn into_delivery(self) -> Result<Delivery, RepositoryError> {
        // Name the row and the column, never the value: the error is logged.
        let corrupt =
            |what: &str| RepositoryError::Corrupt(format!("delivery {}: {what}", self.id));
        Ok(Delivery {
            id: DeliveryId::parse(&self.id).ok_or_else(|| corrupt("malformed id"))?,
            event_id: EventId::parse(&self.event_id)
                .ok_or_else(|| corrupt("malformed event_id"))?,
            event_type: self.event_type.clone(),
            webhook_id: WebhookId::parse(&self.webhook_id)
                .ok_or_else(|| corrupt("malformed webhook_id"))?,
            group_id: GroupId::new(self.group_id).map_err(|_| corrupt("invalid group_id"))?,
            status: DeliveryStatus::parse(&self.status).ok_or_else(|| corrupt("unknown status"))?,
            attempt_count: u32::try_from(self.attempt_count)
                .map_err(|_| corrupt("invalid attempt_count"))?,
            next_attempt_at: self.next_attempt_at.map(UnixMillis),
            created_at: UnixMillis(self.created_at),
            updated_at: UnixMillis(self.updated_at),
        })
    }
}

/// An `attempts` row.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = attempts)]
// Bind `None` as NULL rather than emit `DEFAULT`, which SQLite's VALUES lacks.
#[diesel(treat_none_as_default_value = false)]
struct AttemptRow {
    delivery_id: String,
    number: i64,
    attempted_at: i64,
    duration_ms: i64,
    response_status: Option<i64>,
    response_body: Option<String>,
    error: Option<String>,
}

impl AttemptRow {
    fn from_attempt(attempt: &Attempt) -> Self {
        Self {
            delivery_id: attempt.delivery_id.as_str().to_owned(),
            number: i64::from(attempt.number),
            attempted_at: attempt.attempted_at.as_millis(),
            duration_ms: attempt.duration_ms,
            response_status: attempt.response_status.map(i64::from),
            response_body: attempt.response_body.clone(),
            error: attempt.error.clone(),
        }
    }

    fn into_attempt(self) -> Result<Attempt, RepositoryError> {
        let corrupt = |what: &str| {
            RepositoryError::Corrupt(format!(
                "attempt {} of delivery {}: {what}",
                self.number, self.delivery_id
            ))
        };
        Ok(Attempt {
            delivery_id: DeliveryId::parse(&self.delivery_id)
                .ok_or_else(|| corrupt("malformed delivery_id"))?,
            number: u32::try_from(self.number).map_err(|_| corrupt("invalid number"))?,
            attempted_at: UnixMillis(self.attempted_at),
            duration_ms: self.duration_ms,
            response_status: self
                .response_status
                .map(u16::try_from)
                .transpose()
                .map_err(|_| corrupt("invalid response_status"))?,
            response_body: self.response_body,
            error: self.error,
        })
    }
}

/// A claimed delivery with its event and webhook, as a worker needs it.
#[derive(Debug, Queryable, QueryableByName)]
struct JobRow {
    #[diesel(sql_type = Text)]
    delivery_id: String,
    #[diesel(sql_type = Text)]
    event_id: String,
    #[diesel(sql_type = BigInt)]
    attempt_count: i64,
    #[diesel(sql_type = Text)]
    payload: String,
    #[diesel(sql_type = Text)]
    webhook_id: String,
    #[diesel(sql_type = Text)]
    url: String,
    #[diesel(sql_type = Text)]
    secret: String,
    #[diesel(sql_type = Nullable<Text>)]
    previous_secret: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    previous_secret_expires_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    rate_limit: Option<i64>,
    #[diesel(sql_type = BigInt)]
    created_at: i64,
}

impl JobRow {
    /// Parses the row back through the domain's constructors; the previous
    /// secret comes along only while it still signs at `now`.
    fn into_job(self, now: UnixMillis) -> Result<DeliveryJob, RepositoryError> {
        let corrupt =
            |what: &str| RepositoryError::Corrupt(format!("delivery {}: {what}", self.delivery_id));
        let previous_secret = match (self.previous_secret, self.previous_secret_expires_at) {
            (Some(secret), Some(expires_at)) if expires_at > now.as_millis() => {
                Some(SealedSecret::from_stored(secret))
            }
            _ => None,
        };
        Ok(DeliveryJob {
            delivery_id: DeliveryId::parse(&self.delivery_id)
                .ok_or_else(|| corrupt("malformed id"))?,
            event_id: EventId::parse(&self.event_id)
                .ok_or_else(|| corrupt("malformed event_id"))?,
            attempts_made: u32::try_from(self.attempt_count)
                .map_err(|_| corrupt("invalid attempt_count"))?,
            payload: self.payload,
            webhook_id: WebhookId::parse(&self.webhook_id)
                .ok_or_else(|| corrupt("malformed webhook_id"))?,
            url: self.url,
            secret: SealedSecret::from_stored(self.secret),
            previous_secret,
            rate_limit: self
                .rate_limit
                .map(RateLimit::new)
                .transpose()
                .map_err(|_| corrupt("invalid rate_limit of its webhook"))?,
            created_at: UnixMillis(self.created_at),
        })
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
                bookkeeping_transaction(connection, |connection| {
                    let sqlite = match connection {
                        DbConnection::Postgres(postgres) => {
                            return claim_on_postgres(postgres, now, limit, lease_until, &exclude)
                                .map_err(storage_error);
                        }
                        DbConnection::Sqlite(sqlite) => sqlite,
                    };
                    let claimed = select_due_for_claim_on_sqlite(sqlite, now, limit, &exclude)
                        .map_err(storage_error)?;
                    if claimed.is_empty() {
                        return Ok(Vec::new());
                    }
                    diesel::update(deliveries::table.filter(deliveries::id.eq_any(&claimed)))
                        .set((
                            deliveries::next_attempt_at.eq(Some(lease_until.as_millis())),
                            deliveries::leased_until.eq(Some(lease_until.as_millis())),
                            deliveries::updated_at.eq(now.as_millis()),
                        ))
                        .execute(sqlite)
                        .map_err(storage_error)?;
                    let mut rows = deliveries::table
                        .inner_join(events::table)
                        .inner_join(webhooks::table)
                        .filter(deliveries::id.eq_any(&claimed))
                        .select((
                            deliveries::id,
                            deliveries::event_id,
                            deliveries::attempt_count,
                            events::payload,
                            deliveries::webhook_id,
                            webhooks::url,
                            webhooks::secret,
                            webhooks::previous_secret,
                            webhooks::previous_secret_expires_at,
                            webhooks::rate_limit,
                            deliveries::created_at,
                        ))
                        .load::<JobRow>(sqlite)
                        .map_err(storage_error)?;
                    rows.sort_by_key(|row| claimed.iter().position(|id| *id == row.delivery_id));
                    Ok(rows)
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
    /// webhook) leaves nothing to record.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<(), RepositoryError> {
        if records.is_empty() {
            return Ok(());
        }
        let records = records.to_vec();
        self.db
            .run(move |connection| {
                bookkeeping_transaction(connection, |connection| {
                    record_batch(connection, &records).map_err(storage_error)
                })
            })
            .await
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
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .run(move |connection| {
                let mut query = deliveries::table
                    .inner_join(events::table)
                    .filter(deliveries::webhook_id.eq(webhook))
                    .select(DELIVERY_COLUMNS)
                    .order_by(deliveries::id.desc())
                    .limit(limit)
                    .into_boxed();
                if let Some(status) = status {
                    query = query.filter(deliveries::status.eq(status.as_str()));
                }
                if let Some(before) = before {
                    query = query.filter(deliveries::id.lt(before.as_str().to_owned()));
                }
                query
                    .load::<DeliveryRow>(connection)
                    .map_err(storage_error)?
                    .into_iter()
                    .map(DeliveryRow::into_delivery)
                    .collect()
            })
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
                let waiting = deliveries::table
                    .inner_join(webhooks::table)
                    .filter(deliveries::status.eq(DeliveryStatus::Pending.as_str()))
                    .filter(webhooks::status.eq(WebhookStatus::Enabled.as_str()));
                let (due, oldest_due_at) = waiting
                    .filter(deliveries::next_attempt_at.le(now.as_millis()))
                    .select((count_star(), min(deliveries::next_attempt_at)))
                    .get_result::<(i64, Option<i64>)>(connection)
                    .map_err(storage_error)?;
                let scheduled = waiting
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

/// The statements of [`DeliveryQueue::record_attempts`], in its transaction.
fn record_batch(connection: &mut DbConnection, records: &[AttemptRecord]) -> QueryResult<()> {
    let ids: Vec<&str> = records
        .iter()
        .map(|record| record.attempt.delivery_id.as_str())
        .collect();
    let webhook_of: HashMap<String, String> = deliveries::table
        .filter(deliveries::id.eq_any(&ids))
        .select((deliveries::id, deliveries::webhook_id))
        .load::<(String, String)>(connection)?
        .into_iter()
        .collect();
    let records: Vec<(&AttemptRecord, &str)> = records
        .iter()
        .filter_map(|record| {
            let webhook = webhook_of.get(record.attempt.delivery_id.as_str())?;
            Some((record, webhook.as_str()))
        })
        .collect();
    if records.is_empty() {
        return Ok(());
    }
    let rows: Vec<AttemptRow> = records
        .iter()
        .map(|(record, _)| AttemptRow::from_attempt(&record.attempt))
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        insert_attempts_once(connection, chunk)?;
    }
    // The last record of a delivery decides where it stands.
    let mut outcomes: Vec<DeliveryOutcome> = Vec::with_capacity(records.len());
    let mut position: HashMap<&str, usize> = HashMap::with_capacity(records.len());
    for (record, _) in &records {
        let outcome = DeliveryOutcome::of(record);
        match position.get(outcome.id.as_str()) {
            Some(&at) => outcomes[at] = outcome,
            None => {
                position.insert(record.attempt.delivery_id.as_str(), outcomes.len());
                outcomes.push(outcome);
            }
        }
    }
    for chunk in outcomes.chunks(ROWS_PER_STATEMENT) {
        update_deliveries(connection, chunk)?;
    }
    // Healthy webhooks are collected and cleared in one statement; a
    // webhook's other news applies in order after its earlier successes.
    let mut healthy: Vec<&str> = Vec::new();
    for (record, webhook) in &records {
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
                apply_health(connection, webhook, health, attempted_at)?;
            }
        }
    }
    if !healthy.is_empty() {
        end_failure_streaks(connection, &healthy)?;
    }
    Ok(())
}

/// Rows per multi-row statement: 7 bound values each stays far below the
/// bind limits of both backends (65,535 and 32,766).
const ROWS_PER_STATEMENT: usize = 500;

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

/// One `UPDATE … FROM` a list of values for all the deliveries (both
/// backends have it; SQLite since 3.33).
fn update_deliveries(
    connection: &mut DbConnection,
    outcomes: &[DeliveryOutcome],
) -> QueryResult<()> {
    let postgres = matches!(connection, DbConnection::Postgres(_));
    let mut next = 0;
    let mut mark = || {
        next += 1;
        if postgres {
            format!("${next}")
        } else {
            "?".to_owned()
        }
    };
    let values: Vec<String> = outcomes
        .iter()
        .map(|_| {
            format!(
                "({}, {}, CAST({} AS BIGINT), CAST({} AS BIGINT), CAST({} AS BIGINT))",
                mark(),
                mark(),
                mark(),
                mark(),
                mark()
            )
        })
        .collect();
    let sql = format!(
        "WITH outcome(id, status, attempt_count, next_attempt_at, updated_at) AS (VALUES {}) \
         UPDATE deliveries SET status = outcome.status, attempt_count = outcome.attempt_count, \
         next_attempt_at = outcome.next_attempt_at, leased_until = NULL, \
         updated_at = outcome.updated_at \
         FROM outcome WHERE deliveries.id = outcome.id",
        values.join(", ")
    );
    match connection {
        DbConnection::Postgres(postgres) => {
            bind_outcomes(diesel::sql_query(sql).into_boxed(), outcomes).execute(postgres)
        }
        DbConnection::Sqlite(sqlite) => {
            bind_outcomes(diesel::sql_query(sql).into_boxed(), outcomes).execute(sqlite)
        }
    }
    .map(drop)
}

/// Binds the values of [`update_deliveries`], five per delivery, in order.
fn bind_outcomes<'q, DB>(
    mut query: BoxedSqlQuery<'q, DB, SqlQuery>,
    outcomes: &[DeliveryOutcome],
) -> BoxedSqlQuery<'q, DB, SqlQuery>
where
    DB: Backend + HasSqlType<Text> + HasSqlType<BigInt> + HasSqlType<Nullable<BigInt>>,
    String: ToSql<Text, DB>,
    &'static str: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
    Option<i64>: ToSql<Nullable<BigInt>, DB>,
{
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
    diesel::update(
        webhooks::table
            .filter(webhooks::id.eq_any(webhook_ids))
            .filter(webhooks::failing_since.is_not_null()),
    )
    .set(webhooks::failing_since.eq(None::<i64>))
    .execute(connection)
    .map(drop)
}

/// Applies what an attempt says about its webhook's health.
fn apply_health(
    connection: &mut DbConnection,
    webhook: &str,
    health: EndpointHealth,
    attempted_at: i64,
) -> QueryResult<()> {
    let this_webhook = || webhooks::table.filter(webhooks::id.eq(webhook));
    let disable = (
        webhooks::status.eq(WebhookStatus::Disabled.as_str()),
        webhooks::updated_at.eq(attempted_at),
    );
    let enabled = webhooks::status.eq(WebhookStatus::Enabled.as_str());
    match health {
        EndpointHealth::Healthy => end_failure_streaks(connection, &[webhook])?,
        EndpointHealth::Failing {
            disable_if_failing_since,
        } => {
            diesel::update(this_webhook().filter(webhooks::failing_since.is_null()))
                .set(webhooks::failing_since.eq(Some(attempted_at)))
                .execute(connection)?;
            diesel::update(
                this_webhook()
                    .filter(enabled)
                    .filter(webhooks::failing_since.le(disable_if_failing_since.as_millis())),
            )
            .set(disable)
            .execute(connection)?;
        }
        EndpointHealth::Gone => {
            diesel::update(this_webhook().filter(enabled))
                .set(disable)
                .execute(connection)?;
        }
        EndpointHealth::Unchanged => {}
    }
    Ok(())
}

/// Inserts the attempts in one statement, each unless its number is already
/// stored for its delivery (an earlier row of the same statement included).
/// Both backends say `ON CONFLICT DO NOTHING`, but Diesel's multi-backend
/// connection cannot express it, so the same statement is built for each.
fn insert_attempts_once(connection: &mut DbConnection, rows: &[AttemptRow]) -> QueryResult<()> {
    match connection {
        DbConnection::Postgres(postgres) => diesel::insert_into(attempts::table)
            .values(rows)
            .on_conflict_do_nothing()
            .execute(postgres),
        DbConnection::Sqlite(sqlite) => diesel::insert_into(attempts::table)
            .values(rows)
            .on_conflict_do_nothing()
            .execute(sqlite),
    }
    .map(drop)
}

#[derive(Debug, QueryableByName)]
struct ClaimedId {
    #[diesel(sql_type = Text)]
    id: String,
}

/// The placeholders of the excluded webhook ids, one each (`$3, $4, …` on
/// PostgreSQL from `first`, `?` on SQLite), as a condition on `d.webhook_id`;
/// an empty list excludes nothing.
fn excluded_webhooks(count: usize, first: Option<usize>) -> String {
    if count == 0 {
        return String::new();
    }
    let marks: Vec<String> = (0..count)
        .map(|n| match first {
            Some(first) => format!("${}", first + n),
            None => "?".to_owned(),
        })
        .collect();
    format!(" AND d.webhook_id NOT IN ({})", marks.join(", "))
}

/// The claim on PostgreSQL, in one statement: picks up to `limit` pending
/// deliveries due at `now` whose webhook is enabled, oldest due first,
/// locking them and skipping those another claim holds (`FOR UPDATE OF d
/// SKIP LOCKED`: the delivery rows only, so webhook rows stay free for rate
/// slots and health), so any number of processes claim side by side without
/// waiting for or overlapping each other; moves them to the end of the
/// lease; and answers what sending needs, in the order picked.
fn claim_on_postgres(
    connection: &mut PgConnection,
    now: UnixMillis,
    limit: i64,
    lease_until: UnixMillis,
    exclude: &[String],
) -> QueryResult<Vec<JobRow>> {
    let sql = format!(
        "WITH picked AS ( \
           SELECT d.id, d.next_attempt_at AS due FROM deliveries d \
           JOIN webhooks w ON w.id = d.webhook_id \
           WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND w.status = 'enabled'{} \
           ORDER BY d.next_attempt_at, d.id LIMIT $2 FOR UPDATE OF d SKIP LOCKED \
         ), claimed AS ( \
           UPDATE deliveries d SET next_attempt_at = $3, leased_until = $3, updated_at = $1 \
           FROM picked \
           WHERE d.id = picked.id \
           RETURNING d.id, d.event_id, d.attempt_count, d.webhook_id, d.created_at \
         ) \
         SELECT c.id AS delivery_id, c.event_id, c.attempt_count, e.payload, c.webhook_id, \
           w.url, w.secret, w.previous_secret, w.previous_secret_expires_at, w.rate_limit, \
           c.created_at \
         FROM claimed c JOIN picked p ON p.id = c.id \
         JOIN events e ON e.id = c.event_id JOIN webhooks w ON w.id = c.webhook_id \
         ORDER BY p.due, p.id",
        excluded_webhooks(exclude.len(), Some(4))
    );
    let mut query = diesel::sql_query(sql)
        .bind::<BigInt, _>(now.as_millis())
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(lease_until.as_millis())
        .into_boxed::<diesel::pg::Pg>();
    for id in exclude {
        query = query.bind::<Text, _>(id.clone());
    }
    query.load::<JobRow>(connection)
}

/// Picks up to `limit` pending deliveries due at `now` whose webhook is
/// enabled, oldest due first, for a claim on SQLite. SQLite has no row
/// locks: the `BEGIN IMMEDIATE` transaction around the claim makes claimers
/// take turns.
fn select_due_for_claim_on_sqlite(
    connection: &mut SqliteConnection,
    now: UnixMillis,
    limit: i64,
    exclude: &[String],
) -> QueryResult<Vec<String>> {
    let sql = format!(
        "SELECT d.id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND w.status = 'enabled'{} \
         ORDER BY d.next_attempt_at, d.id \
         LIMIT ?",
        excluded_webhooks(exclude.len(), None)
    );
    // SQLite numbers `?` in order: the excluded ids come before LIMIT.
    let mut query = diesel::sql_query(sql)
        .bind::<BigInt, _>(now.as_millis())
        .into_boxed::<diesel::sqlite::Sqlite>();
    for id in exclude {
        query = query.bind::<Text, _>(id.clone());
    }
    let picked = query
        .bind::<BigInt, _>(limit)
        .load::<ClaimedId>(connection)?;
    Ok(picked.into_iter().map(|row| row.id).collect())
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
