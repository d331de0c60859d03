//! A webhook's URL: where its deliveries go, checked once.

use crate::error::{Field, InvalidValue};
use crate::text::TextKind;

/// The longest URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// An absolute `http` or `https` URL with a host, at most 2,048 bytes, kept
/// exactly as the client wrote it. Refused as well: any character that is
/// not printable (controls, blanks, invisible format characters; see
/// [`TextKind::Url`]), a backslash, user information (`user:pass@`: a
/// credential would show in logs and in every answer that lists the
/// webhook) and port 0.
///
/// ```
/// use webhooks_domain::WebhookUrl;
/// assert!(WebhookUrl::new("https://integration.example/webhook").is_ok());
/// assert!(WebhookUrl::new("ftp://integration.example/").is_err());
/// assert!(WebhookUrl::new("/relative").is_err());
/// assert!(WebhookUrl::new("https://integration.example/a b").is_err());
/// assert!(WebhookUrl::new("https://user:pass@integration.example/").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

const NOT_HTTP: &str = "not an absolute http or https URL with a host";

impl WebhookUrl {
    /// Checks `raw` and keeps it as written.
    pub fn new(raw: &str) -> Result<Self, InvalidValue> {
        let invalid = |reason| InvalidValue::new(Field::Url, reason);
        // `Url::parse` forgives surrounding blanks, strips tabs and line
        // breaks, percent-encodes spaces and NUL, accepts backslashes for
        // slashes and a missing `//` (reading `http:///path` as host `path`);
        // a stored URL must mean what it says, so the raw text itself must
        // be printable and show `scheme://host`.
        if raw.len() > MAX_URL_BYTES {
            return Err(invalid("longer than 2,048 bytes"));
        }
        if !TextKind::Url.accepts(raw) || raw.contains('\\') {
            return Err(invalid(
                "holds a character that is not printable, or a backslash",
            ));
        }
        let head: Vec<u8> = raw
            .bytes()
            .take(8)
            .map(|b| b.to_ascii_lowercase())
            .collect();
        let scheme_len = if head.starts_with(b"https://") {
            8
        } else if head.starts_with(b"http://") {
            7
        } else {
            return Err(invalid(NOT_HTTP));
        };
        let after_scheme = raw.get(scheme_len..).unwrap_or_default();
        let authority = after_scheme
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        // Any `@` in the authority ends user information, even an empty one.
        if authority.is_empty() {
            return Err(invalid(NOT_HTTP));
        }
        if authority.contains('@') {
            return Err(invalid("holds user information"));
        }
        let parsed = url::Url::parse(raw).map_err(|_| invalid(NOT_HTTP))?;
        let has_host = parsed.host_str().is_some_and(|host| !host.is_empty());
        if !matches!(parsed.scheme(), "http" | "https") || !has_host {
            return Err(invalid(NOT_HTTP));
        }
        if parsed.port() == Some(0) {
            return Err(invalid("port 0"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The URL exactly as the client wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field an invalid URL is refused for.
    fn url_field(raw: &str) -> Result<WebhookUrl, Field> {
        WebhookUrl::new(raw).map_err(|err| err.field())
    }

    #[test]
    fn urls_must_be_absolute_http_with_a_host_and_short() {
        for bad in [
            "",
            "integration.example/webhook",
            "mailto:a@b.example",
            "file:///etc/passwd",
            "https://",
            "http:///path",
            "http:/path",
            "http:path",
            "https:\\\\a.example",
            "http://a.example\\x",
            "http://",
            " https://a.example/",
        ] {
            assert_eq!(url_field(bad), Err(Field::Url), "{bad}");
        }
        let long = format!("https://a.example/{}", "x".repeat(MAX_URL_BYTES));
        assert_eq!(url_field(&long), Err(Field::Url));
        assert!(WebhookUrl::new("http://127.0.0.1:8080/hook?x=1").is_ok());
        assert!(WebhookUrl::new("HTTPS://Integration.Example/Hook").is_ok());
        assert!(WebhookUrl::new("http://[::1]:9000/").is_ok());
        assert!(WebhookUrl::new("http://écoute.example/").is_ok());
    }

    #[test]
    fn urls_with_a_control_or_blank_character_anywhere_are_invalid_url() {
        for bad in [
            "http://127.0.0.1:19003/x\r\nX-Injected: 1",
            "http://a.example/x\ny",
            "http://a.example/x\ry",
            "http://a.example/a b",
            "http://a.example/\0",
            "http://a.exa\0mple/",
            "http://a.example/\t",
            "http://a.example/\u{7f}",
            "http://a.example/\u{85}",
            "http://a.example/\u{9f}",
            "http://a.example/\u{a0}",
            "http://a.example/\u{2028}",
            "http://a.example/\u{2029}",
            "http://a.example/\u{3000}",
            "http://a.example/\u{200b}",
            "http://a\u{ad}.example/",
            "http://a.example/\u{202e}",
            "http://a.example/\u{feff}",
            "https://a.example/ ",
            "https://a.example/\n",
        ] {
            assert_eq!(url_field(bad), Err(Field::Url), "{bad:?}");
        }
    }

    #[test]
    fn urls_with_user_information_are_invalid_url() {
        for bad in [
            "https://user:pass@a.example/",
            "https://user@a.example/",
            "https://:pass@a.example/",
            "https://@a.example/",
            "http://user:p%40ss@127.0.0.1:8080/hook",
            "HTTPS://USER@A.EXAMPLE",
        ] {
            assert_eq!(url_field(bad), Err(Field::Url), "{bad}");
        }
        // An `@` after the authority is only a path, query or fragment.
        for good in [
            "https://a.example/@me",
            "https://a.example/hook?user=a@b.example",
            "https://a.example/hook#@x",
        ] {
            assert!(WebhookUrl::new(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn urls_with_port_zero_are_invalid_url() {
        for bad in [
            "http://a.example:0/",
            "https://a.example:00/x",
            "http://[::1]:0",
        ] {
            assert_eq!(url_field(bad), Err(Field::Url), "{bad}");
        }
        for good in [
            "http://a.example:1/",
            "http://a.example:80/",
            "https://a.example:65535/",
        ] {
            assert!(WebhookUrl::new(good).is_ok(), "{good}");
        }
    }
}
