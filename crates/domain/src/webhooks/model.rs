//! The webhook endpoint: its value objects, the entity, and the commands that
//! create and change one.
use validator::ValidateLength;

use crate::error::{Field, InvalidValue};
use crate::ids::{GroupId, WebhookId};
use crate::signing::{SealedSecret, SecretCipher};
use crate::text::TextKind;
use crate::time::UnixMillis;
use crate::webhooks::{CustomHeaders, EnabledEvents, SealedHeaders, WebhookUrl};

/// The longest description accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: u64 = 1024;

/// A free-text description, possibly empty, at most 1,024 characters, with
/// no control character but TAB, LF and CR ([`TextKind::FreeText`]).
///
/// ```
/// use webhooks_domain::Description;
/// assert!(Description::new("").is_ok());
/// assert!(Description::new(&"é".repeat(1024)).is_ok());
/// assert!(Description::new("two\r\nlines").is_ok());
/// assert!(Description::new(&"x".repeat(1025)).is_err());
/// assert!(Description::new("nul\0").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// Checks `raw` and keeps it as written.
    pub fn new(raw: &str) -> Result<Self, InvalidValue> {
        if !raw.validate_length(None, Some(MAX_DESCRIPTION_CHARS), None) {
            return Err(InvalidValue::new(
                Field::Description,
                "longer than 1,024 characters",
            ));
        }
        if !TextKind::FreeText.accepts(raw) {
            return Err(InvalidValue::new(
                Field::Description,
                "holds a control character other than TAB, LF or CR",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The description as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a webhook receives events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookStatus {
    /// Receives events.
    Enabled,
    /// Receives nothing; set by its owner, or by the service after it failed
    /// for too long.
    Disabled,
}

impl WebhookStatus {
    /// `enabled` or `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookStatus::Enabled => "enabled",
            WebhookStatus::Disabled => "disabled",
        }
    }

    /// The status of this name; `None` for any other text.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "enabled" => Some(WebhookStatus::Enabled),
            "disabled" => Some(WebhookStatus::Disabled),
            _ => None,
        }
    }
}

/// The most deliveries per second a webhook accepts: an integer from 1 to
/// `u32::MAX`.
///
/// ```
/// use webhooks_domain::RateLimit;
/// assert_eq!(RateLimit::new(10).unwrap().per_second(), 10);
/// assert!(RateLimit::new(0).is_err());
/// assert!(RateLimit::new(4_294_967_296).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit(u32);

impl RateLimit {
    /// Checks the number is in range.
    pub fn new(per_second: i64) -> Result<Self, InvalidValue> {
        u32::try_from(per_second)
            .ok()
            .filter(|n| *n >= 1)
            .map(Self)
            .ok_or(InvalidValue::new(
                Field::RateLimit,
                "not from 1 to 4294967295",
            ))
    }

    /// Deliveries per second at most.
    pub fn per_second(self) -> u32 {
        self.0
    }
}

/// The order in which a webhook receives its deliveries, when it asks for
/// one; without it, deliveries go out side by side in any order.
///
/// ```
/// use webhooks_domain::DeliveryOrdering;
/// assert_eq!(DeliveryOrdering::parse("fifo"), Ok(DeliveryOrdering::Fifo));
/// assert_eq!(DeliveryOrdering::Fifo.as_str(), "fifo");
/// assert!(DeliveryOrdering::parse("lifo").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOrdering {
    /// First in, first out: an event goes out only once every event accepted
    /// before it for this webhook was delivered or failed for good, so at
    /// most one of its deliveries is in flight.
    Fifo,
}

impl DeliveryOrdering {
    /// `fifo`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOrdering::Fifo => "fifo",
        }
    }

    /// The ordering of this name.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        match raw {
            "fifo" => Ok(DeliveryOrdering::Fifo),
            _ => Err(InvalidValue::new(Field::Ordering, "not fifo")),
        }
    }
}

/// A webhook endpoint of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// `we_` and a ULID.
    pub id: WebhookId,
    /// The group it belongs to.
    pub group_id: GroupId,
    /// Where deliveries are POSTed.
    pub url: WebhookUrl,
    /// Free text of its owner.
    pub description: Description,
    /// Whether it receives events.
    pub status: WebhookStatus,
    /// The event types it receives.
    pub enabled_events: EnabledEvents,
    /// Deliveries per second at most; `None` for no limit.
    pub rate_limit: Option<RateLimit>,
    /// The signing secret, encrypted; see [`crate::SecretCipher`].
    pub secret: SealedSecret,
    /// Custom headers sent with every delivery, values encrypted; `None`
    /// for none.
    pub headers: Option<SealedHeaders>,
    /// The order of its deliveries; `None` for none.
    pub ordering: Option<DeliveryOrdering>,
    /// When it was created.
    pub created_at: UnixMillis,
    /// When it last changed.
    pub updated_at: UnixMillis,
}

