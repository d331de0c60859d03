//! Values that mask themselves wherever they are printed (`config check`,
//! `Debug`): tokens and keys, and the database URL's password.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::effective::MASK;
use super::values::refused;

/// A token or key. It shows as [`MASK`] wherever it is printed (`config
/// check`, `Debug`); [`Secret::expose`] is the one way to its text.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The text, for a consumer that keeps its own copy.
    pub fn into_exposed(self) -> String {
        self.0
    }

    /// An optional secret: missing, empty or blank counts as unset.
    pub fn unless_blank<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Secret>, D::Error> {
        let written = Option::<String>::deserialize(deserializer)?;
        Ok(written.filter(|text| !text.trim().is_empty()).map(Secret))
    }

    /// An optional encryption key: base64 of 32 bytes, or unset as in
    /// [`Secret::unless_blank`].
    pub fn encryption_key<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Secret>, D::Error> {
        let key = Self::unless_blank(deserializer)?;
        if let Some(key) = &key {
            webhooks_domain::SecretCipher::from_base64(key.expose()).map_err(refused)?;
        }
        Ok(key)
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Secret::new(text)
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Secret(text)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(MASK)
    }
}

/// `sqlite://PATH` or `postgres://…` (`postgresql://` too). Its text is what
/// the database adapter connects with; it shows (`config check`, `Debug`)
/// with any password as [`MASK`], see [`DatabaseUrl::masked`].
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the embedded SQLite database.
    pub fn is_sqlite(&self) -> bool {
        self.0.starts_with("sqlite://")
    }

    /// The URL with its password replaced by [`MASK`], both the one of
    /// `user:password@host` and a `password=` query parameter (libpq reads
    /// either). SQLite URLs carry no password and stay as they are.
    pub fn masked(&self) -> String {
        mask_database_url(&self.0)
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(written: &str) -> Result<Self, Self::Err> {
        let url = written.trim();
        if ["sqlite://", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            Ok(DatabaseUrl(url.to_owned()))
        } else {
            Err("must start with sqlite:// or postgres://".to_owned())
        }
    }
}

/// The text the adapter connects with, so `&settings.database.url` can be
/// passed where a `&str` is expected.
impl std::ops::Deref for DatabaseUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(refused)
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.masked())
    }
}

fn mask_database_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    if !scheme.starts_with("postgres") {
        return url.to_owned();
    }
    let mut masked = format!("{scheme}://");
    // The last `@`: a password may hold an unencoded `@`, a host never does.
    // Should a later part hold one, more is masked, never less.
    let after_userinfo = match rest.rfind('@') {
        Some(at) => {
            match rest[..at].split_once(':') {
                Some((user, _password)) => masked.push_str(&format!("{user}:{MASK}@")),
                None => masked.push_str(&rest[..=at]),
            }
            &rest[at + 1..]
        }
        None => rest,
    };
    match after_userinfo.split_once('?') {
        Some((location, query)) => {
            let parameters: Vec<String> = query
                .split('&')
                .map(|parameter| match parameter.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}={MASK}")
                    }
                    _ => parameter.to_owned(),
                })
                .collect();
            masked.push_str(&format!("{location}?{}", parameters.join("&")));
        }
        None => masked.push_str(after_userinfo),
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_text() {
        let secret = Secret::new("t0ken");
        assert_eq!(format!("{secret:?}"), MASK);
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"****\"");
        assert_eq!(secret.expose(), "t0ken");
    }

    #[test]
    fn a_database_url_is_sqlite_or_postgres_and_prints_masked() {
        let url: DatabaseUrl = " postgres://u:pw@db/x ".parse().unwrap();
        assert_eq!(url.as_str(), "postgres://u:pw@db/x");
        assert!(!url.is_sqlite());
        assert_eq!(format!("{url:?}"), "postgres://u:****@db/x");
        assert!("sqlite://data/a.db"
            .parse::<DatabaseUrl>()
            .unwrap()
            .is_sqlite());
        assert!("postgresql://db/x".parse::<DatabaseUrl>().is_ok());
        assert_eq!(
            "mysql://x".parse::<DatabaseUrl>().unwrap_err(),
            "must start with sqlite:// or postgres://"
        );
    }

    #[test]
    fn database_passwords_are_masked_wherever_libpq_reads_them() {
        let cases = [
            ("sqlite://data/webhooks.db", "sqlite://data/webhooks.db"),
            ("sqlite:///srv/a:b@c.db", "sqlite:///srv/a:b@c.db"),
            ("postgres://db/webhooks", "postgres://db/webhooks"),
            ("postgres://user@db/webhooks", "postgres://user@db/webhooks"),
            (
                "postgres://user:pw@db/webhooks",
                "postgres://user:****@db/webhooks",
            ),
            (
                "postgresql://:pw@db/webhooks",
                "postgresql://:****@db/webhooks",
            ),
            // An unencoded `@`, `/` or `?` in the password.
            (
                "postgres://u:p@s/s?w@db:5432/x",
                "postgres://u:****@db:5432/x",
            ),
            (
                "postgres://db/x?sslmode=require&PASSWORD=pw",
                "postgres://db/x?sslmode=require&PASSWORD=****",
            ),
        ];
        for (url, masked) in cases {
            assert_eq!(mask_database_url(url), masked, "{url}");
        }
    }
}
