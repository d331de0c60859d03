//! The operational events and why a webhook's status changed.

use serde_json::{json, Map, Value};

use crate::events::Event;
use crate::ids::{DeliveryId, EventId, GroupId, WebhookId};
use crate::time::UnixMillis;
use crate::webhooks::{EventType, WebhookStatus};

/// Why a webhook was disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisabledReason {
    /// Nothing but failures for `disable_after`.
    Failures,
    /// The receiver answered `410 Gone`.
    Gone,
    /// Its owner set it `disabled`.
    Manual,
}

impl DisabledReason {
    /// `failures`, `gone` or `manual`, as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            DisabledReason::Failures => "failures",
            DisabledReason::Gone => "gone",
            DisabledReason::Manual => "manual",
        }
    }

    /// The reason of this name; `None` for any other text.
    ///
    /// ```
    /// use webhooks_domain::DisabledReason;
    /// assert_eq!(DisabledReason::parse("gone"), Some(DisabledReason::Gone));
    /// assert_eq!(DisabledReason::parse("410"), None);
    /// ```
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Failures, Self::Gone, Self::Manual]
            .into_iter()
            .find(|reason| reason.as_str() == raw)
    }
}

/// Why a disabled webhook was enabled again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnabledReason {
    /// Its owner set it `enabled`.
    Manual,
    /// Probes of its endpoint succeeded.
    Probe,
}

impl EnabledReason {
    /// `manual` or `probe`, as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            EnabledReason::Manual => "manual",
            EnabledReason::Probe => "probe",
        }
    }
}

/// A change of a webhook's status with its reason, stored with the webhook
/// and told to the operator endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// It stops receiving events.
    Disabled(DisabledReason),
    /// It receives events again.
    Enabled(EnabledReason),
}

impl StatusChange {
    /// What its owner did by moving a webhook from `before` to `after`;
    /// `None` when the status stays.
    ///
    /// ```
    /// use webhooks_domain::{DisabledReason, StatusChange, WebhookStatus};
    /// assert_eq!(
    ///     StatusChange::by_owner(WebhookStatus::Enabled, WebhookStatus::Disabled),
    ///     Some(StatusChange::Disabled(DisabledReason::Manual))
    /// );
    /// assert_eq!(StatusChange::by_owner(WebhookStatus::Enabled, WebhookStatus::Enabled), None);
    /// ```
    pub fn by_owner(before: WebhookStatus, after: WebhookStatus) -> Option<Self> {
        match (before, after) {
            (WebhookStatus::Enabled, WebhookStatus::Disabled) => {
                Some(StatusChange::Disabled(DisabledReason::Manual))
            }
            (WebhookStatus::Disabled, WebhookStatus::Enabled) => {
                Some(StatusChange::Enabled(EnabledReason::Manual))
            }
            _ => None,
        }
    }
}

/// A delivery that failed for good, as `delivery.failed` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedDelivery {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// Its event.
    pub event_id: EventId,
    /// Its event's type, such as `user.created`.
    pub event_type: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last answer's HTTP status, if one came.
    pub last_status: Option<u16>,
}

/// What an organization's operator endpoint is told about one of its
/// webhooks: the type, and the `data` of the event's body.
///
/// ```
/// use webhooks_domain::{EventId, EventType, GroupId, OperationalEvent, UnixMillis, WebhookId};
/// let webhook = WebhookId::from_ulid(ulid::Ulid::nil());
/// let news = OperationalEvent::secret_rotated(GroupId::new(7).unwrap(), &webhook);
/// assert_eq!(news.event_type(), EventType::SecretRotated);
/// let event = news.to_event(
///     EventId::from_ulid(ulid::Ulid::nil()),
///     GroupId::new(9).unwrap(),
///     UnixMillis(0),
/// );
/// assert_eq!(event.group_id.get(), 9);
/// assert!(event.payload.contains(r#""data":{"groupID":7,"#));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OperationalEvent {
    event_type: EventType,
    group_id: GroupId,
    data: Map<String, Value>,
}

impl OperationalEvent {
    /// `webhook.disabled` or `webhook.enabled`:
    /// `{"groupID","webhookID","url","reason"}`.
    pub fn status_changed(
        group: GroupId,
        webhook: &WebhookId,
        url: &str,
        change: StatusChange,
    ) -> Self {
        let (event_type, reason) = match change {
            StatusChange::Disabled(reason) => (EventType::WebhookDisabled, reason.as_str()),
            StatusChange::Enabled(reason) => (EventType::WebhookEnabled, reason.as_str()),
        };
        let mut news = Self::about(event_type, group, webhook);
        news.data.insert("url".into(), Value::from(url));
        news.data.insert("reason".into(), Value::from(reason));
        news
    }

    /// `delivery.failed`: `{"groupID","webhookID","deliveryID","eventID",
    /// "eventType","attempts"}` and `lastStatus` when an answer came.
    pub fn delivery_failed(group: GroupId, webhook: &WebhookId, failed: &FailedDelivery) -> Self {
        let mut news = Self::about(EventType::DeliveryFailed, group, webhook);
        let data = &mut news.data;
        data.insert(
            "deliveryID".into(),
            Value::from(failed.delivery_id.as_str()),
        );
        data.insert("eventID".into(), Value::from(failed.event_id.as_str()));
        data.insert("eventType".into(), Value::from(failed.event_type.as_str()));
        data.insert("attempts".into(), Value::from(failed.attempts));
        if let Some(status) = failed.last_status {
            data.insert("lastStatus".into(), Value::from(status));
        }
        news
    }

