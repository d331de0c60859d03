//! Events in: the `events` table and each event's fan-out into `deliveries`,
//! behind [`EventStore`].
//!
//! - `mod.rs`: [`DieselEventStore`], a publish with an idempotency key (its
//!   lock and its repeat), a test send to one webhook.
//! - `fan_out.rs`: the deliveries an event makes, and the statements that
//!   store a batch of events with them.
//! - `receivers.rs`: the enabled webhooks of a batch's groups.
//! - `batch.rs`: how a batch of publishes without a key is written; they
//!   share transactions through [`crate::batching`]'s group commit.

use std::sync::Arc;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use webhooks_domain::{
    DeliveryId, Event, EventId, EventStore, GroupId, IdempotencyKey, LocalDispatch, PublishOutcome,
    RepositoryError, UnixMillis, WebhookId,
};

use crate::batching::GroupCommit;
use crate::database::{storage_error, write_transaction, Database, DbConnection};
use crate::deliveries::{announce_new_deliveries, new_delivery_id, NewDeliveryRow};
use crate::schema::{deliveries, events, webhooks};
use batch::PublishBatch;

mod batch;
mod fan_out;
mod hand_off;
mod receivers;

pub(crate) use fan_out::{fan_out_and_store, publish_all, FanOut};
pub(crate) use hand_off::{HandOffSlot, Leases};
pub(crate) use receivers::enabled_receivers;

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
    group_commit: GroupCommit<PublishBatch>,
    hand_off: HandOffSlot,
}

impl DieselEventStore {
    pub fn new(db: Database) -> Self {
        let hand_off = HandOffSlot::default();
        let publishes = PublishBatch {
            hand_off: hand_off.clone(),
        };
        Self {
            group_commit: GroupCommit::new(db.clone(), publishes),
            db,
            hand_off,
        }
    }

    /// From now on, publishes without an idempotency key hand the new
    /// deliveries that `dispatch` has room for to it, stored leased to
    /// it rather than due (ADR 0012): for a process that both publishes and
    /// delivers (`serve` with every role). Set once; answers false, and
    /// changes nothing, when a dispatcher was set already.
    pub fn hand_off_to(&self, dispatch: Arc<dyn LocalDispatch>) -> bool {
        self.hand_off.set(dispatch)
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
    /// commit, in the `batching` module): a writer task (up to three at once)
    /// writes every such publish waiting, up to 256, in one transaction of a
    /// constant number of statements, while the next ones gather; each call
    /// answers once its event is committed. A publish alone is written at
    /// once. When a shared transaction fails,
    /// each of its events is tried again alone, so that one bad event (a
    /// group deleted meanwhile, a corrupt webhook) fails only itself. A
    /// webhook deleted between the read of the receivers and the insert
    /// makes the publish read them again (see `fan_out.rs`).
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
        self.group_commit.write(event).await
    }

    /// One write transaction: the event and a pending delivery to `webhook`,
    /// due at the event's creation, whatever the webhook's filter or status
    /// (a disabled webhook's delivery waits until it is enabled again). On
    /// PostgreSQL the webhook's row is locked first, as a publish's
    /// statement locks it (see `fan_out.rs`), so that a delete in progress
    /// cannot leave the delivery behind.
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
                    lock_webhook(connection, &row.webhook_id)?;
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

/// PostgreSQL: locks the webhook's row until the commit (`FOR KEY SHARE`,
/// which its delete's `FOR UPDATE` waits for). SQLite: nothing to do, its
/// foreign key checks the webhook and its writers take turns.
/// Errors: [`RepositoryError::Unavailable`], also when it does not exist.
fn lock_webhook(connection: &mut DbConnection, id: &str) -> Result<(), RepositoryError> {
    let DbConnection::Postgres(postgres) = connection else {
        return Ok(());
    };
    let found = webhooks::table
        .filter(webhooks::id.eq(id))
        .select(webhooks::id)
        .for_key_share()
        .first::<String>(postgres)
        .optional()
        .map_err(storage_error)?;
    match found {
        Some(_) => Ok(()),
        None => Err(RepositoryError::Unavailable(format!(
            "webhook {id} does not exist"
        ))),
    }
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
        handed_over: 0,
        created: false,
    }))
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
