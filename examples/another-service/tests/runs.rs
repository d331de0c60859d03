//! The example runs as written: it delivers one signed event to its own
//! receiver and exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn another_service_delivers_a_signed_event_and_exits_0() {
    let output = Command::new(env!("CARGO_BIN_EXE_another-service"))
        .output()
        .expect("the example binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(stdout.contains("published evt_"), "{stdout}");
    assert!(
        stdout.contains("to the receiver, webhook-signature verified"),
        "{stdout}"
    );
}
