//! A read-through cache in front of a [`TenancyRepository`], so an
//! authenticated request does not pay two database round trips (API key,
//! group) before its real work.
//!
//! - Groups never change organization and are never deleted: once read, a
//!   group is kept (up to a bound).
//! - API keys are kept for a short time-to-live. A revocation through this
//!   cache takes effect at once in this process; one made by another process
//!   takes effect when that process's announcement calls
//!   [`CachedTenancy::forget_api_keys`] (PostgreSQL `NOTIFY`), and at the
//!   latest after the time-to-live.
//! - Misses (unknown keys and groups) are not kept, so a wrong key never
//!   shadows a key created a moment later.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::error::RepositoryError;
use crate::ids::{ApiKeyId, GroupId, OrganizationId};
use crate::ports::TenancyRepository;
use crate::tenancy::{ApiKey, ApiKeyHash, Group, Organization};
use crate::time::UnixMillis;

/// Entries kept per kind before the cache starts over.
const MAX_ENTRIES: usize = 10_000;

/// How long an API key is trusted without asking the database again.
pub const DEFAULT_API_KEY_TTL: Duration = Duration::from_secs(1);

/// Wraps a tenancy repository with the cache described in the module docs.
///
/// ```
/// # use std::sync::Arc;
/// # use webhooks_domain::*;
/// # fn wrap(repository: Arc<dyn TenancyRepository>) -> Arc<dyn TenancyRepository> {
/// Arc::new(CachedTenancy::new(repository, DEFAULT_API_KEY_TTL))
/// # }
/// ```
pub struct CachedTenancy {
    inner: std::sync::Arc<dyn TenancyRepository>,
    key_ttl: Duration,
    keys: Mutex<HashMap<ApiKeyHash, (ApiKey, Instant)>>,
    groups: Mutex<HashMap<GroupId, Group>>,
}

