//! The delivery log and its actions: list, read, retry, test send, recover.
//! Every call first passes the same checks as the webhook it belongs to.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::delivery::Wakeup;
use crate::delivery::{Delivery, DeliveryDetail, DeliveryStatus, TEST_EVENT_TYPE};
use crate::error::WebhookError;
use crate::events::Event;
use crate::ids::{DeliveryId, EventId};
use crate::ports::{Clock, DeliveryQueue, EventStore, IdSource, Requeue};
use crate::tenancy::Principal;
use crate::time::UnixMillis;
use crate::webhooks::WebhookService;
use crate::webhooks::WebhookStatus;

/// Page size of the delivery log unless asked otherwise.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The largest page of the delivery log.
pub const MAX_PAGE_SIZE: usize = 250;

/// The raw query of `GET …/deliveries`.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery<'a> {
    pub status: Option<&'a str>,
    pub cursor: Option<&'a str>,
    pub limit: Option<&'a str>,
}

/// One page of the delivery log; `next_cursor` fetches the next (older) one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    pub next_cursor: Option<DeliveryId>,
}

/// A test send just queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSend {
    pub event_id: EventId,
    pub delivery_id: DeliveryId,
}

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

    /// `GET /webhooks/{groupID}/{webhookID}/deliveries`: newest first.
    pub async fn list(
        &self,
        caller: &Principal,
        group: Option<&str>,
        webhook: Option<&str>,
        query: DeliveryQuery<'_>,
    ) -> Result<DeliveryPage, WebhookError> {
        let status = query
            .status
            .map(|raw| DeliveryStatus::parse(raw).ok_or(WebhookError::InvalidStatusFilter))
            .transpose()?;
        let before = query
            .cursor
            .map(|raw| DeliveryId::parse(raw).ok_or(WebhookError::InvalidCursor))
            .transpose()?;
        let limit = match query.limit {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                .ok_or(WebhookError::InvalidLimit)?,
        };
        let webhook = self.webhooks.get(caller, group, webhook).await?;
        // One more than asked tells whether another page exists.
        let mut deliveries = self
            .queue
            .list(&webhook.id, status, before, limit + 1)
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

    /// `GET …/deliveries/{deliveryID}`: the delivery, its body and its attempts.
    pub async fn get(
        &self,
        caller: &Principal,
        group: Option<&str>,
        webhook: Option<&str>,
        delivery: Option<&str>,
    ) -> Result<DeliveryDetail, WebhookError> {
        let webhook = self.webhooks.get(caller, group, webhook).await?;
        let id = delivery
            .and_then(DeliveryId::parse)
            .ok_or(WebhookError::DeliveryNotFound)?;
        self.queue
            .find(&webhook.id, &id)
            .await?
            .ok_or(WebhookError::DeliveryNotFound)
    }

    /// `POST …/deliveries/{deliveryID}/retry`: due again now, whatever its
    /// status, unless a worker is sending it right now
    /// ([`WebhookError::DeliveryInProgress`]; retry once its attempt is in
    /// the log).
    pub async fn retry(
        &self,
        caller: &Principal,
        group: Option<&str>,
        webhook: Option<&str>,
        delivery: Option<&str>,
    ) -> Result<DeliveryId, WebhookError> {
        let webhook = self.webhooks.get(caller, group, webhook).await?;
        let id = delivery
            .and_then(DeliveryId::parse)
            .ok_or(WebhookError::DeliveryNotFound)?;
        match self
            .queue
            .requeue(&webhook.id, &id, self.clock.now())
            .await?
        {
            Requeue::Requeued => {
                self.wakeup.notify();
                Ok(id)
            }
            Requeue::InFlight => Err(WebhookError::DeliveryInProgress),
            Requeue::NotFound => Err(WebhookError::DeliveryNotFound),
        }
    }

    /// `POST …/test`: a signed `webhook.test` event to this webhook alone.
    /// A disabled webhook is refused: nothing would ever deliver it.
    pub async fn send_test(
        &self,
        caller: &Principal,
        group: Option<&str>,
        webhook: Option<&str>,
    ) -> Result<TestSend, WebhookError> {
        let webhook = self.webhooks.get(caller, group, webhook).await?;
        if webhook.status == WebhookStatus::Disabled {
            return Err(WebhookError::WebhookDisabled);
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

    /// `POST …/recover {"since": RFC 3339}`: every failed delivery created
    /// since then is due again now; answers how many.
    pub async fn recover(
        &self,
        caller: &Principal,
        group: Option<&str>,
        webhook: Option<&str>,
        body: &[u8],
    ) -> Result<u64, WebhookError> {
        let since = parse_since(body)?;
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
}

fn parse_since(body: &[u8]) -> Result<UnixMillis, WebhookError> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(WebhookError::InvalidJsonBody);
    };
    let raw = match fields.get("since") {
        None => return Err(WebhookError::MissingSince),
        Some(Value::String(raw)) => raw,
        Some(_) => return Err(WebhookError::InvalidSince),
    };
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|at| UnixMillis(at.timestamp_millis()))
        .map_err(|_| WebhookError::InvalidSince)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_an_rfc3339_string() {
        assert_eq!(
            parse_since(br#"{"since":"2026-11-30T00:00:00Z"}"#),
            Ok(UnixMillis(1_795_996_800_000))
        );
        assert_eq!(
            parse_since(br#"{"since":"2026-11-30T01:00:00+01:00"}"#),
            Ok(UnixMillis(1_795_996_800_000))
        );
        assert_eq!(parse_since(b"{}"), Err(WebhookError::MissingSince));
        assert_eq!(
            parse_since(br#"{"since":5}"#),
            Err(WebhookError::InvalidSince)
        );
        assert_eq!(
            parse_since(br#"{"since":"yesterday"}"#),
            Err(WebhookError::InvalidSince)
        );
        assert_eq!(parse_since(b"nope"), Err(WebhookError::InvalidJsonBody));
    }
}
