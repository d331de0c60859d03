//! Events: what the platform publishes, and the body receivers get.

use serde::Serialize;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::error::RepositoryError;
use crate::ids::{EventId, GroupId};
use crate::text::TextKind;
use crate::time::UnixMillis;
use crate::webhooks::EventType;

/// The longest idempotency key, in characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;
/// How long an idempotency key is remembered per group.
pub const IDEMPOTENCY_WINDOW_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// What publishing can answer besides success; `Display` is the client text.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PublishError {
    #[error("Invalid JSON body")]
    InvalidJsonBody,
    #[error("You are missing the body parameter groupID")]
    MissingGroupId,
    #[error("groupID must be a number")]
    GroupIdNotANumber,
    #[error("You are missing the body parameter type")]
    MissingType,
    #[error("Unknown event type")]
    UnknownType,
    #[error("data must be an object")]
    DataNotAnObject,
    #[error("Invalid idempotencyKey")]
    InvalidIdempotencyKey,
    #[error("Group not found")]
    GroupNotFound,
    #[error("unexpected: {0}")]
    Unexpected(String),
}

impl From<RepositoryError> for PublishError {
    fn from(err: RepositoryError) -> Self {
        PublishError::Unexpected(err.to_string())
    }
}

/// A caller-chosen key that makes publishing the same event twice harmless:
/// 1 to 255 characters on one line ([`TextKind::SingleLine`]: no control
/// character, no line break), remembered per group for 24 hours.
///
/// ```
/// use webhooks_domain::IdempotencyKey;
/// assert!(IdempotencyKey::new("signup-u_1").is_ok());
/// assert!(IdempotencyKey::new("").is_err());
/// assert!(IdempotencyKey::new("signup\0").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn new(raw: &str) -> Result<Self, PublishError> {
        let chars = raw.chars().count();
        if (1..=MAX_IDEMPOTENCY_KEY_CHARS).contains(&chars) && TextKind::SingleLine.accepts(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(PublishError::InvalidIdempotencyKey)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An event to publish, validated.
///
/// ```
/// use webhooks_domain::{EventType, PublishRequest};
/// let body = br#"{"groupID":123456,"type":"user.created","data":{"userID":"u_1"}}"#;
/// let request = PublishRequest::from_json(body).unwrap();
/// assert_eq!(request.event_type, EventType::UserCreated);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PublishRequest {
    pub group_id: GroupId,
    pub event_type: EventType,
    pub data: Map<String, Value>,
    pub idempotency_key: Option<IdempotencyKey>,
}

impl PublishRequest {
    /// Parses the body of `POST /internal/events`: `groupID` (a positive
    /// integer, as a number or a string of digits), `type` (a supported event
    /// type), `data` (an object, `{}` when absent), optional `idempotencyKey`.
    pub fn from_json(body: &[u8]) -> Result<Self, PublishError> {
        let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
            return Err(PublishError::InvalidJsonBody);
        };
        let group_id = match fields.get("groupID") {
            None | Some(Value::Null) => return Err(PublishError::MissingGroupId),
            Some(Value::Number(n)) => n.as_i64().and_then(|n| GroupId::new(n).ok()),
            Some(Value::String(s)) => GroupId::parse(Some(s)).ok(),
            Some(_) => None,
        }
        .ok_or(PublishError::GroupIdNotANumber)?;
        let event_type = match fields.get("type") {
            None | Some(Value::Null) => return Err(PublishError::MissingType),
            Some(value) => value
                .as_str()
                .and_then(EventType::parse)
                .ok_or(PublishError::UnknownType)?,
        };
        let data = match fields.remove("data") {
            None => Map::new(),
            Some(Value::Object(data)) => data,
            Some(_) => return Err(PublishError::DataNotAnObject),
        };
        let idempotency_key = match fields.get("idempotencyKey") {
            None | Some(Value::Null) => None,
            Some(Value::String(key)) => Some(IdempotencyKey::new(key)?),
            Some(_) => return Err(PublishError::InvalidIdempotencyKey),
        };
        Ok(Self {
            group_id,
            event_type,
            data,
            idempotency_key,
        })
    }
}

/// A published event. Its `payload` is fixed at publication, so every retry
/// sends the same bytes under the same `webhook-id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub group_id: GroupId,
    pub event_type: String,
    pub created_at: UnixMillis,
    /// The JSON body receivers get.
    pub payload: String,
    pub idempotency_key: Option<IdempotencyKey>,
}

#[derive(Serialize)]
struct Payload<'a> {
    id: &'a str,
    object: &'static str,
    #[serde(rename = "type")]
    event_type: &'a str,
    created: i64,
    #[serde(rename = "groupID")]
    group_id: i64,
    data: &'a Map<String, Value>,
}

