//! Organizations, groups and API keys: the tables behind [`TenancyRepository`].

use async_trait::async_trait;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use webhooks_domain::{
    ApiKey, ApiKeyHash, ApiKeyId, Group, GroupId, Organization, OrganizationId, RepositoryError,
    TenancyRepository, UnixMillis,
};

use crate::database::{storage_error, write_transaction, Database, DbConnection};
use crate::schema::{api_keys, groups, organizations};

/// Serializes the demo tenant's bootstrap of processes starting at once on one
/// PostgreSQL: an arbitrary constant naming this advisory lock, apart from
/// the migrations' one.
const DEMO_TENANT_LOCK_KEY: i64 = 0x7765_6268_6465_6d6f; // "webhdemo" in ASCII

/// Stores tenancy in PostgreSQL or SQLite, whichever [`Database`] points at.
#[derive(Debug, Clone)]
pub struct DieselTenancyRepository {
    db: Database,
}

impl DieselTenancyRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// The one API key `lookup` names, revoked or not.
    async fn find_api_key_where(
        &self,
        lookup: KeyLookup,
    ) -> Result<Option<ApiKey>, RepositoryError> {
        self.db
            .run(move |connection| {
                let query = api_keys::table.select(ApiKeyRow::as_select()).into_boxed();
                let query = match lookup {
                    KeyLookup::Hash(hash) => query.filter(api_keys::key_hash.eq(hash)),
                    KeyLookup::Id(id) => query.filter(api_keys::id.eq(id)),
                };
                query
                    .first(connection)
                    .optional()
                    .map_err(storage_error)?
                    .map(ApiKeyRow::into_api_key)
                    .transpose()
            })
            .await
    }
}

/// How an API key is looked up: by the hash a caller's key has, or by its id.
enum KeyLookup {
    Hash(String),
    Id(String),
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = organizations)]
struct OrganizationRow {
    id: String,
    name: String,
    created_at: i64,
}

impl OrganizationRow {
    fn from_organization(organization: &Organization) -> Self {
        Self {
            id: organization.id.as_str().to_owned(),
            name: organization.name.clone(),
            created_at: organization.created_at.as_millis(),
        }
    }

