//! [`WebhookService::secret`] and [`WebhookService::rotate_secret`]: a
//! webhook's signing secret.

use std::time::Duration;

use mockall::predicate::{always, eq};
use webhooks_domain::{DomainError, Resource, SealedSecret, UnixMillis, Webhook};

use crate::support::*;

#[tokio::test]
async fn secret_returns_the_opened_secret_of_the_stored_webhook() {
    let service = ports_with_webhook().webhook_service();

    let secret = service
        .secret(&principal(), group_id(), &webhook_id())
        .await
        .unwrap();

    assert_eq!(secret, current_secret());
    assert_eq!(secret.expose(), CURRENT_SECRET);
}

#[tokio::test]
async fn secret_of_unknown_webhook_is_webhook_not_found() {
    let service = Ports {
        tenancy: tenancy_with_group_of(org_id()),
        webhooks: webhooks_finding(None),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_rejected(
        service
            .secret(&principal(), group_id(), &webhook_id())
            .await,
        DomainError::NotFound(Resource::Webhook),
    );
}

#[tokio::test]
async fn secret_in_group_of_another_organization_is_group_not_found() {
    let service = ports_of_other_organization().webhook_service();

    assert_rejected(
        service
            .secret(&principal(), group_id(), &webhook_id())
            .await,
        DomainError::NotFound(Resource::Group),
    );
}

#[tokio::test]
async fn secret_that_cannot_be_opened_is_unexpected() {
    let stored = Webhook {
        secret: sealed_under_another_key(),
        ..webhook()
    };
    let service = Ports {
        tenancy: tenancy_with_group_of(org_id()),
        webhooks: webhooks_finding(Some(stored)),
        ..Ports::untouched()
    }
    .webhook_service();

    let error = service
        .secret(&principal(), group_id(), &webhook_id())
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::Unexpected(_)), "{error:?}");
}

/// The ports of a rotation of [`WEBHOOK_ID`] at [`NOW`] whose repository
/// answers `found`; records the sealed secret and its predecessor's expiry.
fn rotation_ports(found: bool, stored: &Recorded<(SealedSecret, UnixMillis)>) -> Ports {
    let mut webhooks = webhooks_finding(Some(webhook()));
    let recorder = stored.clone();
    webhooks
        .expect_rotate_secret()
        .with(eq(group_id()), eq(webhook_id()), always(), always())
        .times(1)
        .returning(move |_, _, sealed, expires| {
            recorder.record(&(sealed.clone(), expires));
            Ok(found)
        });
    Ports {
        webhooks,
        tenancy: tenancy_with_group_of(org_id()),
        clock: clock_at_now(),
        ..Ports::untouched()
    }
}

#[tokio::test]
async fn rotate_secret_stores_a_sealed_secret_that_opens_to_the_new_one_returned() {
    let stored = Recorded::new();
    let service = rotation_ports(true, &stored).webhook_service();

    let secret = service
        .rotate_secret(&principal(), group_id(), &webhook_id())
        .await
        .unwrap();

    let (sealed, _) = stored.get();
    assert_eq!(cipher().open(&sealed), Ok(secret.clone()));
    assert_ne!(secret, current_secret());
    assert!(!sealed.as_str().contains(&secret.expose()["whsec_".len()..]));
}

#[tokio::test]
async fn rotate_secret_keeps_the_old_secret_until_now_plus_the_grace() {
    let stored = Recorded::new();
    let service = rotation_ports(true, &stored)
        .webhook_service()
        .with_rotation_grace(Duration::from_secs(3600));

    service
        .rotate_secret(&principal(), group_id(), &webhook_id())
        .await
        .unwrap();

    let (_, expires) = stored.get();
    assert_eq!(expires, UnixMillis(1_750_003_600_000));
}

#[tokio::test]
async fn rotate_secret_keeps_the_old_secret_24_hours_by_default() {
    let stored = Recorded::new();
    let service = rotation_ports(true, &stored).webhook_service();

    service
        .rotate_secret(&principal(), group_id(), &webhook_id())
        .await
        .unwrap();

    let (_, expires) = stored.get();
    assert_eq!(expires, now_plus(Duration::from_secs(24 * 3600)));
}

#[tokio::test]
async fn rotate_secret_when_the_repository_finds_nothing_is_webhook_not_found() {
    let stored = Recorded::new();
    let service = rotation_ports(false, &stored).webhook_service();

    assert_rejected(
        service
            .rotate_secret(&principal(), group_id(), &webhook_id())
            .await,
        DomainError::NotFound(Resource::Webhook),
    );
}

#[tokio::test]
async fn rotate_secret_of_unknown_webhook_is_webhook_not_found_and_rotates_nothing() {
    let service = Ports {
        tenancy: tenancy_with_group_of(org_id()),
        webhooks: webhooks_finding(None),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_rejected(
        service
            .rotate_secret(&principal(), group_id(), &webhook_id())
            .await,
        DomainError::NotFound(Resource::Webhook),
    );
}

#[tokio::test]
async fn rotate_secret_in_group_of_another_organization_is_group_not_found() {
    let service = ports_of_other_organization().webhook_service();

    assert_rejected(
        service
            .rotate_secret(&principal(), group_id(), &webhook_id())
            .await,
        DomainError::NotFound(Resource::Group),
    );
}
