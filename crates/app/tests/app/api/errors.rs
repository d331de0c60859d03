//! Every error of the seed, in the API's check order: key, `groupID`, `webhookID`, body, group, webhook.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{assert_answer, assert_bad_request, on_both_backends, TestApp};

on_both_backends!(
    every_call_without_a_key_is_unauthorized,
    an_unknown_key_is_unauthorized,
    the_key_is_checked_before_the_group_id,
    a_missing_group_id_is_reported,
    a_group_id_that_is_not_a_positive_i64_is_not_a_number,
    a_missing_webhook_id_is_reported_after_the_group_id,
    url_errors_are_reported_before_description_errors,
    description_errors_are_reported,
    bodies_that_are_not_json_objects_are_invalid_json_body,
    optional_fields_with_bad_values_are_reported,
    body_errors_come_before_the_group_lookup,
    an_unknown_group_is_group_not_found,
    an_unknown_or_malformed_webhook_is_webhook_not_found,
    a_webhook_of_another_group_is_not_found,
    failed_calls_change_nothing,
);

const VALID: &str = "https://integration.example/webhook";

async fn every_call_without_a_key_is_unauthorized(app: TestApp) {
    let id = app.create_webhook(VALID, "d").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"url": VALID, "description": "d"});
    for (method, path, body) in [
        (Method::GET, app.group_path(""), None),
        (Method::POST, app.group_path(""), Some(body.clone())),
        (Method::GET, app.group_path(&format!("/{id}")), None),
        (Method::PUT, app.group_path(&format!("/{id}")), Some(body)),
        (Method::DELETE, app.group_path(&format!("/{id}")), None),
    ] {
        let response = app.call_with_key(method, &path, body, None).await;
        assert_answer(
            response,
            StatusCode::UNAUTHORIZED,
            json!({"error": "Unauthorized"}),
        )
        .await;
    }
}

async fn an_unknown_key_is_unauthorized(app: TestApp) {
    for key in [
        "",
        "nope",
        "okw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let response = app
            .call_with_key(Method::GET, &app.group_path(""), None, Some(key))
            .await;
        assert_answer(
            response,
            StatusCode::UNAUTHORIZED,
            json!({"error": "Unauthorized"}),
        )
        .await;
    }
}

async fn the_key_is_checked_before_the_group_id(app: TestApp) {
    let response = app
        .call_with_key(Method::GET, "/webhooks/abc", None, Some("wrong"))
        .await;
    assert_answer(
        response,
        StatusCode::UNAUTHORIZED,
        json!({"error": "Unauthorized"}),
    )
    .await;
}

async fn a_missing_group_id_is_reported(app: TestApp) {
    for (method, path) in [
        (Method::GET, "/webhooks"),
        (Method::GET, "/webhooks/"),
        (Method::POST, "/webhooks"),
        (Method::PUT, "/webhooks/"),
        (Method::DELETE, "/webhooks//we_abcdefghijklmnopqrstuvwxyz"),
    ] {
        let response = app.call(method, path, None).await;
        assert_bad_request(response, "You are missing the path parameter groupID").await;
    }
}

async fn a_group_id_that_is_not_a_positive_i64_is_not_a_number(app: TestApp) {
    for group in [
        "abc",
        "0",
        "-1",
        "1.5",
        "12a",
        "9223372036854775808",
        "%20",
        "+1",
    ] {
        for method in [Method::GET, Method::POST] {
            let response = app
                .call(method, &format!("/webhooks/{group}"), Some(json!({})))
                .await;
            assert_bad_request(response, "groupID must be a number").await;
        }
        let response = app
            .call(Method::DELETE, &format!("/webhooks/{group}/we_x"), None)
            .await;
        assert_bad_request(response, "groupID must be a number").await;
    }
    let response = app
        .call(Method::GET, "/webhooks/9223372036854775807", None)
        .await;
    assert_bad_request(response, "Group not found").await;
}

