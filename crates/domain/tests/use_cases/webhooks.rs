//! [`WebhookService`]: authenticating a caller, the group check every use
//! case starts with, and the webhooks of a group.

use mockall::predicate::eq;
use webhooks_domain::ports::{MockTenancyRepository, MockWebhookRepository};
use webhooks_domain::{
    ApiKeySecret, CreatedWebhook, CustomHeaders, DeliveryOrdering, DomainError, EnabledEvents,
    EventType, NewWebhook, RateLimit, Resource, Webhook, WebhookId, WebhookStatus, WebhookUpdate,
};

use crate::support::*;

/// Creates `new` in group [`GROUP`] of the caller; answers the result and the
/// webhook handed to the repository.
async fn create_with(new: NewWebhook) -> (CreatedWebhook, Webhook) {
    let stored = Recorded::new();
    let mut webhooks = MockWebhookRepository::new();
    let recorder = stored.clone();
    webhooks.expect_insert().times(1).returning(move |webhook| {
        recorder.record(webhook);
        Ok(())
    });
    let service = Ports {
        webhooks,
        tenancy: tenancy_with_group_of(org_id()),
        clock: clock_at_now(),
        ids: ids_giving_ulid(),
        ..Ports::untouched()
    }
    .webhook_service();

    let created = service.create(&principal(), group_id(), new).await.unwrap();
    (created, stored.get())
}

