//! The use cases of the public webhook API. They take typed values: reading
//! path segments and JSON bodies, and the order of those checks, is the
//! inbound adapter's job. Here: the API key, then the group (it exists and
//! belongs to the caller), then the webhook.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{DomainError, Field, InvalidValue, Resource};
use crate::ids::{GroupId, WebhookId};
use crate::operations::StatusChange;
use crate::ports::{Clock, IdSource, TenancyRepository, WebhookRepository};
use crate::signing::{SecretCipher, SigningSecret};
use crate::tenancy::{ApiKeySecret, Group, Principal};
use crate::webhooks::{EnabledEvents, NewWebhook, Webhook, WebhookStatus, WebhookUpdate};

/// The public webhook API as use cases: authenticate a caller, then list,
/// read, create, update and delete the webhooks of the caller's groups and
/// read or rotate their signing secrets.
///
/// ```
/// # use std::sync::Arc;
/// # use webhooks_domain::*;
/// # async fn example(webhooks: Arc<dyn WebhookRepository>, tenancy: Arc<dyn TenancyRepository>) -> Result<(), Box<dyn std::error::Error>> {
/// let service = WebhookService::new(
///     webhooks,
///     tenancy,
///     Arc::new(SystemClock),
///     Arc::new(RandomIds::default()),
///     SecretCipher::from_base64(&SecretCipher::generate_key())?,
/// );
/// let caller = service.authenticate(&ApiKeySecret::from_header("okw_…")).await?;
/// let created = service
///     .create(
///         &caller,
///         GroupId::new(123456)?,
///         NewWebhook {
///             url: WebhookUrl::new("https://integration.example/webhook")?,
///             description: Description::new("Webhook Description")?,
///             enabled_events: EnabledEvents::all(),
///             headers: None,
///             ordering: None,
///         },
///     )
///     .await?;
/// println!("{} signs with {}", created.webhook.id, created.secret.expose());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct WebhookService {
    webhooks: Arc<dyn WebhookRepository>,
    tenancy: Arc<dyn TenancyRepository>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    cipher: SecretCipher,
    rotation_grace: Duration,
}

/// How long a replaced secret keeps signing, unless configured otherwise.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// A webhook just created, with its signing secret in the clear (shown once
/// here, and later only through the secret endpoint).
#[derive(Debug, Clone)]
pub struct CreatedWebhook {
    /// The webhook as stored.
    pub webhook: Webhook,
    /// Its signing secret.
    pub secret: SigningSecret,
}

impl WebhookService {
    /// The service over its ports; `cipher` seals the signing secrets.
    pub fn new(
        webhooks: Arc<dyn WebhookRepository>,
        tenancy: Arc<dyn TenancyRepository>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
        cipher: SecretCipher,
    ) -> Self {
        Self {
            webhooks,
            tenancy,
            clock,
            ids,
            cipher,
            rotation_grace: DEFAULT_ROTATION_GRACE,
        }
    }

    /// Sets how long a replaced secret keeps signing after a rotation.
    pub fn with_rotation_grace(mut self, grace: Duration) -> Self {
        self.rotation_grace = grace;
        self
    }

    /// Who holds this API key. An empty, unknown or revoked key is
    /// [`DomainError::NotAllowed`]; an empty one is not even looked up.
    pub async fn authenticate(&self, key: &ApiKeySecret) -> Result<Principal, DomainError> {
        if key.expose().is_empty() {
            return Err(DomainError::NotAllowed);
        }
        let presented = key.hash();
        let stored = self.tenancy.find_api_key_by_hash(&presented).await?;
        match stored {
            Some(key) if key.revoked_at.is_none() && key.hash.matches(&presented) => {
                Ok(Principal {
                    organization_id: key.organization_id,
                    api_key_id: key.id,
                    group: None,
                })
            }
            _ => Err(DomainError::NotAllowed),
        }
    }

    /// Checks the group exists and belongs to the caller's organization (and,
    /// for a portal session, is its group). Another group is
    /// [`Resource::Group`] not found, never "forbidden". Every other use case here starts with this check; an
    /// adapter calls it alone to answer in the same order for a request that
    /// names a webhook that cannot exist.
    pub async fn authorize_group(
        &self,
        caller: &Principal,
        group: GroupId,
    ) -> Result<(), DomainError> {
        self.authorized_group(caller, group).await.map(drop)
    }

    async fn authorized_group(
        &self,
        caller: &Principal,
        group: GroupId,
    ) -> Result<Group, DomainError> {
        if caller.group.is_some_and(|only| only != group) {
            return Err(DomainError::NotFound(Resource::Group));
        }
        match self.tenancy.find_group(group).await? {
            Some(found) if found.organization_id == caller.organization_id => Ok(found),
            _ => Err(DomainError::NotFound(Resource::Group)),
        }
    }

    /// The group's webhooks, oldest first.
    /// Errors: [`Resource::Group`] not found.
    pub async fn list(
        &self,
        caller: &Principal,
        group: GroupId,
    ) -> Result<Vec<Webhook>, DomainError> {
        self.authorize_group(caller, group).await?;
        Ok(self.webhooks.list_by_group(group).await?)
    }