async fn a_missing_webhook_id_is_reported_after_the_group_id(app: TestApp) {
    let body = json!({"url": VALID, "description": "d"});
    for (method, path) in [
        (Method::PUT, app.group_path("")),
        (Method::PUT, app.group_path("/")),
        (Method::DELETE, app.group_path("")),
        (Method::DELETE, app.group_path("/")),
        // The group is checked for existence only after the path and body.
        (Method::PUT, "/webhooks/424242".to_owned()),
    ] {
        let response = app.call(method, &path, Some(body.clone())).await;
        assert_bad_request(response, "You are missing the path parameter webhookID").await;
    }
    let response = app.call(Method::PUT, "/webhooks/x1", Some(body)).await;
    assert_bad_request(response, "groupID must be a number").await;
}

async fn post_and_put(app: &TestApp, body: Value, message: &str) {
    let id = app.create_webhook(VALID, "d").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .call(Method::POST, &app.group_path(""), Some(body.clone()))
        .await;
    assert_bad_request(response, message).await;
    let response = app
        .call(Method::PUT, &app.group_path(&format!("/{id}")), Some(body))
        .await;
    assert_bad_request(response, message).await;
}

async fn url_errors_are_reported_before_description_errors(app: TestApp) {
    let long = format!("https://integration.example/{}", "a".repeat(2048));
    let cases = [
        (json!({}), "You are missing the body parameter url"),
        (
            json!({"description": 1}),
            "You are missing the body parameter url",
        ),
        (
            json!({"url": null, "description": "d"}),
            "url must be a string",
        ),
        (json!({"url": 5}), "url must be a string"),
        (
            json!({"url": ["https://a.example"]}),
            "url must be a string",
        ),
        (
            json!({"url": "not a url", "description": "d"}),
            "Invalid URL",
        ),
        (
            json!({"url": "ftp://integration.example/", "description": "d"}),
            "Invalid URL",
        ),
        (
            json!({"url": "/relative", "description": "d"}),
            "Invalid URL",
        ),
        (
            json!({"url": "https://", "description": "d"}),
            "Invalid URL",
        ),
        (json!({"url": long, "description": "d"}), "Invalid URL"),
    ];
    for (body, message) in cases {
        post_and_put(&app, body, message).await;
    }
}

async fn description_errors_are_reported(app: TestApp) {
    let cases = [
        (
            json!({"url": VALID}),
            "You are missing the body parameter description",
        ),
        (
            json!({"url": VALID, "description": null}),
            "description must be a string",
        ),
        (
            json!({"url": VALID, "description": 7}),
            "description must be a string",
        ),
        (
            json!({"url": VALID, "description": {"a": 1}}),
            "description must be a string",
        ),
        (
            json!({"url": VALID, "description": "x".repeat(1025)}),
            "Invalid description",
        ),
    ];
    for (body, message) in cases {
        post_and_put(&app, body, message).await;
    }
}

async fn bodies_that_are_not_json_objects_are_invalid_json_body(app: TestApp) {
    let id = app.create_webhook(VALID, "d").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for body in ["", "not json", "[]", "null", "\"text\"", "{\"url\": ", "42"] {
        let response = app.call_raw(Method::POST, &app.group_path(""), body).await;
        assert_bad_request(response, "Invalid JSON body").await;
        let response = app
            .call_raw(Method::PUT, &app.group_path(&format!("/{id}")), body)
            .await;
        assert_bad_request(response, "Invalid JSON body").await;
    }
}

async fn optional_fields_with_bad_values_are_reported(app: TestApp) {
    let id = app.create_webhook(VALID, "d").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = app.group_path(&format!("/{id}"));
    for events in [
        json!([]),
        json!(["user.deleted"]),
        json!("user.created"),
        json!(null),
    ] {
        let body = json!({"url": VALID, "description": "d", "enabledEvents": events});
        post_and_put(&app, body, "Invalid enabledEvents").await;
    }
    for status in [json!("paused"), json!(null), json!(1)] {
        let body = json!({"url": VALID, "description": "d", "status": status});
        let response = app.call(Method::PUT, &path, Some(body)).await;
        assert_bad_request(response, "Invalid status").await;
    }
    for limit in [json!(0), json!(-3), json!(2.5), json!("10")] {
        let body = json!({"url": VALID, "description": "d", "rateLimit": limit});
        let response = app.call(Method::PUT, &path, Some(body)).await;
        assert_bad_request(response, "Invalid rateLimit").await;
    }
}

