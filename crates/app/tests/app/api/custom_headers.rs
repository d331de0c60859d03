//! A webhook's custom headers over HTTP: shown back masked, changed or
//! removed by `PUT`, refused with a clear 400 that changes nothing, and sent
//! with every attempt of every delivery.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{assert_answer, assert_bad_request, on_both_backends, Receiver, TestApp};

on_both_backends!(
    headers_are_shown_masked_by_create_get_list_and_update,
    put_without_headers_keeps_them_and_null_or_empty_removes_them,
    bad_headers_are_refused_and_change_nothing,
    headers_arrive_with_every_attempt_beside_ours,
);

const WAIT: Duration = Duration::from_secs(20);

fn body_with_headers(url: &str, headers: Value) -> Value {
    json!({"url": url, "description": "with headers", "headers": headers})
}

async fn create_with_headers(app: &TestApp, url: &str, headers: Value) -> Value {
    let response = app
        .call(
            Method::POST,
            &app.group_path(""),
            Some(body_with_headers(url, headers)),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn put(app: &TestApp, webhook: &str, body: Value) -> reqwest::Response {
    app.call(
        Method::PUT,
        &app.group_path(&format!("/{webhook}")),
        Some(body),
    )
    .await
}

async fn headers_are_shown_masked_by_create_get_list_and_update(app: TestApp) {
    let url = "https://integration.example/webhook";
    let created = create_with_headers(
        &app,
        url,
        // Values with a `-`, which no id, instant or other field of the list
        // holds: lowercase ids may contain "k3y" by chance.
        json!({"X-Api-Key": "k3y-value", "Authorization": "Bearer t0ken-value"}),
    )
    .await;
    let masked = json!({"Authorization": "****", "X-Api-Key": "****"});
    assert_eq!(created["headers"], masked);
    let id = created["id"].as_str().unwrap();

    let got = app.get_json(&app.group_path(&format!("/{id}"))).await;
    assert_eq!(got["headers"], masked);
    let listed = app.get_json(&app.group_path("")).await;
    assert_eq!(listed[0]["headers"], masked);
    let updated = put(&app, id, body_with_headers(url, json!({"X-Other": "v"}))).await;
    assert_answer(
        updated,
        StatusCode::OK,
        json!({
            "id": id,
            "description": "with headers",
            "object": "webhook_endpoint",
            "status": "enabled",
            "url": url,
            "enabledEvents": ["user.created", "user.session.result"],
            "headers": {"X-Other": "****"},
        }),
    )
    .await;
    let everything = app.get_json(&app.group_path("")).await.to_string();
    assert!(!everything.contains("k3y-value") && !everything.contains("t0ken-value"));
}

async fn put_without_headers_keeps_them_and_null_or_empty_removes_them(app: TestApp) {
    let url = "https://integration.example/webhook";
    for removal in [Value::Null, json!({})] {
        let created = create_with_headers(&app, url, json!({"X-Api-Key": "k"})).await;
        let id = created["id"].as_str().unwrap();
        let path = app.group_path(&format!("/{id}"));

        let kept = put(&app, id, json!({"url": url, "description": "d"})).await;
        assert_eq!(kept.status(), StatusCode::OK);
        assert_eq!(
            app.get_json(&path).await["headers"],
            json!({"X-Api-Key": "****"})
        );

        let removed: Value = put(&app, id, body_with_headers(url, removal.clone()))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(removed.get("headers"), None, "{removal}: {removed}");
        assert_eq!(app.get_json(&path).await.get("headers"), None);
    }
    // Created without headers, or with none: no key at all.
    for none in [Value::Null, json!({})] {
        let created = create_with_headers(&app, url, none).await;
        assert_eq!(created.get("headers"), None, "{created}");
    }
}

async fn bad_headers_are_refused_and_change_nothing(app: TestApp) {
    let url = "https://integration.example/webhook";
    let long = "v".repeat(1025);
    let too_many: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("X-{i}"), json!("v"))).collect();
    let cases = [
        (json!("X-Api-Key: k"), "Invalid headers"),
        (json!({"X-Api-Key": 5}), "Invalid headers"),
        (json!({"X Api Key": "k"}), "Invalid headers"),
        (json!({"X-Api-Key": "a\r\nInjected: 1"}), "Invalid headers"),
        (json!({"X-Api-Key": long}), "Invalid headers"),
        (Value::Object(too_many), "Invalid headers"),
        (
            json!({"Content-Type": "text/plain"}),
            "Reserved header name",
        ),
        (json!({"user-agent": "x"}), "Reserved header name"),
        (json!({"Host": "x"}), "Reserved header name"),
        (json!({"content-length": "1"}), "Reserved header name"),
        (json!({"Webhook-Signature": "v1,x"}), "Reserved header name"),
    ];
    let existing = create_with_headers(&app, url, json!({"X-Api-Key": "k"})).await;
    let id = existing["id"].as_str().unwrap();
    for (headers, message) in cases {
        let create = app
            .call(
                Method::POST,
                &app.group_path(""),
                Some(body_with_headers(url, headers.clone())),
            )
            .await;
        assert_bad_request(create, message).await;
        let mut update = body_with_headers("https://elsewhere.example/", headers);
        update["description"] = json!("changed");
        assert_bad_request(put(&app, id, update).await, message).await;
    }
    let mut unchanged = existing.clone();
    unchanged.as_object_mut().unwrap().remove("secret");
    assert_eq!(app.get_json(&app.group_path("")).await, json!([unchanged]));
    // The fields before `headers` answer first.
    let bad_url = json!({"url": "nope", "description": "d", "headers": {"Host": "x"}});
    let response = app
        .call(Method::POST, &app.group_path(""), Some(bad_url))
        .await;
    assert_bad_request(response, "Invalid URL").await;
    let bad_rate = json!({"url": url, "description": "d", "rateLimit": 0, "headers": 5});
    assert_bad_request(put(&app, id, bad_rate).await, "Invalid rateLimit").await;
}

async fn headers_arrive_with_every_attempt_beside_ours(app: TestApp) {
    let receiver = Receiver::start().await;
    let created = create_with_headers(
        &app,
        &receiver.url("/flaky/2"),
        json!({"X-Api-Key": "k3y", "Authorization": "Bearer t0ken"}),
    )
    .await;
    let published = app.publish_user_created(json!({})).await;

    let got = receiver.wait_for(Some("/flaky/2"), 3, WAIT).await;
    for request in &got {
        assert_eq!(request.header("x-api-key"), "k3y");
        assert_eq!(request.header("authorization"), "Bearer t0ken");
        assert_eq!(request.header("content-type"), "application/json");
        assert!(request.header("user-agent").starts_with("okaya-webhooks/"));
        assert_eq!(
            request.header("webhook-id"),
            published["id"].as_str().unwrap()
        );
    }
    let webhook = created["id"].as_str().unwrap();
    let deliveries = app
        .wait_for_deliveries(webhook, |d| d.len() == 1 && d[0]["status"] == "succeeded")
        .await;
    assert_eq!(deliveries[0]["attemptCount"], 3);
}
