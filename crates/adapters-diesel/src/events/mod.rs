//! Events in: the `events` table and each event's fan-out into `deliveries`,
//! behind [`EventStore`].

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use webhooks_domain::{
    DeliveryId, EnabledEvents, Event, EventId, EventStore, GroupId, IdempotencyKey, PublishOutcome,
    RepositoryError, UnixMillis, WebhookId, WebhookStatus,
};

use crate::database::{storage_error, write_transaction, Database, DbConnection};
use crate::deliveries::{
    announce_new_deliveries, new_delivery_id, NewDeliveryRow, DELIVERIES_CHANNEL,
};
use crate::schema::{deliveries, events, webhooks};
use crate::webhooks::decode_events;

mod group_commit;

use group_commit::GroupCommit;

/// The first key of the PostgreSQL advisory locks taken on idempotency keys
/// (the second is a hash of group and key): "whik" in ASCII. Locks with two
/// keys never meet the one-key lock of the migrations.
const IDEMPOTENCY_LOCK_SPACE: i32 = 0x7768_696b;

/// Stores events and their deliveries in PostgreSQL or SQLite, whichever
/// [`Database`] points at. Clones share one line of waiting publishes (see
/// [`EventStore::publish`]), so a process needs only one store.
///
/// Another Rust service publishes events by linking the domain crate and this
/// one; the service's workers pick the deliveries up from the database:
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use webhooks_adapters_diesel::{Database, DieselEventStore, DieselTenancyRepository};
/// use webhooks_domain::{
///     EventPublisher, EventType, GroupId, NewEvent, RandomIds, SystemClock, Wakeup,
/// };
///
/// let database = Database::connect("postgres://webhooks@db.internal/webhooks", 4)?;
/// let publisher = EventPublisher::new(
///     Arc::new(DieselEventStore::new(database.clone())),
///     Arc::new(DieselTenancyRepository::new(database)),
///     Arc::new(SystemClock),
///     Arc::new(RandomIds::default()),
///     Wakeup::default(),
/// );
/// let mut data = serde_json::Map::new();
/// data.insert("userID".into(), "u_1".into());
/// let outcome = publisher
///     .publish(NewEvent {
///         group_id: GroupId::new(123456)?,
///         event_type: EventType::UserCreated,
///         data,
///         idempotency_key: None,
///     })
///     .await?;
/// println!("{} goes to {} webhooks", outcome.event_id, outcome.deliveries);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DieselEventStore {
    db: Database,
    group_commit: GroupCommit,
}

impl DieselEventStore {
    pub fn new(db: Database) -> Self {
        Self {
            db,
            group_commit: GroupCommit::default(),
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = events)]
// Bind `None` as NULL rather than emit `DEFAULT`, which SQLite's VALUES lacks.
#[diesel(treat_none_as_default_value = false)]
struct EventRow {
    id: String,
    group_id: i64,
    event_type: String,
    payload: String,
    idempotency_key: Option<String>,
    created_at: i64,
}

impl EventRow {
    fn from_event(event: &Event) -> Self {
        Self {
            id: event.id.as_str().to_owned(),
            group_id: event.group_id.get(),
            event_type: event.event_type.clone(),
            payload: event.payload.clone(),
            idempotency_key: event
                .idempotency_key
                .as_ref()
                .map(|key| key.as_str().to_owned()),
            created_at: event.created_at.as_millis(),
        }
    }
}

#[async_trait]
impl EventStore for DieselEventStore {
    /// One write transaction: the idempotency check, the event, and one
    /// pending delivery, due at the event's creation, per enabled webhook of
    /// the group whose enabled events name the event's type. Delivery ids of
    /// one process sort in the order made (within a publish, oldest webhook
    /// first). On PostgreSQL a publish that made deliveries also notifies
    /// [`DELIVERIES_CHANNEL`](crate::DELIVERIES_CHANNEL).
    ///
    /// Publishes without an idempotency key share transactions (group
    /// commit): a writer task (up to three at once) writes every such
    /// publish waiting, up to 256, in one transaction of a constant number
    /// of statements, while the next ones gather; each call answers once its
    /// event is committed. A
    /// publish alone is written at once. When a shared transaction fails,
    /// each of its events is tried again alone, so that one bad event (a
    /// group deleted meanwhile, a corrupt webhook) fails only itself.
    /// Errors: [`RepositoryError::Unavailable`], also for a group that does
    /// not exist (the use case checks first); [`RepositoryError::Corrupt`]
    /// when a webhook of the group has unreadable enabled events.
    async fn publish(
        &self,
        event: &Event,
        idempotency_since: UnixMillis,
    ) -> Result<PublishOutcome, RepositoryError> {
        let event = event.clone();
        if let Some(key) = event.idempotency_key.clone() {
            return self
                .db
                .run(move |connection| {
                    write_transaction(connection, |connection| {
                        lock_idempotency_key(connection, event.group_id, &key)
                            .map_err(storage_error)?;
                        if let Some(first) =
                            event_with_key(connection, event.group_id, &key, idempotency_since)?
                        {
                            return Ok(first);
                        }
                        Ok(publish_all(connection, std::slice::from_ref(&event))?.remove(0))
                    })
                })
                .await;
        }
        self.group_commit.publish(&self.db, event).await
    }

