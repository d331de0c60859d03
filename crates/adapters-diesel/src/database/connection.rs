//! What a connection is: [`DbConnection`] over both backends, and the
//! [`Target`] a database URL names, which decides the backend once.

use std::path::Path;

use diesel::{Connection, PgConnection, SqliteConnection};

use super::DatabaseError;

/// libpq's own connect timeout (seconds), added to PostgreSQL URLs that set
/// none: libpq waits forever by default, which would pin a pool thread on an
/// unreachable host.
pub(super) const POSTGRES_CONNECT_TIMEOUT_SECS: u32 = 5;

/// A connection to either backend. Queries are written once against this type;
/// Diesel's derive dispatches them to the inner connection.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Which database a [`Database`](super::Database) talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Where to connect, read from the URL once.
#[derive(Debug, Clone)]
pub(super) enum Target {
    Postgres { url: String },
    Sqlite { path: String },
}

impl Target {
    pub(super) fn parse(url: &str) -> Result<Self, DatabaseError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            // Diesel would read a `file:` name as an SQLite URI, with its own
            // query options; `./` keeps it a plain file name.
            let path = if path.starts_with("file:") {
                format!("./{path}")
            } else {
                path.to_owned()
            };
            return match path.as_str() {
                "" => Err(DatabaseError::MissingSqlitePath),
                ":memory:" => Err(DatabaseError::InMemorySqlite),
                _ => Ok(Target::Sqlite { path }),
            };
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target::Postgres {
                url: with_connect_timeout(url),
            });
        }
        // Name only the scheme: the rest may hold a password.
        match url.split_once(':') {
            Some((scheme, _))
                if !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                Err(DatabaseError::UnsupportedScheme(scheme.to_owned()))
            }
            _ => Err(DatabaseError::MissingScheme),
        }
    }

    pub(super) fn backend(&self) -> Backend {
        match self {
            Target::Postgres { .. } => Backend::Postgres,
            Target::Sqlite { .. } => Backend::Sqlite,
        }
    }

    /// Opens one connection of the backend the URL named.
    pub(super) fn open(&self) -> Result<DbConnection, diesel::ConnectionError> {
        match self {
            Target::Postgres { url } => PgConnection::establish(url).map(DbConnection::Postgres),
            Target::Sqlite { path } => SqliteConnection::establish(path).map(DbConnection::Sqlite),
        }
    }
}

fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        url.to_owned()
    } else {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}connect_timeout={POSTGRES_CONNECT_TIMEOUT_SECS}")
    }
}

/// Creates the folder of an SQLite file if missing, so that `sqlite://PATH`
/// works on a fresh machine.
pub(super) fn create_parent_folder(path: &str) -> Result<(), DatabaseError> {
    match Path::new(path).parent() {
        Some(folder) if !folder.as_os_str().is_empty() => {
            std::fs::create_dir_all(folder).map_err(|source| DatabaseError::CreateFolder {
                path: folder.display().to_string(),
                source,
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_other_schemes_are_refused_naming_only_the_scheme() {
        let refused = |url: &str| Target::parse(url).map(|_| ()).unwrap_err().to_string();
        assert_eq!(
            refused("mysql://root:hunter2@db/webhooks"),
            "unsupported database URL scheme `mysql`: use sqlite://PATH or postgres://…"
        );
        assert_eq!(
            refused("data/webhooks.db"),
            "the database URL has no scheme: use sqlite://PATH or postgres://…"
        );
        assert!(matches!(
            Target::parse("sqlite://"),
            Err(DatabaseError::MissingSqlitePath)
        ));
        assert!(matches!(
            Target::parse("sqlite://:memory:"),
            Err(DatabaseError::InMemorySqlite)
        ));
    }

    #[test]
    fn sqlite_urls_become_plain_paths() {
        let path = |url: &str| match Target::parse(url).unwrap() {
            Target::Sqlite { path } => path,
            Target::Postgres { .. } => panic!("{url} is not SQLite"),
        };
        assert_eq!(path("sqlite://data/webhooks.db"), "data/webhooks.db");
        assert_eq!(
            path("sqlite:///var/lib/webhooks.db"),
            "/var/lib/webhooks.db"
        );
        assert_eq!(path("sqlite://file:x.db"), "./file:x.db");
    }

    #[test]
    fn postgres_urls_get_a_connect_timeout_unless_they_set_one() {
        let url = |raw: &str| match Target::parse(raw).unwrap() {
            Target::Postgres { url } => url,
            Target::Sqlite { .. } => panic!("{raw} is not PostgreSQL"),
        };
        assert_eq!(
            url("postgres://u@h/db"),
            "postgres://u@h/db?connect_timeout=5"
        );
        assert_eq!(
            url("postgresql://u@h/db?sslmode=disable"),
            "postgresql://u@h/db?sslmode=disable&connect_timeout=5"
        );
        assert_eq!(
            url("postgres://u@h/db?connect_timeout=1"),
            "postgres://u@h/db?connect_timeout=1"
        );
    }
}
