//! [`EventPublisher::publish`]: an event in, with its fan-out stored at once.

use std::time::Duration;

use webhooks_domain::ports::{MockEventStore, MockTenancyRepository};
use webhooks_domain::{
    DomainError, Event, EventType, IdempotencyKey, NewEvent, PublishOutcome, RepositoryError,
    Resource, UnixMillis, Wakeup,
};

use crate::support::*;

/// An event store whose `publish` answers `outcome` once and records the
/// event and the idempotency window it was given.
fn events_publishing(
    outcome: Result<PublishOutcome, RepositoryError>,
    stored: &Recorded<(Event, UnixMillis)>,
) -> MockEventStore {
    let mut events = MockEventStore::new();
    let recorder = stored.clone();
    events
        .expect_publish()
        .times(1)
        .returning(move |event, since| {
            recorder.record(&(event.clone(), since));
            outcome.clone()
        });
    events
}

/// The ports of a publish to the existing group [`GROUP`] at [`NOW`].
fn publishing_ports(events: MockEventStore) -> Ports {
    Ports {
        events,
        tenancy: tenancy_with_group_of(org_id()),
        clock: clock_at_now(),
        ids: ids_giving_ulid(),
        ..Ports::untouched()
    }
}

#[tokio::test]
async fn publish_to_unknown_group_is_group_not_found_and_stores_nothing() {
    let wakeup = Wakeup::default();
    let publisher = Ports {
        tenancy: tenancy_without_group(),
        ..Ports::untouched()
    }
    .publisher(&wakeup);

    assert_rejected(
        publisher.publish(new_event()).await,
        DomainError::NotFound(Resource::Group),
    );
    assert_not_woken(&wakeup).await;
}

#[tokio::test]
async fn publish_when_group_lookup_fails_is_unexpected_and_stores_nothing() {
    let mut tenancy = MockTenancyRepository::new();
    tenancy
        .expect_find_group()
        .times(1)
        .returning(|_| Err(unavailable()));
    let publisher = Ports {
        tenancy,
        ..Ports::untouched()
    }
    .publisher(&Wakeup::default());

    assert_rejected(publisher.publish(new_event()).await, unexpected());
}

#[tokio::test]
async fn publish_stores_an_event_with_the_evt_id_of_the_id_source_and_the_clock_time() {
    let stored = Recorded::new();
    let publisher = publishing_ports(events_publishing(Ok(publish_outcome(1, true)), &stored))
        .publisher(&Wakeup::default());

    publisher.publish(new_event()).await.unwrap();

    let (event, _) = stored.get();
    assert_eq!(event.id.as_str(), format!("evt_{ULID_LOWER}"));
    assert_eq!(event.group_id, group_id());
    assert_eq!(event.event_type, "user.created");
    assert_eq!(event.created_at, NOW);
    assert_eq!(event.idempotency_key, None);
}

#[tokio::test]
async fn publish_stores_exactly_the_documented_payload() {
    let stored = Recorded::new();
    let publisher = publishing_ports(events_publishing(Ok(publish_outcome(1, true)), &stored))
        .publisher(&Wakeup::default());

    publisher.publish(new_event()).await.unwrap();

    let (event, _) = stored.get();
    assert_eq!(
        event.payload,
        format!(
            r#"{{"id":"evt_{ULID_LOWER}","object":"event","type":"user.created","created":{NOW_SECS},"groupID":123456,"data":{{"userID":"u_123"}}}}"#
        )
    );
}

#[tokio::test]
async fn publish_stores_the_type_data_and_idempotency_key_it_is_given() {
    let wakeup = Wakeup::default();
    let stored = Recorded::new();
    let publisher = publishing_ports(events_publishing(Ok(publish_outcome(1, true)), &stored))
        .publisher(&wakeup);
    let mut data = serde_json::Map::new();
    data.insert("ok".into(), true.into());
    let event = NewEvent {
        event_type: EventType::UserSessionResult,
        data,
        idempotency_key: Some(IdempotencyKey::new("k-1").unwrap()),
        ..new_event()
    };

    assert_eq!(publisher.publish(event).await, Ok(publish_outcome(1, true)));
    let (event, _) = stored.get();
    assert_eq!(event.group_id, group_id());
    assert_eq!(event.event_type, "user.session.result");
    assert_eq!(
        event.idempotency_key,
        Some(IdempotencyKey::new("k-1").unwrap())
    );
    assert_eq!(
        event.payload,
        format!(
            r#"{{"id":"evt_{ULID_LOWER}","object":"event","type":"user.session.result","created":{NOW_SECS},"groupID":123456,"data":{{"ok":true}}}}"#
        )
    );
    assert_woken(&wakeup).await;
}

#[tokio::test]
async fn publish_asks_the_store_for_idempotency_keys_of_the_last_24_hours() {
    let stored = Recorded::new();
    let publisher = publishing_ports(events_publishing(Ok(publish_outcome(1, true)), &stored))
        .publisher(&Wakeup::default());

    publisher.publish(new_event()).await.unwrap();

    let (_, since) = stored.get();
    assert_eq!(since, IDEMPOTENCY_SINCE);
    assert_eq!(since, now_minus(Duration::from_secs(24 * 3600)));
}

#[tokio::test]
async fn publish_answers_the_outcome_of_the_store() {
    let stored = Recorded::new();
    let publisher = publishing_ports(events_publishing(Ok(publish_outcome(2, true)), &stored))
        .publisher(&Wakeup::default());

    assert_eq!(
        publisher.publish(new_event()).await,
        Ok(publish_outcome(2, true))
    );
}

#[tokio::test]
async fn publish_of_a_new_event_with_deliveries_wakes_the_dispatcher() {
    let wakeup = Wakeup::default();
    let stored = Recorded::new();
    let publisher = publishing_ports(events_publishing(Ok(publish_outcome(2, true)), &stored))
        .publisher(&wakeup);

    publisher.publish(new_event()).await.unwrap();

    assert_woken(&wakeup).await;
}

#[tokio::test]
async fn publish_of_an_idempotent_repeat_answers_the_first_event_and_wakes_nobody() {
    let wakeup = Wakeup::default();
    let first = PublishOutcome {
        event_id: event_id(),
        deliveries: 2,
        handed_over: 0,
        created: false,
    };
    let stored = Recorded::new();
    let publisher =
        publishing_ports(events_publishing(Ok(first.clone()), &stored)).publisher(&wakeup);
    let request = NewEvent {
        idempotency_key: Some(IdempotencyKey::new("signup-u_123").unwrap()),
        ..new_event()
    };

    assert_eq!(publisher.publish(request).await, Ok(first));
    assert_not_woken(&wakeup).await;
}

#[tokio::test]
async fn publish_without_deliveries_wakes_nobody() {
    let wakeup = Wakeup::default();
    let stored = Recorded::new();
    let publisher = publishing_ports(events_publishing(Ok(publish_outcome(0, true)), &stored))
        .publisher(&wakeup);

    assert_eq!(
        publisher.publish(new_event()).await,
        Ok(publish_outcome(0, true))
    );
    assert_not_woken(&wakeup).await;
}

#[tokio::test]
async fn publish_when_the_store_fails_is_unexpected_and_wakes_nobody() {
    let wakeup = Wakeup::default();
    let stored = Recorded::new();
    let publisher =
        publishing_ports(events_publishing(Err(unavailable()), &stored)).publisher(&wakeup);

    assert_rejected(publisher.publish(new_event()).await, unexpected());
    assert_not_woken(&wakeup).await;
}
