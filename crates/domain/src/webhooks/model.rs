//! The webhook endpoint: its value objects, the entity, and the parsing of the
//! JSON bodies of create and update with the seed's error rules.

use std::fmt;

use serde_json::{Map, Value};
use validator::ValidateLength;

use crate::error::WebhookError;
use crate::ids::{GroupId, WebhookId};
use crate::signing::SealedSecret;
use crate::text::TextKind;
use crate::time::UnixMillis;

/// The longest URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// The longest description accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: u64 = 1024;

/// An absolute `http` or `https` URL with a host, at most 2,048 bytes, kept
/// exactly as the client wrote it. Refused as well: any character that is
/// not printable (controls, blanks, invisible format characters; see
/// [`TextKind::Url`]), a backslash, user information (`user:pass@`: a
/// credential would show in logs and in every answer that lists the
/// webhook) and port 0.
///
/// ```
/// use webhooks_domain::WebhookUrl;
/// assert!(WebhookUrl::new("https://integration.example/webhook").is_ok());
/// assert!(WebhookUrl::new("ftp://integration.example/").is_err());
/// assert!(WebhookUrl::new("/relative").is_err());
/// assert!(WebhookUrl::new("https://integration.example/a b").is_err());
/// assert!(WebhookUrl::new("https://user:pass@integration.example/").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn new(raw: &str) -> Result<Self, WebhookError> {
        // `Url::parse` forgives surrounding blanks, strips tabs and line
        // breaks, percent-encodes spaces and NUL, accepts backslashes for
        // slashes and a missing `//` (reading `http:///path` as host `path`);
        // a stored URL must mean what it says, so the raw text itself must
        // be printable and show `scheme://host`.
        if raw.len() > MAX_URL_BYTES || !TextKind::Url.accepts(raw) || raw.contains('\\') {
            return Err(WebhookError::InvalidUrl);
        }
        let head: Vec<u8> = raw
            .bytes()
            .take(8)
            .map(|b| b.to_ascii_lowercase())
            .collect();
        let scheme_len = if head.starts_with(b"https://") {
            8
        } else if head.starts_with(b"http://") {
            7
        } else {
            return Err(WebhookError::InvalidUrl);
        };
        let after_scheme = raw.get(scheme_len..).unwrap_or_default();
        let authority = after_scheme
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        // Any `@` in the authority ends user information, even an empty one.
        if authority.is_empty() || authority.contains('@') {
            return Err(WebhookError::InvalidUrl);
        }
        let parsed = url::Url::parse(raw).map_err(|_| WebhookError::InvalidUrl)?;
        let has_host = parsed.host_str().is_some_and(|host| !host.is_empty());
        if !matches!(parsed.scheme(), "http" | "https") || !has_host || parsed.port() == Some(0) {
            return Err(WebhookError::InvalidUrl);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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
    pub fn new(raw: &str) -> Result<Self, WebhookError> {
        if raw.validate_length(None, Some(MAX_DESCRIPTION_CHARS), None)
            && TextKind::FreeText.accepts(raw)
        {
            Ok(Self(raw.to_owned()))
        } else {
            Err(WebhookError::InvalidDescription)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The kinds of event the platform publishes. This is the one list of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    UserCreated,
    UserSessionResult,
}

impl EventType {
    /// Every supported event type, in the order the API lists them.
    pub const ALL: [EventType; 2] = [EventType::UserCreated, EventType::UserSessionResult];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserCreated => "user.created",
            EventType::UserSessionResult => "user.session.result",
        }
    }

    /// ```
    /// use webhooks_domain::EventType;
    /// assert_eq!(EventType::parse("user.created"), Some(EventType::UserCreated));
    /// assert_eq!(EventType::parse("user.deleted"), None);
    /// ```
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == raw)
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

    pub fn new(events: impl IntoIterator<Item = EventType>) -> Result<Self, WebhookError> {
        let mut events: Vec<EventType> = events.into_iter().collect();
        events.sort();
        events.dedup();
        if events.is_empty() {
            return Err(WebhookError::InvalidEnabledEvents);
        }
        Ok(Self(events))
    }

    /// From a JSON value: a non-empty array of supported event names.
    fn from_json(value: &Value) -> Result<Self, WebhookError> {
        let items = value.as_array().ok_or(WebhookError::InvalidEnabledEvents)?;
        let events = items
            .iter()
            .map(|item| item.as_str().and_then(EventType::parse))
            .collect::<Option<Vec<_>>>()
            .ok_or(WebhookError::InvalidEnabledEvents)?;
        Self::new(events)
    }

    pub fn contains(&self, event: EventType) -> bool {
        self.0.contains(&event)
    }

    pub fn iter(&self) -> impl Iterator<Item = EventType> + '_ {
        self.0.iter().copied()
    }
}

