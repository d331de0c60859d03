//! The test harness: the real application on a loopback port over a fresh
//! database of either backend, with a tenant (organization, group, API key)
//! made through the admin API.

use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use webhooks_adapters_diesel::{RowCounts, TestDatabase};

use okaya_webhooks::cli::Role;
use okaya_webhooks::config::Settings;
use okaya_webhooks::startup::Application;

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const SERVICE_TOKEN: &str = "test-service-token";

/// Generates one `#[tokio::test]` per backend for each named test body
/// (an `async fn(TestApp)`).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name($crate::support::TestApp::spawn($crate::support::Backend::Sqlite).await).await;
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name($crate::support::TestApp::spawn($crate::support::Backend::Postgres).await).await;
                }
            }
        )*
    };
}
pub(crate) use on_both_backends;

/// Like `on_both_backends!`, for test bodies that start the application
/// themselves: an `async fn(Backend)`.
macro_rules! for_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name($crate::support::Backend::Sqlite).await;
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name($crate::support::Backend::Postgres).await;
                }
            }
        )*
    };
}
pub(crate) use for_both_backends;

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A tenant of the running application.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub organization_id: String,
    pub group_id: i64,
    pub api_key_id: String,
    pub api_key: String,
}

pub struct TestApp {
    pub address: String,
    /// The loopback port, for raw connections (`raw_http`).
    pub port: u16,
    pub client: reqwest::Client,
    /// The tenant every helper call uses.
    pub tenant: Tenant,
    /// What the application was built with, for [`TestApp::beside`].
    settings: Settings,
    _database: TestDatabase,
}

