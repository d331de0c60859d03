//! Self-healing endpoints: the probing schedule, and a probe pass against
//! mocks of its store and sender with a pinned clock.

use std::sync::Arc;
use std::time::Duration;

use mockall::predicate::eq;
use webhooks_domain::ports::{MockOutboundSender, MockProbeStore};
use webhooks_domain::{
    ProbeNext, ProbePolicy, ProbeTarget, Prober, SealedSecret, SendOutcome, SignedRequest,
    UnixMillis, Wakeup,
};

use crate::support::*;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

fn policy() -> ProbePolicy {
    ProbePolicy {
        first: MINUTE,
        max: HOUR,
        give_up_after: Duration::from_secs(3 * 24 * 3600),
        successes: 3,
    }
}

/// Webhook [`WEBHOOK_ID`] due for a probe after `successes` 2xx in a row,
/// `wait` after the previous probe.
fn target(successes: u32, wait: Option<Duration>) -> ProbeTarget {
    ProbeTarget {
        webhook_id: webhook_id(),
        group_id: group_id(),
        url: URL.to_owned(),
        secret: sealed_current_secret(),
        headers: None,
        successes,
        wait,
    }
}

fn at(after_now: Duration) -> UnixMillis {
    NOW.plus_millis(after_now.as_millis() as i64)
}

#[test]
fn failed_probes_double_the_wait_from_the_first_up_to_the_max() {
    let policy = policy();
    let mut wait = None;
    let mut waits = Vec::new();
    for _ in 0..8 {
        let ProbeNext::Again {
            wait: next,
            successes,
            ..
        } = policy.next(&target(0, wait), Some(500), NOW)
        else {
            panic!("a failure never enables");
        };
        assert_eq!(successes, 0);
        waits.push(next.as_secs() / 60);
        wait = Some(next);
    }
    assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60, 60]);
    assert_eq!(
        policy.next(&target(2, Some(MINUTE)), None, NOW),
        ProbeNext::Again {
            at: at(2 * MINUTE),
            wait: 2 * MINUTE,
            successes: 0
        },
        "no answer is a failure, and resets the streak"
    );
}

#[test]
fn a_success_probes_again_after_the_first_wait_until_enough_in_a_row_enable() {
    let policy = policy();
    assert_eq!(
        policy.next(&target(0, Some(16 * MINUTE)), Some(204), NOW),
        ProbeNext::Again {
            at: at(MINUTE),
            wait: MINUTE,
            successes: 1
        }
    );
    assert_eq!(
        policy.next(&target(1, Some(MINUTE)), Some(200), NOW),
        ProbeNext::Again {
            at: at(MINUTE),
            wait: MINUTE,
            successes: 2
        }
    );
    assert_eq!(
        policy.next(&target(2, Some(MINUTE)), Some(200), NOW),
        ProbeNext::Enable
    );
    assert_eq!(
        policy.next(&target(2, Some(MINUTE)), Some(301), NOW),
        ProbeNext::Again {
            at: at(2 * MINUTE),
            wait: 2 * MINUTE,
            successes: 0
        }
    );
}

/// A prober whose store hands out `targets` once and whose sender answers
/// `status`; the requests sent and the steps recorded are kept.
struct Probing {
    prober: Prober,
    wakeup: Wakeup,
    sent: Recorded<SignedRequest>,
    recorded: Recorded<ProbeNext>,
}

fn probing(targets: Vec<ProbeTarget>, status: Option<u16>, recorded_ok: bool) -> Probing {
    probing_with(clock_at_now(), targets, status, recorded_ok)
}

