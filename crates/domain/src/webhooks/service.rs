//! The use cases of the public webhook API, with the seed's checks in the seed's order:
//! API key, `groupID`, `webhookID`, body, group, webhook.

use std::sync::Arc;
use std::time::Duration;

use crate::error::WebhookError;
use crate::ids::{GroupId, WebhookId};
use crate::ports::{Clock, IdSource, TenancyRepository, WebhookRepository};
use crate::signing::{SecretCipher, SigningSecret};
use crate::tenancy::{ApiKeySecret, Principal};
use crate::webhooks::{NewWebhookRequest, Webhook, WebhookStatus, WebhookUpdateRequest};

/// The public webhook API as use cases. Path parameters and bodies come in
/// raw, exactly as the client sent them, so every rule lives here.
///
/// ```
/// # use std::sync::Arc;
/// # use webhooks_domain::*;
/// # async fn example(webhooks: Arc<dyn WebhookRepository>, tenancy: Arc<dyn TenancyRepository>) -> Result<(), WebhookError> {
/// let service = WebhookService::new(
///     webhooks,
///     tenancy,
///     Arc::new(SystemClock),
///     Arc::new(RandomIds::default()),
///     SecretCipher::from_base64(&SecretCipher::generate_key()).unwrap(),
/// );
/// let caller = service.authenticate(Some("okw_…")).await?;
/// let body = br#"{"url":"https://integration.example/webhook","description":"Webhook Description"}"#;
/// let created = service.create(&caller, Some("123456"), body).await?;
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
    pub webhook: Webhook,
    pub secret: SigningSecret,
}

impl WebhookService {
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

    /// Check 1: the `x-api-key` header. Missing, unknown or revoked →
    /// [`WebhookError::Unauthorized`].
    pub async fn authenticate(&self, api_key: Option<&str>) -> Result<Principal, WebhookError> {
        let presented = match api_key {
            Some(raw) if !raw.is_empty() => ApiKeySecret::from_header(raw).hash(),
            _ => return Err(WebhookError::Unauthorized),
        };
        let stored = self.tenancy.find_api_key_by_hash(&presented).await?;
        match stored {
            Some(key) if key.revoked_at.is_none() && key.hash.matches(&presented) => {
                Ok(Principal {
                    organization_id: key.organization_id,
                    api_key_id: key.id,
                })
            }
            _ => Err(WebhookError::Unauthorized),
        }
    }

    /// `GET /webhooks/{groupID}`: the group's webhooks, oldest first.
    pub async fn list(
        &self,
        caller: &Principal,
        group: Option<&str>,
    ) -> Result<Vec<Webhook>, WebhookError> {
        let group = GroupId::parse(group)?;
        self.authorize_group(caller, group).await?;
        Ok(self.webhooks.list_by_group(group).await?)
    }

    /// `GET /webhooks/{groupID}/{webhookID}`.
    pub async fn get(
        &self,
        caller: &Principal,
        group: Option<&str>,
        webhook: Option<&str>,
    ) -> Result<Webhook, WebhookError> {
        let (group, webhook) = parse_path(group, webhook)?;
        self.authorize_group(caller, group).await?;
        self.find(group, webhook).await
    }

    /// `POST /webhooks/{groupID}`: a new, enabled webhook with a fresh secret.
    pub async fn create(
        &self,
        caller: &Principal,
        group: Option<&str>,
        body: &[u8],
    ) -> Result<CreatedWebhook, WebhookError> {
        let group = GroupId::parse(group)?;
        let request = NewWebhookRequest::from_json(body)?;
        self.authorize_group(caller, group).await?;
        let now = self.clock.now();
        let secret = SigningSecret::generate();
        let webhook = Webhook {
            id: WebhookId::from_ulid(self.ids.ulid()),
            group_id: group,
            url: request.url,
            description: request.description,
            status: WebhookStatus::Enabled,
            enabled_events: request.enabled_events,
            rate_limit: None,
            secret: self.cipher.seal(&secret),
            created_at: now,
            updated_at: now,
        };
        self.webhooks.insert(&webhook).await?;
        Ok(CreatedWebhook { webhook, secret })
    }

