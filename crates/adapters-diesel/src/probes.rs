//! The probes of webhooks disabled for failures: the `probe_*` columns of
//! `webhooks` behind [`ProbeStore`]. A claim moves `probe_at` to the end of
//! its lease, one conditional `UPDATE` per webhook, so of several processes
//! probing one database only one claims each probe.

use std::time::Duration;

use async_trait::async_trait;
use diesel::prelude::*;
use webhooks_domain::{
    DisabledReason, EnabledReason, GroupId, OperationalEvent, ProbeNext, ProbeStore, ProbeTarget,
    RepositoryError, SealedHeaders, SealedSecret, StatusChange, UnixMillis, WebhookId,
    WebhookStatus,
};

use crate::database::{storage_error, write_transaction, Database, DbConnection};
use crate::deliveries::announce_new_deliveries;
use crate::operations::{announce, store_status_change};
use crate::schema::webhooks;

/// Schedules and records probes in PostgreSQL or SQLite.
#[derive(Debug, Clone)]
pub struct DieselProbeStore {
    db: Database,
}

impl DieselProbeStore {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// The columns of a claimed probe.
type TargetRow = (
    String,
    i64,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
);

/// Webhooks disabled for failures, the only ones probed.
macro_rules! disabled_for_failures {
    () => {
        webhooks::table
            .filter(webhooks::status.eq(WebhookStatus::Disabled.as_str()))
            .filter(webhooks::disabled_reason.eq(DisabledReason::Failures.as_str()))
    };
}

/// The due probes' webhooks among those disabled since `since`.
fn due_ids(
    connection: &mut DbConnection,
    now: i64,
    first: i64,
    since: i64,
    limit: usize,
) -> QueryResult<Vec<String>> {
    disabled_for_failures!()
        .filter(webhooks::disabled_at.ge(since))
        .filter(
            webhooks::probe_at
                .is_null()
                .and(webhooks::disabled_at.le(now.saturating_sub(first)))
                .or(webhooks::probe_at.le(now)),
        )
        // One order for every process: their row locks never cross.
        .order_by((webhooks::disabled_at.asc(), webhooks::id.asc()))
        .limit(i64::try_from(limit).unwrap_or(i64::MAX))
        .select(webhooks::id)
        .load(connection)
}

/// Moves the webhook's due probe to `lease`; whether this call did (another
/// process may have claimed it first).
fn claim_one(
    connection: &mut DbConnection,
    id: &str,
    now: i64,
    first: i64,
    lease: i64,
) -> QueryResult<bool> {
    let claimed = diesel::update(
        disabled_for_failures!().filter(webhooks::id.eq(id)).filter(
            webhooks::probe_at
                .is_null()
                .and(webhooks::disabled_at.le(now.saturating_sub(first)))
                .or(webhooks::probe_at.le(now)),
        ),
    )
    .set(webhooks::probe_at.eq(Some(lease)))
    .execute(connection)?;
    Ok(claimed > 0)
}

fn into_target(row: TargetRow) -> Result<ProbeTarget, RepositoryError> {
    let (id, group_id, url, secret, headers, successes, wait) = row;
    let corrupt = |what: &str| RepositoryError::Corrupt(format!("webhook {id}: {what}"));
    Ok(ProbeTarget {
        webhook_id: WebhookId::parse(&id).ok_or_else(|| corrupt("malformed id"))?,
        group_id: GroupId::new(group_id).map_err(|_| corrupt("invalid group_id"))?,
        url,
        secret: SealedSecret::from_stored(secret),
        headers: headers
            .as_deref()
            .map(|raw| SealedHeaders::from_stored(raw).ok_or_else(|| corrupt("invalid headers")))
            .transpose()?,
        successes: u32::try_from(successes).unwrap_or(u32::MAX),
        wait: wait.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
    })
}

/// Enables the webhook again, in the caller's transaction, with the
/// operator endpoint's `webhook.enabled`; whether it was still disabled for
/// failures.
fn enable(
    connection: &mut DbConnection,
    id: &str,
    now: UnixMillis,
) -> Result<Option<Vec<webhooks_domain::EventType>>, RepositoryError> {
    let enabled = diesel::update(disabled_for_failures!().filter(webhooks::id.eq(id)))
        .set((
            webhooks::status.eq(WebhookStatus::Enabled.as_str()),
            webhooks::failing_since.eq(None::<i64>),
            webhooks::updated_at.eq(now.as_millis()),
        ))
        .execute(connection)
        .map_err(storage_error)?;
    if enabled == 0 {
        return Ok(None);
    }
    let change = StatusChange::Enabled(EnabledReason::Probe);
    store_status_change(connection, id, change, now).map_err(storage_error)?;
    let (group, url): (i64, String) = webhooks::table
        .filter(webhooks::id.eq(id))
        .select((webhooks::group_id, webhooks::url))
        .first(connection)
        .map_err(storage_error)?;
    let corrupt = || RepositoryError::Corrupt(format!("webhook {id}: malformed"));
    let group = GroupId::new(group).map_err(|_| corrupt())?;
    let webhook = WebhookId::parse(id).ok_or_else(corrupt)?;
    let news = OperationalEvent::status_changed(group, &webhook, &url, change);
    let announced = announce(connection, &[news], now)?;
    // Its waiting deliveries are due again: wake the other processes.
    announce_new_deliveries(connection).map_err(storage_error)?;
    Ok(Some(announced))
}

#[async_trait]
impl ProbeStore for DieselProbeStore {
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn claim_due_probes(
        &self,
        now: UnixMillis,
        first: Duration,
        disabled_since: UnixMillis,
        limit: usize,
        lease_until: UnixMillis,
    ) -> Result<Vec<ProbeTarget>, RepositoryError> {
        let first = i64::try_from(first.as_millis()).unwrap_or(i64::MAX);
        let (now, since, lease) = (
            now.as_millis(),
            disabled_since.as_millis(),
            lease_until.as_millis(),
        );
        let rows: Vec<TargetRow> = self
            .db
            .run(move |connection| {
                write_transaction(connection, |connection| {
                    let mut claimed = Vec::new();
                    for id in
                        due_ids(connection, now, first, since, limit).map_err(storage_error)?
                    {
                        if claim_one(connection, &id, now, first, lease).map_err(storage_error)? {
                            claimed.push(id);
                        }
                    }
                    webhooks::table
                        .filter(webhooks::id.eq_any(&claimed))
                        .select((
                            webhooks::id,
                            webhooks::group_id,
                            webhooks::url,
                            webhooks::secret,
                            webhooks::headers,
                            webhooks::probe_successes,
                            webhooks::probe_wait,
                        ))
                        .load(connection)
                        .map_err(storage_error)
                })
            })
            .await?;
        rows.into_iter().map(into_target).collect()
    }

    /// Errors: [`RepositoryError::Unavailable`].
    async fn record_probe(
        &self,
        webhook: &WebhookId,
        next: ProbeNext,
        now: UnixMillis,
    ) -> Result<bool, RepositoryError> {
        let id = webhook.as_str().to_owned();
        let announced = self
            .db
            .run(move |connection| match next {
                ProbeNext::Again {
                    at,
                    wait,
                    successes,
                } => {
                    let wait = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                    let scheduled =
                        diesel::update(disabled_for_failures!().filter(webhooks::id.eq(&id)))
                            .set((
                                webhooks::probe_at.eq(Some(at.as_millis())),
                                webhooks::probe_wait.eq(Some(wait)),
                                webhooks::probe_successes.eq(i64::from(successes)),
                            ))
                            .execute(connection)
                            .map_err(storage_error)?;
                    Ok((scheduled > 0).then(Vec::new))
                }
                ProbeNext::Enable => {
                    write_transaction(connection, |connection| enable(connection, &id, now))
                }
            })
            .await?;
        if matches!(next, ProbeNext::Enable) && announced.is_some() {
            self.db.webhook_status_changed();
        }
        Ok(announced
            .map(|types| OperationalEvent::count_sent(&types))
            .is_some())
    }
}