    /// One webhook of the group.
    /// Errors: [`Resource::Group`], then [`Resource::Webhook`], not found.
    pub async fn get(
        &self,
        caller: &Principal,
        group: GroupId,
        webhook: &WebhookId,
    ) -> Result<Webhook, DomainError> {
        self.authorize_group(caller, group).await?;
        self.find(group, webhook).await
    }

    /// A new, enabled webhook with a fresh signing secret.
    /// Errors: [`Resource::Group`] not found; [`Field::EnabledEvents`]
    /// invalid when it names an operational event type outside the
    /// operations group.
    pub async fn create(
        &self,
        caller: &Principal,
        group: GroupId,
        new: NewWebhook,
    ) -> Result<CreatedWebhook, DomainError> {
        let found = self.authorized_group(caller, group).await?;
        check_events_fit(&new.enabled_events, &found)?;
        let now = self.clock.now();
        let secret = SigningSecret::generate();
        let webhook = Webhook {
            id: WebhookId::from_ulid(self.ids.ulid()),
            group_id: group,
            url: new.url,
            description: new.description,
            status: WebhookStatus::Enabled,
            enabled_events: new.enabled_events,
            rate_limit: None,
            secret: self.cipher.seal(&secret),
            headers: self.cipher.seal_optional_headers(new.headers),
            ordering: new.ordering,
            created_at: now,
            updated_at: now,
        };
        self.webhooks.insert(&webhook).await?;
        Ok(CreatedWebhook { webhook, secret })
    }

    /// Applies `update` to the webhook and stores it; a change of status is
    /// stored as the owner's ([`StatusChange::by_owner`]).
    /// Errors: [`Resource::Group`], then [`Resource::Webhook`], not found
    /// (also when it is deleted meanwhile); [`Field::EnabledEvents`] as on
    /// [`WebhookService::create`].
    pub async fn update(
        &self,
        caller: &Principal,
        group: GroupId,
        webhook: &WebhookId,
        update: WebhookUpdate,
    ) -> Result<Webhook, DomainError> {
        let found = self.authorized_group(caller, group).await?;
        let current = self.find(group, webhook).await?;
        if let Some(events) = &update.enabled_events {
            check_events_fit(events, &found)?;
        }
        let before = current.status;
        let updated = update.apply_to(current, self.clock.now(), &self.cipher);
        let change = StatusChange::by_owner(before, updated.status);
        if !self.webhooks.update(&updated, change).await? {
            // Deleted between our read and our write.
            return Err(DomainError::NotFound(Resource::Webhook));
        }
        Ok(updated)
    }

    /// Deletes the webhook and its deliveries.
    /// Errors: [`Resource::Group`], then [`Resource::Webhook`], not found.
    pub async fn delete(
        &self,
        caller: &Principal,
        group: GroupId,
        webhook: &WebhookId,
    ) -> Result<(), DomainError> {
        self.authorize_group(caller, group).await?;
        if self.webhooks.delete(group, webhook).await? {
            Ok(())
        } else {
            Err(DomainError::NotFound(Resource::Webhook))
        }
    }

    /// The webhook's current signing secret.
    /// Errors: as [`WebhookService::get`]; a secret that cannot be opened is
    /// [`DomainError::Unexpected`].
    pub async fn secret(
        &self,
        caller: &Principal,
        group: GroupId,
        webhook: &WebhookId,
    ) -> Result<SigningSecret, DomainError> {
        let webhook = self.get(caller, group, webhook).await?;
        self.cipher
            .open(&webhook.secret)
            .map_err(|err| DomainError::Unexpected(err.to_string()))
    }

    /// A new secret signs from now on; the old one signs too until the grace
    /// period ends. Errors: as [`WebhookService::get`].
    pub async fn rotate_secret(
        &self,
        caller: &Principal,
        group: GroupId,
        webhook: &WebhookId,
    ) -> Result<SigningSecret, DomainError> {
        let webhook = self.get(caller, group, webhook).await?;
        let secret = SigningSecret::generate();
        let grace = crate::time::millis(self.rotation_grace);
        let expires = self.clock.now().plus_millis(grace);
        let sealed = self.cipher.seal(&secret);
        if self
            .webhooks
            .rotate_secret(webhook.group_id, &webhook.id, &sealed, expires)
            .await?
        {
            Ok(secret)
        } else {
            Err(DomainError::NotFound(Resource::Webhook))
        }
    }

    async fn find(&self, group: GroupId, id: &WebhookId) -> Result<Webhook, DomainError> {
        self.webhooks
            .find(group, id)
            .await?
            .ok_or(DomainError::NotFound(Resource::Webhook))
    }
}

/// Operational event types are for the operations group's webhooks only.
fn check_events_fit(events: &EnabledEvents, group: &Group) -> Result<(), InvalidValue> {
    if events.has_operational() && !group.operations {
        return Err(InvalidValue::new(
            Field::EnabledEvents,
            "an operational event type outside the operations group",
        ));
    }
    Ok(())
}
