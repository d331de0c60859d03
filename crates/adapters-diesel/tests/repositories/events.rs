//! The event store: fan-out, idempotency, test sends.

use webhooks_adapters_diesel::{Database, TestDatabase, DELIVERIES_CHANNEL};
use webhooks_domain::{
    DeliveryQueue, DeliveryStatus, EnabledEvents, Event, EventStore, EventType, GroupId,
    PublishOutcome, RepositoryError, UnixMillis, Webhook, WebhookStatus, TEST_EVENT_TYPE,
};

use crate::support::{
    all_at_once, assert_fewer_transactions_than_rows, event, event_of_type, events_store, group,
    queue, receiver, sibling, stored, webhook, DeleteInProgress,
};

on_both_backends!(
    publish_fans_out_to_enabled_webhooks_whose_events_match,
    publish_makes_deliveries_due_at_once,
    publish_to_an_unknown_group_fails,
    publish_to_reaches_one_webhook_whatever_its_filter,
);

on_both_backends!(test_database:
    publish_in_a_group_without_webhooks_stores_the_event_alone,
    repeating_an_idempotency_key_answers_the_first_event_and_stores_nothing,
    a_key_older_than_the_window_publishes_anew,
    the_same_key_in_another_group_is_independent,
    concurrent_publishes_with_one_key_store_one_event,
    concurrent_publishes_share_transactions_and_each_gets_its_outcome,
    a_bad_event_among_concurrent_publishes_fails_alone,
    a_batch_too_big_for_one_statement_is_written_in_chunks,
);

/// One day, the domain's idempotency window.
const DAY: i64 = 24 * 60 * 60 * 1000;

async fn publish_fans_out_to_enabled_webhooks_whose_events_match(db: &Database) {
    let group = group(db, 1).await;
    let other_group = receiver(db, 2).await;
    let mut sessions_only = webhook(&group, 1_000);
    sessions_only.enabled_events = EnabledEvents::new([EventType::UserSessionResult]).unwrap();
    let mut disabled = webhook(&group, 2_000);
    disabled.status = WebhookStatus::Disabled;
    let mut users_only = webhook(&group, 3_000);
    users_only.enabled_events = EnabledEvents::new([EventType::UserCreated]).unwrap();
    let everything = webhook(&group, 4_000);
    stored(
        db,
        vec![
            sessions_only.clone(),
            disabled.clone(),
            users_only.clone(),
            everything.clone(),
        ],
    )
    .await;

    let published = event(group.id, 10_000, None);
    let outcome = events_store(db).publish(&published, UnixMillis(0)).await;

    assert_eq!(
        outcome,
        Ok(PublishOutcome {
            event_id: published.id.clone(),
            deliveries: 2,
            handed_over: 0,
            created: true,
        })
    );
    let queue = queue(db);
    for (receiver, expected) in [
        (&users_only, 1),
        (&everything, 1),
        (&sessions_only, 0),
        (&disabled, 0),
        (&other_group, 0),
    ] {
        let deliveries = queue.list(&receiver.id, None, None, 10).await.unwrap();
        assert_eq!(
            deliveries.len(),
            expected,
            "{}",
            receiver.description.as_str()
        );
        for delivery in deliveries {
            assert_eq!(delivery.event_id, published.id);
            assert_eq!(delivery.event_type, "user.created");
            assert_eq!(delivery.group_id, group.id);
        }
    }
}

async fn publish_makes_deliveries_due_at_once(db: &Database) {
    let receiver = receiver(db, 3).await;
    let published = event(receiver.group_id, 10_000, None);
    events_store(db)
        .publish(&published, UnixMillis(0))
        .await
        .unwrap();

    let queue = queue(db);
    let delivery = queue
        .list(&receiver.id, None, None, 10)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(delivery.status, DeliveryStatus::Pending);
    assert_eq!(delivery.attempt_count, 0);
    assert_eq!(delivery.next_attempt_at, Some(UnixMillis(10_000)));
    assert_eq!(delivery.created_at, UnixMillis(10_000));
    assert_eq!(delivery.updated_at, UnixMillis(10_000));
    let detail = queue
        .find(&receiver.id, &delivery.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.payload, published.payload);
    assert_eq!(detail.attempts, vec![]);
}

