//! A read-through cache of each group's webhook list in front of a
//! [`WebhookRepository`], so that listing a group again does not go to the
//! database.
//!
//! - A change made through this cache (create, update, delete, secret
//!   rotation), or announced to it ([`CachedWebhooks::forget_lists`]: this
//!   process's workers disabling a failing webhook, its probes enabling one
//!   again), is seen at once by the next list: every change forgets every
//!   list, and a list read while a change was under way is not kept.
//! - A change made by another process is seen once the list is older than
//!   its time-to-live ([`DEFAULT_WEBHOOK_LIST_TTL`]).
//! - Only lists are kept; a single webhook is always read from storage.
//! - Failed reads are not kept. At most [`MAX_KEPT`] webhooks and lists are
//!   kept in all; past that the cache starts over.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::error::RepositoryError;
use crate::ids::{GroupId, WebhookId};
use crate::operations::StatusChange;
use crate::ports::WebhookRepository;
use crate::signing::SealedSecret;
use crate::time::UnixMillis;
use crate::webhooks::Webhook;

/// How long a group's list is answered from memory.
pub const DEFAULT_WEBHOOK_LIST_TTL: Duration = Duration::from_millis(100);

/// Webhooks and lists kept (a list counts one, each of its webhooks one),
/// over all groups, before the cache starts over.
pub const MAX_KEPT: usize = 10_000;

/// A group's list as read, with when.
struct Kept {
    webhooks: Arc<[Webhook]>,
    read_at: Instant,
}

#[derive(Default)]
struct Lists {
    by_group: HashMap<GroupId, Kept>,
    /// Counted as [`MAX_KEPT`] says.
    size: usize,
}

/// Wraps a webhook repository with the cache described in the module docs.
///
/// ```
/// # use std::sync::Arc;
/// # use webhooks_domain::*;
/// # fn wrap(repository: Arc<dyn WebhookRepository>) -> Arc<dyn WebhookRepository> {
/// Arc::new(CachedWebhooks::new(repository, DEFAULT_WEBHOOK_LIST_TTL))
/// # }
/// ```
pub struct CachedWebhooks {
    inner: Arc<dyn WebhookRepository>,
    ttl: Duration,
    /// Counts the changes; a list is kept only if none ended while it was
    /// read. Moved under the lock of `lists`, with the lists forgotten.
    generation: AtomicU64,
    lists: Mutex<Lists>,
}

impl CachedWebhooks {
    /// Wraps `inner`, answering a group's list from memory for `ttl`.
    pub fn new(inner: Arc<dyn WebhookRepository>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            generation: AtomicU64::new(0),
            lists: Mutex::new(Lists::default()),
        }
    }

    fn lists(&self) -> std::sync::MutexGuard<'_, Lists> {
        self.lists.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a change, then forgets every list: a list read before the change
    /// was stored is dropped here or, if its read is still under way, not
    /// kept (its generation is over).
    async fn change<T>(
        &self,
        write: impl std::future::Future<Output = Result<T, RepositoryError>>,
    ) -> Result<T, RepositoryError> {
        let written = write.await;
        self.forget_lists();
        written
    }

    /// Forgets every list, as a change made through this cache does: for
    /// the changes this process makes to webhooks without it (a worker
    /// disabling a failing webhook, a probe enabling it again).
    pub fn forget_lists(&self) {
        let mut lists = self.lists();
        self.generation.fetch_add(1, Ordering::SeqCst);
        *lists = Lists::default();
    }

    fn kept(&self, group: GroupId) -> Option<Vec<Webhook>> {
        self.lists()
            .by_group
            .get(&group)
            .filter(|kept| kept.read_at.elapsed() < self.ttl)
            .map(|kept| kept.webhooks.to_vec())
    }

    fn keep(&self, group: GroupId, webhooks: &[Webhook], generation: u64, read_at: Instant) {
        let mut lists = self.lists();
        // Under the lock that `forget_lists` moves it under.
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        let size = webhooks.len() + 1;
        if lists.size + size > MAX_KEPT {
            *lists = Lists::default();
        }
        let kept = Kept {
            webhooks: webhooks.into(),
            read_at,
        };
        lists.size += size;
        if let Some(replaced) = lists.by_group.insert(group, kept) {
            lists.size -= replaced.webhooks.len() + 1;
        }
    }
}

#[async_trait]
impl WebhookRepository for CachedWebhooks {
    async fn list_by_group(&self, group: GroupId) -> Result<Vec<Webhook>, RepositoryError> {
        if let Some(webhooks) = self.kept(group) {
            return Ok(webhooks);
        }
        let (generation, read_at) = (self.generation.load(Ordering::SeqCst), Instant::now());
        let webhooks = self.inner.list_by_group(group).await?;
        self.keep(group, &webhooks, generation, read_at);
        Ok(webhooks)
    }

