//! The bodies of `POST /webhooks/{groupID}` and `PUT
//! /webhooks/{groupID}/{webhookID}`: `url`, then `description`, then the
//! optional `enabledEvents`, `status`, `rateLimit`, `headers` and `ordering`.

use std::collections::BTreeMap;

use serde::Deserialize;
use utoipa::ToSchema;
use webhooks_domain::{
    CustomHeaders, DeliveryOrdering, Description, EnabledEvents, EventType, NewWebhook, RateLimit,
    WebhookStatus, WebhookUpdate, WebhookUrl,
};

use super::{json_object, Sent};
use crate::inbound::error::RequestError;

/// A new webhook. `url` is checked first, then `description`, then
/// `enabledEvents`, then `headers`, then `ordering`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewWebhook, example = json!({
    "url": "https://integration.example/webhook",
    "description": "Webhook Description"
}))]
pub(crate) struct NewWebhookBody {
    /// An absolute `http` or `https` URL with a host, at most 2,048 bytes,
    /// of printable characters only (no control character, space or
    /// invisible character), without `user:password@` and not on port 0.
    #[serde(default)]
    #[schema(value_type = String, format = "uri", max_length = 2048, required = true)]
    url: Sent<String>,
    /// May be empty; at most 1,024 characters, with no control character
    /// but TAB, LF and CR.
    #[serde(default)]
    #[schema(value_type = String, max_length = 1024, required = true)]
    description: Sent<String>,
    /// A non-empty list of supported event types; all the published ones
    /// when absent. The operational types (`webhook.disabled`,
    /// `webhook.enabled`, `delivery.failed`, `secret.rotated`) only in an
    /// operations group.
    #[serde(default, rename = "enabledEvents")]
    #[schema(schema_with = event_types_body_schema, required = false)]
    enabled_events: Sent<Vec<String>>,
    /// Custom headers sent with every delivery, name to value: at most 20;
    /// names are HTTP tokens (at most 256 bytes, none twice ignoring case),
    /// and not `content-type`, `user-agent`, `host`, `content-length`,
    /// `connection`, `keep-alive`, `proxy-connection`, `transfer-encoding`,
    /// `te`, `trailer`, `upgrade`, `expect` or `webhook-*`; values are 1 to
    /// 1,024 bytes of visible ASCII with spaces or tabs only inside. Stored
    /// encrypted and shown back masked. None when absent, `null` or `{}`.
    #[serde(default)]
    #[schema(schema_with = headers_body_schema, required = false)]
    headers: Sent<Option<BTreeMap<String, String>>>,
    /// `fifo`: each event is delivered only once every event accepted before
    /// it for this webhook was delivered or failed for good, one delivery in
    /// flight at a time. None when absent or `null`.
    #[serde(default)]
    #[schema(schema_with = ordering_body_schema, required = false)]
    ordering: Sent<Option<String>>,
}

/// A webhook's new state. `url` and `description` are required; the other
/// fields change only when present.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = WebhookUpdate, example = json!({
    "url": "https://integration.example/newWebhook",
    "description": "New Webhook Description"
}))]
pub(crate) struct WebhookUpdateBody {
    /// An absolute `http` or `https` URL with a host, at most 2,048 bytes,
    /// of printable characters only (no control character, space or
    /// invisible character), without `user:password@` and not on port 0.
    #[serde(default)]
    #[schema(value_type = String, format = "uri", max_length = 2048, required = true)]
    url: Sent<String>,
    /// May be empty; at most 1,024 characters, with no control character
    /// but TAB, LF and CR.
    #[serde(default)]
    #[schema(value_type = String, max_length = 1024, required = true)]
    description: Sent<String>,
    /// A non-empty list of supported event types; unchanged when absent.
    /// The operational types only in an operations group.
    #[serde(default, rename = "enabledEvents")]
    #[schema(schema_with = event_types_body_schema, required = false)]
    enabled_events: Sent<Vec<String>>,
    /// `enabled` or `disabled`; unchanged when absent.
    #[serde(default)]
    #[schema(schema_with = crate::inbound::webhooks::status_schema, required = false)]
    status: Sent<String>,
    /// Deliveries per second at most, or `null` for no limit; unchanged when absent.
    #[serde(default, rename = "rateLimit")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 4294967295_u64)]
    rate_limit: Sent<Option<i64>>,
    /// Custom headers sent with every delivery, name to value: at most 20;
    /// names are HTTP tokens (at most 256 bytes, none twice ignoring case),
    /// and not `content-type`, `user-agent`, `host`, `content-length`,
    /// `connection`, `keep-alive`, `proxy-connection`, `transfer-encoding`,
    /// `te`, `trailer`, `upgrade`, `expect` or `webhook-*`; values are 1 to
    /// 1,024 bytes of visible ASCII with spaces or tabs only inside. Stored
    /// encrypted and shown back masked. `null` or `{}` removes them all;
    /// unchanged when absent.
    #[serde(default)]
    #[schema(schema_with = headers_body_schema, required = false)]
    headers: Sent<Option<BTreeMap<String, String>>>,
    /// `fifo`: each event is delivered only once every event accepted before
    /// it for this webhook was delivered or failed for good, one delivery in
    /// flight at a time. `null` removes the ordering; unchanged when absent.
    #[serde(default)]
    #[schema(schema_with = ordering_body_schema, required = false)]
    ordering: Sent<Option<String>>,
}

