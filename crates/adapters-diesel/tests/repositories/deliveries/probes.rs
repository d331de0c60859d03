//! The probes' schedule: which webhooks are due, the lease of a claim, the
//! next probe, and enabling a webhook again in one transaction.

use std::time::Duration;

use webhooks_adapters_diesel::{Database, DieselProbeStore};
use webhooks_domain::{
    DeliveryQueue, DisabledReason, EndpointHealth, EventType, NextStep, ProbeNext, ProbeStore,
    StatusChange, TenancyRepository, UnixMillis, Webhook, WebhookRepository, WebhookStatus,
};

use super::{
    attempt, count_status_changes, deliver, disabled_reason, failing_since, operator_endpoint,
    status_changes, status_of, subject, told, RecordOne, LONG_LEASE,
};
use crate::support::{queue, tenancy, webhooks};

on_both_backends!(
    only_webhooks_disabled_for_failures_are_probed_first_after_the_first_wait,
    a_claimed_probe_is_hidden_until_its_lease_ends,
    concurrent_claims_never_get_the_same_probe,
    probing_gives_up_on_webhooks_disabled_before_the_limit,
    a_probe_again_is_due_at_its_time_with_its_streak_and_wait,
    enough_successes_enable_the_webhook_its_deliveries_and_tell_the_operator,
);

/// When [`disabled_by_failures`] disables its webhook.
const DISABLED_AT: i64 = 9_000;
const FIRST: Duration = Duration::from_millis(1_000);

fn probes(db: &Database) -> DieselProbeStore {
    DieselProbeStore::new(db.clone())
}

/// A webhook of group `id` with a pending delivery, disabled at
/// [`DISABLED_AT`] by a failure streak; answers it and its delivery.
async fn disabled_by_failures(db: &Database, id: i64) -> (Webhook, webhooks_domain::DeliveryId) {
    let (_, receiver) = subject(db, id).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);
    let retry = NextStep::RetryAt(UnixMillis(20_000));
    for (number, at, since) in [(1, 2_000, 0), (2, DISABLED_AT, 5_000)] {
        let failed = attempt(&delivery, number, at, Some(500));
        queue
            .record_attempt(&failed, retry, failing_since(since))
            .await
            .unwrap();
    }
    assert_eq!(
        disabled_reason(db, &receiver).await,
        Some(DisabledReason::Failures)
    );
    (receiver, delivery)
}

/// The webhooks whose probe is due at `now`, with a lease to `lease`.
async fn due(db: &Database, now: i64, lease: i64) -> Vec<String> {
    probes(db)
        .claim_due_probes(UnixMillis(now), FIRST, UnixMillis(0), 10, UnixMillis(lease))
        .await
        .unwrap()
        .into_iter()
        .map(|target| target.webhook_id.as_str().to_owned())
        .collect()
}

async fn only_webhooks_disabled_for_failures_are_probed_first_after_the_first_wait(db: &Database) {
    let (failing, _) = disabled_by_failures(db, 401).await;
    let (_, gone) = subject(db, 402).await;
    let delivery = deliver(db, &gone, 1_000).await;
    queue(db)
        .record_attempt(
            &attempt(&delivery, 1, 2_000, Some(410)),
            NextStep::Failed,
            EndpointHealth::Gone,
        )
        .await
        .unwrap();
    let (_, mut manual) = subject(db, 403).await;
    manual.status = WebhookStatus::Disabled;
    let change = StatusChange::Disabled(DisabledReason::Manual);
    webhooks(db).update(&manual, Some(change)).await.unwrap();
    subject(db, 404).await;

    assert_eq!(
        due(db, DISABLED_AT + 999, 50_000).await,
        Vec::<String>::new()
    );
    assert_eq!(
        due(db, DISABLED_AT + 1_000, 50_000).await,
        [failing.id.as_str()]
    );
}

async fn a_claimed_probe_is_hidden_until_its_lease_ends(db: &Database) {
    let (failing, _) = disabled_by_failures(db, 411).await;
    let now = DISABLED_AT + 5_000;

    assert_eq!(due(db, now, 30_000).await.len(), 1);
    assert!(due(db, now, 30_000).await.is_empty(), "claimed");
    assert!(due(db, 29_999, 60_000).await.is_empty(), "leased");
    assert_eq!(due(db, 30_000, 60_000).await, [failing.id.as_str()]);
}

