//! FIFO webhooks across whole processes of the binary: several worker
//! processes on one PostgreSQL deliver a FIFO webhook's events strictly in
//! order while other webhooks get theirs; a SIGKILL mid-stream loses nothing
//! and sends no event before an earlier one; a head that keeps failing holds
//! back the rest until it succeeds.

use std::time::Duration;

use serde_json::{json, Value};
use webhooks_adapters_diesel::TestDatabase;

use crate::delivery_processes::{
    kill_mid_stream, wait_until_all_arrived, webhook_with, Deployment, SERVICE,
};
use crate::support::{Receiver, RunningBinary};

/// A deployment whose processes keep few database connections: these tests
/// start several at once beside other tests.
fn deployment(database_url: Option<&str>) -> Deployment {
    Deployment::new(database_url).with("WEBHOOKS__DATABASE__POOL_SIZE", "4")
}

/// Makes a FIFO webhook in the demo group pointing at `url`.
async fn fifo_webhook_to(api: &RunningBinary, url: &str) {
    webhook_with(
        api,
        json!({"url": url, "description": "in order", "ordering": "fifo"}),
    )
    .await;
}

/// Publishes `count` events one after another, each accepted before the next
/// is sent, each for `deliveries` webhooks; answers their ids in that order.
async fn publish_in_turn(address: &str, count: usize, deliveries: u64) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let response = client
            .post(format!("{address}/internal/events"))
            .bearer_auth(SERVICE)
            .json(&json!({"groupID": 123456, "type": "user.created", "data": {"n": n}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["deliveries"], deliveries);
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// The events as they arrived, every attempt included.
fn arrived(receiver: &Receiver) -> Vec<String> {
    receiver
        .received()
        .iter()
        .map(|request| request.header("webhook-id").to_owned())
        .collect()
}

/// The events in the order of their first arrival.
fn first_arrivals(receiver: &Receiver) -> Vec<String> {
    let mut first = Vec::new();
    for id in arrived(receiver) {
        if !first.contains(&id) {
            first.push(id);
        }
    }
    first
}

#[tokio::test]
async fn worker_processes_deliver_a_fifo_webhook_in_order_and_the_others_beside_it() {
    let database = TestDatabase::postgres().await;
    let fifo = Receiver::start().await;
    let plain = Receiver::start().await;
    let deployment = deployment(Some(database.url()));
    let api = deployment.start(&["serve", "--role", "api"]);
    fifo_webhook_to(&api, &fifo.url("/ok")).await;
    webhook_with(
        &api,
        json!({"url": plain.url("/ok"), "description": "any order"}),
    )
    .await;
    let workers: Vec<_> = (0..3)
        .map(|_| deployment.start(&["serve", "--role", "worker"]))
        .collect();

    let ids = publish_in_turn(&api.address, 60, 2).await;

    wait_until_all_arrived(&plain, &ids, Duration::from_secs(60)).await;
    wait_until_all_arrived(&fifo, &ids, Duration::from_secs(60)).await;
    // With no crash, each arrives once, in the order accepted.
    assert_eq!(arrived(&fifo), ids);
    drop(workers);
}

async fn a_sigkill_mid_stream_keeps_the_order(database_url: Option<&str>) {
    let receiver = Receiver::start().await;
    let deployment = deployment(database_url);
    let first = deployment.start(&[]);
    // Slow answers keep the stream going when the kill comes.
    fifo_webhook_to(&first, &receiver.url("/ok/slower")).await;
    let ids = publish_in_turn(&first.address, 40, 1).await;
    let before_restart =
        kill_mid_stream(first, &receiver, 5, Duration::from_secs(30), ids.len()).await;

    let _second = deployment.start(&[]);
    // The killed process's head comes due after its lease (timeout + 30 s).
    let seen = wait_until_all_arrived(&receiver, &ids, Duration::from_secs(120)).await;
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    println!(
        "fifo after SIGKILL: {} events, {before_restart} before the kill, {duplicates} duplicates",
        ids.len()
    );
    // At least once (the one in flight may come twice), never out of order.
    assert_eq!(first_arrivals(&receiver), ids);
}

#[tokio::test]
async fn a_sigkill_mid_stream_keeps_a_fifo_webhook_in_order_on_sqlite() {
    a_sigkill_mid_stream_keeps_the_order(None).await;
}

#[tokio::test]
async fn a_sigkill_mid_stream_keeps_a_fifo_webhook_in_order_on_postgres() {
    let database = TestDatabase::postgres().await;
    a_sigkill_mid_stream_keeps_the_order(Some(database.url())).await;
}

#[tokio::test]
async fn a_failing_head_holds_back_the_rest_of_a_fifo_webhook_until_it_succeeds() {
    let receiver = Receiver::start().await;
    let deployment = deployment(None);
    let service = deployment.start(&[]);
    // Its first two answers are 500s: the first event's first two attempts.
    fifo_webhook_to(&service, &receiver.url("/flaky/2")).await;

    let ids = publish_in_turn(&service.address, 5, 1).await;

    wait_until_all_arrived(&receiver, &ids, Duration::from_secs(30)).await;
    let mut expected = vec![ids[0].clone(); 3];
    expected.extend(ids[1..].iter().cloned());
    assert_eq!(arrived(&receiver), expected);
}
