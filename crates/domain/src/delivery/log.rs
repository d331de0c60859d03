//! The delivery log and its actions: list, read, retry, test send, recover,
//! and the webhook's stats.
//! Every call first passes the checks of the webhook it belongs to
//! ([`WebhookService::get`]): the group, then the webhook.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::delivery::{Delivery, DeliveryDetail, DeliveryStatus, TEST_EVENT_TYPE};
use crate::delivery::{StatsWindow, Wakeup, WebhookStats};
use crate::error::{Conflict, DomainError, Field, InvalidValue, Resource};
use crate::events::Event;
use crate::ids::{DeliveryId, EventId, GroupId, WebhookId};
use crate::ports::{Clock, DeliveryQueue, EventStore, IdSource, Requeue};
use crate::tenancy::Principal;
use crate::time::UnixMillis;
use crate::webhooks::WebhookService;
use crate::webhooks::WebhookStatus;

/// Page size of the delivery log unless asked otherwise.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The largest page of the delivery log.
pub const MAX_PAGE_SIZE: usize = 250;

/// How many deliveries one page of the log holds: 1 to [`MAX_PAGE_SIZE`],
/// [`DEFAULT_PAGE_SIZE`] by default.
///
/// ```
/// use webhooks_domain::PageSize;
/// assert_eq!(PageSize::new(250).unwrap().get(), 250);
/// assert!(PageSize::new(0).is_err());
/// assert_eq!(PageSize::default().get(), 50);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(usize);

impl PageSize {
    /// Checks the size is in range.
    pub fn new(size: usize) -> Result<Self, InvalidValue> {
        if (1..=MAX_PAGE_SIZE).contains(&size) {
            Ok(Self(size))
        } else {
            Err(InvalidValue::new(Field::PageSize, "not from 1 to 250"))
        }
    }

    /// The number of deliveries.
    pub fn get(self) -> usize {
        self.0
    }
}

impl Default for PageSize {
    fn default() -> Self {
        Self(DEFAULT_PAGE_SIZE)
    }
}

/// Which page of a webhook's delivery log to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryQuery {
    /// Only deliveries in this status.
    pub status: Option<DeliveryStatus>,
    /// Only deliveries older than this one: the previous page's
    /// [`DeliveryPage::next_cursor`].
    pub before: Option<DeliveryId>,
    /// At most this many.
    pub limit: PageSize,
}

/// One page of the delivery log; `next_cursor` fetches the next (older) one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPage {
    /// Newest first.
    pub deliveries: Vec<Delivery>,
    /// The `before` of the next page; `None` on the last one.
    pub next_cursor: Option<DeliveryId>,
}

/// A test send just queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSend {
    /// The `webhook.test` event.
    pub event_id: EventId,
    /// Its one delivery, to the webhook tested.
    pub delivery_id: DeliveryId,
}

/// The delivery log of a webhook, and what its owner can do with it.
///
/// ```
/// # use webhooks_domain::*;
/// # async fn example(deliveries: DeliveryService, caller: Principal) -> Result<(), Box<dyn std::error::Error>> {
/// let group = GroupId::new(123456)?;
/// let webhook = WebhookId::parse("we_01hzy3k4m5n6p7q8r9s0t1v2w3").ok_or("malformed id")?;
/// let query = DeliveryQuery { status: Some(DeliveryStatus::Failed), ..DeliveryQuery::default() };
/// let page = deliveries.list(&caller, group, &webhook, query).await?;
/// for failed in &page.deliveries {
///     deliveries.retry(&caller, group, &webhook, &failed.id).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DeliveryService {
    webhooks: WebhookService,
    queue: Arc<dyn DeliveryQueue>,
    events: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    wakeup: Wakeup,
}

impl DeliveryService {
    /// The service over its ports; `wakeup` tells this process's dispatcher
    /// that deliveries are due.
    pub fn new(
        webhooks: WebhookService,
        queue: Arc<dyn DeliveryQueue>,
        events: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
        wakeup: Wakeup,
    ) -> Self {
        Self {
            webhooks,
            queue,
            events,
            clock,
            ids,
            wakeup,
        }
    }

    /// A page of the webhook's deliveries, newest first.
    /// Errors: [`Resource::Group`], then [`Resource::Webhook`], not found.
    pub async fn list(
        &self,
        caller: &Principal,
        group: GroupId,
        webhook: &WebhookId,
        query: DeliveryQuery,
    ) -> Result<DeliveryPage, DomainError> {
        let webhook = self.webhooks.get(caller, group, webhook).await?;
        let limit = query.limit.get();
        // One more than asked tells whether another page exists.
        let mut deliveries = self
            .queue
            .list(&webhook.id, query.status, query.before, limit + 1)
            .await?;
        let next_cursor = if deliveries.len() > limit {
            deliveries.truncate(limit);
            deliveries.last().map(|d| d.id.clone())
        } else {
            None
        };
        Ok(DeliveryPage {
            deliveries,
            next_cursor,
        })
    }

