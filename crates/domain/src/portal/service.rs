//! The portal's use cases: make a link, open a session with it or with an API
//! key, recognise the session on each request, close it.

use std::sync::Arc;
use std::time::Duration;

use crate::error::DomainError;
use crate::ids::GroupId;
use crate::portal::{PortalGrant, PortalPass, PortalToken};
use crate::ports::{Clock, PortalStore, TenancyRepository};
use crate::tenancy::{ApiKeySecret, Principal};
use crate::time::UnixMillis;
use crate::webhooks::WebhookService;

/// How long a portal link stays usable unless configured otherwise.
pub const DEFAULT_LINK_TTL: Duration = Duration::from_secs(3600);
/// How long a portal session lasts unless configured otherwise.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// A link or a session just made: the secret to hand over, once, and its end.
#[derive(Debug)]
pub struct IssuedPass {
    /// The link's token or the session's secret; only its hash is stored.
    pub token: PortalToken,
    /// What it gives access to.
    pub grant: PortalGrant,
    /// When it was made.
    pub issued_at: UnixMillis,
    /// From when it is refused.
    pub expires_at: UnixMillis,
}

/// The portal's sessions and links.
///
/// ```
/// # use std::sync::Arc;
/// # use webhooks_domain::*;
/// # async fn example(portal: PortalService, key: ApiKeySecret) -> Result<(), DomainError> {
/// let platform = portal.webhooks().authenticate(&key).await?;
/// let link = portal.create_link(&platform, GroupId::new(123456)?).await?;
/// // …the customer opens the link:
/// let session = portal.open_with_link(&link.token).await?;
/// let caller = portal.authenticate(&session.token).await?;
/// assert_eq!(caller.group, Some(GroupId::new(123456)?));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PortalService {
    store: Arc<dyn PortalStore>,
    tenancy: Arc<dyn TenancyRepository>,
    webhooks: WebhookService,
    clock: Arc<dyn Clock>,
    link_ttl: Duration,
    session_ttl: Duration,
}

impl PortalService {
    /// The service over its ports, with the default lifetimes.
    pub fn new(
        store: Arc<dyn PortalStore>,
        tenancy: Arc<dyn TenancyRepository>,
        webhooks: WebhookService,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            tenancy,
            webhooks,
            clock,
            link_ttl: DEFAULT_LINK_TTL,
            session_ttl: DEFAULT_SESSION_TTL,
        }
    }

    /// Sets how long a link stays usable and how long a session lasts.
    pub fn with_lifetimes(mut self, link_ttl: Duration, session_ttl: Duration) -> Self {
        self.link_ttl = link_ttl;
        self.session_ttl = session_ttl;
        self
    }

    /// The webhook service whose checks the portal shares.
    pub fn webhooks(&self) -> &WebhookService {
        &self.webhooks
    }

    /// A single-use link to the portal of `group`, made by the platform with
    /// its API key. A portal session cannot make links: that would let a
    /// session outlive its end.
    /// Errors: [`DomainError::NotAllowed`] for a portal session,
    /// [`Resource::Group`](crate::Resource::Group) not found.
    pub async fn create_link(
        &self,
        caller: &Principal,
        group: GroupId,
    ) -> Result<IssuedPass, DomainError> {
        if caller.group.is_some() {
            return Err(DomainError::NotAllowed);
        }
        self.webhooks.authorize_group(caller, group).await?;
        let grant = PortalGrant {
            group_id: group,
            organization_id: caller.organization_id.clone(),
            api_key_id: caller.api_key_id.clone(),
        };
        let (pass, issued) = self.issue(grant, self.link_ttl);
        self.store.insert_link(&pass).await?;
        Ok(issued)
    }

    /// Opens a session with a link's token. The link is used up whatever
    /// happens next; an unknown, used or expired link, or one whose API key
    /// was revoked since, is [`DomainError::NotAllowed`].
    pub async fn open_with_link(&self, token: &PortalToken) -> Result<IssuedPass, DomainError> {
        let link = self.store.take_link(&token.hash()).await?;
        let link = link.ok_or(DomainError::NotAllowed)?;
        if !link.is_live(self.clock.now()) || !self.key_is_live(&link.grant).await? {
            return Err(DomainError::NotAllowed);
        }
        self.open(link.grant).await
    }

    /// Opens a session on `group` with an API key, checked as the API checks it.
    /// Errors: [`DomainError::NotAllowed`], then
    /// [`Resource::Group`](crate::Resource::Group) not found.
    pub async fn open_with_key(
        &self,
        key: &ApiKeySecret,
        group: GroupId,
    ) -> Result<IssuedPass, DomainError> {
        let caller = self.webhooks.authenticate(key).await?;
        self.webhooks.authorize_group(&caller, group).await?;
        self.open(PortalGrant {
            group_id: group,
            organization_id: caller.organization_id,
            api_key_id: caller.api_key_id,
        })
        .await
    }

    /// The session a cookie names, while it lasts and its API key stands. An
    /// expired session, or one whose key was revoked, is deleted on the way.
    /// Errors: [`DomainError::NotAllowed`].
    pub async fn session(&self, secret: &PortalToken) -> Result<PortalPass, DomainError> {
        if secret.expose().is_empty() {
            return Err(DomainError::NotAllowed);
        }
        let hash = secret.hash();
        let session = self.store.find_session(&hash).await?;
        let session = session.ok_or(DomainError::NotAllowed)?;
        if session.is_live(self.clock.now()) && self.key_is_live(&session.grant).await? {
            return Ok(session);
        }
        self.store.delete_session(&hash).await?;
        Err(DomainError::NotAllowed)
    }

    /// The caller a session cookie stands for: limited to its group.
    /// Errors: as [`PortalService::session`].
    pub async fn authenticate(&self, secret: &PortalToken) -> Result<Principal, DomainError> {
        Ok(self.session(secret).await?.grant.principal())
    }

    /// Signs out: the session is deleted, so its cookie opens nothing more.
    /// Closing an unknown session is not an error.
    pub async fn close(&self, secret: &PortalToken) -> Result<(), DomainError> {
        self.store.delete_session(&secret.hash()).await?;
        Ok(())
    }

    async fn open(&self, grant: PortalGrant) -> Result<IssuedPass, DomainError> {
        let (pass, issued) = self.issue(grant, self.session_ttl);
        self.store.insert_session(&pass).await?;
        Ok(issued)
    }

    fn issue(&self, grant: PortalGrant, ttl: Duration) -> (PortalPass, IssuedPass) {
        let now = self.clock.now();
        let expires_at = now.plus_millis(crate::time::millis(ttl));
        let token = PortalToken::generate();
        let pass = PortalPass {
            hash: token.hash(),
            grant: grant.clone(),
            created_at: now,
            expires_at,
        };
        let issued = IssuedPass {
            token,
            grant,
            issued_at: now,
            expires_at,
        };
        (pass, issued)
    }

    async fn key_is_live(&self, grant: &PortalGrant) -> Result<bool, DomainError> {
        let key = self.tenancy.find_api_key(&grant.api_key_id).await?;
        Ok(key.is_some_and(|key| key.revoked_at.is_none()))
    }
}
