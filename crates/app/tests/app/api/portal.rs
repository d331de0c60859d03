//! The portal's way in: links made by the platform, sessions opened with a
//! link or an API key, the session cookie on the public API (its group only,
//! CSRF on changes), sign-out, revocation, and the pages' headers.

use std::time::Duration;

use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, SET_COOKIE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

use crate::support::{
    assert_answer, assert_bad_request, for_both_backends, on_both_backends, Backend, TestApp,
};

on_both_backends!(
    a_link_is_made_with_the_groups_key_and_expires_after_an_hour,
    making_a_link_takes_the_key_then_the_group,
    the_link_path_answers_other_methods_as_a_webhook_id,
    a_link_opens_one_session_then_nothing,
    another_sites_page_cannot_sign_in,
    the_session_reaches_its_group_and_no_other,
    a_change_without_the_csrf_token_is_refused_and_changes_nothing,
    a_session_cannot_make_links,
    signing_out_ends_the_session_on_the_server,
    revoking_the_key_ends_its_sessions_and_links,
    signing_in_with_an_api_key_opens_a_session_on_the_asked_group,
    the_cookie_is_secure_when_the_request_came_over_https,
    the_pages_are_served_with_a_policy_that_runs_no_inline_script,
);

for_both_backends!(
    an_expired_link_opens_nothing,
    frame_ancestors_come_from_the_settings
);

const CSRF_REFUSED: &str = "Missing or invalid CSRF token";

/// A portal session as a browser holds it: its cookie and its CSRF token.
struct Session {
    cookie: String,
    csrf: String,
    answer: Value,
}

impl Session {
    /// A request with the cookie and, when `csrf`, the CSRF token.
    fn request(&self, app: &TestApp, method: Method, path: &str, csrf: bool) -> RequestBuilder {
        let mut request = app
            .client
            .request(method, app.url(path))
            .header("cookie", &self.cookie);
        if csrf {
            request = request.header("x-csrf-token", &self.csrf);
        }
        request
    }

    async fn send(
        &self,
        app: &TestApp,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.request(app, method, path, true);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }
}

/// The token in a link's URL.
fn token_of(link: &Value) -> String {
    let url = link["url"].as_str().unwrap();
    url.split_once("?token=").unwrap().1.to_owned()
}

