//! The rows of the `deliveries` and `attempts` tables, and of a claim.

use std::sync::{Mutex, PoisonError};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use webhooks_domain::{
    Attempt, Delivery, DeliveryId, DeliveryJob, DeliveryOrdering, DeliveryStatus, Event, EventId,
    GroupId, RateLimit, RepositoryError, SealedHeaders, SealedSecret, UnixMillis, WebhookId,
};

use crate::schema::{attempts, deliveries, events};

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
    pub(crate) leased_until: Option<i64>,
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
            leased_until: None,
            created_at,
            updated_at: created_at,
        }
    }

    /// Leases the new delivery to this process's dispatcher until `until`,
    /// as a claim would: not due before.
    pub(crate) fn lease(&mut self, until: UnixMillis) {
        self.next_attempt_at = Some(until.as_millis());
        self.leased_until = Some(until.as_millis());
    }
}

/// The columns of a [`DeliveryRow`]: the delivery and its event's type.
pub(super) type DeliveryColumns = (
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

pub(super) const DELIVERY_COLUMNS: DeliveryColumns = (
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
pub(super) struct DeliveryRow {
    pub(super) id: String,
    pub(super) event_id: String,
    pub(super) event_type: String,
    pub(super) webhook_id: String,
    pub(super) group_id: i64,
    pub(super) status: String,
    pub(super) attempt_count: i64,
    pub(super) next_attempt_at: Option<i64>,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
}

impl DeliveryRow {
    /// Parses the row back through the domain's constructors.
    pub(super) fn into_delivery(self) -> Result<Delivery, RepositoryError> {
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
pub(crate) struct AttemptRow {
    pub(crate) delivery_id: String,
    pub(crate) number: i64,
    pub(crate) attempted_at: i64,
    pub(crate) duration_ms: i64,
    pub(crate) response_status: Option<i64>,
    pub(crate) response_body: Option<String>,
    pub(crate) error: Option<String>,
}

impl AttemptRow {
    pub(crate) fn from_attempt(attempt: &Attempt) -> Self {
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

    pub(super) fn into_attempt(self) -> Result<Attempt, RepositoryError> {
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
pub(crate) struct JobRow {
    #[diesel(sql_type = Text)]
    pub(crate) delivery_id: String,
    #[diesel(sql_type = Text)]
    pub(crate) event_id: String,
    #[diesel(sql_type = BigInt)]
    pub(crate) attempt_count: i64,
    #[diesel(sql_type = Text)]
    pub(crate) payload: String,
    #[diesel(sql_type = Text)]
    pub(crate) webhook_id: String,
    #[diesel(sql_type = Text)]
    pub(crate) url: String,
    #[diesel(sql_type = Text)]
    pub(crate) secret: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) previous_secret: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) previous_secret_expires_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) rate_limit: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pub(crate) created_at: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) headers: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) ordering: Option<String>,
}

impl JobRow {
    /// Parses the row back through the domain's constructors; the previous
    /// secret comes along only while it still signs at `now`.
    pub(crate) fn into_job(self, now: UnixMillis) -> Result<DeliveryJob, RepositoryError> {
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
            headers: self
                .headers
                .as_deref()
                .map(|raw| {
                    SealedHeaders::from_stored(raw)
                        .ok_or_else(|| corrupt("invalid headers of its webhook"))
                })
                .transpose()?,
            ordering: self
                .ordering
                .as_deref()
                .map(DeliveryOrdering::parse)
                .transpose()
                .map_err(|_| corrupt("invalid ordering of its webhook"))?,
            created_at: UnixMillis(self.created_at),
        })
    }
}