async fn publish_in_a_group_without_webhooks_stores_the_event_alone(test_database: &TestDatabase) {
    let db = test_database.database();
    let group = group(db, 4).await;
    let published = event(group.id, 10_000, None);

    let outcome = events_store(db).publish(&published, UnixMillis(0)).await;

    assert_eq!(
        outcome,
        Ok(PublishOutcome {
            event_id: published.id,
            deliveries: 0,
            handed_over: 0,
            created: true,
        })
    );
    assert_eq!(test_database.row_counts().await.events, 1);
    assert_eq!(test_database.row_counts().await.deliveries, 0);
}

async fn publish_to_an_unknown_group_fails(db: &Database) {
    // The use case checks the group first; storage refuses it all the same.
    let published = event(GroupId::new(404).unwrap(), 10_000, None);
    assert!(events_store(db)
        .publish(&published, UnixMillis(0))
        .await
        .is_err());
}

async fn repeating_an_idempotency_key_answers_the_first_event_and_stores_nothing(
    test_database: &TestDatabase,
) {
    let db = test_database.database();
    let receiver = receiver(db, 5).await;
    let store = events_store(db);
    let first = event(receiver.group_id, 10_000, Some("signup-u_1"));
    let first_outcome = store.publish(&first, UnixMillis(10_000 - DAY)).await;
    assert_eq!(
        first_outcome,
        Ok(PublishOutcome {
            event_id: first.id.clone(),
            deliveries: 1,
            handed_over: 0,
            created: true,
        })
    );
    // A second webhook now would get a new event, but not a repeat.
    stored(db, vec![sibling(&receiver, 2_000)]).await;

    let repeat = event(receiver.group_id, 20_000, Some("signup-u_1"));
    let outcome = store.publish(&repeat, UnixMillis(20_000 - DAY)).await;

    assert_eq!(
        outcome,
        Ok(PublishOutcome {
            event_id: first.id,
            deliveries: 1,
            handed_over: 0,
            created: false,
        })
    );
    assert_eq!(test_database.row_counts().await.events, 1);
    assert_eq!(test_database.row_counts().await.deliveries, 1);
}

async fn a_key_older_than_the_window_publishes_anew(test_database: &TestDatabase) {
    let db = test_database.database();
    let receiver = receiver(db, 6).await;
    let store = events_store(db);
    let old = event(receiver.group_id, 10_000, Some("nightly"));
    store.publish(&old, UnixMillis(10_000 - DAY)).await.unwrap();

    // The window starts just after the first event: its key is forgotten.
    let later = event(receiver.group_id, 10_001 + DAY, Some("nightly"));
    let outcome = store.publish(&later, UnixMillis(10_001)).await;

    assert_eq!(
        outcome,
        Ok(PublishOutcome {
            event_id: later.id.clone(),
            deliveries: 1,
            handed_over: 0,
            created: true,
        })
    );
    // And the new event is the one a repeat now answers.
    let repeat = event(receiver.group_id, 20_000 + DAY, Some("nightly"));
    let outcome = store.publish(&repeat, UnixMillis(20_000)).await.unwrap();
    assert_eq!((outcome.event_id, outcome.created), (later.id, false));
    assert_eq!(test_database.row_counts().await.events, 2);
    assert_eq!(test_database.row_counts().await.deliveries, 2);
}

async fn the_same_key_in_another_group_is_independent(test_database: &TestDatabase) {
    let db = test_database.database();
    let mine = receiver(db, 7).await;
    let theirs = receiver(db, 8).await;
    let store = events_store(db);

    let first = event(mine.group_id, 10_000, Some("k"));
    let second = event(theirs.group_id, 10_001, Some("k"));
    let first_outcome = store.publish(&first, UnixMillis(0)).await.unwrap();
    let second_outcome = store.publish(&second, UnixMillis(0)).await.unwrap();

    assert_eq!(
        (first_outcome.event_id, first_outcome.created),
        (first.id, true)
    );
    assert_eq!(
        (second_outcome.event_id, second_outcome.created),
        (second.id, true)
    );
    assert_eq!(test_database.row_counts().await.deliveries, 2);
}

