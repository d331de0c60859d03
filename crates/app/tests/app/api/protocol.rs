//! HTTP-level behaviour: content types, sizes, unknown routes and methods, health.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{assert_answer, assert_bad_request, on_both_backends, TestApp};

on_both_backends!(
    a_json_body_sent_as_text_plain_is_accepted,
    a_json_body_without_content_type_is_accepted,
    a_body_over_64_kib_is_413_json,
    an_unknown_route_is_404_json,
    a_method_no_route_takes_is_405_json,
    health_and_readiness_answer_200,
);

async fn a_json_body_sent_as_text_plain_is_accepted(app: TestApp) {
    let response = app
        .client
        .post(app.url(&app.group_path("")))
        .header("x-api-key", &app.tenant.api_key)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(
            r#"{"url":"https://integration.example/webhook","description":"Webhook Description"}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["url"], "https://integration.example/webhook");
}

async fn a_json_body_without_content_type_is_accepted(app: TestApp) {
    let response = app
        .call_raw(
            Method::POST,
            &app.group_path(""),
            r#"{"url":"https://integration.example/webhook","description":""}"#,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["description"], "");
}

async fn a_body_over_64_kib_is_413_json(app: TestApp) {
    let padding = "x".repeat(70 * 1024);
    let body =
        format!(r#"{{"url":"https://integration.example/","description":"","pad":"{padding}"}}"#);
    let response = app.call_raw(Method::POST, &app.group_path(""), body).await;
    assert_answer(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        json!({"error": "Payload too large"}),
    )
    .await;
    let listed = app.call(Method::GET, &app.group_path(""), None).await;
    assert_answer(listed, StatusCode::OK, json!([])).await;
    // Just under the limit is fine.
    let padding = "x".repeat(60 * 1024);
    let body =
        format!(r#"{{"url":"https://integration.example/","description":"","pad":"{padding}"}}"#);
    let response = app.call_raw(Method::POST, &app.group_path(""), body).await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn an_unknown_route_is_404_json(app: TestApp) {
    for path in ["/", "/nope", "/webhooks/1/we_x/unknown/deeper"] {
        let response = app.call(Method::GET, path, None).await;
        assert_answer(
            response,
            StatusCode::NOT_FOUND,
            json!({"error": "Not found"}),
        )
        .await;
    }
}

async fn a_method_no_route_takes_is_405_json(app: TestApp) {
    for (method, path) in [
        (Method::PATCH, app.group_path("")),
        (
            Method::PATCH,
            app.group_path("/we_abcdefghijklmnopqrstuvwxyz"),
        ),
        (
            Method::POST,
            app.group_path("/we_abcdefghijklmnopqrstuvwxyz"),
        ),
        (Method::PATCH, "/webhooks".to_owned()),
    ] {
        let response = app.call(method, &path, None).await;
        assert_answer(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "Method not allowed"}),
        )
        .await;
    }
}

async fn health_and_readiness_answer_200(app: TestApp) {
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_answer(health, StatusCode::OK, json!({"status": "ok"})).await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_answer(ready, StatusCode::OK, json!({"status": "ready"})).await;
    let _ = assert_bad_request;
}
