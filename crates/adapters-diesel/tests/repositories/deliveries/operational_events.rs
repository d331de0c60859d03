//! Operational events: written to the organization's operator endpoint in
//! the transaction of the change that causes them, and only when there is
//! an endpoint that takes their type and the webhook is not its own group's.

use webhooks_adapters_diesel::{Database, TestDatabase};
use webhooks_domain::{
    DeliveryQueue, DeliveryStatus, DisabledReason, EnabledReason, EndpointHealth, EventType, Group,
    GroupId, NextStep, RepositoryError, SecretCipher, SigningSecret, StatusChange,
    TenancyRepository, UnixMillis, WebhookRepository, WebhookStatus,
};

use super::{
    attempt, deliver, disabled_reason, failing_since, operator_endpoint, status_of, subject, told,
    RecordOne,
};
use crate::support::{count_from, execute_raw, queue, tenancy, webhooks};

on_both_backends!(
    a_410_disables_the_webhook_and_tells_the_operator_endpoint_gone_and_failed,
    a_failure_streak_tells_the_operator_endpoint_disabled_for_failures,
    an_owner_status_change_is_stored_and_told_with_reason_manual,
    a_secret_rotation_tells_the_operator_endpoint,
    an_organization_has_at_most_one_operations_group,
);

on_both_backends!(test_database:
    without_an_operator_endpoint_nothing_is_written,
    an_event_type_the_operator_endpoint_does_not_take_is_not_written,
    the_operations_group_webhooks_are_never_told_about,
    an_event_that_cannot_be_written_undoes_the_change_that_caused_it,
);