/// `POST /portal/api/session` with `body`, as the portal's page sends it.
async fn sign_in(app: &TestApp, body: Value) -> Response {
    app.client
        .post(app.url("/portal/api/session"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Opens a session with `body`, asserting it opened.
async fn open_session(app: &TestApp, body: Value) -> Session {
    let response = sign_in(app, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let answer: Value = response.json().await.unwrap();
    Session {
        cookie,
        csrf: answer["csrfToken"].as_str().unwrap().to_owned(),
        answer,
    }
}

/// A session opened with a fresh link to our group.
async fn session_from_link(app: &TestApp) -> Session {
    let link = app.portal_link().await;
    open_session(app, json!({ "token": token_of(&link) })).await
}

fn seconds_from_now(rfc3339: &str) -> i64 {
    let at = chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap();
    (at.timestamp_millis() - chrono::Utc::now().timestamp_millis()) / 1000
}

async fn assert_unauthorized(response: Response) {
    assert_answer(
        response,
        StatusCode::UNAUTHORIZED,
        json!({"error": "Unauthorized"}),
    )
    .await;
}

async fn a_link_is_made_with_the_groups_key_and_expires_after_an_hour(app: TestApp) {
    let link = app.portal_link().await;

    let url = link["url"].as_str().unwrap();
    let prefix = format!("{}/portal/#/open?token=", app.address);
    assert!(url.starts_with(&prefix), "{url}");
    assert_eq!(token_of(&link).len(), 43, "256 bits in base64url");
    let expires_in = seconds_from_now(link["expiresAt"].as_str().unwrap());
    assert!((3590..=3600).contains(&expires_in), "{expires_in}");
    assert_eq!(link.as_object().unwrap().len(), 2, "{link}");
}

async fn making_a_link_takes_the_key_then_the_group(app: TestApp) {
    let path = app.group_path("/portal-sessions");
    assert_unauthorized(app.call_with_key(Method::POST, &path, None, None).await).await;
    let response = app
        .call(Method::POST, "/webhooks/12x/portal-sessions", None)
        .await;
    assert_bad_request(response, "groupID must be a number").await;
    let other = app.new_tenant().await;
    let response = app
        .call_with_key(Method::POST, &path, None, Some(&other.api_key))
        .await;
    assert_bad_request(response, "Group not found").await;
}

/// `/webhooks/{groupID}/portal-sessions` is also the shape of one webhook's
/// path: every method but POST answers as it did before links existed.
async fn the_link_path_answers_other_methods_as_a_webhook_id(app: TestApp) {
    let path = app.group_path("/portal-sessions");
    for method in [Method::GET, Method::DELETE] {
        let response = app.call(method, &path, None).await;
        assert_bad_request(response, "Webhook not found").await;
    }
    let response = app.call(Method::PATCH, &path, None).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET, PUT, DELETE");
}

async fn a_link_opens_one_session_then_nothing(app: TestApp) {
    let link = app.portal_link().await;
    let response = sign_in(&app, json!({ "token": token_of(&link) })).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set_cookie.starts_with("okaya_portal="), "{set_cookie}");
    for attribute in ["Path=/", "Max-Age=28800", "HttpOnly", "SameSite=Strict"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");
    assert!(
        !set_cookie.contains(&token_of(&link)),
        "the cookie is not the link"
    );
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["groupID"], app.tenant.group_id);
    assert_eq!(answer["csrfToken"].as_str().unwrap().len(), 64);
    let lasts = seconds_from_now(answer["expiresAt"].as_str().unwrap());
    assert!((28790..=28800).contains(&lasts), "{lasts}");

    let again = sign_in(&app, json!({ "token": token_of(&link) })).await;
    assert!(again.headers().get(SET_COOKIE).is_none());
    assert_unauthorized(again).await;
}

async fn another_sites_page_cannot_sign_in(app: TestApp) {
    let link = app.portal_link().await;
    let body = json!({ "token": token_of(&link) });
    let from = |origin: &str| {
        app.client
            .post(app.url("/portal/api/session"))
            .header("origin", origin)
            .json(&body)
    };
    let forged = from("https://attacker.example").send().await.unwrap();
    assert!(forged.headers().get(SET_COOKIE).is_none());
    assert_answer(
        forged,
        StatusCode::FORBIDDEN,
        json!({"error": CSRF_REFUSED}),
    )
    .await;

    let own = from(&app.address).send().await.unwrap();
    assert_eq!(
        own.status(),
        StatusCode::CREATED,
        "the link was not used up"
    );
}

async fn an_expired_link_opens_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.portal.link_ttl = Duration::from_secs(1);
    })
    .await;
    let link = app.portal_link().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let response = sign_in(&app, json!({ "token": token_of(&link) })).await;
    assert!(response.headers().get(SET_COOKIE).is_none());
    assert_unauthorized(response).await;
}

