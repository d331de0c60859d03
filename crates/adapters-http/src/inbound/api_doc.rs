//! What the handlers' `#[utoipa::path]` annotations share: the error answers
//! generated from [`ApiError`]'s own status and text (so an example can never
//! show an answer the API does not give), string schemas, and the path
//! parameters. The handlers import this module, never the assembler in
//! [`super::openapi`], which imports them.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::ResponseError;
use serde_json::json;
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ArrayBuilder, Object, ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::IntoParams;
use webhooks_domain::{DomainError, Resource};

use super::error::{ApiError, ErrorBody, RequestError};

/// Declares the error answers of an operation as a type that
/// `#[utoipa::path(responses(...))]` takes. Each error is documented under the
/// status the API answers it with, its exact text as an example, both taken
/// from [`ApiError`] itself.
macro_rules! error_responses {
    ($(#[$doc:meta])* $name:ident: $($error:expr),+ $(,)?) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                $crate::inbound::api_doc::responses_for([$($crate::inbound::error::ApiError::from($error)),+])
            }
        }
    };
}
pub(crate) use error_responses;

/// A fault of ours (the database is down): 503 `Service unavailable`.
pub(crate) const FAULT: ApiError = ApiError::Unavailable(String::new());

error_responses!(
    /// The errors of a route on one existing webhook of a group.
    OneWebhookErrors:
    DomainError::NotAllowed,
    RequestError::MissingGroupId,
    RequestError::GroupIdNotANumber,
    DomainError::NotFound(Resource::Group),
    DomainError::NotFound(Resource::Webhook),
    FAULT,
);

/// The responses of `errors`, grouped by status, one example per message.
pub(crate) fn responses_for(
    errors: impl IntoIterator<Item = ApiError>,
) -> BTreeMap<String, RefOr<Response>> {
    let mut messages: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for error in errors {
        let of_status = messages.entry(error.status_code().as_u16()).or_default();
        let message = error.client_message();
        if !of_status.contains(&message) {
            of_status.push(message);
        }
    }
    messages
        .into_iter()
        .map(|(status, messages)| {
            let response = error_response(describe(status), &messages);
            (status.to_string(), response.into())
        })
        .collect()
}

/// One error response with these messages, for answers that are not an [`ApiError`].
pub(crate) fn error_responses_of(
    status: StatusCode,
    messages: &[&str],
) -> BTreeMap<String, RefOr<Response>> {
    let messages: Vec<String> = messages.iter().map(|m| (*m).to_owned()).collect();
    let response = error_response(describe(status.as_u16()), &messages);
    BTreeMap::from([(status.as_u16().to_string(), response.into())])
}

pub(crate) fn error_response(description: &str, messages: &[String]) -> Response {
    let examples = messages.iter().map(|message| {
        let example = ExampleBuilder::new().value(Some(json!({ "error": message })));
        (message.clone(), example.build())
    });
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(
            <ErrorBody as utoipa::ToSchema>::name(),
        )))
        .examples_from_iter(examples)
        .build();
    ResponseBuilder::new()
        .description(description)
        .content("application/json", content)
        .build()
}

fn describe(status: u16) -> &'static str {
    match StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR) {
        StatusCode::BAD_REQUEST => {
            "The request is invalid. Checks run in the documented order; the first that fails answers."
        }
        StatusCode::UNAUTHORIZED => "The credentials are missing, unknown or revoked.",
        StatusCode::NOT_FOUND => "Not found, or this API is switched off in the configuration.",
        StatusCode::CONFLICT => "The request conflicts with the current state; the message says how.",
        StatusCode::PAYLOAD_TOO_LARGE => "The body is larger than 64 KiB.",
        StatusCode::REQUEST_TIMEOUT => {
            "The body did not all arrive in time (`server.body_timeout`, 10 s by default); the connection is closed."
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            "A fault on our side, such as the database being unreachable; it is logged. Retry later."
        }
        _ => "An error.",
    }
}

/// A string schema that takes only `values`.
pub(crate) fn one_of_strings(values: impl IntoIterator<Item = &'static str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .build()
}

/// An array of strings taken from `values`.
pub(crate) fn array_of_strings(
    values: impl IntoIterator<Item = &'static str>,
) -> utoipa::openapi::schema::Array {
    ArrayBuilder::new().items(one_of_strings(values)).build()
}

// Path parameters. Described, never built: `requests::path` reads the raw
// path segments, since the seed's checks (missing, not a number) need them raw.

/// `{groupID}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct GroupIdParam {
    /// The group's id: ASCII digits forming a number from 1 to 9223372036854775807.
    #[param(rename = "groupID", pattern = "^[0-9]+$", example = "123456")]
    group_id: String,
}

/// `{webhookID}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct WebhookIdParam {
    /// The webhook's id: `we_` and 26 characters of `[0-9a-z]`.
    #[param(rename = "webhookID", example = "we_abcdefghijklmnopqrstuvwxyz")]
    webhook_id: String,
}

/// `{deliveryID}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct DeliveryIdParam {
    /// The delivery's id: `dlv_` and 26 characters of `[0-9a-z]`.
    #[param(rename = "deliveryID", example = "dlv_01jf3z5h0b8m3c1y4k7q2w9e6r")]
    delivery_id: String,
}

/// `{orgID}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct OrganizationIdParam {
    /// The organization's id: `org_` and 26 characters of `[0-9a-z]`.
    #[param(rename = "orgID", example = "org_01jf3z5h0b8m3c1y4k7q2w9e6r")]
    organization_id: String,
}

/// `{keyID}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct ApiKeyIdParam {
    /// The API key's id (not the key): `key_` and 26 characters of `[0-9a-z]`.
    #[param(rename = "keyID", example = "key_01jf3z5h0b8m3c1y4k7q2w9e6r")]
    key_id: String,
}
