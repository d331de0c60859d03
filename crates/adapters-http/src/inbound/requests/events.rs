//! The body of `POST /internal/events`: `groupID`, `type`, `data`,
//! `idempotencyKey`, in that order.

use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use webhooks_domain::{EventType, GroupId, IdempotencyKey, NewEvent};

use super::{json_object, Sent};
use crate::inbound::error::RequestError;

/// An event of the platform, for the webhooks of one group.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewEvent, example = json!({
    "groupID": 123456,
    "type": "user.created",
    "data": { "userID": "u_1" },
    "idempotencyKey": "signup-u_1"
}))]
pub(crate) struct NewEventBody {
    /// The group whose webhooks get the event.
    #[serde(default, rename = "groupID")]
    #[schema(value_type = i64, minimum = 1, required = true)]
    group_id: Sent<Option<GroupIdSent>>,
    #[serde(default, rename = "type")]
    #[schema(schema_with = event_type_schema, required = true)]
    event_type: Sent<Option<String>>,
    /// Any object, sent to the receivers as is (`\u0000` and other
    /// escapes included); `{}` when absent.
    #[serde(default)]
    #[schema(value_type = Object, required = false)]
    data: Sent<Map<String, Value>>,
    /// 1 to 255 characters on one line (no control character, no line
    /// break); remembered per group for 24 hours.
    #[serde(default, rename = "idempotencyKey")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 255)]
    idempotency_key: Sent<Option<String>>,
}

/// `groupID` may be a number or a string of digits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum GroupIdSent {
    Number(i64),
    Digits(String),
}

impl NewEventBody {
    /// Reads the body. `null` counts as absent for `groupID`, `type` and
    /// `idempotencyKey`, but not for `data`.
    pub(crate) fn read(body: &[u8]) -> Result<NewEvent, RequestError> {
        let body: Self = json_object(body)?;
        let group_id = match body.group_id {
            Sent::Missing | Sent::Value(None) => return Err(RequestError::MissingBodyGroupId),
            Sent::Value(Some(GroupIdSent::Number(n))) => GroupId::new(n).ok(),
            Sent::Value(Some(GroupIdSent::Digits(raw))) => GroupId::parse(&raw).ok(),
            Sent::WrongType => None,
        }
        .ok_or(RequestError::GroupIdNotANumber)?;
        let event_type = match body.event_type {
            Sent::Missing | Sent::Value(None) => return Err(RequestError::MissingType),
            // Operational types are the service's own: nobody publishes them.
            Sent::Value(Some(raw)) => EventType::parse(&raw).filter(|t| !t.is_operational()),
            Sent::WrongType => None,
        }
        .ok_or(RequestError::UnknownType)?;
        let data = match body.data {
            Sent::Missing => Map::new(),
            Sent::Value(data) => data,
            Sent::WrongType => return Err(RequestError::DataNotAnObject),
        };
        let idempotency_key = match body.idempotency_key {
            Sent::Missing | Sent::Value(None) => None,
            Sent::Value(Some(raw)) => {
                Some(IdempotencyKey::new(&raw).map_err(|_| RequestError::InvalidIdempotencyKey)?)
            }
            Sent::WrongType => return Err(RequestError::InvalidIdempotencyKey),
        };
        Ok(NewEvent {
            group_id,
            event_type,
            data,
            idempotency_key,
        })
    }
}

fn event_type_schema() -> utoipa::openapi::schema::Object {
    crate::inbound::api_doc::one_of_strings(EventType::ALL.map(EventType::as_str))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(body: &str) -> Result<NewEvent, RequestError> {
        NewEventBody::read(body.as_bytes())
    }

    #[test]
    fn publish_bodies_are_checked_field_by_field() {
        assert_eq!(read("[]"), Err(RequestError::InvalidJsonBody));
        assert_eq!(read("{}"), Err(RequestError::MissingBodyGroupId));
        assert_eq!(
            read(r#"{"groupID":null,"type":5}"#),
            Err(RequestError::MissingBodyGroupId)
        );
        for bad in [
            r#""x""#,
            "0",
            "-3",
            "1.5",
            r#""""#,
            r#""+1""#,
            "true",
            "[1]",
            "9223372036854775808",
        ] {
            assert_eq!(
                read(&format!(r#"{{"groupID":{bad}}}"#)),
                Err(RequestError::GroupIdNotANumber),
                "{bad}"
            );
        }
        assert_eq!(read(r#"{"groupID":1}"#), Err(RequestError::MissingType));
        assert_eq!(
            read(r#"{"groupID":1,"type":null}"#),
            Err(RequestError::MissingType)
        );
        for bad in [r#""user.deleted""#, "5", r#"["user.created"]"#] {
            assert_eq!(
                read(&format!(r#"{{"groupID":1,"type":{bad}}}"#)),
                Err(RequestError::UnknownType),
                "{bad}"
            );
        }
        for bad in ["[1]", "null", "\"x\""] {
            assert_eq!(
                read(&format!(
                    r#"{{"groupID":1,"type":"user.created","data":{bad}}}"#
                )),
                Err(RequestError::DataNotAnObject),
                "{bad}"
            );
        }
        for bad in [r#""""#, "5", &format!("\"{}\"", "k".repeat(256))] {
            assert_eq!(
                read(&format!(
                    r#"{{"groupID":1,"type":"user.created","idempotencyKey":{bad}}}"#
                )),
                Err(RequestError::InvalidIdempotencyKey),
                "{bad}"
            );
        }
    }

    #[test]
    fn group_id_is_a_number_or_a_string_of_digits() {
        let ok = read(r#"{"groupID":"0042","type":"user.session.result","idempotencyKey":"k"}"#)
            .unwrap();
        assert_eq!(ok.group_id.get(), 42);
        assert_eq!(ok.event_type, EventType::UserSessionResult);
        assert!(ok.data.is_empty());
        assert_eq!(ok.idempotency_key, IdempotencyKey::new("k").ok());
        let ok = read(r#"{"groupID":123456,"type":"user.created","idempotencyKey":null}"#).unwrap();
        assert_eq!(ok.group_id.get(), 123456);
        assert_eq!(ok.idempotency_key, None);
    }

    #[test]
    fn an_idempotency_key_the_domain_refuses_is_invalid_idempotency_key() {
        // The rule itself is `IdempotencyKey::new`'s; a few of what it refuses.
        for key in ["key\0", "k\r\nX: 1", "key\u{2028}", "\u{9f}"] {
            let body = json!({
                "groupID": 1, "type": "user.created", "idempotencyKey": key
            });
            assert_eq!(
                read(&body.to_string()),
                Err(RequestError::InvalidIdempotencyKey),
                "{key:?}"
            );
        }
    }

    #[test]
    fn an_event_type_with_a_control_character_is_unknown() {
        for raw in ["user.created\0", "user.created\n", "\0", " user.created"] {
            let body = json!({"groupID": 1, "type": raw});
            assert_eq!(
                read(&body.to_string()),
                Err(RequestError::UnknownType),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn data_is_passed_on_as_sent_escapes_included() {
        let new = read(r#"{"groupID":1,"type":"user.created","data":{"a\u0000":[1,{"b":null}]}}"#)
            .unwrap();
        assert_eq!(Value::Object(new.data), json!({"a\u{0}": [1, {"b": null}]}));
    }
}
