//! Cross-process wake-ups: a PostgreSQL `LISTEN` on the channel every
//! publication `NOTIFY`s, so a worker in another process starts on new work at
//! once instead of at its next poll. Diesel can only drain notifications that
//! already arrived, so the listener holds a connection of the `postgres` crate,
//! which can block until one comes.

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use webhooks_domain::Wakeup;

use crate::database::Database;
use crate::deliveries::DELIVERIES_CHANNEL;

/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Database {
    /// On PostgreSQL, starts a background thread that fires `wakeup` whenever
    /// deliveries become due in any process (reconnecting with backoff after
    /// errors). On SQLite it does nothing: there one process does the work.
    /// Polling remains the safety net either way.
    pub fn spawn_listener(&self, wakeup: Wakeup) {
        let Some(url) = self.postgres_url().map(str::to_owned) else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("pg-listener".into())
            .spawn(move || listen_forever(&url, &wakeup));
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "cannot start the PostgreSQL listener; workers will poll");
        }
    }
}

fn listen_forever(url: &str, wakeup: &Wakeup) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match listen(url, wakeup) {
            Ok(()) => backoff = Duration::from_millis(500),
            Err(err) => {
                // The text comes from the driver; it holds no password.
                tracing::warn!(error = %err, retry_in = ?backoff, "PostgreSQL listener lost; workers poll meanwhile");
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Listens until the connection fails.
fn listen(url: &str, wakeup: &Wakeup) -> Result<(), postgres::Error> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    client.batch_execute(&format!("LISTEN {DELIVERIES_CHANNEL}"))?;
    tracing::debug!("listening for new deliveries");
    // Work may have been published while we were not listening.
    wakeup.notify();
    let mut notifications = client.notifications();
    let mut incoming = notifications.blocking_iter();
    loop {
        match incoming.next() {
            Ok(Some(_)) => wakeup.notify(),
            Ok(None) => return Ok(()),
            Err(err) => return Err(err),
        }
    }
}
