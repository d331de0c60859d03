//! The delivery log's query string and the body of `…/recover`.

use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use webhooks_domain::{DeliveryId, DeliveryQuery, DeliveryStatus, PageSize, UnixMillis};

use super::{date_time, json_object, query, Sent};
use crate::inbound::error::{ApiError, RequestError};

/// The query of the delivery log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only deliveries in this status.
    #[param(schema_with = crate::inbound::deliveries::status_filter_schema, required = false)]
    status: Option<String>,
    /// The `nextCursor` of the previous page.
    cursor: Option<String>,
    /// Deliveries per page, from 1 to 250; 50 when absent.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 250)]
    limit: Option<String>,
}

impl ListQuery {
    /// Reads a query string: one that does not parse (a repeated parameter,
    /// bad encoding) is [`ApiError::InvalidQuery`]; then `status`, `cursor`
    /// and `limit`, in that order.
    pub(crate) fn read(query_string: &str) -> Result<DeliveryQuery, ApiError> {
        let query: Self = query(query_string)?;
        Ok(query.into_domain()?)
    }

    fn into_domain(self) -> Result<DeliveryQuery, RequestError> {
        let status = self
            .status
            .map(|raw| DeliveryStatus::parse(&raw).ok_or(RequestError::InvalidStatusFilter))
            .transpose()?;
        let before = self
            .cursor
            .map(|raw| DeliveryId::parse(&raw).ok_or(RequestError::InvalidCursor))
            .transpose()?;
        let limit = match self.limit {
            None => PageSize::default(),
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .and_then(|size| PageSize::new(size).ok())
                .ok_or(RequestError::InvalidLimit)?,
        };
        Ok(DeliveryQuery {
            status,
            before,
            limit,
        })
    }
}

/// Which failed deliveries to send again.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = Recover, example = json!({ "since": "2026-11-30T00:00:00Z" }))]
pub(crate) struct RecoverBody {
    /// Failed deliveries created at or after this time are due again.
    #[serde(default)]
    #[schema(value_type = String, format = DateTime, required = true)]
    since: Sent<String>,
}

impl RecoverBody {
    /// Reads the body: a JSON object whose `since` is an RFC 3339 date-time.
    pub(crate) fn read(body: &[u8]) -> Result<UnixMillis, RequestError> {
        let body: Self = json_object(body)?;
        let raw = match body.since {
            Sent::Missing => return Err(RequestError::MissingSince),
            Sent::WrongType => return Err(RequestError::InvalidSince),
            Sent::Value(raw) => raw,
        };
        date_time(&raw).ok_or(RequestError::InvalidSince)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(query: &str) -> Result<DeliveryQuery, String> {
        ListQuery::read(query).map_err(|err| err.client_message())
    }

    const DELIVERY: &str = "dlv_01hzy3k4m5n6p7q8r9s0t1v2w3";

    #[test]
    fn since_is_an_rfc3339_string() {
        assert_eq!(
            RecoverBody::read(br#"{"since":"2026-11-30T00:00:00Z"}"#),
            Ok(UnixMillis(1_795_996_800_000))
        );
        assert_eq!(
            RecoverBody::read(br#"{"since":"2026-11-30T01:00:00+01:00"}"#),
            Ok(UnixMillis(1_795_996_800_000))
        );
        assert_eq!(RecoverBody::read(b"{}"), Err(RequestError::MissingSince));
        for bad in [
            r#"{"since":5}"#,
            r#"{"since":null}"#,
            r#"{"since":"yesterday"}"#,
            r#"{"since":"2025-06-01"}"#,
        ] {
            assert_eq!(
                RecoverBody::read(bad.as_bytes()),
                Err(RequestError::InvalidSince),
                "{bad}"
            );
        }
        assert_eq!(
            RecoverBody::read(b"nope"),
            Err(RequestError::InvalidJsonBody)
        );
        assert_eq!(RecoverBody::read(b"[]"), Err(RequestError::InvalidJsonBody));
    }

    #[test]
    fn an_empty_query_is_the_default_page() {
        assert_eq!(list(""), Ok(DeliveryQuery::default()));
    }

    #[test]
    fn a_query_reads_status_cursor_and_limit() {
        let query = list(&format!("status=failed&cursor={DELIVERY}&limit=250")).unwrap();
        assert_eq!(query.status, Some(DeliveryStatus::Failed));
        assert_eq!(query.before, DeliveryId::parse(DELIVERY));
        assert_eq!(query.limit.get(), 250);
    }

    #[test]
    fn status_then_cursor_then_limit_answer_first() {
        assert_eq!(
            list("limit=0&cursor=x&status=done").unwrap_err(),
            "Invalid status filter"
        );
        assert_eq!(list("limit=0&cursor=x").unwrap_err(), "Invalid cursor");
    }

    #[test]
    fn a_status_filter_is_a_delivery_status_exactly() {
        for bad in ["", "Failed", "done", "pending%20"] {
            assert_eq!(
                list(&format!("status={bad}")).unwrap_err(),
                "Invalid status filter",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_cursor_is_a_delivery_id() {
        for bad in [
            "",
            "abc",
            "we_01hzy3k4m5n6p7q8r9s0t1v2w3",
            "dlv_short",
            "dlv_01HZY3K4M5N6P7Q8R9S0T1V2W3",
        ] {
            assert_eq!(
                list(&format!("cursor={bad}")).unwrap_err(),
                "Invalid cursor",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_limit_is_a_number_from_1_to_250() {
        for bad in [
            "",
            "0",
            "251",
            "-1",
            "abc",
            "1.5",
            "%205",
            "99999999999999999999999",
        ] {
            assert_eq!(
                list(&format!("limit={bad}")).unwrap_err(),
                "Invalid limit",
                "{bad}"
            );
        }
        assert_eq!(list("limit=1").map(|query| query.limit.get()), Ok(1));
    }

    #[test]
    fn a_query_string_that_does_not_parse_is_invalid_query_string() {
        assert_eq!(
            list("status=failed&status=pending").unwrap_err(),
            "Invalid query string"
        );
    }
}
