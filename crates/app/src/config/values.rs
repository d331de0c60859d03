//! The kinds of value a setting can hold. Each knows how it is written (a
//! string, a whole number, a list), what it accepts, and how `config check`
//! shows it; the fields of [`Settings`](super::Settings) name theirs with
//! `#[serde(with = …)]`, or are one of the types here or in `masked`.
//!
//! A value that is written right but cannot be used is refused with a reason
//! ([`refused`]); `load` turns that into `invalid setting NAME: REASON`.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Marks a value refused by one of the rules here, as opposed to one that
/// could not be read at all (a word where a number belongs, an unknown
/// key): serde errors carry only text.
pub(super) const REFUSED: &str = "refused: ";

/// The error for a value written right that cannot be used.
pub(super) fn refused<E: serde::de::Error>(reason: impl fmt::Display) -> E {
    E::custom(format_args!("{REFUSED}{reason}"))
}

/// An IP address and port, e.g. `127.0.0.1:8080`; host names are refused.
pub struct Address;

impl Address {
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
        let written = String::deserialize(deserializer)?;
        written
            .trim()
            .parse()
            .map_err(|_| refused(format!("{written:?} is not an address like 127.0.0.1:8080")))
    }

    pub fn serialize<S: Serializer>(value: &SocketAddr, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }
}

/// A duration in humantime syntax (`15s`, `5m`, `1h 30m`), shown the same way.
pub struct Humantime;

impl Humantime {
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        parse_duration(&String::deserialize(deserializer)?).map_err(refused)
    }

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(*value))
    }
}

fn parse_duration(written: &str) -> Result<Duration, String> {
    humantime::parse_duration(written.trim())
        .map_err(|_| format!("{written:?} is not a duration like 15s, 5m or 2h"))
}

/// A [`Humantime`] duration longer than zero and at most an hour.
pub struct UpToAnHour;

impl UpToAnHour {
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        at_most(Humantime::deserialize(deserializer)?, 3600, "1h")
    }

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        Humantime::serialize(value, serializer)
    }
}

/// A [`Humantime`] duration longer than zero and at most a day.
pub struct UpToADay;

impl UpToADay {
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        at_most(Humantime::deserialize(deserializer)?, 24 * 3600, "24h")
    }

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        Humantime::serialize(value, serializer)
    }
}

fn at_most<E: serde::de::Error>(
    value: Duration,
    seconds: u64,
    written: &str,
) -> Result<Duration, E> {
    if value.is_zero() || value > Duration::from_secs(seconds) {
        return Err(refused(format!(
            "must be longer than zero and at most {written}"
        )));
    }
    Ok(value)
}

/// How long rows are kept: a [`Humantime`] duration of at least `MIN_SECS`
/// seconds, or `0`, which keeps them forever.
pub struct KeptFor<const MIN_SECS: u64>;

impl<const MIN_SECS: u64> KeptFor<MIN_SECS> {
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let value = Humantime::deserialize(deserializer)?;
        let least = Duration::from_secs(MIN_SECS);
        if !value.is_zero() && value < least {
            return Err(refused(format!(
                "must be 0 (keep forever) or at least {}",
                humantime::format_duration(least)
            )));
        }
        Ok(value)
    }

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        Humantime::serialize(value, serializer)
    }
}

/// A list of [`Humantime`] durations.
pub struct Durations;

impl Durations {
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Duration>, D::Error> {
        ListOrString::deserialize(deserializer)?
            .items()
            .iter()
            .map(|item| parse_duration(item).map_err(refused))
            .collect()
    }

    pub fn serialize<S: Serializer>(value: &[Duration], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            value
                .iter()
                .map(|wait| humantime::format_duration(*wait).to_string()),
        )
    }
}

/// A list of CIDRs, e.g. `127.0.0.0/8, ::1/128`.
pub struct Networks;

impl Networks {
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
        ListOrString::deserialize(deserializer)?
            .items()
            .iter()
            .map(|item| {
                item.parse::<IpNet>()
                    .map_err(|_| refused(format!("{item:?} is not a CIDR like 127.0.0.0/8")))
            })
            .collect()
    }

    pub fn serialize<S: Serializer>(value: &[IpNet], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(value.iter().map(ToString::to_string))
    }
}