async fn concurrent_claims_never_get_the_same_probe(db: &Database) {
    for group in 451..456 {
        disabled_by_failures(db, group).await;
    }
    let now = DISABLED_AT + 5_000;
    let claims = (0..4).map(|_| {
        let store = probes(db);
        tokio::spawn(async move {
            store
                .claim_due_probes(UnixMillis(now), FIRST, UnixMillis(0), 2, LONG_LEASE)
                .await
                .unwrap()
        })
    });
    let mut claimed: Vec<String> = Vec::new();
    for claim in claims.collect::<Vec<_>>() {
        let targets = claim.await.unwrap();
        claimed.extend(targets.iter().map(|t| t.webhook_id.as_str().to_owned()));
    }

    let mut distinct = claimed.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        claimed.len(),
        "a probe claimed twice: {claimed:?}"
    );
    assert!(claimed.len() <= 5);
}

async fn probing_gives_up_on_webhooks_disabled_before_the_limit(db: &Database) {
    disabled_by_failures(db, 421).await;
    let store = probes(db);
    let claim = |since| {
        store.claim_due_probes(UnixMillis(50_000), FIRST, UnixMillis(since), 10, LONG_LEASE)
    };

    assert!(claim(DISABLED_AT + 1).await.unwrap().is_empty());
    assert_eq!(claim(DISABLED_AT).await.unwrap().len(), 1);
}

async fn a_probe_again_is_due_at_its_time_with_its_streak_and_wait(db: &Database) {
    let (failing, _) = disabled_by_failures(db, 431).await;
    due(db, DISABLED_AT + 1_000, 50_000).await;
    let next = ProbeNext::Again {
        at: UnixMillis(70_000),
        wait: Duration::from_millis(4_000),
        successes: 2,
    };

    let recorded = probes(db)
        .record_probe(&failing.id, next, UnixMillis(60_000))
        .await;

    assert_eq!(recorded, Ok(true));
    assert!(due(db, 69_999, 90_000).await.is_empty());
    let claimed = probes(db)
        .claim_due_probes(UnixMillis(70_000), FIRST, UnixMillis(0), 10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let target = &claimed[0];
    assert_eq!(
        (target.successes, target.wait, target.url.as_str()),
        (2, Some(Duration::from_millis(4_000)), failing.url.as_str())
    );
    assert_eq!(target.secret, failing.secret);
}

async fn enough_successes_enable_the_webhook_its_deliveries_and_tell_the_operator(db: &Database) {
    let (failing, delivery) = disabled_by_failures(db, 441).await;
    let subject_group = tenancy(db)
        .find_group(failing.group_id)
        .await
        .unwrap()
        .unwrap();
    let endpoint = operator_endpoint(db, &subject_group, 9441, &EventType::OPERATIONAL).await;
    let before = told(db, &endpoint).await.len();
    let at = UnixMillis(60_000);
    let changes = count_status_changes(db);

    assert_eq!(
        probes(db)
            .record_probe(&failing.id, ProbeNext::Enable, at)
            .await,
        Ok(true)
    );
    assert_eq!(status_changes(&changes), 1, "a list cache forgets");

    assert_eq!(status_of(db, &failing).await, WebhookStatus::Enabled);
    assert_eq!(disabled_reason(db, &failing).await, None);
    let news = told(db, &endpoint).await;
    assert_eq!(news.len(), before + 1);
    let enabled = news.last().unwrap();
    assert_eq!(
        (enabled["type"].as_str(), enabled["data"]["reason"].as_str()),
        (Some("webhook.enabled"), Some("probe"))
    );
    let claimed = queue(db)
        .claim_due(
            UnixMillis(20_000),
            10,
            LONG_LEASE,
            std::slice::from_ref(&endpoint.id),
        )
        .await
        .unwrap();
    assert_eq!(super::job_ids(&claimed), [delivery]);
    assert!(
        due(db, 100_000, 200_000).await.is_empty(),
        "no longer probed"
    );
    assert_eq!(
        probes(db)
            .record_probe(&failing.id, ProbeNext::Enable, at)
            .await,
        Ok(false),
        "enabled once"
    );
    assert_eq!(status_changes(&changes), 1, "nothing changed");
}
