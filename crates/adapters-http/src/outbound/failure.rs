//! Why an attempt got no answer, in the short text the delivery log shows:
//! timeouts, refused connections, DNS and TLS failures, the SSRF guard's
//! refusal, found down the error's chain of causes.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use thiserror::Error;

use super::ssrf::{Blocked, ResolveError};

/// Why an attempt got no answer, as the delivery log shows it: short, and
/// never with the URL (it may carry credentials) or headers.
#[derive(Debug, Error)]
pub(super) enum Failure {
    #[error("{0}")]
    Blocked(Blocked),
    #[error("timeout after {}", human(*.0))]
    Timeout(Duration),
    #[error("connect timeout after {}", human(*.0))]
    ConnectTimeout(Duration),
    #[error("connection refused")]
    Refused,
    #[error("{0}")]
    Dns(String),
    #[error("TLS error: {0}")]
    Tls(String),
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    #[error("unsupported URL scheme {0:?}: only http and https are sent")]
    UnsupportedScheme(String),
    #[error("the {0} header is not a valid header value")]
    InvalidHeader(&'static str),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("request failed: {0}")]
    Other(String),
}

/// Finds, down an error's chain of causes, one the log names precisely.
fn known_cause(err: &(dyn StdError + 'static)) -> Option<Failure> {
    causes(err).find_map(|cause| {
        if let Some(resolve) = cause.downcast_ref::<ResolveError>() {
            return Some(match resolve {
                ResolveError::Blocked(blocked) => Failure::Blocked(*blocked),
                other => Failure::Dns(other.to_string()),
            });
        }
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(Failure::Tls(tls.to_string()));
        }
        is_io(cause, io::ErrorKind::ConnectionRefused).then_some(Failure::Refused)
    })
}

/// The deepest cause's text: the outer layers only say "error sending
/// request for url (…)", with the URL.
fn innermost_message(err: &(dyn StdError + 'static)) -> String {
    match causes(err).skip(1).last() {
        Some(deepest) => deepest.to_string(),
        None => "no details".to_owned(),
    }
}

/// `err`, then its causes down the chain (see [`next_cause`]).
fn causes<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&cause| next_cause(cause))
}

/// Whether `err` is an `io::Error` of this kind.
fn is_io(err: &(dyn StdError + 'static), kind: io::ErrorKind) -> bool {
    err.downcast_ref::<io::Error>()
        .is_some_and(|io| io.kind() == kind)
}

/// The cause of `err`. An `io::Error` hides its payload from `source()`
/// (it answers the payload's own source), and rustls's failures arrive as
/// the payload of an `io::Error` inside another: step into payloads.
fn next_cause<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    match err.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
        Some(payload) => Some(payload),
        None => err.source(),
    }
}

fn human(duration: Duration) -> String {
    if duration.subsec_millis() == 0 && duration.as_secs() > 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// What a failed send says, for the log: a known cause by name, else whether
/// connecting timed out (the whole attempt's timeout is the caller's), else
/// the deepest cause's text.
pub(super) fn classify(
    err: &hyper_util::client::legacy::Error,
    connect_timeout: Duration,
) -> Failure {
    if let Some(failure) = known_cause(err) {
        return failure;
    }
    match (err.is_connect(), timed_out(err)) {
        (true, true) => Failure::ConnectTimeout(connect_timeout),
        (true, false) => Failure::Connect(innermost_message(err)),
        (false, _) => Failure::Other(innermost_message(err)),
    }
}

/// Whether a cause down the chain is an I/O timeout: the connector's own
/// connect timeout.
fn timed_out(err: &(dyn StdError + 'static)) -> bool {
    causes(err).any(|cause| is_io(cause, io::ErrorKind::TimedOut))
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_secs(15)), "15s");
        assert_eq!(human(Duration::from_millis(1500)), "1500ms");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
    }

    /// An outer error with a cause, like the layers hyper adds.
    #[derive(Debug)]
    struct Layer(Box<dyn StdError + Send + Sync>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("error sending request for url (http://user:secret@example.com/)")
        }
    }

    impl StdError for Layer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn causes_deep_in_the_chain_are_named() {
        let dns = Layer(Box::new(ResolveError::Lookup {
            host: "example.invalid".to_owned(),
            source: io::Error::other("Name or service not known"),
        }));
        assert_eq!(
            known_cause(&dns).unwrap().to_string(),
            "DNS lookup of example.invalid failed: Name or service not known"
        );
        let refused = Layer(Box::new(io::Error::from(io::ErrorKind::ConnectionRefused)));
        assert_eq!(
            known_cause(&refused).unwrap().to_string(),
            "connection refused"
        );
        let tls = Layer(Box::new(io::Error::other(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::DecryptError,
        ))));
        assert!(known_cause(&tls)
            .unwrap()
            .to_string()
            .starts_with("TLS error: "));
        let other = Layer(Box::new(io::Error::other("reset")));
        assert!(known_cause(&other).is_none());
        assert_eq!(innermost_message(&other), "reset");
    }
}
