//! The query string of a webhook's stats: `since` and `until`.

use serde::Deserialize;
use utoipa::IntoParams;
use webhooks_domain::UnixMillis;

use super::{date_time, query};
use crate::inbound::error::{ApiError, RequestError};

/// The window of a webhook's stats; each bound is optional.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatsQuery {
    /// The window's start, included: an RFC 3339 date-time (percent-encode a
    /// `+` offset as `%2B`). 24 hours before `until` when absent.
    #[param(value_type = Option<String>, format = DateTime, example = "2026-11-30T00:00:00Z")]
    since: Option<String>,
    /// The window's end, excluded: an RFC 3339 date-time. Now when absent.
    /// At most 31 days after `since`.
    #[param(value_type = Option<String>, format = DateTime, example = "2026-12-01T00:00:00Z")]
    until: Option<String>,
}

/// The bounds a stats query names, each `None` when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatsBounds {
    pub(crate) since: Option<UnixMillis>,
    pub(crate) until: Option<UnixMillis>,
}

impl StatsQuery {
    /// Reads a query string: one that does not parse (a repeated parameter,
    /// bad encoding) is [`ApiError::InvalidQuery`]; then `since` and `until`,
    /// in that order, each an RFC 3339 date-time when present.
    pub(crate) fn read(query_string: &str) -> Result<StatsBounds, ApiError> {
        let query: Self = query(query_string)?;
        Ok(StatsBounds {
            since: bound(query.since, RequestError::InvalidSince)?,
            until: bound(query.until, RequestError::InvalidUntil)?,
        })
    }
}

/// A bound when present: an RFC 3339 date-time, else `invalid`.
fn bound(raw: Option<String>, invalid: RequestError) -> Result<Option<UnixMillis>, RequestError> {
    raw.map(|raw| date_time(&raw).ok_or(invalid)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(query: &str) -> Result<StatsBounds, String> {
        StatsQuery::read(query).map_err(|err| err.client_message())
    }

    /// 2026-11-30T00:00:00Z.
    const NOV_30: UnixMillis = UnixMillis(1_795_996_800_000);

    #[test]
    fn an_empty_query_names_no_bound() {
        let none = StatsBounds {
            since: None,
            until: None,
        };
        assert_eq!(read(""), Ok(none));
    }

    #[test]
    fn bounds_are_rfc3339_date_times_with_any_offset() {
        let bounds = read("since=2026-11-30T00:00:00Z&until=2026-11-30T02:00:00%2B01:00").unwrap();
        assert_eq!(bounds.since, Some(NOV_30));
        assert_eq!(bounds.until, Some(NOV_30.plus_millis(3_600_000)));
    }

    #[test]
    fn a_bound_that_is_no_rfc3339_date_time_is_refused_since_first() {
        for bad in [
            "",
            "yesterday",
            "2026-11-30",
            "1796000000",
            "2026-11-30T01:00:00+01:00",
        ] {
            let encoded = bad.replace(':', "%3A");
            assert_eq!(
                read(&format!("since={encoded}")).unwrap_err(),
                "since must be an RFC 3339 date-time",
                "{bad}"
            );
            assert_eq!(
                read(&format!("until={encoded}")).unwrap_err(),
                "until must be an RFC 3339 date-time",
                "{bad}"
            );
        }
        assert_eq!(
            read("until=x&since=y").unwrap_err(),
            "since must be an RFC 3339 date-time"
        );
    }

    #[test]
    fn a_query_string_that_does_not_parse_is_invalid_query_string() {
        assert_eq!(
            read("since=2026-11-30T00:00:00Z&since=2026-11-30T00:00:00Z").unwrap_err(),
            "Invalid query string"
        );
    }
}
