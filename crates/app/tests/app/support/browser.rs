//! Headless Chromium driven through chromedriver (WebDriver), both on
//! loopback, for the portal's browser tests. Without `/usr/bin/chromedriver`
//! they are skipped, with a message, except in CI (`CI` set), where its
//! absence fails them: `scripts/test.sh` installs `chromium-driver`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::process::{Child, Command};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(20);

/// A browser session; its chromedriver and the Chromium it started stop
/// when this is dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Drop for Browser {
    /// Chromium outlives a killed chromedriver (it is re-parented, not
    /// stopped), so the whole process group goes, chromedriver's own.
    fn drop(&mut self) {
        if let Some(pid) = self.driver.id() {
            let group = format!("-{pid}");
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &group])
                .status();
        }
    }
}

impl Browser {
    /// A headless browser `width` pixels wide, or `None` (test skipped) when
    /// chromedriver is missing outside CI.
    pub async fn start(width: u32) -> Option<Browser> {
        if !Path::new(CHROMEDRIVER).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{CHROMEDRIVER} is missing; scripts/test.sh installs chromium-driver"
            );
            eprintln!(
                "skipped: {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
            );
            return None;
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let client = connect(port, width).await;
        Some(Browser { client, driver })
    }

    /// Waits until an element matching `css` shows `text` (in its own text),
    /// and answers it.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> Element {
        let deadline = Instant::now() + PATIENCE;
        loop {
            for element in self
                .client
                .find_all(Locator::Css(css))
                .await
                .unwrap_or_default()
            {
                if element.text().await.unwrap_or_default().contains(text) {
                    return element;
                }
            }
            if Instant::now() > deadline {
                let body = self.text("body").await;
                panic!("no {css} showing {text:?} within {PATIENCE:?}; the page shows:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Presses Tab until the focused element's text (or label, for a field)
    /// is `name`, then answers it: what a keyboard-only user reaches.
    pub async fn tab_to(&self, name: &str) -> Element {
        for _ in 0..80 {
            self.press(Key::Tab).await;
            let focused = self
                .client
                .active_element()
                .await
                .expect("a focused element");
            if accessible_name(&self.client, &focused).await == name {
                return focused;
            }
        }
        panic!("Tab never reached {name:?}");
    }

    /// The names of the controls `presses` presses of Tab go through, from
    /// wherever the focus is: what the keyboard reaches.
    pub async fn tab_order(&self, presses: usize) -> Vec<String> {
        let mut names = Vec::new();
        for _ in 0..presses {
            self.press(Key::Tab).await;
            let focused = self
                .client
                .active_element()
                .await
                .expect("a focused element");
            names.push(accessible_name(&self.client, &focused).await);
        }
        names
    }

    /// Tabs to the control named `name` and presses Enter on it.
    pub async fn activate(&self, name: &str) {
        self.tab_to(name).await;
        self.press(Key::Enter).await;
    }

    /// Tabs to the field labelled `label` and types `text` into it.
    pub async fn type_into(&self, label: &str, text: &str) {
        let field = self.tab_to(label).await;
        field.clear().await.expect("clears the field");
        field.send_keys(text).await.expect("types");
    }

    /// Presses `key` on whatever has the focus.
    pub async fn press(&self, key: Key) {
        let focused = self
            .client
            .active_element()
            .await
            .expect("a focused element");
        focused.send_keys(&key).await.expect("a key press");
    }

    /// Saves a PNG of the top of the page as `target/portal-screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        self.run("window.scrollTo(0, 0);").await;
        let png = self.client.screenshot().await.expect("a screenshot");
        let folder = screenshot_folder();
        std::fs::create_dir_all(&folder).expect("the screenshot folder");
        std::fs::write(folder.join(format!("{name}.png")), png).expect("the screenshot saved");
    }

    /// Runs `script` (a function body that returns a promise) in the page
    /// and answers what it resolves to.
    pub async fn run(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, vec![])
            .await
            .expect("the script ran")
    }
}

/// The name a user hears for a control: a field's label, a button's or a
/// link's text.
async fn accessible_name(client: &Client, element: &Element) -> String {
    let script = "const e = arguments[0]; \
        return (e.labels && e.labels.length ? e.labels[0].textContent : e.textContent).trim();";
    let element = serde_json::to_value(element).expect("an element reference");
    client
        .execute(script, vec![element])
        .await
        .ok()
        .and_then(|name| name.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn connect(port: u16, width: u32) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={width},1000")],
        }),
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let attempt = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        match attempt {
            Ok(client) => return client,
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("no WebDriver session: {err}"),
        }
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("its address").port()
}

/// `target/portal-screenshots` of the workspace (or of `CARGO_TARGET_DIR`).
fn screenshot_folder() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("portal-screenshots")
}
