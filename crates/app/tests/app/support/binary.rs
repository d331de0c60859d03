//! Runs the real `okaya-webhooks` binary for the tests that need a whole
//! process: it reads the bound address from the log and the demo tenant from
//! standard output.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct RunningBinary {
    child: Child,
    pub address: String,
    /// The demo API key printed on the first start of an empty database.
    pub demo_key: Option<String>,
    /// The portal's address printed with it.
    pub demo_portal: Option<String>,
    pub log: mpsc::Receiver<String>,
}

impl RunningBinary {
    /// Starts `okaya-webhooks` with the given environment in `dir` and waits
    /// for its `listening on http://ADDR` line.
    pub fn start(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> RunningBinary {
        let mut command = Command::new(env!("CARGO_BIN_EXE_okaya-webhooks"));
        command
            .args(args)
            .current_dir(dir)
            .env("WEBHOOKS__SERVER__BIND", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the binary starts");
        let (lines_tx, lines) = mpsc::channel::<String>();
        let (log_tx, log) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let out_tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = out_tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line.clone());
                let _ = log_tx.send(line);
            }
        });
        // Standard output and the log are read by two threads, so the demo
        // block may come through before the `listening on` line or after it.
        let demo_key_in = |line: &str| {
            line.trim()
                .strip_prefix("API key")
                .map(|rest| rest.trim().to_owned())
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut demo_key = None;
        let mut demo_portal = None;
        let portal_in = |line: &str| {
            let line = line.trim();
            (line.starts_with("http://") && line.contains("/portal/")).then(|| line.to_owned())
        };
        let address = loop {
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = lines.recv_timeout(remaining) else {
                let _ = child.kill();
                panic!("no `listening on` line; exit: {:?}", child.try_wait());
            };
            demo_key = demo_key.or_else(|| demo_key_in(&line));
            demo_portal = demo_portal.or_else(|| portal_in(&line));
            if let Some(rest) = line.split("listening on http://").nth(1) {
                // In a JSON log the address ends at the message's closing quote.
                let bound: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '"')
                    .collect();
                break format!("http://{bound}");
            }
        };
        // On a brand-new database the demo tenant is printed right after,
        // its portal address last.
        while demo_portal.is_none() {
            let Ok(line) = lines.recv_timeout(Duration::from_millis(1500)) else {
                break;
            };
            demo_key = demo_key.or_else(|| demo_key_in(&line));
            demo_portal = portal_in(&line);
        }
        RunningBinary {
            child,
            address,
            demo_key,
            demo_portal,
            log,
        }
    }

    /// SIGTERM, then waits (at most `within`) for the process to exit;
    /// answers its exit status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running {within:?} after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the process gets no chance to finish anything.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RunningBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
