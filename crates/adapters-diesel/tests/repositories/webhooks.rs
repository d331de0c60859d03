//! The webhook repository.

use webhooks_adapters_diesel::{Database, TestDatabase};
use webhooks_domain::{
    DeliveryOrdering, Description, EnabledEvents, EventType, GroupId, RateLimit, RepositoryError,
    UnixMillis, Webhook, WebhookId, WebhookRepository, WebhookStatus, WebhookUrl,
};

use crate::support::{
    all_at_once, assert_fewer_transactions_than_rows, execute_raw, group, sealed_headers,
    sealed_secret, webhook, webhooks,
};

on_both_backends!(
    inserted_webhook_is_found_unchanged,
    list_by_group_is_oldest_first_then_by_id,
    list_by_group_without_webhooks_is_empty,
    webhook_of_another_group_is_neither_found_nor_changed,
    update_overwrites_the_mutable_fields_only,
    update_of_an_unknown_webhook_is_false,
    rate_limit_can_be_set_and_cleared,
    custom_headers_can_be_set_kept_and_cleared,
    ordering_can_be_set_and_cleared,
    enabled_events_round_trip,
    delete_removes_the_webhook_once,
    inserting_an_existing_webhook_id_is_conflict,
    concurrent_inserts_all_land,
);

on_both_backends!(test_database:
    rows_that_no_longer_parse_are_corrupt,
    concurrent_inserts_share_transactions_and_are_stored_unchanged,
    a_bad_webhook_among_concurrent_inserts_fails_alone,
);

async fn inserted_webhook_is_found_unchanged(db: &Database) {
    let group = group(db, 123_456).await;
    let repository = webhooks(db);
    let mut stored = webhook(&group, 1_700_000_000_500);
    stored.description = Description::new("Café ☕ — 注文 🚀").unwrap();
    stored.url = WebhookUrl::new("http://127.0.0.1:8080/hook?x=1&y=é").unwrap();
    stored.rate_limit = Some(RateLimit::new(25).unwrap());
    stored.enabled_events = EnabledEvents::new([EventType::UserSessionResult]).unwrap();
    stored.headers = Some(sealed_headers());

    repository.insert(&stored).await.unwrap();

    assert_eq!(
        repository.find(group.id, &stored.id).await,
        Ok(Some(stored.clone()))
    );
    assert_eq!(repository.list_by_group(group.id).await, Ok(vec![stored]));
}

async fn list_by_group_is_oldest_first_then_by_id(db: &Database) {
    let group = group(db, 42).await;
    let repository = webhooks(db);
    let with_id = |created_at: i64, random: u128| Webhook {
        id: WebhookId::from_ulid(ulid::Ulid::from_parts(1_000, random)),
        ..webhook(&group, created_at)
    };
    // The creation time decides, whatever the ids say…
    let newest = with_id(3_000, 1);
    let oldest = with_id(1_000, 4);
    // …and at the same instant the id breaks the tie.
    let tied_first = with_id(2_000, 2);
    let tied_second = with_id(2_000, 3);

    for webhook in [&tied_second, &newest, &oldest, &tied_first] {
        repository.insert(webhook).await.unwrap();
    }

    let listed = repository.list_by_group(group.id).await.unwrap();
    assert_eq!(
        ids(&listed),
        ids(&[oldest, tied_first, tied_second, newest])
    );
}

async fn list_by_group_without_webhooks_is_empty(db: &Database) {
    let group = group(db, 7).await;
    let repository = webhooks(db);
    assert_eq!(repository.list_by_group(group.id).await, Ok(vec![]));
    // A group that does not exist at all reads the same.
    assert_eq!(
        repository.list_by_group(GroupId::new(8).unwrap()).await,
        Ok(vec![])
    );
}

async fn webhook_of_another_group_is_neither_found_nor_changed(db: &Database) {
    let mine = group(db, 1).await;
    let theirs = group(db, 2).await;
    let repository = webhooks(db);
    let stored = webhook(&theirs, 1_000);
    repository.insert(&stored).await.unwrap();

    assert_eq!(repository.find(mine.id, &stored.id).await, Ok(None));
    assert_eq!(repository.list_by_group(mine.id).await, Ok(vec![]));
    let mut moved = stored.clone();
    moved.group_id = mine.id;
    moved.description = Description::new("hijacked").unwrap();
    assert_eq!(repository.update(&moved, None).await, Ok(false));
    assert_eq!(repository.delete(mine.id, &stored.id).await, Ok(false));

    assert_eq!(
        repository.find(theirs.id, &stored.id).await,
        Ok(Some(stored))
    );
}

