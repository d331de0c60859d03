//! The use cases of an organization's operator endpoint: set it, show it,
//! remove it. It is the oldest webhook of the organization's operations
//! group, made with that group on the first set.

use std::sync::Arc;

use crate::error::{DomainError, Field, InvalidValue, Resource};
use crate::ids::{OrganizationId, WebhookId};
use crate::ports::{Clock, IdSource, WebhookRepository};
use crate::signing::{SecretCipher, SigningSecret};
use crate::tenancy::{Group, TenancyService};
use crate::webhooks::{Description, EnabledEvents, Webhook, WebhookStatus, WebhookUrl};

/// The description of an operator endpoint made by [`OperatorEndpoints::set`].
pub const OPERATOR_ENDPOINT_DESCRIPTION: &str = "Operator endpoint";

/// An organization's operator endpoint: the webhook, in its operations group.
#[derive(Debug, Clone)]
pub struct OperatorEndpoint {
    /// The organization's operations group.
    pub group: Group,
    /// The webhook that receives the operational events.
    pub webhook: Webhook,
}

/// What [`OperatorEndpoints::set`] did.
#[derive(Debug, Clone)]
pub struct SetOperatorEndpoint {
    /// The endpoint as stored.
    pub endpoint: OperatorEndpoint,
    /// Its signing secret.
    pub secret: SigningSecret,
    /// Whether this call made the webhook.
    pub created: bool,
}

/// The operator endpoints of organizations, for the admin API and the admin
/// subcommands.
///
/// ```
/// # use std::sync::Arc;
/// # use webhooks_domain::*;
/// # async fn example(webhooks: Arc<dyn WebhookRepository>, tenancy: TenancyService, org: OrganizationId) -> Result<(), Box<dyn std::error::Error>> {
/// let operators = OperatorEndpoints::new(
///     webhooks,
///     tenancy,
///     Arc::new(SystemClock),
///     Arc::new(RandomIds::default()),
///     SecretCipher::from_base64(&SecretCipher::generate_key())?,
/// );
/// let set = operators
///     .set(&org, WebhookUrl::new("https://ops.example/hooks")?, EnabledEvents::operational())
///     .await?;
/// println!("group {} signs with {}", set.endpoint.group.id, set.secret.expose());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OperatorEndpoints {
    webhooks: Arc<dyn WebhookRepository>,
    tenancy: TenancyService,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    cipher: SecretCipher,
}

impl OperatorEndpoints {
    /// The use cases over their ports; `cipher` seals the signing secrets.
    pub fn new(
        webhooks: Arc<dyn WebhookRepository>,
        tenancy: TenancyService,
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
        }
    }

    /// Points the organization's operator endpoint at `url` for `events`
    /// (operational types only): makes the operations group and its webhook
    /// on the first call, changes the URL and events after.
    /// Errors: [`Resource::Organization`] not found; [`Field::EnabledEvents`]
    /// invalid when `events` names a published type.
    pub async fn set(
        &self,
        organization: &OrganizationId,
        url: WebhookUrl,
        events: EnabledEvents,
    ) -> Result<SetOperatorEndpoint, DomainError> {
        if events.iter().any(|event| !event.is_operational()) {
            return Err(
                InvalidValue::new(Field::EnabledEvents, "names a published event type").into(),
            );
        }
        let group = self.tenancy.operations_group(organization).await?;
        let now = self.clock.now();
        let (webhook, secret, created) = match self.current(&group).await? {
            Some(mut webhook) => {
                webhook.url = url;
                webhook.enabled_events = events;
                webhook.updated_at = now;
                if !self.webhooks.update(&webhook, None).await? {
                    return Err(DomainError::NotFound(Resource::Webhook));
                }
                let secret = self
                    .cipher
                    .open(&webhook.secret)
                    .map_err(|err| DomainError::Unexpected(err.to_string()))?;
                (webhook, secret, false)
            }
            None => {
                let secret = SigningSecret::generate();
                let webhook = Webhook {
                    id: WebhookId::from_ulid(self.ids.ulid()),
                    group_id: group.id,
                    url,
                    description: Description::new(OPERATOR_ENDPOINT_DESCRIPTION)?,
                    status: WebhookStatus::Enabled,
                    enabled_events: events,
                    rate_limit: None,
                    secret: self.cipher.seal(&secret),
                    headers: None,
                    ordering: None,
                    created_at: now,
                    updated_at: now,
                };
                self.webhooks.insert(&webhook).await?;
                (webhook, secret, true)
            }
        };
        let endpoint = OperatorEndpoint { group, webhook };
        Ok(SetOperatorEndpoint {
            endpoint,
            secret,
            created,
        })
    }

    /// The organization's operator endpoint.
    /// Errors: [`Resource::Organization`], then [`Resource::OperatorEndpoint`], not found.
    pub async fn find(
        &self,
        organization: &OrganizationId,
    ) -> Result<OperatorEndpoint, DomainError> {
        let group = self.tenancy.find_operations_group(organization).await?;
        let Some(group) = group else {
            return Err(DomainError::NotFound(Resource::OperatorEndpoint));
        };
        match self.current(&group).await? {
            Some(webhook) => Ok(OperatorEndpoint { group, webhook }),
            None => Err(DomainError::NotFound(Resource::OperatorEndpoint)),
        }
    }

    /// Deletes the operator endpoint's webhook (and its deliveries); the
    /// operations group stays, so a later set keeps its `groupID`.
    /// Errors: as [`OperatorEndpoints::find`].
    pub async fn remove(&self, organization: &OrganizationId) -> Result<(), DomainError> {
        let endpoint = self.find(organization).await?;
        if self
            .webhooks
            .delete(endpoint.group.id, &endpoint.webhook.id)
            .await?
        {
            Ok(())
        } else {
            Err(DomainError::NotFound(Resource::OperatorEndpoint))
        }
    }

    /// The oldest webhook of the operations group.
    async fn current(&self, group: &Group) -> Result<Option<Webhook>, DomainError> {
        Ok(self
            .webhooks
            .list_by_group(group.id)
            .await?
            .into_iter()
            .next())
    }
}
