//! The storage ports: repositories, the event store, the delivery queue
//! and the stores of portal passes, retention and probes. The Diesel adapter
//! implements them all.

use async_trait::async_trait;

use crate::delivery::{
    AttemptRecord, Delivery, DeliveryDetail, DeliveryJob, DeliveryStatus, StatsWindow,
    WindowActivity,
};
use crate::error::RepositoryError;
use crate::events::{Event, PublishOutcome};
use crate::ids::{ApiKeyId, DeliveryId, GroupId, OrganizationId, WebhookId};
use crate::operations::StatusChange;
use crate::portal::{PortalPass, PortalTokenHash};
use crate::signing::SealedSecret;
use crate::tenancy::{ApiKey, ApiKeyHash, Group, Organization};
use crate::time::UnixMillis;
use crate::webhooks::Webhook;

/// Storage of webhook endpoints.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookRepository: Send + Sync {
    /// The group's webhooks, oldest first.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn list_by_group(&self, group: GroupId) -> Result<Vec<Webhook>, RepositoryError>;

    /// One webhook of a group; `None` when the id is unknown or in another group.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find(
        &self,
        group: GroupId,
        id: &WebhookId,
    ) -> Result<Option<Webhook>, RepositoryError>;

    /// Stores a new webhook.
    /// Errors: [`RepositoryError::Conflict`] if the id exists, [`RepositoryError::Unavailable`].
    async fn insert(&self, webhook: &Webhook) -> Result<(), RepositoryError>;

    /// Overwrites the mutable fields of an existing webhook (matched by group
    /// and id); `false` when there was none. With a `change` of status, its
    /// reason is stored too (cleared on enabling), and in the same
    /// transaction the operator endpoint of the webhook's organization gets
    /// the [`OperationalEvent`](crate::OperationalEvent) of the change, if
    /// it takes that type and the webhook is not of the operations group.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn update(
        &self,
        webhook: &Webhook,
        change: Option<StatusChange>,
    ) -> Result<bool, RepositoryError>;

    /// Deletes a webhook (and its deliveries); `false` when there was none.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn delete(&self, group: GroupId, id: &WebhookId) -> Result<bool, RepositoryError>;

    /// Makes `secret` the signing secret; the one it replaces keeps signing
    /// until `previous_expires_at`. `false` when there is no such webhook.
    /// In the same transaction the operator endpoint gets `secret.rotated`,
    /// as [`WebhookRepository::update`] tells a change of status.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn rotate_secret(
        &self,
        group: GroupId,
        id: &WebhookId,
        secret: &SealedSecret,
        previous_expires_at: UnixMillis,
    ) -> Result<bool, RepositoryError>;
}

/// Storage of events and their fan-out into deliveries.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventStore: Send + Sync {
    /// In one transaction: stores the event and one pending delivery, due at
    /// once, for every enabled webhook of its group whose enabled events
    /// include its type. When the event carries an idempotency key that the
    /// group used for an event created at or after `idempotency_since`, stores
    /// nothing and answers that event's id and delivery count.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn publish(
        &self,
        event: &Event,
        idempotency_since: UnixMillis,
    ) -> Result<PublishOutcome, RepositoryError>;

    /// Stores the event and a single delivery of it to `webhook`, whatever the
    /// webhook's filter (test sends).
    /// Errors: [`RepositoryError::Unavailable`].
    async fn publish_to(
        &self,
        event: &Event,
        webhook: &WebhookId,
    ) -> Result<DeliveryId, RepositoryError>;
}