async fn concurrent_publishes_with_one_key_store_one_event(test_database: &TestDatabase) {
    let db = test_database.database();
    let receiver = receiver(db, 9).await;
    let store = events_store(db);

    let mut publishers = tokio::task::JoinSet::new();
    for n in 0..8 {
        let store = store.clone();
        let published = event(receiver.group_id, 10_000 + n, Some("once"));
        publishers.spawn(async move { store.publish(&published, UnixMillis(0)).await });
    }
    let mut outcomes = Vec::new();
    while let Some(result) = publishers.join_next().await {
        outcomes.push(result.unwrap().unwrap());
    }

    let created: Vec<_> = outcomes.iter().filter(|outcome| outcome.created).collect();
    assert_eq!(created.len(), 1, "{outcomes:?}");
    for outcome in &outcomes {
        assert_eq!(outcome.event_id, created[0].event_id);
        assert_eq!(outcome.deliveries, 1);
    }
    assert_eq!(test_database.row_counts().await.events, 1);
    assert_eq!(test_database.row_counts().await.deliveries, 1);
}

async fn publish_to_reaches_one_webhook_whatever_its_filter(db: &Database) {
    let group = group(db, 10).await;
    let mut target = webhook(&group, 1_000);
    target.enabled_events = EnabledEvents::new([EventType::UserSessionResult]).unwrap();
    let bystander = webhook(&group, 2_000);
    stored(db, vec![target.clone(), bystander.clone()]).await;
    let test_event = event_of_type(group.id, TEST_EVENT_TYPE, 10_000, None);

    let delivery = events_store(db)
        .publish_to(&test_event, &target.id)
        .await
        .unwrap();

    let queue = queue(db);
    let detail = queue.find(&target.id, &delivery).await.unwrap().unwrap();
    assert_eq!(detail.delivery.event_id, test_event.id);
    assert_eq!(detail.delivery.event_type, TEST_EVENT_TYPE);
    assert_eq!(detail.delivery.status, DeliveryStatus::Pending);
    assert_eq!(detail.delivery.next_attempt_at, Some(UnixMillis(10_000)));
    assert_eq!(detail.payload, test_event.payload);
    assert_eq!(queue.list(&bystander.id, None, None, 10).await, Ok(vec![]));
}

// ---- PostgreSQL only -------------------------------------------------------

