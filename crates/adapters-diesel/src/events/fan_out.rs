//! An event's fan-out: one pending delivery per enabled webhook of its group
//! whose enabled events name its type, and the statements that store a batch
//! of events with their deliveries.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use webhooks_domain::{EnabledEvents, Event, PublishOutcome, RepositoryError, WebhookStatus};

use super::EventRow;
use crate::database::{storage_error, Backend, DbConnection};
use crate::deliveries::{
    announce_new_deliveries, new_delivery_id, NewDeliveryRow, DELIVERIES_CHANNEL,
};
use crate::schema::{deliveries, events, webhooks};
use crate::statements::{on_its_backend, placeholders, ROWS_PER_STATEMENT};
use crate::webhooks::decode_events;

/// Stores the events and their deliveries (see
/// [`EventStore::publish`](webhooks_domain::EventStore::publish)) in
/// the caller's transaction, in a constant number of statements; answers an
/// outcome per event, in order.
pub(crate) fn publish_all(
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
pub(crate) fn store(
    connection: &mut DbConnection,
    fan_out: &FanOut,
) -> Result<(), RepositoryError> {
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
    if fan_out.any_due() {
        announce_new_deliveries(connection).map_err(storage_error)?;
    }
    Ok(())
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

    /// The values its rows bind.
    fn values(&self) -> usize {
        self.events.len() * EventRow::VALUES + self.deliveries.len() * NewDeliveryRow::VALUES
    }

    /// Whether its values fit [`insert_in_one_statement`].
    pub(crate) fn fits_one_statement(&self) -> bool {
        self.values() <= ONE_STATEMENT_MAX_VALUES
    }

    /// Whether a claim has to find some of its deliveries: those not
    /// leased to this process's dispatcher (see the `hand_off` module).
    fn any_due(&self) -> bool {
        self.deliveries
            .iter()
            .any(|delivery| delivery.leased_until.is_none())
    }
}

/// The most values [`insert_in_one_statement`] binds: below PostgreSQL's
/// limit of 65,535 bound values per statement, with room to spare.
const ONE_STATEMENT_MAX_VALUES: usize = 60_000;

/// PostgreSQL: the events, their deliveries and the notification of
/// [`DELIVERIES_CHANNEL`] in one statement.
fn insert_in_one_statement(connection: &mut PgConnection, fan_out: &FanOut) -> QueryResult<()> {
    let marks = placeholders(Backend::Postgres, 1, fan_out.values());
    let (event_marks, delivery_marks) = marks.split_at(fan_out.events.len() * EventRow::VALUES);
    let rows = |marks: &[String], per_row: usize| -> Vec<String> {
        marks
            .chunks(per_row)
            .map(|row| format!("({})", row.join(", ")))
            .collect()
    };
    let events = rows(event_marks, EventRow::VALUES);
    let deliveries = rows(delivery_marks, NewDeliveryRow::VALUES);
    let insert_events = format!(
        "INSERT INTO events (id, group_id, event_type, payload, idempotency_key, created_at) \
         VALUES {}",
        events.join(", ")
    );
    // Deliveries all leased to this process need no claim: no notification.
    let announce = if fan_out.any_due() {
        format!("SELECT pg_notify('{DELIVERIES_CHANNEL}', '')")
    } else {
        "SELECT 1".to_owned()
    };
    let sql = if deliveries.is_empty() {
        insert_events
    } else {
        format!(
            "WITH new_events AS ({insert_events}), new_deliveries AS ( \
               INSERT INTO deliveries (id, event_id, webhook_id, group_id, status, \
                 attempt_count, next_attempt_at, leased_until, created_at, updated_at) \
               VALUES {} \
             ) {announce}",
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
            .bind::<Nullable<BigInt>, _>(delivery.leased_until)
            .bind::<BigInt, _>(delivery.created_at)
            .bind::<BigInt, _>(delivery.updated_at);
    }
    query.execute(connection).map(drop)
}

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

/// The row of [`enabled_receivers`]: id, group, enabled events, then
/// [`Sending`]'s columns.
type ReceiverRow = (
    String,
    i64,
    String,
    (
        String,
        String,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<String>,
    ),
);

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
/// query.
pub(crate) fn enabled_receivers(
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
        .select((
            webhooks::id,
            webhooks::group_id,
            webhooks::enabled_events,
            (
                webhooks::url,
                webhooks::secret,
                webhooks::previous_secret,
                webhooks::previous_secret_expires_at,
                webhooks::rate_limit,
                webhooks::headers,
                webhooks::ordering,
            ),
        ))
        .load::<ReceiverRow>(connection)
        .map_err(storage_error)?;
    candidates
        .into_iter()
        .map(|(id, group_id, enabled_events, sending)| {
            let enabled = decode_events(&enabled_events).ok_or_else(|| {
                RepositoryError::Corrupt(format!("webhook {id}: invalid enabled_events"))
            })?;
            let (
                url,
                secret,
                previous_secret,
                previous_secret_expires_at,
                rate_limit,
                headers,
                ordering,
            ) = sending;
            Ok(Receiver {
                id,
                group_id,
                enabled,
                sending: Sending {
                    url,
                    secret,
                    previous_secret,
                    previous_secret_expires_at,
                    rate_limit,
                    headers,
                    ordering,
                },
            })
        })
        .collect()
}
