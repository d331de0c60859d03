//! Retention in a running worker: a finished delivery older than
//! `retention.deliveries` is pruned and answers `Delivery not found`; a
//! pending one stays.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{assert_bad_request, for_both_backends, Backend, Receiver, TestApp};

for_both_backends!(a_finished_delivery_past_its_retention_is_not_found_and_a_pending_one_stays);

async fn webhook_to(app: &TestApp, url: &str) -> String {
    app.create_webhook(url, "receiver").await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_finished_delivery_past_its_retention_is_not_found_and_a_pending_one_stays(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.retention.deliveries = Duration::from_secs(2);
        settings.retention.interval = Duration::from_millis(200);
        // A failed attempt waits an hour for the next: its delivery stays pending.
        settings.delivery.retry_schedule = vec![Duration::from_secs(3600)];
    })
    .await;
    let receiver = Receiver::start().await;
    let succeeding = webhook_to(&app, &receiver.url("/ok")).await;
    let failing = webhook_to(&app, &receiver.url("/flaky/100")).await;
    app.publish_user_created(json!({"userID": "u_1"})).await;
    let delivered = app
        .wait_for_deliveries(&succeeding, |d| {
            d.len() == 1 && d[0]["status"] == "succeeded"
        })
        .await;
    let waiting = app
        .wait_for_deliveries(&failing, |d| {
            d.len() == 1 && d[0]["status"] == "pending" && d[0]["attemptCount"] == 1
        })
        .await;
    let delivered = app.group_path(&format!(
        "/{succeeding}/deliveries/{}",
        delivered[0]["id"].as_str().unwrap()
    ));
    let waiting = app.group_path(&format!(
        "/{failing}/deliveries/{}",
        waiting[0]["id"].as_str().unwrap()
    ));

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = app.call(Method::GET, &delivered, None).await;
        if response.status() == StatusCode::BAD_REQUEST {
            assert_bad_request(response, "Delivery not found").await;
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
        assert!(Instant::now() < deadline, "the delivery was never pruned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let kept = app.get_json(&waiting).await;
    assert_eq!(kept["status"], "pending");
    let counts = app.row_counts().await;
    assert_eq!((counts.deliveries, counts.attempts), (1, 1));
    // The event stays: one of its deliveries remains.
    assert_eq!(counts.events, 1);
    let pruned = app
        .metric(r#"webhooks_retention_pruned_rows_total{table="deliveries"}"#)
        .await;
    assert!(pruned >= 1.0, "{pruned}");
}