impl Event {
    /// Builds the event and its body
    /// `{"id","object":"event","type","created","groupID","data"}`.
    pub fn new(
        id: EventId,
        group_id: GroupId,
        event_type: &str,
        data: &Map<String, Value>,
        created_at: UnixMillis,
        idempotency_key: Option<IdempotencyKey>,
    ) -> Self {
        let payload = serde_json::to_string(&Payload {
            id: id.as_str(),
            object: "event",
            event_type,
            created: created_at.as_secs(),
            group_id: group_id.get(),
            data,
        })
        .unwrap_or_default();
        Self {
            id,
            group_id,
            event_type: event_type.to_owned(),
            created_at,
            payload,
            idempotency_key,
        }
    }
}

/// The answer to publishing: the event's id and how many deliveries it made.
/// A repeat of an idempotency key answers the first event's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    pub event_id: EventId,
    pub deliveries: u64,
    /// Whether this call stored the event (false for an idempotent repeat).
    pub created: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<PublishRequest, PublishError> {
        PublishRequest::from_json(body.as_bytes())
    }

    #[test]
    fn publish_bodies_are_checked_field_by_field() {
        assert_eq!(parse("[]"), Err(PublishError::InvalidJsonBody));
        assert_eq!(parse("{}"), Err(PublishError::MissingGroupId));
        assert_eq!(
            parse(r#"{"groupID":"x"}"#),
            Err(PublishError::GroupIdNotANumber)
        );
        assert_eq!(
            parse(r#"{"groupID":0}"#),
            Err(PublishError::GroupIdNotANumber)
        );
        assert_eq!(
            parse(r#"{"groupID":1.5}"#),
            Err(PublishError::GroupIdNotANumber)
        );
        assert_eq!(parse(r#"{"groupID":1}"#), Err(PublishError::MissingType));
        assert_eq!(
            parse(r#"{"groupID":1,"type":"user.deleted"}"#),
            Err(PublishError::UnknownType)
        );
        assert_eq!(
            parse(r#"{"groupID":1,"type":"user.created","data":[1]}"#),
            Err(PublishError::DataNotAnObject)
        );
        assert_eq!(
            parse(r#"{"groupID":1,"type":"user.created","idempotencyKey":""}"#),
            Err(PublishError::InvalidIdempotencyKey)
        );
        let ok =
            parse(r#"{"groupID":"42","type":"user.session.result","idempotencyKey":"k"}"#).unwrap();
        assert_eq!(ok.group_id.get(), 42);
        assert!(ok.data.is_empty());
    }

    #[test]
    fn idempotency_keys_refuse_every_control_character_and_line_break() {
        let refused = ('\u{0}'..='\u{1f}')
            .chain(['\u{7f}', '\u{2028}', '\u{2029}'])
            .chain('\u{80}'..='\u{9f}');
        for c in refused {
            let body = serde_json::json!({
                "groupID": 1, "type": "user.created", "idempotencyKey": format!("key{c}")
            });
            assert_eq!(
                parse(&body.to_string()),
                Err(PublishError::InvalidIdempotencyKey),
                "U+{:04X}",
                c as u32
            );
        }
        assert!(IdempotencyKey::new("signup-u_1 é 🚀").is_ok());
    }

    #[test]
    fn an_event_type_with_a_control_character_is_unknown() {
        for raw in ["user.created\0", "user.created\n", "\0", " user.created"] {
            let body = serde_json::json!({"groupID": 1, "type": raw});
            assert_eq!(
                parse(&body.to_string()),
                Err(PublishError::UnknownType),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn nul_and_controls_in_data_stay_json_escapes_in_the_payload() {
        let request = parse(
            r#"{"groupID":1,"type":"user.created","data":{"a\u0000":"b\u0000\u001f\u007f\u2028"}}"#,
        )
        .unwrap();
        let event = Event::new(
            EventId::from_ulid(ulid::Ulid::nil()),
            request.group_id,
            request.event_type.as_str(),
            &request.data,
            UnixMillis(0),
            None,
        );
        // No raw C0 byte reaches storage (PostgreSQL `text` cannot hold
        // NUL); the receiver parses back exactly what was published.
        assert!(
            !event.payload.bytes().any(|b| b < 0x20),
            "{}",
            event.payload
        );
        assert!(
            event.payload.contains(r#""a\u0000":"b\u0000\u001f"#),
            "{}",
            event.payload
        );
        let payload: Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(payload["data"], Value::Object(request.data));
    }

    #[test]
    fn the_payload_has_the_documented_shape() {
        let id = EventId::from_ulid(ulid::Ulid::nil());
        let mut data = Map::new();
        data.insert("userID".into(), Value::from("u_1"));
        let event = Event::new(
            id.clone(),
            GroupId::new(123456).unwrap(),
            "user.created",
            &data,
            UnixMillis(1_700_000_000_999),
            None,
        );
        let payload: Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(
            payload,
            serde_json::json!({
                "id": id.as_str(),
                "object": "event",
                "type": "user.created",
                "created": 1_700_000_000,
                "groupID": 123456,
                "data": {"userID": "u_1"},
            })
        );
    }
}
