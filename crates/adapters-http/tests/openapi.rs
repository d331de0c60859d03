//! The OpenAPI document: valid OpenAPI 3.1, in step with the router in both
//! directions, served with a reference page that needs no network, and
//! showing the seed document's own examples.
//!
//! `schemas/openapi-3.1.json` is the official OpenAPI 3.1 schema
//! (`https://spec.openapis.org/oas/3.1/schema/2022-10-07`, Apache-2.0), as
//! the PyPI package `openapi-spec-validator` ships it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use actix_web::body::to_bytes;
use actix_web::dev::ServiceResponse;
use actix_web::http::{header, Method, StatusCode};
use actix_web::test::{call_service, init_service, TestRequest};
use actix_web::{web, App};
use async_trait::async_trait;
use serde_json::{json, Value};
use webhooks_adapters_http::{
    configure, mounted_routes, openapi, ApiState, MetricsSource, ReadinessProbe,
};
use webhooks_domain::ports::{
    MockClock, MockDeliveryQueue, MockEventStore, MockIdSource, MockPortalStore,
    MockTenancyRepository, MockWebhookRepository,
};
use webhooks_domain::{
    DeliveryService, EventPublisher, OperatorEndpoints, PortalService, SecretCipher,
    TenancyService, Wakeup, WebhookService,
};

const OPENAPI_31_SCHEMA: &str = include_str!("schemas/openapi-3.1.json");

/// The seed document's webhook object.
fn seed_webhook() -> Value {
    json!({
        "id": "we_abcdefghijklmnopqrstuvwxyz",
        "description": "Webhook Description",
        "object": "webhook_endpoint",
        "status": "enabled",
        "url": "https://integration.example/webhook",
        "enabledEvents": ["user.created", "user.session.result"]
    })
}

// ---------------------------------------------------------------------------
// Helpers

/// The document as JSON, as `/openapi.json` serves it.
fn document() -> Value {
    serde_json::to_value(openapi()).unwrap()
}

/// An `ApiState` whose ports are mocks with no expectations: any call to one
/// panics. The requests below carry no credentials, so no handler gets as far
/// as a port.
fn state() -> web::Data<ApiState> {
    let webhooks_repo = Arc::new(MockWebhookRepository::new());
    let tenancy_repo = Arc::new(MockTenancyRepository::new());
    let events = Arc::new(MockEventStore::new());
    let queue = Arc::new(MockDeliveryQueue::new());
    let clock = Arc::new(MockClock::new());
    let ids = Arc::new(MockIdSource::new());
    let cipher = SecretCipher::new(&[7; 32]).unwrap();
    let wakeup = Wakeup::default();
    let webhooks = WebhookService::new(
        webhooks_repo.clone(),
        tenancy_repo.clone(),
        clock.clone(),
        ids.clone(),
        cipher.clone(),
    );
    web::Data::new(ApiState {
        deliveries: DeliveryService::new(
            webhooks.clone(),
            queue,
            events.clone(),
            clock.clone(),
            ids.clone(),
            wakeup.clone(),
        ),
        publisher: EventPublisher::new(
            events,
            tenancy_repo.clone(),
            clock.clone(),
            ids.clone(),
            wakeup,
        ),
        portal: PortalService::new(
            Arc::new(MockPortalStore::new()),
            tenancy_repo.clone(),
            webhooks.clone(),
            clock.clone(),
        ),
        operators: OperatorEndpoints::new(
            webhooks_repo,
            TenancyService::new(tenancy_repo.clone(), clock.clone(), ids.clone()),
            clock.clone(),
            ids.clone(),
            cipher.clone(),
        ),
        tenancy: TenancyService::new(tenancy_repo, clock, ids),
        webhooks,
        readiness: Arc::new(AlwaysReady),
        metrics: Arc::new(NoMetrics),
        admin_token: Some("admin-token".into()),
        service_token: Some("service-token".into()),
        body_timeout: std::time::Duration::from_secs(10),
        portal_frame_ancestors: "'none'".into(),
    })
}

