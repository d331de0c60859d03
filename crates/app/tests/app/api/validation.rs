//! Control characters and other bad text in every field a client sends: a
//! clear 400 in the field's own words, and nothing stored, the same on both
//! backends (PostgreSQL `text` cannot hold NUL; SQLite would store it).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{assert_answer, assert_bad_request, on_both_backends, Receiver, TestApp};

on_both_backends!(
    webhook_urls_with_control_blank_or_credentials_are_refused_and_store_nothing,
    webhook_descriptions_with_control_characters_are_refused_and_store_nothing,
    descriptions_keep_tabs_and_line_breaks,
    organization_names_with_control_characters_are_refused_and_store_nothing,
    group_names_with_control_characters_are_refused_and_store_nothing,
    idempotency_keys_with_control_characters_are_refused_and_store_nothing,
    event_types_with_control_characters_are_unknown_and_store_nothing,
    nul_in_event_data_is_stored_and_delivered_as_sent,
    an_answer_with_nul_is_recorded_with_a_replacement_character,
);

const VALID: &str = "https://integration.example/webhook";
const WAIT: Duration = Duration::from_secs(10);

/// NUL, other C0 controls, DEL and C1 controls: refused by every field.
const CONTROLS: [&str; 6] = ["\u{0}", "\u{1}", "\u{1b}", "\u{b}", "\u{7f}", "\u{85}"];

/// Sends `body` as POST and as PUT to a webhook that exists; both must answer
/// 400 `message`, and nothing may change.
async fn refused_on_post_and_put(app: &TestApp, webhook: &Value, body: Value, message: &str) {
    let before = app.row_counts().await;
    let response = app
        .call(Method::POST, &app.group_path(""), Some(body.clone()))
        .await;
    assert_bad_request(response, message).await;
    let path = app.group_path(&format!("/{}", webhook["id"].as_str().unwrap()));
    let response = app.call(Method::PUT, &path, Some(body.clone())).await;
    assert_bad_request(response, message).await;
    assert_eq!(app.row_counts().await, before, "{body}");
    let mut unchanged = webhook.clone();
    unchanged.as_object_mut().unwrap().remove("secret");
    let listed = app.call(Method::GET, &app.group_path(""), None).await;
    assert_answer(listed, StatusCode::OK, json!([unchanged])).await;
}

async fn webhook_urls_with_control_blank_or_credentials_are_refused_and_store_nothing(
    app: TestApp,
) {
    let webhook = app.create_webhook(VALID, "keep me").await;
    let mut urls: Vec<String> = CONTROLS
        .iter()
        .map(|c| format!("https://integration.example/{c}"))
        .collect();
    urls.extend(
        [
            "http://127.0.0.1:19003/x\r\nX-Injected: 1",
            "https://integration.example/a b",
            "https://integration.example/\t",
            "https://integration.example/\u{2028}",
            "https://integration.example/\u{a0}",
            "https://integration.example/\u{200b}",
            "https://integration.ex\0ample/",
            "http://a.example:0/",
            "https://user:pass@integration.example/webhook",
            "https://user@integration.example/webhook",
        ]
        .map(str::to_owned),
    );
    for url in urls {
        let body = json!({"url": url, "description": "d"});
        refused_on_post_and_put(&app, &webhook, body, "Invalid URL").await;
    }
}

async fn webhook_descriptions_with_control_characters_are_refused_and_store_nothing(app: TestApp) {
    let webhook = app.create_webhook(VALID, "keep me").await;
    for c in CONTROLS.iter().chain(&["\u{9b}", "\u{1f}"]) {
        let body = json!({"url": VALID, "description": format!("d{c}")});
        refused_on_post_and_put(&app, &webhook, body, "Invalid description").await;
    }
}

async fn descriptions_keep_tabs_and_line_breaks(app: TestApp) {
    let description = "line 1\r\nline 2\n\tindented\u{2028}end";
    let created = app.create_webhook(VALID, description).await;
    assert_eq!(created["description"], description);
    let path = app.group_path(&format!("/{}", created["id"].as_str().unwrap()));
    assert_eq!(app.get_json(&path).await["description"], description);
}

async fn organization_names_with_control_characters_are_refused_and_store_nothing(app: TestApp) {
    let before = app.row_counts().await;
    let names = CONTROLS
        .iter()
        .map(|c| format!("Acme{c}"))
        .chain(["Acme\r\nInc".to_owned(), "Acme\u{2028}".to_owned()]);
    for name in names {
        let response = app
            .admin(
                Method::POST,
                "/admin/organizations",
                Some(json!({ "name": name })),
            )
            .await;
        assert_bad_request(response, "Invalid name").await;
    }
    assert_eq!(app.row_counts().await, before);
}

