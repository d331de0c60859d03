//! Cross-process wake-ups: a PostgreSQL `LISTEN` on the channel every
//! publication `NOTIFY`s, so a worker in another process starts on new work at
//! once instead of at its next poll. Diesel can only drain notifications that
//! already arrived, so the listener holds a connection of the `postgres` crate,
//! which can block until one comes.

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use std::sync::Arc;

use webhooks_domain::Wakeup;

use crate::database::Database;
use crate::deliveries::DELIVERIES_CHANNEL;
use crate::tenancy::API_KEYS_CHANNEL;

/// What the listener does on each channel.
#[derive(Clone, Default)]
pub struct ListenerHooks {
    /// Fired when deliveries become due (workers).
    pub deliveries: Option<Wakeup>,
    /// Called when an API key was revoked (API processes drop cached keys).
    pub api_key_revoked: Option<Arc<dyn Fn() + Send + Sync>>,
}

/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Database {
    /// On PostgreSQL, starts a background thread that runs `hooks` whenever
    /// deliveries become due or an API key is revoked in any process
    /// (reconnecting with backoff after errors). On SQLite it does nothing:
    /// there one process does the work. Polling remains the safety net.
    pub fn spawn_listener(&self, hooks: ListenerHooks) {
        let Some(url) = self.postgres_url().map(str::to_owned) else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("pg-listener".into())
            .spawn(move || listen_forever(&url, &hooks));
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "cannot start the PostgreSQL listener; workers will poll");
        }
    }
}

fn listen_forever(url: &str, hooks: &ListenerHooks) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match listen(url, hooks) {
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
fn listen(url: &str, hooks: &ListenerHooks) -> Result<(), postgres::Error> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    client.batch_execute(&format!(
        "LISTEN {DELIVERIES_CHANNEL}; LISTEN {API_KEYS_CHANNEL}"
    ))?;
    tracing::debug!("listening for new deliveries and revoked keys");
    // Anything may have happened while we were not listening.
    fire(hooks, None);
    let mut notifications = client.notifications();
    let mut incoming = notifications.blocking_iter();
    loop {
        match incoming.next() {
            Ok(Some(notification)) => fire(hooks, Some(notification.channel())),
            Ok(None) => return Ok(()),
            Err(err) => return Err(err),
        }
    }
}

/// Runs the hooks of `channel`, or all of them for `None`.
fn fire(hooks: &ListenerHooks, channel: Option<&str>) {
    if channel.is_none_or(|c| c == DELIVERIES_CHANNEL) {
        if let Some(wakeup) = &hooks.deliveries {
            wakeup.notify();
        }
    }
    if channel.is_none_or(|c| c == API_KEYS_CHANNEL) {
        if let Some(forget) = &hooks.api_key_revoked {
            forget();
        }
    }
}
