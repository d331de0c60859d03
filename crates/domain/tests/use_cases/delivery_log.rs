//! [`DeliveryService`]: the delivery log of a webhook and its actions.

use mockall::predicate::{always, eq};
use webhooks_domain::ports::{MockDeliveryQueue, MockEventStore};
use webhooks_domain::{
    Conflict, Delivery, DeliveryId, DeliveryPage, DeliveryQuery, DeliveryService, DeliveryStatus,
    DomainError, Event, PageSize, Requeue, Resource, TestSend, UnixMillis, Wakeup, Webhook,
    WebhookStatus, TEST_EVENT_TYPE,
};

use crate::support::*;

// ---------------------------------------------------------------------------
// DeliveryService::list
// ---------------------------------------------------------------------------

/// Lists the deliveries of [`WEBHOOK_ID`] in group [`GROUP`] as the caller.
async fn list_with(
    service: &DeliveryService,
    query: DeliveryQuery,
) -> Result<DeliveryPage, DomainError> {
    service
        .list(&principal(), group_id(), &webhook_id(), query)
        .await
}

/// A queue whose `list` is asked exactly for these arguments and answers `found`.
fn queue_listing(
    status: Option<DeliveryStatus>,
    before: Option<DeliveryId>,
    limit: usize,
    found: Vec<Delivery>,
) -> MockDeliveryQueue {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_list()
        .with(eq(webhook_id()), eq(status), eq(before), eq(limit))
        .times(1)
        .returning(move |_, _, _, _| Ok(found.clone()));
    queue
}

#[tokio::test]
async fn list_of_unknown_webhook_is_webhook_not_found_without_reading_the_queue() {
    let service = Ports {
        tenancy: tenancy_with_group_of(org_id()),
        webhooks: webhooks_finding(None),
        ..Ports::untouched()
    }
    .delivery_service(&Wakeup::default());

    assert_rejected(
        list_with(&service, DeliveryQuery::default()).await,
        DomainError::NotFound(Resource::Webhook),
    );
}

#[tokio::test]
async fn list_asks_the_queue_for_one_more_than_the_limit_with_the_filter_and_cursor() {
    let found = vec![delivery(3), delivery(2)];
    let service = Ports {
        queue: queue_listing(
            Some(DeliveryStatus::Failed),
            Some(delivery_id()),
            3,
            found.clone(),
        ),
        ..ports_with_webhook()
    }
    .delivery_service(&Wakeup::default());
    let query = DeliveryQuery {
        status: Some(DeliveryStatus::Failed),
        before: Some(delivery_id()),
        limit: PageSize::new(2).unwrap(),
    };

    assert_eq!(
        list_with(&service, query).await,
        Ok(DeliveryPage {
            deliveries: found,
            next_cursor: None,
        })
    );
}

#[tokio::test]
async fn list_without_query_asks_for_the_default_page_of_50() {
    let service = Ports {
        queue: queue_listing(None, None, 51, vec![]),
        ..ports_with_webhook()
    }
    .delivery_service(&Wakeup::default());

    assert_eq!(
        list_with(&service, DeliveryQuery::default()).await,
        Ok(DeliveryPage {
            deliveries: vec![],
            next_cursor: None,
        })
    );
}

#[tokio::test]
async fn list_accepts_the_largest_limit_of_250() {
    let service = Ports {
        queue: queue_listing(Some(DeliveryStatus::Pending), None, 251, vec![delivery(1)]),
        ..ports_with_webhook()
    }
    .delivery_service(&Wakeup::default());
    let query = DeliveryQuery {
        status: Some(DeliveryStatus::Pending),
        limit: PageSize::new(250).unwrap(),
        ..DeliveryQuery::default()
    };

    assert_eq!(
        list_with(&service, query).await,
        Ok(DeliveryPage {
            deliveries: vec![delivery(1)],
            next_cursor: None,
        })
    );
}

#[tokio::test]
async fn list_with_more_deliveries_than_the_limit_answers_the_limit_and_the_last_id_as_cursor() {
    let service = Ports {
        queue: queue_listing(None, None, 3, vec![delivery(9), delivery(8), delivery(7)]),
        ..ports_with_webhook()
    }
    .delivery_service(&Wakeup::default());
    let query = DeliveryQuery {
        limit: PageSize::new(2).unwrap(),
        ..DeliveryQuery::default()
    };

    assert_eq!(
        list_with(&service, query).await,
        Ok(DeliveryPage {
            deliveries: vec![delivery(9), delivery(8)],
            next_cursor: Some(delivery(8).id),
        })
    );
}

#[tokio::test]
async fn list_when_the_queue_fails_is_unexpected() {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_list()
        .times(1)
        .returning(|_, _, _, _| Err(unavailable()));
    let service = Ports {
        queue,
        ..ports_with_webhook()
    }
    .delivery_service(&Wakeup::default());

    assert_rejected(
        list_with(&service, DeliveryQuery::default()).await,
        unexpected(),
    );
}