async fn body_errors_come_before_the_group_lookup(app: TestApp) {
    let response = app
        .call(
            Method::POST,
            "/webhooks/424242",
            Some(json!({"description": "d"})),
        )
        .await;
    assert_bad_request(response, "You are missing the body parameter url").await;
    let response = app
        .call(
            Method::PUT,
            "/webhooks/424242/we_abcdefghijklmnopqrstuvwxyz",
            Some(json!({"url": VALID})),
        )
        .await;
    assert_bad_request(response, "You are missing the body parameter description").await;
}

async fn an_unknown_group_is_group_not_found(app: TestApp) {
    let body = json!({"url": VALID, "description": "d"});
    let id = "we_abcdefghijklmnopqrstuvwxyz";
    for (method, path, body) in [
        (Method::GET, "/webhooks/424242".to_owned(), None),
        (
            Method::POST,
            "/webhooks/424242".to_owned(),
            Some(body.clone()),
        ),
        (Method::GET, format!("/webhooks/424242/{id}"), None),
        (Method::PUT, format!("/webhooks/424242/{id}"), Some(body)),
        (Method::DELETE, format!("/webhooks/424242/{id}"), None),
    ] {
        let response = app.call(method, &path, body).await;
        assert_bad_request(response, "Group not found").await;
    }
}

async fn an_unknown_or_malformed_webhook_is_webhook_not_found(app: TestApp) {
    let body = json!({"url": VALID, "description": "d"});
    for id in [
        "we_abcdefghijklmnopqrstuvwxyz",
        "nope",
        "WE_ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    ] {
        let path = app.group_path(&format!("/{id}"));
        for (method, body) in [
            (Method::GET, None),
            (Method::PUT, Some(body.clone())),
            (Method::DELETE, None),
        ] {
            let response = app.call(method, &path, body).await;
            assert_bad_request(response, "Webhook not found").await;
        }
    }
}

async fn a_webhook_of_another_group_is_not_found(app: TestApp) {
    let id = app.create_webhook(VALID, "d").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_group = app
        .admin(
            Method::POST,
            &format!("/admin/organizations/{}/groups", app.tenant.organization_id),
            Some(json!({"name": "Staging"})),
        )
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let path = format!("/webhooks/{other_group}/{id}");
    let response = app.call(Method::GET, &path, None).await;
    assert_bad_request(response, "Webhook not found").await;
    let response = app.call(Method::DELETE, &path, None).await;
    assert_bad_request(response, "Webhook not found").await;
    let listed = app
        .call(Method::GET, &format!("/webhooks/{other_group}"), None)
        .await;
    assert_answer(listed, StatusCode::OK, json!([])).await;
}

async fn failed_calls_change_nothing(app: TestApp) {
    let created = app.create_webhook(VALID, "keep me").await;
    let id = created["id"].as_str().unwrap();
    let path = app.group_path(&format!("/{id}"));
    let bad =
        json!({"url": "https://integration.example/new", "description": "new", "status": "paused"});
    let response = app.call(Method::PUT, &path, Some(bad)).await;
    assert_bad_request(response, "Invalid status").await;
    let response = app
        .call(
            Method::POST,
            &app.group_path(""),
            Some(json!({"url": "nope", "description": "x"})),
        )
        .await;
    assert_bad_request(response, "Invalid URL").await;
    let listed: Vec<Value> = app
        .call(Method::GET, &app.group_path(""), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["description"], "keep me");
    assert_eq!(listed[0]["url"], VALID);
}
