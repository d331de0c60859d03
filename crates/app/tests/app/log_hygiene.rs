//! Secrets never reach the log: a whole session of the binary at debug level
//! (admin calls, a new API key, a webhook and its secret, a rotation, events
//! delivered, refused calls) and not one line of its log holds a key, a token,
//! the encryption key, a signing secret or a custom header's value.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{api_client, Receiver, RunningBinary};

const ADMIN: &str = "log-hygiene-admin-token-7f3a";
const SERVICE: &str = "log-hygiene-service-token-91bc";
const CUSTOM_HEADER_VALUE: &str = "log-hygiene-receiver-key-5d2e";

#[tokio::test]
async fn no_secret_appears_in_a_debug_log() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let encryption_key = webhooks_domain::SecretCipher::generate_key();
    let env = [
        ("RUST_LOG", "debug"),
        ("WEBHOOKS__LOG__FORMAT", "json"),
        ("WEBHOOKS__AUTH__ADMIN_TOKEN", ADMIN),
        ("WEBHOOKS__AUTH__SERVICE_TOKEN", SERVICE),
        ("WEBHOOKS__SECRETS__ENCRYPTION_KEY", encryption_key.as_str()),
        ("WEBHOOKS__DELIVERY__ALLOW_NETWORKS", "127.0.0.0/8"),
    ];
    let binary = RunningBinary::start(dir.path(), &env, &[]);
    let demo_key = binary.demo_key.clone().expect("demo key");
    let client = api_client().build().unwrap();
    let base = binary.address.clone();
    let post = |path: &str, token: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };

    let org: Value = post("/admin/organizations", ADMIN, json!({"name": "Logs"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org = org["id"].as_str().unwrap();
    let key: Value = post(
        &format!("/admin/organizations/{org}/api-keys"),
        ADMIN,
        json!({}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let api_key = key["key"].as_str().unwrap().to_owned();

    let created: Value = client
        .post(format!("{base}/webhooks/123456"))
        .header("x-api-key", &demo_key)
        .json(&json!({
            "url": receiver.url("/ok"),
            "description": "logs",
            "headers": {"X-Api-Key": CUSTOM_HEADER_VALUE},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let webhook = created["id"].as_str().unwrap();
    let first_secret = created["secret"].as_str().unwrap().to_owned();
    let rotated: Value = client
        .post(format!("{base}/webhooks/123456/{webhook}/secret/rotate"))
        .header("x-api-key", &demo_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second_secret = rotated["secret"].as_str().unwrap().to_owned();
    for n in 0..3 {
        let response = post(
            "/internal/events",
            SERVICE,
            json!({"groupID": 123456, "type": "user.created", "data": {"n": n}}),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 202);
    }
    let got = receiver
        .wait_for(Some("/ok"), 3, Duration::from_secs(20))
        .await;
    assert_eq!(got[0].header("x-api-key"), CUSTOM_HEADER_VALUE);
    // Refused calls carrying wrong credentials, and the new key in use.
    for (header, value) in [("x-api-key", "okw_wrong"), ("authorization", "Bearer nope")] {
        client
            .get(format!("{base}/webhooks/123456"))
            .header(header, value)
            .send()
            .await
            .unwrap();
    }
    client
        .get(format!("{base}/webhooks/123456"))
        .header("x-api-key", &api_key)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log_lines: Vec<String> = binary.log.try_iter().collect();
    binary.kill_hard();

    assert!(log_lines.len() > 10, "the log was captured: {log_lines:?}");
    let requests = log_lines
        .iter()
        .filter(|line| line.contains("\"request_id\""))
        .count();
    assert!(requests >= 8, "request lines carry a request id");
    for line in &log_lines {
        serde_json::from_str::<Value>(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
    }
    let secrets = [
        ("admin token", ADMIN.to_owned()),
        ("service token", SERVICE.to_owned()),
        ("encryption key", encryption_key.clone()),
        ("demo API key", demo_key.clone()),
        ("API key", api_key.clone()),
        ("signing secret", first_secret.clone()),
        ("rotated signing secret", second_secret.clone()),
        // The secrets' base64 bodies, in case a prefix was cut off.
        (
            "signing secret body",
            first_secret["whsec_".len()..].to_owned(),
        ),
        ("API key body", api_key["okw_".len()..].to_owned()),
        ("custom header value", CUSTOM_HEADER_VALUE.to_owned()),
    ];
    for line in &log_lines {
        for (what, secret) in &secrets {
            assert!(
                !line.contains(secret.as_str()),
                "the {what} is in the log: {line}"
            );
        }
    }
}
