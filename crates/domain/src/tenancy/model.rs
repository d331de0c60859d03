//! Organizations own groups and API keys; a key sees only its organization's groups.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids::{ApiKeyId, GroupId, OrganizationId};
use crate::time::UnixMillis;

/// The longest organization or group name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// A customer of the service: it owns groups and API keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Its id (`org_…`).
    pub id: OrganizationId,
    /// Its name, checked by [`DisplayName`](crate::DisplayName).
    pub name: String,
    /// When it was created.
    pub created_at: UnixMillis,
}

/// A group: the unit the public API addresses by `groupID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Its `groupID`, unique across organizations.
    pub id: GroupId,
    /// The organization that owns it, for good.
    pub organization_id: OrganizationId,
    /// Its name, checked by [`DisplayName`](crate::DisplayName).
    pub name: String,
    /// Whether it is the organization's operations group, whose webhooks
    /// receive the operational events about the organization's other
    /// webhooks; an organization has at most one.
    pub operations: bool,
    /// When it was created.
    pub created_at: UnixMillis,
}

/// A stored API key: only the SHA-256 of the key is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Its id (`key_…`), which names it for revocation.
    pub id: ApiKeyId,
    /// The organization whose groups it may use.
    pub organization_id: OrganizationId,
    /// The hash of the key, the only form stored.
    pub hash: ApiKeyHash,
    /// When it was created.
    pub created_at: UnixMillis,
    /// When it was revoked; a revoked key is refused.
    pub revoked_at: Option<UnixMillis>,
}

/// Who is calling: the organization an accepted API key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The organization the key belongs to.
    pub organization_id: OrganizationId,
    /// The key that was accepted.
    pub api_key_id: ApiKeyId,
    /// The only group it may reach, for a portal session; `None` for the API
    /// key itself, which reaches every group of its organization.
    pub group: Option<GroupId>,
}

/// A plaintext API key, shown once at creation: `okw_` + 256 random bits.
///
/// ```
/// use webhooks_domain::ApiKeySecret;
/// let key = ApiKeySecret::generate();
/// assert!(key.expose().starts_with("okw_"));
/// assert!(key.hash().matches(&ApiKeySecret::from_header(key.expose()).hash()));
/// ```
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    /// A fresh key of 256 random bits.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("okw_{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Whatever a client sent in `x-api-key`, to be hashed and looked up.
    pub fn from_header(raw: &str) -> Self {
        Self(raw.to_owned())
    }

    /// The key itself. Only the creation answer may carry it; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The form stored and looked up.
    pub fn hash(&self) -> ApiKeyHash {
        ApiKeyHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret(****)")
    }
}

/// The hex SHA-256 of an API key. Keys carry 256 random bits, so a fast hash
/// is enough: there is nothing to brute-force.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiKeyHash(String);

impl ApiKeyHash {
    /// Wraps a hash read back from storage.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The hash in lowercase hex, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares in constant time, so the answer's timing says nothing about
    /// how much of a guess was right.
    pub fn matches(&self, other: &ApiKeyHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}