    fn into_organization(self) -> Result<Organization, RepositoryError> {
        let id = OrganizationId::parse(&self.id).ok_or_else(|| {
            RepositoryError::Corrupt(format!("organization {}: malformed id", self.id))
        })?;
        Ok(Organization {
            id,
            name: self.name,
            created_at: UnixMillis(self.created_at),
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = groups)]
struct GroupRow {
    id: i64,
    organization_id: String,
    name: String,
    created_at: i64,
    operations: bool,
}

impl GroupRow {
    fn from_group(group: &Group) -> Self {
        Self {
            id: group.id.get(),
            organization_id: group.organization_id.as_str().to_owned(),
            name: group.name.clone(),
            created_at: group.created_at.as_millis(),
            operations: group.operations,
        }
    }

    fn into_group(self) -> Result<Group, RepositoryError> {
        let corrupt = |what: &str| RepositoryError::Corrupt(format!("group {}: {what}", self.id));
        Ok(Group {
            id: GroupId::new(self.id).map_err(|_| corrupt("id is not positive"))?,
            organization_id: OrganizationId::parse(&self.organization_id)
                .ok_or_else(|| corrupt("malformed organization_id"))?,
            name: self.name,
            operations: self.operations,
            created_at: UnixMillis(self.created_at),
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
// Bind `None` as NULL rather than emit `DEFAULT`, which SQLite's VALUES lacks.
#[diesel(treat_none_as_default_value = false)]
struct ApiKeyRow {
    id: String,
    organization_id: String,
    key_hash: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl ApiKeyRow {
    fn from_api_key(key: &ApiKey) -> Self {
        Self {
            id: key.id.as_str().to_owned(),
            organization_id: key.organization_id.as_str().to_owned(),
            key_hash: key.hash.as_str().to_owned(),
            created_at: key.created_at.as_millis(),
            revoked_at: key.revoked_at.map(UnixMillis::as_millis),
        }
    }

    fn into_api_key(self) -> Result<ApiKey, RepositoryError> {
        let corrupt = |what: &str| RepositoryError::Corrupt(format!("api key {}: {what}", self.id));
        Ok(ApiKey {
            id: ApiKeyId::parse(&self.id).ok_or_else(|| corrupt("malformed id"))?,
            organization_id: OrganizationId::parse(&self.organization_id)
                .ok_or_else(|| corrupt("malformed organization_id"))?,
            hash: ApiKeyHash::from_stored(self.key_hash),
            created_at: UnixMillis(self.created_at),
            revoked_at: self.revoked_at.map(UnixMillis),
        })
    }
}

#[async_trait]
impl TenancyRepository for DieselTenancyRepository {
    /// Errors: [`RepositoryError::Conflict`] if the id exists (ids are fresh
    /// ULIDs, so only a bug gets there), [`RepositoryError::Unavailable`].
    async fn insert_organization(
        &self,
        organization: &Organization,
    ) -> Result<(), RepositoryError> {
        let row = OrganizationRow::from_organization(organization);
        self.db
            .run(move |connection| {
                diesel::insert_into(organizations::table)
                    .values(&row)
                    .execute(connection)
                    .map(drop)
                    .map_err(storage_error)
            })
            .await
    }

    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find_organization(
        &self,
        id: &OrganizationId,
    ) -> Result<Option<Organization>, RepositoryError> {
        let id = id.as_str().to_owned();
        self.db
            .run(move |connection| {
                organizations::table
                    .filter(organizations::id.eq(id))
                    .select(OrganizationRow::as_select())
                    .first(connection)
                    .optional()
                    .map_err(storage_error)?
                    .map(OrganizationRow::into_organization)
                    .transpose()
            })
            .await
    }

    /// `true` while no organization row exists (a brand-new database).
    /// Errors: [`RepositoryError::Unavailable`].
    async fn is_empty(&self) -> Result<bool, RepositoryError> {
        self.db
            .run(|connection| {
                any_organization(connection)
                    .map(|any| !any)
                    .map_err(storage_error)
            })
            .await
    }

    /// One write transaction that first makes concurrent bootstraps take
    /// turns (PostgreSQL: a transaction-scoped advisory lock; SQLite: `BEGIN
    /// IMMEDIATE`, one writer at a time), then looks for an organization and
    /// inserts the three rows only if there is none. The second bootstrap
    /// thus waits for the first to commit and finds its organization.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn insert_demo_tenant(
        &self,
        organization: &Organization,
        group: &Group,
        key: &ApiKey,
    ) -> Result<bool, RepositoryError> {
        let organization = OrganizationRow::from_organization(organization);
        let group = GroupRow::from_group(group);
        let key = ApiKeyRow::from_api_key(key);
        self.db
            .run(move |connection| {
                write_transaction(connection, |connection| {
                    lock_demo_tenant_bootstrap(connection).map_err(storage_error)?;
                    if any_organization(connection).map_err(storage_error)? {
                        return Ok(false);
                    }
                    diesel::insert_into(organizations::table)
                        .values(&organization)
                        .execute(connection)
                        .map_err(storage_error)?;
                    diesel::insert_into(groups::table)
                        .values(&group)
                        .execute(connection)
                        .map_err(storage_error)?;
                    diesel::insert_into(api_keys::table)
                        .values(&key)
                        .execute(connection)
                        .map_err(storage_error)?;
                    Ok(true)
                })
            })
            .await
    }

    /// Errors: [`RepositoryError::Conflict`] when the group id is taken or
    /// a second operations group of the organization would be stored
    /// (a unique index), [`RepositoryError::Unavailable`] otherwise (including an organization
    /// that does not exist, which the use cases check first).
    async fn insert_group(&self, group: &Group) -> Result<(), RepositoryError> {
        let row = GroupRow::from_group(group);
        self.db
            .run(move |connection| {
                diesel::insert_into(groups::table)
                    .values(&row)
                    .execute(connection)
                    .map(drop)
                    .map_err(storage_error)
            })
            .await
    }

    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find_operations_group(
        &self,
        organization: &OrganizationId,
    ) -> Result<Option<Group>, RepositoryError> {
        let organization = organization.as_str().to_owned();
        self.db
            .run(move |connection| {
                groups::table
                    .filter(groups::organization_id.eq(organization))
                    .filter(groups::operations.eq(true))
                    .select(GroupRow::as_select())
                    .first(connection)
                    .optional()
                    .map_err(storage_error)?
                    .map(GroupRow::into_group)
                    .transpose()
            })
            .await
    }

    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find_group(&self, id: GroupId) -> Result<Option<Group>, RepositoryError> {
        let id = id.get();
        self.db
            .run(move |connection| {
                groups::table
                    .filter(groups::id.eq(id))
                    .select(GroupRow::as_select())
                    .first(connection)
                    .optional()
                    .map_err(storage_error)?
                    .map(GroupRow::into_group)
                    .transpose()
            })
            .await
    }

    /// Errors: [`RepositoryError::Conflict`] when the hash (or the id) is
    /// already stored, [`RepositoryError::Unavailable`] otherwise.
    async fn insert_api_key(&self, key: &ApiKey) -> Result<(), RepositoryError> {
        let row = ApiKeyRow::from_api_key(key);
        self.db
            .run(move |connection| {
                diesel::insert_into(api_keys::table)
                    .values(&row)
                    .execute(connection)
                    .map(drop)
                    .map_err(storage_error)
            })
            .await
    }

    /// The key with this hash, revoked or not.
    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find_api_key_by_hash(
        &self,
        hash: &ApiKeyHash,
    ) -> Result<Option<ApiKey>, RepositoryError> {
        self.find_api_key_where(KeyLookup::Hash(hash.as_str().to_owned()))
            .await
    }

    /// Errors: [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn find_api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, RepositoryError> {
        self.find_api_key_where(KeyLookup::Id(id.as_str().to_owned()))
            .await
    }

    /// Sets `revoked_at` only if the key is not revoked yet, so the first
    /// revocation time stays; `true` whenever the key exists.
    /// Errors: [`RepositoryError::Unavailable`].
    async fn revoke_api_key(&self, id: &ApiKeyId, at: UnixMillis) -> Result<bool, RepositoryError> {
        let id = id.as_str().to_owned();
        self.db
            .run(move |connection| {
                connection
                    .transaction(|connection| {
                        let revoked = diesel::update(
                            api_keys::table
                                .filter(api_keys::id.eq(&id))
                                .filter(api_keys::revoked_at.is_null()),
                        )
                        .set(api_keys::revoked_at.eq(Some(at.as_millis())))
                        .execute(connection)?;
                        if revoked > 0 {
                            // Other processes drop their cached copy of the key.
                            announce_revocation(connection)?;
                            return Ok(true);
                        }
                        // Nothing changed: either already revoked or unknown.
                        let existing = api_keys::table
                            .filter(api_keys::id.eq(&id))
                            .select(api_keys::id)
                            .first::<String>(connection)
                            .optional()?;
                        Ok(existing.is_some())
                    })
                    .map_err(storage_error)
            })
            .await
    }
}

/// Whether any organization exists. Fetches one id rather than `SELECT
/// EXISTS`: the multi-backend connection cannot load booleans.
fn any_organization(connection: &mut DbConnection) -> diesel::QueryResult<bool> {
    organizations::table
        .select(organizations::id)
        .first::<String>(connection)
        .optional()
        .map(|any| any.is_some())
}

/// Makes demo bootstraps take turns until the transaction ends.
///
/// - PostgreSQL: `pg_advisory_xact_lock`, released at commit or rollback.
///   Rows that do not exist yet cannot be locked, and under READ COMMITTED
///   two transactions would both see the empty table.
/// - SQLite: nothing; the transaction began with `BEGIN IMMEDIATE`.
fn lock_demo_tenant_bootstrap(connection: &mut DbConnection) -> diesel::QueryResult<()> {
    match connection {
        DbConnection::Postgres(postgres) => postgres.batch_execute(&format!(
            "SELECT pg_advisory_xact_lock({DEMO_TENANT_LOCK_KEY})"
        )),
        DbConnection::Sqlite(_) => Ok(()),
    }
}

/// The channel a revocation is announced on (PostgreSQL), so every process
/// forgets its cached keys at once.
pub const API_KEYS_CHANNEL: &str = "webhooks_api_keys";

/// `NOTIFY` on [`API_KEYS_CHANNEL`] (sent at commit); nothing on SQLite, where
/// other processes see a revocation within their cache's time-to-live.
fn announce_revocation(connection: &mut DbConnection) -> diesel::QueryResult<()> {
    match connection {
        DbConnection::Postgres(postgres) => {
            postgres.batch_execute(&format!("NOTIFY {API_KEYS_CHANNEL}"))
        }
        DbConnection::Sqlite(_) => Ok(()),
    }
}
