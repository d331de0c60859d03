//! [`TenancyService`]: organizations, groups, API keys and the demo tenant.

use mockall::predicate::eq;
use webhooks_domain::ports::{MockIdSource, MockTenancyRepository};
use webhooks_domain::{
    ApiKey, Conflict, DisplayName, DomainError, Group, GroupId, Resource, DEMO_GROUP_ID,
};

use crate::support::*;

fn name(raw: &str) -> DisplayName {
    DisplayName::new(raw).unwrap()
}

// ---------------------------------------------------------------------------
// TenancyService: organizations
// ---------------------------------------------------------------------------

#[tokio::test]
async fn create_organization_stores_the_trimmed_name_with_an_org_id() {
    let stored = Recorded::new();
    let mut tenancy = MockTenancyRepository::new();
    let recorder = stored.clone();
    tenancy
        .expect_insert_organization()
        .times(1)
        .returning(move |organization| {
            recorder.record(organization);
            Ok(())
        });
    let admin = Ports {
        tenancy,
        clock: clock_at_now(),
        ids: ids_giving_ulid(),
        ..Ports::untouched()
    }
    .tenancy_service();

    let created = admin
        .create_organization(name(&format!("  {}  ", "é".repeat(200))))
        .await
        .unwrap();

    assert_eq!(created, stored.get());
    assert_eq!(created.id.as_str(), format!("org_{ULID_LOWER}"));
    assert_eq!(created.name, "é".repeat(200));
    assert_eq!(created.created_at, NOW);
}

// ---------------------------------------------------------------------------
// TenancyService: groups
// ---------------------------------------------------------------------------

#[tokio::test]
async fn create_group_of_unknown_organization_is_organization_not_found() {
    let mut tenancy = MockTenancyRepository::new();
    tenancy
        .expect_find_organization()
        .with(eq(org_id()))
        .times(1)
        .returning(|_| Ok(None));
    tenancy.expect_insert_group().never();
    let admin = Ports {
        tenancy,
        ..Ports::untouched()
    }
    .tenancy_service();

    assert_rejected(
        admin
            .create_group(&org_id(), name("Production"), None)
            .await,
        DomainError::NotFound(Resource::Organization),
    );
}

#[tokio::test]
async fn create_group_with_given_id_stores_that_id() {
    let mut tenancy = tenancy_with_organization();
    tenancy
        .expect_insert_group()
        .withf(|group| group.id.get() == 777)
        .times(1)
        .returning(|_| Ok(()));
    let admin = Ports {
        tenancy,
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .tenancy_service();

    let group = admin
        .create_group(&org_id(), name(" Production "), GroupId::new(777).ok())
        .await
        .unwrap();

    assert_eq!(
        group,
        Group {
            id: GroupId::new(777).unwrap(),
            organization_id: org_id(),
            name: "Production".to_owned(),
            operations: false,
            created_at: NOW,
        }
    );
}

#[tokio::test]
async fn create_group_with_taken_id_is_group_id_taken_after_one_try() {
    let mut tenancy = tenancy_with_organization();
    tenancy
        .expect_insert_group()
        .times(1)
        .returning(|_| Err(conflict()));
    let admin = Ports {
        tenancy,
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .tenancy_service();

    assert_rejected(
        admin
            .create_group(&org_id(), name("Production"), GroupId::new(GROUP).ok())
            .await,
        DomainError::Conflict(Conflict::GroupIdTaken),
    );
}

#[tokio::test]
async fn create_group_retries_a_generated_id_that_collides() {
    let taken = GroupId::new(100_001).unwrap();
    let free = GroupId::new(100_002).unwrap();
    let mut ids = MockIdSource::new();
    let mut drawn = [taken, free].into_iter();
    ids.expect_group_id()
        .times(2)
        .returning(move || drawn.next().unwrap());
    ids.expect_ulid().never();
    let mut tenancy = tenancy_with_organization();
    tenancy
        .expect_insert_group()
        .times(2)
        .returning(move |group| {
            if group.id == taken {
                Err(conflict())
            } else {
                Ok(())
            }
        });
    let admin = Ports {
        tenancy,
        clock: clock_at_now(),
        ids,
        ..Ports::untouched()
    }
    .tenancy_service();

    let group = admin
        .create_group(&org_id(), name("Production"), None)
        .await
        .unwrap();

    assert_eq!(group.id, free);
}

#[tokio::test]
async fn create_group_after_eight_generated_collisions_is_group_id_taken() {
    let mut ids = MockIdSource::new();
    let mut next = 100_000;
    ids.expect_group_id().times(8).returning(move || {
        next += 1;
        GroupId::new(next).unwrap()
    });
    ids.expect_ulid().never();
    let mut tenancy = tenancy_with_organization();
    tenancy
        .expect_insert_group()
        .times(8)
        .returning(|_| Err(conflict()));
    let admin = Ports {
        tenancy,
        clock: clock_at_now(),
        ids,
        ..Ports::untouched()
    }
    .tenancy_service();

    assert_rejected(
        admin
            .create_group(&org_id(), name("Production"), None)
            .await,
        DomainError::Conflict(Conflict::GroupIdTaken),
    );
}

#[tokio::test]
async fn create_group_when_insert_fails_otherwise_is_unexpected_without_retry() {
    let mut tenancy = tenancy_with_organization();
    tenancy
        .expect_insert_group()
        .times(1)
        .returning(|_| Err(unavailable()));
    let mut ids = MockIdSource::new();
    ids.expect_group_id()
        .times(1)
        .return_const(GroupId::new(100_001).unwrap());
    let admin = Ports {
        tenancy,
        clock: clock_at_now(),
        ids,
        ..Ports::untouched()
    }
    .tenancy_service();

    let error = admin
        .create_group(&org_id(), name("Production"), None)
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::Unexpected(_)), "{error:?}");
}