    /// `PUT /webhooks/{groupID}/{webhookID}`.
    pub async fn update(
        &self,
        caller: &Principal,
        group: Option<&str>,
        webhook: Option<&str>,
        body: &[u8],
    ) -> Result<Webhook, WebhookError> {
        let (group, webhook) = parse_path(group, webhook)?;
        let request = WebhookUpdateRequest::from_json(body)?;
        self.authorize_group(caller, group).await?;
        let current = self.find(group, webhook).await?;
        let updated = request.apply_to(current, self.clock.now());
        if !self.webhooks.update(&updated).await? {
            // Deleted between our read and our write.
            return Err(WebhookError::WebhookNotFound);
        }
        Ok(updated)
    }

    /// `DELETE /webhooks/{groupID}/{webhookID}`.
    pub async fn delete(
        &self,
        caller: &Principal,
        group: Option<&str>,
        webhook: Option<&str>,
    ) -> Result<(), WebhookError> {
        let (group, webhook) = parse_path(group, webhook)?;
        self.authorize_group(caller, group).await?;
        let id = webhook.ok_or(WebhookError::WebhookNotFound)?;
        if self.webhooks.delete(group, &id).await? {
            Ok(())
        } else {
            Err(WebhookError::WebhookNotFound)
        }
    }

    /// `GET /webhooks/{groupID}/{webhookID}/secret`: the current signing secret.
    pub async fn secret(
        &self,
        caller: &Principal,
        group: Option<&str>,
        webhook: Option<&str>,
    ) -> Result<SigningSecret, WebhookError> {
        let webhook = self.get(caller, group, webhook).await?;
        self.cipher
            .open(&webhook.secret)
            .map_err(|err| WebhookError::Unexpected(err.to_string()))
    }

    /// `POST /webhooks/{groupID}/{webhookID}/secret/rotate`: a new secret
    /// signs from now on; the old one signs too until the grace period ends.
    pub async fn rotate_secret(
        &self,
        caller: &Principal,
        group: Option<&str>,
        webhook: Option<&str>,
    ) -> Result<SigningSecret, WebhookError> {
        let webhook = self.get(caller, group, webhook).await?;
        let secret = SigningSecret::generate();
        let grace = i64::try_from(self.rotation_grace.as_millis()).unwrap_or(i64::MAX);
        let expires = self.clock.now().plus_millis(grace);
        let sealed = self.cipher.seal(&secret);
        if self
            .webhooks
            .rotate_secret(webhook.group_id, &webhook.id, &sealed, expires)
            .await?
        {
            Ok(secret)
        } else {
            Err(WebhookError::WebhookNotFound)
        }
    }

    /// Check 5: the group exists and belongs to the caller's organization.
    /// Another organization's group is "not found", never "forbidden".
    async fn authorize_group(
        &self,
        caller: &Principal,
        group: GroupId,
    ) -> Result<(), WebhookError> {
        match self.tenancy.find_group(group).await? {
            Some(found) if found.organization_id == caller.organization_id => Ok(()),
            _ => Err(WebhookError::GroupNotFound),
        }
    }

    /// Check 6. A `webhookID` of the wrong shape cannot exist, so it is "not found".
    async fn find(&self, group: GroupId, id: Option<WebhookId>) -> Result<Webhook, WebhookError> {
        let id = id.ok_or(WebhookError::WebhookNotFound)?;
        self.webhooks
            .find(group, &id)
            .await?
            .ok_or(WebhookError::WebhookNotFound)
    }
}

/// Checks 2 and 3. The webhook id is `None` when present but malformed.
fn parse_path(
    group: Option<&str>,
    webhook: Option<&str>,
) -> Result<(GroupId, Option<WebhookId>), WebhookError> {
    let group = GroupId::parse(group)?;
    match webhook {
        None | Some("") => Err(WebhookError::MissingWebhookId),
        Some(raw) => Ok((group, WebhookId::parse(raw))),
    }
}