/// Applies `update` to `current` (webhook [`WEBHOOK_ID`] of group [`GROUP`]);
/// checks the answer is what was stored and returns it.
async fn update_with(current: Webhook, update: WebhookUpdate) -> Webhook {
    let stored = Recorded::new();
    let mut webhooks = MockWebhookRepository::new();
    webhooks
        .expect_find()
        .with(eq(group_id()), eq(webhook_id()))
        .times(1)
        .returning(move |_, _| Ok(Some(current.clone())));
    let recorder = stored.clone();
    webhooks
        .expect_update()
        .times(1)
        .returning(move |webhook, _| {
            recorder.record(webhook);
            Ok(true)
        });
    let service = Ports {
        webhooks,
        tenancy: tenancy_with_group_of(org_id()),
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .webhook_service();

    let updated = service
        .update(&principal(), group_id(), &webhook_id(), update)
        .await
        .unwrap();
    assert_eq!(updated, stored.get());
    updated
}

// ---------------------------------------------------------------------------
// WebhookService::authenticate
// ---------------------------------------------------------------------------

#[tokio::test]
async fn authenticate_with_an_empty_api_key_is_not_allowed_without_a_lookup() {
    let service = Ports::untouched().webhook_service();

    assert_rejected(
        service.authenticate(&ApiKeySecret::from_header("")).await,
        DomainError::NotAllowed,
    );
}

#[tokio::test]
async fn authenticate_with_unknown_api_key_is_unauthorized() {
    let service = Ports {
        tenancy: tenancy_with_key(None),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_rejected(
        service.authenticate(&api_key()).await,
        DomainError::NotAllowed,
    );
}

#[tokio::test]
async fn authenticate_with_revoked_api_key_is_unauthorized() {
    let service = Ports {
        tenancy: tenancy_with_key(Some(stored_key(Some(CREATED)))),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_rejected(
        service.authenticate(&api_key()).await,
        DomainError::NotAllowed,
    );
}

#[tokio::test]
async fn authenticate_with_valid_api_key_is_its_organization() {
    let service = Ports {
        tenancy: tenancy_with_key(Some(stored_key(None))),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_eq!(service.authenticate(&api_key()).await, Ok(principal()));
}

#[tokio::test]
async fn authenticate_when_repository_fails_is_unexpected_not_unauthorized() {
    let mut tenancy = MockTenancyRepository::new();
    tenancy
        .expect_find_api_key_by_hash()
        .times(1)
        .returning(|_| Err(unavailable()));
    let service = Ports {
        tenancy,
        ..Ports::untouched()
    }
    .webhook_service();

    let error = service.authenticate(&api_key()).await.unwrap_err();
    assert!(matches!(error, DomainError::Unexpected(_)), "{error:?}");
}

// ---------------------------------------------------------------------------
// WebhookService::authorize_group, and the group check of every use case
// ---------------------------------------------------------------------------

#[tokio::test]
async fn authorize_group_of_the_callers_organization_looks_up_the_group_alone() {
    let service = Ports {
        tenancy: tenancy_with_group_of(org_id()),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_eq!(
        service.authorize_group(&principal(), group_id()).await,
        Ok(())
    );
}

#[tokio::test]
async fn authorize_group_of_another_organization_is_group_not_found() {
    let service = ports_of_other_organization().webhook_service();

    assert_rejected(
        service.authorize_group(&principal(), group_id()).await,
        DomainError::NotFound(Resource::Group),
    );
}

#[tokio::test]
async fn authorize_group_of_an_unknown_group_is_group_not_found() {
    let service = Ports {
        tenancy: tenancy_without_group(),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_rejected(
        service.authorize_group(&principal(), group_id()).await,
        DomainError::NotFound(Resource::Group),
    );
}

#[tokio::test]
async fn create_with_unknown_group_is_group_not_found() {
    let service = Ports {
        tenancy: tenancy_without_group(),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_rejected(
        service
            .create(&principal(), group_id(), new_webhook())
            .await,
        DomainError::NotFound(Resource::Group),
    );
}

#[tokio::test]
async fn create_in_group_of_another_organization_is_group_not_found() {
    let service = Ports {
        tenancy: tenancy_with_group_of(other_org_id()),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_rejected(
        service
            .create(&principal(), group_id(), new_webhook())
            .await,
        DomainError::NotFound(Resource::Group),
    );
}

#[tokio::test]
async fn list_of_group_of_another_organization_is_group_not_found() {
    let service = Ports {
        tenancy: tenancy_with_group_of(other_org_id()),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_rejected(
        service.list(&principal(), group_id()).await,
        DomainError::NotFound(Resource::Group),
    );
}

#[tokio::test]
async fn update_with_unknown_group_is_group_not_found_before_webhook_lookup() {
    let service = Ports {
        tenancy: tenancy_without_group(),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_rejected(
        service
            .update(&principal(), group_id(), &webhook_id(), webhook_update())
            .await,
        DomainError::NotFound(Resource::Group),
    );
}

#[tokio::test]
async fn delete_in_group_of_another_organization_is_group_not_found() {
    let service = Ports {
        tenancy: tenancy_with_group_of(other_org_id()),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_rejected(
        service
            .delete(&principal(), group_id(), &webhook_id())
            .await,
        DomainError::NotFound(Resource::Group),
    );
}

#[tokio::test]
async fn list_when_group_lookup_fails_is_unexpected() {
    let mut tenancy = MockTenancyRepository::new();
    tenancy
        .expect_find_group()
        .times(1)
        .returning(|_| Err(unavailable()));
    let service = Ports {
        tenancy,
        ..Ports::untouched()
    }
    .webhook_service();

    let error = service.list(&principal(), group_id()).await.unwrap_err();
    assert!(matches!(error, DomainError::Unexpected(_)), "{error:?}");
}

#[tokio::test]
async fn get_of_unknown_webhook_is_webhook_not_found() {
    let service = Ports {
        webhooks: webhooks_finding(None),
        tenancy: tenancy_with_group_of(org_id()),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_rejected(
        service.get(&principal(), group_id(), &webhook_id()).await,
        DomainError::NotFound(Resource::Webhook),
    );
}

#[tokio::test]
async fn update_of_unknown_webhook_is_webhook_not_found_and_writes_nothing() {
    let service = Ports {
        webhooks: webhooks_finding(None),
        tenancy: tenancy_with_group_of(org_id()),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_rejected(
        service
            .update(&principal(), group_id(), &webhook_id(), webhook_update())
            .await,
        DomainError::NotFound(Resource::Webhook),
    );
}

#[tokio::test]
async fn update_when_repository_update_finds_nothing_is_webhook_not_found() {
    let mut webhooks = MockWebhookRepository::new();
    webhooks
        .expect_find()
        .times(1)
        .returning(|_, _| Ok(Some(webhook())));
    // Deleted between the read and the write.
    webhooks
        .expect_update()
        .times(1)
        .returning(|_, _| Ok(false));
    let service = Ports {
        webhooks,
        tenancy: tenancy_with_group_of(org_id()),
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_rejected(
        service
            .update(&principal(), group_id(), &webhook_id(), webhook_update())
            .await,
        DomainError::NotFound(Resource::Webhook),
    );
}

#[tokio::test]
async fn delete_of_unknown_webhook_is_webhook_not_found() {
    let mut webhooks = MockWebhookRepository::new();
    webhooks
        .expect_delete()
        .with(eq(group_id()), eq(webhook_id()))
        .times(1)
        .returning(|_, _| Ok(false));
    let service = Ports {
        webhooks,
        tenancy: tenancy_with_group_of(org_id()),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_rejected(
        service
            .delete(&principal(), group_id(), &webhook_id())
            .await,
        DomainError::NotFound(Resource::Webhook),
    );
}

// ---------------------------------------------------------------------------
// WebhookService: list, get, delete
// ---------------------------------------------------------------------------

#[tokio::test]
async fn list_asks_for_the_group_and_keeps_the_repository_order() {
    let older = webhook();
    let newer = Webhook {
        id: WebhookId::parse("we_01j9zq4x2k7m3n8p5r6s0t1v2w").unwrap(),
        created_at: NOW,
        ..webhook()
    };
    let in_repository_order = vec![newer, older];
    let mut webhooks = MockWebhookRepository::new();
    let answer = in_repository_order.clone();
    webhooks
        .expect_list_by_group()
        .with(eq(group_id()))
        .times(1)
        .returning(move |_| Ok(answer.clone()));
    let service = Ports {
        webhooks,
        tenancy: tenancy_with_group_of(org_id()),
        ..Ports::untouched()
    }
    .webhook_service();

    let listed = service.list(&principal(), group_id()).await;

    assert_eq!(listed, Ok(in_repository_order));
}

#[tokio::test]
async fn get_returns_the_webhook_of_the_group() {
    let service = Ports {
        webhooks: webhooks_finding(Some(webhook())),
        tenancy: tenancy_with_group_of(org_id()),
        ..Ports::untouched()
    }
    .webhook_service();

    let found = service.get(&principal(), group_id(), &webhook_id()).await;

    assert_eq!(found, Ok(webhook()));
}

#[tokio::test]
async fn delete_of_existing_webhook_deletes_it_in_its_group() {
    let mut webhooks = MockWebhookRepository::new();
    webhooks
        .expect_delete()
        .with(eq(group_id()), eq(webhook_id()))
        .times(1)
        .returning(|_, _| Ok(true));
    let service = Ports {
        webhooks,
        tenancy: tenancy_with_group_of(org_id()),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_eq!(
        service
            .delete(&principal(), group_id(), &webhook_id())
            .await,
        Ok(())
    );
}

// ---------------------------------------------------------------------------
// WebhookService::create
// ---------------------------------------------------------------------------

#[tokio::test]
async fn create_stores_and_returns_an_enabled_webhook_with_every_event() {
    let (created, stored) = create_with(new_webhook()).await;

    assert_eq!(created.webhook, stored);
    assert_eq!(stored.status, WebhookStatus::Enabled);
    assert_eq!(stored.enabled_events, EnabledEvents::all());
    assert_eq!(stored.rate_limit, None);
    assert_eq!(stored.group_id, group_id());
    assert_eq!(stored.url.as_str(), "https://integration.example/webhook");
    assert_eq!(stored.description.as_str(), "Webhook Description");
}

#[tokio::test]
async fn create_id_is_we_and_the_lowercase_ulid_of_the_id_source() {
    let (created, _) = create_with(new_webhook()).await;

    let id = created.webhook.id.as_str();
    assert_eq!(id, format!("we_{ULID_LOWER}"));
    assert_eq!(id.len(), 29);
    assert!(id[3..]
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
}

#[tokio::test]
async fn create_seals_the_secret_it_returns() {
    let (created, stored) = create_with(new_webhook()).await;

    assert!(created.secret.expose().starts_with("whsec_"));
    assert_eq!(cipher().open(&stored.secret), Ok(created.secret.clone()));
    let plaintext = &created.secret.expose()["whsec_".len()..];
    assert!(!stored.secret.as_str().contains(plaintext));
}

#[tokio::test]
async fn create_stamps_created_and_updated_at_from_the_clock() {
    let (created, _) = create_with(new_webhook()).await;

    assert_eq!(created.webhook.created_at, NOW);
    assert_eq!(created.webhook.updated_at, NOW);
}

#[tokio::test]
async fn create_keeps_the_requested_enabled_events() {
    let new = NewWebhook {
        enabled_events: EnabledEvents::new([EventType::UserSessionResult]).unwrap(),
        ..new_webhook()
    };

    let (_, stored) = create_with(new).await;

    assert_eq!(
        stored.enabled_events,
        EnabledEvents::new([EventType::UserSessionResult]).unwrap()
    );
}

#[tokio::test]
async fn create_when_insert_fails_is_unexpected() {
    let mut webhooks = MockWebhookRepository::new();
    webhooks
        .expect_insert()
        .times(1)
        .returning(|_| Err(unavailable()));
    let service = Ports {
        webhooks,
        tenancy: tenancy_with_group_of(org_id()),
        clock: clock_at_now(),
        ids: ids_giving_ulid(),
        ..Ports::untouched()
    }
    .webhook_service();

    let error = service
        .create(&principal(), group_id(), new_webhook())
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::Unexpected(_)), "{error:?}");
}

// ---------------------------------------------------------------------------
// WebhookService::update
// ---------------------------------------------------------------------------

#[tokio::test]
async fn update_replaces_url_and_description() {
    let updated = update_with(webhook(), webhook_update()).await;

    assert_eq!(
        updated.url.as_str(),
        "https://integration.example/newWebhook"
    );
    assert_eq!(updated.description.as_str(), "New Webhook Description");
}

#[tokio::test]
async fn update_without_optional_fields_keeps_events_status_and_rate_limit() {
    let current = Webhook {
        status: WebhookStatus::Disabled,
        enabled_events: EnabledEvents::new([EventType::UserCreated]).unwrap(),
        ..webhook()
    };

    let updated = update_with(current.clone(), webhook_update()).await;

    assert_eq!(updated.enabled_events, current.enabled_events);
    assert_eq!(updated.status, WebhookStatus::Disabled);
    assert_eq!(updated.rate_limit, current.rate_limit);
}

#[tokio::test]
async fn update_with_optional_fields_changes_events_status_and_rate_limit() {
    let update = WebhookUpdate {
        enabled_events: Some(EnabledEvents::new([EventType::UserCreated]).unwrap()),
        status: Some(WebhookStatus::Disabled),
        rate_limit: Some(Some(RateLimit::new(10).unwrap())),
        ..webhook_update()
    };

    let updated = update_with(webhook(), update).await;

    assert_eq!(
        updated.enabled_events,
        EnabledEvents::new([EventType::UserCreated]).unwrap()
    );
    assert_eq!(updated.status, WebhookStatus::Disabled);
    assert_eq!(updated.rate_limit, Some(RateLimit::new(10).unwrap()));
}

#[tokio::test]
async fn update_with_null_rate_limit_clears_it() {
    let update = WebhookUpdate {
        rate_limit: Some(None),
        ..webhook_update()
    };

    let updated = update_with(webhook(), update).await;

    assert_eq!(updated.rate_limit, None);
}

#[tokio::test]
async fn update_stamps_updated_at_from_the_clock_and_keeps_identity_secret_and_created_at() {
    let current = webhook();

    let updated = update_with(current.clone(), webhook_update()).await;

    assert_eq!(updated.updated_at, NOW);
    assert_eq!(updated.created_at, CREATED);
    assert_eq!(updated.id, current.id);
    assert_eq!(updated.group_id, current.group_id);
    assert_eq!(updated.secret, current.secret);
}

#[tokio::test]
async fn create_stores_custom_headers_sealed_with_the_names_in_the_clear() {
    let new = NewWebhook {
        headers: Some(custom_headers()),
        ..new_webhook()
    };

    let (created, stored) = create_with(new).await;

    let sealed = stored.headers.clone().unwrap();
    assert_eq!(
        sealed.names().collect::<Vec<_>>(),
        ["Authorization", "X-Api-Key"]
    );
    assert!(!sealed.to_stored().contains("k3y"));
    assert_eq!(cipher().open_headers(&sealed), Ok(custom_headers()));
    assert_eq!(created.webhook.headers, stored.headers);
}

#[tokio::test]
async fn create_with_empty_custom_headers_stores_none() {
    let new = NewWebhook {
        headers: Some(CustomHeaders::default()),
        ..new_webhook()
    };

    let (_, stored) = create_with(new).await;

    assert_eq!(stored.headers, None);
}

#[tokio::test]
async fn update_replaces_keeps_or_removes_the_custom_headers() {
    let current = Webhook {
        headers: Some(cipher().seal_headers(&custom_headers())),
        ..webhook()
    };
    let replacement = CustomHeaders::new([("X-Other", "v")]).unwrap();

    let replaced = update_with(
        current.clone(),
        WebhookUpdate {
            headers: Some(Some(replacement.clone())),
            ..webhook_update()
        },
    )
    .await;
    let kept = update_with(current.clone(), webhook_update()).await;
    let removed = update_with(
        current.clone(),
        WebhookUpdate {
            headers: Some(None),
            ..webhook_update()
        },
    )
    .await;

    assert_eq!(
        cipher().open_headers(&replaced.headers.unwrap()),
        Ok(replacement)
    );
    assert_eq!(kept.headers, current.headers);
    assert_eq!(removed.headers, None);
}

#[tokio::test]
async fn create_stores_the_ordering_asked_for() {
    let new = NewWebhook {
        ordering: Some(DeliveryOrdering::Fifo),
        ..new_webhook()
    };

    let (created, stored) = create_with(new).await;

    assert_eq!(stored.ordering, Some(DeliveryOrdering::Fifo));
    assert_eq!(created.webhook.ordering, Some(DeliveryOrdering::Fifo));
}

#[tokio::test]
async fn update_sets_keeps_or_removes_the_ordering() {
    let current = Webhook {
        ordering: Some(DeliveryOrdering::Fifo),
        ..webhook()
    };
    let set = |ordering| WebhookUpdate {
        ordering,
        ..webhook_update()
    };

    let kept = update_with(current.clone(), set(None)).await;
    let removed = update_with(current.clone(), set(Some(None))).await;
    let added = update_with(webhook(), set(Some(Some(DeliveryOrdering::Fifo)))).await;

    assert_eq!(kept.ordering, Some(DeliveryOrdering::Fifo));
    assert_eq!(removed.ordering, None);
    assert_eq!(added.ordering, Some(DeliveryOrdering::Fifo));
}