/// A list written either as a TOML array or as one comma-separated string
/// (as environment variables are). Blanks around items are trimmed and empty
/// items dropped, so an empty variable is an empty list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ListOrString {
    List(Vec<String>),
    Text(String),
}

impl ListOrString {
    fn items(self) -> Vec<String> {
        let items: Vec<String> = match self {
            ListOrString::List(items) => items,
            ListOrString::Text(text) => text.split(',').map(str::to_owned).collect(),
        };
        items
            .into_iter()
            .map(|item| item.trim().to_owned())
            .filter(|item| !item.is_empty())
            .collect()
    }
}

/// A whole number from `MIN` to 100000.
pub struct Count<const MIN: i64>;

impl<const MIN: i64> Count<MIN> {
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
        let written = i64::deserialize(deserializer)?;
        if !(MIN..=100_000).contains(&written) {
            return Err(refused(format!(
                "must be a whole number from {MIN} to 100000"
            )));
        }
        usize::try_from(written).map_err(|_| refused("out of range"))
    }

    pub fn serialize<S: Serializer>(value: &usize, serializer: S) -> Result<S::Ok, S::Error> {
        value.serialize(serializer)
    }
}

/// The connections of the database pool: 0 (sized to the machine) to 1000.
pub struct PoolSize;

impl PoolSize {
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
        u32::try_from(i64::deserialize(deserializer)?)
            .ok()
            .filter(|size| *size <= 1000)
            .ok_or_else(|| refused("must be between 0 and 1000"))
    }

    pub fn serialize<S: Serializer>(value: &u32, serializer: S) -> Result<S::Ok, S::Error> {
        value.serialize(serializer)
    }
}

/// `true` or `false`, written as text (a TOML boolean reads as its text).
pub struct TrueOrFalse;

impl TrueOrFalse {
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
        match String::deserialize(deserializer)?.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(refused(format!("{other:?} is neither true nor false"))),
        }
    }

    pub fn serialize<S: Serializer>(value: &bool, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bool(*value)
    }
}

/// The sources of a CSP `frame-ancestors` directive, separated by spaces:
/// `'none'`, `'self'`, origins. Nothing that could end the directive or the
/// header (`;`, `,`, control characters) is taken.
pub struct FrameAncestors;

impl FrameAncestors {
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
        let written = String::deserialize(deserializer)?;
        let sources: Vec<&str> = written.split_whitespace().collect();
        let takes = |source: &&str| {
            source
                .chars()
                .all(|c| c.is_ascii_graphic() && c != ';' && c != ',')
        };
        if sources.is_empty() || !sources.iter().all(takes) {
            return Err(refused(format!(
                "{written:?} is not CSP sources separated by spaces, like 'none' or 'self' https://app.example"
            )));
        }
        Ok(sources.join(" "))
    }

    pub fn serialize<S: Serializer>(value: &str, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value)
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match String::deserialize(deserializer)?.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(refused(format!("{other:?} is neither text nor json"))),
        }
    }
}

impl Serialize for LogFormat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

#[cfg(test)]
mod tests {
    use serde::de::value::{Error, I64Deserializer, StrDeserializer};
    use serde::de::IntoDeserializer;

    use super::*;

