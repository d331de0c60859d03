//! Custom headers a webhook sends with every delivery (an API key of the
//! receiver, say), and their sealed form at rest.

use std::fmt;

use crate::error::{Field, InvalidValue};
use crate::signing::{SealedSecret, SecretCipher, SecretError};

/// The most custom headers one webhook has.
pub const MAX_CUSTOM_HEADERS: usize = 20;
/// The longest header name accepted, in bytes.
pub const MAX_HEADER_NAME_BYTES: usize = 256;
/// The longest header value accepted, in bytes.
pub const MAX_HEADER_VALUE_BYTES: usize = 1024;

/// Names a webhook may not set, compared without case: ours (the body's
/// type and length, who sends, where to) and those that change how the
/// request is framed or the connection kept. Every `webhook-*` name is ours
/// too: the Standard Webhooks headers and any it adds later.
const RESERVED_NAMES: [&str; 12] = [
    "content-type",
    "user-agent",
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
];
const RESERVED_PREFIX: &str = "webhook-";

/// The headers a webhook adds to each delivery, in the clear: at most 20,
/// each name an HTTP token (RFC 9110 `tchar`, at most 256 bytes) that no
/// other name repeats (ignoring case) and that is not reserved
/// (`content-type`, `user-agent`, `host`, `content-length`, `webhook-*`,
/// and the framing headers such as `transfer-encoding`); each value 1 to
/// 1,024 bytes of visible ASCII, with spaces or tabs only inside. Kept in
/// name order, names as written. `Debug` masks the values.
///
/// ```
/// use webhooks_domain::CustomHeaders;
/// let headers = CustomHeaders::new([("X-Api-Key", "k3y")]).unwrap();
/// assert_eq!(headers.iter().collect::<Vec<_>>(), [("X-Api-Key", "k3y")]);
/// assert_eq!(format!("{headers:?}"), r#"CustomHeaders({"X-Api-Key": "****"})"#);
/// assert!(CustomHeaders::new([("Content-Type", "text/plain")]).is_err());
/// assert!(CustomHeaders::new([("Webhook-Id", "x")]).is_err());
/// assert!(CustomHeaders::new([("X-Bad", "line\r\nbreak")]).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CustomHeaders(Vec<(String, String)>);

impl CustomHeaders {
    /// Checks every name and value; [`Field::ReservedHeader`] for a reserved
    /// name, [`Field::Headers`] for any other broken rule. Empty is allowed:
    /// no custom header.
    pub fn new<N, V>(headers: impl IntoIterator<Item = (N, V)>) -> Result<Self, InvalidValue>
    where
        N: Into<String>,
        V: Into<String>,
    {
        let mut checked: Vec<(String, String)> = Vec::new();
        for (name, value) in headers {
            let (name, value) = (name.into(), value.into());
            check_name(&name)?;
            if !is_valid_value(&value) {
                return Err(invalid("a value is empty, too long or not visible ASCII"));
            }
            if checked.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                return Err(invalid("a name is given twice"));
            }
            if checked.len() == MAX_CUSTOM_HEADERS {
                return Err(invalid("more than 20 headers"));
            }
            checked.push((name, value));
        }
        checked.sort();
        Ok(Self(checked))
    }

    /// Name and value of each header, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for CustomHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CustomHeaders")
            .field(&Masked(self.0.iter().map(|(name, _)| name.as_str())))
            .finish()
    }
}

fn invalid(reason: &'static str) -> InvalidValue {
    InvalidValue::new(Field::Headers, reason)
}