/// What [`crate::WebhookService::create`] takes: a new webhook starts
/// enabled, without a rate limit, with a fresh signing secret.
///
/// ```
/// use webhooks_domain::{Description, EnabledEvents, NewWebhook, WebhookUrl};
/// # fn main() -> Result<(), webhooks_domain::InvalidValue> {
/// let new = NewWebhook {
///     url: WebhookUrl::new("https://integration.example/webhook")?,
///     description: Description::new("Webhook Description")?,
///     enabled_events: EnabledEvents::all(),
///     headers: None,
///     ordering: None,
/// };
/// # let _ = new; Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    /// Where deliveries go.
    pub url: WebhookUrl,
    /// Free text of its owner.
    pub description: Description,
    /// The event types it receives ([`EnabledEvents::all`] by default).
    pub enabled_events: EnabledEvents,
    /// Headers to send with every delivery; `None` (or empty) for none.
    pub headers: Option<CustomHeaders>,
    /// The order of its deliveries; `None` for none.
    pub ordering: Option<DeliveryOrdering>,
}

/// What [`crate::WebhookService::update`] takes: the URL and description
/// always; `None` leaves another field as it is, `rate_limit: Some(None)`
/// removes the limit, `headers: Some(None)` (or empty headers) removes
/// every custom header and `ordering: Some(None)` the ordering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUpdate {
    /// The new URL.
    pub url: WebhookUrl,
    /// The new description.
    pub description: Description,
    /// New event types, or `None` to keep them.
    pub enabled_events: Option<EnabledEvents>,
    /// A new status, or `None` to keep it.
    pub status: Option<WebhookStatus>,
    /// `Some(Some(limit))` sets a limit, `Some(None)` removes it, `None` keeps it.
    pub rate_limit: Option<Option<RateLimit>>,
    /// `Some(Some(headers))` replaces the custom headers, `Some(None)`
    /// removes them, `None` keeps them.
    pub headers: Option<Option<CustomHeaders>>,
    /// `Some(Some(ordering))` sets an ordering, `Some(None)` removes it,
    /// `None` keeps it.
    pub ordering: Option<Option<DeliveryOrdering>>,
}

