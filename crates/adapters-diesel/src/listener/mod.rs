//! Cross-process wake-ups: a PostgreSQL `LISTEN` on the channel every
//! publication `NOTIFY`s, so a worker in another process starts on new work at
//! once instead of at its next poll. Diesel can only drain notifications that
//! already arrived, so the listener holds a connection of the `postgres` crate,
//! which can block until one comes. It connects with the TLS settings of the
//! URL, read as libpq reads them for the pool ([`url`]), the way libpq
//! connects ([`tls`]).

mod tls;
mod url;

use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use webhooks_domain::Wakeup;

use crate::database::Database;
use crate::deliveries::DELIVERIES_CHANNEL;
use crate::tenancy::API_KEYS_CHANNEL;
pub(crate) use url::ListenerConnection;

/// What the listener does on each channel.
#[derive(Clone, Default)]
pub struct ListenerHooks {
    /// Fired when deliveries become due (workers).
    pub deliveries: Option<Wakeup>,
    /// Called when an API key was revoked (API processes drop cached keys).
    pub api_key_revoked: Option<Arc<dyn Fn() + Send + Sync>>,
}

/// The wait before reconnecting after a lost connection; it doubles after
/// each failed attempt. Short: a server restart is usually over in a moment.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How often a listener waiting for notifications looks for a stop request:
/// the most [`Listener::stop`] waits, unless a connection attempt is under
/// way (bounded by the URL's `connect_timeout`).
const STOP_CHECK: Duration = Duration::from_millis(100);

/// The running listener of [`Database::spawn_listener`]. [`Listener::stop`]
/// closes its connection and waits for its thread; dropping it asks the
/// thread to stop without waiting.
#[must_use = "dropping the listener stops it"]
pub struct Listener {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// A listener that does nothing (SQLite, or no thread could be started).
    fn idle() -> Listener {
        Listener {
            stop: None,
            thread: None,
        }
    }

    /// Closes the connection and returns once the thread has ended, so no
    /// connection of the listener (nor its TLS) outlives this call.
    pub fn stop(mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::warn!("the PostgreSQL listener thread panicked");
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Disconnects the channel: the thread ends at its next check.
        drop(self.stop.take());
    }
}

/// Why [`listen`] returned.
enum Ended {
    Stopped,
    ConnectionLost,
}

impl Database {
    /// On PostgreSQL, starts a background thread that runs `hooks` whenever
    /// deliveries become due or an API key is revoked in any process
    /// (reconnecting with backoff after errors), until the returned
    /// [`Listener`] is stopped or dropped. On SQLite it does nothing: there
    /// one process does the work. Polling remains the safety net.
    pub fn spawn_listener(&self, hooks: ListenerHooks) -> Listener {
        let Some(url) = self.postgres_url() else {
            return Listener::idle();
        };
        let connection = match ListenerConnection::from_url(url) {
            Ok(connection) => connection,
            Err(err) => {
                // A parameter the listener cannot honour: say so once.
                tracing::error!(error = %err, "cannot LISTEN with database.url; workers will poll");
                return Listener::idle();
            }
        };
        let (stop, stopped) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("pg-listener".into())
            .spawn(move || listen_until_stopped(&connection, &hooks, &stopped));
        match spawned {
            Ok(thread) => Listener {
                stop: Some(stop),
                thread: Some(thread),
            },
            Err(err) => {
                tracing::warn!(error = %err, "cannot start the PostgreSQL listener; workers will poll");
                Listener::idle()
            }
        }
    }
}

fn listen_until_stopped(
    connection: &ListenerConnection,
    hooks: &ListenerHooks,
    stopped: &mpsc::Receiver<()>,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match listen(connection, hooks, stopped) {
            Ok(Ended::Stopped) => return,
            Ok(Ended::ConnectionLost) => backoff = FIRST_BACKOFF,
            Err(err) => {
                // The text comes from the driver; it holds no password.
                tracing::warn!(error = %err, retry_in = ?backoff, "PostgreSQL listener lost; workers poll meanwhile");
            }
        }
        match stopped.recv_timeout(backoff) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Listens until the connection fails or a stop is asked for.
fn listen(
    connection: &ListenerConnection,
    hooks: &ListenerHooks,
    stopped: &mpsc::Receiver<()>,
) -> Result<Ended, String> {
    let mut client = connection.connect()?;
    client
        .batch_execute(&format!(
            "LISTEN {DELIVERIES_CHANNEL}; LISTEN {API_KEYS_CHANNEL}"
        ))
        .map_err(|err| err.to_string())?;
    tracing::debug!("listening for new deliveries and revoked keys");
    // Anything may have happened while we were not listening.
    fire(hooks, None);
    loop {
        match stopped.try_recv() {
            Err(TryRecvError::Empty) => {}
            Ok(()) | Err(TryRecvError::Disconnected) => {
                // Says goodbye to the server and closes TLS on this thread.
                drop(client.close());
                return Ok(Ended::Stopped);
            }
        }
        let next = client.notifications().timeout_iter(STOP_CHECK).next();
        match next {
            Ok(Some(notification)) => fire(hooks, Some(notification.channel())),
            Ok(None) if client.is_closed() => return Ok(Ended::ConnectionLost),
            Ok(None) => {}
            Err(err) => return Err(err.to_string()),
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