#[tokio::test]
async fn a_postgres_publish_with_deliveries_notifies_the_channel() {
    use diesel::{Connection, PgConnection, RunQueryDsl};

    let test_database = TestDatabase::postgres().await;
    let db = test_database.database();
    let receiver = receiver(db, 11).await;
    let empty_group = group(db, 12).await;
    let mut listener = PgConnection::establish(test_database.url()).unwrap();
    diesel::sql_query(format!("LISTEN {DELIVERIES_CHANNEL}"))
        .execute(&mut listener)
        .unwrap();

    // No deliveries, no notification; then one publish that makes some.
    let store = events_store(db);
    store
        .publish(&event(empty_group.id, 10_000, None), UnixMillis(0))
        .await
        .unwrap();
    store
        .publish(&event(receiver.group_id, 10_000, None), UnixMillis(0))
        .await
        .unwrap();

    // Notifications arrive in commit order, so once one is here, a
    // notification of the first publish would be here too.
    let mut channels = Vec::new();
    for _ in 0..50 {
        diesel::sql_query("SELECT 1")
            .execute(&mut listener)
            .unwrap();
        channels.extend(
            listener
                .notifications_iter()
                .map(|notification| notification.unwrap().channel),
        );
        if !channels.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(channels, vec![DELIVERIES_CHANNEL.to_owned()]);
}

/// A publish whose statement waits for a webhook's delete (which locks the
/// webhook's row first) stores no delivery to the deleted webhook: no
/// foreign key checks a delivery's webhook on PostgreSQL, the statement's
/// own lock does. It finds the webhook gone, stores nothing, reads the
/// receivers again and reaches the webhooks left, as if it had come just
/// after the delete; with an idempotency key (its own transaction) too.
#[tokio::test]
async fn a_postgres_publish_that_waits_for_a_webhook_delete_reaches_the_webhooks_left() {
    for key in [None, Some("k-1")] {
        let test_database = TestDatabase::postgres().await;
        let db = test_database.database();
        let deleted = receiver(db, 13).await;
        let kept = stored(db, vec![sibling(&deleted, 2_000)]).await.remove(0);

        let outcome = publish_while_deleting(&test_database, &deleted, key).await;

        assert_eq!(outcome.deliveries, 1, "key {key:?}");
        assert_eq!(test_database.row_counts().await.events, 1, "key {key:?}");
        assert_eq!(
            test_database.row_counts().await.deliveries,
            1,
            "key {key:?}"
        );
        let to_kept = queue(db).list(&kept.id, None, None, 10).await.unwrap();
        assert_eq!(to_kept.len(), 1, "key {key:?}");
    }
}

/// A publish to a group whose only webhook is deleted while the publish
/// waits stores its event with no delivery, as a publish after the delete
/// would.
#[tokio::test]
async fn a_postgres_publish_that_waits_for_the_delete_of_its_only_webhook_delivers_nothing() {
    let test_database = TestDatabase::postgres().await;
    let db = test_database.database();
    let deleted = receiver(db, 13).await;

    let outcome = publish_while_deleting(&test_database, &deleted, None).await;

    assert_eq!(outcome.deliveries, 0);
    assert_eq!(test_database.row_counts().await.events, 1);
    assert_eq!(test_database.row_counts().await.deliveries, 0);
}

/// The same for a test send: it locks the webhook's row before its insert.
#[tokio::test]
async fn a_postgres_test_send_that_waits_for_a_webhook_delete_stores_nothing() {
    let test_database = TestDatabase::postgres().await;
    let db = test_database.database();
    let deleted = receiver(db, 14).await;

    let sending = {
        let store = events_store(db);
        let test_event = event_of_type(deleted.group_id, TEST_EVENT_TYPE, 10_000, None);
        let webhook = deleted.id.clone();
        async move { store.publish_to(&test_event, &webhook).await.map(drop) }
    };
    let sent = while_a_delete_holds(&test_database, deleted.id.as_str(), sending).await;

    assert!(
        matches!(sent, Err(RepositoryError::Unavailable(_))),
        "{sent:?}"
    );
    assert_eq!(test_database.row_counts().await.events, 0);
    assert_eq!(test_database.row_counts().await.deliveries, 0);
}

/// Publishes an event of `deleted`'s group, with idempotency key `key`,
/// while `deleted`'s delete holds its row; answers the publish's outcome.
async fn publish_while_deleting(
    test_database: &TestDatabase,
    deleted: &Webhook,
    key: Option<&str>,
) -> PublishOutcome {
    let store = events_store(test_database.database());
    let published = event(deleted.group_id, 10_000, key);
    let publishing = async move { store.publish(&published, UnixMillis(0)).await };
    while_a_delete_holds(test_database, deleted.id.as_str(), publishing)
        .await
        .unwrap()
}

/// Runs the webhook's delete as the repository does, in another session,
/// holding the webhook's row until `storing`, started meanwhile, waits for
/// it; answers what `storing` answered.
async fn while_a_delete_holds<T: std::fmt::Debug + Send + 'static>(
    test_database: &TestDatabase,
    webhook: &str,
    storing: impl std::future::Future<Output = Result<T, RepositoryError>> + Send + 'static,
) -> Result<T, RepositoryError> {
    let delete = DeleteInProgress::begin(
        test_database,
        webhook,
        &format!("SELECT id FROM webhooks WHERE id = '{webhook}' FOR UPDATE"),
    );
    let storing = tokio::spawn(storing);
    delete.finish().await;
    storing.await.unwrap()
}

#[tokio::test]
async fn the_listener_of_another_database_handle_wakes_on_a_publish() {
    let test_database = TestDatabase::postgres().await;
    a_publish_wakes_the_listener_of_another_handle(&test_database).await;
}

