//! What the tests share: the application in-process over a fresh database
//! (`test_app`), the built binary as a child process (`binary`), a webhook
//! receiver, a TCP proxy that can be cut, a raw HTTP client, and a headless
//! browser for the portal.

mod binary;
mod browser;
mod proxy;
mod raw_http;
mod receiver;
mod test_app;

pub use binary::RunningBinary;
pub use browser::Browser;
pub use proxy::Proxy;
pub use raw_http::RawConnection;
pub use receiver::{Received, Receiver};
pub(crate) use test_app::{
    assert_answer, assert_bad_request, for_both_backends, on_both_backends, Backend, Tenant,
    TestApp, ADMIN_TOKEN, SERVICE_TOKEN,
};

/// A client for the service's API that outlives waits between its requests.
///
/// The service closes a keep-alive connection after 5 s idle. A pooled
/// connection sent on at that instant loses the race: the request fails with
/// `IncompleteMessage` and no answer (seen once in CI). The client drops its
/// idle connections well before, as docs/operations.md advises our users.
pub fn api_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder().pool_idle_timeout(std::time::Duration::from_secs(2))
}