struct AlwaysReady;

#[async_trait]
impl ReadinessProbe for AlwaysReady {
    async fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

struct NoMetrics;

#[async_trait]
impl MetricsSource for NoMetrics {
    async fn render(&self) -> String {
        String::new()
    }
}

/// A concrete path for a route pattern.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{groupID}", "123456")
        .replace("{webhookID}", "we_abcdefghijklmnopqrstuvwxyz")
        .replace("{deliveryID}", "dlv_01jf3z5h0b8m3c1y4k7q2w9e6r")
        .replace("{orgID}", "org_01jf3z5h0b8m3c1y4k7q2w9e6r")
        .replace("{keyID}", "key_01jf3z5h0b8m3c1y4k7q2w9e6r")
        .replace("{file}", "index.css")
}

/// `{name}` segments of a path template, in order.
fn template_names(path: &str) -> Vec<String> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every (METHOD, path) → operation of the document.
fn operations(doc: &Value) -> BTreeMap<(String, String), Value> {
    let mut operations = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in HTTP_METHODS {
            if let Some(operation) = item.get(method) {
                operations.insert((method.to_uppercase(), path.clone()), operation.clone());
            }
        }
    }
    operations
}

/// Every `$ref` anywhere in `value`.
fn refs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, child) in fields {
                match (key.as_str(), child) {
                    ("$ref", Value::String(target)) => found.push(target.clone()),
                    _ => refs(child, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
        _ => {}
    }
}

/// Follows a local `$ref` to what it names.
fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("{reference} is not a local reference"));
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("{reference} names nothing"))
}

fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    &doc["paths"][path][method]
}

/// The messages of the examples of one error response of an operation.
fn error_examples(operation: &Value, status: &str) -> BTreeSet<String> {
    operation["responses"][status]["content"]["application/json"]["examples"]
        .as_object()
        .unwrap_or_else(|| panic!("no {status} examples in {operation}"))
        .values()
        .map(|example| example["value"]["error"].as_str().unwrap().to_owned())
        .collect()
}

async fn body_json(response: ServiceResponse) -> Value {
    serde_json::from_slice(&to_bytes(response.into_body()).await.unwrap()).unwrap()
}

async fn body_text(response: ServiceResponse) -> String {
    String::from_utf8(to_bytes(response.into_body()).await.unwrap().to_vec()).unwrap()
}

// ---------------------------------------------------------------------------
// (1) A valid OpenAPI 3.1 document

#[test]
fn the_document_is_openapi_3_1() {
    let doc = document();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "openapi is {}",
        doc["openapi"]
    );
}

