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