impl NewWebhookBody {
    /// Reads a create body.
    pub(crate) fn read(body: &[u8]) -> Result<NewWebhook, RequestError> {
        let body: Self = json_object(body)?;
        Ok(NewWebhook {
            url: url(body.url)?,
            description: description(body.description)?,
            enabled_events: match body.enabled_events {
                Sent::Missing => EnabledEvents::all(),
                sent => enabled_events(sent)?,
            },
            headers: headers(body.headers)?.flatten(),
            ordering: ordering(body.ordering)?.flatten(),
        })
    }
}

impl WebhookUpdateBody {
    /// Reads an update body.
    pub(crate) fn read(body: &[u8]) -> Result<WebhookUpdate, RequestError> {
        let body: Self = json_object(body)?;
        let url = url(body.url)?;
        let description = description(body.description)?;
        let enabled_events = match body.enabled_events {
            Sent::Missing => None,
            sent => Some(enabled_events(sent)?),
        };
        let status = match body.status {
            Sent::Missing => None,
            Sent::Value(raw) => {
                Some(WebhookStatus::parse(&raw).ok_or(RequestError::InvalidStatus)?)
            }
            Sent::WrongType => return Err(RequestError::InvalidStatus),
        };
        let rate_limit = match body.rate_limit {
            Sent::Missing => None,
            Sent::Value(None) => Some(None),
            Sent::Value(Some(per_second)) => Some(Some(
                RateLimit::new(per_second).map_err(|_| RequestError::InvalidRateLimit)?,
            )),
            Sent::WrongType => return Err(RequestError::InvalidRateLimit),
        };
        Ok(WebhookUpdate {
            url,
            description,
            enabled_events,
            status,
            rate_limit,
            headers: headers(body.headers)?,
            ordering: ordering(body.ordering)?,
        })
    }
}

fn url(sent: Sent<String>) -> Result<WebhookUrl, RequestError> {
    match sent {
        Sent::Missing => Err(RequestError::MissingUrl),
        Sent::WrongType => Err(RequestError::UrlNotAString),
        Sent::Value(raw) => WebhookUrl::new(&raw).map_err(|_| RequestError::InvalidUrl),
    }
}

fn description(sent: Sent<String>) -> Result<Description, RequestError> {
    match sent {
        Sent::Missing => Err(RequestError::MissingDescription),
        Sent::WrongType => Err(RequestError::DescriptionNotAString),
        Sent::Value(raw) => Description::new(&raw).map_err(|_| RequestError::InvalidDescription),
    }
}

/// A non-empty array of supported event names (once `enabledEvents` is present).
fn enabled_events(sent: Sent<Vec<String>>) -> Result<EnabledEvents, RequestError> {
    let Sent::Value(names) = sent else {
        return Err(RequestError::InvalidEnabledEvents);
    };
    let events = names
        .iter()
        .map(|name| EventType::parse(name))
        .collect::<Option<Vec<_>>>()
        .ok_or(RequestError::InvalidEnabledEvents)?;
    EnabledEvents::new(events).map_err(|_| RequestError::InvalidEnabledEvents)
}

/// `None` when absent; `Some(None)` for `null` or `{}` (no custom header).
fn headers(
    sent: Sent<Option<BTreeMap<String, String>>>,
) -> Result<Option<Option<CustomHeaders>>, RequestError> {
    match sent {
        Sent::Missing => Ok(None),
        Sent::WrongType => Err(RequestError::InvalidHeaders),
        Sent::Value(None) => Ok(Some(None)),
        Sent::Value(Some(map)) if map.is_empty() => Ok(Some(None)),
        Sent::Value(Some(map)) => Ok(Some(Some(CustomHeaders::new(map)?))),
    }
}

/// `None` when absent; `Some(None)` for `null` (no ordering).
fn ordering(sent: Sent<Option<String>>) -> Result<Option<Option<DeliveryOrdering>>, RequestError> {
    match sent {
        Sent::Missing => Ok(None),
        Sent::WrongType => Err(RequestError::InvalidOrdering),
        Sent::Value(None) => Ok(Some(None)),
        Sent::Value(Some(raw)) => Ok(Some(Some(DeliveryOrdering::parse(&raw)?))),
    }
}

/// `fifo`, or `null`.
fn ordering_body_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    let mut schema = crate::inbound::webhooks::ordering_schema();
    schema.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    if let Some(values) = schema.enum_values.as_mut() {
        values.push(serde_json::Value::Null);
    }
    schema
}

/// An object of header names to values, or `null`.
fn headers_body_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    let mut schema = crate::inbound::webhooks::headers_schema("k3y-0f-the-receiver");
    schema.schema_type = SchemaType::from_iter([Type::Object, Type::Null]);
    schema
}

/// The published event types: the operational ones are accepted too, but
/// only for the webhooks of an operations group.
fn event_types_body_schema() -> utoipa::openapi::schema::Array {
    let mut schema =
        crate::inbound::api_doc::array_of_strings(EventType::ALL.map(EventType::as_str));
    schema.min_items = Some(1);
    schema
}

#[cfg(test)]
mod tests;