async fn the_session_reaches_its_group_and_no_other(app: TestApp) {
    let ours = app
        .create_webhook("https://integration.example/a", "ours")
        .await;
    let session = session_from_link(&app).await;
    let listed = session
        .send(&app, Method::GET, &app.group_path(""), None)
        .await;
    assert_eq!(listed.status(), StatusCode::OK);
    let by_key = app.get_json(&app.group_path("")).await;
    assert_eq!(listed.json::<Value>().await.unwrap(), by_key);
    assert_eq!(by_key[0]["id"], ours["id"]);

    let sibling = app
        .admin(
            Method::POST,
            &format!("/admin/organizations/{}/groups", app.tenant.organization_id),
            Some(json!({"name": "Staging"})),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let stranger = app.new_tenant().await;
    for group in [sibling["id"].as_i64().unwrap(), stranger.group_id] {
        for path in [
            format!("/webhooks/{group}"),
            format!("/webhooks/{group}/{}", ours["id"].as_str().unwrap()),
        ] {
            let response = session.send(&app, Method::GET, &path, None).await;
            assert_bad_request(response, "Group not found").await;
        }
    }
}

async fn a_change_without_the_csrf_token_is_refused_and_changes_nothing(app: TestApp) {
    let session = session_from_link(&app).await;
    let path = app.group_path("");
    let body = json!({"url": "https://integration.example/a", "description": "new"});
    let before = app.row_counts().await;

    let without = session
        .request(&app, Method::POST, &path, false)
        .json(&body);
    let response = without.send().await.unwrap();
    assert_answer(
        response,
        StatusCode::FORBIDDEN,
        json!({"error": CSRF_REFUSED}),
    )
    .await;
    let wrong = session
        .request(&app, Method::POST, &path, false)
        .header("x-csrf-token", "0".repeat(64))
        .json(&body);
    let response = wrong.send().await.unwrap();
    assert_answer(
        response,
        StatusCode::FORBIDDEN,
        json!({"error": CSRF_REFUSED}),
    )
    .await;
    assert_eq!(app.row_counts().await, before);

    let with = session.send(&app, Method::POST, &path, Some(body)).await;
    assert_eq!(with.status(), StatusCode::OK);
    let reads = session
        .request(&app, Method::GET, &path, false)
        .send()
        .await
        .unwrap();
    assert_eq!(reads.status(), StatusCode::OK, "a read needs no token");
}

async fn a_session_cannot_make_links(app: TestApp) {
    let session = session_from_link(&app).await;
    let path = app.group_path("/portal-sessions");
    assert_unauthorized(session.send(&app, Method::POST, &path, None).await).await;
}

async fn signing_out_ends_the_session_on_the_server(app: TestApp) {
    let session = session_from_link(&app).await;
    let without = session
        .request(&app, Method::DELETE, "/portal/api/session", false)
        .send()
        .await
        .unwrap();
    assert_answer(
        without,
        StatusCode::FORBIDDEN,
        json!({"error": CSRF_REFUSED}),
    )
    .await;
    let current = session
        .send(&app, Method::GET, "/portal/api/session", None)
        .await;
    assert_eq!(current.json::<Value>().await.unwrap(), session.answer);

    let out = session
        .send(&app, Method::DELETE, "/portal/api/session", None)
        .await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let cleared = out.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("okaya_portal=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );

    // The old cookie, replayed, opens nothing: the session is gone.
    let path = app.group_path("");
    assert_unauthorized(session.send(&app, Method::GET, &path, None).await).await;
    assert_unauthorized(
        session
            .send(&app, Method::GET, "/portal/api/session", None)
            .await,
    )
    .await;
}

async fn revoking_the_key_ends_its_sessions_and_links(app: TestApp) {
    let session = session_from_link(&app).await;
    let unused = app.portal_link().await;
    let revoke = format!("/admin/api-keys/{}", app.tenant.api_key_id);
    assert_eq!(
        app.admin(Method::DELETE, &revoke, None).await.status(),
        StatusCode::NO_CONTENT
    );

    let path = app.group_path("");
    assert_unauthorized(session.send(&app, Method::GET, &path, None).await).await;
    assert_unauthorized(sign_in(&app, json!({ "token": token_of(&unused) })).await).await;
}

async fn signing_in_with_an_api_key_opens_a_session_on_the_asked_group(app: TestApp) {
    let key = app.tenant.api_key.clone();
    let group = app.tenant.group_id;
    let session = open_session(&app, json!({"apiKey": key, "groupID": group.to_string()})).await;
    assert_eq!(session.answer["groupID"], group);
    let listed = session
        .send(&app, Method::GET, &app.group_path(""), None)
        .await;
    assert_eq!(listed.status(), StatusCode::OK);

    assert_unauthorized(sign_in(&app, json!({"apiKey": "okw_wrong", "groupID": group})).await)
        .await;
    let stranger = app.new_tenant().await;
    let other = sign_in(&app, json!({"apiKey": key, "groupID": stranger.group_id})).await;
    assert_bad_request(other, "Group not found").await;
    let no_group = sign_in(&app, json!({"apiKey": key})).await;
    assert_bad_request(no_group, "You are missing the body parameter groupID").await;
    assert_unauthorized(sign_in(&app, json!({})).await).await;
}

async fn the_cookie_is_secure_when_the_request_came_over_https(app: TestApp) {
    let link = app.portal_link().await;
    let response = app
        .client
        .post(app.url("/portal/api/session"))
        .header("x-forwarded-proto", "https")
        .json(&json!({ "token": token_of(&link) }))
        .send()
        .await
        .unwrap();
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    assert!(set_cookie.ends_with("; Secure"), "{set_cookie}");
}

/// `GET path`, asserting a 200; its headers and body.
async fn page(app: &TestApp, path: &str) -> (reqwest::header::HeaderMap, String) {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let headers = response.headers().clone();
    (headers, response.text().await.unwrap())
}

async fn the_pages_are_served_with_a_policy_that_runs_no_inline_script(app: TestApp) {
    for path in ["/portal", "/portal/"] {
        let (headers, body) = page(&app, path).await;
        assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
        let policy = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(policy.contains("script-src 'self';"), "{policy}");
        assert!(policy.ends_with("frame-ancestors 'none'"), "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        // Every script is a file of its own, none inline.
        assert_eq!(
            body.matches("<script").count(),
            body.matches("<script type=\"module\" src=\"/portal/")
                .count()
        );
    }
    let (headers, body) = page(&app, "/portal/js/app.js").await;
    assert_eq!(headers[CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert!(!body.is_empty());
}

async fn frame_ancestors_come_from_the_settings(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.portal.frame_ancestors = "'self' https://app.example".into();
    })
    .await;
    let (headers, _) = page(&app, "/portal/").await;
    let policy = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        policy.ends_with("frame-ancestors 'self' https://app.example"),
        "{policy}"
    );
}