/// The delivery queue and log.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Claims up to `limit` pending deliveries due at `now`, oldest due first,
    /// leaving out those of the webhooks in `exclude` (the caller's saturated
    /// endpoints), and hides them from other claims until `lease_until`; a
    /// claim whose worker dies is thus due again then. Concurrent callers
    /// (any number of processes) never get the same delivery while its lease
    /// runs.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn claim_due(
        &self,
        now: UnixMillis,
        limit: usize,
        lease_until: UnixMillis,
        exclude: &[WebhookId],
    ) -> Result<Vec<DeliveryJob>, RepositoryError>;

    /// In one transaction, for each record in order: stores the attempt,
    /// moves the delivery to `next`, and applies `health` to its webhook; a
    /// webhook disabled so, and a delivery failed for good, are told to the
    /// operator endpoint as [`WebhookRepository::update`] tells them. The
    /// same as recording them one by one, in fewer round trips; all or none
    /// are recorded.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<(), RepositoryError>;

    /// Hands a claimed delivery back, due at `at`, without counting an attempt
    /// (endpoint busy, rate limited, shutting down).
    /// Errors: [`RepositoryError::Unavailable`].
    async fn release(&self, delivery: &DeliveryId, at: UnixMillis) -> Result<(), RepositoryError>;

    /// [`DeliveryQueue::release`] for many deliveries in one statement.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn release_many(
        &self,
        deliveries: &[DeliveryId],
        at: UnixMillis,
    ) -> Result<(), RepositoryError>;

    /// Moves the webhook's pending deliveries due before `until` to `until`
    /// (its circuit opened), claimed ones included: a claim's lease that
    /// ends later is left as it is. Answers how many moved.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn defer_webhook(
        &self,
        webhook: &WebhookId,
        until: UnixMillis,
    ) -> Result<u64, RepositoryError>;

    /// Takes one slot of the webhook's rate limit in the one-second window
    /// `second` (Unix seconds), shared by every process; `false` when the
    /// window is full.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn take_rate_slot(
        &self,
        webhook: &WebhookId,
        second: i64,
        per_second: u32,
    ) -> Result<bool, RepositoryError>;

    /// A webhook's deliveries, newest first, optionally of one status, after
    /// the cursor `before` (a delivery id), at most `limit`.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn list(
        &self,
        webhook: &WebhookId,
        status: Option<DeliveryStatus>,
        before: Option<DeliveryId>,
        limit: usize,
    ) -> Result<Vec<Delivery>, RepositoryError>;

    /// One delivery of a webhook with its attempts, oldest attempt first.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find(
        &self,
        webhook: &WebhookId,
        delivery: &DeliveryId,
    ) -> Result<Option<DeliveryDetail>, RepositoryError>;

    /// Makes a delivery of the webhook pending and due at `now` again, whatever
    /// its status, unless a worker holds it: a claim's lease that runs past
    /// `now` answers [`Requeue::InFlight`] and changes nothing. The check and
    /// the change are one statement, so a concurrent claim or record either
    /// comes first and is seen, or comes after and sees the requeued delivery.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn requeue(
        &self,
        webhook: &WebhookId,
        delivery: &DeliveryId,
        now: UnixMillis,
    ) -> Result<Requeue, RepositoryError>;

    /// Makes every failed delivery of the webhook created at or after `since`
    /// pending and due at `now`; answers how many.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn requeue_failed_since(
        &self,
        webhook: &WebhookId,
        since: UnixMillis,
        now: UnixMillis,
    ) -> Result<u64, RepositoryError>;

    /// Pending deliveries due at `now` and later, for metrics and shutdown.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn depth(&self, now: UnixMillis) -> Result<QueueDepth, RepositoryError>;

    /// The webhook's deliveries created in `window` (`since` included,
    /// `until` excluded) counted by current status, and every attempt they
    /// have had so far: the durations, the latest 2xx and the latest failure.
    /// Its cost grows with the webhook's deliveries in the window only.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn window_activity(
        &self,
        webhook: &WebhookId,
        window: StatsWindow,
    ) -> Result<WindowActivity, RepositoryError>;
}

/// What [`DeliveryQueue::requeue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Pending and due now.
    Requeued,
    /// Left as it was: a worker has claimed it and its attempt is not
    /// recorded yet. Requeuing it would send it twice at once.
    InFlight,
    /// The webhook has no such delivery.
    NotFound,
}

/// How much work waits in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Pending and due now.
    pub due: u64,
    /// Pending and due later.
    pub scheduled: u64,
    /// When the oldest due delivery became due.
    pub oldest_due_at: Option<UnixMillis>,
}

/// Storage of organizations, groups and API keys.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TenancyRepository: Send + Sync {
    /// Stores a new organization.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn insert_organization(&self, organization: &Organization)
        -> Result<(), RepositoryError>;

    /// One organization; `None` when the id is unknown.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find_organization(
        &self,
        id: &OrganizationId,
    ) -> Result<Option<Organization>, RepositoryError>;

    /// Whether no organization exists yet (a brand-new database).
    /// Errors: [`RepositoryError::Unavailable`].
    async fn is_empty(&self) -> Result<bool, RepositoryError>;

    /// Stores the demo tenant (the organization, its group and its API key)
    /// in one transaction, but only while no organization exists; `false`
    /// when there was one, and then nothing is stored. Any number of
    /// processes may call it at once on one database: exactly one stores.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn insert_demo_tenant(
        &self,
        organization: &Organization,
        group: &Group,
        key: &ApiKey,
    ) -> Result<bool, RepositoryError>;

    /// Stores a new group; group ids are unique across organizations.
    /// Errors: [`RepositoryError::Conflict`] when the group id is taken, or
    /// when the group is an operations group and its organization has one,
    /// [`RepositoryError::Unavailable`].
    async fn insert_group(&self, group: &Group) -> Result<(), RepositoryError>;

    /// The organization's operations group; `None` when it has none.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find_operations_group(
        &self,
        organization: &OrganizationId,
    ) -> Result<Option<Group>, RepositoryError>;

    /// One group, whatever its organization; `None` when the id is unknown.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find_group(&self, id: GroupId) -> Result<Option<Group>, RepositoryError>;

    /// Stores a new API key (its hash only).
    /// Errors: [`RepositoryError::Conflict`] on a hash collision, [`RepositoryError::Unavailable`].
    async fn insert_api_key(&self, key: &ApiKey) -> Result<(), RepositoryError>;

    /// The key with this hash, revoked or not.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find_api_key_by_hash(
        &self,
        hash: &ApiKeyHash,
    ) -> Result<Option<ApiKey>, RepositoryError>;

    /// The key with this id, revoked or not; `None` when the id is unknown.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find_api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, RepositoryError>;

    /// Marks a key revoked; `false` when no such key exists. Revoking twice is
    /// not an error and keeps the first revocation time.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn revoke_api_key(&self, id: &ApiKeyId, at: UnixMillis) -> Result<bool, RepositoryError>;
}

