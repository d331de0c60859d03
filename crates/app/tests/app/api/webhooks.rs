//! The seed's four calls and the single-webhook read, on the happy path.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{assert_answer, on_both_backends, TestApp};

on_both_backends!(
    a_new_group_lists_no_webhooks,
    create_answers_the_seed_shape_with_a_secret,
    list_shows_webhooks_oldest_first_without_secrets,
    get_one_answers_the_webhook,
    update_changes_url_and_description,
    delete_answers_success_and_removes_the_webhook,
    enabled_events_status_and_rate_limit_round_trip,
    unicode_descriptions_round_trip,
    a_list_shows_this_processs_changes_at_once_and_anothers_once_it_expires,
);

fn is_webhook_id(id: &str) -> bool {
    id.len() == 29
        && id.starts_with("we_")
        && id[3..]
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

async fn a_new_group_lists_no_webhooks(app: TestApp) {
    let response = app.call(Method::GET, &app.group_path(""), None).await;
    assert_answer(response, StatusCode::OK, json!([])).await;
}

async fn create_answers_the_seed_shape_with_a_secret(app: TestApp) {
    let created = app
        .create_webhook("https://integration.example/webhook", "Webhook Description")
        .await;
    let id = created["id"].as_str().unwrap();
    assert!(is_webhook_id(id), "{id}");
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(
        created,
        json!({
            "id": id,
            "description": "Webhook Description",
            "object": "webhook_endpoint",
            "status": "enabled",
            "url": "https://integration.example/webhook",
            "enabledEvents": ["user.created", "user.session.result"],
            "secret": secret,
        })
    );
}

async fn list_shows_webhooks_oldest_first_without_secrets(app: TestApp) {
    let mut ids = Vec::new();
    for n in 0..3 {
        let created = app
            .create_webhook(
                &format!("https://integration.example/{n}"),
                &format!("hook {n}"),
            )
            .await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let response = app.call(Method::GET, &app.group_path(""), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let listed: Vec<Value> = response.json().await.unwrap();
    let listed_ids: Vec<&str> = listed.iter().map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(listed_ids, ids);
    assert_eq!(
        listed[0],
        json!({
            "id": ids[0],
            "description": "hook 0",
            "object": "webhook_endpoint",
            "status": "enabled",
            "url": "https://integration.example/0",
            "enabledEvents": ["user.created", "user.session.result"],
        })
    );
}

async fn get_one_answers_the_webhook(app: TestApp) {
    let created = app
        .create_webhook("https://integration.example/a", "A")
        .await;
    let id = created["id"].as_str().unwrap();
    let response = app
        .call(Method::GET, &app.group_path(&format!("/{id}")), None)
        .await;
    let mut expected = created.clone();
    expected.as_object_mut().unwrap().remove("secret");
    assert_answer(response, StatusCode::OK, expected).await;
}

async fn update_changes_url_and_description(app: TestApp) {
    let created = app
        .create_webhook("https://integration.example/webhook", "Webhook Description")
        .await;
    let id = created["id"].as_str().unwrap();
    let body = json!({
        "url": "https://integration.example/newWebhook",
        "description": "New Webhook Description",
    });
    let response = app
        .call(Method::PUT, &app.group_path(&format!("/{id}")), Some(body))
        .await;
    let expected = json!({
        "id": id,
        "description": "New Webhook Description",
        "object": "webhook_endpoint",
        "status": "enabled",
        "url": "https://integration.example/newWebhook",
        "enabledEvents": ["user.created", "user.session.result"],
    });
    assert_answer(response, StatusCode::OK, expected.clone()).await;
    let listed = app.call(Method::GET, &app.group_path(""), None).await;
    assert_answer(listed, StatusCode::OK, json!([expected])).await;
}

async fn delete_answers_success_and_removes_the_webhook(app: TestApp) {
    let created = app
        .create_webhook("https://integration.example/a", "A")
        .await;
    let id = created["id"].as_str().unwrap();
    let path = app.group_path(&format!("/{id}"));
    let response = app.call(Method::DELETE, &path, None).await;
    assert_answer(response, StatusCode::OK, json!({ "message": "success" })).await;
    let again = app.call(Method::DELETE, &path, None).await;
    assert_answer(
        again,
        StatusCode::BAD_REQUEST,
        json!({ "error": "Webhook not found" }),
    )
    .await;
    let listed = app.call(Method::GET, &app.group_path(""), None).await;
    assert_answer(listed, StatusCode::OK, json!([])).await;
}

async fn enabled_events_status_and_rate_limit_round_trip(app: TestApp) {
    let response = app
        .call(
            Method::POST,
            &app.group_path(""),
            Some(json!({
                "url": "https://integration.example/a",
                "description": "only users",
                "enabledEvents": ["user.created"],
            })),
        )
        .await;
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["enabledEvents"], json!(["user.created"]));
    let path = app.group_path(&format!("/{}", created["id"].as_str().unwrap()));

    let limited = app
        .call(
            Method::PUT,
            &path,
            Some(json!({
                "url": "https://integration.example/a",
                "description": "only users",
                "status": "disabled",
                "rateLimit": 25,
            })),
        )
        .await;
    let limited: Value = limited.json().await.unwrap();
    assert_eq!(limited["status"], "disabled");
    assert_eq!(limited["rateLimit"], 25);
    assert_eq!(limited["enabledEvents"], json!(["user.created"]));

    let cleared = app
        .call(
            Method::PUT,
            &path,
            Some(json!({
                "url": "https://integration.example/a",
                "description": "only users",
                "rateLimit": null,
                "enabledEvents": ["user.session.result", "user.created"],
            })),
        )
        .await;
    let cleared: Value = cleared.json().await.unwrap();
    assert!(cleared.get("rateLimit").is_none(), "{cleared}");
    assert_eq!(cleared["status"], "disabled");
    assert_eq!(
        cleared["enabledEvents"],
        json!(["user.created", "user.session.result"])
    );
    let read: Value = app
        .call(Method::GET, &path, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read, cleared);
}

async fn unicode_descriptions_round_trip(app: TestApp) {
    let description = "Événements 🚀 用户创建 — ok";
    let created = app
        .create_webhook("https://integration.example/ü", description)
        .await;
    assert_eq!(created["description"], description);
    let listed: Value = app
        .call(Method::GET, &app.group_path(""), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["description"], description);
    assert_eq!(listed[0]["url"], "https://integration.example/ü");
    let longest = "é".repeat(1024);
    let created = app
        .create_webhook("https://integration.example/", &longest)
        .await;
    assert_eq!(created["description"], longest.as_str());
}

/// Two API processes on one database, each keeping the group's list for
/// 100 ms: the one that made a change lists it at once; the other once its
/// list expires (the test allows 2 s, for a slow machine).
async fn a_list_shows_this_processs_changes_at_once_and_anothers_once_it_expires(app: TestApp) {
    let other = app.beside().await;
    let list = |base: String| {
        let request = app
            .client
            .get(format!("{base}{}", app.group_path("")))
            .header("x-api-key", &app.tenant.api_key)
            .send();
        async move {
            let listed: Vec<Value> = request.await.unwrap().json().await.unwrap();
            listed.len()
        }
    };
    // Both processes have read the empty list, so both keep it.
    assert_eq!(list(app.address.clone()).await, 0);
    assert_eq!(list(other.clone()).await, 0);

    let created = app
        .client
        .post(format!("{other}{}", app.group_path("")))
        .header("x-api-key", &app.tenant.api_key)
        .json(&json!({"url": "https://integration.example/hook", "description": "d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::OK);
    let made = std::time::Instant::now();
    assert_eq!(list(other).await, 1, "the process that made it, at once");

    while list(app.address.clone()).await == 0 {
        assert!(
            made.elapsed() < std::time::Duration::from_secs(2),
            "the other process never showed it"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