#[test]
fn the_document_validates_against_the_openapi_3_1_schema() {
    let schema: Value = serde_json::from_str(OPENAPI_31_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let doc = document();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// The check above is not vacuous: the schema does reject a broken document.
#[test]
fn the_openapi_3_1_schema_rejects_a_broken_document() {
    let schema: Value = serde_json::from_str(OPENAPI_31_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut doc = document();
    doc["paths"]["/healthz"]["get"]["parameters"] = json!([{ "name": "x", "in": "body" }]);
    assert!(!validator.is_valid(&doc));
}

#[test]
fn every_reference_in_the_document_resolves() {
    let doc = document();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for reference in found {
        resolve(&doc, &reference);
    }
}

#[test]
fn every_path_parameter_matches_its_template() {
    let doc = document();
    for ((method, path), operation) in operations(&doc) {
        let mut declared: Vec<String> = operation["parameters"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|parameter| parameter["in"] == "path")
            .inspect(|parameter| {
                assert_eq!(parameter["required"], true, "{method} {path}: {parameter}")
            })
            .map(|parameter| parameter["name"].as_str().unwrap().to_owned())
            .collect();
        let mut expected = template_names(&path);
        declared.sort();
        expected.sort();
        assert_eq!(declared, expected, "{method} {path}");
    }
}

#[test]
fn every_operation_has_an_id_a_tag_responses_and_known_security() {
    let doc = document();
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| tag["name"].as_str().unwrap())
        .collect();
    let mut ids = BTreeSet::new();
    for ((method, path), operation) in operations(&doc) {
        let id = operation["operationId"].as_str().unwrap().to_owned();
        assert!(ids.insert(id.clone()), "operationId {id} is used twice");
        assert!(
            !operation["responses"].as_object().unwrap().is_empty(),
            "{method} {path} has no responses"
        );
        for tag in operation["tags"].as_array().unwrap() {
            assert!(
                tags.contains(tag.as_str().unwrap()),
                "{method} {path}: tag {tag}"
            );
        }
        for requirement in operation["security"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            for scheme in requirement.as_object().unwrap().keys() {
                assert!(
                    schemes.contains_key(scheme),
                    "{method} {path}: scheme {scheme}"
                );
            }
        }
    }
}

#[test]
fn the_security_schemes_are_the_api_key_header_and_two_bearer_tokens() {
    let doc = document();
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(
        schemes["apiKey"],
        json!({
            "type": "apiKey",
            "in": "header",
            "name": "x-api-key",
            "description": schemes["apiKey"]["description"],
        })
    );
    for token in ["adminToken", "serviceToken"] {
        assert_eq!(schemes[token]["type"], "http");
        assert_eq!(schemes[token]["scheme"], "bearer");
    }
    let security_of = |path: &str| -> BTreeSet<String> {
        doc["paths"][path]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|op| op["security"].as_array().cloned().unwrap_or_default())
            .flat_map(|requirement| {
                requirement
                    .as_object()
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    for path in doc["paths"].as_object().unwrap().keys() {
        let expected: &[&str] = if path.starts_with("/webhooks") {
            &["apiKey"]
        } else if path.starts_with("/admin") {
            &["adminToken"]
        } else if path.starts_with("/internal") {
            &["serviceToken"]
        } else {
            &[]
        };
        let expected: BTreeSet<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(security_of(path), expected, "{path}");
    }
}

// ---------------------------------------------------------------------------
// (2) The document and the router describe the same routes

/// Routes the document leaves out on purpose, besides trailing-slash twins:
/// aliases that only answer the seed's "missing path parameter" errors, and
/// the Swagger UI's own files. (Everything under [`PORTAL`] is left out too.)
const UNDOCUMENTED: &[(&str, &str)] = &[
    ("GET", "/webhooks"),
    ("POST", "/webhooks"),
    ("PUT", "/webhooks"),
    ("DELETE", "/webhooks"),
    ("GET", "/webhooks//{webhookID}"),
    ("POST", "/webhooks//{webhookID}"),
    ("PUT", "/webhooks//{webhookID}"),
    ("DELETE", "/webhooks//{webhookID}"),
    ("PUT", "/webhooks/{groupID}"),
    ("DELETE", "/webhooks/{groupID}"),
    ("GET", "/docs/{file}"),
];

/// The portal's pages and the session calls they make: a web page, not API.
const PORTAL: &str = "/portal";

#[test]
fn the_document_has_exactly_the_documented_routes_of_the_router() {
    let in_router: BTreeSet<(String, String)> = mounted_routes()
        .into_iter()
        .filter(|route| route.documented)
        .map(|route| (route.method.to_string(), route.path))
        .collect();
    let in_document: BTreeSet<(String, String)> = operations(&document()).into_keys().collect();
    let missing: Vec<_> = in_router.difference(&in_document).collect();
    let extra: Vec<_> = in_document.difference(&in_router).collect();
    assert!(
        missing.is_empty(),
        "mounted but not documented: {missing:?}"
    );
    assert!(extra.is_empty(), "documented but not mounted: {extra:?}");
}

#[test]
fn every_undocumented_route_is_a_known_alias() {
    let documented: BTreeSet<(String, String)> = operations(&document()).into_keys().collect();
    for route in mounted_routes()
        .into_iter()
        .filter(|route| !route.documented)
    {
        let method = route.method.to_string();
        let base = route.path.trim_end_matches('/').to_owned();
        let known = documented.contains(&(method.clone(), base.clone()))
            || UNDOCUMENTED.contains(&(method.as_str(), base.as_str()))
            || base == PORTAL
            || base.starts_with(&format!("{PORTAL}/"));
        assert!(
            known,
            "{method} {} is mounted but neither documented nor a known alias",
            route.path
        );
    }
}

/// Walks the router: every mounted route reaches a handler of its own (not
/// the 404 or 405 fallbacks), and a documented one answers as the document
/// says a caller without credentials is answered: 401 where it names a
/// security scheme, 200 where it names none.
#[actix_web::test]
async fn every_mounted_route_reaches_its_handler() {
    let app = init_service(App::new().configure(configure(state()))).await;
    let doc = document();
    for route in mounted_routes() {
        let uri = concrete(&route.path);
        let request = TestRequest::default()
            .method(route.method.clone())
            .uri(&uri)
            .to_request();
        let response = call_service(&app, request).await;
        let status = response.status();
        let what = format!("{} {} ({uri})", route.method, route.path);
        assert_ne!(status, StatusCode::NOT_FOUND, "{what}");
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
        if route.documented {
            let operation = operation(&doc, &route.method.as_str().to_lowercase(), &route.path);
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            let expected = if secured {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::OK
            };
            assert_eq!(status, expected, "{what}");
            assert!(
                operation["responses"].get(status.as_str()).is_some(),
                "{what}: {status} is not documented"
            );
        }
    }
}

/// Every other method on a mounted path answers the JSON 405, with `Allow`
/// naming the methods the path takes.
#[actix_web::test]
async fn other_methods_on_a_mounted_path_answer_405_with_allow() {
    let app = init_service(App::new().configure(configure(state()))).await;
    let mut taken: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // A path that yields its other methods to a broader pattern answers them
    // as that pattern does (the app's tests check those answers).
    for route in mounted_routes()
        .into_iter()
        .filter(|r| !r.yields_other_methods)
    {
        taken
            .entry(route.path)
            .or_default()
            .insert(route.method.to_string());
    }
    for (path, methods) in &taken {
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ] {
            if methods.contains(method.as_str()) {
                continue;
            }
            let request = TestRequest::default()
                .method(method.clone())
                .uri(&concrete(path))
                .to_request();
            let response = call_service(&app, request).await;
            let what = format!("{method} {path}");
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{what}");
            let allow: BTreeSet<String> = response
                .headers()
                .get(header::ALLOW)
                .unwrap()
                .to_str()
                .unwrap()
                .split(", ")
                .map(str::to_owned)
                .collect();
            assert_eq!(&allow, methods, "{what}");
            assert_eq!(
                body_json(response).await,
                json!({ "error": "Method not allowed" }),
                "{what}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// (3) Served: the document, and a reference page that needs no network

#[actix_web::test]
async fn openapi_json_serves_the_document() {
    let app = init_service(App::new().configure(configure(state()))).await;
    let request = TestRequest::get().uri("/openapi.json").to_request();
    let response = call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get(header::CONTENT_TYPE).unwrap(),
        "application/json"
    );
    assert_eq!(body_json(response).await, document());
}

/// The page and every file it loads come from the API itself: no `http(s)://`
/// URL anywhere in the page or in the script that configures the UI.
#[actix_web::test]
async fn docs_is_an_html_page_whose_files_are_all_served_locally() {
    let app = init_service(App::new().configure(configure(state()))).await;
    for page in ["/docs", "/docs/"] {
        let response = call_service(&app, TestRequest::get().uri(page).to_request()).await;
        assert_eq!(response.status(), StatusCode::OK, "{page}");
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/html"),
            "{page}: {content_type}"
        );
        let html = body_text(response).await;
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{page}: {html}"
        );
        assert!(html.contains(r#"<base href="/docs/">"#), "{page}: {html}");

        let assets: Vec<&str> = ["src=\"", "href=\""]
            .iter()
            .flat_map(|attribute| html.split(attribute).skip(1))
            .filter_map(|rest| rest.split('"').next())
            .filter(|url| *url != "/docs/")
            .collect();
        assert!(assets.len() >= 4, "{assets:?}");
        for asset in assets {
            assert!(!asset.starts_with("//"), "{asset}");
            let uri = format!("/docs/{}", asset.trim_start_matches("./"));
            let response = call_service(&app, TestRequest::get().uri(&uri).to_request()).await;
            assert_eq!(response.status(), StatusCode::OK, "{uri}");
            assert!(
                !to_bytes(response.into_body()).await.unwrap().is_empty(),
                "{uri}"
            );
        }
    }
}

#[actix_web::test]
async fn the_docs_page_loads_this_document_and_nothing_from_outside() {
    let app = init_service(App::new().configure(configure(state()))).await;
    let request = TestRequest::get()
        .uri("/docs/swagger-initializer.js")
        .to_request();
    let response = call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let script = body_text(response).await;
    assert!(script.contains(r#""url": "/openapi.json""#), "{script}");
    assert!(script.contains(r#""validatorUrl": "none""#), "{script}");
    assert!(
        !script.contains("http://") && !script.contains("https://"),
        "{script}"
    );
}

#[actix_web::test]
async fn an_unknown_docs_file_is_the_json_404() {
    let app = init_service(App::new().configure(configure(state()))).await;
    let request = TestRequest::get().uri("/docs/nothing.js").to_request();
    let response = call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(body_json(response).await, json!({ "error": "Not found" }));
}

// ---------------------------------------------------------------------------
// (4) The seed's examples and rules

#[test]
fn the_webhook_schema_example_is_the_seeds() {
    let doc = document();
    assert_eq!(
        doc["components"]["schemas"]["Webhook"]["example"],
        seed_webhook()
    );
}

#[test]
fn the_create_body_example_is_the_seeds() {
    let doc = document();
    let body = &operation(&doc, "post", "/webhooks/{groupID}")["requestBody"];
    let schema = resolve(
        &doc,
        body["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(
        schema["example"],
        json!({
            "url": "https://integration.example/webhook",
            "description": "Webhook Description"
        })
    );
    assert_eq!(schema["required"], json!(["url", "description"]));
}

#[test]
fn the_update_body_and_answer_examples_are_the_seeds() {
    let doc = document();
    let update = operation(&doc, "put", "/webhooks/{groupID}/{webhookID}");
    let schema = resolve(
        &doc,
        update["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(
        schema["example"],
        json!({
            "url": "https://integration.example/newWebhook",
            "description": "New Webhook Description"
        })
    );
    let mut updated = seed_webhook();
    updated["url"] = json!("https://integration.example/newWebhook");
    updated["description"] = json!("New Webhook Description");
    assert_eq!(
        update["responses"]["200"]["content"]["application/json"]["example"],
        updated
    );
}

#[test]
fn the_answer_examples_are_the_seeds() {
    let doc = document();
    let example = |method: &str, path: &str| {
        operation(&doc, method, path)["responses"]["200"]["content"]["application/json"]["example"]
            .clone()
    };
    assert_eq!(
        example("get", "/webhooks/{groupID}"),
        json!([seed_webhook()])
    );
    assert_eq!(example("post", "/webhooks/{groupID}"), seed_webhook());
    assert_eq!(
        example("delete", "/webhooks/{groupID}/{webhookID}"),
        json!({ "message": "success" })
    );
}

/// Each seed route documents the seed's 400 messages and its 401.
#[test]
fn the_seed_routes_document_the_seeds_error_messages() {
    let doc = document();
    let group = [
        "You are missing the path parameter groupID",
        "groupID must be a number",
        "Group not found",
    ];
    let body = [
        "Invalid URL",
        "You are missing the body parameter url",
        "url must be a string",
        "You are missing the body parameter description",
        "description must be a string",
    ];
    let webhook = [
        "You are missing the path parameter webhookID",
        "Webhook not found",
    ];
    let seed: [(&str, &str, Vec<&str>); 4] = [
        ("get", "/webhooks/{groupID}", group.to_vec()),
        (
            "post",
            "/webhooks/{groupID}",
            [&group[..], &body[..]].concat(),
        ),
        (
            "put",
            "/webhooks/{groupID}/{webhookID}",
            [&group[..], &webhook[..], &body[..]].concat(),
        ),
        (
            "delete",
            "/webhooks/{groupID}/{webhookID}",
            [&group[..], &webhook[..]].concat(),
        ),
    ];
    for (method, path, messages) in seed {
        let operation = operation(&doc, method, path);
        let documented = error_examples(operation, "400");
        for message in messages {
            assert!(
                documented.contains(message),
                "{method} {path}: {message:?} not in {documented:?}"
            );
        }
        assert_eq!(
            error_examples(operation, "401"),
            BTreeSet::from(["Unauthorized".to_owned()])
        );
        assert!(
            operation["responses"].get("503").is_some(),
            "{method} {path}: no 503"
        );
    }
    for (method, path) in [
        ("post", "/webhooks/{groupID}"),
        ("put", "/webhooks/{groupID}/{webhookID}"),
    ] {
        assert_eq!(
            error_examples(operation(&doc, method, path), "413"),
            BTreeSet::from(["Payload too large".to_owned()])
        );
    }
}

#[test]
fn documented_limits_are_the_domains() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    for body in ["NewWebhook", "WebhookUpdate"] {
        let properties = &schemas[body]["properties"];
        assert_eq!(
            properties["url"]["maxLength"],
            webhooks_domain::MAX_URL_BYTES,
            "{body}"
        );
        assert_eq!(
            properties["description"]["maxLength"],
            webhooks_domain::MAX_DESCRIPTION_CHARS,
            "{body}"
        );
    }
    let limit = operation(&doc, "get", "/webhooks/{groupID}/{webhookID}/deliveries")["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|parameter| parameter["name"] == "limit")
        .unwrap()
        .clone();
    assert_eq!(limit["schema"]["maximum"], webhooks_domain::MAX_PAGE_SIZE);
}

#[test]
fn the_stats_operation_documents_its_window_its_errors_and_its_answer() {
    let doc = document();
    let stats = operation(&doc, "get", "/webhooks/{groupID}/{webhookID}/stats");
    let query: Vec<&Value> = stats["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|parameter| parameter["in"] == "query")
        .collect();
    let names: Vec<&str> = query.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["since", "until"]);
    assert!(query.iter().all(|p| p["required"] != true), "{query:?}");
    let documented = error_examples(stats, "400");
    for message in [
        "since must be an RFC 3339 date-time",
        "until must be an RFC 3339 date-time",
        "since must be before until",
        "since and until must be at most 31 days apart",
        "Invalid query string",
        "groupID must be a number",
        "Group not found",
        "Webhook not found",
    ] {
        assert!(
            documented.contains(message),
            "{message:?} not in {documented:?}"
        );
    }
    let answer = &stats["responses"]["200"]["content"]["application/json"]["schema"];
    let schema = resolve(&doc, answer["$ref"].as_str().unwrap());
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key.as_str().unwrap())
        .collect();
    let keys = [
        "webhookID",
        "since",
        "until",
        "deliveries",
        "successRate",
        "attempts",
        "latencyMs",
        "lastSuccessAt",
        "lastFailureAt",
    ];
    assert_eq!(required, BTreeSet::from(keys));
}

#[test]
fn custom_headers_are_documented_on_both_bodies_and_shown_masked() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    for body in ["NewWebhook", "WebhookUpdate"] {
        let headers = &schemas[body]["properties"]["headers"];
        assert_eq!(
            headers["maxProperties"],
            webhooks_domain::MAX_CUSTOM_HEADERS,
            "{body}"
        );
        assert_eq!(headers["type"], json!(["object", "null"]), "{body}");
        let values = &headers["additionalProperties"];
        assert_eq!(values["type"], "string", "{body}");
        assert_eq!(
            values["maxLength"],
            webhooks_domain::MAX_HEADER_VALUE_BYTES,
            "{body}"
        );
        let required = schemas[body]["required"].as_array().unwrap();
        assert!(!required.contains(&json!("headers")), "{body}");
    }
    let shown = &schemas["Webhook"]["properties"]["headers"];
    assert_eq!(shown["additionalProperties"]["enum"], json!(["****"]));
    assert!(!schemas["Webhook"]["required"]
        .as_array()
        .unwrap()
        .contains(&json!("headers")));
    for (method, path) in [
        ("post", "/webhooks/{groupID}"),
        ("put", "/webhooks/{groupID}/{webhookID}"),
    ] {
        let documented = error_examples(operation(&doc, method, path), "400");
        for message in ["Invalid headers", "Reserved header name"] {
            assert!(
                documented.contains(message),
                "{method} {path}: {message:?} not in {documented:?}"
            );
        }
    }
}

#[test]
fn ordering_is_documented_on_both_bodies_and_in_the_webhook() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    for body in ["NewWebhook", "WebhookUpdate"] {
        let ordering = &schemas[body]["properties"]["ordering"];
        assert_eq!(ordering["type"], json!(["string", "null"]), "{body}");
        assert_eq!(ordering["enum"], json!(["fifo", null]), "{body}");
        let required = schemas[body]["required"].as_array().unwrap();
        assert!(!required.contains(&json!("ordering")), "{body}");
    }
    let shown = &schemas["Webhook"]["properties"]["ordering"];
    assert_eq!(shown["enum"], json!(["fifo"]));
    assert!(!schemas["Webhook"]["required"]
        .as_array()
        .unwrap()
        .contains(&json!("ordering")));
    for (method, path) in [
        ("post", "/webhooks/{groupID}"),
        ("put", "/webhooks/{groupID}/{webhookID}"),
    ] {
        let documented = error_examples(operation(&doc, method, path), "400");
        assert!(
            documented.contains("Invalid ordering"),
            "{method} {path}: not in {documented:?}"
        );
    }
}

#[test]
fn the_operator_endpoint_operations_document_their_body_answers_and_errors() {
    let doc = document();
    let path = "/admin/organizations/{orgID}/operator-endpoint";
    let set = operation(&doc, "put", path);
    assert_eq!(set["operationId"], "setOperatorEndpoint");
    for status in ["200", "201"] {
        let schema = &set["responses"][status]["content"]["application/json"]["schema"];
        let answer = resolve(&doc, schema["$ref"].as_str().unwrap());
        let keys: BTreeSet<&str> = answer["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["groupID", "webhookID", "url", "events", "secret"])
        );
        assert_eq!(
            answer["properties"]["events"]["items"]["enum"],
            json!([
                "webhook.disabled",
                "webhook.enabled",
                "delivery.failed",
                "secret.rotated"
            ])
        );
    }
    assert!(error_examples(set, "400").contains("Invalid events"));
    for method in ["get", "delete"] {
        let examples = error_examples(operation(&doc, method, path), "404");
        assert!(examples.contains("Operator endpoint not found"), "{method}");
        assert!(examples.contains("Organization not found"), "{method}");
    }
    // A webhook of an operations group shows its operational events.
    let webhook = &doc["components"]["schemas"]["Webhook"]["properties"]["enabledEvents"];
    assert_eq!(webhook["items"]["enum"].as_array().unwrap().len(), 6);
}
