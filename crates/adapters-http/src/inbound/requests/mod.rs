//! Reading requests: path segments, query strings and JSON bodies become the
//! domain's values here, once, with the seed's checks in the seed's order and
//! its exact errors ([`RequestError`]). A handler reads its request with these,
//! then calls a use case; nothing after this re-checks.
//!
//! Bodies are read as JSON whatever their `Content-Type`. A body must be a
//! JSON object; its fields are then read one by one in the documented order,
//! each telling apart absent, of the wrong JSON type, and breaking its rule
//! ([`Sent`]), so the first failure answers.

pub(crate) mod admin;
pub(crate) mod deliveries;
pub(crate) mod events;
pub(crate) mod path;
pub(crate) mod stats;
pub(crate) mod webhooks;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use webhooks_domain::UnixMillis;

use super::error::{ApiError, RequestError};

/// A body field as the client sent it. Reading one never fails, so a body
/// is read whole and its fields are checked afterwards, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Sent<T> {
    /// The key is absent.
    #[default]
    Missing,
    /// The value is not of the JSON type `T` reads (for a `String`, `null`
    /// is of the wrong type; use `Sent<Option<T>>` where `null` means absent).
    WrongType,
    /// The value, still to be checked against its rule.
    Value(T),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Sent<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(serde_json::from_value(value).map_or(Sent::WrongType, Sent::Value))
    }
}

/// Reads a body that must be a JSON object into `T`, whose fields are all
/// [`Sent`] (so only a body that is no object fails). A key given twice
/// counts once, with its last value.
pub(crate) fn json_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, RequestError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(object @ Value::Object(_)) => {
            serde_json::from_value(object).map_err(|_| RequestError::InvalidJsonBody)
        }
        _ => Err(RequestError::InvalidJsonBody),
    }
}

/// Reads a query string into `T`. One that does not parse (a repeated
/// parameter, bad encoding) is [`ApiError::InvalidQuery`]; its fields are
/// then checked by the caller, in order.
pub(crate) fn query<T: DeserializeOwned>(query_string: &str) -> Result<T, ApiError> {
    actix_web::web::Query::<T>::from_query(query_string)
        .map(actix_web::web::Query::into_inner)
        .map_err(|_| ApiError::InvalidQuery)
}

/// An RFC 3339 date-time, with any offset, as Unix milliseconds.
pub(crate) fn date_time(raw: &str) -> Option<UnixMillis> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|at| UnixMillis(at.timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(default)]
        text: Sent<String>,
        #[serde(default)]
        number: Sent<Option<i64>>,
    }

    fn read(body: &str) -> Result<(Sent<String>, Sent<Option<i64>>), RequestError> {
        json_object::<Body>(body.as_bytes()).map(|body| (body.text, body.number))
    }

    #[test]
    fn a_body_that_is_no_json_object_is_invalid_json_body() {
        for body in [
            "",
            "not json",
            "[]",
            "[\"a\"]",
            "\"x\"",
            "null",
            "1",
            "{\"text\":",
        ] {
            assert_eq!(
                read(body).err(),
                Some(RequestError::InvalidJsonBody),
                "{body}"
            );
        }
    }

    #[test]
    fn fields_tell_absent_from_wrong_type_from_a_value() {
        assert_eq!(read("{}"), Ok((Sent::Missing, Sent::Missing)));
        assert_eq!(
            read(r#"{"text":null,"number":null}"#),
            Ok((Sent::WrongType, Sent::Value(None)))
        );
        assert_eq!(
            read(r#"{"text":5,"number":1.5}"#),
            Ok((Sent::WrongType, Sent::WrongType))
        );
        assert_eq!(
            read(r#"{"text":"a","number":7,"other":[]}"#),
            Ok((Sent::Value("a".to_owned()), Sent::Value(Some(7))))
        );
    }

    #[test]
    fn a_key_given_twice_counts_with_its_last_value() {
        assert_eq!(
            read(r#"{"text":"first","text":"last"}"#).map(|(text, _)| text),
            Ok(Sent::Value("last".to_owned()))
        );
    }
}
