//! Operational events against the running binary: the operator endpoint set
//! through the admin API, and what it is told, signed, about the
//! organization's webhooks.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{
    assert_answer, assert_bad_request, on_both_backends, Received, Receiver, TestApp,
};

on_both_backends!(
    the_operator_endpoint_is_set_shown_and_removed_through_the_admin_api,
    a_receiver_answering_410_gets_its_webhook_disabled_and_the_operator_told_signed,
    owner_status_changes_and_a_secret_rotation_are_told_as_manual,
    a_delivery_failed_for_good_is_told_and_counted,
    nobody_else_may_use_the_operational_event_types,
);

const WITHIN: Duration = Duration::from_secs(20);

fn operator_endpoint_path(app: &TestApp) -> String {
    format!(
        "/admin/organizations/{}/operator-endpoint",
        app.tenant.organization_id
    )
}

/// Points our organization's operator endpoint at `url`; answers the PUT's JSON.
async fn set_operator_endpoint(app: &TestApp, url: &str) -> Value {
    let response = app
        .admin(
            Method::PUT,
            &operator_endpoint_path(app),
            Some(json!({ "url": url })),
        )
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

/// Asserts the request carries a valid Standard Webhooks signature by `secret`.
fn assert_signed(received: &Received, secret: &str) {
    assert!(
        received.verifies(secret),
        "not signed by the secret: {received:?}"
    );
}

/// The `(type, data.reason)` of each request received, in order.
fn types_and_reasons(received: &[Received]) -> Vec<(String, String)> {
    received
        .iter()
        .map(Received::json)
        .map(|body| {
            let reason = body["data"]["reason"].as_str().unwrap_or_default();
            (body["type"].as_str().unwrap().to_owned(), reason.to_owned())
        })
        .collect()
}

async fn the_operator_endpoint_is_set_shown_and_removed_through_the_admin_api(app: TestApp) {
    let path = operator_endpoint_path(&app);
    let created = app
        .admin(
            Method::PUT,
            &path,
            Some(json!({"url": "https://ops.example/a", "events": ["webhook.disabled"]})),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["events"], json!(["webhook.disabled"]));
    let (group, webhook) = (created["groupID"].clone(), created["webhookID"].clone());

    let changed = app
        .admin(
            Method::PUT,
            &path,
            Some(json!({"url": "https://ops.example/b"})),
        )
        .await;
    let expected = json!({
        "groupID": group, "webhookID": webhook, "url": "https://ops.example/b",
        "events": ["webhook.disabled", "webhook.enabled", "delivery.failed", "secret.rotated"],
    });
    let mut with_secret = expected.clone();
    with_secret["secret"] = created["secret"].clone();
    assert_answer(changed, StatusCode::OK, with_secret).await;
    assert_answer(
        app.admin(Method::GET, &path, None).await,
        StatusCode::OK,
        expected,
    )
    .await;

    // The organization's API keys reach it like any webhook of theirs.
    let shown = app
        .get_json(&format!("/webhooks/{group}/{}", webhook.as_str().unwrap()))
        .await;
    assert_eq!(shown["url"], "https://ops.example/b");

    let removed = app.admin(Method::DELETE, &path, None).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    for method in [Method::GET, Method::DELETE] {
        assert_answer(
            app.admin(method, &path, None).await,
            StatusCode::NOT_FOUND,
            json!({"error": "Operator endpoint not found"}),
        )
        .await;
    }
    let again: Value = app
        .admin(
            Method::PUT,
            &path,
            Some(json!({"url": "https://ops.example/c"})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["groupID"], group, "the operations group stays");
}

async fn a_receiver_answering_410_gets_its_webhook_disabled_and_the_operator_told_signed(
    app: TestApp,
) {
    let receivers = Receiver::start().await;
    let operator = set_operator_endpoint(&app, &receivers.url("/ok/operator")).await;
    let webhook = app.create_webhook(&receivers.url("/gone"), "leaving").await;
    app.publish_user_created(json!({"userID": "u_1"})).await;

    let mut told = receivers.wait_for(Some("/ok/operator"), 2, WITHIN).await;

    // Each is its own delivery: they may arrive in any order.
    told.sort_by_key(|received| received.json()["type"].to_string());
    assert_eq!(
        types_and_reasons(&told),
        [
            ("delivery.failed".to_owned(), String::new()),
            ("webhook.disabled".to_owned(), "gone".to_owned()),
        ]
    );
    for received in &told {
        assert_signed(received, operator["secret"].as_str().unwrap());
    }
    let disabled = told[1].json();
    assert_eq!(disabled["groupID"], operator["groupID"]);
    assert_eq!(
        disabled["data"],
        json!({"groupID": app.tenant.group_id, "webhookID": webhook["id"],
               "url": webhook["url"], "reason": "gone"})
    );
    let shown = app
        .get_json(&app.group_path(&format!("/{}", webhook["id"].as_str().unwrap())))
        .await;
    assert_eq!(shown["status"], "disabled");
}

async fn owner_status_changes_and_a_secret_rotation_are_told_as_manual(app: TestApp) {
    let receivers = Receiver::start().await;
    set_operator_endpoint(&app, &receivers.url("/ok/operator")).await;
    let webhook = app
        .create_webhook("https://integration.example/a", "a")
        .await;
    let path = app.group_path(&format!("/{}", webhook["id"].as_str().unwrap()));
    for status in ["disabled", "enabled"] {
        let body = json!({"url": webhook["url"], "description": "a", "status": status});
        let response = app.call(Method::PUT, &path, Some(body)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let rotated = app
        .call(Method::POST, &format!("{path}/secret/rotate"), None)
        .await;
    assert!(rotated.status().is_success(), "{}", rotated.status());

    let told = receivers.wait_for(Some("/ok/operator"), 3, WITHIN).await;

    let mut said = types_and_reasons(&told);
    // Each is its own delivery: they may arrive in any order.
    said.sort();
    assert_eq!(
        said,
        [
            ("secret.rotated".to_owned(), String::new()),
            ("webhook.disabled".to_owned(), "manual".to_owned()),
            ("webhook.enabled".to_owned(), "manual".to_owned()),
        ]
    );
}

async fn a_delivery_failed_for_good_is_told_and_counted(app: TestApp) {
    let receivers = Receiver::start().await;
    set_operator_endpoint(&app, &receivers.url("/ok/operator")).await;
    app.create_webhook(&receivers.url("/fail"), "failing").await;
    let published = app.publish_user_created(json!({"userID": "u_1"})).await;

    let told = receivers.wait_for(Some("/ok/operator"), 1, WITHIN).await;

    let failed = told[0].json();
    assert_eq!(failed["type"], "delivery.failed");
    assert_eq!(failed["data"]["eventID"], published["id"]);
    assert_eq!(failed["data"]["eventType"], "user.created");
    assert_eq!(failed["data"]["attempts"], 3);
    assert_eq!(failed["data"]["lastStatus"], 500);
    assert_eq!(
        app.metric(r#"webhooks_operational_events_total{type="delivery.failed"}"#)
            .await,
        1.0
    );
}

async fn nobody_else_may_use_the_operational_event_types(app: TestApp) {
    let body = json!({"url": "https://integration.example/a", "description": "a",
                      "enabledEvents": ["webhook.disabled"]});
    let refused = app
        .call(Method::POST, &app.group_path(""), Some(body))
        .await;
    assert_bad_request(refused, "Invalid enabledEvents").await;
    let forged = app
        .publish(json!({"groupID": app.tenant.group_id, "type": "webhook.disabled", "data": {}}))
        .await;
    assert_bad_request(forged, "Unknown event type").await;
    let bad_events = app
        .admin(
            Method::PUT,
            &operator_endpoint_path(&app),
            Some(json!({"url": "https://ops.example/", "events": ["user.created"]})),
        )
        .await;
    assert_bad_request(bad_events, "Invalid events").await;
    let unknown = app
        .admin(
            Method::GET,
            "/admin/organizations/org_01hzy3k4m5n6p7q8r9s0t1v2w3/operator-endpoint",
            None,
        )
        .await;
    assert_answer(
        unknown,
        StatusCode::NOT_FOUND,
        json!({"error": "Organization not found"}),
    )
    .await;
}
