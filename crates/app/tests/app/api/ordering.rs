//! A webhook's ordering over HTTP: `fifo` shown back only while set, kept or
//! removed by `PUT`, anything else refused with a clear 400 that changes
//! nothing.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{assert_answer, assert_bad_request, on_both_backends, TestApp};

on_both_backends!(
    ordering_is_shown_by_create_get_list_and_update_only_while_set,
    put_without_ordering_keeps_it_and_null_removes_it,
    bad_orderings_are_refused_and_change_nothing,
);

const URL: &str = "https://integration.example/webhook";

fn body_with_ordering(ordering: Value) -> Value {
    json!({"url": URL, "description": "ordered", "ordering": ordering})
}

async fn create(app: &TestApp, body: Value) -> Value {
    let response = app
        .call(Method::POST, &app.group_path(""), Some(body))
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

async fn ordering_is_shown_by_create_get_list_and_update_only_while_set(app: TestApp) {
    let created = create(&app, body_with_ordering(json!("fifo"))).await;
    assert_eq!(created["ordering"], "fifo");
    let id = created["id"].as_str().unwrap();
    let got = app.get_json(&app.group_path(&format!("/{id}"))).await;
    assert_eq!(got["ordering"], "fifo");
    let listed = app.get_json(&app.group_path("")).await;
    assert_eq!(listed[0]["ordering"], "fifo");
    assert_answer(
        put(&app, id, body_with_ordering(json!("fifo"))).await,
        StatusCode::OK,
        json!({
            "id": id,
            "description": "ordered",
            "object": "webhook_endpoint",
            "status": "enabled",
            "url": URL,
            "enabledEvents": ["user.created", "user.session.result"],
            "ordering": "fifo",
        }),
    )
    .await;
    // Without it, or with null: no key at all.
    for none in [
        json!({"url": URL, "description": "d"}),
        body_with_ordering(Value::Null),
    ] {
        let created = create(&app, none).await;
        assert_eq!(created.get("ordering"), None, "{created}");
    }
}

async fn put_without_ordering_keeps_it_and_null_removes_it(app: TestApp) {
    let created = create(&app, body_with_ordering(json!("fifo"))).await;
    let id = created["id"].as_str().unwrap();
    let path = app.group_path(&format!("/{id}"));

    let kept = put(&app, id, json!({"url": URL, "description": "d"})).await;
    assert_eq!(kept.status(), StatusCode::OK);
    assert_eq!(app.get_json(&path).await["ordering"], "fifo");

    let removed: Value = put(&app, id, body_with_ordering(Value::Null))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(removed.get("ordering"), None, "{removed}");
    assert_eq!(app.get_json(&path).await.get("ordering"), None);
}

async fn bad_orderings_are_refused_and_change_nothing(app: TestApp) {
    let existing = create(&app, body_with_ordering(json!("fifo"))).await;
    let id = existing["id"].as_str().unwrap();
    for bad in [
        json!("none"),
        json!("FIFO"),
        json!("lifo"),
        json!(""),
        json!(1),
        json!(true),
        json!(["fifo"]),
    ] {
        let create = app
            .call(
                Method::POST,
                &app.group_path(""),
                Some(body_with_ordering(bad.clone())),
            )
            .await;
        assert_bad_request(create, "Invalid ordering").await;
        let mut update = body_with_ordering(bad);
        update["url"] = json!("https://elsewhere.example/");
        assert_bad_request(put(&app, id, update).await, "Invalid ordering").await;
    }
    let mut unchanged = existing.clone();
    unchanged.as_object_mut().unwrap().remove("secret");
    assert_eq!(app.get_json(&app.group_path("")).await, json!([unchanged]));
    // The fields before `ordering` answer first.
    let bad_rate = json!({"url": URL, "description": "d", "rateLimit": 0, "ordering": 5});
    assert_bad_request(put(&app, id, bad_rate).await, "Invalid rateLimit").await;
}