    /// One delivery with its body and its attempts.
    /// Errors: [`Resource::Group`], [`Resource::Webhook`], then
    /// [`Resource::Delivery`], not found.
    pub async fn get(
        &self,
        caller: &Principal,
        group: GroupId,
        webhook: &WebhookId,
        delivery: &DeliveryId,
    ) -> Result<DeliveryDetail, DomainError> {
        let webhook = self.webhooks.get(caller, group, webhook).await?;
        self.queue
            .find(&webhook.id, delivery)
            .await?
            .ok_or(DomainError::NotFound(Resource::Delivery))
    }

    /// Makes the delivery due again now, whatever its status, and answers its
    /// id. Errors: as [`DeliveryService::get`], and
    /// [`Conflict::DeliveryInProgress`] while a worker is sending it (retry
    /// once its attempt is in the log).
    pub async fn retry(
        &self,
        caller: &Principal,
        group: GroupId,
        webhook: &WebhookId,
        delivery: &DeliveryId,
    ) -> Result<DeliveryId, DomainError> {
        let webhook = self.webhooks.get(caller, group, webhook).await?;
        match self
            .queue
            .requeue(&webhook.id, delivery, self.clock.now())
            .await?
        {
            Requeue::Requeued => {
                self.wakeup.notify();
                Ok(delivery.clone())
            }
            Requeue::InFlight => Err(DomainError::Conflict(Conflict::DeliveryInProgress)),
            Requeue::NotFound => Err(DomainError::NotFound(Resource::Delivery)),
        }
    }

    /// Queues a signed `webhook.test` event to this webhook alone.
    /// Errors: as [`WebhookService::get`], and [`Conflict::WebhookDisabled`]:
    /// nothing would ever deliver it.
    pub async fn send_test(
        &self,
        caller: &Principal,
        group: GroupId,
        webhook: &WebhookId,
    ) -> Result<TestSend, DomainError> {
        let webhook = self.webhooks.get(caller, group, webhook).await?;
        if webhook.status == WebhookStatus::Disabled {
            return Err(DomainError::Conflict(Conflict::WebhookDisabled));
        }
        let mut data = Map::new();
        data.insert("message".into(), Value::from("This is a test event."));
        data.insert("webhookID".into(), Value::from(webhook.id.as_str()));
        let event = Event::new(
            EventId::from_ulid(self.ids.ulid()),
            webhook.group_id,
            TEST_EVENT_TYPE,
            &data,
            self.clock.now(),
            None,
        );
        let delivery_id = self.events.publish_to(&event, &webhook.id).await?;
        self.wakeup.notify();
        Ok(TestSend {
            event_id: event.id,
            delivery_id,
        })
    }

    /// Makes every failed delivery of the webhook created at or after `since`
    /// due again now; answers how many. Errors: as [`WebhookService::get`].
    pub async fn recover(
        &self,
        caller: &Principal,
        group: GroupId,
        webhook: &WebhookId,
        since: UnixMillis,
    ) -> Result<u64, DomainError> {
        let webhook = self.webhooks.get(caller, group, webhook).await?;
        let count = self
            .queue
            .requeue_failed_since(&webhook.id, since, self.clock.now())
            .await?;
        if count > 0 {
            self.wakeup.notify();
        }
        Ok(count)
    }

    /// The window of [`DeliveryService::stats`] a request names, the
    /// defaults taken from this service's clock: see [`StatsWindow::resolve`].
    pub fn stats_window(
        &self,
        since: Option<UnixMillis>,
        until: Option<UnixMillis>,
    ) -> Result<StatsWindow, InvalidValue> {
        StatsWindow::resolve(since, until, self.clock.now())
    }

    /// The webhook's stats over `window`: its deliveries created then, by
    /// status, their success rate, and their attempts' count, latency and
    /// latest success and failure. Errors: as [`WebhookService::get`].
    pub async fn stats(
        &self,
        caller: &Principal,
        group: GroupId,
        webhook: &WebhookId,
        window: StatsWindow,
    ) -> Result<WebhookStats, DomainError> {
        let webhook = self.webhooks.get(caller, group, webhook).await?;
        let activity = self.queue.window_activity(&webhook.id, window).await?;
        Ok(WebhookStats::new(window, activity))
    }
}