    /// One write transaction: the event and a pending delivery to `webhook`,
    /// due at the event's creation, whatever the webhook's filter or status
    /// (a disabled webhook's delivery waits until it is enabled again).
    /// Errors: [`RepositoryError::Unavailable`], also when the webhook does
    /// not exist (the use cases check first).
    async fn publish_to(
        &self,
        event: &Event,
        webhook: &WebhookId,
    ) -> Result<DeliveryId, RepositoryError> {
        let event = event.clone();
        let id = new_delivery_id();
        let row = NewDeliveryRow::due_at_once(id.clone(), &event, webhook.as_str().to_owned());
        self.db
            .run(move |connection| {
                write_transaction(connection, |connection| {
                    insert_event(connection, &event)?;
                    diesel::insert_into(deliveries::table)
                        .values(&row)
                        .execute(connection)
                        .map_err(storage_error)?;
                    announce_new_deliveries(connection).map_err(storage_error)
                })
            })
            .await?;
        Ok(id)
    }
}

/// Stores a batch of events without idempotency keys and their deliveries.
/// On PostgreSQL a batch that fits one statement takes two round trips
/// and no explicit transaction: the read of the receivers, then one
/// statement that inserts events and deliveries and notifies, atomic and
/// durable by itself. Otherwise, and on SQLite, one write transaction.
fn publish_batch(
    connection: &mut DbConnection,
    events: &[Event],
) -> Result<Vec<PublishOutcome>, RepositoryError> {
    if matches!(connection, DbConnection::Sqlite(_)) {
        return write_transaction(connection, |connection| publish_all(connection, events));
    }
    let fan_out = FanOut::of(events, &enabled_receivers(connection, events)?);
    if fan_out.fits_one_statement() {
        store(connection, &fan_out)?;
    } else {
        write_transaction(connection, |connection| store(connection, &fan_out))?;
    }
    Ok(fan_out.outcomes)
}

/// Stores the events and their deliveries (see [`EventStore::publish`]) in
/// the caller's transaction, in a constant number of statements; answers an
/// outcome per event, in order.
fn publish_all(
    connection: &mut DbConnection,
    events: &[Event],
) -> Result<Vec<PublishOutcome>, RepositoryError> {
    let fan_out = FanOut::of(events, &enabled_receivers(connection, events)?);
    store(connection, &fan_out)?;
    Ok(fan_out.outcomes)
}

/// Inserts the rows of `fan_out` and announces its deliveries: on
/// PostgreSQL in one statement when it fits, otherwise in chunks, which the
/// caller wraps in a transaction.
fn store(connection: &mut DbConnection, fan_out: &FanOut) -> Result<(), RepositoryError> {
    if let DbConnection::Postgres(postgres) = connection {
        if fan_out.fits_one_statement() {
            return insert_in_one_statement(postgres, fan_out).map_err(storage_error);
        }
    }
    for chunk in fan_out.events.chunks(ROWS_PER_STATEMENT) {
        insert_events(connection, chunk).map_err(storage_error)?;
    }
    for chunk in fan_out.deliveries.chunks(ROWS_PER_STATEMENT) {
        insert_deliveries(connection, chunk).map_err(storage_error)?;
    }
    if !fan_out.deliveries.is_empty() {
        announce_new_deliveries(connection).map_err(storage_error)?;
    }
    Ok(())
}

/// The rows a batch of events adds, and the outcome of each event.
struct FanOut {
    events: Vec<EventRow>,
    deliveries: Vec<NewDeliveryRow>,
    outcomes: Vec<PublishOutcome>,
}

impl FanOut {
    /// One pending delivery per event and receiver of its group and type,
    /// in event order, oldest webhook first.
    fn of(events: &[Event], receivers: &[Receiver]) -> Self {
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
                created: true,
            });
        }
        Self {
            events: events.iter().map(EventRow::from_event).collect(),
            deliveries,
            outcomes,
        }
    }

    /// Whether its values stay within PostgreSQL's 65,535 bound parameters.
    fn fits_one_statement(&self) -> bool {
        self.events.len() * 6 + self.deliveries.len() * 9 <= 60_000
    }
}