impl WebhookUpdate {
    /// The webhook as it is after this update, changed at `now`; new custom
    /// headers are sealed with `cipher`.
    pub fn apply_to(self, mut webhook: Webhook, now: UnixMillis, cipher: &SecretCipher) -> Webhook {
        webhook.url = self.url;
        webhook.description = self.description;
        if let Some(events) = self.enabled_events {
            webhook.enabled_events = events;
        }
        if let Some(status) = self.status {
            webhook.status = status;
        }
        if let Some(rate_limit) = self.rate_limit {
            webhook.rate_limit = rate_limit;
        }
        if let Some(headers) = self.headers {
            webhook.headers = cipher.seal_optional_headers(headers);
        }
        if let Some(ordering) = self.ordering {
            webhook.ordering = ordering;
        }
        webhook.updated_at = now;
        webhook
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description_field(raw: &str) -> Result<Description, Field> {
        Description::new(raw).map_err(|err| err.field())
    }

    #[test]
    fn descriptions_refuse_controls_but_tab_and_line_breaks() {
        for bad in [
            "\0",
            "a\0b",
            "\u{1}",
            "\u{b}",
            "\u{c}",
            "\u{1b}[31m",
            "\u{7f}",
            "\u{85}",
            "\u{9f}",
        ] {
            assert_eq!(description_field(bad), Err(Field::Description), "{bad:?}");
        }
        for good in [
            "line\nline",
            "a\r\nb",
            "col\tcol",
            "para\u{2028}graph",
            "👩\u{200d}💻",
        ] {
            assert!(Description::new(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn descriptions_may_be_empty_and_up_to_1024_characters() {
        assert!(Description::new("").is_ok());
        assert!(Description::new(&"é".repeat(1024)).is_ok());
        assert_eq!(
            description_field(&"x".repeat(1025)),
            Err(Field::Description)
        );
    }

    #[test]
    fn rate_limits_are_from_1_to_u32_max() {
        assert_eq!(RateLimit::new(1).map(RateLimit::per_second), Ok(1));
        assert_eq!(
            RateLimit::new(4_294_967_295).map(RateLimit::per_second),
            Ok(u32::MAX)
        );
        for bad in [0, -1, 4_294_967_296, i64::MAX] {
            assert_eq!(
                RateLimit::new(bad).map_err(|err| err.field()),
                Err(Field::RateLimit),
                "{bad}"
            );
        }
    }

    #[test]
    fn statuses_parse_only_their_exact_names() {
        assert_eq!(
            WebhookStatus::parse("disabled"),
            Some(WebhookStatus::Disabled)
        );
        assert_eq!(WebhookStatus::parse("paused"), None);
    }

    /// A disabled webhook with a rate limit, made and changed at 1.
    fn old_webhook() -> Webhook {
        Webhook {
            id: WebhookId::from_ulid(ulid::Ulid::nil()),
            group_id: GroupId::new(1).unwrap(),
            url: WebhookUrl::new("https://a.example/old").unwrap(),
            description: Description::new("old").unwrap(),
            status: WebhookStatus::Disabled,
            enabled_events: EnabledEvents::all(),
            rate_limit: RateLimit::new(5).ok(),
            secret: SealedSecret::from_stored("sealed".to_owned()),
            headers: None,
            ordering: None,
            created_at: UnixMillis(1),
            updated_at: UnixMillis(1),
        }
    }

    #[test]
    fn an_update_keeps_what_it_leaves_out_and_can_remove_the_rate_limit() {
        let url = WebhookUrl::new("https://a.example/new").unwrap();
        let description = Description::new("new").unwrap();
        let webhook = old_webhook();
        let keep = WebhookUpdate {
            url: url.clone(),
            description: description.clone(),
            enabled_events: None,
            status: None,
            rate_limit: None,
            headers: None,
            ordering: None,
        };
        let cipher = SecretCipher::new(&[3u8; 32]).unwrap();
        let kept = keep
            .clone()
            .apply_to(webhook.clone(), UnixMillis(2), &cipher);
        assert_eq!(
            (kept.url.as_str(), kept.description.as_str()),
            ("https://a.example/new", "new")
        );
        assert_eq!(kept.status, WebhookStatus::Disabled);
        assert_eq!(kept.rate_limit, RateLimit::new(5).ok());
        assert_eq!(
            (kept.created_at, kept.updated_at),
            (UnixMillis(1), UnixMillis(2))
        );
        let removed = WebhookUpdate {
            rate_limit: Some(None),
            ..keep
        }
        .apply_to(webhook, UnixMillis(2), &cipher);
        assert_eq!(removed.rate_limit, None);
    }

    #[test]
    fn an_update_replaces_keeps_or_removes_the_custom_headers() {
        let cipher = SecretCipher::new(&[3u8; 32]).unwrap();
        let headers = CustomHeaders::new([("X-Api-Key", "k")]).unwrap();
        let webhook = old_webhook();
        let update = |headers| WebhookUpdate {
            url: webhook.url.clone(),
            description: webhook.description.clone(),
            enabled_events: None,
            status: None,
            rate_limit: None,
            headers,
            ordering: None,
        };
        let set =
            update(Some(Some(headers.clone()))).apply_to(webhook.clone(), UnixMillis(2), &cipher);
        let sealed = set.headers.clone().unwrap();
        assert_eq!(cipher.open_headers(&sealed), Ok(headers));
        let kept = update(None).apply_to(set.clone(), UnixMillis(3), &cipher);
        assert_eq!(kept.headers, Some(sealed));
        for removal in [None, Some(CustomHeaders::default())] {
            let removed = update(Some(removal)).apply_to(set.clone(), UnixMillis(3), &cipher);
            assert_eq!(removed.headers, None);
        }
    }

    #[test]
    fn an_update_sets_keeps_or_removes_the_ordering() {
        let cipher = SecretCipher::new(&[3u8; 32]).unwrap();
        let webhook = old_webhook();
        let update = |ordering| WebhookUpdate {
            url: webhook.url.clone(),
            description: webhook.description.clone(),
            enabled_events: None,
            status: None,
            rate_limit: None,
            headers: None,
            ordering,
        };
        let fifo = Some(DeliveryOrdering::Fifo);
        let set = update(Some(fifo)).apply_to(webhook.clone(), UnixMillis(2), &cipher);
        assert_eq!(set.ordering, fifo);
        let kept = update(None).apply_to(set.clone(), UnixMillis(3), &cipher);
        assert_eq!(kept.ordering, fifo);
        let removed = update(Some(None)).apply_to(set, UnixMillis(3), &cipher);
        assert_eq!(removed.ordering, None);
    }

    #[test]
    fn orderings_parse_only_fifo() {
        assert_eq!(DeliveryOrdering::parse("fifo"), Ok(DeliveryOrdering::Fifo));
        for bad in ["FIFO", "none", "lifo", " fifo", ""] {
            assert_eq!(
                DeliveryOrdering::parse(bad).map_err(|err| err.field()),
                Err(Field::Ordering),
                "{bad:?}"
            );
        }
    }
}
