//! The portal in a real browser (headless Chromium through chromedriver)
//! against the application on loopback: the way in by link, a webhook's
//! whole life driven with the keyboard alone, and what the portal refuses.
//! Screenshots land in `target/portal-screenshots/`.

use std::time::Duration;

use fantoccini::key::Key;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{
    for_both_backends, Backend, Browser, Received, Receiver, RunningBinary, TestApp,
};

for_both_backends!(
    a_new_user_signs_in_with_an_api_key_and_sees_a_test_delivery_and_its_attempt,
    a_customer_follows_a_delivery_from_failure_to_success_with_the_keyboard_alone,
    custom_headers_and_fifo_ordering_are_shown_and_edited_without_resending_hidden_values,
    a_used_link_shows_a_clear_page_and_opens_no_session,
    a_session_reaches_no_other_group_and_no_change_without_its_csrf_token,
);

const WAIT: Duration = Duration::from_secs(20);

/// The URL of a fresh portal link to our group.
async fn link(app: &TestApp) -> String {
    app.portal_link().await["url"].as_str().unwrap().to_owned()
}

/// Opens a link and waits for the group's webhooks.
async fn open(browser: &Browser, url: &str) {
    browser.client.goto(url).await.unwrap();
    browser.wait_for_text("h1", "Webhooks").await;
}

async fn a_customer_follows_a_delivery_from_failure_to_success_with_the_keyboard_alone(
    backend: Backend,
) {
    let Some(browser) = Browser::start(1280).await else {
        return;
    };
    let story = Story {
        browser,
        app: TestApp::spawn(backend).await,
        receiver: Receiver::start().await,
    };
    open(&story.browser, &link(&story.app).await).await;
    let address = story.browser.client.current_url().await.unwrap();
    assert!(!address.as_str().contains("token="), "{address}");

    let webhook = story.create_webhook().await;
    story.see_a_delivery_and_its_attempt().await;
    story.see_a_failure_and_retry_it(&webhook).await;
    story.rotate_the_secret().await;
    story.reach_every_action_and_send_a_test().await;
    story.disable_then_delete(&webhook).await;
}

/// The customer's browser, the application and the loopback receiver.
struct Story {
    browser: Browser,
    app: TestApp,
    receiver: Receiver,
}

impl Story {
    /// A webhook to the receiver's `/ok/portal`, made with the form; its id.
    async fn create_webhook(&self) -> String {
        let browser = &self.browser;
        browser.activate("New webhook").await;
        browser.wait_for_text("h1", "New webhook").await;
        let url = self.receiver.url("/ok/portal");
        browser.type_into("Endpoint URL", &url).await;
        browser.type_into("Description", "Orders service").await;
        browser.activate("Create").await;
        browser.wait_for_text("h1", "Orders service").await;
        browser.text("dd code").await
    }

    /// An event: its delivery and attempt appear in the log.
    async fn see_a_delivery_and_its_attempt(&self) {
        self.app
            .publish_user_created(json!({"userID": "u_1"}))
            .await;
        self.receiver.wait_for(Some("/ok/portal"), 1, WAIT).await;
        self.browser.activate("Refresh").await;
        self.browser.wait_for_text("td", "succeeded").await;
        // The chart redraws with the log: the screenshot waits for both.
        self.browser
            .wait_for_text("#status", "Delivery log refreshed.")
            .await;
        self.browser.screenshot("webhook").await;
    }