#[tokio::test]
async fn list_in_group_of_another_organization_is_group_not_found() {
    let service = ports_of_other_organization().delivery_service(&Wakeup::default());

    assert_rejected(
        list_with(&service, DeliveryQuery::default()).await,
        DomainError::NotFound(Resource::Group),
    );
}

// ---------------------------------------------------------------------------
// DeliveryService::get and retry
// ---------------------------------------------------------------------------

#[tokio::test]
async fn get_of_unknown_delivery_is_delivery_not_found() {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_find()
        .with(eq(webhook_id()), eq(delivery_id()))
        .times(1)
        .returning(|_, _| Ok(None));
    let service = Ports {
        queue,
        ..ports_with_webhook()
    }
    .delivery_service(&Wakeup::default());

    assert_rejected(
        service
            .get(&principal(), group_id(), &webhook_id(), &delivery_id())
            .await,
        DomainError::NotFound(Resource::Delivery),
    );
}

#[tokio::test]
async fn get_returns_the_delivery_with_its_body_and_attempts() {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_find()
        .with(eq(webhook_id()), eq(delivery_id()))
        .times(1)
        .returning(|_, _| Ok(Some(delivery_detail())));
    let service = Ports {
        queue,
        ..ports_with_webhook()
    }
    .delivery_service(&Wakeup::default());

    assert_eq!(
        service
            .get(&principal(), group_id(), &webhook_id(), &delivery_id())
            .await,
        Ok(delivery_detail())
    );
}

#[tokio::test]
async fn get_in_group_of_another_organization_is_group_not_found() {
    let service = ports_of_other_organization().delivery_service(&Wakeup::default());

    assert_rejected(
        service
            .get(&principal(), group_id(), &webhook_id(), &delivery_id())
            .await,
        DomainError::NotFound(Resource::Group),
    );
}

/// A queue whose `requeue` of [`DELIVERY_ID`] at [`NOW`] answers `outcome`.
fn queue_requeuing(outcome: Requeue) -> MockDeliveryQueue {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_requeue()
        .with(eq(webhook_id()), eq(delivery_id()), eq(NOW))
        .times(1)
        .returning(move |_, _, _| Ok(outcome));
    queue
}

#[tokio::test]
async fn retry_of_unknown_delivery_is_delivery_not_found_and_wakes_nobody() {
    let wakeup = Wakeup::default();
    let service = Ports {
        queue: queue_requeuing(Requeue::NotFound),
        clock: clock_at_now(),
        ..ports_with_webhook()
    }
    .delivery_service(&wakeup);

    assert_rejected(
        service
            .retry(&principal(), group_id(), &webhook_id(), &delivery_id())
            .await,
        DomainError::NotFound(Resource::Delivery),
    );
    assert_not_woken(&wakeup).await;
}

#[tokio::test]
async fn retry_of_a_delivery_in_flight_is_delivery_in_progress_and_wakes_nobody() {
    let wakeup = Wakeup::default();
    let service = Ports {
        queue: queue_requeuing(Requeue::InFlight),
        clock: clock_at_now(),
        ..ports_with_webhook()
    }
    .delivery_service(&wakeup);

    assert_rejected(
        service
            .retry(&principal(), group_id(), &webhook_id(), &delivery_id())
            .await,
        DomainError::Conflict(Conflict::DeliveryInProgress),
    );
    assert_not_woken(&wakeup).await;
}

#[tokio::test]
async fn retry_requeues_the_delivery_due_now_and_wakes_the_dispatcher() {
    let wakeup = Wakeup::default();
    let service = Ports {
        queue: queue_requeuing(Requeue::Requeued),
        clock: clock_at_now(),
        ..ports_with_webhook()
    }
    .delivery_service(&wakeup);

    assert_eq!(
        service
            .retry(&principal(), group_id(), &webhook_id(), &delivery_id())
            .await,
        Ok(delivery_id())
    );
    assert_woken(&wakeup).await;
}

#[tokio::test]
async fn retry_in_group_of_another_organization_is_group_not_found() {
    let wakeup = Wakeup::default();
    let service = ports_of_other_organization().delivery_service(&wakeup);

    assert_rejected(
        service
            .retry(&principal(), group_id(), &webhook_id(), &delivery_id())
            .await,
        DomainError::NotFound(Resource::Group),
    );
    assert_not_woken(&wakeup).await;
}

// ---------------------------------------------------------------------------
// DeliveryService::send_test
// ---------------------------------------------------------------------------

/// The ports of a test send to [`WEBHOOK_ID`]; the stored event is recorded.
fn test_send_ports(stored: &Recorded<Event>) -> Ports {
    let mut events = MockEventStore::new();
    let recorder = stored.clone();
    events
        .expect_publish_to()
        .with(always(), eq(webhook_id()))
        .times(1)
        .returning(move |event, _| {
            recorder.record(event);
            Ok(delivery_id())
        });
    Ports {
        events,
        clock: clock_at_now(),
        ids: ids_giving_ulid(),
        ..ports_with_webhook()
    }
}

