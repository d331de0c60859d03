//! A PostgreSQL cluster of the tests' own, made by
//! `scripts/pg-test-cluster.sh` (TLS on, a test CA, a `ctl` script to stop
//! and start it), for the tests that need TLS or must stop the server. The
//! machine's own server is never touched.

use std::path::PathBuf;
use std::process::Command;

/// The cluster named by an environment variable (its folder).
///
/// ```no_run
/// use webhooks_adapters_diesel::TestCluster;
///
/// // `None` (and a line saying the test is skipped) when the variable is unset.
/// if let Some(cluster) = TestCluster::from_env("TEST_TLS_CLUSTER") {
///     let url = cluster.verified_url();
/// }
/// ```
#[derive(Debug, Clone)]
pub struct TestCluster {
    dir: PathBuf,
    port: u16,
}

impl TestCluster {
    /// The cluster whose folder `variable` names, or `None` after printing
    /// why the calling test does nothing. `scripts/test.sh` always sets the
    /// variables, so CI runs these tests.
    pub fn from_env(variable: &str) -> Option<TestCluster> {
        let Some(dir) = std::env::var_os(variable).filter(|dir| !dir.is_empty()) else {
            eprintln!(
                "SKIPPED: {variable} is not set. This test needs a PostgreSQL cluster of its own \
                 made by scripts/pg-test-cluster.sh DIR PORT (scripts/test.sh does it): \
                 {variable}=DIR"
            );
            return None;
        };
        let dir = PathBuf::from(dir);
        let port = std::fs::read_to_string(dir.join("port"))
            .ok()
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| panic!("{variable}: no port file in {}", dir.display()));
        Some(TestCluster { dir, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A file of the cluster's `certs/` folder (`ca.crt`, `other-ca.crt`,
    /// `client.crt`, `client.key`).
    pub fn certificate(&self, name: &str) -> String {
        self.dir.join("certs").join(name).display().to_string()
    }

    /// `postgres://USER@HOST:PORT/postgres?QUERY`.
    pub fn url(&self, user: &str, host: &str, query: &str) -> String {
        format!("postgres://{user}@{host}:{}/postgres?{query}", self.port)
    }

    /// The superuser over TLS, checked all the way (`verify-full` with the
    /// test CA): an admin URL for [`crate::TestDatabase::postgres_on`].
    pub fn verified_url(&self) -> String {
        self.url(
            "postgres",
            "localhost",
            &format!(
                "sslmode=verify-full&sslrootcert={}",
                self.certificate("ca.crt")
            ),
        )
    }

    /// Stops the server (`pg_ctl stop -m fast`); returns once it is down.
    pub fn stop(&self) {
        self.ctl("stop");
    }

    /// Starts the server; returns once it accepts connections.
    pub fn start(&self) {
        self.ctl("start");
    }

    fn ctl(&self, action: &str) {
        let status = Command::new(self.dir.join("ctl"))
            .arg(action)
            .status()
            .unwrap_or_else(|error| panic!("cannot run the cluster's ctl {action}: {error}"));
        assert!(
            status.success(),
            "the cluster's ctl {action} failed: {status}"
        );
    }
}