    /// Always asks storage.
    async fn find(
        &self,
        group: GroupId,
        id: &WebhookId,
    ) -> Result<Option<Webhook>, RepositoryError> {
        self.inner.find(group, id).await
    }

    async fn insert(&self, webhook: &Webhook) -> Result<(), RepositoryError> {
        self.change(self.inner.insert(webhook)).await
    }

    async fn update(
        &self,
        webhook: &Webhook,
        change: Option<StatusChange>,
    ) -> Result<bool, RepositoryError> {
        self.change(self.inner.update(webhook, change)).await
    }

    async fn delete(&self, group: GroupId, id: &WebhookId) -> Result<bool, RepositoryError> {
        self.change(self.inner.delete(group, id)).await
    }

    async fn rotate_secret(
        &self,
        group: GroupId,
        id: &WebhookId,
        secret: &SealedSecret,
        previous_expires_at: UnixMillis,
    ) -> Result<bool, RepositoryError> {
        self.change(
            self.inner
                .rotate_secret(group, id, secret, previous_expires_at),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::Notify;

    use super::*;
    use crate::ports::MockWebhookRepository;
    use crate::webhooks::{Description, EnabledEvents, WebhookStatus, WebhookUrl};

    const LONG: Duration = Duration::from_secs(60);

    fn group(id: i64) -> GroupId {
        GroupId::new(id).unwrap()
    }

    fn webhook(group_id: GroupId, n: u64) -> Webhook {
        Webhook {
            id: WebhookId::from_ulid(ulid::Ulid::from_parts(n, 1)),
            group_id,
            url: WebhookUrl::new("https://a.example/hook").unwrap(),
            description: Description::new("d").unwrap(),
            status: WebhookStatus::Enabled,
            enabled_events: EnabledEvents::all(),
            rate_limit: None,
            secret: SealedSecret::from_stored("sealed".to_owned()),
            headers: None,
            ordering: None,
            created_at: UnixMillis(1),
            updated_at: UnixMillis(1),
        }
    }

    /// A repository whose `list_by_group` answers `lists` in turn.
    fn listing(lists: Vec<Vec<Webhook>>) -> MockWebhookRepository {
        let mut inner = MockWebhookRepository::new();
        let mut answers = lists.into_iter();
        let times = answers.len();
        inner
            .expect_list_by_group()
            .times(times)
            .returning(move |_| Ok(answers.next().unwrap()));
        inner
    }

    #[tokio::test]
    async fn a_list_is_read_once_within_its_time_to_live() {
        let stored = vec![webhook(group(7), 1), webhook(group(7), 2)];
        let cache = CachedWebhooks::new(Arc::new(listing(vec![stored.clone()])), LONG);
        for _ in 0..3 {
            assert_eq!(cache.list_by_group(group(7)).await, Ok(stored.clone()));
        }
    }

    #[tokio::test]
    async fn a_list_is_read_again_after_its_time_to_live() {
        let (first, second) = (vec![webhook(group(7), 1)], vec![]);
        let inner = listing(vec![first.clone(), second.clone()]);
        let cache = CachedWebhooks::new(Arc::new(inner), Duration::ZERO);
        assert_eq!(cache.list_by_group(group(7)).await, Ok(first));
        assert_eq!(cache.list_by_group(group(7)).await, Ok(second));
    }

    #[tokio::test]
    async fn each_group_has_its_own_list() {
        let (seven, eight) = (vec![webhook(group(7), 1)], vec![webhook(group(8), 2)]);
        let cache =
            CachedWebhooks::new(Arc::new(listing(vec![seven.clone(), eight.clone()])), LONG);
        for _ in 0..2 {
            assert_eq!(cache.list_by_group(group(7)).await, Ok(seven.clone()));
            assert_eq!(cache.list_by_group(group(8)).await, Ok(eight.clone()));
        }
    }

    #[tokio::test]
    async fn every_change_made_here_is_seen_by_the_next_list() {
        let created = webhook(group(7), 1);
        let mut inner = listing(vec![vec![]; 5]);
        inner.expect_insert().times(1).returning(|_| Ok(()));
        inner.expect_update().times(1).returning(|_, _| Ok(true));
        inner
            .expect_rotate_secret()
            .returning(|_, _, _, _| Ok(true));
        inner.expect_delete().times(1).returning(|_, _| Ok(false));
        let cache = CachedWebhooks::new(Arc::new(inner), LONG);
        let secret = SealedSecret::from_stored("new".to_owned());
        cache.list_by_group(group(7)).await.unwrap();
        cache.insert(&created).await.unwrap();
        cache.list_by_group(group(7)).await.unwrap();
        cache.update(&created, None).await.unwrap();
        cache.list_by_group(group(7)).await.unwrap();
        let rotated = cache.rotate_secret(group(7), &created.id, &secret, UnixMillis(9));
        rotated.await.unwrap();
        cache.list_by_group(group(7)).await.unwrap();
        // A change that finds nothing still forgets: storage may have moved.
        cache.delete(group(7), &created.id).await.unwrap();
        cache.list_by_group(group(7)).await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_change_forgets_too() {
        let mut inner = listing(vec![vec![], vec![]]);
        inner
            .expect_insert()
            .times(1)
            .returning(|_| Err(RepositoryError::Unavailable("down".into())));
        let cache = CachedWebhooks::new(Arc::new(inner), LONG);
        cache.list_by_group(group(7)).await.unwrap();
        assert!(cache.insert(&webhook(group(7), 1)).await.is_err());
        cache.list_by_group(group(7)).await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_read_is_not_kept() {
        let mut inner = MockWebhookRepository::new();
        let mut failed = false;
        inner.expect_list_by_group().times(2).returning(move |_| {
            if std::mem::replace(&mut failed, true) {
                Ok(vec![])
            } else {
                Err(RepositoryError::Unavailable("down".into()))
            }
        });
        let cache = CachedWebhooks::new(Arc::new(inner), LONG);
        assert!(cache.list_by_group(group(7)).await.is_err());
        assert_eq!(cache.list_by_group(group(7)).await, Ok(vec![]));
    }

    #[tokio::test]
    async fn a_single_webhook_is_always_read_from_storage() {
        let stored = webhook(group(7), 1);
        let mut inner = MockWebhookRepository::new();
        let answer = stored.clone();
        inner
            .expect_find()
            .times(2)
            .returning(move |_, _| Ok(Some(answer.clone())));
        let cache = CachedWebhooks::new(Arc::new(inner), LONG);
        for _ in 0..2 {
            let found = cache.find(group(7), &stored.id).await;
            assert_eq!(found, Ok(Some(stored.clone())));
        }
    }

    #[tokio::test]
    async fn past_its_bound_the_cache_starts_over() {
        // Two lists of half the bound: keeping the second drops the first.
        let half: Vec<Webhook> = (0..MAX_KEPT as u64 / 2)
            .map(|n| webhook(group(7), n))
            .collect();
        let inner = listing(vec![half.clone(), half.clone(), half.clone()]);
        let cache = CachedWebhooks::new(Arc::new(inner), LONG);
        cache.list_by_group(group(7)).await.unwrap();
        cache.list_by_group(group(8)).await.unwrap();
        cache.list_by_group(group(8)).await.unwrap();
        cache.list_by_group(group(7)).await.unwrap();
    }

    /// Lists the group once, held up until `release`, as storage would answer
    /// a read that started before a change was stored.
    struct SlowList {
        started: Notify,
        release: Notify,
        answers: Mutex<Vec<Vec<Webhook>>>,
    }

    #[async_trait]
    impl WebhookRepository for SlowList {
        async fn list_by_group(&self, _: GroupId) -> Result<Vec<Webhook>, RepositoryError> {
            let answer = self.answers.lock().unwrap().remove(0);
            if answer.is_empty() {
                self.started.notify_one();
                self.release.notified().await;
            }
            Ok(answer)
        }
        async fn find(
            &self,
            _: GroupId,
            _: &WebhookId,
        ) -> Result<Option<Webhook>, RepositoryError> {
            unreachable!("not listed")
        }
        async fn insert(&self, _: &Webhook) -> Result<(), RepositoryError> {
            Ok(())
        }
        async fn update(
            &self,
            _: &Webhook,
            _: Option<StatusChange>,
        ) -> Result<bool, RepositoryError> {
            unreachable!("not listed")
        }
        async fn delete(&self, _: GroupId, _: &WebhookId) -> Result<bool, RepositoryError> {
            unreachable!("not listed")
        }
        async fn rotate_secret(
            &self,
            _: GroupId,
            _: &WebhookId,
            _: &SealedSecret,
            _: UnixMillis,
        ) -> Result<bool, RepositoryError> {
            unreachable!("not listed")
        }
    }

    #[tokio::test]
    async fn a_list_read_while_a_change_is_stored_is_not_kept() {
        let created = webhook(group(7), 1);
        let inner = Arc::new(SlowList {
            started: Notify::new(),
            release: Notify::new(),
            // The slow read saw the group before the insert; the next sees it.
            answers: Mutex::new(vec![vec![], vec![created.clone()]]),
        });
        let cache = Arc::new(CachedWebhooks::new(inner.clone(), LONG));
        let reading = tokio::spawn({
            let cache = cache.clone();
            async move { cache.list_by_group(group(7)).await }
        });
        inner.started.notified().await;
        cache.insert(&created).await.unwrap();
        inner.release.notify_one();
        assert_eq!(reading.await.unwrap(), Ok(vec![]));
        assert_eq!(cache.list_by_group(group(7)).await, Ok(vec![created]));
    }
}
