//! Identifiers. Prefixed identifiers are a type prefix plus a lowercase ULID
//! (26 characters of `[0-9a-z]`), so they sort by creation time.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Field, InvalidValue};

/// The largest group id handed out by the service: 2^53 - 1, so that every
/// generated id survives a JavaScript `number`. Ids given by an operator may go
/// up to `i64::MAX`.
pub const MAX_GENERATED_GROUP_ID: i64 = 9_007_199_254_740_991;

/// A group's id: a positive 64-bit integer.
///
/// ```
/// use webhooks_domain::GroupId;
/// assert_eq!(GroupId::new(123456).unwrap().get(), 123456);
/// assert_eq!(GroupId::parse("123456").unwrap().get(), 123456);
/// assert!(GroupId::parse("12a").is_err());
/// assert!(GroupId::new(0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct GroupId(i64);

impl GroupId {
    /// A group id from a number; zero and negatives are refused.
    pub fn new(value: i64) -> Result<Self, InvalidValue> {
        if value >= 1 {
            Ok(Self(value))
        } else {
            Err(InvalidValue::new(Field::GroupId, "not a positive number"))
        }
    }

    /// A group id written as text: ASCII digits only (no sign, no blank, no
    /// decimal point) forming 1 ≤ n ≤ `i64::MAX`. Leading zeros are fine.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidValue::new(Field::GroupId, "not ASCII digits"));
        }
        let value = raw
            .parse::<i64>()
            .map_err(|_| InvalidValue::new(Field::GroupId, "larger than i64::MAX"))?;
        Self::new(value)
    }

    /// For the id source, whose range starts above zero.
    pub(crate) fn generated(value: i64) -> Self {
        Self(value.max(1))
    }

    /// The number.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for GroupId {
    type Error = InvalidValue;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<GroupId> for i64 {
    fn from(id: GroupId) -> Self {
        id.0
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Wraps a freshly generated ULID.
            pub fn from_ulid(ulid: ulid::Ulid) -> Self {
                Self(format!("{}{}", $prefix, ulid.to_string().to_ascii_lowercase()))
            }

            /// Accepts only the exact shape this service generates: the prefix
            /// and 26 characters of `[0-9a-z]`.
            pub fn parse(raw: &str) -> Option<Self> {
                let rest = raw.strip_prefix($prefix)?;
                let well_formed = rest.len() == 26
                    && rest.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
                well_formed.then(|| Self(raw.to_owned()))
            }

            /// The id as text, prefix included.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value).ok_or_else(|| format!("not a {} id: {value}", stringify!($name)))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A webhook endpoint's id, `we_` + 26 characters.
    ///
    /// ```
    /// use webhooks_domain::WebhookId;
    /// assert!(WebhookId::parse("we_01hzy3k4m5n6p7q8r9s0t1v2w3").is_some());
    /// assert!(WebhookId::parse("we_short").is_none());
    /// ```
    WebhookId,
    "we_"
);
prefixed_id!(
    /// An organization's id, `org_` + 26 characters.
    OrganizationId,
    "org_"
);
prefixed_id!(
    /// An API key's id (not the key itself), `key_` + 26 characters.
    ApiKeyId,
    "key_"
);
prefixed_id!(
    /// An event's id, `evt_` + 26 characters; receivers see it as `webhook-id`.
    EventId,
    "evt_"
);
prefixed_id!(
    /// A delivery's id (one event to one webhook), `dlv_` + 26 characters.
    DeliveryId,
    "dlv_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_id_accepts_leading_zeros_and_the_largest_i64() {
        assert_eq!(GroupId::parse("007").map(GroupId::get), Ok(7));
        assert_eq!(
            GroupId::parse("9223372036854775807").map(GroupId::get),
            Ok(i64::MAX)
        );
    }

    #[test]
    fn group_id_refuses_empty_zero_overflow_signs_and_spaces() {
        for raw in [
            "",
            "0",
            "9223372036854775808",
            "-1",
            "+1",
            " 1",
            "1.0",
            "１",
        ] {
            assert_eq!(
                GroupId::parse(raw).map_err(|err| err.field()),
                Err(Field::GroupId),
                "{raw}"
            );
        }
    }

    #[test]
    fn group_id_from_a_number_must_be_positive() {
        assert_eq!(GroupId::new(1).map(GroupId::get), Ok(1));
        for value in [0, -1, i64::MIN] {
            assert_eq!(
                GroupId::new(value).map_err(|err| err.field()),
                Err(Field::GroupId)
            );
        }
    }

    #[test]
    fn prefixed_ids_round_trip_and_refuse_other_shapes() {
        let id = WebhookId::from_ulid(ulid::Ulid::new());
        assert_eq!(id.as_str().len(), 29);
        assert_eq!(WebhookId::parse(id.as_str()), Some(id.clone()));
        assert!(WebhookId::parse(&id.as_str().to_uppercase()).is_none());
        assert!(WebhookId::parse("evt_01hzy3k4m5n6p7q8r9s0t1v2w3").is_none());
    }
}