async fn update_overwrites_the_mutable_fields_only(db: &Database) {
    let group = group(db, 123_456).await;
    let repository = webhooks(db);
    let stored = webhook(&group, 1_000);
    repository.insert(&stored).await.unwrap();

    let mut changed = stored.clone();
    changed.url = WebhookUrl::new("https://elsewhere.example/v2").unwrap();
    changed.description = Description::new("Renamed ✓").unwrap();
    changed.status = WebhookStatus::Disabled;
    changed.enabled_events = EnabledEvents::new([EventType::UserCreated]).unwrap();
    changed.rate_limit = Some(RateLimit::new(3).unwrap());
    changed.updated_at = UnixMillis(2_000);
    // Not the update's business: these must stay as stored.
    changed.secret = sealed_secret();
    changed.created_at = UnixMillis(9_999);

    assert_eq!(repository.update(&changed, None).await, Ok(true));

    let expected = Webhook {
        secret: stored.secret.clone(),
        created_at: stored.created_at,
        ..changed
    };
    assert_eq!(
        repository.find(group.id, &stored.id).await,
        Ok(Some(expected))
    );
}

async fn update_of_an_unknown_webhook_is_false(db: &Database) {
    let group = group(db, 5).await;
    let repository = webhooks(db);
    assert_eq!(
        repository.update(&webhook(&group, 1_000), None).await,
        Ok(false)
    );
    assert_eq!(repository.list_by_group(group.id).await, Ok(vec![]));
}

async fn rate_limit_can_be_set_and_cleared(db: &Database) {
    let group = group(db, 9).await;
    let repository = webhooks(db);
    let mut stored = webhook(&group, 1_000);
    repository.insert(&stored).await.unwrap();

    // The largest limit the domain accepts survives the round trip.
    stored.rate_limit = Some(RateLimit::new(i64::from(u32::MAX)).unwrap());
    assert_eq!(repository.update(&stored, None).await, Ok(true));
    let found = repository
        .find(group.id, &stored.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.rate_limit, stored.rate_limit);

    stored.rate_limit = None;
    assert_eq!(repository.update(&stored, None).await, Ok(true));
    let found = repository
        .find(group.id, &stored.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.rate_limit, None);
}

async fn custom_headers_can_be_set_kept_and_cleared(db: &Database) {
    let group = group(db, 10).await;
    let repository = webhooks(db);
    let mut stored = webhook(&group, 1_000);
    repository.insert(&stored).await.unwrap();
    let headers_of = |found: Option<Webhook>| found.and_then(|webhook| webhook.headers);
    assert_eq!(
        repository.find(group.id, &stored.id).await.map(headers_of),
        Ok(None)
    );

    stored.headers = Some(sealed_headers());
    assert_eq!(repository.update(&stored, None).await, Ok(true));
    assert_eq!(
        repository.find(group.id, &stored.id).await.map(headers_of),
        Ok(stored.headers.clone())
    );

    stored.headers = None;
    assert_eq!(repository.update(&stored, None).await, Ok(true));
    assert_eq!(
        repository.find(group.id, &stored.id).await.map(headers_of),
        Ok(None)
    );
}

async fn ordering_can_be_set_and_cleared(db: &Database) {
    let group = group(db, 12).await;
    let repository = webhooks(db);
    let mut stored = webhook(&group, 1_000);
    stored.ordering = Some(DeliveryOrdering::Fifo);
    repository.insert(&stored).await.unwrap();
    let ordering_of = |found: Option<Webhook>| found.and_then(|webhook| webhook.ordering);
    assert_eq!(
        repository.find(group.id, &stored.id).await.map(ordering_of),
        Ok(Some(DeliveryOrdering::Fifo))
    );

    stored.ordering = None;
    assert_eq!(repository.update(&stored, None).await, Ok(true));
    assert_eq!(
        repository.find(group.id, &stored.id).await.map(ordering_of),
        Ok(None)
    );
}

async fn enabled_events_round_trip(db: &Database) {
    let group = group(db, 11).await;
    let repository = webhooks(db);
    for events in [
        EnabledEvents::new([EventType::UserCreated]).unwrap(),
        EnabledEvents::new([EventType::UserSessionResult]).unwrap(),
        EnabledEvents::all(),
    ] {
        let mut stored = webhook(&group, 1_000);
        stored.enabled_events = events.clone();
        repository.insert(&stored).await.unwrap();
        let found = repository
            .find(group.id, &stored.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.enabled_events, events);
    }
}

async fn delete_removes_the_webhook_once(db: &Database) {
    let group = group(db, 13).await;
    let repository = webhooks(db);
    let doomed = webhook(&group, 1_000);
    let kept = webhook(&group, 2_000);
    repository.insert(&doomed).await.unwrap();
    repository.insert(&kept).await.unwrap();

    assert_eq!(repository.delete(group.id, &doomed.id).await, Ok(true));
    assert_eq!(repository.find(group.id, &doomed.id).await, Ok(None));
    assert_eq!(repository.delete(group.id, &doomed.id).await, Ok(false));
    assert_eq!(repository.list_by_group(group.id).await, Ok(vec![kept]));
}

async fn inserting_an_existing_webhook_id_is_conflict(db: &Database) {
    let group = group(db, 17).await;
    let repository = webhooks(db);
    let stored = webhook(&group, 1_000);
    repository.insert(&stored).await.unwrap();

    let mut again = stored.clone();
    again.description = Description::new("second").unwrap();
    assert!(matches!(
        repository.insert(&again).await,
        Err(RepositoryError::Conflict(_))
    ));
    assert_eq!(
        repository.find(group.id, &stored.id).await,
        Ok(Some(stored))
    );
}