/// PostgreSQL: the events, their deliveries and the notification of
/// [`DELIVERIES_CHANNEL`](crate::DELIVERIES_CHANNEL) in one statement.
fn insert_in_one_statement(connection: &mut PgConnection, fan_out: &FanOut) -> QueryResult<()> {
    let mut next = 0;
    let mut row = |values: usize| {
        let marks: Vec<String> = (0..values)
            .map(|_| {
                next += 1;
                format!("${next}")
            })
            .collect();
        format!("({})", marks.join(", "))
    };
    let events: Vec<String> = fan_out.events.iter().map(|_| row(6)).collect();
    let deliveries: Vec<String> = fan_out.deliveries.iter().map(|_| row(9)).collect();
    let insert_events = format!(
        "INSERT INTO events (id, group_id, event_type, payload, idempotency_key, created_at) \
         VALUES {}",
        events.join(", ")
    );
    let sql = if deliveries.is_empty() {
        insert_events
    } else {
        format!(
            "WITH new_events AS ({insert_events}), new_deliveries AS ( \
               INSERT INTO deliveries (id, event_id, webhook_id, group_id, status, \
                 attempt_count, next_attempt_at, created_at, updated_at) VALUES {} \
             ) SELECT pg_notify('{DELIVERIES_CHANNEL}', '')",
            deliveries.join(", ")
        )
    };
    let mut query = diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>();
    for event in &fan_out.events {
        query = query
            .bind::<Text, _>(event.id.clone())
            .bind::<BigInt, _>(event.group_id)
            .bind::<Text, _>(event.event_type.clone())
            .bind::<Text, _>(event.payload.clone())
            .bind::<Nullable<Text>, _>(event.idempotency_key.clone())
            .bind::<BigInt, _>(event.created_at);
    }
    for delivery in &fan_out.deliveries {
        query = query
            .bind::<Text, _>(delivery.id.clone())
            .bind::<Text, _>(delivery.event_id.clone())
            .bind::<Text, _>(delivery.webhook_id.clone())
            .bind::<BigInt, _>(delivery.group_id)
            .bind::<Text, _>(delivery.status.clone())
            .bind::<BigInt, _>(delivery.attempt_count)
            .bind::<Nullable<BigInt>, _>(delivery.next_attempt_at)
            .bind::<BigInt, _>(delivery.created_at)
            .bind::<BigInt, _>(delivery.updated_at);
    }
    query.execute(connection).map(drop)
}

/// Rows per multi-row `INSERT`: far below the bind limits of both backends
/// (65,535 and 32,766) at 6 or 9 values a row.
const ROWS_PER_STATEMENT: usize = 1_000;

/// One multi-row `INSERT`. The statement is the same on both backends, but
/// Diesel's multi-backend connection cannot build it, so it is built for each.
fn insert_events(connection: &mut DbConnection, rows: &[EventRow]) -> QueryResult<()> {
    match connection {
        DbConnection::Postgres(postgres) => diesel::insert_into(events::table)
            .values(rows)
            .execute(postgres),
        DbConnection::Sqlite(sqlite) => diesel::insert_into(events::table)
            .values(rows)
            .execute(sqlite),
    }
    .map(drop)
}

