//! The ports to the world beside storage: the outbound HTTP sender, the
//! clock and the id source, with the real clock and id source.

use async_trait::async_trait;

use crate::delivery::{SendOutcome, SignedRequest};
use crate::ids::GroupId;
use crate::time::UnixMillis;

/// Sends a signed request to a receiver. Never fails as a call: every
/// outcome (an answer, a timeout, a refused or blocked connection) is data.
/// Implementations keep at most [`crate::MAX_RESPONSE_BODY_BYTES`] of an
/// answer's body and never read more than that.
///
/// `webhooks-adapters-http` has the real one (`HttpSender`); a service that
/// delivers some other way implements this:
///
/// ```
/// use async_trait::async_trait;
/// use webhooks_domain::{OutboundSender, SendOutcome, SignedRequest};
///
/// /// Accepts everything at once, for a dry run.
/// struct DryRun;
///
/// #[async_trait]
/// impl OutboundSender for DryRun {
///     async fn send(&self, _request: &SignedRequest) -> SendOutcome {
///         SendOutcome { status: Some(204), body: Some(String::new()), ..SendOutcome::default() }
///     }
/// }
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OutboundSender: Send + Sync {
    /// POSTs `request.body` to `request.url` with the `webhook-id`,
    /// `webhook-timestamp` and `webhook-signature` headers, within the
    /// attempt timeout, and reports what happened: the answer's status, its
    /// first bytes and its `Retry-After` (429 and 503 only), or an `error`
    /// text with `timed_out` set when no answer came in time. A redirect is
    /// an answer like any other, never followed.
    async fn send(&self, request: &SignedRequest) -> SendOutcome;
}

/// The current time; a port so tests can pin it.
///
/// ```
/// use webhooks_domain::{Clock, SystemClock, UnixMillis};
///
/// struct Pinned(UnixMillis);
///
/// impl Clock for Pinned {
///     fn now(&self) -> UnixMillis {
///         self.0
///     }
/// }
///
/// assert_eq!(Pinned(UnixMillis(5)).now(), UnixMillis(5));
/// assert!(SystemClock.now() > UnixMillis(1_700_000_000_000));
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> UnixMillis;
}

/// Fresh identifiers; a port so tests can pin them.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait IdSource: Send + Sync {
    /// A ULID that sorts after every earlier one from this source.
    fn ulid(&self) -> ulid::Ulid;

    /// A random group id in `100000 ..= MAX_GENERATED_GROUP_ID`.
    fn group_id(&self) -> GroupId;
}

/// The real clock: the system's wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMillis {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(crate::time::millis)
            .unwrap_or(0);
        UnixMillis(millis)
    }
}

/// The real [`IdSource`]: monotonic ULIDs and random group ids.
#[derive(Default)]
pub struct RandomIds {
    generator: std::sync::Mutex<ulid::Generator>,
}

impl IdSource for RandomIds {
    fn ulid(&self) -> ulid::Ulid {
        let mut generator = match self.generator.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Overflow needs 2^80 ids in one millisecond; fall back to a plain ULID.
        generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
    }

    fn group_id(&self) -> GroupId {
        use rand::Rng;
        let value = rand::rng().random_range(100_000..=crate::ids::MAX_GENERATED_GROUP_ID);
        GroupId::generated(value)
    }
}
