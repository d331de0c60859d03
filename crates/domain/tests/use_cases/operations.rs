//! Operational events: which status changes an owner's update stores, where
//! operational event types are accepted, and the operator endpoint's use
//! cases.

use mockall::predicate::{always, eq};
use webhooks_domain::{
    DisabledReason, DomainError, EnabledEvents, EnabledReason, EventType, Field, Group, GroupId,
    Resource, StatusChange, Webhook, WebhookStatus, WebhookUpdate, WebhookUrl,
};

use crate::support::*;

const OPERATIONS_GROUP: i64 = 900_001;
const OPERATOR_URL: &str = "https://ops.example/webhooks";

/// The field of an `Invalid` answer (the reason is free text).
#[track_caller]
fn assert_invalid_field<T: std::fmt::Debug>(result: Result<T, DomainError>, field: Field) {
    match result {
        Err(DomainError::Invalid(invalid)) => assert_eq!(invalid.field(), field),
        other => panic!("expected an invalid {field:?}, got {other:?}"),
    }
}

/// Updates webhook [`webhook`] (whose status is `before`) with `update`;
/// answers the change stored with it.
async fn change_stored(before: WebhookStatus, update: WebhookUpdate) -> Option<StatusChange> {
    let stored = Recorded::new();
    let recorder = stored.clone();
    let mut webhooks = webhooks_finding(Some(Webhook {
        status: before,
        ..webhook()
    }));
    webhooks
        .expect_update()
        .times(1)
        .returning(move |_, change| {
            recorder.record(&change);
            Ok(true)
        });
    let service = Ports {
        webhooks,
        tenancy: tenancy_with_group_of(org_id()),
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .webhook_service();
    service
        .update(&principal(), group_id(), &webhook_id(), update)
        .await
        .unwrap();
    stored.get()
}

fn status_update(status: WebhookStatus) -> WebhookUpdate {
    WebhookUpdate {
        status: Some(status),
        ..webhook_update()
    }
}

#[tokio::test]
async fn an_owner_disabling_an_enabled_webhook_stores_a_manual_disabling() {
    assert_eq!(
        change_stored(
            WebhookStatus::Enabled,
            status_update(WebhookStatus::Disabled)
        )
        .await,
        Some(StatusChange::Disabled(DisabledReason::Manual))
    );
}

#[tokio::test]
async fn an_owner_enabling_a_disabled_webhook_stores_a_manual_enabling() {
    assert_eq!(
        change_stored(
            WebhookStatus::Disabled,
            status_update(WebhookStatus::Enabled)
        )
        .await,
        Some(StatusChange::Enabled(EnabledReason::Manual))
    );
}

#[tokio::test]
async fn an_update_that_keeps_the_status_stores_no_change() {
    assert_eq!(
        change_stored(WebhookStatus::Disabled, webhook_update()).await,
        None
    );
    assert_eq!(
        change_stored(
            WebhookStatus::Disabled,
            status_update(WebhookStatus::Disabled)
        )
        .await,
        None
    );
}

#[tokio::test]
async fn operational_events_outside_the_operations_group_are_invalid_and_store_nothing() {
    let service = Ports {
        tenancy: tenancy_with_group_of(org_id()),
        ..Ports::untouched()
    }
    .webhook_service();
    let new = webhooks_domain::NewWebhook {
        enabled_events: EnabledEvents::new([EventType::UserCreated, EventType::WebhookDisabled])
            .unwrap(),
        ..new_webhook()
    };
    assert_invalid_field(
        service.create(&principal(), group_id(), new).await,
        Field::EnabledEvents,
    );

    let service = ports_with_webhook().webhook_service();
    let update = WebhookUpdate {
        enabled_events: Some(EnabledEvents::operational()),
        ..webhook_update()
    };
    assert_invalid_field(
        service
            .update(&principal(), group_id(), &webhook_id(), update)
            .await,
        Field::EnabledEvents,
    );
}

#[tokio::test]
async fn operational_events_are_accepted_for_a_webhook_of_the_operations_group() {
    let mut tenancy = webhooks_domain::ports::MockTenancyRepository::new();
    tenancy
        .expect_find_group()
        .times(1)
        .returning(|_| Ok(Some(operations_group())));
    let mut webhooks = webhooks_domain::ports::MockWebhookRepository::new();
    webhooks.expect_insert().times(1).returning(|_| Ok(()));
    let service = Ports {
        tenancy,
        webhooks,
        clock: clock_at_now(),
        ids: ids_giving_ulid(),
        ..Ports::untouched()
    }
    .webhook_service();
    let new = webhooks_domain::NewWebhook {
        enabled_events: EnabledEvents::operational(),
        ..new_webhook()
    };
    let created = service
        .create(&principal(), operations_group().id, new)
        .await
        .unwrap();
    assert_eq!(created.webhook.enabled_events, EnabledEvents::operational());
}

#[tokio::test]
async fn publishing_an_operational_event_is_invalid_before_any_port() {
    let publisher = Ports::untouched().publisher(&webhooks_domain::Wakeup::default());
    for event_type in EventType::OPERATIONAL {
        let event = webhooks_domain::NewEvent {
            event_type,
            ..new_event()
        };
        assert_invalid_field(publisher.publish(event).await, Field::EventType);
    }
}

// ---------------------------------------------------------------------------
// The operator endpoint
// ---------------------------------------------------------------------------

fn operations_group() -> Group {
    Group {
        id: GroupId::new(OPERATIONS_GROUP).unwrap(),
        organization_id: org_id(),
        name: "Operations".to_owned(),
        operations: true,
        created_at: CREATED,
    }
}

fn operator_webhook() -> Webhook {
    Webhook {
        group_id: operations_group().id,
        enabled_events: EnabledEvents::operational(),
        ..webhook()
    }
}

/// Organization [`org_id`] exists; its operations group is `found`.
fn tenancy_with_operations_group(
    found: Option<Group>,
) -> webhooks_domain::ports::MockTenancyRepository {
    let mut tenancy = tenancy_with_organization();
    tenancy
        .expect_find_operations_group()
        .with(eq(org_id()))
        .times(1)
        .returning(move |_| Ok(found.clone()));
    tenancy
}

/// The operations group lists `found`.
fn webhooks_listing(found: Vec<Webhook>) -> webhooks_domain::ports::MockWebhookRepository {
    let mut webhooks = webhooks_domain::ports::MockWebhookRepository::new();
    webhooks
        .expect_list_by_group()
        .with(eq(operations_group().id))
        .times(1)
        .returning(move |_| Ok(found.clone()));
    webhooks
}

#[tokio::test]
async fn the_first_operator_endpoint_makes_the_operations_group_and_its_webhook() {
    let mut tenancy = tenancy_with_operations_group(None);
    let group = Recorded::new();
    let recorder = group.clone();
    tenancy
        .expect_insert_group()
        .times(1)
        .returning(move |made| {
            recorder.record(made);
            Ok(())
        });
    let mut ids = ids_giving_ulid();
    ids.expect_group_id()
        .return_const(GroupId::new(OPERATIONS_GROUP).unwrap());
    let mut webhooks = webhooks_listing(Vec::new());
    let inserted = Recorded::new();
    let recorder = inserted.clone();
    webhooks.expect_insert().times(1).returning(move |webhook| {
        recorder.record(webhook);
        Ok(())
    });
    let operators = Ports {
        tenancy,
        webhooks,
        ids,
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .operator_endpoints();
    let events = EnabledEvents::new([EventType::WebhookDisabled]).unwrap();

    let set = operators
        .set(
            &org_id(),
            WebhookUrl::new(OPERATOR_URL).unwrap(),
            events.clone(),
        )
        .await
        .unwrap();

    assert!(set.created);
    let group = group.get();
    assert!(group.operations);
    assert_eq!(group.organization_id, org_id());
    assert_eq!(set.endpoint.group, group);
    let webhook: Webhook = inserted.get();
    assert_eq!(webhook, set.endpoint.webhook);
    assert_eq!(
        (
            webhook.group_id,
            webhook.url.as_str(),
            &webhook.enabled_events
        ),
        (group.id, OPERATOR_URL, &events)
    );
    assert_eq!(webhook.status, WebhookStatus::Enabled);
    assert_eq!(cipher().open(&webhook.secret), Ok(set.secret));
}

#[tokio::test]
async fn setting_it_again_changes_its_url_and_events_and_answers_its_secret() {
    let mut webhooks = webhooks_listing(vec![operator_webhook()]);
    let updated = Recorded::new();
    let recorder = updated.clone();
    webhooks
        .expect_update()
        .with(always(), eq(None))
        .times(1)
        .returning(move |webhook, _| {
            recorder.record(webhook);
            Ok(true)
        });
    let operators = Ports {
        tenancy: tenancy_with_operations_group(Some(operations_group())),
        webhooks,
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .operator_endpoints();
    let events = EnabledEvents::new([EventType::SecretRotated]).unwrap();

    let set = operators
        .set(
            &org_id(),
            WebhookUrl::new(OPERATOR_URL).unwrap(),
            events.clone(),
        )
        .await
        .unwrap();

    assert!(!set.created);
    let webhook: Webhook = updated.get();
    assert_eq!(
        (
            webhook.id,
            webhook.url.as_str(),
            webhook.enabled_events,
            webhook.updated_at
        ),
        (webhook_id(), OPERATOR_URL, events, NOW)
    );
    assert_eq!(set.secret.expose(), CURRENT_SECRET);
}

#[tokio::test]
async fn an_operator_endpoint_takes_operational_events_only() {
    let operators = Ports::untouched().operator_endpoints();
    let result = operators
        .set(
            &org_id(),
            WebhookUrl::new(OPERATOR_URL).unwrap(),
            EnabledEvents::new([EventType::WebhookEnabled, EventType::UserCreated]).unwrap(),
        )
        .await;
    assert_invalid_field(result, Field::EnabledEvents);
}

#[tokio::test]
async fn an_unknown_organization_has_no_operator_endpoint_to_set_find_or_remove() {
    let operators = || {
        let mut tenancy = webhooks_domain::ports::MockTenancyRepository::new();
        tenancy
            .expect_find_organization()
            .times(1)
            .returning(|_| Ok(None));
        Ports {
            tenancy,
            ..Ports::untouched()
        }
        .operator_endpoints()
    };
    let not_found = DomainError::NotFound(Resource::Organization);
    let url = WebhookUrl::new(OPERATOR_URL).unwrap();
    let set = operators()
        .set(&org_id(), url, EnabledEvents::operational())
        .await;
    assert_rejected(set, not_found.clone());
    assert_rejected(operators().find(&org_id()).await, not_found.clone());
    assert_rejected(operators().remove(&org_id()).await, not_found);
}

#[tokio::test]
async fn without_an_operations_group_or_its_webhook_there_is_no_operator_endpoint() {
    let operators = Ports {
        tenancy: tenancy_with_operations_group(None),
        ..Ports::untouched()
    }
    .operator_endpoints();
    assert_rejected(
        operators.find(&org_id()).await,
        DomainError::NotFound(Resource::OperatorEndpoint),
    );
    let operators = Ports {
        tenancy: tenancy_with_operations_group(Some(operations_group())),
        webhooks: webhooks_listing(Vec::new()),
        ..Ports::untouched()
    }
    .operator_endpoints();
    assert_rejected(
        operators.remove(&org_id()).await,
        DomainError::NotFound(Resource::OperatorEndpoint),
    );
}

#[tokio::test]
async fn removing_the_operator_endpoint_deletes_its_webhook_and_keeps_the_group() {
    let mut webhooks = webhooks_listing(vec![operator_webhook()]);
    webhooks
        .expect_delete()
        .with(eq(operations_group().id), eq(webhook_id()))
        .times(1)
        .returning(|_, _| Ok(true));
    let operators = Ports {
        tenancy: tenancy_with_operations_group(Some(operations_group())),
        webhooks,
        ..Ports::untouched()
    }
    .operator_endpoints();
    assert_eq!(operators.remove(&org_id()).await, Ok(()));
}
