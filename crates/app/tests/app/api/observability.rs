//! What operators watch: `/metrics` moves with traffic, request ids are
//! echoed, `/readyz` follows the database, and an outage answers at once.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{on_both_backends, Backend, Proxy, Receiver, TestApp};

on_both_backends!(
    metrics_count_requests_publications_and_attempts,
    request_ids_are_echoed_or_made_up,
);

/// The value of the first sample of `name` whose labels include all `labels`.
fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

async fn metrics_text(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    response.text().await.unwrap()
}

async fn metrics_count_requests_publications_and_attempts(app: TestApp) {
    let receiver = Receiver::start().await;
    let webhook = app.create_webhook(&receiver.url("/ok"), "metrics").await;
    let webhook = webhook["id"].as_str().unwrap();
    app.publish_user_created(json!({})).await;
    app.wait_for_deliveries(webhook, |d| d.len() == 1 && d[0]["status"] == "succeeded")
        .await;
    let text = metrics_text(&app).await;
    let created = sample(
        &text,
        "webhooks_http_requests_total",
        &[
            r#"route="/webhooks/{groupID}""#,
            r#"method="POST""#,
            r#"status="200""#,
        ],
    );
    assert_eq!(created, Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "webhooks_events_published_total",
            &[r#"type="user.created""#]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "webhooks_delivery_attempts_total",
            &[r#"outcome="succeeded""#]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "webhooks_delivery_attempt_duration_seconds_count",
            &[]
        ),
        Some(1.0)
    );
    assert_eq!(sample(&text, "webhooks_queue_due", &[]), Some(0.0));
    assert_eq!(
        sample(&text, "webhooks_deliveries_in_flight", &[]),
        Some(0.0)
    );
    assert!(text.contains("webhooks_http_request_duration_seconds_bucket"));

    // A failing request moves its own series.
    app.call_with_key(Method::GET, &app.group_path(""), None, Some("wrong"))
        .await;
    let text = metrics_text(&app).await;
    assert_eq!(
        sample(
            &text,
            "webhooks_http_requests_total",
            &[
                r#"route="/webhooks/{groupID}""#,
                r#"method="GET""#,
                r#"status="401""#
            ],
        ),
        Some(1.0)
    );
}

async fn request_ids_are_echoed_or_made_up(app: TestApp) {
    let echoed = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-42");
    let made = app.client.get(app.url("/healthz")).send().await.unwrap();
    let id = made.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 26, "{id}");
    let refused = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "two words")
        .send()
        .await
        .unwrap();
    assert_ne!(refused.headers()["x-request-id"], "two words");
}

/// `/readyz` answers 503 while PostgreSQL refuses the service's database and
/// recovers by itself once it accepts connections again.
#[tokio::test]
async fn readiness_follows_the_database_and_recovers_by_itself() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let ready = |expected: StatusCode| {
        let app = &app;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let response = app.client.get(app.url("/readyz")).send().await.unwrap();
                if response.status() == expected {
                    return response.text().await.unwrap();
                }
                assert!(
                    Instant::now() < deadline,
                    "/readyz never answered {expected}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    ready(StatusCode::OK).await;
    let database = app.database_name();
    admin_sql(&format!(
        "ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS false; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
    ))
    .await;
    let body = ready(StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({"error": "Database unavailable"})
    );
    // Liveness does not depend on the database.
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    admin_sql(&format!(
        "ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS true"
    ))
    .await;
    ready(StatusCode::OK).await;
}

/// While the database is known to be down, requests answer 503 in
/// milliseconds instead of each waiting out the pool's 5 s checkout,
/// `/readyz` says the same, nothing refused is stored, and service comes back
/// by itself. The service reaches its own PostgreSQL database through a
/// proxy the test cuts: the server itself is left alone. (Two runtime
/// threads: the service opens its pool synchronously while starting, and the
/// proxy must forward meanwhile.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_at_once_and_recovers_by_itself() {
    let admin_url = reqwest::Url::parse(&test_database_url()).unwrap();
    let upstream = tokio::net::lookup_host((
        admin_url.host_str().unwrap(),
        admin_url.port().unwrap_or(5432),
    ))
    .await
    .unwrap()
    .next()
    .unwrap();
    let proxy = Proxy::start(upstream).await;
    let app = TestApp::spawn_with(Backend::Postgres, |settings| {
        let mut url = reqwest::Url::parse(&settings.database.url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(proxy.port)).unwrap();
        settings.database.url = url.as_str().parse().unwrap();
    })
    .await;
    let before = app.create_webhook("https://a.example/hook", "before").await;
    let timed = |method: Method, path: String, body: Option<serde_json::Value>| {
        let app = &app;
        async move {
            let started = Instant::now();
            let response = if path.starts_with("/webhooks") {
                app.call(method, &path, body).await
            } else {
                app.client.get(app.url(&path)).send().await.unwrap()
            };
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body, started.elapsed())
        }
    };
    let list = || timed(Method::GET, app.group_path(""), None);

    proxy.cut();
    // The first request finds its connection gone.
    let first_failure = Instant::now();
    loop {
        let (status, _, _) = list().await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(
            first_failure.elapsed() < Duration::from_secs(10),
            "never 503"
        );
    }
    let mut slowest = Duration::ZERO;
    // Across several probe intervals, every answer is an immediate 503.
    while first_failure.elapsed() < Duration::from_secs(3) {
        let (status, body, took) = list().await;
        assert_eq!(
            (status, body),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "Service unavailable"})
            )
        );
        let (status, body, ready_took) = timed(Method::GET, "/readyz".to_owned(), None).await;
        assert_eq!(
            (status, body),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "Database unavailable"})
            )
        );
        let (status, _, create_took) = timed(
            Method::POST,
            app.group_path(""),
            Some(json!({"url": "https://b.example/hook", "description": "during"})),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        slowest = slowest.max(took).max(ready_took).max(create_took);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        slowest < Duration::from_millis(500),
        "a 503 took {slowest:?}"
    );

    proxy.restore();
    let restored = Instant::now();
    loop {
        let (status, _, _) = list().await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            restored.elapsed() < Duration::from_secs(10),
            "still {status} 10 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let back_after = restored.elapsed();
    // The connections left idle through the outage are replaced quietly:
    // no request fails on one of them.
    for _ in 0..20 {
        let (status, body, _) = list().await;
        assert_eq!(status, StatusCode::OK);
        // What was refused was not stored.
        let ids: Vec<&serde_json::Value> =
            body.as_array().unwrap().iter().map(|w| &w["id"]).collect();
        assert_eq!(ids, vec![&before["id"]]);
        let (status, _, _) = timed(Method::GET, "/readyz".to_owned(), None).await;
        assert_eq!(status, StatusCode::OK);
    }
    eprintln!("outage: slowest 503 {slowest:?}; serving again {back_after:?} after the database came back");
}

/// The administrative URL of the test PostgreSQL server.
fn test_database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| webhooks_adapters_diesel::DEFAULT_TEST_DATABASE_URL.to_owned())
}

/// Runs SQL on the test server's administrative database.
async fn admin_sql(sql: &str) {
    let url = test_database_url();
    let sql = sql.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client.batch_execute(&sql).unwrap();
    })
    .await
    .unwrap();
}