    /// The receiver fails three attempts, whose answers the delivery's page
    /// shows; a retry then succeeds.
    async fn see_a_failure_and_retry_it(&self, webhook: &str) {
        let (browser, app) = (&self.browser, &self.app);
        browser.activate("Edit").await;
        browser.wait_for_text("h1", "Edit webhook").await;
        let url = self.receiver.url("/flaky/3/portal");
        browser.type_into("Endpoint URL", &url).await;
        browser.activate("Save").await;
        browser.wait_for_text("dd", "/flaky/3/portal").await;
        app.publish_user_created(json!({"userID": "u_2"})).await;
        let failed = |log: &[Value]| log.iter().any(|d| d["status"] == "failed");
        app.wait_for_deliveries(webhook, failed).await;
        browser.activate("Refresh").await;
        browser.wait_for_text("td", "failed").await;
        browser.activate(&failed_delivery(app, webhook).await).await;
        browser.wait_for_text("td", "failure 3").await;
        browser.screenshot("failed-delivery").await;

        browser.activate("Retry").await;
        let succeeded = |log: &[Value]| log.iter().all(|d| d["status"] == "succeeded");
        app.wait_for_deliveries(webhook, succeeded).await;
        browser.activate("Refresh").await;
        browser.wait_for_text("td", "recovered").await;
        browser.wait_for_text(".facts .badge", "succeeded").await;
        browser.activate("← Webhook").await;
        browser.wait_for_text("h1", "Orders service").await;
    }

    /// A reveal and a rotation, each confirmed: the next delivery verifies
    /// with both secrets.
    async fn rotate_the_secret(&self) {
        let browser = &self.browser;
        browser.activate("Reveal secret").await;
        browser
            .wait_for_text("[role=alert]", "Show the signing secret")
            .await;
        browser.screenshot("reveal-secret").await;
        assert_eq!(browser.text("code.secret").await, "••••••••", "not yet");
        browser.activate("Yes, reveal secret").await;
        let old = wait_for_secret(browser, None).await;
        browser.activate("Rotate secret").await;
        browser.activate("Yes, rotate secret").await;
        let new = wait_for_secret(browser, Some(&old)).await;
        self.app
            .publish_user_created(json!({"userID": "u_3"}))
            .await;
        let got = self
            .receiver
            .wait_for(Some("/flaky/3/portal"), 5, WAIT)
            .await;
        assert!(got[4].verifies(&new), "the new secret's signature");
        assert!(got[4].verifies(&old), "the old secret's signature");
    }

    /// Tab reaches every action of the page; a test event goes out.
    async fn reach_every_action_and_send_a_test(&self) {
        let reachable = self.browser.tab_order(60).await;
        for action in EVERY_ACTION {
            let reached = reachable.iter().any(|name| name == action);
            assert!(reached, "Tab never reaches {action:?}: {reachable:?}");
        }
        self.browser.activate("Send test event").await;
        self.browser.wait_for_text("span", "Queued").await;
        self.receiver
            .wait_for(Some("/flaky/3/portal"), 6, WAIT)
            .await;
    }

    /// Disabled, seen in the list (wide and at phone width), then deleted.
    async fn disable_then_delete(&self, webhook: &str) {
        let (browser, app) = (&self.browser, &self.app);
        browser.activate("Disable").await;
        browser.wait_for_text(".facts .badge", "disabled").await;
        let stored = app.get_json(&app.group_path(&format!("/{webhook}"))).await;
        assert_eq!(stored["status"], "disabled");

        browser.activate("← Webhooks").await;
        browser.wait_for_text("td", "Orders service").await;
        browser.screenshot("webhooks").await;
        browser.client.set_window_size(390, 900).await.unwrap();
        browser.screenshot("webhooks-phone").await;

        browser
            .activate(&self.receiver.url("/flaky/3/portal"))
            .await;
        browser.wait_for_text("h1", "Orders service").await;
        browser.activate("Delete").await;
        browser.activate("Yes, delete").await;
        browser.wait_for_text("p", "No webhook yet.").await;
        assert_eq!(app.get_json(&app.group_path("")).await, json!([]));
    }
}

/// Every action of a webhook's page, by the name a user hears.
const EVERY_ACTION: [&str; 14] = [
    "Skip to content",
    "Sign out",
    "← Webhooks",
    "Edit",
    "Disable",
    "Send test event",
    "Delete",
    "Reveal secret",
    "Rotate secret",
    "Status",
    "Refresh",
    "Retry failed deliveries since",
    "Recover",
    "Webhooks",
];

/// The id of the webhook's failed delivery: the name of its link in the log.
async fn failed_delivery(app: &TestApp, webhook: &str) -> String {
    let log = app
        .get_json(&app.group_path(&format!("/{webhook}/deliveries?status=failed")))
        .await;
    log["data"][0]["id"].as_str().unwrap().to_owned()
}