// ---------------------------------------------------------------------------
// TenancyService: API keys
// ---------------------------------------------------------------------------

#[tokio::test]
async fn create_api_key_stores_only_the_hash_of_the_returned_key() {
    let stored = Recorded::new();
    let mut tenancy = tenancy_with_organization();
    let recorder = stored.clone();
    tenancy
        .expect_insert_api_key()
        .times(1)
        .returning(move |key| {
            recorder.record(key);
            Ok(())
        });
    let admin = Ports {
        tenancy,
        clock: clock_at_now(),
        ids: ids_giving_ulid(),
        ..Ports::untouched()
    }
    .tenancy_service();

    let issued = admin.create_api_key(&org_id()).await.unwrap();
    let stored: ApiKey = stored.get();

    assert_eq!(issued.key, stored);
    assert_eq!(stored.hash, issued.secret.hash());
    assert!(!format!("{stored:?}").contains(issued.secret.expose()));
    assert_eq!(stored.id.as_str(), format!("key_{ULID_LOWER}"));
    assert_eq!(stored.organization_id, org_id());
    assert_eq!(stored.created_at, NOW);
    assert_eq!(stored.revoked_at, None);
}

#[tokio::test]
async fn create_api_key_of_unknown_organization_is_organization_not_found() {
    let mut tenancy = MockTenancyRepository::new();
    tenancy
        .expect_find_organization()
        .times(1)
        .returning(|_| Ok(None));
    tenancy.expect_insert_api_key().never();
    let admin = Ports {
        tenancy,
        ..Ports::untouched()
    }
    .tenancy_service();

    assert_rejected(
        admin.create_api_key(&org_id()).await,
        DomainError::NotFound(Resource::Organization),
    );
}

#[tokio::test]
async fn revoke_api_key_revokes_it_at_the_clock_time() {
    let mut tenancy = MockTenancyRepository::new();
    tenancy
        .expect_revoke_api_key()
        .with(eq(key_id()), eq(NOW))
        .times(1)
        .returning(|_, _| Ok(true));
    let admin = Ports {
        tenancy,
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .tenancy_service();

    assert_eq!(admin.revoke_api_key(&key_id()).await, Ok(()));
}

#[tokio::test]
async fn revoke_unknown_api_key_is_api_key_not_found() {
    let mut tenancy = MockTenancyRepository::new();
    tenancy
        .expect_revoke_api_key()
        .times(1)
        .returning(|_, _| Ok(false));
    let admin = Ports {
        tenancy,
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .tenancy_service();

    assert_rejected(
        admin.revoke_api_key(&key_id()).await,
        DomainError::NotFound(Resource::ApiKey),
    );
}

// ---------------------------------------------------------------------------
// TenancyService::bootstrap_demo
// ---------------------------------------------------------------------------

#[tokio::test]
async fn bootstrap_demo_on_non_empty_database_is_none_and_creates_nothing() {
    let mut tenancy = MockTenancyRepository::new();
    tenancy.expect_is_empty().times(1).returning(|| Ok(false));
    tenancy.expect_insert_demo_tenant().never();
    tenancy.expect_insert_organization().never();
    tenancy.expect_insert_group().never();
    tenancy.expect_insert_api_key().never();
    let admin = Ports {
        tenancy,
        ..Ports::untouched()
    }
    .tenancy_service();

    assert!(admin.bootstrap_demo().await.unwrap().is_none());
}

#[tokio::test]
async fn bootstrap_demo_on_empty_database_stores_organization_group_123456_and_key_at_once() {
    let stored = Recorded::new();
    let mut tenancy = MockTenancyRepository::new();
    tenancy.expect_is_empty().times(1).returning(|| Ok(true));
    let recorder = stored.clone();
    tenancy
        .expect_insert_demo_tenant()
        .times(1)
        .returning(move |organization, group, key| {
            recorder.record(&(organization.clone(), group.clone(), key.clone()));
            Ok(true)
        });
    tenancy.expect_insert_organization().never();
    tenancy.expect_insert_group().never();
    tenancy.expect_insert_api_key().never();
    let admin = Ports {
        tenancy,
        clock: clock_at_now(),
        ids: ids_giving_ulid(),
        ..Ports::untouched()
    }
    .tenancy_service();

    let demo = admin.bootstrap_demo().await.unwrap().unwrap();

    let (organization, group, key) = stored.get();
    assert_eq!(demo.organization, organization);
    assert_eq!(demo.group, group);
    assert_eq!(demo.api_key.key, key);
    assert_eq!(demo.organization.name, "Demo organization");
    assert_eq!(demo.group.name, "Demo group");
    assert_eq!(demo.group.id.get(), DEMO_GROUP_ID);
    assert_eq!(DEMO_GROUP_ID, 123_456);
    assert_eq!(demo.group.organization_id, demo.organization.id);
    assert_eq!(demo.api_key.key.organization_id, demo.organization.id);
    assert_eq!(demo.api_key.key.hash, demo.api_key.secret.hash());
    assert_eq!(demo.api_key.key.revoked_at, None);
}

#[tokio::test]
async fn bootstrap_demo_that_another_process_beat_is_none() {
    let mut tenancy = MockTenancyRepository::new();
    tenancy.expect_is_empty().times(1).returning(|| Ok(true));
    tenancy
        .expect_insert_demo_tenant()
        .times(1)
        .returning(|_, _, _| Ok(false));
    let admin = Ports {
        tenancy,
        clock: clock_at_now(),
        ids: ids_giving_ulid(),
        ..Ports::untouched()
    }
    .tenancy_service();

    assert!(admin.bootstrap_demo().await.unwrap().is_none());
}
