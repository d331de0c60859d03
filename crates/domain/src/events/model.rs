//! Events: what the platform publishes, and the body receivers get.

use serde::Serialize;
use serde_json::{Map, Value};
use validator::ValidateLength;

use crate::error::{Field, InvalidValue};
use crate::ids::{EventId, GroupId};
use crate::text::TextKind;
use crate::time::UnixMillis;
use crate::webhooks::EventType;

/// The longest idempotency key, in characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: u64 = 255;
/// How long an idempotency key is remembered per group.
pub const IDEMPOTENCY_WINDOW_MILLIS: i64 = 24 * 60 * 60 * 1000;

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
    /// Checks `raw` and keeps it as written.
    pub fn new(raw: &str) -> Result<Self, InvalidValue> {
        if !raw.validate_length(Some(1), Some(MAX_IDEMPOTENCY_KEY_CHARS), None) {
            return Err(InvalidValue::new(
                Field::IdempotencyKey,
                "not 1 to 255 characters",
            ));
        }
        if !TextKind::SingleLine.accepts(raw) {
            return Err(InvalidValue::new(
                Field::IdempotencyKey,
                "holds a control character or a line break",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The key as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What [`crate::EventPublisher::publish`] takes: an event for the webhooks
/// of one group.
///
/// ```
/// use webhooks_domain::{EventType, GroupId, IdempotencyKey, NewEvent};
/// # fn main() -> Result<(), webhooks_domain::InvalidValue> {
/// let mut data = serde_json::Map::new();
/// data.insert("userID".into(), "u_1".into());
/// let event = NewEvent {
///     group_id: GroupId::new(123456)?,
///     event_type: EventType::UserCreated,
///     data,
///     idempotency_key: Some(IdempotencyKey::new("signup-u_1")?),
/// };
/// # let _ = event; Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The group whose webhooks get it.
    pub group_id: GroupId,
    /// What happened.
    pub event_type: EventType,
    /// Any JSON object, sent to receivers as is.
    pub data: Map<String, Value>,
    /// Makes publishing the same event again within 24 hours harmless.
    pub idempotency_key: Option<IdempotencyKey>,
}

/// A published event. Its `payload` is fixed at publication, so every retry
/// sends the same bytes under the same `webhook-id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `evt_` and a ULID; receivers see it as `webhook-id`.
    pub id: EventId,
    /// The group whose webhooks get it.
    pub group_id: GroupId,
    /// Its type's name ([`EventType`], or the test send's `webhook.test`).
    pub event_type: String,
    /// When it was published.
    pub created_at: UnixMillis,
    /// The JSON body receivers get.
    pub payload: String,
    /// The publisher's idempotency key, if it gave one.
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
    /// The event's id (the first event's, for a repeat).
    pub event_id: EventId,
    /// How many webhooks it goes to.
    pub deliveries: u64,
    /// Of those, how many the dispatcher of the process that stored them
    /// took at once (a hand-off, see [`LocalDispatch`](crate::LocalDispatch));
    /// the others wait for a claim.
    pub handed_over: u64,
    /// Whether this call stored the event (false for an idempotent repeat).
    pub created: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_1_to_255_characters() {
        assert!(IdempotencyKey::new("k").is_ok());
        assert!(IdempotencyKey::new(&"é".repeat(255)).is_ok());
        for bad in [String::new(), "x".repeat(256)] {
            assert_eq!(
                IdempotencyKey::new(&bad).map_err(|err| err.field()),
                Err(Field::IdempotencyKey)
            );
        }
    }

    #[test]
    fn idempotency_keys_refuse_every_control_character_and_line_break() {
        let refused = ('\u{0}'..='\u{1f}')
            .chain(['\u{7f}', '\u{2028}', '\u{2029}'])
            .chain('\u{80}'..='\u{9f}');
        for c in refused {
            assert_eq!(
                IdempotencyKey::new(&format!("key{c}")).map_err(|err| err.field()),
                Err(Field::IdempotencyKey),
                "U+{:04X}",
                c as u32
            );
        }
        assert!(IdempotencyKey::new("signup-u_1 é 🚀").is_ok());
    }

    #[test]
    fn nul_and_controls_in_data_stay_json_escapes_in_the_payload() {
        let data: Map<String, Value> =
            serde_json::from_str(r#"{"a\u0000":"b\u0000\u001f\u007f\u2028"}"#).unwrap();
        let event = Event::new(
            EventId::from_ulid(ulid::Ulid::nil()),
            GroupId::new(1).unwrap(),
            EventType::UserCreated.as_str(),
            &data,
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
        assert_eq!(payload["data"], Value::Object(data));
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
