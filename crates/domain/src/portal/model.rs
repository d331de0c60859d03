//! A portal link, a portal session and the secrets that name them.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids::{ApiKeyId, GroupId, OrganizationId};
use crate::tenancy::Principal;
use crate::time::UnixMillis;

/// What the CSRF token of a session is derived from, besides its secret, so
/// that it can never equal a hash stored for anything else.
const CSRF_CONTEXT: &[u8] = b"okaya-portal-csrf:";

/// The secret a portal link or a session cookie carries: 256 random bits.
/// Only its hash ([`PortalTokenHash`]) is stored, so a database dump opens
/// no session.
///
/// ```
/// use webhooks_domain::PortalToken;
/// let token = PortalToken::generate();
/// let presented = PortalToken::from_presented(token.expose());
/// assert_eq!(token.hash(), presented.hash());
/// assert!(presented.csrf_matches(&token.csrf_token()));
/// assert!(!presented.csrf_matches("guess"));
/// ```
pub struct PortalToken(String);

impl PortalToken {
    /// A fresh token of 256 random bits.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Whatever a client presented (a link's token, a cookie's value).
    pub fn from_presented(raw: &str) -> Self {
        Self(raw.to_owned())
    }

    /// The token itself: only the link or the cookie may carry it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The form stored and looked up.
    pub fn hash(&self) -> PortalTokenHash {
        PortalTokenHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }

    /// The session's CSRF token: derived from the session's secret, so it is
    /// stored nowhere and a page of another site, which cannot read either,
    /// cannot send it.
    pub fn csrf_token(&self) -> String {
        let mut digest = Sha256::new();
        digest.update(CSRF_CONTEXT);
        digest.update(self.0.as_bytes());
        hex::encode(digest.finalize())
    }

    /// Whether `presented` is this session's CSRF token, compared in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        !presented.is_empty()
            && bool::from(self.csrf_token().as_bytes().ct_eq(presented.as_bytes()))
    }
}

impl fmt::Debug for PortalToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PortalToken(****)")
    }
}

/// The hex SHA-256 of a [`PortalToken`]: what storage keeps and looks up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortalTokenHash(String);

impl PortalTokenHash {
    /// Wraps a hash read back from storage.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The hash in lowercase hex, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who a link or a session acts for: one group, reached with the rights of
/// the API key that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalGrant {
    /// The only group it reaches.
    pub group_id: GroupId,
    /// The organization owning the group.
    pub organization_id: OrganizationId,
    /// The key it was made with; revoking the key ends it.
    pub api_key_id: ApiKeyId,
}

impl PortalGrant {
    /// The caller the public API's use cases see: limited to the group.
    pub fn principal(&self) -> Principal {
        Principal {
            organization_id: self.organization_id.clone(),
            api_key_id: self.api_key_id.clone(),
            group: Some(self.group_id),
        }
    }
}

/// A stored portal link (its token's hash) or session (its secret's hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalPass {
    /// The hash of the link's token or of the session's secret.
    pub hash: PortalTokenHash,
    /// What it gives access to.
    pub grant: PortalGrant,
    /// When it was made.
    pub created_at: UnixMillis,
    /// From when it is refused.
    pub expires_at: UnixMillis,
}

impl PortalPass {
    /// Whether it is still usable at `now`.
    pub fn is_live(&self, now: UnixMillis) -> bool {
        now < self.expires_at
    }
}
