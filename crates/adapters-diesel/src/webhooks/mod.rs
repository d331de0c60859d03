//! Webhook endpoints: the `webhooks` table behind [`WebhookRepository`].
//!
//! - `mod.rs`: [`DieselWebhookRepository`], its reads, updates, deletes and
//!   secret rotations.
//! - `inserts.rs`: new webhooks, written in batches (group commit).

use async_trait::async_trait;
use diesel::prelude::*;
use webhooks_domain::{
    Clock, DeliveryOrdering, Description, DisabledReason, EnabledEvents, EventType, GroupId,
    OperationalEvent, RateLimit, RepositoryError, SealedHeaders, SealedSecret, StatusChange,
    SystemClock, UnixMillis, Webhook, WebhookId, WebhookRepository, WebhookStatus, WebhookUrl,
};

use crate::batching::GroupCommit;
use crate::database::{storage_error, write_transaction, Database, DbConnection};
use crate::operations::{announce, disabled_reason, store_status_change};
use crate::retention::rewind_events_checked;
use crate::schema::{attempts, deliveries, webhooks};
use inserts::InsertWebhooks;

mod inserts;

/// Stores webhooks in PostgreSQL or SQLite, whichever [`Database`] points at.
/// Clones share the line of new webhooks waiting for a transaction.
#[derive(Debug, Clone)]
pub struct DieselWebhookRepository {
    db: Database,
    inserts: GroupCommit<InsertWebhooks>,
}

impl DieselWebhookRepository {
    pub fn new(db: Database) -> Self {
        Self {
            inserts: GroupCommit::new(db.clone(), InsertWebhooks),
            db,
        }
    }

    /// Why the webhook is disabled (`None` while enabled or unknown).
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    pub async fn disabled_reason(
        &self,
        id: &WebhookId,
    ) -> Result<Option<DisabledReason>, RepositoryError> {
        let id = id.as_str().to_owned();
        self.db
            .run(move |connection| disabled_reason(connection, &id))
            .await
    }
}

/// A `webhooks` row as stored. The `previous_secret*` columns belong to secret
/// rotation, the failure streak and rate window to the delivery queue; they
/// are left out, so new rows get their defaults.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhooks)]
// Bind `None` as NULL rather than emit `DEFAULT`, which SQLite's VALUES lacks.
#[diesel(treat_none_as_default_value = false)]
struct WebhookRow {
    id: String,
    group_id: i64,
    url: String,
    description: String,
    status: String,
    enabled_events: String,
    rate_limit: Option<i64>,
    secret: String,
    created_at: i64,
    updated_at: i64,
    headers: Option<String>,
    ordering: Option<String>,
}

impl WebhookRow {
    fn from_webhook(webhook: &Webhook) -> Self {
        Self {
            id: webhook.id.as_str().to_owned(),
            group_id: webhook.group_id.get(),
            url: webhook.url.as_str().to_owned(),
            description: webhook.description.as_str().to_owned(),
            status: webhook.status.as_str().to_owned(),
            enabled_events: encode_events(&webhook.enabled_events),
            rate_limit: webhook
                .rate_limit
                .map(|limit| i64::from(limit.per_second())),
            secret: webhook.secret.as_str().to_owned(),
            created_at: webhook.created_at.as_millis(),
            updated_at: webhook.updated_at.as_millis(),
            headers: webhook.headers.as_ref().map(SealedHeaders::to_stored),
            ordering: webhook
                .ordering
                .map(|ordering| ordering.as_str().to_owned()),
        }
    }

    /// Parses the row back through the domain's constructors, so a row that
    /// was edited by hand into something invalid is caught here, not later.
    fn into_webhook(self) -> Result<Webhook, RepositoryError> {
        // Name the row and the column, never the value: the error is logged.
        let corrupt = |what: &str| RepositoryError::Corrupt(format!("webhook {}: {what}", self.id));
        let id = WebhookId::parse(&self.id).ok_or_else(|| corrupt("malformed id"))?;
        let group_id = GroupId::new(self.group_id).map_err(|_| corrupt("invalid group_id"))?;
        let url = WebhookUrl::new(&self.url).map_err(|_| corrupt("invalid url"))?;
        let description =
            Description::new(&self.description).map_err(|_| corrupt("invalid description"))?;
        let status = WebhookStatus::parse(&self.status).ok_or_else(|| corrupt("unknown status"))?;
        let enabled_events =
            decode_events(&self.enabled_events).ok_or_else(|| corrupt("invalid enabled_events"))?;
        let rate_limit = self
            .rate_limit
            .map(RateLimit::new)
            .transpose()
            .map_err(|_| corrupt("invalid rate_limit"))?;
        let headers = self
            .headers
            .as_deref()
            .map(|raw| SealedHeaders::from_stored(raw).ok_or_else(|| corrupt("invalid headers")))
            .transpose()?;
        let ordering = self
            .ordering
            .as_deref()
            .map(DeliveryOrdering::parse)
            .transpose()
            .map_err(|_| corrupt("invalid ordering"))?;
        Ok(Webhook {
            id,
            group_id,
            url,
            description,
            status,
            enabled_events,
            rate_limit,
            secret: SealedSecret::from_stored(self.secret),
            headers,
            ordering,
            created_at: UnixMillis(self.created_at),
            updated_at: UnixMillis(self.updated_at),
        })
    }
}

