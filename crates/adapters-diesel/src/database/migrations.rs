//! The embedded migrations, one folder per backend with the same names, and
//! how they are applied at start-up.

use diesel::connection::SimpleConnection;
use diesel::PgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::{Database, DatabaseError, DbConnection};

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Serializes migrations of processes that start together on one PostgreSQL:
/// an arbitrary constant naming this service's advisory lock.
const MIGRATION_LOCK_KEY: i64 = 0x7765_6268_6f6f_6b73; // "webhooks" in ASCII

impl Database {
    /// Applies the embedded migrations not yet applied, from
    /// `migrations/postgres` or `migrations/sqlite`. Blocks; call it at
    /// start-up, before serving.
    pub fn migrate(&self) -> Result<(), DatabaseError> {
        let mut connection = self
            .pool
            .get()
            .map_err(|error| DatabaseError::Connect(error.to_string()))?;
        let applied = match &mut connection.connection {
            DbConnection::Postgres(connection) => migrate_postgres(connection)?,
            DbConnection::Sqlite(connection) => connection
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|applied| applied.len())
                .map_err(|error| DatabaseError::Migration(error.to_string()))?,
        };
        if applied > 0 {
            tracing::info!(backend = ?self.backend, applied, "database migrations applied");
        } else {
            tracing::info!(backend = ?self.backend, "database schema is up to date");
        }
        Ok(())
    }

    /// Undoes every migration, to prove the `down.sql` files work.
    #[cfg(test)]
    pub(crate) fn revert_all_migrations(&self) -> Result<(), DatabaseError> {
        let mut connection = self
            .pool
            .get()
            .map_err(|error| DatabaseError::Connect(error.to_string()))?;
        let reverted = match &mut connection.connection {
            DbConnection::Postgres(connection) => connection
                .revert_all_migrations(POSTGRES_MIGRATIONS)
                .map(drop),
            DbConnection::Sqlite(connection) => connection
                .revert_all_migrations(SQLITE_MIGRATIONS)
                .map(drop),
        };
        reverted.map_err(|error| DatabaseError::Migration(error.to_string()))
    }
}

/// Runs the PostgreSQL migrations under an advisory lock, so that several
/// processes starting at once on one database apply them one at a time.
fn migrate_postgres(connection: &mut PgConnection) -> Result<usize, DatabaseError> {
    let lock = |connection: &mut PgConnection, function: &str| {
        connection
            .batch_execute(&format!("SELECT {function}({MIGRATION_LOCK_KEY})"))
            .map_err(|error| DatabaseError::Migration(error.to_string()))
    };
    lock(connection, "pg_advisory_lock")?;
    let applied = connection
        .run_pending_migrations(POSTGRES_MIGRATIONS)
        .map(|applied| applied.len())
        .map_err(|error| DatabaseError::Migration(error.to_string()));
    // Unlock even when a migration failed: the connection goes back to the pool.
    let unlocked = lock(connection, "pg_advisory_unlock");
    let applied = applied?;
    unlocked?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn migration_names(backend: &str) -> Vec<String> {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let mut names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.path().is_dir())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn both_backends_have_the_same_migrations_each_with_up_and_down() {
        let postgres = migration_names("postgres");
        assert!(!postgres.is_empty());
        assert_eq!(postgres, migration_names("sqlite"));
        for backend in ["postgres", "sqlite"] {
            for name in &postgres {
                for file in ["up.sql", "down.sql"] {
                    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("migrations")
                        .join(backend)
                        .join(name)
                        .join(file);
                    assert!(path.is_file(), "missing {}", path.display());
                }
            }
        }
    }

    #[test]
    fn sqlite_migrations_revert_and_reapply() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("webhooks.db").display());
        let database = Database::connect(&url, 1).unwrap();
        database.migrate().unwrap();
        database.revert_all_migrations().unwrap();
        database.migrate().unwrap();
    }

    #[cfg(feature = "testing")]
    #[tokio::test]
    async fn postgres_migrations_revert_and_reapply() {
        let test_database = crate::TestDatabase::postgres().await;
        let database = test_database.database().clone();
        tokio::task::spawn_blocking(move || {
            database.revert_all_migrations().unwrap();
            database.migrate().unwrap();
        })
        .await
        .unwrap();
    }
}
