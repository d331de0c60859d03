//! Signing secrets (Standard Webhooks `whsec_` secrets) and their encryption at rest.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, KeyInit as _, Mac};
use rand::RngCore;
use sha2::Sha256;
use thiserror::Error;

const SECRET_PREFIX: &str = "whsec_";
const SECRET_BYTES: usize = 32;
const SEALED_PREFIX: &str = "x1:";
const NONCE_BYTES: usize = 24;

/// A webhook's signing secret: `whsec_` + base64 of 32 random bytes.
///
/// ```
/// use webhooks_domain::SigningSecret;
/// let secret = SigningSecret::generate();
/// assert!(secret.expose().starts_with("whsec_"));
/// let signature = secret.sign("evt_1", 1_700_000_000, b"{}");
/// assert!(signature.starts_with("v1,"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
}

impl SigningSecret {
    /// A fresh secret of 32 random bytes, for a new webhook or a rotation.
    pub fn generate() -> Self {
        let mut key = vec![0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut key);
        Self { key }
    }

    /// Reads a `whsec_` secret of 24 to 64 bytes.
    pub fn parse(raw: &str) -> Option<Self> {
        let key = STANDARD.decode(raw.strip_prefix(SECRET_PREFIX)?).ok()?;
        (24..=64).contains(&key.len()).then_some(Self { key })
    }

    /// The secret as the API shows it to its owner. Never log this.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// The Standard Webhooks signature `v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>`.
    ///
    /// A receiver verifies a delivery the same way: it signs the
    /// `webhook-id`, the `webhook-timestamp` and the raw body with its copy
    /// of the secret, and looks for the result among the space-separated
    /// signatures of `webhook-signature` (two during a rotation's grace
    /// period). It should also compare in constant time and refuse a
    /// timestamp far from its clock, against replays.
    ///
    /// ```
    /// use webhooks_domain::SigningSecret;
    /// // The receiver's copy of the secret, shown when the webhook was created.
    /// let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    /// // What arrived: the three headers and the raw body.
    /// let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    /// let timestamp = 1614265330;
    /// let signatures = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,c29tZSBvdGhlcg==";
    /// let body = br#"{"test": 2432232314}"#;
    ///
    /// let expected = secret.sign(id, timestamp, body);
    /// assert!(signatures.split(' ').any(|signature| signature == expected));
    /// ```
    pub fn sign(&self, message_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            // HMAC takes keys of any length; this arm cannot be reached.
            Err(_) => return String::new(),
        };
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_secs.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(****)")
    }
}

/// A signing secret as stored: encrypted and authenticated with the service's
/// key, so a database dump alone does not reveal it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret(String);

impl SealedSecret {
    /// Wraps a stored value; it is checked when opened.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The stored form: `x1:` and the base64 of nonce and ciphertext.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a [`SecretCipher`] could not be made or could not open a secret.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SecretError {
    /// The key is not 32 bytes (or, in base64, not base64).
    #[error("the encryption key must be 32 bytes, base64-encoded")]
    BadKey,
    /// The sealed secret was sealed with another key, or is damaged.
    #[error("a stored secret could not be decrypted (wrong encryption key or corrupt row)")]
    Undecryptable,
}

/// Encrypts signing secrets at rest with XChaCha20-Poly1305.
///
/// ```
/// use webhooks_domain::{SecretCipher, SigningSecret};
/// let cipher = SecretCipher::new(&[7u8; 32]).unwrap();
/// let secret = SigningSecret::generate();
/// let sealed = cipher.seal(&secret);
/// assert_eq!(cipher.open(&sealed).unwrap(), secret);
/// ```
#[derive(Clone)]
pub struct SecretCipher {
    aead: XChaCha20Poly1305,
}

impl SecretCipher {
    /// A cipher with a 32-byte key; [`SecretError::BadKey`] for any other length.
    pub fn new(key: &[u8]) -> Result<Self, SecretError> {
        let aead = XChaCha20Poly1305::new_from_slice(key).map_err(|_| SecretError::BadKey)?;
        Ok(Self { aead })
    }

    /// From the base64 form used in configuration.
    pub fn from_base64(key: &str) -> Result<Self, SecretError> {
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|_| SecretError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey);
        }
        Self::new(&bytes)
    }

    /// A fresh random key in the base64 form of configuration.
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        STANDARD.encode(key)
    }

    /// Encrypts a secret under a fresh random nonce: sealing one secret
    /// twice gives two different values.
    pub fn seal(&self, secret: &SigningSecret) -> SealedSecret {
        self.seal_bytes(&secret.key)
    }

    /// Decrypts a secret this key sealed; [`SecretError::Undecryptable`] when
    /// another key sealed it or the stored value is damaged.
    pub fn open(&self, sealed: &SealedSecret) -> Result<SigningSecret, SecretError> {
        self.open_bytes(sealed).map(|key| SigningSecret { key })
    }

    /// Encrypts any secret bytes (a signing key, a custom header's value).
    pub(crate) fn seal_bytes(&self, plain: &[u8]) -> SealedSecret {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .aead
            .encrypt(XNonce::from_slice(&nonce), plain)
            .unwrap_or_default();
        let mut packed = nonce.to_vec();
        packed.extend_from_slice(&ciphertext);
        SealedSecret(format!("{SEALED_PREFIX}{}", STANDARD.encode(packed)))
    }

    /// Decrypts what [`SecretCipher::seal_bytes`] sealed with this key.
    pub(crate) fn open_bytes(&self, sealed: &SealedSecret) -> Result<Vec<u8>, SecretError> {
        let packed = sealed
            .0
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .filter(|packed| packed.len() > NONCE_BYTES)
            .ok_or(SecretError::Undecryptable)?;
        let (nonce, ciphertext) = packed.split_at(NONCE_BYTES);
        self.aead
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| SecretError::Undecryptable)
    }
}

impl fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretCipher(****)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_reference_vector() {
        // The example of the Standard Webhooks specification.
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_secret_sealed_with_one_key_does_not_open_with_another() {
        let secret = SigningSecret::generate();
        let sealed = SecretCipher::new(&[1u8; 32]).unwrap().seal(&secret);
        assert!(!sealed.as_str().contains(&secret.expose()[6..]));
        assert_eq!(
            SecretCipher::new(&[2u8; 32]).unwrap().open(&sealed),
            Err(SecretError::Undecryptable)
        );
    }

    #[test]
    fn generated_secrets_parse_back() {
        let secret = SigningSecret::generate();
        assert_eq!(SigningSecret::parse(&secret.expose()), Some(secret));
        assert_eq!(SigningSecret::parse("whsec_c2hvcnQ="), None);
    }
}