/// Whether a webhook receives events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookStatus {
    Enabled,
    Disabled,
}

impl WebhookStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookStatus::Enabled => "enabled",
            WebhookStatus::Disabled => "disabled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "enabled" => Some(WebhookStatus::Enabled),
            "disabled" => Some(WebhookStatus::Disabled),
            _ => None,
        }
    }
}

/// The most deliveries per second a webhook accepts: a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit(u32);

impl RateLimit {
    pub fn new(per_second: i64) -> Result<Self, WebhookError> {
        u32::try_from(per_second)
            .ok()
            .filter(|n| *n >= 1)
            .map(Self)
            .ok_or(WebhookError::InvalidRateLimit)
    }

    pub fn per_second(self) -> u32 {
        self.0
    }
}

/// A webhook endpoint of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: WebhookId,
    pub group_id: GroupId,
    pub url: WebhookUrl,
    pub description: Description,
    pub status: WebhookStatus,
    pub enabled_events: EnabledEvents,
    pub rate_limit: Option<RateLimit>,
    /// The signing secret, encrypted; see [`crate::SecretCipher`].
    pub secret: SealedSecret,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// The validated body of `POST /webhooks/{groupID}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookRequest {
    pub url: WebhookUrl,
    pub description: Description,
    pub enabled_events: EnabledEvents,
}

/// The validated body of `PUT /webhooks/{groupID}/{webhookID}`. `None` leaves
/// a field as it is; `rate_limit: Some(None)` removes the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUpdateRequest {
    pub url: WebhookUrl,
    pub description: Description,
    pub enabled_events: Option<EnabledEvents>,
    pub status: Option<WebhookStatus>,
    pub rate_limit: Option<Option<RateLimit>>,
}

impl NewWebhookRequest {
    /// Parses a create body. Whatever the content type, the bytes must be a
    /// JSON object; then `url`, `description` and `enabledEvents` are checked
    /// in that order and the first failure answers.
    ///
    /// ```
    /// use webhooks_domain::{NewWebhookRequest, WebhookError};
    /// let ok = NewWebhookRequest::from_json(br#"{"url":"https://a.example/","description":""}"#);
    /// assert!(ok.is_ok());
    /// let missing = NewWebhookRequest::from_json(br#"{"description":"x"}"#);
    /// assert_eq!(missing, Err(WebhookError::MissingUrl));
    /// ```
    pub fn from_json(body: &[u8]) -> Result<Self, WebhookError> {
        let fields = json_object(body)?;
        let (url, description) = url_and_description(&fields)?;
        let enabled_events = match fields.get("enabledEvents") {
            None => EnabledEvents::all(),
            Some(value) => EnabledEvents::from_json(value)?,
        };
        Ok(Self {
            url,
            description,
            enabled_events,
        })
    }
}

impl WebhookUpdateRequest {
    /// Parses an update body: `url` and `description` as on create (both
    /// required), then the optional `enabledEvents`, `status` and `rateLimit`.
    pub fn from_json(body: &[u8]) -> Result<Self, WebhookError> {
        let fields = json_object(body)?;
        let (url, description) = url_and_description(&fields)?;
        let enabled_events = fields
            .get("enabledEvents")
            .map(EnabledEvents::from_json)
            .transpose()?;
        let status = fields
            .get("status")
            .map(|value| {
                value
                    .as_str()
                    .and_then(WebhookStatus::parse)
                    .ok_or(WebhookError::InvalidStatus)
            })
            .transpose()?;
        let rate_limit = fields
            .get("rateLimit")
            .map(|value| match value {
                Value::Null => Ok(None),
                value => value
                    .as_i64()
                    .ok_or(WebhookError::InvalidRateLimit)
                    .and_then(RateLimit::new)
                    .map(Some),
            })
            .transpose()?;
        Ok(Self {
            url,
            description,
            enabled_events,
            status,
            rate_limit,
        })
    }

    /// The webhook as it is after this update.
    pub fn apply_to(self, mut webhook: Webhook, now: UnixMillis) -> Webhook {
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
        webhook.updated_at = now;
        webhook
    }
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, WebhookError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(WebhookError::InvalidJsonBody),
    }
}

