//! Tenancy use cases behind `/admin` and the `admin` subcommands: organizations,
//! groups and API keys, plus the demo tenant of a brand-new database.

use std::sync::Arc;

use thiserror::Error;

use crate::error::RepositoryError;
use crate::ids::{ApiKeyId, GroupId, OrganizationId};
use crate::ports::{Clock, IdSource, TenancyRepository};
use crate::tenancy::{valid_name, ApiKey, ApiKeySecret, Group, Organization};

/// The group id of the demo tenant: the one the seed document's examples use.
pub const DEMO_GROUP_ID: i64 = 123_456;

/// Generated group ids are random; a collision is retried this many times.
const GROUP_ID_ATTEMPTS: usize = 8;

/// What an admin call can answer besides success; `Display` is the client text.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AdminError {
    #[error("Invalid JSON body")]
    InvalidJsonBody,
    #[error("Invalid name")]
    InvalidName,
    #[error("Invalid id")]
    InvalidGroupId,
    #[error("Organization not found")]
    OrganizationNotFound,
    #[error("Group id already exists")]
    GroupIdTaken,
    #[error("API key not found")]
    ApiKeyNotFound,
    #[error("unexpected: {0}")]
    Unexpected(String),
}

impl From<RepositoryError> for AdminError {
    fn from(err: RepositoryError) -> Self {
        AdminError::Unexpected(err.to_string())
    }
}

/// A new API key and its plaintext, which exists only in this answer.
#[derive(Debug)]
pub struct IssuedApiKey {
    pub key: ApiKey,
    pub secret: ApiKeySecret,
}

/// The tenant made on a brand-new database so a newcomer can try the API at once.
#[derive(Debug)]
pub struct DemoTenant {
    pub organization: Organization,
    pub group: Group,
    pub api_key: IssuedApiKey,
}

/// Organizations, groups and API keys.
///
/// ```
/// # use std::sync::Arc;
/// # use webhooks_domain::*;
/// # async fn example(tenancy: Arc<dyn TenancyRepository>) -> Result<(), AdminError> {
/// let admin = TenancyService::new(tenancy, Arc::new(SystemClock), Arc::new(RandomIds::default()));
/// let org = admin.create_organization("Acme").await?;
/// let group = admin.create_group(org.id.as_str(), "Production", None).await?;
/// let issued = admin.create_api_key(org.id.as_str()).await?;
/// println!("group {} key {}", group.id, issued.secret.expose());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TenancyService {
    tenancy: Arc<dyn TenancyRepository>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
}

impl TenancyService {
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

    pub async fn create_organization(&self, name: &str) -> Result<Organization, AdminError> {
        let organization = Organization {
            id: OrganizationId::from_ulid(self.ids.ulid()),
            name: valid_name(name).ok_or(AdminError::InvalidName)?,
            created_at: self.clock.now(),
        };
        self.tenancy.insert_organization(&organization).await?;
        Ok(organization)
    }

    /// A group of an organization, with the given id or a random free one.
    pub async fn create_group(
        &self,
        organization: &str,
        name: &str,
        id: Option<i64>,
    ) -> Result<Group, AdminError> {
        let name = valid_name(name).ok_or(AdminError::InvalidName)?;
        let requested = id
            .map(|raw| GroupId::new(raw).map_err(|_| AdminError::InvalidGroupId))
            .transpose()?;
        let organization_id = self.existing_organization(organization).await?;
        let attempts = if requested.is_some() {
            1
        } else {
            GROUP_ID_ATTEMPTS
        };
        for _ in 0..attempts {
            let group = Group {
                id: requested.unwrap_or_else(|| self.ids.group_id()),
                organization_id: organization_id.clone(),
                name: name.clone(),
                created_at: self.clock.now(),
            };
            match self.tenancy.insert_group(&group).await {
                Ok(()) => return Ok(group),
                Err(RepositoryError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(AdminError::GroupIdTaken)
    }

    /// A new API key of an organization; the plaintext is in the answer only.
    pub async fn create_api_key(&self, organization: &str) -> Result<IssuedApiKey, AdminError> {
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

    /// Revokes a key at once: the next request with it is unauthorized.
    pub async fn revoke_api_key(&self, id: &str) -> Result<(), AdminError> {
        let id = ApiKeyId::parse(id).ok_or(AdminError::ApiKeyNotFound)?;
        if self.tenancy.revoke_api_key(&id, self.clock.now()).await? {
            Ok(())
        } else {
            Err(AdminError::ApiKeyNotFound)
        }
    }

    /// On a database with no organization yet, makes a demo organization, the
    /// group 123456 of the seed's examples, and an API key; otherwise `None`.
    /// Processes starting together on one empty database make one demo
    /// tenant between them: the others answer `None`.
    pub async fn bootstrap_demo(&self) -> Result<Option<DemoTenant>, AdminError> {
        // Every start asks; only the first start of a database writes.
        if !self.tenancy.is_empty().await? {
            return Ok(None);
        }
        let created_at = self.clock.now();
        let organization = Organization {
            id: OrganizationId::from_ulid(self.ids.ulid()),
            name: "Demo organization".to_owned(),
            created_at,
        };
        let group = Group {
            id: GroupId::new(DEMO_GROUP_ID).map_err(|_| AdminError::InvalidGroupId)?,
            organization_id: organization.id.clone(),
            name: "Demo group".to_owned(),
            created_at,
        };
        let secret = ApiKeySecret::generate();
        let key = ApiKey {
            id: ApiKeyId::from_ulid(self.ids.ulid()),
            organization_id: organization.id.clone(),
            hash: secret.hash(),
            created_at,
            revoked_at: None,
        };
        // Another process may have got there since the check above; the
        // repository stores all three only while the database is still empty.
        if !self
            .tenancy
            .insert_demo_tenant(&organization, &group, &key)
            .await?
        {
            return Ok(None);
        }
        Ok(Some(DemoTenant {
            organization,
            group,
            api_key: IssuedApiKey { key, secret },
        }))
    }

    async fn existing_organization(&self, raw: &str) -> Result<OrganizationId, AdminError> {
        let id = OrganizationId::parse(raw).ok_or(AdminError::OrganizationNotFound)?;
        match self.tenancy.find_organization(&id).await? {
            Some(organization) => Ok(organization.id),
            None => Err(AdminError::OrganizationNotFound),
        }
    }
}