async fn concurrent_inserts_all_land(db: &Database) {
    let group = group(db, 19).await;
    let repository = webhooks(db);
    // More writers than pooled connections: checkouts queue, and SQLite's
    // busy timeout lets writers wait for each other instead of failing.
    let mut writers = tokio::task::JoinSet::new();
    for n in 0..24 {
        let repository = repository.clone();
        let webhook = webhook(&group, 1_000 + n);
        writers.spawn(async move { repository.insert(&webhook).await });
    }
    while let Some(result) = writers.join_next().await {
        assert_eq!(result.unwrap(), Ok(()));
    }
    assert_eq!(repository.list_by_group(group.id).await.unwrap().len(), 24);
}

async fn concurrent_inserts_share_transactions_and_are_stored_unchanged(
    test_database: &TestDatabase,
) {
    let db = test_database.database();
    let group = group(db, 21).await;
    // Every optional column both set and empty within one batch.
    let made: Vec<Webhook> = (0..40)
        .map(|n| {
            let mut made = webhook(&group, 1_000 + n);
            if n % 2 == 0 {
                made.rate_limit = Some(RateLimit::new(n + 1).unwrap());
                made.headers = Some(sealed_headers());
                made.ordering = Some(DeliveryOrdering::Fifo);
                made.status = WebhookStatus::Disabled;
                made.enabled_events = EnabledEvents::new([EventType::UserCreated]).unwrap();
                made.description = Description::new(&format!("Café ☕ {n}")).unwrap();
            }
            made
        })
        .collect();

    for outcome in insert_at_once(db, &made).await {
        assert_eq!(outcome, Ok(()));
    }

    assert_eq!(webhooks(db).list_by_group(group.id).await, Ok(made));
    assert_fewer_transactions_than_rows(test_database, "webhooks", 40);
}

async fn a_bad_webhook_among_concurrent_inserts_fails_alone(test_database: &TestDatabase) {
    let db = test_database.database();
    let group = group(db, 22).await;
    let first = webhook(&group, 1_000);
    webhooks(db).insert(&first).await.unwrap();
    let made: Vec<Webhook> = (0..9)
        .map(|n| match n {
            // An id already stored…
            3 => Webhook {
                description: Description::new("second").unwrap(),
                ..first.clone()
            },
            // …and a group that does not exist (the use case checks first).
            6 => Webhook {
                group_id: GroupId::new(404).unwrap(),
                ..webhook(&group, 2_000 + n)
            },
            n => webhook(&group, 2_000 + n),
        })
        .collect();

    let outcomes = insert_at_once(db, &made).await;

    for (n, outcome) in outcomes.iter().enumerate() {
        match n {
            3 => assert!(
                matches!(outcome, Err(RepositoryError::Conflict(_))),
                "{outcome:?}"
            ),
            6 => assert!(
                matches!(outcome, Err(RepositoryError::Unavailable(_))),
                "{outcome:?}"
            ),
            _ => assert_eq!(outcome, &Ok(()), "webhook {n}"),
        }
    }
    assert_eq!(test_database.row_counts().await.webhooks, 8);
    assert_eq!(
        webhooks(db).find(group.id, &first.id).await,
        Ok(Some(first))
    );
}

/// Inserts the webhooks concurrently through one repository (so that they
/// can share transactions); answers their outcomes in order.
async fn insert_at_once(db: &Database, made: &[Webhook]) -> Vec<Result<(), RepositoryError>> {
    let repository = webhooks(db);
    all_at_once(made, |made| {
        let repository = repository.clone();
        async move { repository.insert(&made).await }
    })
    .await
}

async fn rows_that_no_longer_parse_are_corrupt(test_database: &TestDatabase) {
    let db = test_database.database();
    let group = group(db, 23).await;
    let repository = webhooks(db);
    let stored = webhook(&group, 1_000);
    repository.insert(&stored).await.unwrap();

    for sql in [
        "UPDATE webhooks SET status = 'paused'",
        "UPDATE webhooks SET status = 'enabled', enabled_events = 'user.deleted'",
        "UPDATE webhooks SET enabled_events = 'user.created', url = 'not a url'",
        "UPDATE webhooks SET url = 'https://a.example/', rate_limit = 0",
        "UPDATE webhooks SET rate_limit = NULL, headers = '{\"X-Api-Key\":\"k\"}'",
        "UPDATE webhooks SET headers = NULL, ordering = 'lifo'",
    ] {
        execute_raw(test_database.url(), sql);
        assert!(
            matches!(
                repository.find(group.id, &stored.id).await,
                Err(RepositoryError::Corrupt(_))
            ),
            "{sql}"
        );
        assert!(
            matches!(
                repository.list_by_group(group.id).await,
                Err(RepositoryError::Corrupt(_))
            ),
            "{sql}"
        );
    }
}

/// The webhooks' ids, in order.
fn ids(webhooks: &[Webhook]) -> Vec<&str> {
    webhooks.iter().map(|webhook| webhook.id.as_str()).collect()
}