/// Event names joined by commas, e.g. `user.created,user.session.result`: a
/// plain TEXT column reads the same on both backends, and names never contain
/// a comma.
fn encode_events(events: &EnabledEvents) -> String {
    events
        .iter()
        .map(EventType::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn decode_events(raw: &str) -> Option<EnabledEvents> {
    let events = raw
        .split(',')
        .map(EventType::parse)
        .collect::<Option<Vec<_>>>()?;
    EnabledEvents::new(events).ok()
}

#[async_trait]
impl WebhookRepository for DieselWebhookRepository {
    /// Oldest first: by `created_at`, then by id (ULIDs sort by creation too).
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn list_by_group(&self, group: GroupId) -> Result<Vec<Webhook>, RepositoryError> {
        let group = group.get();
        self.db
            .run(move |connection| {
                webhooks::table
                    .filter(webhooks::group_id.eq(group))
                    .order_by((webhooks::created_at.asc(), webhooks::id.asc()))
                    .select(WebhookRow::as_select())
                    .load(connection)
                    .map_err(storage_error)?
                    .into_iter()
                    .map(WebhookRow::into_webhook)
                    .collect()
            })
            .await
    }

    /// `None` when the id is unknown or belongs to another group.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find(
        &self,
        group: GroupId,
        id: &WebhookId,
    ) -> Result<Option<Webhook>, RepositoryError> {
        let group = group.get();
        let id = id.as_str().to_owned();
        self.db
            .run(move |connection| {
                webhooks::table
                    .filter(webhooks::group_id.eq(group))
                    .filter(webhooks::id.eq(id))
                    .select(WebhookRow::as_select())
                    .first(connection)
                    .optional()
                    .map_err(storage_error)?
                    .map(WebhookRow::into_webhook)
                    .transpose()
            })
            .await
    }

    /// Concurrent inserts share a transaction (group commit: see the
    /// `batching` module); each answers once its webhook is committed. When
    /// a shared insert fails, each of its webhooks is tried again alone, so
    /// that one bad webhook fails only itself.
    /// Errors: [`RepositoryError::Conflict`] if the id exists,
    /// [`RepositoryError::Unavailable`] otherwise (including a group that does
    /// not exist, which the use cases check first).
    async fn insert(&self, webhook: &Webhook) -> Result<(), RepositoryError> {
        self.inserts.write(WebhookRow::from_webhook(webhook)).await
    }

    /// Overwrites url, description, status, enabled events, rate limit,
    /// custom headers, ordering and `updated_at`; the id, group, secret and `created_at` stay. Enabling a
    /// disabled webhook also ends its failure streak, so that the first
    /// failure after a fix does not disable it again at once. A `change`
    /// is stored and announced in the same transaction. `false` when no
    /// webhook has this id in this group.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn update(
        &self,
        webhook: &Webhook,
        change: Option<StatusChange>,
    ) -> Result<bool, RepositoryError> {
        let row = WebhookRow::from_webhook(webhook);
        let news = change.map(|change| {
            OperationalEvent::status_changed(
                webhook.group_id,
                &webhook.id,
                webhook.url.as_str(),
                change,
            )
        });
        let at = webhook.updated_at;
        let announced = self
            .db
            .run(move |connection| {
                write_transaction(connection, |connection| {
                    let this_webhook = || {
                        webhooks::table
                            .filter(webhooks::group_id.eq(row.group_id))
                            .filter(webhooks::id.eq(&row.id))
                    };
                    if row.status == WebhookStatus::Enabled.as_str() {
                        diesel::update(
                            this_webhook()
                                .filter(webhooks::status.eq(WebhookStatus::Disabled.as_str())),
                        )
                        .set(webhooks::failing_since.eq(None::<i64>))
                        .execute(connection)
                        .map_err(storage_error)?;
                    }
                    let changed = diesel::update(this_webhook())
                        .set((
                            webhooks::url.eq(&row.url),
                            webhooks::description.eq(&row.description),
                            webhooks::status.eq(&row.status),
                            webhooks::enabled_events.eq(&row.enabled_events),
                            webhooks::rate_limit.eq(row.rate_limit),
                            webhooks::headers.eq(&row.headers),
                            webhooks::ordering.eq(&row.ordering),
                            webhooks::updated_at.eq(row.updated_at),
                        ))
                        .execute(connection)
                        .map_err(storage_error)?;
                    if changed == 0 {
                        return Ok(None);
                    }
                    if let Some(change) = change {
                        store_status_change(connection, &row.id, change, at)
                            .map_err(storage_error)?;
                    }
                    announce(connection, news.as_slice(), at).map(Some)
                })
            })
            .await?;
        Ok(announced
            .map(|types| OperationalEvent::count_sent(&types))
            .is_some())
    }

    /// Its deliveries and their attempts go with it, in the same transaction
    /// (see [`delete_attempts_of`]; no foreign key cascades to the
    /// deliveries on PostgreSQL), and retention looks at their events again
    /// (see the `retention` module). `false` when no webhook has this id in
    /// this group.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn delete(&self, group: GroupId, id: &WebhookId) -> Result<bool, RepositoryError> {
        let group = group.get();
        let id = id.as_str().to_owned();
        self.db
            .run(move |connection| {
                write_transaction(connection, |connection| {
                    if !delete_attempts_of(connection, group, &id).map_err(storage_error)? {
                        return Ok(false);
                    }
                    rewind_events_checked(connection, group, &id).map_err(storage_error)?;
                    diesel::delete(deliveries::table.filter(deliveries::webhook_id.eq(&id)))
                        .execute(connection)
                        .map_err(storage_error)?;
                    let deleted = diesel::delete(
                        webhooks::table
                            .filter(webhooks::group_id.eq(group))
                            .filter(webhooks::id.eq(&id)),
                    )
                    .execute(connection)
                    .map_err(storage_error)?;
                    Ok(deleted > 0)
                })
            })
            .await
    }

    /// Moves the current secret to `previous_secret` (signing until
    /// `previous_expires_at`) and stores the new one, in one statement: SQL
    /// reads every right-hand side from the row as it was. A secret replaced
    /// earlier, still in its grace period, stops signing now.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn rotate_secret(
        &self,
        group: GroupId,
        id: &WebhookId,
        secret: &SealedSecret,
        previous_expires_at: UnixMillis,
    ) -> Result<bool, RepositoryError> {
        let news = [OperationalEvent::secret_rotated(group, id)];
        let group = group.get();
        let id = id.as_str().to_owned();
        let secret = secret.as_str().to_owned();
        let announced = self
            .db
            .run(move |connection| {
                write_transaction(connection, |connection| {
                    let rotated = diesel::update(
                        webhooks::table
                            .filter(webhooks::group_id.eq(group))
                            .filter(webhooks::id.eq(id)),
                    )
                    .set((
                        webhooks::previous_secret.eq(webhooks::secret.nullable()),
                        webhooks::previous_secret_expires_at
                            .eq(Some(previous_expires_at.as_millis())),
                        webhooks::secret.eq(secret),
                    ))
                    .execute(connection)
                    .map_err(storage_error)?;
                    if rotated == 0 {
                        return Ok(None);
                    }
                    announce(connection, &news, SystemClock.now()).map(Some)
                })
            })
            .await?;
        Ok(announced
            .map(|types| OperationalEvent::count_sent(&types))
            .is_some())
    }
}