fn check_name(name: &str) -> Result<(), InvalidValue> {
    if name.is_empty() || name.len() > MAX_HEADER_NAME_BYTES || !name.bytes().all(is_tchar) {
        return Err(invalid("a name is not an HTTP token of 1 to 256 bytes"));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED_NAMES.contains(&lower.as_str()) || lower.starts_with(RESERVED_PREFIX) {
        return Err(InvalidValue::new(Field::ReservedHeader, "a reserved name"));
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Visible ASCII, with spaces and tabs only between visible characters:
/// HTTP would trim them at the ends, and CR, LF and NUL would split or end
/// the header.
fn is_valid_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let visible = |b: &u8| (0x21..=0x7e).contains(b);
    !bytes.is_empty()
        && bytes.len() <= MAX_HEADER_VALUE_BYTES
        && bytes.first().is_some_and(visible)
        && bytes.last().is_some_and(visible)
        && bytes
            .iter()
            .all(|b| visible(b) || *b == b' ' || *b == b'\t')
}

/// Header names, each shown with a masked value.
struct Masked<I>(I);

impl<'a, I: Iterator<Item = &'a str> + Clone> fmt::Debug for Masked<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.clone().map(|name| (name, "****")))
            .finish()
    }
}

/// A webhook's custom headers as stored: names in the clear (they are shown
/// back, masked values beside them), each value sealed by the service's
/// [`SecretCipher`] like a signing secret.
///
/// ```
/// use webhooks_domain::{CustomHeaders, SecretCipher};
/// let cipher = SecretCipher::new(&[7u8; 32]).unwrap();
/// let headers = CustomHeaders::new([("X-Api-Key", "k3y")]).unwrap();
/// let sealed = cipher.seal_headers(&headers);
/// assert_eq!(sealed.names().collect::<Vec<_>>(), ["X-Api-Key"]);
/// assert!(!sealed.to_stored().contains("k3y"));
/// assert_eq!(cipher.open_headers(&sealed).unwrap(), headers);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SealedHeaders(Vec<(String, SealedSecret)>);

impl SealedHeaders {
    /// Reads the stored form, a JSON array of `[name, sealed value]` pairs;
    /// `None` when it is not one. Values are checked when opened.
    pub fn from_stored(raw: &str) -> Option<Self> {
        let pairs: Vec<(String, String)> = serde_json::from_str(raw).ok()?;
        Some(Self(
            pairs
                .into_iter()
                .map(|(name, sealed)| (name, SealedSecret::from_stored(sealed)))
                .collect(),
        ))
    }

    /// The stored form [`SealedHeaders::from_stored`] reads.
    pub fn to_stored(&self) -> String {
        let pairs: Vec<(&str, &str)> = self
            .0
            .iter()
            .map(|(name, sealed)| (name.as_str(), sealed.as_str()))
            .collect();
        serde_json::to_string(&pairs).unwrap_or_default()
    }

    /// The header names, in name order.
    pub fn names(&self) -> impl Iterator<Item = &str> + Clone {
        self.0.iter().map(|(name, _)| name.as_str())
    }
}

impl fmt::Debug for SealedHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SealedHeaders")
            .field(&Masked(self.names()))
            .finish()
    }
}

impl SecretCipher {
    /// Seals each value under its own fresh nonce.
    pub fn seal_headers(&self, headers: &CustomHeaders) -> SealedHeaders {
        SealedHeaders(
            headers
                .iter()
                .map(|(name, value)| (name.to_owned(), self.seal_bytes(value.as_bytes())))
                .collect(),
        )
    }

    /// Seals headers to store: `None` for none, or for empty headers.
    pub fn seal_optional_headers(&self, headers: Option<CustomHeaders>) -> Option<SealedHeaders> {
        headers
            .filter(|headers| !headers.is_empty())
            .map(|headers| self.seal_headers(&headers))
    }