/// Waits until the page shows a signing secret other than `not`.
async fn wait_for_secret(browser: &Browser, not: Option<&str>) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let shown = browser.text("code.secret").await;
        if shown.starts_with("whsec_") && Some(shown.as_str()) != not {
            return shown;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new secret shown: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_used_link_shows_a_clear_page_and_opens_no_session(backend: Backend) {
    let Some(browser) = Browser::start(1280).await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    let url = link(&app).await;
    open(&browser, &url).await;
    browser.client.delete_all_cookies().await.unwrap();

    browser.client.goto(&url).await.unwrap();
    browser
        .wait_for_text("h1", "This link cannot be used")
        .await;
    browser
        .wait_for_text("[role=alert]", "expired or was already used")
        .await;
    browser.screenshot("used-link").await;
    assert!(
        browser.client.get_all_cookies().await.unwrap().is_empty(),
        "no session"
    );
    let session = browser
        .run("return fetch('/portal/api/session').then(r => r.status);")
        .await;
    assert_eq!(session, json!(401));
}

async fn a_session_reaches_no_other_group_and_no_change_without_its_csrf_token(backend: Backend) {
    let Some(browser) = Browser::start(1280).await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    let stranger = app.new_tenant().await;
    let theirs = app
        .call_with_key(
            Method::POST,
            &format!("/webhooks/{}", stranger.group_id),
            Some(json!({"url": "https://integration.example/theirs", "description": "theirs"})),
            Some(&stranger.api_key),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let theirs = theirs["id"].as_str().unwrap();
    open(&browser, &link(&app).await).await;

    // Their webhook by the portal's own address: not in this group.
    let page = browser.client.current_url().await.unwrap();
    browser
        .client
        .goto(&format!(
            "{}#/w/{theirs}",
            page.as_str().split('#').next().unwrap()
        ))
        .await
        .unwrap();
    browser
        .wait_for_text("[role=alert]", "Webhook not found")
        .await;
    // Their group and its deliveries, by the API's address.
    for path in [
        format!("/webhooks/{}", stranger.group_id),
        format!("/webhooks/{}/{theirs}/deliveries", stranger.group_id),
    ] {
        let answer = browser
            .run(&format!(
                "return fetch('{path}').then(r => r.json().then(b => [r.status, b]));"
            ))
            .await;
        assert_eq!(answer, json!([400, {"error": "Group not found"}]), "{path}");
    }

    // A change without the session's CSRF token is refused, and makes nothing.
    let group = app.tenant.group_id;
    let forged = browser
        .run(&format!(
            "return fetch('/webhooks/{group}', {{method: 'POST', body: JSON.stringify({{url: 'https://x.example/', description: 'forged'}})}})\
             .then(r => r.json().then(b => [r.status, b]));"
        ))
        .await;
    assert_eq!(
        forged,
        json!([403, {"error": "Missing or invalid CSRF token"}])
    );
    assert_eq!(app.get_json(&app.group_path("")).await, json!([]));
}

/// Signing in on the sign-in page (its group filled in by the address the
/// start-up message prints), an API key, a webhook, a test event, and that
/// delivery's page with its attempt.
async fn a_new_user_signs_in_with_an_api_key_and_sees_a_test_delivery_and_its_attempt(
    backend: Backend,
) {
    let Some(browser) = Browser::start(1280).await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let group = app.tenant.group_id;
    let page = app.url(&format!("/portal/#/signin?group={group}"));
    let key = &app.tenant.api_key;
    sign_in(&browser, &page, &group.to_string(), key, "sign-in-api-key").await;
    let (webhook, delivery) = send_a_test_event(&browser, &receiver.url("/ok/first")).await;
    let succeeded = |log: &[Value]| log.iter().any(|d| d["status"] == "succeeded");
    app.wait_for_deliveries(&webhook, succeeded).await;

    browser.activate(&delivery).await;
    browser.wait_for_text("h1", &delivery).await;
    browser.wait_for_text(".facts .badge", "succeeded").await;
    browser.wait_for_text("table.attempts td", "200").await;
    let sent = receiver.wait_for(Some("/ok/first"), 1, WAIT).await;
    assert_eq!(sent[0].json()["type"], "webhook.test", "{}", sent[0].body);
}

/// The README's walk-through: the real binary's first start on a fresh
/// SQLite file prints the portal's address; there, with the demo key, a test
/// event to a loopback address (which the SSRF guard refuses by default)
/// shows its delivery and the failed attempt with its error.
#[tokio::test]
async fn the_start_up_message_leads_a_new_user_to_a_test_delivery_and_its_attempt() {
    let Some(browser) = Browser::start(1280).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let binary = RunningBinary::start(dir.path(), &[], &[]);
    let portal = binary
        .demo_portal
        .clone()
        .expect("the portal's address printed");
    let key = binary.demo_key.clone().expect("the demo key printed");
    assert!(portal.starts_with(&binary.address), "{portal}");
    sign_in(&browser, &portal, "123456", &key, "sign-in").await;
    let (webhook, delivery) = send_a_test_event(&browser, "http://127.0.0.1:9/").await;
    let path = format!("/webhooks/123456/{webhook}/deliveries/{delivery}");
    wait_for_an_attempt(&format!("{}{path}", binary.address), &key).await;

    browser.activate(&delivery).await;
    browser.wait_for_text("h1", &delivery).await;
    // "Webhook created." was about the webhook's page, not this one.
    assert_eq!(browser.text("#status").await, "", "a stale announcement");
    let attempt = browser.text("table.attempts tbody tr").await;
    assert!(
        attempt.contains("127.0.0.1"),
        "the error names the address: {attempt}"
    );
    browser.screenshot("first-delivery").await;
}

/// Waits until the delivery at `url` (the API's) has an attempt.
async fn wait_for_an_attempt(url: &str, key: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let delivery: Value = reqwest::Client::new()
            .get(url)
            .header("x-api-key", key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if delivery["attempts"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no attempt: {delivery}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens `page`, checks the group it fills in, and signs in with `key`,
/// saving the filled-in form as the screenshot `shot`.
async fn sign_in(browser: &Browser, page: &str, group: &str, key: &str, shot: &str) {
    browser.client.goto(page).await.unwrap();
    browser.wait_for_text("h1", "Sign in").await;
    browser.wait_for_text("small", "demo tenant's group").await;
    let filled = browser
        .run("return document.querySelector('input[name=groupID]').value;")
        .await;
    assert_eq!(filled, json!(group));
    browser.type_into("API key", key).await;
    browser.screenshot(shot).await;
    browser.activate("Sign in").await;
    browser.wait_for_text("h1", "Webhooks").await;
}

/// With the form, a webhook to `url`, then a test event from its page: the
/// webhook's id and the test delivery's.
async fn send_a_test_event(browser: &Browser, url: &str) -> (String, String) {
    browser.activate("New webhook").await;
    browser.wait_for_text("h1", "New webhook").await;
    browser.type_into("Endpoint URL", url).await;
    browser.activate("Create").await;
    browser.wait_for_text("dt", "URL").await;
    let webhook = browser.text("dd code").await;
    browser.activate("Send test event").await;
    browser.wait_for_text("span", "Queued").await;
    (webhook, browser.text("span[aria-live] a").await)
}

/// Headers are added with the form, shown masked, kept by an edit that does
/// not touch them, replaced, and removed; FIFO ordering is set and unset.
async fn custom_headers_and_fifo_ordering_are_shown_and_edited_without_resending_hidden_values(
    backend: Backend,
) {
    let Some(browser) = Browser::start(1280).await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    open(&browser, &link(&app).await).await;
    let webhook = create_with_a_header_and_fifo(&browser, &receiver).await;
    let shown = facts(&browser).await;
    assert_eq!(shown["Custom headers"], "X-Api-Key: ****");
    assert_eq!(shown["Ordering"], "FIFO (one delivery in flight)");
    let stored = app.get_json(&app.group_path(&format!("/{webhook}"))).await;
    assert_eq!(stored["headers"], json!({"X-Api-Key": "****"}));
    assert_eq!(stored["ordering"], "fifo");
    let sent = deliver(&app, &receiver, 1).await;
    assert_eq!(sent.header("x-api-key"), "k3y-1");

    // Saved without touching the headers: they are left out, and kept.
    edit(&browser).await;
    browser.type_into("Description", "Billing v2").await;
    browser.activate("Save").await;
    browser.wait_for_text("h1", "Billing v2").await;
    assert_eq!(
        deliver(&app, &receiver, 2).await.header("x-api-key"),
        "k3y-1"
    );

    // Changed: every value typed again replaces them.
    edit(&browser).await;
    browser.activate("Change headers").await;
    browser.type_into("Value of header 1", "k3y-2").await;
    browser.activate("Save").await;
    browser.wait_for_text("h1", "Billing v2").await;
    assert_eq!(
        deliver(&app, &receiver, 3).await.header("x-api-key"),
        "k3y-2"
    );

    // Removed, and the ordering unset: neither key is left.
    edit(&browser).await;
    let fifo = browser.tab_to("Deliver in order (FIFO)").await;
    fifo.send_keys(&Key::Space).await.unwrap();
    browser.activate("Change headers").await;
    browser.activate("Remove header 1").await;
    browser.activate("Save").await;
    browser.wait_for_text("h1", "Billing v2").await;
    let shown = facts(&browser).await;
    assert_eq!(shown["Custom headers"], "none");
    assert_eq!(shown["Ordering"], "none");
    let stored = app.get_json(&app.group_path(&format!("/{webhook}"))).await;
    assert!(stored.get("headers").is_none(), "{stored}");
    assert!(stored.get("ordering").is_none(), "{stored}");
    assert_eq!(deliver(&app, &receiver, 4).await.header("x-api-key"), "");
}

/// With the form: a webhook to the receiver's `/ok/headers`, FIFO, with one
/// header, after the API refused a reserved one in its own words; its id.
async fn create_with_a_header_and_fifo(browser: &Browser, receiver: &Receiver) -> String {
    browser.activate("New webhook").await;
    browser.wait_for_text("h1", "New webhook").await;
    browser
        .type_into("Endpoint URL", &receiver.url("/ok/headers"))
        .await;
    browser.type_into("Description", "Billing").await;
    let fifo = browser.tab_to("Deliver in order (FIFO)").await;
    fifo.send_keys(&Key::Space).await.unwrap();
    browser.activate("Add header").await;
    browser.type_into("Name of header 1", "X-Api-Key").await;
    browser.type_into("Value of header 1", "k3y-1").await;
    browser.activate("Add header").await;
    browser.type_into("Name of header 2", "Content-Type").await;
    browser.type_into("Value of header 2", "text/plain").await;
    browser.activate("Create").await;
    browser
        .wait_for_text("[role=alert]", "Reserved header name")
        .await;
    browser.screenshot("webhook-form-headers").await;
    browser.activate("Remove header 2").await;
    browser.activate("Create").await;
    browser.wait_for_text("h1", "Billing").await;
    browser.text("dd code").await
}

/// The webhook page's facts, each shown value by its term.
async fn facts(browser: &Browser) -> Value {
    browser
        .run(
            "return Object.fromEntries([...document.querySelectorAll('dl.facts dt')]\
             .map(dt => [dt.textContent, dt.nextElementSibling.textContent]));",
        )
        .await
}

async fn edit(browser: &Browser) {
    browser.activate("Edit").await;
    browser.wait_for_text("h1", "Edit webhook").await;
}

/// Publishes an event and answers the `count`th request the receiver got.
async fn deliver(app: &TestApp, receiver: &Receiver, count: usize) -> Received {
    app.publish_user_created(json!({"userID": format!("u_{count}")}))
        .await;
    let got = receiver.wait_for(Some("/ok/headers"), count, WAIT).await;
    got[count - 1].clone()
}
