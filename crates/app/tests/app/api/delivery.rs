//! The delivery engine end to end: events in over HTTP, signed deliveries to
//! a real receiver on loopback, retries, failures, the delivery log.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{
    assert_answer, assert_bad_request, for_both_backends, on_both_backends, Receiver, TestApp,
    SERVICE_TOKEN,
};

on_both_backends!(
    a_delivery_arrives_signed_with_the_documented_body_and_headers,
    only_enabled_webhooks_that_take_the_type_receive_it,
    a_failing_endpoint_is_retried_with_the_same_webhook_id,
    refused_connections_and_timeouts_fail_then_the_delivery_is_failed,
    gone_disables_the_webhook_at_once,
    an_idempotency_key_repeated_makes_no_new_deliveries,
    internal_events_need_the_service_token_and_a_valid_body,
    the_delivery_log_pages_newest_first_and_filters_by_status,
    a_failed_delivery_can_be_retried_and_recovered,
    a_test_send_reaches_the_webhook,
    after_a_rotation_both_secrets_sign,
    a_rate_limited_webhook_gets_at_most_its_rate,
);

for_both_backends!(
    the_ssrf_guard_blocks_loopback_without_an_allow_list,
    a_webhook_failing_for_the_configured_window_is_disabled,
    a_delivery_in_flight_is_not_retried_until_its_attempt_is_recorded,
);

const WAIT: Duration = Duration::from_secs(20);