/// Also run over TLS (`tls.rs`).
pub(crate) async fn a_publish_wakes_the_listener_of_another_handle(test_database: &TestDatabase) {
    let db = test_database.database();
    let receiver = receiver(db, 13).await;
    // A second handle, as another process would open.
    let other_process = Database::connect(test_database.url(), 1).unwrap();
    let wakeup = webhooks_domain::Wakeup::default();
    let listener = other_process.spawn_listener(webhooks_adapters_diesel::ListenerHooks {
        deliveries: Some(wakeup.clone()),
        api_key_revoked: None,
    });
    // The listener fires once when it starts listening; wait for that.
    tokio::time::timeout(std::time::Duration::from_secs(10), wakeup.notified())
        .await
        .expect("the listener starts");

    events_store(db)
        .publish(&event(receiver.group_id, 10_000, None), UnixMillis(0))
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), wakeup.notified())
        .await
        .expect("the publish wakes the other handle");
    tokio::task::spawn_blocking(move || {
        listener.stop();
        other_process.close();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_listener_does_nothing_on_sqlite() {
    let test_database = TestDatabase::sqlite().await;
    let wakeup = webhooks_domain::Wakeup::default();
    let _listener =
        test_database
            .database()
            .spawn_listener(webhooks_adapters_diesel::ListenerHooks {
                deliveries: Some(wakeup.clone()),
                api_key_revoked: None,
            });
    let woke = tokio::time::timeout(std::time::Duration::from_millis(300), wakeup.notified()).await;
    assert!(woke.is_err());
}

async fn concurrent_publishes_share_transactions_and_each_gets_its_outcome(
    test_database: &TestDatabase,
) {
    let db = test_database.database();
    let first = receiver(db, 30).await;
    let mut sessions_only = sibling(&first, 2_000);
    sessions_only.enabled_events = EnabledEvents::new([EventType::UserSessionResult]).unwrap();
    stored(db, vec![sessions_only.clone()]).await;
    let second = receiver(db, 31).await;
    let events: Vec<_> = (0..40)
        .map(|n| match n % 3 {
            0 => event(first.group_id, 10_000 + n, None),
            1 => event_of_type(first.group_id, "user.session.result", 10_000 + n, None),
            _ => event(second.group_id, 10_000 + n, None),
        })
        .collect();

    let outcomes: Vec<_> = publish_at_once(db, &events)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    for (n, (published, outcome)) in events.iter().zip(&outcomes).enumerate() {
        let expected = if n % 3 == 1 { 2 } else { 1 };
        assert_eq!(
            outcome,
            &PublishOutcome {
                event_id: published.id.clone(),
                deliveries: expected,
                handed_over: 0,
                created: true,
            }
        );
    }
    assert_eq!(test_database.row_counts().await.events, 40);
    assert_eq!(
        test_database.row_counts().await.deliveries,
        14 + 2 * 13 + 13
    );
    let queue = queue(db);
    assert_eq!(
        queue
            .list(&sessions_only.id, None, None, 100)
            .await
            .unwrap()
            .len(),
        13
    );
    assert_fewer_transactions_than_rows(test_database, "events", 40);
}

async fn a_bad_event_among_concurrent_publishes_fails_alone(test_database: &TestDatabase) {
    let db = test_database.database();
    let receiver = receiver(db, 32).await;
    // The use case checks the group first; storage refuses it all the same.
    let unknown_group = GroupId::new(404).unwrap();
    let events: Vec<_> = (0..9)
        .map(|n| {
            let group = if n == 4 {
                unknown_group
            } else {
                receiver.group_id
            };
            event(group, 10_000 + n, None)
        })
        .collect();

    let outcomes = publish_at_once(db, &events).await;

    for (n, outcome) in outcomes.iter().enumerate() {
        assert_eq!(outcome.is_ok(), n != 4, "event {n}: {outcome:?}");
    }
    assert_eq!(test_database.row_counts().await.events, 8);
    assert_eq!(test_database.row_counts().await.deliveries, 8);
}

async fn a_batch_too_big_for_one_statement_is_written_in_chunks(test_database: &TestDatabase) {
    let db = test_database.database();
    // 256 events to 30 webhooks: 7,680 deliveries, more bound values than
    // one PostgreSQL statement takes, and more rows than one chunk.
    let first = receiver(db, 33).await;
    let others: Vec<_> = (0..29).map(|n| sibling(&first, 2_000 + n)).collect();
    stored(db, others).await;
    let events: Vec<_> = (0..256)
        .map(|n| event(first.group_id, 10_000 + n, None))
        .collect();

    for outcome in publish_at_once(db, &events).await {
        assert_eq!(outcome.unwrap().deliveries, 30);
    }

    assert_eq!(test_database.row_counts().await.events, 256);
    assert_eq!(test_database.row_counts().await.deliveries, 256 * 30);
}

// ---- helpers ---------------------------------------------------------------

/// Publishes the events concurrently through one store (so that they can
/// share transactions); answers their outcomes in order.
async fn publish_at_once(
    db: &Database,
    events: &[Event],
) -> Vec<Result<PublishOutcome, RepositoryError>> {
    let store = events_store(db);
    all_at_once(events, |published| {
        let store = store.clone();
        async move { store.publish(&published, UnixMillis(0)).await }
    })
    .await
}
