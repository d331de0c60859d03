//! Whole processes of the binary: deliveries survive a SIGKILL mid-delivery,
//! and several worker processes on one PostgreSQL share the queue.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/receiver.rs"]
mod receiver;
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use receiver::Receiver;
use serde_json::{json, Value};
use support::RunningBinary;
use webhooks_adapters_diesel::TestDatabase;

const ADMIN: &str = "processes-admin";
const SERVICE: &str = "processes-service";

/// The environment of every process of one test.
struct Deployment {
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Deployment {
    fn new(database_url: Option<&str>) -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        let mut env = vec![
            ("WEBHOOKS__AUTH__ADMIN_TOKEN", ADMIN.to_owned()),
            ("WEBHOOKS__AUTH__SERVICE_TOKEN", SERVICE.to_owned()),
            (
                "WEBHOOKS__SECRETS__ENCRYPTION_KEY",
                webhooks_domain::SecretCipher::generate_key(),
            ),
            (
                "WEBHOOKS__DELIVERY__ALLOW_NETWORKS",
                "127.0.0.0/8".to_owned(),
            ),
            ("WEBHOOKS__DELIVERY__TIMEOUT", "2s".to_owned()),
            (
                "WEBHOOKS__DELIVERY__RETRY_SCHEDULE",
                "1s,1s,1s,1s,1s".to_owned(),
            ),
            ("RUST_LOG", "warn,okaya_webhooks=info".to_owned()),
        ];
        if let Some(url) = database_url {
            env.push(("WEBHOOKS__DATABASE__URL", url.to_owned()));
        }
        Deployment {
            env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            dir,
        }
    }

    fn start(&self, args: &[&str]) -> RunningBinary {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        RunningBinary::start(self.dir.path(), &env, args)
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Makes a webhook in the demo group pointing at `url`; answers the API key.
async fn webhook_to(api: &RunningBinary, url: &str) -> String {
    let key = api
        .demo_key
        .clone()
        .expect("a demo key on a fresh database");
    let response = reqwest::Client::new()
        .post(format!("{}/webhooks/123456", api.address))
        .header("x-api-key", &key)
        .json(&json!({"url": url, "description": "processes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    key
}

/// Publishes `count` events, 16 at a time; answers their ids.
async fn publish(address: &str, count: usize) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut ids = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(16) {
        let requests = chunk.iter().map(|n| {
            client
                .post(format!("{address}/internal/events"))
                .bearer_auth(SERVICE)
                .json(&json!({"groupID": 123456, "type": "user.created", "data": {"n": n}}))
                .send()
        });
        for response in futures_util::future::join_all(requests).await {
            let response = response.unwrap();
            assert_eq!(response.status(), 202);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["deliveries"], 1);
            ids.push(body["id"].as_str().unwrap().to_owned());
        }
    }
    ids
}

/// How many times each event arrived.
fn arrivals(receiver: &Receiver) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for request in receiver.received() {
        *seen
            .entry(request.header("webhook-id").to_owned())
            .or_insert(0) += 1;
    }
    seen
}

async fn wait_until_all_arrived(
    receiver: &Receiver,
    ids: &[String],
    within: Duration,
) -> HashMap<String, usize> {
    let deadline = Instant::now() + within;
    loop {
        let seen = arrivals(receiver);
        let missing = ids.iter().filter(|id| !seen.contains_key(*id)).count();
        if missing == 0 {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} events never arrived",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn killed_mid_delivery_loses_nothing(database_url: Option<&str>) {
    let receiver = Receiver::start().await;
    let deployment = Deployment::new(database_url);
    let first = deployment.start(&[]);
    // Slow answers keep most deliveries in flight or queued when the kill comes.
    webhook_to(&first, &receiver.url("/ok/slower")).await;
    let ids = publish(&first.address, 600).await;
    // Kill while deliveries are in flight: some arrived, most not yet.
    let deadline = Instant::now() + Duration::from_secs(60);
    while receiver.received().len() < 30 {
        assert!(Instant::now() < deadline, "deliveries never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill_hard();
    let before_restart = arrivals(&receiver).len();
    assert!(
        before_restart < ids.len(),
        "everything arrived before the kill"
    );

    let _second = deployment.start(&[]);
    // Claims of the killed process come due after the lease (timeout + 30 s).
    let seen = wait_until_all_arrived(&receiver, &ids, Duration::from_secs(120)).await;
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    println!(
        "crash safety: {} events, {before_restart} distinct before SIGKILL, all {} after restart, {duplicates} duplicates",
        ids.len(),
        seen.len()
    );
    assert!(deployment.dir().exists());
}

#[tokio::test]
async fn a_sigkill_mid_delivery_loses_no_event_on_sqlite() {
    killed_mid_delivery_loses_nothing(None).await;
}

#[tokio::test]
async fn a_sigkill_mid_delivery_loses_no_event_on_postgres() {
    let database = TestDatabase::postgres().await;
    killed_mid_delivery_loses_nothing(Some(database.url())).await;
}

#[tokio::test]
async fn two_worker_processes_share_the_queue_without_losses() {
    let database = TestDatabase::postgres().await;
    let receiver = Receiver::start().await;
    let deployment = Deployment::new(Some(database.url()));
    let api = deployment.start(&["serve", "--role", "api"]);
    webhook_to(&api, &receiver.url("/ok")).await;
    // A backlog first, then two workers start on it together.
    let ids = publish(&api.address, 1000).await;
    let worker_a = deployment.start(&["serve", "--role", "worker"]);
    let worker_b = deployment.start(&["serve", "--role", "worker"]);
    let seen = wait_until_all_arrived(&receiver, &ids, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen_after = arrivals(&receiver);
    let duplicates: usize = seen_after.values().map(|n| n - 1).sum();
    println!(
        "scale-out: {} events delivered by two workers, {duplicates} duplicates",
        seen.len()
    );
    assert_eq!(seen_after.len(), ids.len());
    // SKIP LOCKED claims never hand one delivery to two workers while its
    // lease runs; with no crash, nothing arrives twice.
    assert_eq!(duplicates, 0);
    drop((worker_a, worker_b));
}
