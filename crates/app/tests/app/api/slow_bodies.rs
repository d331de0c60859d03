//! Request bodies have a deadline (`server.body_timeout`): one trickled past
//! it answers 408 JSON and loses its connection; a slow one within it is
//! served as usual. Raw sockets, since no HTTP client trickles on purpose.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{
    assert_answer, for_both_backends, Backend, RawConnection, TestApp, ADMIN_TOKEN, SERVICE_TOKEN,
};

for_both_backends!(
    a_body_trickled_past_the_deadline_is_408_json_and_closes_the_connection,
    a_chunked_body_trickled_past_the_deadline_is_408_json_and_closes_the_connection,
    a_slow_body_within_the_deadline_is_served,
    a_chunked_body_left_unread_closes_the_connection_after_the_answer,
);

const BODY_TIMEOUT: Duration = Duration::from_secs(1);

/// One byte every 300 ms: the connection is never idle, the body never done.
const TRICKLE: Duration = Duration::from_millis(300);

async fn spawn(backend: Backend, body_timeout: Duration) -> TestApp {
    TestApp::spawn_with(backend, |settings| {
        settings.server.body_timeout = body_timeout;
    })
    .await
}

/// Every route that reads a body, with credentials that pass, so the body is
/// what it waits for.
fn body_routes(app: &TestApp) -> Vec<(&'static str, String, String)> {
    let api_key = format!("x-api-key: {}", app.tenant.api_key);
    let admin = format!("authorization: Bearer {ADMIN_TOKEN}");
    vec![
        ("POST", app.group_path(""), api_key.clone()),
        (
            "PUT",
            app.group_path("/we_abcdefghijklmnopqrstuvwxyz"),
            api_key.clone(),
        ),
        (
            "POST",
            app.group_path("/we_abcdefghijklmnopqrstuvwxyz/recover"),
            api_key,
        ),
        (
            "POST",
            "/internal/events".to_owned(),
            format!("authorization: Bearer {SERVICE_TOKEN}"),
        ),
        ("POST", "/admin/organizations".to_owned(), admin.clone()),
        (
            "POST",
            format!("/admin/organizations/{}/groups", app.tenant.organization_id),
            admin,
        ),
    ]
}

/// Sends `head`, then trickles `body`; asserts the 408 JSON within the
/// deadline plus a margin, and that the server then closes the connection.
async fn assert_timed_out(app: &TestApp, head: String, body: &[u8]) {
    let mut connection = RawConnection::open(app.port).await;
    connection.send(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let answer = connection.trickle(body, TRICKLE).await;
    let waited = started.elapsed();
    assert_eq!(answer.status, 408, "{head}: {answer:?}");
    assert_eq!(
        answer.json(),
        json!({"error": "Request body not received in time"}),
        "{head}"
    );
    assert_eq!(answer.header("connection"), Some("close"), "{head}");
    assert!(
        waited >= BODY_TIMEOUT && waited < BODY_TIMEOUT + Duration::from_secs(2),
        "{head}: answered after {waited:?}"
    );
    assert!(
        connection.closes_within(Duration::from_secs(2)).await,
        "{head}: the connection stays open"
    );
}

async fn a_body_trickled_past_the_deadline_is_408_json_and_closes_the_connection(backend: Backend) {
    let app = spawn(backend, BODY_TIMEOUT).await;
    let body = [b' '; 100];
    join_all(body_routes(&app).into_iter().map(|(method, path, credentials)| {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: localhost\r\n{credentials}\r\ncontent-length: 100000\r\n\r\n"
        );
        let app = &app;
        async move { assert_timed_out(app, head, &body).await }
    }))
    .await;
    // Nothing was created on the way.
    let listed = app.call(Method::GET, &app.group_path(""), None).await;
    assert_answer(listed, StatusCode::OK, json!([])).await;
}

async fn a_chunked_body_trickled_past_the_deadline_is_408_json_and_closes_the_connection(
    backend: Backend,
) {
    let app = spawn(backend, BODY_TIMEOUT).await;
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: localhost\r\nx-api-key: {}\r\ntransfer-encoding: chunked\r\n\r\n",
        app.group_path(""),
        app.tenant.api_key
    );
    // One-byte chunks, each sent a byte at a time.
    let body = b"1\r\n \r\n".repeat(20);
    assert_timed_out(&app, head, &body).await;
}

async fn a_slow_body_within_the_deadline_is_served(backend: Backend) {
    let app = spawn(backend, Duration::from_secs(3)).await;
    let body = br#"{"url":"https://integration.example/","description":"slow"}"#;
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: localhost\r\nx-api-key: {}\r\ncontent-length: {}\r\n\r\n",
        app.group_path(""),
        app.tenant.api_key,
        body.len()
    );
    let mut connection = RawConnection::open(app.port).await;
    connection.send(head.as_bytes()).await.unwrap();
    // About 1.2 s in all, in 6 pieces: slow, but within 3 s.
    for piece in body.chunks(body.len().div_ceil(6)) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        connection.send(piece).await.unwrap();
    }
    let answer = connection.read_answer().await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["description"], "slow");
    // The connection is kept for the next request.
    assert!(!connection.closes_within(Duration::from_millis(500)).await);
}

async fn a_chunked_body_left_unread_closes_the_connection_after_the_answer(backend: Backend) {
    let app = spawn(backend, Duration::from_secs(30)).await;
    // A wrong key answers before the body is read; the body keeps trickling.
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: localhost\r\nx-api-key: wrong\r\ntransfer-encoding: chunked\r\n\r\n",
        app.group_path("")
    );
    let mut connection = RawConnection::open(app.port).await;
    connection.send(head.as_bytes()).await.unwrap();
    let answer = connection.trickle(&b"1\r\n \r\n".repeat(20), TRICKLE).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.json(), json!({"error": "Unauthorized"}));
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(connection.closes_within(Duration::from_secs(3)).await);
}
