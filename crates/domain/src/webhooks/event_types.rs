//! The kinds of event ([`EventType`]) and the set a webhook takes
//! ([`EnabledEvents`]).

use std::fmt;

use crate::error::{Field, InvalidValue};

/// The kinds of event there are. This is the one list of them: those the
/// platform publishes ([`EventType::ALL`]) and the operational ones the
/// service itself sends to an organization's operator endpoint
/// ([`EventType::OPERATIONAL`]), which no publisher may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// `user.created`.
    UserCreated,
    /// `user.session.result`.
    UserSessionResult,
    /// `webhook.disabled`: a webhook stopped receiving events.
    WebhookDisabled,
    /// `webhook.enabled`: a disabled webhook receives events again.
    WebhookEnabled,
    /// `delivery.failed`: a delivery failed for good.
    DeliveryFailed,
    /// `secret.rotated`: a webhook's signing secret was replaced.
    SecretRotated,
}

impl EventType {
    /// Every event type the platform publishes, in the order the API lists them.
    pub const ALL: [EventType; 2] = [EventType::UserCreated, EventType::UserSessionResult];

    /// The operational event types, in the order the API lists them.
    pub const OPERATIONAL: [EventType; 4] = [
        EventType::WebhookDisabled,
        EventType::WebhookEnabled,
        EventType::DeliveryFailed,
        EventType::SecretRotated,
    ];

    /// Every event type, published then operational.
    pub const EVERY: [EventType; 6] = [
        EventType::UserCreated,
        EventType::UserSessionResult,
        EventType::WebhookDisabled,
        EventType::WebhookEnabled,
        EventType::DeliveryFailed,
        EventType::SecretRotated,
    ];

    /// The event type's name, as receivers see it in `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserCreated => "user.created",
            EventType::UserSessionResult => "user.session.result",
            EventType::WebhookDisabled => "webhook.disabled",
            EventType::WebhookEnabled => "webhook.enabled",
            EventType::DeliveryFailed => "delivery.failed",
            EventType::SecretRotated => "secret.rotated",
        }
    }

    /// The event type of this name, published or operational; `None` for
    /// any other text.
    ///
    /// ```
    /// use webhooks_domain::EventType;
    /// assert_eq!(EventType::parse("user.created"), Some(EventType::UserCreated));
    /// assert_eq!(EventType::parse("webhook.disabled"), Some(EventType::WebhookDisabled));
    /// assert_eq!(EventType::parse("user.deleted"), None);
    /// ```
    pub fn parse(raw: &str) -> Option<Self> {
        Self::EVERY.into_iter().find(|event| event.as_str() == raw)
    }

    /// Whether the service alone sends it, to operator endpoints.
    ///
    /// ```
    /// use webhooks_domain::EventType;
    /// assert!(EventType::SecretRotated.is_operational());
    /// assert!(!EventType::UserCreated.is_operational());
    /// ```
    pub fn is_operational(self) -> bool {
        Self::OPERATIONAL.contains(&self)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The non-empty, duplicate-free set of event types a webhook receives, in
/// the canonical order of [`EventType::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnabledEvents(Vec<EventType>);

impl EnabledEvents {
    /// Every supported event: the default of a new webhook.
    pub fn all() -> Self {
        Self(EventType::ALL.to_vec())
    }

    /// The set of `events`, sorted, duplicates dropped; empty is refused.
    ///
    /// ```
    /// use webhooks_domain::{EnabledEvents, EventType};
    /// let events = EnabledEvents::new([EventType::UserCreated, EventType::UserCreated]).unwrap();
    /// assert_eq!(events.iter().collect::<Vec<_>>(), [EventType::UserCreated]);
    /// assert!(EnabledEvents::new([]).is_err());
    /// ```
    pub fn new(events: impl IntoIterator<Item = EventType>) -> Result<Self, InvalidValue> {
        let mut events: Vec<EventType> = events.into_iter().collect();
        events.sort();
        events.dedup();
        if events.is_empty() {
            return Err(InvalidValue::new(Field::EnabledEvents, "empty"));
        }
        Ok(Self(events))
    }

    /// Every operational event: what an operator endpoint takes by default.
    pub fn operational() -> Self {
        Self(EventType::OPERATIONAL.to_vec())
    }

    /// Whether it names an operational event type, which only the webhooks
    /// of an operations group may receive.
    pub fn has_operational(&self) -> bool {
        self.0.iter().any(|event| event.is_operational())
    }

    /// Whether a webhook with these events receives `event`.
    pub fn contains(&self, event: EventType) -> bool {
        self.0.contains(&event)
    }

    /// The event types, in the order of [`EventType::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = EventType> + '_ {
        self.0.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_events_are_sorted_without_duplicates_and_never_empty() {
        let events = EnabledEvents::new([
            EventType::UserSessionResult,
            EventType::UserCreated,
            EventType::UserSessionResult,
        ]);
        assert_eq!(events, Ok(EnabledEvents::all()));
        assert_eq!(
            EnabledEvents::new([]).map_err(|err| err.field()),
            Err(Field::EnabledEvents)
        );
    }

    #[test]
    fn event_types_parse_only_their_exact_names() {
        assert_eq!(
            EventType::parse("user.session.result"),
            Some(EventType::UserSessionResult)
        );
        for bad in ["user.created\0", " user.created", "User.Created", ""] {
            assert_eq!(EventType::parse(bad), None, "{bad:?}");
        }
    }
}
