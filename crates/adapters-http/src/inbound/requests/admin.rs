//! The bodies and path parameters of `/admin`. A body that does not
//! deserialize (not JSON, a field missing or of the wrong type) is "Invalid
//! JSON body"; then the name, then the group id.

use serde::Deserialize;
use utoipa::ToSchema;
use webhooks_domain::{
    ApiKeyId, DisplayName, DomainError, EnabledEvents, EventType, GroupId, OrganizationId,
    Resource, WebhookUrl,
};

use crate::inbound::error::{ApiError, RequestError};

/// A new organization.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewOrganization)]
#[schema(example = json!({ "name": "Acme" }))]
pub(crate) struct NameBody {
    /// 1 to 200 characters once trimmed, on one line (no control
    /// character, no line break); need not be unique.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

/// A new group.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewGroup)]
#[schema(example = json!({ "name": "Production", "id": 123456 }))]
pub(crate) struct GroupBody {
    /// 1 to 200 characters once trimmed, on one line (no control
    /// character, no line break).
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// The groupID to use; the service picks one when absent.
    #[schema(minimum = 1)]
    id: Option<i64>,
}

/// An organization's operator endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = OperatorEndpointSettings)]
#[schema(example = json!({ "url": "https://ops.example/webhooks", "events": ["webhook.disabled"] }))]
pub(crate) struct OperatorEndpointBody {
    /// Where the operational events go: the rules of a webhook's `url`.
    #[schema(format = "uri", max_length = 2048)]
    url: String,
    /// A non-empty list of operational event types; all four when absent.
    #[schema(schema_with = operational_events_schema, required = false)]
    events: Option<Vec<String>>,
}

/// The operational event types.
pub(crate) fn operational_events_schema() -> utoipa::openapi::schema::Array {
    let mut schema =
        crate::inbound::api_doc::array_of_strings(EventType::OPERATIONAL.map(EventType::as_str));
    schema.min_items = Some(1);
    schema
}

impl OperatorEndpointBody {
    /// Reads the body of `PUT /admin/organizations/{orgID}/operator-endpoint`:
    /// its URL, then its events.
    pub(crate) fn read(bytes: &[u8]) -> Result<(WebhookUrl, EnabledEvents), RequestError> {
        let body = body::<Self>(bytes)?;
        let url = WebhookUrl::new(&body.url).map_err(|_| RequestError::InvalidUrl)?;
        Ok((url, operational_events(body.events.as_deref())?))
    }
}

/// Operational event names, all of them when `None`; anything else, or an
/// empty list, is "Invalid events".
pub fn operational_events(names: Option<&[String]>) -> Result<EnabledEvents, RequestError> {
    let Some(names) = names else {
        return Ok(EnabledEvents::operational());
    };
    let events = names
        .iter()
        .map(|name| EventType::parse(name).filter(|event| event.is_operational()))
        .collect::<Option<Vec<_>>>()
        .ok_or(RequestError::InvalidEvents)?;
    EnabledEvents::new(events).map_err(|_| RequestError::InvalidEvents)
}

fn body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, RequestError> {
    serde_json::from_slice(bytes).map_err(|_| RequestError::InvalidJsonBody)
}

/// An organization's or a group's name.
pub(crate) fn display_name(raw: &str) -> Result<DisplayName, RequestError> {
    DisplayName::new(raw).map_err(|_| RequestError::InvalidName)
}

/// The group id asked for, if any.
pub(crate) fn requested_group_id(id: Option<i64>) -> Result<Option<GroupId>, RequestError> {
    id.map(|raw| GroupId::new(raw).map_err(|_| RequestError::InvalidGroupId))
        .transpose()
}

impl NameBody {
    /// Reads the body of `POST /admin/organizations`.
    pub(crate) fn read(bytes: &[u8]) -> Result<DisplayName, RequestError> {
        display_name(&body::<Self>(bytes)?.name)
    }
}

impl GroupBody {
    /// Reads the body of `POST /admin/organizations/{orgID}/groups`: its name,
    /// then the id asked for.
    pub(crate) fn read(bytes: &[u8]) -> Result<(DisplayName, Option<GroupId>), RequestError> {
        let body = body::<Self>(bytes)?;
        Ok((display_name(&body.name)?, requested_group_id(body.id)?))
    }
}

/// `{orgID}`: one of the wrong shape names no organization.
pub(crate) fn organization_id(raw: &str) -> Result<OrganizationId, ApiError> {
    OrganizationId::parse(raw).ok_or_else(|| DomainError::NotFound(Resource::Organization).into())
}

/// `{keyID}`: one of the wrong shape names no key.
pub(crate) fn api_key_id(raw: &str) -> Result<ApiKeyId, ApiError> {
    ApiKeyId::parse(raw).ok_or_else(|| DomainError::NotFound(Resource::ApiKey).into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_body_that_does_not_deserialize_is_invalid_json_body() {
        for bad in ["", "{}", r#"{"name":5}"#, r#"{"name":null}"#, "nope"] {
            assert_eq!(
                NameBody::read(bad.as_bytes()),
                Err(RequestError::InvalidJsonBody),
                "{bad}"
            );
        }
        for bad in [r#"{"name":"x","id":"5"}"#, r#"{"name":"x","id":1.5}"#] {
            assert_eq!(
                GroupBody::read(bad.as_bytes()).err(),
                Some(RequestError::InvalidJsonBody),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(
            NameBody::read(br#"{"name":"  Acme "}"#).map(String::from),
            Ok("Acme".to_owned())
        );
        for bad in ["", "   ", "Acme\n", &"x".repeat(201)] {
            let body = json!({ "name": bad }).to_string();
            assert_eq!(
                NameBody::read(body.as_bytes()),
                Err(RequestError::InvalidName),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_group_body_checks_its_name_before_its_id() {
        assert_eq!(
            GroupBody::read(br#"{"name":" ","id":0}"#).err(),
            Some(RequestError::InvalidName)
        );
        for bad in ["0", "-5"] {
            let body = format!(r#"{{"name":"Production","id":{bad}}}"#);
            assert_eq!(
                GroupBody::read(body.as_bytes()).err(),
                Some(RequestError::InvalidGroupId),
                "{bad}"
            );
        }
        let (name, id) = GroupBody::read(br#"{"name":"Production","id":123456}"#).unwrap();
        assert_eq!(
            (name.as_str(), id.map(GroupId::get)),
            ("Production", Some(123456))
        );
        assert_eq!(
            GroupBody::read(br#"{"name":"P"}"#).map(|(_, id)| id),
            Ok(None)
        );
    }

    #[test]
    fn an_operator_endpoint_body_checks_its_url_then_takes_only_operational_events() {
        let read =
            |body: serde_json::Value| OperatorEndpointBody::read(body.to_string().as_bytes());
        let (url, events) = read(json!({"url": "https://ops.example/h"})).unwrap();
        assert_eq!(url.as_str(), "https://ops.example/h");
        assert_eq!(events, EnabledEvents::operational());
        let (_, events) =
            read(json!({"url": "https://o.example", "events": ["secret.rotated"]})).unwrap();
        assert_eq!(
            events.iter().collect::<Vec<_>>(),
            [EventType::SecretRotated]
        );
        assert_eq!(
            read(json!({"url": "ftp://o.example", "events": []})).err(),
            Some(RequestError::InvalidUrl)
        );
        for bad in [json!([]), json!(["user.created"]), json!(["webhook.gone"])] {
            assert_eq!(
                read(json!({"url": "https://o.example", "events": bad})).err(),
                Some(RequestError::InvalidEvents),
                "{bad}"
            );
        }
        for bad in [
            json!({}),
            json!({"url": 5}),
            json!({"url": "https://o.example", "events": "x"}),
        ] {
            assert_eq!(
                read(bad.clone()).err(),
                Some(RequestError::InvalidJsonBody),
                "{bad}"
            );
        }
    }

    #[test]
    fn ids_of_the_wrong_shape_are_not_found() {
        assert_eq!(
            organization_id("org_x").unwrap_err().client_message(),
            "Organization not found"
        );
        assert_eq!(
            api_key_id("").unwrap_err().client_message(),
            "API key not found"
        );
    }
}