    /// Opens every value; [`SecretError::Undecryptable`] when one was sealed
    /// with another key, is damaged, or is no text.
    pub fn open_headers(&self, sealed: &SealedHeaders) -> Result<CustomHeaders, SecretError> {
        let headers = sealed
            .0
            .iter()
            .map(|(name, value)| {
                let bytes = self.open_bytes(value)?;
                let value = String::from_utf8(bytes).map_err(|_| SecretError::Undecryptable)?;
                Ok((name.clone(), value))
            })
            .collect::<Result<Vec<_>, SecretError>>()?;
        // Sealed by us from checked headers: nothing to check again.
        Ok(CustomHeaders(headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(headers: &[(&str, &str)]) -> Result<CustomHeaders, Field> {
        CustomHeaders::new(headers.iter().copied()).map_err(|err| err.field())
    }

    #[test]
    fn names_must_be_tokens_of_at_most_256_bytes() {
        for bad in ["", "X Api", "X:Api", "X-Ä", "(x)", "x\r", "x\0"] {
            assert_eq!(field(&[(bad, "v")]), Err(Field::Headers), "{bad:?}");
        }
        let longest = "x".repeat(MAX_HEADER_NAME_BYTES);
        assert!(field(&[(&longest, "v")]).is_ok());
        assert_eq!(field(&[(&format!("{longest}x"), "v")]), Err(Field::Headers));
        assert!(field(&[("X-Api-Key!#$%&'*+.^_`|~", "v")]).is_ok());
    }

    #[test]
    fn reserved_names_are_refused_whatever_their_case() {
        for reserved in [
            "content-type",
            "Content-Type",
            "USER-AGENT",
            "Host",
            "Content-Length",
            "Transfer-Encoding",
            "webhook-id",
            "Webhook-Signature",
            "WEBHOOK-anything",
        ] {
            assert_eq!(
                field(&[(reserved, "v")]),
                Err(Field::ReservedHeader),
                "{reserved}"
            );
        }
        assert!(field(&[("X-Webhook-Id", "v"), ("Authorization", "Bearer t")]).is_ok());
    }

    #[test]
    fn values_are_visible_ascii_with_inner_spaces_and_tabs_only() {
        for bad in [
            "", " x", "x ", "\tx", "a\r\nb", "a\nb", "a\0b", "é", "\u{7f}",
        ] {
            assert_eq!(field(&[("X-A", bad)]), Err(Field::Headers), "{bad:?}");
        }
        assert!(field(&[("X-A", "Bearer a b\tc")]).is_ok());
        let longest = "v".repeat(MAX_HEADER_VALUE_BYTES);
        assert!(field(&[("X-A", &longest)]).is_ok());
        assert_eq!(
            field(&[("X-A", &format!("{longest}v"))]),
            Err(Field::Headers)
        );
    }

    #[test]
    fn at_most_20_headers_with_distinct_names_kept_in_name_order() {
        let names: Vec<String> = (0..=MAX_CUSTOM_HEADERS)
            .map(|i| format!("X-{i:02}"))
            .collect();
        let pairs = |n: usize| names[..n].iter().map(|name| (name.clone(), "v"));
        assert!(CustomHeaders::new(pairs(MAX_CUSTOM_HEADERS)).is_ok());
        assert_eq!(
            CustomHeaders::new(pairs(MAX_CUSTOM_HEADERS + 1)).map_err(|e| e.field()),
            Err(Field::Headers)
        );
        assert_eq!(field(&[("X-A", "1"), ("x-a", "2")]), Err(Field::Headers));
        let sorted = field(&[("X-B", "2"), ("X-A", "1")]).unwrap();
        assert_eq!(
            sorted.iter().collect::<Vec<_>>(),
            [("X-A", "1"), ("X-B", "2")]
        );
    }

    #[test]
    fn sealed_headers_keep_names_hide_values_and_round_trip() {
        let cipher = SecretCipher::new(&[1u8; 32]).unwrap();
        let headers = CustomHeaders::new([("X-Api-Key", "s3cr3t-value")]).unwrap();
        let sealed = cipher.seal_headers(&headers);
        let stored = sealed.to_stored();
        assert!(stored.starts_with(r#"[["X-Api-Key","x1:"#), "{stored}");
        assert!(!stored.contains("s3cr3t"));
        assert!(!format!("{sealed:?}{headers:?}").contains("s3cr3t"));
        let read = SealedHeaders::from_stored(&stored).unwrap();
        assert_eq!(cipher.open_headers(&read), Ok(headers));
        let other = SecretCipher::new(&[2u8; 32]).unwrap();
        assert_eq!(other.open_headers(&read), Err(SecretError::Undecryptable));
        assert_eq!(SealedHeaders::from_stored("not json"), None);
    }
}
