//! Signing: webhook signing secrets, how they are sealed at rest, and the
//! Standard Webhooks signature.

mod secret;

pub use secret::*;