/// Storage of the portal's links and sessions, each kept by the hash of its
/// secret only.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PortalStore: Send + Sync {
    /// Stores a new link. Links past their end may be deleted on the way.
    /// Errors: [`RepositoryError::Conflict`] on a hash collision,
    /// [`RepositoryError::Unavailable`].
    async fn insert_link(&self, link: &PortalPass) -> Result<(), RepositoryError>;

    /// Deletes the link with this hash and answers it, expired or not; `None`
    /// when there is none. Of concurrent takes of one link, exactly one gets
    /// it: that is what makes a link single use.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn take_link(
        &self,
        hash: &PortalTokenHash,
    ) -> Result<Option<PortalPass>, RepositoryError>;

    /// Stores a new session. Sessions past their end may be deleted on the way.
    /// Errors: [`RepositoryError::Conflict`] on a hash collision,
    /// [`RepositoryError::Unavailable`].
    async fn insert_session(&self, session: &PortalPass) -> Result<(), RepositoryError>;

    /// The session with this hash, expired or not; `None` when there is none.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find_session(
        &self,
        hash: &PortalTokenHash,
    ) -> Result<Option<PortalPass>, RepositoryError>;

    /// Deletes the session with this hash; `false` when there was none.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn delete_session(&self, hash: &PortalTokenHash) -> Result<bool, RepositoryError>;
}

/// Deletion of old finished rows, for retention. Every method deletes rows
/// that no concurrent caller holds, so several processes may prune one
/// database at once; deleting what is already gone deletes nothing.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Deletes up to `limit` succeeded or failed deliveries that finished
    /// before `finished_before`, with their attempts, in one transaction;
    /// with `events_accepted_before`, also their events accepted before it
    /// of which no delivery remains. Pending deliveries are never deleted.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn prune_finished_deliveries(
        &self,
        finished_before: UnixMillis,
        events_accepted_before: Option<UnixMillis>,
        limit: usize,
    ) -> Result<crate::retention::PrunedDeliveries, RepositoryError>;

    /// Looks at up to `limit` events accepted before `accepted_before` that
    /// no earlier call looked at, oldest first, and deletes those of which
    /// no delivery remains. The store remembers how far it got, for every
    /// process, so a pass costs what is new rather than the whole history.
    /// An event looked at while it still had deliveries goes with its last
    /// one ([`Self::prune_finished_deliveries`]); the store looks again at
    /// the events of a deleted webhook's deliveries.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn prune_events(
        &self,
        accepted_before: UnixMillis,
        limit: usize,
    ) -> Result<crate::retention::PrunedEvents, RepositoryError>;

    /// When the oldest finished delivery finished and the oldest event was
    /// accepted.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn oldest_kept(&self) -> Result<crate::retention::OldestKept, RepositoryError>;
}

/// Storage of the probes' schedule. Several processes may probe one
/// database: a claimed probe is hidden from other claims until its lease ends.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ProbeStore: Send + Sync {
    /// Claims up to `limit` webhooks disabled for failures at or after
    /// `disabled_since` whose probe is due at `now` (the first one `first`
    /// after disabling), and hides them from other claims until `lease_until`.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn claim_due_probes(
        &self,
        now: UnixMillis,
        first: std::time::Duration,
        disabled_since: UnixMillis,
        limit: usize,
        lease_until: UnixMillis,
    ) -> Result<Vec<crate::probes::ProbeTarget>, RepositoryError>;

    /// Applies `next` to a webhook still disabled for failures (else does
    /// nothing and answers `false`). [`ProbeNext::Enable`](crate::ProbeNext::Enable) enables it, ends
    /// its failure streak and clears its reason in one transaction with the
    /// operator endpoint's `webhook.enabled` (reason `probe`).
    /// Errors: [`RepositoryError::Unavailable`].
    async fn record_probe(
        &self,
        webhook: &WebhookId,
        next: crate::probes::ProbeNext,
        now: UnixMillis,
    ) -> Result<bool, RepositoryError>;
}