impl TestApp {
    /// The application with API and delivery workers, deliveries allowed to
    /// loopback receivers, a 1 s attempt timeout and retries after 100 ms and
    /// 200 ms.
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    /// As [`TestApp::spawn`], with settings changed by `configure` first.
    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let database = match backend {
            Backend::Sqlite => TestDatabase::sqlite().await,
            Backend::Postgres => TestDatabase::postgres().await,
        };
        let mut settings = Settings::defaults().expect("defaults");
        settings.server.bind = "127.0.0.1:0".parse().expect("loopback");
        settings.database.url = database.url().parse().expect("a database URL");
        settings.database.pool_size = 4;
        settings.auth.admin_token = Some(ADMIN_TOKEN.into());
        settings.auth.service_token = Some(SERVICE_TOKEN.into());
        settings.secrets.encryption_key =
            Some(webhooks_domain::SecretCipher::generate_key().into());
        settings.delivery.allow_networks = vec!["127.0.0.0/8".parse().expect("cidr")];
        settings.delivery.timeout = std::time::Duration::from_secs(1);
        settings.delivery.retry_schedule = vec![
            std::time::Duration::from_millis(100),
            std::time::Duration::from_millis(200),
        ];
        configure(&mut settings);
        let app = Application::build(settings.clone(), Role::All)
            .await
            .expect("the application starts");
        let port = app.port();
        let address = format!("http://127.0.0.1:{port}");
        tokio::spawn(app.run_until_stopped());
        let client = super::api_client()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let mut app = TestApp {
            address,
            port,
            client,
            tenant: Tenant {
                organization_id: String::new(),
                group_id: 0,
                api_key_id: String::new(),
                api_key: String::new(),
            },
            settings,
            _database: database,
        };
        app.tenant = app.new_tenant().await;
        app
    }

    /// Another API process (`--role api`) on the same database with the
    /// same settings, as a second replica behind a load balancer; answers
    /// its base address. It runs until the test ends.
    pub async fn beside(&self) -> String {
        let other = Application::build(self.settings.clone(), Role::Api)
            .await
            .expect("the other process starts");
        let address = format!("http://127.0.0.1:{}", other.port());
        tokio::spawn(other.run_until_stopped());
        address
    }

    /// A new organization with one group and one API key, via `/admin`.
    pub async fn new_tenant(&self) -> Tenant {
        let org = self
            .admin(
                Method::POST,
                "/admin/organizations",
                Some(json!({"name": "Acme"})),
            )
            .await;
        assert_eq!(org.status(), StatusCode::CREATED);
        let org: Value = org.json().await.expect("json");
        let organization_id = org["id"].as_str().expect("org id").to_owned();
        let group = self
            .admin(
                Method::POST,
                &format!("/admin/organizations/{organization_id}/groups"),
                Some(json!({"name": "Production"})),
            )
            .await;
        assert_eq!(group.status(), StatusCode::CREATED);
        let group: Value = group.json().await.expect("json");
        let key = self
            .admin(
                Method::POST,
                &format!("/admin/organizations/{organization_id}/api-keys"),
                None,
            )
            .await;
        assert_eq!(key.status(), StatusCode::CREATED);
        let key: Value = key.json().await.expect("json");
        Tenant {
            organization_id,
            group_id: group["id"].as_i64().expect("group id"),
            api_key_id: key["id"].as_str().expect("key id").to_owned(),
            api_key: key["key"].as_str().expect("key").to_owned(),
        }
    }

    /// How many rows each table holds: a refused request must change none.
    pub async fn row_counts(&self) -> RowCounts {
        self._database.row_counts().await
    }

    /// The name of this test's database (PostgreSQL) or file (SQLite).
    pub fn database_name(&self) -> String {
        let url = self._database.url();
        let tail = url.rsplit('/').next().unwrap_or_default();
        tail.split('?').next().unwrap_or_default().to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// `/webhooks/{our group}` followed by `rest`.
    pub fn group_path(&self, rest: &str) -> String {
        format!("/webhooks/{}{}", self.tenant.group_id, rest)
    }

    /// A request with our API key and, when given, a JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        self.call_with_key(method, path, body, Some(&self.tenant.api_key))
            .await
    }

    pub async fn call_with_key(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    /// A request with our API key and a raw body, sent with no content type.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        self.client
            .request(method, self.url(path))
            .header("x-api-key", &self.tenant.api_key)
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    /// Publishes an event through `POST /internal/events`.
    pub async fn publish(&self, body: Value) -> Response {
        self.client
            .post(self.url("/internal/events"))
            .bearer_auth(SERVICE_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    /// Publishes a `user.created` event to our group; answers its JSON.
    pub async fn publish_user_created(&self, data: Value) -> Value {
        let response = self
            .publish(json!({"groupID": self.tenant.group_id, "type": "user.created", "data": data}))
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        response.json().await.expect("json")
    }

    /// The JSON of `GET` on a path of ours, asserting a 200.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.call(Method::GET, path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.expect("json")
    }

    /// Polls the delivery log of a webhook until `done` accepts it.
    pub async fn wait_for_deliveries(
        &self,
        webhook_id: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let path = self.group_path(&format!("/{webhook_id}/deliveries"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let page = self.get_json(&path).await;
            let deliveries = page["data"].as_array().cloned().unwrap_or_default();
            if done(&deliveries) {
                return deliveries;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "deliveries never settled: {page}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The value of the sample `name` (with its labels, if any) in
    /// `/metrics`, 0 when absent.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("request sent")
            .text()
            .await
            .expect("text");
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// A portal link to our group, made with our key: its JSON (`url`, `expiresAt`).
    pub async fn portal_link(&self) -> Value {
        let response = self
            .call(Method::POST, &self.group_path("/portal-sessions"), None)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("json")
    }

    /// Creates a webhook in our group and returns its JSON.
    pub async fn create_webhook(&self, url: &str, description: &str) -> Value {
        let response = self
            .call(
                Method::POST,
                &self.group_path(""),
                Some(json!({"url": url, "description": description})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }
}

/// Asserts a response's status and exact JSON body.
pub async fn assert_answer(response: Response, status: StatusCode, body: Value) {
    let actual_status = response.status();
    let text = response.text().await.expect("body");
    let actual: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("not JSON ({actual_status}): {text}"));
    assert_eq!((actual_status, actual), (status, body));
}

/// Asserts a 400 with the given seed error text.
pub async fn assert_bad_request(response: Response, message: &str) {
    assert_answer(
        response,
        StatusCode::BAD_REQUEST,
        json!({ "error": message }),
    )
    .await;
}
