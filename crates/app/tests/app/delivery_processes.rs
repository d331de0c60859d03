//! Whole processes of the binary: deliveries survive a SIGKILL mid-delivery,
//! several worker processes on one PostgreSQL share the queue, processes talk
//! to PostgreSQL over TLS (wake-ups, revocations, SIGTERM), and a PostgreSQL
//! outage under load loses no accepted event. The last two need clusters of
//! the tests' own (`TEST_TLS_CLUSTER`, `TEST_FAULT_CLUSTER`; see
//! `scripts/pg-test-cluster.sh`), which `scripts/test.sh` always starts.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use webhooks_adapters_diesel::{TestCluster, TestDatabase};

use crate::support::{Receiver, RunningBinary};

const ADMIN: &str = "processes-admin";
pub(crate) const SERVICE: &str = "processes-service";

/// The environment of every process of one test.
pub(crate) struct Deployment {
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Deployment {
    pub(crate) fn new(database_url: Option<&str>) -> Deployment {
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

    /// The same, with one more environment variable for every process.
    pub(crate) fn with(mut self, name: &str, value: &str) -> Deployment {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn start(&self, args: &[&str]) -> RunningBinary {
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
    webhook_with(api, json!({"url": url, "description": "processes"})).await
}

/// Makes a webhook in the demo group from this create body; answers the API
/// key.
pub(crate) async fn webhook_with(api: &RunningBinary, body: Value) -> String {
    let key = api
        .demo_key
        .clone()
        .expect("a demo key on a fresh database");
    let response = reqwest::Client::new()
        .post(format!("{}/webhooks/123456", api.address))
        .header("x-api-key", &key)
        .json(&body)
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
pub(crate) fn arrivals(receiver: &Receiver) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for request in receiver.received() {
        *seen
            .entry(request.header("webhook-id").to_owned())
            .or_insert(0) += 1;
    }
    seen
}

/// Waits (up to `within`) until `started` requests reached the receiver,
/// SIGKILLs `process`, and answers how many distinct events had arrived,
/// asserting that not all `total` had.
pub(crate) async fn kill_mid_stream(
    process: RunningBinary,
    receiver: &Receiver,
    started: usize,
    within: Duration,
    total: usize,
) -> usize {
    let deadline = Instant::now() + within;
    while receiver.received().len() < started {
        assert!(Instant::now() < deadline, "deliveries never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    process.kill_hard();
    let before_kill = arrivals(receiver).len();
    assert!(before_kill < total, "everything arrived before the kill");
    before_kill
}

pub(crate) async fn wait_until_all_arrived(
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
    let before_restart =
        kill_mid_stream(first, &receiver, 30, Duration::from_secs(60), ids.len()).await;

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

// ---- PostgreSQL over TLS ---------------------------------------------------

const TLS_CLUSTER: &str = "TEST_TLS_CLUSTER";

/// The listener's complaint when it cannot connect.
const LISTENER_LOST: &str = "PostgreSQL listener lost";

fn log_lines(process: &RunningBinary) -> Vec<String> {
    process.log.try_iter().collect()
}

#[tokio::test]
async fn over_tls_a_publish_wakes_a_worker_process_at_once() {
    let Some(cluster) = TestCluster::from_env(TLS_CLUSTER) else {
        return;
    };
    let database = TestDatabase::postgres_on(&cluster.verified_url()).await;
    let receiver = Receiver::start().await;
    let deployment = Deployment::new(Some(database.url()));
    let api = deployment.start(&["serve", "--role", "api"]);
    webhook_to(&api, &receiver.url("/ok")).await;
    let worker = deployment.start(&["serve", "--role", "worker"]);
    // The first delivery also waits for the worker to be up.
    let first = publish(&api.address, 1).await;
    wait_until_all_arrived(&receiver, &first, Duration::from_secs(30)).await;

    let mut latencies = Vec::new();
    for n in 0..20u64 {
        // Off any rhythm of the worker's 500 ms poll.
        tokio::time::sleep(Duration::from_millis(20 + (n * 37) % 150)).await;
        let sent = Instant::now();
        let ids = publish(&api.address, 1).await;
        wait_until_all_arrived(&receiver, &ids, Duration::from_secs(10)).await;
        let arrived = receiver
            .received()
            .into_iter()
            .find(|request| request.header("webhook-id") == ids[0])
            .expect("arrived")
            .at;
        latencies.push(arrived.duration_since(sent));
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    println!("API process -> worker process over TLS: median {median:?}, all {latencies:?}");
    let worker_log = log_lines(&worker);
    assert!(
        !worker_log.iter().any(|line| line.contains(LISTENER_LOST)),
        "the worker's listener failed: {worker_log:?}"
    );
    // Polling alone would take a median of about 250 ms (500 ms poll).
    assert!(median < Duration::from_millis(100), "median {median:?}");
}

#[tokio::test]
async fn over_tls_a_revoked_key_stops_working_in_another_process_at_once() {
    let Some(cluster) = TestCluster::from_env(TLS_CLUSTER) else {
        return;
    };
    let database = TestDatabase::postgres_on(&cluster.verified_url()).await;
    let deployment = Deployment::new(Some(database.url()));
    let admin = deployment.start(&["serve", "--role", "api"]);
    let other = deployment.start(&["serve", "--role", "api"]);
    let client = reqwest::Client::new();
    let created = |path: String, body: Value| {
        let request = client
            .post(format!("{}{path}", admin.address))
            .bearer_auth(ADMIN)
            .json(&body)
            .send();
        async move {
            let response = request.await.unwrap();
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.unwrap()
        }
    };
    let org = created("/admin/organizations".into(), json!({"name": "tls"})).await;
    let org = org["id"].as_str().unwrap();
    let group = created(
        format!("/admin/organizations/{org}/groups"),
        json!({"name": "g"}),
    )
    .await;
    let key = created(format!("/admin/organizations/{org}/api-keys"), json!({})).await;
    let list = |address: &str| {
        client
            .get(format!("{address}/webhooks/{}", group["id"]))
            .header("x-api-key", key["key"].as_str().unwrap())
            .send()
    };
    // The other process knows (and caches) the key.
    assert_eq!(list(&other.address).await.unwrap().status(), 200);
    let revoked = client
        .delete(format!(
            "{}/admin/api-keys/{}",
            admin.address,
            key["id"].as_str().unwrap()
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let since = Instant::now();
    while list(&other.address).await.unwrap().status() != 401 {
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "the key still works"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = since.elapsed();
    println!("revocation seen by another process over TLS after {took:?}");
    // Without the listener the cache would keep it for up to its 1 s TTL.
    assert!(took < Duration::from_millis(500), "{took:?}");
}

#[tokio::test]
async fn over_tls_sigterm_closes_every_connection_and_exits_zero() {
    let Some(cluster) = TestCluster::from_env(TLS_CLUSTER) else {
        return;
    };
    let database = TestDatabase::postgres_on(&cluster.verified_url()).await;
    let receiver = Receiver::start().await;
    let deployment = Deployment::new(Some(database.url()));
    for round in 0..3 {
        let mut process = deployment.start(&[]);
        if round == 0 {
            webhook_to(&process, &receiver.url("/ok")).await;
        }
        // Pool, listener and workers all busy over TLS when the signal comes.
        let ids = publish(&process.address, 50).await;
        wait_until_all_arrived(&receiver, &ids, Duration::from_secs(60)).await;
        let status = process.terminate(Duration::from_secs(30));
        let log = log_lines(&process);
        assert_eq!(
            status.code(),
            Some(0),
            "round {round}: {status}; log: {log:?}"
        );
        assert!(
            log.iter().any(|line| line.contains("stopped")),
            "round {round}: {log:?}"
        );
    }
}

// ---- a PostgreSQL outage under load ------------------------------------------

const FAULT_CLUSTER: &str = "TEST_FAULT_CLUSTER";

/// Starts the cluster again if the test ends while it is stopped.
struct Outage<'a> {
    cluster: &'a TestCluster,
    down: bool,
}

impl Outage<'_> {
    async fn begin(&mut self) {
        let cluster = self.cluster.clone();
        tokio::task::spawn_blocking(move || cluster.stop())
            .await
            .unwrap();
        self.down = true;
    }

    async fn end(&mut self) {
        let cluster = self.cluster.clone();
        tokio::task::spawn_blocking(move || cluster.start())
            .await
            .unwrap();
        self.down = false;
    }
}

impl Drop for Outage<'_> {
    fn drop(&mut self) {
        if self.down {
            self.cluster.start();
        }
    }
}

/// What the publishers saw.
#[derive(Default)]
struct Publications {
    /// Ids of the events the API accepted (202), in order.
    accepted: Mutex<Vec<String>>,
    /// Answers other than 202, and requests that got no answer.
    refused: AtomicUsize,
}

/// Publishes one event at a time until `stop`, recording every outcome.
async fn publish_until(address: String, stop: Arc<AtomicBool>, seen: Arc<Publications>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let response = client
            .post(format!("{address}/internal/events"))
            .bearer_auth(SERVICE)
            .json(&json!({"groupID": 123456, "type": "user.created", "data": {"n": n}}))
            .send()
            .await;
        match response {
            Ok(response) if response.status() == 202 => {
                let body: Value = response.json().await.unwrap();
                let id = body["id"].as_str().unwrap().to_owned();
                seen.accepted.lock().unwrap().push(id);
            }
            _ => {
                seen.refused.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test]
async fn a_postgres_outage_under_load_loses_no_accepted_event() {
    let Some(cluster) = TestCluster::from_env(FAULT_CLUSTER) else {
        return;
    };
    let database =
        TestDatabase::postgres_on(&cluster.url("postgres", "localhost", "sslmode=require")).await;
    let receiver = Receiver::start().await;
    let deployment = Deployment::new(Some(database.url()));
    let process = deployment.start(&[]);
    webhook_to(&process, &receiver.url("/ok")).await;

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Publications::default());
    let publishers: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(publish_until(
                process.address.clone(),
                stop.clone(),
                seen.clone(),
            ))
        })
        .collect();
    let mut outage = Outage {
        cluster: &cluster,
        down: false,
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    outage.begin().await;
    let accepted_before = seen.accepted.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(4)).await;
    outage.end().await;
    let accepted_at_restart = seen.accepted.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::SeqCst);
    for publisher in publishers {
        publisher.await.unwrap();
    }

    let ids = seen.accepted.lock().unwrap().clone();
    let refused = seen.refused.load(Ordering::SeqCst);
    assert!(
        accepted_before > 0,
        "nothing was accepted before the outage"
    );
    assert!(refused > 0, "the outage went unnoticed: no request failed");
    assert!(
        ids.len() > accepted_at_restart,
        "nothing was accepted after the restart"
    );
    // Fails, naming how many, if an accepted event never arrives.
    wait_until_all_arrived(&receiver, &ids, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen_after = arrivals(&receiver);
    let duplicates: usize = ids
        .iter()
        .map(|id| seen_after.get(id).copied().unwrap_or(0).saturating_sub(1))
        .sum();
    println!(
        "PostgreSQL outage: {} events accepted ({accepted_before} before the stop, {} after the restart), \
         {refused} requests refused or unanswered, all accepted delivered, {duplicates} duplicates",
        ids.len(),
        ids.len() - accepted_at_restart,
    );
    drop(process);
}