/// Deletes the attempts of the webhook's deliveries, before the webhook's
/// delete takes the deliveries: no foreign key cascades from a delivery to
/// its attempts (see the migration `attempts_unchecked`). Answers `false`,
/// deleting nothing, when no webhook has this id in this group.
///
/// On PostgreSQL it first locks the webhook's row, then its deliveries'
/// rows, each in a statement of its own. A publish storing a delivery for
/// the webhook (which locks the webhook's row: see the `events` module's
/// `fan_out.rs`) and a recorder updating one of the
/// deliveries (which stores attempts only for the deliveries its update
/// found) then wait for this transaction and find them gone; the attempts'
/// delete, a later statement, sees every attempt committed before the locks
/// were granted. So no attempt outlives its delivery. SQLite's writers take
/// turns.
fn delete_attempts_of(connection: &mut DbConnection, group: i64, id: &str) -> QueryResult<bool> {
    let webhook = webhooks::table
        .filter(webhooks::group_id.eq(group))
        .filter(webhooks::id.eq(id))
        .select(webhooks::id);
    let found = match connection {
        DbConnection::Postgres(postgres) => {
            let found = webhook.for_update().first::<String>(postgres).optional()?;
            if found.is_some() {
                deliveries::table
                    .filter(deliveries::webhook_id.eq(id))
                    .select(deliveries::id)
                    .for_update()
                    .execute(postgres)?;
            }
            found
        }
        DbConnection::Sqlite(sqlite) => webhook.first::<String>(sqlite).optional()?,
    };
    if found.is_none() {
        return Ok(false);
    }
    let of_webhook = deliveries::table
        .filter(deliveries::webhook_id.eq(id))
        .select(deliveries::id);
    diesel::delete(attempts::table.filter(attempts::delivery_id.eq_any(of_webhook)))
        .execute(connection)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_their_column_text() {
        let all = EnabledEvents::all();
        assert_eq!(encode_events(&all), "user.created,user.session.result");
        assert_eq!(decode_events("user.created,user.session.result"), Some(all));
    }

    #[test]
    fn unknown_or_empty_event_text_does_not_decode() {
        for raw in [
            "",
            "user.created,",
            "user.deleted",
            "user.created, user.session.result",
        ] {
            assert_eq!(decode_events(raw), None, "{raw}");
        }
    }
}