async fn webhook_to(app: &TestApp, url: &str) -> String {
    app.create_webhook(url, "receiver").await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn secret_of(app: &TestApp, webhook: &str) -> String {
    app.get_json(&app.group_path(&format!("/{webhook}/secret")))
        .await["secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_delivery_arrives_signed_with_the_documented_body_and_headers(app: TestApp) {
    let receiver = Receiver::start().await;
    let webhook = webhook_to(&app, &receiver.url("/ok")).await;
    let published = app.publish_user_created(json!({"userID": "u_1"})).await;
    assert_eq!(published["deliveries"], 1);
    let event_id = published["id"].as_str().unwrap();
    assert!(event_id.starts_with("evt_"), "{published}");

    let got = receiver.wait_for(Some("/ok"), 1, WAIT).await;
    let request = &got[0];
    let body = request.json();
    let created = body["created"].as_i64().unwrap();
    assert_eq!(
        body,
        json!({
            "id": event_id,
            "object": "event",
            "type": "user.created",
            "created": created,
            "groupID": app.tenant.group_id,
            "data": {"userID": "u_1"},
        })
    );
    assert_eq!(request.header("content-type"), "application/json");
    assert!(request.header("user-agent").starts_with("okaya-webhooks/"));
    assert_eq!(request.header("webhook-id"), event_id);
    let timestamp: i64 = request.header("webhook-timestamp").parse().unwrap();
    assert!((timestamp - created).abs() < 60);
    assert!(request.header("webhook-signature").starts_with("v1,"));
    assert!(request.verifies(&secret_of(&app, &webhook).await));

    let deliveries = app
        .wait_for_deliveries(&webhook, |d| d.len() == 1 && d[0]["status"] == "succeeded")
        .await;
    let detail = app
        .get_json(&app.group_path(&format!(
            "/{webhook}/deliveries/{}",
            deliveries[0]["id"].as_str().unwrap()
        )))
        .await;
    assert_eq!(detail["eventId"], event_id);
    assert_eq!(detail["payload"], body);
    // The log shows the very bytes that were signed and sent.
    let raw = app
        .call(
            Method::GET,
            &app.group_path(&format!(
                "/{webhook}/deliveries/{}",
                deliveries[0]["id"].as_str().unwrap()
            )),
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(raw.contains(&request.body), "{raw}");
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["responseStatus"], 200);
    assert_eq!(attempts[0]["responseBody"], "thanks");
}

async fn only_enabled_webhooks_that_take_the_type_receive_it(app: TestApp) {
    let receiver = Receiver::start().await;
    webhook_to(&app, &receiver.url("/ok/all")).await;
    let sessions_only = app
        .call(
            Method::POST,
            &app.group_path(""),
            Some(json!({"url": receiver.url("/ok/sessions"), "description": "", "enabledEvents": ["user.session.result"]})),
        )
        .await;
    assert_eq!(sessions_only.status(), StatusCode::OK);
    let disabled = webhook_to(&app, &receiver.url("/ok/disabled")).await;
    let response = app
        .call(
            Method::PUT,
            &app.group_path(&format!("/{disabled}")),
            Some(json!({"url": receiver.url("/ok/disabled"), "description": "", "status": "disabled"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let published = app.publish_user_created(json!({})).await;
    assert_eq!(published["deliveries"], 1);
    let session = app
        .publish(json!({"groupID": app.tenant.group_id, "type": "user.session.result", "data": {}}))
        .await;
    let session: Value = session.json().await.unwrap();
    assert_eq!(session["deliveries"], 2);
    receiver.wait_for(None, 3, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received_on("/ok/all").len(), 2);
    assert_eq!(receiver.received_on("/ok/sessions").len(), 1);
    assert_eq!(receiver.received_on("/ok/disabled").len(), 0);
}

async fn a_failing_endpoint_is_retried_with_the_same_webhook_id(app: TestApp) {
    let receiver = Receiver::start().await;
    let webhook = webhook_to(&app, &receiver.url("/flaky/2")).await;
    let published = app.publish_user_created(json!({})).await;
    let got = receiver.wait_for(Some("/flaky/2"), 3, WAIT).await;
    for request in &got {
        assert_eq!(
            request.header("webhook-id"),
            published["id"].as_str().unwrap()
        );
        assert_eq!(request.body, got[0].body);
    }
    let deliveries = app
        .wait_for_deliveries(&webhook, |d| d.len() == 1 && d[0]["status"] == "succeeded")
        .await;
    assert_eq!(deliveries[0]["attemptCount"], 3);
    let detail = app
        .get_json(&app.group_path(&format!(
            "/{webhook}/deliveries/{}",
            deliveries[0]["id"].as_str().unwrap()
        )))
        .await;
    let statuses: Vec<&Value> = detail["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["responseStatus"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(500), &json!(200)]);
    assert_eq!(detail["attempts"][0]["responseBody"], "failure 1");
}

async fn refused_connections_and_timeouts_fail_then_the_delivery_is_failed(app: TestApp) {
    let receiver = Receiver::start().await;
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let refused = webhook_to(&app, &refused_url).await;
    let slow = webhook_to(&app, &receiver.url("/slow")).await;
    app.publish_user_created(json!({})).await;

    for (webhook, expected) in [(&refused, "refused"), (&slow, "timeout")] {
        let deliveries = app
            .wait_for_deliveries(webhook, |d| d.len() == 1 && d[0]["status"] == "failed")
            .await;
        assert_eq!(deliveries[0]["attemptCount"], 3, "{webhook}");
        assert_eq!(deliveries[0]["nextAttemptAt"], Value::Null);
        let detail = app
            .get_json(&app.group_path(&format!(
                "/{webhook}/deliveries/{}",
                deliveries[0]["id"].as_str().unwrap()
            )))
            .await;
        for attempt in detail["attempts"].as_array().unwrap() {
            assert_eq!(attempt["responseStatus"], Value::Null);
            let error = attempt["error"].as_str().unwrap().to_lowercase();
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }
    // Three attempts with a 1 s timeout each reached the slow receiver.
    assert_eq!(receiver.received_on("/slow").len(), 3);
}

async fn gone_disables_the_webhook_at_once(app: TestApp) {
    let receiver = Receiver::start().await;
    let webhook = webhook_to(&app, &receiver.url("/gone")).await;
    app.publish_user_created(json!({})).await;
    let deliveries = app
        .wait_for_deliveries(&webhook, |d| d.len() == 1 && d[0]["status"] == "failed")
        .await;
    assert_eq!(deliveries[0]["attemptCount"], 1);
    let read = app.get_json(&app.group_path(&format!("/{webhook}"))).await;
    assert_eq!(read["status"], "disabled");
    let again = app.publish_user_created(json!({})).await;
    assert_eq!(again["deliveries"], 0);
}

async fn a_webhook_failing_for_the_configured_window_is_disabled(backend: crate::support::Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.delivery.disable_after = Duration::from_millis(150);
        settings.delivery.retry_schedule = vec![Duration::from_millis(200); 5];
    })
    .await;
    let receiver = Receiver::start().await;
    let webhook = webhook_to(&app, &receiver.url("/fail")).await;
    app.publish_user_created(json!({})).await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let read = app.get_json(&app.group_path(&format!("/{webhook}"))).await;
        if read["status"] == "disabled" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never disabled: {read}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Disabled after the streak outlasted the window, not at the first failure.
    assert!(receiver.received_on("/fail").len() >= 2);
}

async fn an_idempotency_key_repeated_makes_no_new_deliveries(app: TestApp) {
    let receiver = Receiver::start().await;
    webhook_to(&app, &receiver.url("/ok")).await;
    let body = json!({"groupID": app.tenant.group_id, "type": "user.created", "data": {"n": 1}, "idempotencyKey": "signup-1"});
    let first: Value = app.publish(body.clone()).await.json().await.unwrap();
    let response = app.publish(body).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let second: Value = response.json().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(first["deliveries"], 1);
    receiver.wait_for(Some("/ok"), 1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.received().len(), 1);
}

async fn internal_events_need_the_service_token_and_a_valid_body(app: TestApp) {
    let body = json!({"groupID": app.tenant.group_id, "type": "user.created", "data": {}});
    for token in [None, Some("wrong"), Some(crate::support::ADMIN_TOKEN)] {
        let mut request = app.client.post(app.url("/internal/events")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_answer(
            response,
            StatusCode::UNAUTHORIZED,
            json!({"error": "Unauthorized"}),
        )
        .await;
    }
    let group = app.tenant.group_id;
    for (body, message) in [
        (json!([]), "Invalid JSON body"),
        (
            json!({"type": "user.created"}),
            "You are missing the body parameter groupID",
        ),
        (
            json!({"groupID": "abc", "type": "user.created"}),
            "groupID must be a number",
        ),
        (
            json!({"groupID": group}),
            "You are missing the body parameter type",
        ),
        (
            json!({"groupID": group, "type": "user.deleted"}),
            "Unknown event type",
        ),
        (
            json!({"groupID": group, "type": "user.created", "data": 5}),
            "data must be an object",
        ),
        (
            json!({"groupID": 424242, "type": "user.created"}),
            "Group not found",
        ),
    ] {
        let response = app.publish(body).await;
        assert_bad_request(response, message).await;
    }
    let raw = app
        .client
        .post(app.url("/internal/events"))
        .bearer_auth(SERVICE_TOKEN)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_bad_request(raw, "Invalid JSON body").await;
}

async fn the_delivery_log_pages_newest_first_and_filters_by_status(app: TestApp) {
    let receiver = Receiver::start().await;
    let webhook = webhook_to(&app, &receiver.url("/ok")).await;
    let mut events = Vec::new();
    for n in 0..5 {
        events.push(
            app.publish_user_created(json!({"n": n})).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    app.wait_for_deliveries(&webhook, |d| {
        d.len() == 5 && d.iter().all(|x| x["status"] == "succeeded")
    })
    .await;
    let path = app.group_path(&format!("/{webhook}/deliveries"));
    let first = app.get_json(&format!("{path}?limit=2")).await;
    let cursor = first["nextCursor"].as_str().unwrap();
    let second = app
        .get_json(&format!("{path}?limit=2&cursor={cursor}"))
        .await;
    let third = app
        .get_json(&format!(
            "{path}?limit=2&cursor={}",
            second["nextCursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(third["nextCursor"], Value::Null);
    let seen: Vec<String> = [&first, &second, &third]
        .iter()
        .flat_map(|page| page["data"].as_array().unwrap().clone())
        .map(|d| d["eventId"].as_str().unwrap().to_owned())
        .collect();
    let newest_first: Vec<String> = events.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    let failed = app.get_json(&format!("{path}?status=failed")).await;
    assert_eq!(failed["data"], json!([]));
    for (query, message) in [
        ("status=nope", "Invalid status filter"),
        ("cursor=nope", "Invalid cursor"),
        ("limit=0", "Invalid limit"),
        ("limit=1000", "Invalid limit"),
        ("status=failed&status=failed", "Invalid query string"),
    ] {
        let response = app
            .call(Method::GET, &format!("{path}?{query}"), None)
            .await;
        assert_bad_request(response, message).await;
    }
    let unknown = app
        .call(
            Method::GET,
            &format!("{path}/dlv_01aaaaaaaaaaaaaaaaaaaaaaaa"),
            None,
        )
        .await;
    assert_bad_request(unknown, "Delivery not found").await;
}

async fn a_failed_delivery_can_be_retried_and_recovered(app: TestApp) {
    let receiver = Receiver::start().await;
    // Fails its first three requests: exactly one delivery's whole schedule.
    let webhook = webhook_to(&app, &receiver.url("/flaky/3")).await;
    app.publish_user_created(json!({})).await;
    let deliveries = app
        .wait_for_deliveries(&webhook, |d| d.len() == 1 && d[0]["status"] == "failed")
        .await;
    let delivery = deliveries[0]["id"].as_str().unwrap();
    let retry = app
        .call(
            Method::POST,
            &app.group_path(&format!("/{webhook}/deliveries/{delivery}/retry")),
            None,
        )
        .await;
    assert_answer(
        retry,
        StatusCode::ACCEPTED,
        json!({"id": delivery, "status": "pending"}),
    )
    .await;
    app.wait_for_deliveries(&webhook, |d| d[0]["status"] == "succeeded")
        .await;
    assert_eq!(receiver.received_on("/flaky/3").len(), 4);

    // Recover: every failed delivery since a time is queued again.
    let failing = webhook_to(&app, &receiver.url("/flaky/6")).await;
    app.publish_user_created(json!({"n": 1})).await;
    app.wait_for_deliveries(&failing, |d| d.len() == 1 && d[0]["status"] == "failed")
        .await;
    let recover_path = app.group_path(&format!("/{failing}/recover"));
    let response = app
        .call(
            Method::POST,
            &recover_path,
            Some(json!({"since": "2000-01-01T00:00:00Z"})),
        )
        .await;
    assert_answer(response, StatusCode::ACCEPTED, json!({"requeued": 1})).await;
    // A recovered delivery gets one more attempt (its schedule is spent).
    app.wait_for_deliveries(&failing, |d| {
        d[0]["status"] == "failed" && d[0]["attemptCount"] == 4
    })
    .await;
    assert_eq!(receiver.received_on("/flaky/6").len(), 4);
    let response = app
        .call(
            Method::POST,
            &recover_path,
            Some(json!({"since": "tomorrow"})),
        )
        .await;
    assert_bad_request(response, "since must be an RFC 3339 date-time").await;
    let response = app.call(Method::POST, &recover_path, Some(json!({}))).await;
    assert_bad_request(response, "You are missing the body parameter since").await;
}

async fn a_delivery_in_flight_is_not_retried_until_its_attempt_is_recorded(
    backend: crate::support::Backend,
) {
    let app = TestApp::spawn_with(backend, |settings| {
        // One attempt of 2 s: long enough to ask while it runs.
        settings.delivery.timeout = Duration::from_secs(2);
        settings.delivery.retry_schedule.clear();
    })
    .await;
    let receiver = Receiver::start().await;
    let webhook = webhook_to(&app, &receiver.url("/slow")).await;
    app.publish_user_created(json!({})).await;
    receiver.wait_for(Some("/slow"), 1, WAIT).await;
    let deliveries = app.wait_for_deliveries(&webhook, |d| d.len() == 1).await;
    let delivery = deliveries[0]["id"].as_str().unwrap();
    let retry_path = app.group_path(&format!("/{webhook}/deliveries/{delivery}/retry"));

    // The receiver holds the request: a retry now would send it twice at once.
    let refused = app.call(Method::POST, &retry_path, None).await;
    assert_answer(
        refused,
        StatusCode::CONFLICT,
        json!({"error": "Delivery is already in progress"}),
    )
    .await;

    // Once the attempt (a timeout) is in the log, a retry is taken.
    app.wait_for_deliveries(&webhook, |d| d[0]["status"] == "failed")
        .await;
    let taken = app.call(Method::POST, &retry_path, None).await;
    assert_answer(
        taken,
        StatusCode::ACCEPTED,
        json!({"id": delivery, "status": "pending"}),
    )
    .await;
    receiver.wait_for(Some("/slow"), 2, WAIT).await;
    assert_eq!(receiver.received_on("/slow").len(), 2);
}

async fn a_test_send_reaches_the_webhook(app: TestApp) {
    let receiver = Receiver::start().await;
    let webhook = app
        .call(
            Method::POST,
            &app.group_path(""),
            Some(json!({"url": receiver.url("/ok"), "description": "", "enabledEvents": ["user.session.result"]})),
        )
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .call(
            Method::POST,
            &app.group_path(&format!("/{webhook}/test")),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let sent: Value = response.json().await.unwrap();
    let got = receiver.wait_for(Some("/ok"), 1, WAIT).await;
    let body = got[0].json();
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["id"], sent["eventId"]);
    assert!(got[0].verifies(&secret_of(&app, &webhook).await));
}

async fn after_a_rotation_both_secrets_sign(app: TestApp) {
    let receiver = Receiver::start().await;
    let webhook = webhook_to(&app, &receiver.url("/ok")).await;
    let old = secret_of(&app, &webhook).await;
    let response = app
        .call(
            Method::POST,
            &app.group_path(&format!("/{webhook}/secret/rotate")),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let new = response.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(old, new);
    assert_eq!(secret_of(&app, &webhook).await, new);
    app.publish_user_created(json!({})).await;
    let got = receiver.wait_for(Some("/ok"), 1, WAIT).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    assert!(got[0].verifies(&new));
    assert!(got[0].verifies(&old));
}

async fn a_rate_limited_webhook_gets_at_most_its_rate(app: TestApp) {
    let receiver = Receiver::start().await;
    let webhook = webhook_to(&app, &receiver.url("/ok")).await;
    let response = app
        .call(
            Method::PUT,
            &app.group_path(&format!("/{webhook}")),
            Some(json!({"url": receiver.url("/ok"), "description": "", "rateLimit": 2})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    for n in 0..6 {
        app.publish_user_created(json!({"n": n})).await;
    }
    let got = receiver.wait_for(Some("/ok"), 6, WAIT).await;
    // Six deliveries at two per second take at least three one-second
    // windows, so more than a second passes from the first to the last.
    let span = got[5].at.duration_since(got[0].at);
    assert!(span >= Duration::from_millis(1000), "{span:?}");
}

async fn the_ssrf_guard_blocks_loopback_without_an_allow_list(backend: crate::support::Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.delivery.allow_networks.clear();
        settings.delivery.retry_schedule.clear();
    })
    .await;
    let receiver = Receiver::start().await;
    let webhook = webhook_to(&app, &receiver.url("/ok")).await;
    app.publish_user_created(json!({})).await;
    let deliveries = app
        .wait_for_deliveries(&webhook, |d| d.len() == 1 && d[0]["status"] == "failed")
        .await;
    let detail = app
        .get_json(&app.group_path(&format!(
            "/{webhook}/deliveries/{}",
            deliveries[0]["id"].as_str().unwrap()
        )))
        .await;
    let error = detail["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("blocked"), "{error}");
    assert!(receiver.received().is_empty());
}