#[tokio::test]
async fn send_test_stores_a_webhook_test_event_for_that_webhook_alone() {
    let stored = Recorded::new();
    let service = test_send_ports(&stored).delivery_service(&Wakeup::default());

    service
        .send_test(&principal(), group_id(), &webhook_id())
        .await
        .unwrap();

    let event = stored.get();
    assert_eq!(event.id, new_event_id());
    assert_eq!(event.group_id, group_id());
    assert_eq!(event.event_type, TEST_EVENT_TYPE);
    assert_eq!(event.event_type, "webhook.test");
    assert_eq!(event.created_at, NOW);
    assert_eq!(event.idempotency_key, None);
    assert_eq!(
        event.payload,
        format!(
            r#"{{"id":"evt_{ULID_LOWER}","object":"event","type":"webhook.test","created":{NOW_SECS},"groupID":123456,"data":{{"message":"This is a test event.","webhookID":"{WEBHOOK_ID}"}}}}"#
        )
    );
}

#[tokio::test]
async fn send_test_answers_the_event_and_delivery_ids_and_wakes_the_dispatcher() {
    let wakeup = Wakeup::default();
    let stored = Recorded::new();
    let service = test_send_ports(&stored).delivery_service(&wakeup);

    assert_eq!(
        service
            .send_test(&principal(), group_id(), &webhook_id())
            .await,
        Ok(TestSend {
            event_id: new_event_id(),
            delivery_id: delivery_id(),
        })
    );
    assert_woken(&wakeup).await;
}

#[tokio::test]
async fn send_test_to_unknown_webhook_is_webhook_not_found_and_stores_nothing() {
    let service = Ports {
        tenancy: tenancy_with_group_of(org_id()),
        webhooks: webhooks_finding(None),
        ..Ports::untouched()
    }
    .delivery_service(&Wakeup::default());

    assert_rejected(
        service
            .send_test(&principal(), group_id(), &webhook_id())
            .await,
        DomainError::NotFound(Resource::Webhook),
    );
}

#[tokio::test]
async fn send_test_to_a_disabled_webhook_is_refused_and_stores_nothing() {
    let disabled = Webhook {
        status: WebhookStatus::Disabled,
        ..webhook()
    };
    let service = Ports {
        tenancy: tenancy_with_group_of(org_id()),
        webhooks: webhooks_finding(Some(disabled)),
        ..Ports::untouched()
    }
    .delivery_service(&Wakeup::default());

    assert_rejected(
        service
            .send_test(&principal(), group_id(), &webhook_id())
            .await,
        DomainError::Conflict(Conflict::WebhookDisabled),
    );
}

#[tokio::test]
async fn send_test_in_group_of_another_organization_is_group_not_found() {
    let service = ports_of_other_organization().delivery_service(&Wakeup::default());

    assert_rejected(
        service
            .send_test(&principal(), group_id(), &webhook_id())
            .await,
        DomainError::NotFound(Resource::Group),
    );
}

// ---------------------------------------------------------------------------
// DeliveryService::recover
// ---------------------------------------------------------------------------

/// 2025-06-01T00:00:00Z.
const SINCE: UnixMillis = UnixMillis(1_748_736_000_000);

/// A queue whose `requeue_failed_since` [`SINCE`] at [`NOW`] answers `count`.
fn queue_recovering(count: u64) -> MockDeliveryQueue {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_requeue_failed_since()
        .with(eq(webhook_id()), eq(SINCE), eq(NOW))
        .times(1)
        .returning(move |_, _, _| Ok(count));
    queue
}

#[tokio::test]
async fn recover_requeues_failed_deliveries_since_the_given_instant_and_wakes_the_dispatcher() {
    let wakeup = Wakeup::default();
    let service = Ports {
        queue: queue_recovering(3),
        clock: clock_at_now(),
        ..ports_with_webhook()
    }
    .delivery_service(&wakeup);

    assert_eq!(
        service
            .recover(&principal(), group_id(), &webhook_id(), SINCE,)
            .await,
        Ok(3)
    );
    assert_woken(&wakeup).await;
}

#[tokio::test]
async fn recover_with_nothing_to_requeue_answers_zero_and_wakes_nobody() {
    let wakeup = Wakeup::default();
    let service = Ports {
        queue: queue_recovering(0),
        clock: clock_at_now(),
        ..ports_with_webhook()
    }
    .delivery_service(&wakeup);

    assert_eq!(
        service
            .recover(&principal(), group_id(), &webhook_id(), SINCE,)
            .await,
        Ok(0)
    );
    assert_not_woken(&wakeup).await;
}

#[tokio::test]
async fn recover_in_group_of_another_organization_is_group_not_found() {
    let service = ports_of_other_organization().delivery_service(&Wakeup::default());

    assert_rejected(
        service
            .recover(&principal(), group_id(), &webhook_id(), SINCE)
            .await,
        DomainError::NotFound(Resource::Group),
    );
}