fn probing_with(
    clock: webhooks_domain::ports::MockClock,
    targets: Vec<ProbeTarget>,
    status: Option<u16>,
    recorded_ok: bool,
) -> Probing {
    let mut store = MockProbeStore::new();
    let give_up = NOW.plus_millis(-(3 * 24 * 3600 * 1000));
    let lease = NOW.plus_millis(120_000);
    store
        .expect_claim_due_probes()
        .with(eq(NOW), eq(MINUTE), eq(give_up), eq(32), eq(lease))
        .times(1)
        .returning(move |_, _, _, _, _| Ok(targets.clone()));
    let recorded = Recorded::new();
    let recorder = recorded.clone();
    store
        .expect_record_probe()
        .withf(|webhook, _, now| *webhook == webhook_id() && *now == NOW)
        .returning(move |_, next, _| {
            recorder.record(&next);
            Ok(recorded_ok)
        });
    let sent = Recorded::new();
    let sender_log = sent.clone();
    let mut sender = MockOutboundSender::new();
    sender.expect_send().returning(move |request| {
        sender_log.record(request);
        SendOutcome {
            status,
            ..SendOutcome::default()
        }
    });
    let wakeup = Wakeup::default();
    let prober = Prober::new(
        Arc::new(store),
        Arc::new(sender),
        Arc::new(clock),
        Arc::new(ids_giving_ulid()),
        cipher(),
        policy(),
        wakeup.clone(),
    );
    Probing {
        prober,
        wakeup,
        sent,
        recorded,
    }
}

#[tokio::test]
async fn a_probe_is_a_signed_test_event_sent_straight_to_the_webhook() {
    let probing = probing(vec![target(0, None)], Some(500), true);

    assert_eq!(probing.prober.probe_due().await, Ok(0));

    let request = probing.sent.get();
    assert_eq!(request.url, URL);
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["groupID"], GROUP);
    assert_eq!(request.webhook_id, format!("evt_{ULID_LOWER}"));
    assert_eq!(request.webhook_timestamp, NOW_SECS);
    let expected = current_secret().sign(&request.webhook_id, NOW_SECS, request.body.as_bytes());
    assert_eq!(request.webhook_signature, expected);
    assert_eq!(
        probing.recorded.get(),
        ProbeNext::Again {
            at: at(2 * MINUTE),
            wait: 2 * MINUTE,
            successes: 0
        }
    );
    assert_not_woken(&probing.wakeup).await;
}

#[tokio::test]
async fn the_last_success_needed_enables_the_webhook_and_wakes_the_dispatcher() {
    let probing = probing(vec![target(2, Some(MINUTE))], Some(200), true);

    assert_eq!(probing.prober.probe_due().await, Ok(1));

    assert_eq!(probing.recorded.get(), ProbeNext::Enable);
    assert_woken(&probing.wakeup).await;
}

#[tokio::test]
async fn a_webhook_enabled_meanwhile_by_someone_else_is_not_counted() {
    let probing = probing(vec![target(2, Some(MINUTE))], Some(200), false);

    assert_eq!(probing.prober.probe_due().await, Ok(0));
    assert_not_woken(&probing.wakeup).await;
}

#[tokio::test]
async fn a_secret_that_cannot_be_opened_is_a_failed_probe() {
    let mut unopenable = target(0, None);
    unopenable.secret = SealedSecret::from_stored("x1:not-sealed-by-this-key".to_owned());
    // The receiver would answer 200: the probe is failed without sending.
    let probing = probing(vec![unopenable], Some(200), true);

    assert_eq!(probing.prober.probe_due().await, Ok(0));

    assert_eq!(
        probing.recorded.get(),
        ProbeNext::Again {
            at: at(2 * MINUTE),
            wait: 2 * MINUTE,
            successes: 0
        }
    );
}

#[tokio::test]
async fn a_pass_sends_no_probe_once_half_its_lease_has_gone() {
    // The pass starts, checks its time, sends, schedules and records the
    // first probe at NOW; by its second probe a minute has gone.
    let mut clock = webhooks_domain::ports::MockClock::new();
    let mut calls = 0;
    clock.expect_now().returning(move || {
        calls += 1;
        if calls <= 5 {
            NOW
        } else {
            at(Duration::from_secs(60))
        }
    });
    let probing = probing_with(
        clock,
        vec![target(0, None), target(1, None)],
        Some(200),
        true,
    );

    assert_eq!(probing.prober.probe_due().await, Ok(0));

    // Only the first probe was recorded: its streak went from 0 to 1.
    assert_eq!(
        probing.recorded.get(),
        ProbeNext::Again {
            at: at(MINUTE),
            wait: MINUTE,
            successes: 1
        }
    );
}
