//! The demo tenant: on the first start of an empty database, an
//! organization, the group of the seed document's examples and an API key,
//! so a newcomer can try the API at once.

use crate::error::DomainError;
use crate::ids::{ApiKeyId, GroupId, OrganizationId};
use crate::tenancy::{ApiKey, ApiKeySecret, Group, IssuedApiKey, Organization, TenancyService};

/// The group id of the demo tenant: the one the seed document's examples use.
pub const DEMO_GROUP_ID: i64 = 123_456;

/// The tenant made on a brand-new database so a newcomer can try the API at once.
#[derive(Debug)]
pub struct DemoTenant {
    /// "Demo organization".
    pub organization: Organization,
    /// Group [`DEMO_GROUP_ID`].
    pub group: Group,
    /// A key of the organization.
    pub api_key: IssuedApiKey,
}

impl TenancyService {
    /// On a database with no organization yet, makes a demo organization, the
    /// group 123456 of the seed's examples, and an API key; otherwise `None`.
    /// Processes starting together on one empty database make one demo
    /// tenant between them: the others answer `None`.
    pub async fn bootstrap_demo(&self) -> Result<Option<DemoTenant>, DomainError> {
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
            id: GroupId::new(DEMO_GROUP_ID)?,
            organization_id: organization.id.clone(),
            name: "Demo group".to_owned(),
            operations: false,
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
}
