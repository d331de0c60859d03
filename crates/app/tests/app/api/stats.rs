//! `GET /webhooks/{groupID}/{webhookID}/stats`: a webhook's deliveries and
//! attempts over a window, and the errors of the window and of the path.

use chrono::{DateTime, Duration as Days};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{assert_answer, assert_bad_request, on_both_backends, Receiver, TestApp};

on_both_backends!(
    stats_count_the_deliveries_and_attempts_of_the_last_day,
    stats_of_a_quiet_window_are_zeros_and_nulls,
    stats_windows_that_break_a_rule_are_refused_before_the_path,
    stats_need_the_key_the_group_and_the_webhook,
);

const VALID: &str = "https://integration.example/webhook";

async fn webhook_to(app: &TestApp, url: &str) -> String {
    app.create_webhook(url, "receiver").await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn millis(at: &Value) -> i64 {
    DateTime::parse_from_rfc3339(at.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

async fn stats_count_the_deliveries_and_attempts_of_the_last_day(app: TestApp) {
    let receiver = Receiver::start().await;
    // Fails its first three requests: the first delivery's whole schedule.
    let webhook = webhook_to(&app, &receiver.url("/flaky/3")).await;
    app.publish_user_created(json!({"n": 1})).await;
    app.wait_for_deliveries(&webhook, |d| d.len() == 1 && d[0]["status"] == "failed")
        .await;
    app.publish_user_created(json!({"n": 2})).await;
    app.wait_for_deliveries(&webhook, |d| d.len() == 2 && d[0]["status"] == "succeeded")
        .await;

    let stats = app
        .get_json(&app.group_path(&format!("/{webhook}/stats")))
        .await;

    assert_eq!(stats["webhookID"], json!(webhook));
    assert_eq!(
        stats["deliveries"],
        json!({"pending": 0, "succeeded": 1, "failed": 1, "total": 2})
    );
    assert_eq!(stats["successRate"], json!(0.5));
    assert_eq!(stats["attempts"], json!(4));
    let (p50, p99) = (&stats["latencyMs"]["p50"], &stats["latencyMs"]["p99"]);
    assert!(p50.as_i64().unwrap() <= p99.as_i64().unwrap(), "{stats}");
    assert!(millis(&stats["lastFailureAt"]) <= millis(&stats["lastSuccessAt"]));
    let day = Days::hours(24).num_milliseconds();
    assert_eq!(millis(&stats["until"]) - millis(&stats["since"]), day);
    assert!(millis(&stats["lastSuccessAt"]) <= millis(&stats["until"]) + 1_000);
}

async fn stats_of_a_quiet_window_are_zeros_and_nulls(app: TestApp) {
    let webhook = webhook_to(&app, VALID).await;
    let path = app.group_path(&format!("/{webhook}/stats"));
    let quiet = json!({
        "webhookID": webhook,
        "since": "2025-06-01T00:00:00.000Z",
        "until": "2025-06-02T00:00:00.000Z",
        "deliveries": {"pending": 0, "succeeded": 0, "failed": 0, "total": 0},
        "successRate": null,
        "attempts": 0,
        "latencyMs": null,
        "lastSuccessAt": null,
        "lastFailureAt": null,
    });
    for query in [
        "since=2025-06-01T00:00:00Z&until=2025-06-02T00:00:00Z",
        // `until` alone: the 24 hours before it; any offset.
        "until=2025-06-02T02:00:00%2B02:00",
    ] {
        let response = app
            .call(Method::GET, &format!("{path}?{query}"), None)
            .await;
        assert_answer(response, StatusCode::OK, quiet.clone()).await;
    }
}

async fn stats_windows_that_break_a_rule_are_refused_before_the_path(app: TestApp) {
    let webhook = webhook_to(&app, VALID).await;
    let path = app.group_path(&format!("/{webhook}/stats"));
    for (query, message) in [
        ("since=yesterday", "since must be an RFC 3339 date-time"),
        ("since=2025-06-01", "since must be an RFC 3339 date-time"),
        ("until=1796000000", "until must be an RFC 3339 date-time"),
        ("until=x&since=y", "since must be an RFC 3339 date-time"),
        (
            "since=2025-06-02T00:00:00Z&until=2025-06-01T00:00:00Z",
            "since must be before until",
        ),
        (
            "since=2025-06-01T00:00:00Z&until=2025-06-01T00:00:00Z",
            "since must be before until",
        ),
        ("since=2999-01-01T00:00:00Z", "since must be before until"),
        (
            "since=2025-06-01T00:00:00Z&until=2025-07-02T00:00:01Z",
            "since and until must be at most 31 days apart",
        ),
        (
            "since=2025-06-01T00:00:00Z&since=2025-06-01T00:00:00Z",
            "Invalid query string",
        ),
    ] {
        let response = app
            .call(Method::GET, &format!("{path}?{query}"), None)
            .await;
        assert_bad_request(response, message).await;
    }
    // The query is read before the path, as the delivery log's is.
    let response = app
        .call(Method::GET, "/webhooks/abc/we_x/stats?until=x", None)
        .await;
    assert_bad_request(response, "until must be an RFC 3339 date-time").await;
    let longest = "since=2025-06-01T00:00:00Z&until=2025-07-02T00:00:00Z";
    let response = app
        .call(Method::GET, &format!("{path}?{longest}"), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn stats_need_the_key_the_group_and_the_webhook(app: TestApp) {
    let webhook = webhook_to(&app, VALID).await;
    let path = app.group_path(&format!("/{webhook}/stats"));
    let response = app.call_with_key(Method::GET, &path, None, None).await;
    assert_answer(
        response,
        StatusCode::UNAUTHORIZED,
        json!({"error": "Unauthorized"}),
    )
    .await;
    for (path, message) in [
        (
            format!("/webhooks/abc/{webhook}/stats"),
            "groupID must be a number",
        ),
        (
            format!("/webhooks/424242/{webhook}/stats"),
            "Group not found",
        ),
        (app.group_path("/nope/stats"), "Webhook not found"),
        (
            app.group_path("/we_abcdefghijklmnopqrstuvwxyz/stats"),
            "Webhook not found",
        ),
        ("/webhooks/424242/nope/stats".to_owned(), "Group not found"),
    ] {
        let response = app.call(Method::GET, &path, None).await;
        assert_bad_request(response, message).await;
    }
    let response = app.call(Method::POST, &path, None).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}