/// One multi-row `INSERT`, as [`insert_events`].
fn insert_deliveries(connection: &mut DbConnection, rows: &[NewDeliveryRow]) -> QueryResult<()> {
    match connection {
        DbConnection::Postgres(postgres) => diesel::insert_into(deliveries::table)
            .values(rows)
            .execute(postgres),
        DbConnection::Sqlite(sqlite) => diesel::insert_into(deliveries::table)
            .values(rows)
            .execute(sqlite),
    }
    .map(drop)
}

fn insert_event(connection: &mut DbConnection, event: &Event) -> Result<(), RepositoryError> {
    diesel::insert_into(events::table)
        .values(EventRow::from_event(event))
        .execute(connection)
        .map(drop)
        .map_err(storage_error)
}

/// The latest event of the group that used `key` at or after `since`, with
/// its delivery count, as the answer to a repeat.
fn event_with_key(
    connection: &mut DbConnection,
    group: GroupId,
    key: &IdempotencyKey,
    since: UnixMillis,
) -> Result<Option<PublishOutcome>, RepositoryError> {
    let first = events::table
        .filter(events::group_id.eq(group.get()))
        .filter(events::idempotency_key.eq(key.as_str()))
        .filter(events::created_at.ge(since.as_millis()))
        .order_by((events::created_at.desc(), events::id.desc()))
        .select(events::id)
        .first::<String>(connection)
        .optional()
        .map_err(storage_error)?;
    let Some(first) = first else {
        return Ok(None);
    };
    let count = deliveries::table
        .filter(deliveries::event_id.eq(&first))
        .count()
        .get_result::<i64>(connection)
        .map_err(storage_error)?;
    let event_id = EventId::parse(&first)
        .ok_or_else(|| RepositoryError::Corrupt(format!("event {first}: malformed id")))?;
    Ok(Some(PublishOutcome {
        event_id,
        deliveries: u64::try_from(count).unwrap_or(0),
        created: false,
    }))
}

/// An enabled webhook and the event types it receives.
struct Receiver {
    id: String,
    group_id: i64,
    enabled: EnabledEvents,
}

impl Receiver {
    fn receives(&self, event: &Event) -> bool {
        self.group_id == event.group_id.get()
            && self
                .enabled
                .iter()
                .any(|kind| kind.as_str() == event.event_type)
    }
}

/// The enabled webhooks of the events' groups, oldest webhook first, in one
/// query.
fn enabled_receivers(
    connection: &mut DbConnection,
    events: &[Event],
) -> Result<Vec<Receiver>, RepositoryError> {
    let mut groups: Vec<i64> = events.iter().map(|event| event.group_id.get()).collect();
    groups.sort_unstable();
    groups.dedup();
    let candidates = webhooks::table
        .filter(webhooks::group_id.eq_any(groups))
        .filter(webhooks::status.eq(WebhookStatus::Enabled.as_str()))
        .order_by((webhooks::created_at.asc(), webhooks::id.asc()))
        .select((webhooks::id, webhooks::group_id, webhooks::enabled_events))
        .load::<(String, i64, String)>(connection)
        .map_err(storage_error)?;
    candidates
        .into_iter()
        .map(|(id, group_id, enabled_events)| {
            let enabled = decode_events(&enabled_events).ok_or_else(|| {
                RepositoryError::Corrupt(format!("webhook {id}: invalid enabled_events"))
            })?;
            Ok(Receiver {
                id,
                group_id,
                enabled,
            })
        })
        .collect()
}

/// Makes concurrent publishes with one group's idempotency key take turns, so
/// that two cannot both find the key unused and both store an event.
///
/// PostgreSQL: a transaction-scoped advisory lock on a hash of group and key
/// (a hash collision only makes two unrelated publishes wait for each other).
/// SQLite: nothing to do; the `BEGIN IMMEDIATE` around the publish already
/// admits one writer at a time.
fn lock_idempotency_key(
    connection: &mut DbConnection,
    group: GroupId,
    key: &IdempotencyKey,
) -> QueryResult<()> {
    match connection {
        DbConnection::Postgres(postgres) => {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind::<Integer, _>(IDEMPOTENCY_LOCK_SPACE)
                .bind::<Text, _>(format!("{group}:{}", key.as_str()))
                .execute(postgres)
                .map(drop)
        }
        DbConnection::Sqlite(_) => Ok(()),
    }
}