impl CachedTenancy {
    /// Wraps `inner`, trusting a cached API key for `key_ttl`
    /// ([`DEFAULT_API_KEY_TTL`] unless there is a reason to differ).
    pub fn new(inner: std::sync::Arc<dyn TenancyRepository>, key_ttl: Duration) -> Self {
        Self {
            inner,
            key_ttl,
            keys: Mutex::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets every cached API key (another process revoked one).
    pub fn forget_api_keys(&self) {
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn remember<K: std::hash::Hash + Eq, V>(map: &Mutex<HashMap<K, V>>, key: K, value: V) {
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, value);
    }
}

#[async_trait]
impl TenancyRepository for CachedTenancy {
    async fn insert_organization(
        &self,
        organization: &Organization,
    ) -> Result<(), RepositoryError> {
        self.inner.insert_organization(organization).await
    }

    async fn find_organization(
        &self,
        id: &OrganizationId,
    ) -> Result<Option<Organization>, RepositoryError> {
        self.inner.find_organization(id).await
    }

    async fn is_empty(&self) -> Result<bool, RepositoryError> {
        self.inner.is_empty().await
    }

    async fn insert_demo_tenant(
        &self,
        organization: &Organization,
        group: &Group,
        key: &ApiKey,
    ) -> Result<bool, RepositoryError> {
        self.inner
            .insert_demo_tenant(organization, group, key)
            .await
    }

    async fn insert_group(&self, group: &Group) -> Result<(), RepositoryError> {
        self.inner.insert_group(group).await
    }

    async fn find_operations_group(
        &self,
        organization: &OrganizationId,
    ) -> Result<Option<Group>, RepositoryError> {
        self.inner.find_operations_group(organization).await
    }

    async fn find_group(&self, id: GroupId) -> Result<Option<Group>, RepositoryError> {
        let cached = self
            .groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned();
        if let Some(group) = cached {
            return Ok(Some(group));
        }
        let found = self.inner.find_group(id).await?;
        if let Some(group) = &found {
            Self::remember(&self.groups, id, group.clone());
        }
        Ok(found)
    }

    async fn insert_api_key(&self, key: &ApiKey) -> Result<(), RepositoryError> {
        self.inner.insert_api_key(key).await
    }

    async fn find_api_key_by_hash(
        &self,
        hash: &ApiKeyHash,
    ) -> Result<Option<ApiKey>, RepositoryError> {
        let cached = self
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
            .filter(|(_, stored_at)| stored_at.elapsed() < self.key_ttl)
            .map(|(key, _)| key.clone());
        if let Some(key) = cached {
            return Ok(Some(key));
        }
        let found = self.inner.find_api_key_by_hash(hash).await?;
        if let Some(key) = &found {
            Self::remember(&self.keys, hash.clone(), (key.clone(), Instant::now()));
        }
        Ok(found)
    }

    /// Always asks storage: a portal session checks its key this way on
    /// each request, and a revocation must end it at once.
    async fn find_api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, RepositoryError> {
        self.inner.find_api_key(id).await
    }

    async fn revoke_api_key(&self, id: &ApiKeyId, at: UnixMillis) -> Result<bool, RepositoryError> {
        let revoked = self.inner.revoke_api_key(id, at).await?;
        // Forget the key before answering, so the revocation holds at once here.
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (key, _)| &key.id != id);
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ports::MockTenancyRepository;
    use crate::tenancy::ApiKeySecret;

    fn key(secret: &ApiKeySecret) -> ApiKey {
        ApiKey {
            id: ApiKeyId::from_ulid(ulid::Ulid::from_parts(1, 1)),
            organization_id: OrganizationId::from_ulid(ulid::Ulid::from_parts(1, 2)),
            hash: secret.hash(),
            created_at: UnixMillis(0),
            revoked_at: None,
        }
    }

    #[tokio::test]
    async fn a_key_is_read_once_within_its_time_to_live() {
        let secret = ApiKeySecret::generate();
        let stored = key(&secret);
        let mut inner = MockTenancyRepository::new();
        let answer = stored.clone();
        inner
            .expect_find_api_key_by_hash()
            .times(1)
            .returning(move |_| Ok(Some(answer.clone())));
        let cache = CachedTenancy::new(Arc::new(inner), Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(
                cache.find_api_key_by_hash(&secret.hash()).await,
                Ok(Some(stored.clone()))
            );
        }
    }

    #[tokio::test]
    async fn a_key_is_read_again_after_its_time_to_live() {
        let secret = ApiKeySecret::generate();
        let stored = key(&secret);
        let mut inner = MockTenancyRepository::new();
        inner
            .expect_find_api_key_by_hash()
            .times(2)
            .returning(move |_| Ok(Some(stored.clone())));
        let cache = CachedTenancy::new(Arc::new(inner), Duration::ZERO);
        cache.find_api_key_by_hash(&secret.hash()).await.unwrap();
        cache.find_api_key_by_hash(&secret.hash()).await.unwrap();
    }

    #[tokio::test]
    async fn a_revocation_here_is_seen_at_once() {
        let secret = ApiKeySecret::generate();
        let stored = key(&secret);
        let revoked = ApiKey {
            revoked_at: Some(UnixMillis(5)),
            ..stored.clone()
        };
        let mut inner = MockTenancyRepository::new();
        let mut answers = vec![Some(revoked.clone()), Some(stored.clone())];
        inner
            .expect_find_api_key_by_hash()
            .times(2)
            .returning(move |_| Ok(answers.pop().flatten()));
        inner
            .expect_revoke_api_key()
            .times(1)
            .returning(|_, _| Ok(true));
        let cache = CachedTenancy::new(Arc::new(inner), Duration::from_secs(60));
        assert_eq!(
            cache.find_api_key_by_hash(&secret.hash()).await,
            Ok(Some(stored.clone()))
        );
        cache
            .revoke_api_key(&stored.id, UnixMillis(5))
            .await
            .unwrap();
        assert_eq!(
            cache.find_api_key_by_hash(&secret.hash()).await,
            Ok(Some(revoked))
        );
    }

    #[tokio::test]
    async fn unknown_keys_and_groups_are_not_remembered() {
        let mut inner = MockTenancyRepository::new();
        inner
            .expect_find_api_key_by_hash()
            .times(2)
            .returning(|_| Ok(None));
        inner.expect_find_group().times(2).returning(|_| Ok(None));
        let cache = CachedTenancy::new(Arc::new(inner), Duration::from_secs(60));
        let hash = ApiKeySecret::generate().hash();
        let group = GroupId::new(7).unwrap();
        for _ in 0..2 {
            assert_eq!(cache.find_api_key_by_hash(&hash).await, Ok(None));
            assert_eq!(cache.find_group(group).await, Ok(None));
        }
    }

    #[tokio::test]
    async fn a_group_is_read_once() {
        let group = Group {
            id: GroupId::new(7).unwrap(),
            organization_id: OrganizationId::from_ulid(ulid::Ulid::from_parts(1, 2)),
            name: "g".into(),
            operations: false,
            created_at: UnixMillis(0),
        };
        let mut inner = MockTenancyRepository::new();
        let answer = group.clone();
        inner
            .expect_find_group()
            .times(1)
            .returning(move |_| Ok(Some(answer.clone())));
        let cache = CachedTenancy::new(Arc::new(inner), Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(cache.find_group(group.id).await, Ok(Some(group.clone())));
        }
    }
}