    /// `secret.rotated`: `{"groupID","webhookID"}`.
    pub fn secret_rotated(group: GroupId, webhook: &WebhookId) -> Self {
        Self::about(EventType::SecretRotated, group, webhook)
    }

    fn about(event_type: EventType, group: GroupId, webhook: &WebhookId) -> Self {
        let data = json!({ "groupID": group.get(), "webhookID": webhook.as_str() });
        let Value::Object(data) = data else {
            unreachable!("json! of an object literal");
        };
        Self {
            event_type,
            group_id: group,
            data,
        }
    }

    /// Its type.
    pub fn event_type(&self) -> EventType {
        self.event_type
    }

    /// The group of the webhook it is about: its organization's operations
    /// group gets the event, unless it is that group.
    pub fn group_id(&self) -> GroupId {
        self.group_id
    }

    /// The event for the operations group `operations`, with the usual
    /// envelope around this event's data.
    pub fn to_event(&self, id: EventId, operations: GroupId, at: UnixMillis) -> Event {
        Event::new(
            id,
            operations,
            self.event_type.as_str(),
            &self.data,
            at,
            None,
        )
    }

    /// Counts operational events sent, by type, in
    /// `webhooks_operational_events_total`; storage calls it once they are
    /// committed.
    pub fn count_sent(types: &[EventType]) {
        for event_type in types {
            metrics::counter!("webhooks_operational_events_total", "type" => event_type.as_str())
                .increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (GroupId, WebhookId) {
        (
            GroupId::new(42).unwrap(),
            WebhookId::from_ulid(ulid::Ulid::from_parts(1, 2)),
        )
    }

    fn body(news: &OperationalEvent) -> Value {
        let event = news.to_event(
            EventId::from_ulid(ulid::Ulid::from_parts(3, 4)),
            GroupId::new(900).unwrap(),
            UnixMillis(1_700_000_000_500),
        );
        serde_json::from_str(&event.payload).unwrap()
    }

    #[test]
    fn a_disabled_webhook_is_told_with_its_url_and_reason_in_the_operations_group() {
        let (group, webhook) = ids();
        let news = OperationalEvent::status_changed(
            group,
            &webhook,
            "https://a.example/hook",
            StatusChange::Disabled(DisabledReason::Gone),
        );
        let body = body(&news);
        assert_eq!(body["type"], "webhook.disabled");
        assert_eq!(body["groupID"], 900);
        assert_eq!(body["created"], 1_700_000_000);
        assert_eq!(
            body["data"],
            json!({"groupID": 42, "webhookID": webhook.as_str(),
                   "url": "https://a.example/hook", "reason": "gone"})
        );
    }

    #[test]
    fn an_enabled_webhook_says_who_enabled_it() {
        let (group, webhook) = ids();
        let change = StatusChange::Enabled(EnabledReason::Probe);
        let news = OperationalEvent::status_changed(group, &webhook, "https://a.example", change);
        assert_eq!(news.event_type(), EventType::WebhookEnabled);
        assert_eq!(body(&news)["data"]["reason"], "probe");
    }

    #[test]
    fn a_failed_delivery_names_its_delivery_event_and_last_status_when_one_came() {
        let (group, webhook) = ids();
        let mut failed = FailedDelivery {
            delivery_id: DeliveryId::from_ulid(ulid::Ulid::from_parts(5, 6)),
            event_id: EventId::from_ulid(ulid::Ulid::from_parts(7, 8)),
            event_type: "user.created".into(),
            attempts: 3,
            last_status: Some(500),
        };
        let data =
            body(&OperationalEvent::delivery_failed(group, &webhook, &failed))["data"].clone();
        assert_eq!(
            data,
            json!({"groupID": 42, "webhookID": webhook.as_str(),
                   "deliveryID": failed.delivery_id.as_str(), "eventID": failed.event_id.as_str(),
                   "eventType": "user.created", "attempts": 3, "lastStatus": 500})
        );
        failed.last_status = None;
        let data =
            body(&OperationalEvent::delivery_failed(group, &webhook, &failed))["data"].clone();
        assert!(data.get("lastStatus").is_none(), "{data}");
    }

    #[test]
    fn an_owner_changes_the_status_only_by_moving_it() {
        use WebhookStatus::{Disabled, Enabled};
        assert_eq!(
            StatusChange::by_owner(Disabled, Enabled),
            Some(StatusChange::Enabled(EnabledReason::Manual))
        );
        assert_eq!(StatusChange::by_owner(Disabled, Disabled), None);
    }

    #[test]
    fn disabled_reasons_round_trip_through_their_names() {
        for reason in [
            DisabledReason::Failures,
            DisabledReason::Gone,
            DisabledReason::Manual,
        ] {
            assert_eq!(DisabledReason::parse(reason.as_str()), Some(reason));
        }
    }
}