async fn a_410_disables_the_webhook_and_tells_the_operator_endpoint_gone_and_failed(db: &Database) {
    let (group, receiver) = subject(db, 301).await;
    let endpoint = operator_endpoint(db, &group, 9301, &EventType::OPERATIONAL).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let gone = attempt(&delivery, 2, 2_000, Some(410));

    queue(db)
        .record_attempt(&gone, NextStep::Failed, EndpointHealth::Gone)
        .await
        .unwrap();

    assert_eq!(status_of(db, &receiver).await, WebhookStatus::Disabled);
    assert_eq!(
        disabled_reason(db, &receiver).await,
        Some(DisabledReason::Gone)
    );
    let told = told(db, &endpoint).await;
    let types: Vec<&str> = told
        .iter()
        .map(|body| body["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["webhook.disabled", "delivery.failed"]);
    assert_eq!(told[0]["groupID"], 9301);
    assert_eq!(told[0]["created"], 2);
    assert_eq!(
        told[0]["data"],
        serde_json::json!({"groupID": 301, "webhookID": receiver.id.as_str(),
                           "url": receiver.url.as_str(), "reason": "gone"})
    );
    let failed = &told[1]["data"];
    assert_eq!(failed["deliveryID"], delivery.as_str());
    assert_eq!(failed["eventType"], "user.created");
    assert!(failed["eventID"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(
        (&failed["attempts"], &failed["lastStatus"]),
        (&2.into(), &410.into())
    );
}

async fn a_failure_streak_tells_the_operator_endpoint_disabled_for_failures(db: &Database) {
    let (group, receiver) = subject(db, 302).await;
    let endpoint = operator_endpoint(db, &group, 9302, &[EventType::WebhookDisabled]).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let queue = queue(db);
    let retry = NextStep::RetryAt(UnixMillis(10_000));
    let first = attempt(&delivery, 1, 2_000, Some(500));
    queue
        .record_attempt(&first, retry, failing_since(0))
        .await
        .unwrap();
    assert!(told(db, &endpoint).await.is_empty(), "the streak is young");

    let second = attempt(&delivery, 2, 9_000, Some(500));
    queue
        .record_attempt(&second, retry, failing_since(5_000))
        .await
        .unwrap();

    assert_eq!(
        disabled_reason(db, &receiver).await,
        Some(DisabledReason::Failures)
    );
    let told = told(db, &endpoint).await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["type"], "webhook.disabled");
    assert_eq!(told[0]["data"]["reason"], "failures");
}

async fn an_owner_status_change_is_stored_and_told_with_reason_manual(db: &Database) {
    let (group, mut receiver) = subject(db, 303).await;
    let endpoint = operator_endpoint(db, &group, 9303, &EventType::OPERATIONAL).await;
    let repository = webhooks(db);

    receiver.status = WebhookStatus::Disabled;
    let manual = StatusChange::Disabled(DisabledReason::Manual);
    assert_eq!(repository.update(&receiver, Some(manual)).await, Ok(true));
    assert_eq!(
        disabled_reason(db, &receiver).await,
        Some(DisabledReason::Manual)
    );

    receiver.status = WebhookStatus::Enabled;
    let enabled = StatusChange::Enabled(EnabledReason::Manual);
    assert_eq!(repository.update(&receiver, Some(enabled)).await, Ok(true));
    assert_eq!(disabled_reason(db, &receiver).await, None);

    let told = told(db, &endpoint).await;
    let said: Vec<(&str, &str)> = told
        .iter()
        .map(|body| {
            (
                body["type"].as_str().unwrap(),
                body["data"]["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        said,
        [
            ("webhook.disabled", "manual"),
            ("webhook.enabled", "manual")
        ]
    );
}

async fn a_secret_rotation_tells_the_operator_endpoint(db: &Database) {
    let (group, receiver) = subject(db, 304).await;
    let endpoint = operator_endpoint(db, &group, 9304, &[EventType::SecretRotated]).await;
    let secret = SecretCipher::new(&[7u8; 32])
        .unwrap()
        .seal(&SigningSecret::generate());

    let rotated = webhooks(db)
        .rotate_secret(group.id, &receiver.id, &secret, UnixMillis(5_000))
        .await;

    assert_eq!(rotated, Ok(true));
    let told = told(db, &endpoint).await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["type"], "secret.rotated");
    assert_eq!(
        told[0]["data"],
        serde_json::json!({"groupID": 304, "webhookID": receiver.id.as_str()})
    );
}

async fn without_an_operator_endpoint_nothing_is_written(test_database: &TestDatabase) {
    let db = test_database.database();
    let (group, receiver) = subject(db, 305).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    // An operations group without a webhook is no operator endpoint, and
    // another organization's endpoint is not this one's.
    let lone = Group {
        id: GroupId::new(9305).unwrap(),
        organization_id: group.organization_id.clone(),
        name: "Operations".to_owned(),
        operations: true,
        created_at: UnixMillis(1),
    };
    tenancy(db).insert_group(&lone).await.unwrap();
    let other = crate::support::group(db, 306).await;
    operator_endpoint(db, &other, 9306, &EventType::OPERATIONAL).await;

    let gone = attempt(&delivery, 1, 2_000, Some(410));
    queue(db)
        .record_attempt(&gone, NextStep::Failed, EndpointHealth::Gone)
        .await
        .unwrap();

    assert_eq!(status_of(db, &receiver).await, WebhookStatus::Disabled);
    assert_eq!(operational_events_stored(test_database), 0);
}

/// How many events of an operational type the database holds.
fn operational_events_stored(test_database: &TestDatabase) -> i64 {
    let types: Vec<String> = EventType::OPERATIONAL
        .iter()
        .map(|event_type| format!("'{event_type}'"))
        .collect();
    let from = format!("events WHERE event_type IN ({})", types.join(", "));
    count_from(test_database.url(), &from)
}

async fn an_event_type_the_operator_endpoint_does_not_take_is_not_written(
    test_database: &TestDatabase,
) {
    let db = test_database.database();
    let (group, receiver) = subject(db, 307).await;
    operator_endpoint(db, &group, 9307, &[EventType::DeliveryFailed]).await;
    let secret = SecretCipher::new(&[7u8; 32])
        .unwrap()
        .seal(&SigningSecret::generate());

    webhooks(db)
        .rotate_secret(group.id, &receiver.id, &secret, UnixMillis(5_000))
        .await
        .unwrap();

    assert_eq!(operational_events_stored(test_database), 0);
}

async fn the_operations_group_webhooks_are_never_told_about(test_database: &TestDatabase) {
    let db = test_database.database();
    let (group, _) = subject(db, 308).await;
    let endpoint = operator_endpoint(db, &group, 9308, &EventType::OPERATIONAL).await;
    let delivery = deliver(db, &endpoint, 1_000).await;

    let gone = attempt(&delivery, 1, 2_000, Some(410));
    queue(db)
        .record_attempt(&gone, NextStep::Failed, EndpointHealth::Gone)
        .await
        .unwrap();

    assert_eq!(status_of(db, &endpoint).await, WebhookStatus::Disabled);
    assert_eq!(
        disabled_reason(db, &endpoint).await,
        Some(DisabledReason::Gone)
    );
    assert_eq!(operational_events_stored(test_database), 0);
}

async fn an_organization_has_at_most_one_operations_group(db: &Database) {
    let (group, _) = subject(db, 309).await;
    operator_endpoint(db, &group, 9309, &EventType::OPERATIONAL).await;
    let second = Group {
        id: GroupId::new(9310).unwrap(),
        organization_id: group.organization_id.clone(),
        name: "Operations too".to_owned(),
        operations: true,
        created_at: UnixMillis(2),
    };

    let refused = tenancy(db).insert_group(&second).await;

    assert!(
        matches!(refused, Err(RepositoryError::Conflict(_))),
        "{refused:?}"
    );
    let found = tenancy(db)
        .find_operations_group(&group.organization_id)
        .await;
    assert_eq!(
        found
            .unwrap()
            .map(|found| (found.id.get(), found.operations)),
        Some((9309, true))
    );
    let plain = tenancy(db).find_group(group.id).await.unwrap().unwrap();
    assert!(!plain.operations);
}

async fn an_event_that_cannot_be_written_undoes_the_change_that_caused_it(
    test_database: &TestDatabase,
) {
    let db = test_database.database();
    let (group, receiver) = subject(db, 311).await;
    let endpoint = operator_endpoint(db, &group, 9311, &EventType::OPERATIONAL).await;
    let delivery = deliver(db, &receiver, 1_000).await;
    let refuse = if test_database.url().starts_with("sqlite") {
        "CREATE TRIGGER refuse_disabled BEFORE INSERT ON events \
         WHEN NEW.event_type = 'webhook.disabled' BEGIN SELECT RAISE(ABORT, 'refused'); END"
    } else {
        "ALTER TABLE events ADD CONSTRAINT refuse_disabled CHECK (event_type <> 'webhook.disabled')"
    };
    execute_raw(test_database.url(), refuse);

    let gone = attempt(&delivery, 1, 2_000, Some(410));
    let recorded = queue(db)
        .record_attempt(&gone, NextStep::Failed, EndpointHealth::Gone)
        .await;

    assert!(recorded.is_err(), "{recorded:?}");
    assert_eq!(status_of(db, &receiver).await, WebhookStatus::Enabled);
    assert_eq!(disabled_reason(db, &receiver).await, None);
    let detail = queue(db)
        .find(&receiver.id, &delivery)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (detail.delivery.status, detail.attempts.len()),
        (DeliveryStatus::Pending, 0)
    );
    assert!(told(db, &endpoint).await.is_empty());
}
