//! The OpenAPI 3.1 document of the whole API, served at `GET /openapi.json`.
//!
//! Each operation is described by `#[utoipa::path]` on its handler, and the
//! router mounts the handler where that attribute says (see [`crate::routes`]).
//! This module assembles the document and holds what the annotations share:
//! the path parameters, the security schemes, and error answers generated from
//! [`ApiError`]'s own status and text, so an example can never show an answer
//! the API does not give.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};
use serde_json::json;
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ArrayBuilder, Object, ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{IntoParams, Modify, OpenApi};

use crate::error::{ApiError, ErrorBody};
use crate::routes::{Operation, RouteTable, TrailingSlash};
use crate::{admin, deliveries, docs, events, health, webhooks};

/// Security scheme names, as the operations' `security(...)` spell them.
const API_KEY: &str = "apiKey";
const ADMIN_TOKEN: &str = "adminToken";
const SERVICE_TOKEN: &str = "serviceToken";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Okaya webhooks API",
        description = "Webhook endpoints of a group, their delivery log, events in from the \
            platform, and the admin API.\n\n\
            Request bodies are JSON whatever the `Content-Type` says, at most 64 KiB \
            (413 beyond), and must arrive within the configured body timeout \
            (10 s by default; 408 beyond). Errors are JSON `{ \"error\": \"<message>\" }`. An unknown path \
            answers 404 and a method the path does not take answers 405 (with `Allow`), \
            both as JSON. A fault on our side answers 503 and is logged.\n\n\
            The router also accepts each `/webhooks/{groupID}[/{webhookID}]` path with a \
            trailing slash, and answers `/webhooks`, `/webhooks/` and \
            `PUT`/`DELETE /webhooks/{groupID}` with the \"You are missing the path \
            parameter …\" errors; those aliases are not listed here."
    ),
    // Every handler the route tables mount with `Operation::documented`;
    // tests/openapi.rs fails when this list and the tables disagree.
    paths(
        webhooks::list,
        webhooks::create,
        webhooks::get_one,
        webhooks::update,
        webhooks::delete,
        deliveries::secret,
        deliveries::rotate_secret,
        deliveries::list,
        deliveries::get_one,
        deliveries::retry,
        deliveries::send_test,
        deliveries::recover,
        events::publish,
        admin::create_organization,
        admin::create_group,
        admin::create_api_key,
        admin::revoke_api_key,
        health::healthz,
        health::readyz,
        health::metrics,
        openapi_json,
        docs::page,
    ),
    // Error answers come from `IntoResponses` types, whose schemas utoipa
    // does not collect by itself.
    components(schemas(ErrorBody)),
    modifiers(&SharedComponents),
    tags(
        (name = "webhooks", description = "The public API: a group's webhook endpoints."),
        (name = "deliveries", description = "A webhook's signing secret and delivery log."),
        (name = "events", description = "Events in from the rest of the platform."),
        (name = "admin", description = "Organizations, groups and API keys."),
        (name = "operations", description = "Health, readiness and this documentation."),
    )
)]
struct ApiDoc;

/// The OpenAPI 3.1 document of every route [`crate::configure`] mounts.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub(crate) fn routes() -> RouteTable {
    RouteTable {
        operations: vec![Operation::documented(
            __path_openapi_json,
            web::to(openapi_json),
        )],
        trailing_slash: TrailingSlash::Strict,
    }
}

/// The OpenAPI document
///
/// This document, as JSON.
#[utoipa::path(
    get, path = "/openapi.json", operation_id = "getOpenApi", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")),
)]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(openapi())
}

/// The security schemes, and the 404 and 405 every path can answer.
struct SharedComponents;

impl Modify for SharedComponents {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "An API key of the organization that owns the group.",
            ))),
        );
        components.add_security_scheme(
            ADMIN_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin token from the configuration; without one the admin API is off (404).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            SERVICE_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The service token from the configuration; without one `/internal/events` is off (404).",
                    ))
                    .build(),
            ),
        );
        components.responses.insert(
            "NotFound".to_owned(),
            error_response("No route has this path.", &["Not found".to_owned()]).into(),
        );
        components.responses.insert(
            "MethodNotAllowed".to_owned(),
            error_response(
                "The path exists but does not take this method; `Allow` lists those it takes.",
                &["Method not allowed".to_owned()],
            )
            .into(),
        );
    }
}

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
                $crate::openapi::responses_for([$($crate::error::ApiError::from($error)),+])
            }
        }
    };
}
pub(crate) use error_responses;

/// A fault of ours (the database is down): 503 `Service unavailable`.
pub(crate) const FAULT: ApiError = ApiError::Unavailable(String::new());

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

fn error_response(description: &str, messages: &[String]) -> Response {
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

// Path parameters. Described, never built: handlers read the raw path
// segments, since the seed's checks (missing, not a number) need them raw.

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