async fn group_names_with_control_characters_are_refused_and_store_nothing(app: TestApp) {
    let before = app.row_counts().await;
    let path = format!("/admin/organizations/{}/groups", app.tenant.organization_id);
    let names = CONTROLS
        .iter()
        .map(|c| format!("Production{c}"))
        .chain(["Production\n".to_owned(), "\tProduction".to_owned()]);
    for name in names {
        let response = app
            .admin(
                Method::POST,
                &path,
                Some(json!({ "name": name, "id": 777003 })),
            )
            .await;
        assert_bad_request(response, "Invalid name").await;
    }
    assert_eq!(app.row_counts().await, before);
    let response = app.call(Method::GET, "/webhooks/777003", None).await;
    assert_bad_request(response, "Group not found").await;
}

async fn idempotency_keys_with_control_characters_are_refused_and_store_nothing(app: TestApp) {
    let receiver = Receiver::start().await;
    app.create_webhook(&receiver.url("/ok"), "receiver").await;
    let before = app.row_counts().await;
    let keys = CONTROLS.iter().map(|c| format!("signup-1{c}")).chain([
        "signup-1\r\nX-Injected: 1".to_owned(),
        "k\u{2029}".to_owned(),
    ]);
    for key in keys {
        let response = app
            .publish(json!({
                "groupID": app.tenant.group_id,
                "type": "user.created",
                "data": {"n": 1},
                "idempotencyKey": key,
            }))
            .await;
        assert_bad_request(response, "Invalid idempotencyKey").await;
    }
    assert_eq!(app.row_counts().await, before);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty());
}

async fn event_types_with_control_characters_are_unknown_and_store_nothing(app: TestApp) {
    let receiver = Receiver::start().await;
    app.create_webhook(&receiver.url("/ok"), "receiver").await;
    let before = app.row_counts().await;
    for event_type in [
        "user.created\0",
        "user.created\n",
        "\0",
        "user.created\u{7f}",
    ] {
        let response = app
            .publish(json!({"groupID": app.tenant.group_id, "type": event_type}))
            .await;
        assert_bad_request(response, "Unknown event type").await;
    }
    assert_eq!(app.row_counts().await, before);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty());
}

async fn nul_in_event_data_is_stored_and_delivered_as_sent(app: TestApp) {
    let receiver = Receiver::start().await;
    let webhook = app.create_webhook(&receiver.url("/ok"), "receiver").await;
    let webhook = webhook["id"].as_str().unwrap();
    let data = json!({"nul\u{0}key": "a\u{0}b", "controls": "\u{1}\u{1f}\u{7f}\u{85}\u{2028}"});

    let published = app.publish_user_created(data.clone()).await;

    let got = receiver.wait_for(Some("/ok"), 1, WAIT).await;
    assert_eq!(got[0].json()["data"], data);
    assert_eq!(got[0].json()["id"], published["id"]);
    // JSON escapes, not raw control bytes, on the wire and in storage.
    assert!(
        got[0].body.contains(r#""nul\u0000key":"a\u0000b""#),
        "{}",
        got[0].body
    );
    let deliveries = app
        .wait_for_deliveries(webhook, |d| d.len() == 1 && d[0]["status"] == "succeeded")
        .await;
    let detail = app
        .get_json(&app.group_path(&format!(
            "/{webhook}/deliveries/{}",
            deliveries[0]["id"].as_str().unwrap()
        )))
        .await;
    assert_eq!(detail["payload"]["data"], data);
}

async fn an_answer_with_nul_is_recorded_with_a_replacement_character(app: TestApp) {
    let receiver = Receiver::start().await;
    let webhook = app.create_webhook(&receiver.url("/nul"), "receiver").await;
    let webhook = webhook["id"].as_str().unwrap();

    app.publish_user_created(json!({})).await;

    let deliveries = app
        .wait_for_deliveries(webhook, |d| d.len() == 1 && d[0]["status"] == "succeeded")
        .await;
    let detail = app
        .get_json(&app.group_path(&format!(
            "/{webhook}/deliveries/{}",
            deliveries[0]["id"].as_str().unwrap()
        )))
        .await;
    assert_eq!(detail["attempts"][0]["responseStatus"], 200);
    assert_eq!(detail["attempts"][0]["responseBody"], "ok\u{fffd}");
}
