//! Tenancy use cases behind `/admin` and the `admin` subcommands: organizations,
//! groups and API keys (the demo tenant of a brand-new database is in `demo.rs`).

use std::sync::Arc;

use crate::error::{Conflict, DomainError, RepositoryError, Resource};
use crate::ids::{ApiKeyId, GroupId, OrganizationId};
use crate::ports::{Clock, IdSource, TenancyRepository};
use crate::tenancy::{ApiKey, ApiKeySecret, DisplayName, Group, Organization};

/// The name of the operations group [`TenancyService::operations_group`] makes.
pub const OPERATIONS_GROUP_NAME: &str = "Operations";

/// Generated group ids are random; a collision is retried this many times.
const GROUP_ID_ATTEMPTS: usize = 8;

/// A new API key and its plaintext, which exists only in this answer.
#[derive(Debug)]
pub struct IssuedApiKey {
    /// The key as stored: its id and hash.
    pub key: ApiKey,
    /// The key itself.
    pub secret: ApiKeySecret,
}

/// Organizations, groups and API keys.
///
/// ```
/// # use std::sync::Arc;
/// # use webhooks_domain::*;
/// # async fn example(tenancy: Arc<dyn TenancyRepository>) -> Result<(), Box<dyn std::error::Error>> {
/// let admin = TenancyService::new(tenancy, Arc::new(SystemClock), Arc::new(RandomIds::default()));
/// let org = admin.create_organization(DisplayName::new("Acme")?).await?;
/// let group = admin
///     .create_group(&org.id, DisplayName::new("Production")?, GroupId::new(123456).ok())
///     .await?;
/// let issued = admin.create_api_key(&org.id).await?;
/// println!("group {} key {}", group.id, issued.secret.expose());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TenancyService {
    pub(super) tenancy: Arc<dyn TenancyRepository>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) ids: Arc<dyn IdSource>,
}

impl TenancyService {
    /// The service over its ports.
    pub fn new(
        tenancy: Arc<dyn TenancyRepository>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
    ) -> Self {
        Self {
            tenancy,
            clock,
            ids,
        }
    }

    /// A new organization.
    pub async fn create_organization(
        &self,
        name: DisplayName,
    ) -> Result<Organization, DomainError> {
        let organization = Organization {
            id: OrganizationId::from_ulid(self.ids.ulid()),
            name: name.into(),
            created_at: self.clock.now(),
        };
        self.tenancy.insert_organization(&organization).await?;
        Ok(organization)
    }

    /// A group of an organization, with the given id or a random free one.
    /// Errors: [`Resource::Organization`] not found;
    /// [`Conflict::GroupIdTaken`] when the id given is taken (or, unlikely,
    /// every generated one was).
    pub async fn create_group(
        &self,
        organization: &OrganizationId,
        name: DisplayName,
        id: Option<GroupId>,
    ) -> Result<Group, DomainError> {
        let organization_id = self.existing_organization(organization).await?;
        self.insert_group(organization_id, String::from(name), id, false)
            .await
    }

    /// The organization's operations group, or `None`.
    /// Errors: [`Resource::Organization`] not found.
    pub async fn find_operations_group(
        &self,
        organization: &OrganizationId,
    ) -> Result<Option<Group>, DomainError> {
        let organization_id = self.existing_organization(organization).await?;
        Ok(self.tenancy.find_operations_group(&organization_id).await?)
    }

    /// The organization's operations group, made (named
    /// [`OPERATIONS_GROUP_NAME`], with a random id) when it has none. Two
    /// concurrent calls get the same group.
    /// Errors: [`Resource::Organization`] not found.
    pub async fn operations_group(
        &self,
        organization: &OrganizationId,
    ) -> Result<Group, DomainError> {
        if let Some(group) = self.find_operations_group(organization).await? {
            return Ok(group);
        }
        let made = self
            .insert_group(
                organization.clone(),
                OPERATIONS_GROUP_NAME.to_owned(),
                None,
                true,
            )
            .await;
        match made {
            Ok(group) => Ok(group),
            // Another call made it meanwhile.
            Err(DomainError::Conflict(_)) => self
                .tenancy
                .find_operations_group(organization)
                .await?
                .ok_or_else(|| DomainError::Unexpected("operations group vanished".into())),
            Err(other) => Err(other),
        }
    }

    async fn insert_group(
        &self,
        organization_id: OrganizationId,
        name: String,
        id: Option<GroupId>,
        operations: bool,
    ) -> Result<Group, DomainError> {
        let attempts = if id.is_some() { 1 } else { GROUP_ID_ATTEMPTS };
        for _ in 0..attempts {
            let group = Group {
                id: id.unwrap_or_else(|| self.ids.group_id()),
                organization_id: organization_id.clone(),
                name: name.clone(),
                operations,
                created_at: self.clock.now(),
            };
            match self.tenancy.insert_group(&group).await {
                Ok(()) => return Ok(group),
                Err(RepositoryError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(DomainError::Conflict(Conflict::GroupIdTaken))
    }

    /// A new API key of an organization; the plaintext is in the answer only.
    /// Errors: [`Resource::Organization`] not found.
    pub async fn create_api_key(
        &self,
        organization: &OrganizationId,
    ) -> Result<IssuedApiKey, DomainError> {
        let organization_id = self.existing_organization(organization).await?;
        let secret = ApiKeySecret::generate();
        let key = ApiKey {
            id: ApiKeyId::from_ulid(self.ids.ulid()),
            organization_id,
            hash: secret.hash(),
            created_at: self.clock.now(),
            revoked_at: None,
        };
        self.tenancy.insert_api_key(&key).await?;
        Ok(IssuedApiKey { key, secret })
    }

    /// Revokes a key at once: the next request with it is not allowed.
    /// Revoking it again changes nothing. Errors: [`Resource::ApiKey`] not found.
    pub async fn revoke_api_key(&self, id: &ApiKeyId) -> Result<(), DomainError> {
        if self.tenancy.revoke_api_key(id, self.clock.now()).await? {
            Ok(())
        } else {
            Err(DomainError::NotFound(Resource::ApiKey))
        }
    }

    async fn existing_organization(
        &self,
        id: &OrganizationId,
    ) -> Result<OrganizationId, DomainError> {
        match self.tenancy.find_organization(id).await? {
            Some(organization) => Ok(organization.id),
            None => Err(DomainError::NotFound(Resource::Organization)),
        }
    }
}