fn url_and_description(
    fields: &Map<String, Value>,
) -> Result<(WebhookUrl, Description), WebhookError> {
    let url = match fields.get("url") {
        None => return Err(WebhookError::MissingUrl),
        Some(Value::String(raw)) => WebhookUrl::new(raw)?,
        Some(_) => return Err(WebhookError::UrlNotAString),
    };
    let description = match fields.get("description") {
        None => return Err(WebhookError::MissingDescription),
        Some(Value::String(raw)) => Description::new(raw)?,
        Some(_) => return Err(WebhookError::DescriptionNotAString),
    };
    Ok((url, description))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(body: &str) -> Result<NewWebhookRequest, WebhookError> {
        NewWebhookRequest::from_json(body.as_bytes())
    }

    fn update(body: &str) -> Result<WebhookUpdateRequest, WebhookError> {
        WebhookUpdateRequest::from_json(body.as_bytes())
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_invalid_json_body() {
        for body in ["", "not json", "[]", "\"x\"", "null", "{\"url\":"] {
            assert_eq!(create(body), Err(WebhookError::InvalidJsonBody), "{body}");
        }
    }

    #[test]
    fn url_is_checked_before_description() {
        assert_eq!(create("{}"), Err(WebhookError::MissingUrl));
        assert_eq!(
            create(r#"{"url":null,"description":5}"#),
            Err(WebhookError::UrlNotAString)
        );
        assert_eq!(
            create(r#"{"url":"nope","description":5}"#),
            Err(WebhookError::InvalidUrl)
        );
    }

    #[test]
    fn description_rules_follow_a_valid_url() {
        let url = r#""url":"https://a.example/hook""#;
        assert_eq!(
            create(&format!("{{{url}}}")),
            Err(WebhookError::MissingDescription)
        );
        assert_eq!(
            create(&format!(r#"{{{url},"description":null}}"#)),
            Err(WebhookError::DescriptionNotAString)
        );
        let long = "x".repeat(1025);
        assert_eq!(
            create(&format!(r#"{{{url},"description":"{long}"}}"#)),
            Err(WebhookError::InvalidDescription)
        );
    }

    #[test]
    fn urls_must_be_absolute_http_with_a_host_and_short() {
        for bad in [
            "",
            "integration.example/webhook",
            "mailto:a@b.example",
            "file:///etc/passwd",
            "https://",
            "http:///path",
            "http:/path",
            "http:path",
            "https:\\\\a.example",
            "http://a.example\\x",
            "http://",
            " https://a.example/",
        ] {
            assert_eq!(WebhookUrl::new(bad), Err(WebhookError::InvalidUrl), "{bad}");
        }
        let long = format!("https://a.example/{}", "x".repeat(MAX_URL_BYTES));
        assert_eq!(WebhookUrl::new(&long), Err(WebhookError::InvalidUrl));
        assert!(WebhookUrl::new("http://127.0.0.1:8080/hook?x=1").is_ok());
        assert!(WebhookUrl::new("HTTPS://Integration.Example/Hook").is_ok());
        assert!(WebhookUrl::new("http://[::1]:9000/").is_ok());
        assert!(WebhookUrl::new("http://écoute.example/").is_ok());
    }

    #[test]
    fn urls_with_a_control_or_blank_character_anywhere_are_invalid_url() {
        for bad in [
            "http://127.0.0.1:19003/x\r\nX-Injected: 1",
            "http://a.example/x\ny",
            "http://a.example/x\ry",
            "http://a.example/a b",
            "http://a.example/\0",
            "http://a.exa\0mple/",
            "http://a.example/\t",
            "http://a.example/\u{7f}",
            "http://a.example/\u{85}",
            "http://a.example/\u{9f}",
            "http://a.example/\u{a0}",
            "http://a.example/\u{2028}",
            "http://a.example/\u{2029}",
            "http://a.example/\u{3000}",
            "http://a.example/\u{200b}",
            "http://a\u{ad}.example/",
            "http://a.example/\u{202e}",
            "http://a.example/\u{feff}",
            "https://a.example/ ",
            "https://a.example/\n",
        ] {
            assert_eq!(
                WebhookUrl::new(bad),
                Err(WebhookError::InvalidUrl),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn urls_with_user_information_are_invalid_url() {
        for bad in [
            "https://user:pass@a.example/",
            "https://user@a.example/",
            "https://:pass@a.example/",
            "https://@a.example/",
            "http://user:p%40ss@127.0.0.1:8080/hook",
            "HTTPS://USER@A.EXAMPLE",
        ] {
            assert_eq!(WebhookUrl::new(bad), Err(WebhookError::InvalidUrl), "{bad}");
        }
        // An `@` after the authority is only a path, query or fragment.
        for good in [
            "https://a.example/@me",
            "https://a.example/hook?user=a@b.example",
            "https://a.example/hook#@x",
        ] {
            assert!(WebhookUrl::new(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn urls_with_port_zero_are_invalid_url() {
        for bad in [
            "http://a.example:0/",
            "https://a.example:00/x",
            "http://[::1]:0",
        ] {
            assert_eq!(WebhookUrl::new(bad), Err(WebhookError::InvalidUrl), "{bad}");
        }
        for good in [
            "http://a.example:1/",
            "http://a.example:80/",
            "https://a.example:65535/",
        ] {
            assert!(WebhookUrl::new(good).is_ok(), "{good}");
        }
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
            assert_eq!(
                Description::new(bad),
                Err(WebhookError::InvalidDescription),
                "{bad:?}"
            );
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
    fn nul_in_a_json_body_is_refused_by_the_field_that_holds_it() {
        let body = |url: &str, description: &str| {
            serde_json::json!({"url": url, "description": description}).to_string()
        };
        let ok = "https://a.example/";
        assert_eq!(
            create(&body("https://a.example/\0", "d")),
            Err(WebhookError::InvalidUrl)
        );
        assert_eq!(
            create(&body(ok, "d\0")),
            Err(WebhookError::InvalidDescription)
        );
        assert_eq!(
            update(&body("https://a.example/\0", "d")),
            Err(WebhookError::InvalidUrl)
        );
        assert_eq!(
            update(&body(ok, "d\0")),
            Err(WebhookError::InvalidDescription)
        );
        // The JSON escape and the raw byte are the same character.
        assert_eq!(
            create(r#"{"url":"https://a.example/","description":"d\u0000"}"#),
            Err(WebhookError::InvalidDescription)
        );
        // A lone surrogate is no character at all: not JSON we can read.
        assert_eq!(
            create(r#"{"url":"https://a.example/","description":"\ud800"}"#),
            Err(WebhookError::InvalidJsonBody)
        );
    }

    #[test]
    fn enabled_events_default_to_all_and_reject_unknown_or_empty() {
        let base = r#""url":"https://a.example/","description":"d""#;
        assert_eq!(
            create(&format!("{{{base}}}")).map(|r| r.enabled_events),
            Ok(EnabledEvents::all())
        );
        assert_eq!(
            create(&format!(
                r#"{{{base},"enabledEvents":["user.created","user.created"]}}"#
            ))
            .map(|r| r.enabled_events.iter().collect::<Vec<_>>()),
            Ok(vec![EventType::UserCreated])
        );
        for bad in [
            "[]",
            "[\"user.deleted\"]",
            "\"user.created\"",
            "null",
            "[1]",
        ] {
            assert_eq!(
                create(&format!(r#"{{{base},"enabledEvents":{bad}}}"#)),
                Err(WebhookError::InvalidEnabledEvents),
                "{bad}"
            );
        }
    }

    #[test]
    fn update_reads_status_and_rate_limit() {
        let base = r#""url":"https://a.example/","description":"d""#;
        let parsed = update(&format!(r#"{{{base},"status":"disabled","rateLimit":10}}"#));
        assert_eq!(
            parsed.as_ref().map(|r| r.status),
            Ok(Some(WebhookStatus::Disabled))
        );
        assert_eq!(
            parsed.map(|r| r.rate_limit),
            Ok(RateLimit::new(10).ok().map(Some))
        );
        assert_eq!(
            update(&format!(r#"{{{base},"rateLimit":null}}"#)).map(|r| r.rate_limit),
            Ok(Some(None))
        );
        for bad in ["0", "-1", "1.5", "\"5\"", "4294967296"] {
            assert_eq!(
                update(&format!(r#"{{{base},"rateLimit":{bad}}}"#)),
                Err(WebhookError::InvalidRateLimit),
                "{bad}"
            );
        }
        for bad in ["\"paused\"", "null", "true"] {
            assert_eq!(
                update(&format!(r#"{{{base},"status":{bad}}}"#)),
                Err(WebhookError::InvalidStatus),
                "{bad}"
            );
        }
    }
}
