//! The ports: what the use cases need from the outside world. Adapters
//! (Diesel, HTTP) implement them; tests use the `mockall` mocks.

use async_trait::async_trait;

use crate::error::RepositoryError;
use crate::ids::{ApiKeyId, GroupId, OrganizationId, WebhookId};
use crate::tenancy::{ApiKey, ApiKeyHash, Group, Organization};
use crate::time::UnixMillis;
use crate::webhook::Webhook;

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
    /// and id); `false` when there was none.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn update(&self, webhook: &Webhook) -> Result<bool, RepositoryError>;

    /// Deletes a webhook; `false` when there was none.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn delete(&self, group: GroupId, id: &WebhookId) -> Result<bool, RepositoryError>;
}

/// Storage of organizations, groups and API keys.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TenancyRepository: Send + Sync {
    /// Errors: [`RepositoryError::Unavailable`].
    async fn insert_organization(&self, organization: &Organization)
        -> Result<(), RepositoryError>;

    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find_organization(
        &self,
        id: &OrganizationId,
    ) -> Result<Option<Organization>, RepositoryError>;

    /// Whether no organization exists yet (a brand-new database).
    /// Errors: [`RepositoryError::Unavailable`].
    async fn is_empty(&self) -> Result<bool, RepositoryError>;

    /// Errors: [`RepositoryError::Conflict`] when the group id is taken,
    /// [`RepositoryError::Unavailable`].
    async fn insert_group(&self, group: &Group) -> Result<(), RepositoryError>;

    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find_group(&self, id: GroupId) -> Result<Option<Group>, RepositoryError>;

    /// Errors: [`RepositoryError::Conflict`] on a hash collision, [`RepositoryError::Unavailable`].
    async fn insert_api_key(&self, key: &ApiKey) -> Result<(), RepositoryError>;

    /// The key with this hash, revoked or not.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find_api_key_by_hash(
        &self,
        hash: &ApiKeyHash,
    ) -> Result<Option<ApiKey>, RepositoryError>;

    /// Marks a key revoked; `false` when no such key exists. Revoking twice is
    /// not an error and keeps the first revocation time.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn revoke_api_key(&self, id: &ApiKeyId, at: UnixMillis) -> Result<bool, RepositoryError>;
}

/// The current time; a port so tests can pin it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> UnixMillis;
}

/// Fresh identifiers; a port so tests can pin them.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait IdSource: Send + Sync {
    /// A ULID that sorts after every earlier one from this source.
    fn ulid(&self) -> ulid::Ulid;

    /// A random group id in `100000 ..= MAX_GENERATED_GROUP_ID`.
    fn group_id(&self) -> GroupId;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMillis {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        UnixMillis(millis)
    }
}

/// Monotonic ULIDs and random group ids.
#[derive(Default)]
pub struct RandomIds {
    generator: std::sync::Mutex<ulid::Generator>,
}

impl IdSource for RandomIds {
    fn ulid(&self) -> ulid::Ulid {
        let mut generator = match self.generator.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Overflow needs 2^80 ids in one millisecond; fall back to a plain ULID.
        generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
    }

    fn group_id(&self) -> GroupId {
        use rand::Rng;
        let value = rand::rng().random_range(100_000..=crate::ids::MAX_GENERATED_GROUP_ID);
        GroupId::generated(value)
    }
}
