//! The portal's links and sessions: the table behind [`PortalStore`].

use async_trait::async_trait;
use diesel::prelude::*;
use webhooks_domain::{
    ApiKeyId, GroupId, OrganizationId, PortalGrant, PortalPass, PortalStore, PortalTokenHash,
    RepositoryError, UnixMillis,
};

use crate::database::{storage_error, write_transaction, Database, DbConnection};
use crate::schema::portal_passes;

/// The `kind` of a single-use link.
const LINK: &str = "link";
/// The `kind` of a session.
const SESSION: &str = "session";

/// Stores the portal's links and sessions in PostgreSQL or SQLite.
#[derive(Debug, Clone)]
pub struct DieselPortalStore {
    db: Database,
}

impl DieselPortalStore {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    async fn insert(&self, pass: &PortalPass, kind: &'static str) -> Result<(), RepositoryError> {
        let row = PassRow::from_pass(pass, kind);
        self.db
            .run(move |connection| {
                // Ended rows go as new ones come, so the table holds only
                // what is still usable, without a task of its own.
                diesel::delete(
                    portal_passes::table.filter(portal_passes::expires_at.le(row.created_at)),
                )
                .execute(connection)
                .map_err(storage_error)?;
                diesel::insert_into(portal_passes::table)
                    .values(&row)
                    .execute(connection)
                    .map(drop)
                    .map_err(storage_error)
            })
            .await
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = portal_passes)]
struct PassRow {
    hash: String,
    kind: String,
    group_id: i64,
    organization_id: String,
    api_key_id: String,
    created_at: i64,
    expires_at: i64,
}

impl PassRow {
    fn from_pass(pass: &PortalPass, kind: &str) -> Self {
        Self {
            hash: pass.hash.as_str().to_owned(),
            kind: kind.to_owned(),
            group_id: pass.grant.group_id.get(),
            organization_id: pass.grant.organization_id.as_str().to_owned(),
            api_key_id: pass.grant.api_key_id.as_str().to_owned(),
            created_at: pass.created_at.as_millis(),
            expires_at: pass.expires_at.as_millis(),
        }
    }

    fn into_pass(self) -> Result<PortalPass, RepositoryError> {
        let corrupt =
            |what: &str| RepositoryError::Corrupt(format!("portal {}: {what}", self.kind));
        let grant = PortalGrant {
            group_id: GroupId::new(self.group_id)
                .map_err(|_| corrupt("group_id is not positive"))?,
            organization_id: OrganizationId::parse(&self.organization_id)
                .ok_or_else(|| corrupt("malformed organization_id"))?,
            api_key_id: ApiKeyId::parse(&self.api_key_id)
                .ok_or_else(|| corrupt("malformed api_key_id"))?,
        };
        Ok(PortalPass {
            hash: PortalTokenHash::from_stored(self.hash),
            grant,
            created_at: UnixMillis(self.created_at),
            expires_at: UnixMillis(self.expires_at),
        })
    }
}

fn find(
    connection: &mut DbConnection,
    hash: &str,
    kind: &str,
) -> Result<Option<PortalPass>, RepositoryError> {
    portal_passes::table
        .filter(portal_passes::hash.eq(hash))
        .filter(portal_passes::kind.eq(kind))
        .select(PassRow::as_select())
        .first(connection)
        .optional()
        .map_err(storage_error)?
        .map(PassRow::into_pass)
        .transpose()
}

fn delete(connection: &mut DbConnection, hash: &str, kind: &str) -> Result<bool, RepositoryError> {
    diesel::delete(
        portal_passes::table
            .filter(portal_passes::hash.eq(hash))
            .filter(portal_passes::kind.eq(kind)),
    )
    .execute(connection)
    .map(|deleted| deleted > 0)
    .map_err(storage_error)
}

#[async_trait]
impl PortalStore for DieselPortalStore {
    async fn insert_link(&self, link: &PortalPass) -> Result<(), RepositoryError> {
        self.insert(link, LINK).await
    }

    /// Reads the link, then deletes it: only the take whose delete removed
    /// the row answers it, so two concurrent takes never both get it.
    async fn take_link(
        &self,
        hash: &PortalTokenHash,
    ) -> Result<Option<PortalPass>, RepositoryError> {
        let hash = hash.as_str().to_owned();
        self.db
            .run(move |connection| {
                write_transaction(connection, |connection| {
                    let found = find(connection, &hash, LINK)?;
                    let taken = found.is_some() && delete(connection, &hash, LINK)?;
                    Ok(found.filter(|_| taken))
                })
            })
            .await
    }

    async fn insert_session(&self, session: &PortalPass) -> Result<(), RepositoryError> {
        self.insert(session, SESSION).await
    }

    async fn find_session(
        &self,
        hash: &PortalTokenHash,
    ) -> Result<Option<PortalPass>, RepositoryError> {
        let hash = hash.as_str().to_owned();
        self.db
            .run(move |connection| find(connection, &hash, SESSION))
            .await
    }

    async fn delete_session(&self, hash: &PortalTokenHash) -> Result<bool, RepositoryError> {
        let hash = hash.as_str().to_owned();
        self.db
            .run(move |connection| delete(connection, &hash, SESSION))
            .await
    }
}