    fn text(written: &str) -> StrDeserializer<'_, Error> {
        written.into_deserializer()
    }

    fn whole(written: i64) -> I64Deserializer<Error> {
        written.into_deserializer()
    }

    /// The reason a rule gave, without the marker `load` looks for.
    fn reason(err: Error) -> String {
        let message = err.to_string();
        message
            .strip_prefix(REFUSED)
            .unwrap_or_else(|| panic!("not refused by a rule: {message}"))
            .to_owned()
    }

    #[test]
    fn frame_ancestors_take_sources_separated_by_spaces_and_nothing_that_ends_the_header() {
        assert_eq!(
            FrameAncestors::deserialize(text("'none'")).unwrap(),
            "'none'"
        );
        assert_eq!(
            FrameAncestors::deserialize(text("  'self'   https://app.example ")).unwrap(),
            "'self' https://app.example"
        );
        for bad in [
            "",
            "   ",
            "'self'; script-src *",
            "https://a.example,https://b.example",
            "'self'\u{7f}",
        ] {
            assert_eq!(
                reason(FrameAncestors::deserialize(text(bad)).unwrap_err()),
                format!("{bad:?} is not CSP sources separated by spaces, like 'none' or 'self' https://app.example"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn counts_hold_from_their_minimum_to_100000() {
        assert_eq!(Count::<1>::deserialize(whole(1)).unwrap(), 1);
        assert_eq!(Count::<0>::deserialize(whole(100_000)).unwrap(), 100_000);
        assert_eq!(
            reason(Count::<1>::deserialize(whole(0)).unwrap_err()),
            "must be a whole number from 1 to 100000"
        );
        assert_eq!(
            reason(Count::<0>::deserialize(whole(100_001)).unwrap_err()),
            "must be a whole number from 0 to 100000"
        );
        assert_eq!(PoolSize::deserialize(whole(1000)).unwrap(), 1000);
        for refused in [-1, 1001] {
            assert_eq!(
                reason(PoolSize::deserialize(whole(refused)).unwrap_err()),
                "must be between 0 and 1000"
            );
        }
    }

    #[test]
    fn bounded_durations_are_longer_than_zero_and_at_most_their_bound() {
        assert_eq!(
            UpToAnHour::deserialize(text(" 1h ")).unwrap(),
            Duration::from_secs(3600)
        );
        assert_eq!(
            UpToADay::deserialize(text("1m 30s")).unwrap(),
            Duration::from_secs(90)
        );
        for refused in ["0s", "3601s"] {
            assert_eq!(
                reason(UpToAnHour::deserialize(text(refused)).unwrap_err()),
                "must be longer than zero and at most 1h"
            );
        }
        assert_eq!(
            reason(UpToADay::deserialize(text("24h 1s")).unwrap_err()),
            "must be longer than zero and at most 24h"
        );
        assert_eq!(
            reason(Humantime::deserialize(text("soon")).unwrap_err()),
            "\"soon\" is not a duration like 15s, 5m or 2h"
        );
    }

    #[test]
    fn kept_for_is_zero_for_ever_or_at_least_its_minimum() {
        assert_eq!(
            KeptFor::<86400>::deserialize(text("0")).unwrap(),
            Duration::ZERO
        );
        assert_eq!(
            KeptFor::<86400>::deserialize(text("2d")).unwrap(),
            Duration::from_secs(2 * 86400)
        );
        assert_eq!(
            reason(KeptFor::<86400>::deserialize(text("23h")).unwrap_err()),
            "must be 0 (keep forever) or at least 1day"
        );
        assert_eq!(
            KeptFor::<1>::deserialize(text("1s")).unwrap(),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn lists_split_on_commas_and_drop_blank_items() {
        assert_eq!(
            Durations::deserialize(text(" 1s, ,2m,")).unwrap(),
            vec![Duration::from_secs(1), Duration::from_secs(120)]
        );
        assert!(Networks::deserialize(text("")).unwrap().is_empty());
        assert_eq!(
            reason(Networks::deserialize(text("10.0.0.0/8, 10.0.0.1")).unwrap_err()),
            "\"10.0.0.1\" is not a CIDR like 127.0.0.0/8"
        );
    }

    #[test]
    fn flags_and_formats_are_read_trimmed_and_exactly() {
        assert!(TrueOrFalse::deserialize(text(" true ")).unwrap());
        assert_eq!(
            reason(TrueOrFalse::deserialize(text("TRUE")).unwrap_err()),
            "\"TRUE\" is neither true nor false"
        );
        assert_eq!(
            LogFormat::deserialize(text("json ")).unwrap(),
            LogFormat::Json
        );
        assert_eq!(
            reason(LogFormat::deserialize(text("xml")).unwrap_err()),
            "\"xml\" is neither text nor json"
        );
    }
}
