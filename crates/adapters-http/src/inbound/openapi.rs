//! The OpenAPI 3.1 document of the whole API, served at `GET /openapi.json`.
//!
//! Each operation is described by `#[utoipa::path]` on its handler, and the
//! router mounts the handler where that attribute says (see [`super::routes`]).
//! This module assembles the document and adds the security schemes and the
//! 404 and 405 every path can answer; what the annotations share lives in
//! [`super::api_doc`], so the handlers never import this module.

use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::api_doc::error_response;
use super::error::ErrorBody;
use super::routes::{Operation, RouteTable, TrailingSlash};
use super::{admin, deliveries, docs, events, health, portal, secrets, stats, webhooks};

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
        portal::create_link,
        secrets::secret,
        secrets::rotate_secret,
        deliveries::list,
        deliveries::get_one,
        deliveries::retry,
        deliveries::send_test,
        deliveries::recover,
        stats::stats,
        events::publish,
        admin::create_organization,
        admin::create_group,
        admin::create_api_key,
        admin::revoke_api_key,
        admin::set_operator_endpoint,
        admin::get_operator_endpoint,
        admin::remove_operator_endpoint,
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
        (name = "deliveries", description = "A webhook's signing secret, delivery log and stats."),
        (name = "events", description = "Events in from the rest of the platform."),
        (name = "admin", description = "Organizations, groups, API keys and operator endpoints."),
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
