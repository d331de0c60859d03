//! The outbound side: [`HttpSender`] POSTs a signed delivery to a receiver
//! and turns whatever happens (an answer, a timeout, a refused or blocked
//! connection) into a [`SendOutcome`](webhooks_domain::SendOutcome); it never fails as a call.
//!
//! Webhook URLs are chosen by customers, so the sender guards the service's
//! own network (SSRF): [`is_forbidden`] says which addresses are not
//! globally routable, and [`DestinationGuard`] applies that rule with the
//! configured allow-list (`delivery.allow_networks`) to the address actually
//! connected to. The guard is the HTTP client's DNS resolver, so a name whose
//! DNS answer is 127.0.0.1 or 169.254.169.254 is caught at connect time, not
//! only when the webhook was saved; an address written in the URL never
//! reaches a resolver and is checked before sending.
//!
//! A receiver cannot hurt the worker either: one total timeout per attempt,
//! redirects are not followed (a 3xx is a failed attempt), and at most
//! [`MAX_RESPONSE_BODY_BYTES`](webhooks_domain::MAX_RESPONSE_BODY_BYTES) of an answer are read.
//!
//! `client` sends, `failure` names what went wrong, `ssrf` holds the address
//! rules and the resolver that applies them.

mod client;
mod failure;
mod ssrf;

pub use client::{HttpSender, SenderError, SenderSettings};
pub use ssrf::{is_forbidden, Blocked, DestinationGuard, ResolveError};
