//! Self-healing endpoints against the running binary, with tiny probe
//! intervals: a webhook disabled for failures comes back once its receiver
//! answers again; one disabled by a 410 or by hand is never probed.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{for_both_backends, Backend, Receiver, TestApp};

for_both_backends!(
    a_webhook_disabled_for_failures_is_probed_back_and_its_deliveries_flow,
    webhooks_disabled_by_a_410_or_by_hand_are_never_probed,
    with_probes_off_a_webhook_disabled_for_failures_stays_disabled,
);

const WITHIN: Duration = Duration::from_secs(20);

/// The application with a webhook disabled at its second failure, and
/// probes every 100 ms (doubling to 400 ms) when `probes` is on.
async fn app(backend: Backend, probes: bool) -> TestApp {
    TestApp::spawn_with(backend, |settings| {
        // The first retry comes 100 ms (± 20 %) after the first failure.
        settings.delivery.disable_after = Duration::from_millis(50);
        settings.probes.enabled = probes;
        settings.probes.first = Duration::from_millis(100);
        settings.probes.max = Duration::from_millis(400);
        settings.probes.successes = 3;
    })
    .await
}

async fn status(app: &TestApp, webhook: &Value) -> String {
    let id = webhook["id"].as_str().unwrap();
    let shown = app.get_json(&app.group_path(&format!("/{id}"))).await;
    shown["status"].as_str().unwrap().to_owned()
}

async fn wait_for_status(app: &TestApp, webhook: &Value, expected: &str) {
    let deadline = std::time::Instant::now() + WITHIN;
    while status(app, webhook).await != expected {
        assert!(std::time::Instant::now() < deadline, "never {expected}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_webhook_disabled_for_failures_is_probed_back_and_its_deliveries_flow(backend: Backend) {
    let app = app(backend, true).await;
    let receivers = Receiver::start().await;
    let operator = app
        .admin(
            Method::PUT,
            &format!(
                "/admin/organizations/{}/operator-endpoint",
                app.tenant.organization_id
            ),
            Some(json!({"url": receivers.url("/ok/operator")})),
        )
        .await;
    assert_eq!(operator.status(), StatusCode::CREATED);
    // Two deliveries fail (disabled), then one probe; then it answers.
    let webhook = app
        .create_webhook(&receivers.url("/flaky/3"), "flaky")
        .await;
    app.publish_user_created(json!({"userID": "u_1"})).await;
    wait_for_status(&app, &webhook, "disabled").await;

    let id = webhook["id"].as_str().unwrap();
    let log = app
        .wait_for_deliveries(id, |log| {
            log.first().is_some_and(|d| d["status"] == "succeeded")
        })
        .await;

    assert_eq!(status(&app, &webhook).await, "enabled");
    assert_eq!(log[0]["attemptCount"], 3);
    let requests = receivers.received_on("/flaky/3");
    let kinds: Vec<String> = requests
        .iter()
        .map(|received| received.json()["type"].as_str().unwrap().to_owned())
        .collect();
    let (probe, user) = ("webhook.test", "user.created");
    assert_eq!(kinds, [user, user, probe, probe, probe, probe, user]);
    let told = receivers.wait_for(Some("/ok/operator"), 2, WITHIN).await;
    let said: Vec<(Value, Value)> = told
        .iter()
        .map(|received| {
            let body = received.json();
            (body["type"].clone(), body["data"]["reason"].clone())
        })
        .collect();
    assert_eq!(
        said,
        [
            (json!("webhook.disabled"), json!("failures")),
            (json!("webhook.enabled"), json!("probe")),
        ]
    );
    assert_eq!(
        app.metric(r#"webhooks_probes_total{outcome="failed"}"#)
            .await,
        1.0
    );
    assert_eq!(
        app.metric(r#"webhooks_probes_total{outcome="succeeded"}"#)
            .await,
        3.0
    );
    assert_eq!(app.metric("webhooks_probe_reenabled_total").await, 1.0);
}

async fn webhooks_disabled_by_a_410_or_by_hand_are_never_probed(backend: Backend) {
    let app = app(backend, true).await;
    let receivers = Receiver::start().await;
    let gone = app.create_webhook(&receivers.url("/gone"), "gone").await;
    let manual = app
        .create_webhook(&receivers.url("/ok/manual"), "manual")
        .await;
    let path = app.group_path(&format!("/{}", manual["id"].as_str().unwrap()));
    let body = json!({"url": manual["url"], "description": "manual", "status": "disabled"});
    assert_eq!(
        app.call(Method::PUT, &path, Some(body)).await.status(),
        StatusCode::OK
    );
    app.publish_user_created(json!({"userID": "u_1"})).await;
    wait_for_status(&app, &gone, "disabled").await;

    // Many probe intervals.
    tokio::time::sleep(Duration::from_millis(800)).await;

    assert_eq!(receivers.received_on("/gone").len(), 1);
    assert!(receivers.received_on("/ok/manual").is_empty());
    assert_eq!(status(&app, &manual).await, "disabled");
    assert_eq!(
        app.metric(r#"webhooks_probes_total{outcome="failed"}"#)
            .await,
        0.0
    );
}

async fn with_probes_off_a_webhook_disabled_for_failures_stays_disabled(backend: Backend) {
    let app = app(backend, false).await;
    let receivers = Receiver::start().await;
    let webhook = app
        .create_webhook(&receivers.url("/flaky/2"), "flaky")
        .await;
    app.publish_user_created(json!({"userID": "u_1"})).await;
    wait_for_status(&app, &webhook, "disabled").await;

    tokio::time::sleep(Duration::from_millis(800)).await;

    assert_eq!(receivers.received_on("/flaky/2").len(), 2);
    assert_eq!(status(&app, &webhook).await, "disabled");
}
