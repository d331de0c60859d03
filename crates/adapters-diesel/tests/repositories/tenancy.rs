//! The tenancy repository: organizations, groups, API keys.

use std::sync::Arc;

use webhooks_adapters_diesel::{Database, DieselTenancyRepository, TestDatabase};
use webhooks_domain::{
    ApiKey, ApiKeyId, ApiKeySecret, Group, GroupId, Organization, OrganizationId, RandomIds,
    RepositoryError, SystemClock, TenancyRepository, TenancyService, UnixMillis,
};

use crate::support::{group, organization, tenancy, ulid_id};

on_both_backends!(
    inserted_organization_is_found,
    is_empty_until_an_organization_exists,
    inserted_group_is_found_and_unknown_group_is_none,
    taking_a_group_id_twice_is_conflict,
    api_key_is_found_by_its_hash_only,
    api_key_is_found_by_its_id_revoked_or_not,
    duplicate_api_key_hash_is_conflict,
    revoking_twice_keeps_the_first_time,
    revoking_an_unknown_key_is_false,
);

on_both_backends!(test_database:
    processes_bootstrapping_at_once_make_one_demo_tenant,
);

async fn inserted_organization_is_found(db: &Database) {
    let repository = tenancy(db);
    let stored = organization(db).await;
    assert_eq!(
        repository.find_organization(&stored.id).await,
        Ok(Some(stored))
    );
    assert_eq!(
        repository
            .find_organization(&ulid_id(OrganizationId::from_ulid))
            .await,
        Ok(None)
    );
}

async fn is_empty_until_an_organization_exists(db: &Database) {
    let repository = tenancy(db);
    assert_eq!(repository.is_empty().await, Ok(true));
    organization(db).await;
    assert_eq!(repository.is_empty().await, Ok(false));
}

async fn inserted_group_is_found_and_unknown_group_is_none(db: &Database) {
    let repository = tenancy(db);
    // An operator may choose any positive i64, up to the largest.
    let stored = group(db, i64::MAX).await;
    assert_eq!(repository.find_group(stored.id).await, Ok(Some(stored)));
    assert_eq!(
        repository.find_group(GroupId::new(404).unwrap()).await,
        Ok(None)
    );
}

async fn taking_a_group_id_twice_is_conflict(db: &Database) {
    let repository = tenancy(db);
    let first = group(db, 123_456).await;
    let other_organization = organization(db).await;
    let second = Group {
        id: first.id,
        organization_id: other_organization.id,
        name: "Staging".to_owned(),
        operations: false,
        created_at: UnixMillis(1),
    };
    assert!(matches!(
        repository.insert_group(&second).await,
        Err(RepositoryError::Conflict(_))
    ));
    assert_eq!(repository.find_group(first.id).await, Ok(Some(first)));
}

async fn api_key_is_found_by_its_hash_only(db: &Database) {
    let repository = tenancy(db);
    let organization = organization(db).await;
    let secret = ApiKeySecret::generate();
    let stored = api_key(&organization, &secret);
    repository.insert_api_key(&stored).await.unwrap();

    let presented = ApiKeySecret::from_header(secret.expose()).hash();
    assert_eq!(
        repository.find_api_key_by_hash(&presented).await,
        Ok(Some(stored))
    );
    assert_eq!(
        repository
            .find_api_key_by_hash(&ApiKeySecret::generate().hash())
            .await,
        Ok(None)
    );
}

async fn api_key_is_found_by_its_id_revoked_or_not(db: &Database) {
    let repository = tenancy(db);
    let organization = organization(db).await;
    let stored = api_key(&organization, &ApiKeySecret::generate());
    repository.insert_api_key(&stored).await.unwrap();
    assert_eq!(
        repository.find_api_key(&stored.id).await,
        Ok(Some(stored.clone()))
    );

    repository
        .revoke_api_key(&stored.id, UnixMillis(5_000))
        .await
        .unwrap();
    let revoked = repository.find_api_key(&stored.id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(UnixMillis(5_000)));
    assert_eq!(
        repository.find_api_key(&ulid_id(ApiKeyId::from_ulid)).await,
        Ok(None)
    );
}

async fn duplicate_api_key_hash_is_conflict(db: &Database) {
    let repository = tenancy(db);
    let organization = organization(db).await;
    let secret = ApiKeySecret::generate();
    let first = api_key(&organization, &secret);
    repository.insert_api_key(&first).await.unwrap();

    // A different key id with the same hash.
    let second = api_key(&organization, &secret);
    assert_ne!(first.id, second.id);
    assert!(matches!(
        repository.insert_api_key(&second).await,
        Err(RepositoryError::Conflict(_))
    ));
    assert_eq!(
        repository.find_api_key_by_hash(&secret.hash()).await,
        Ok(Some(first))
    );
}

async fn revoking_twice_keeps_the_first_time(db: &Database) {
    let repository = tenancy(db);
    let organization = organization(db).await;
    let secret = ApiKeySecret::generate();
    let stored = api_key(&organization, &secret);
    repository.insert_api_key(&stored).await.unwrap();

    assert_eq!(
        repository
            .revoke_api_key(&stored.id, UnixMillis(5_000))
            .await,
        Ok(true)
    );
    assert_eq!(
        repository
            .revoke_api_key(&stored.id, UnixMillis(9_000))
            .await,
        Ok(true)
    );

    let found = repository
        .find_api_key_by_hash(&secret.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.revoked_at, Some(UnixMillis(5_000)));
}

async fn revoking_an_unknown_key_is_false(db: &Database) {
    let repository = tenancy(db);
    assert_eq!(
        repository
            .revoke_api_key(&ulid_id(ApiKeyId::from_ulid), UnixMillis(5_000))
            .await,
        Ok(false)
    );
}

/// Several processes start at once on one empty database: each has its own
/// pool, all bootstrap together, and one demo tenant results.
async fn processes_bootstrapping_at_once_make_one_demo_tenant(test_database: &TestDatabase) {
    const PROCESSES: usize = 6;
    let start = Arc::new(tokio::sync::Barrier::new(PROCESSES));
    let mut processes = tokio::task::JoinSet::new();
    for _ in 0..PROCESSES {
        let url = test_database.url().to_owned();
        let start = start.clone();
        processes.spawn(async move {
            let database = tokio::task::spawn_blocking(move || Database::connect(&url, 2))
                .await
                .unwrap()
                .unwrap();
            let admin = TenancyService::new(
                Arc::new(DieselTenancyRepository::new(database)),
                Arc::new(SystemClock),
                Arc::new(RandomIds::default()),
            );
            start.wait().await;
            admin.bootstrap_demo().await
        });
    }
    let mut answers = Vec::new();
    while let Some(started) = processes.join_next().await {
        answers.push(started.unwrap().map(|demo| demo.is_some()));
    }
    let counts = test_database.row_counts().await;
    assert_eq!(
        (counts.organizations, counts.groups, counts.api_keys),
        (1, 1, 1)
    );
    // One made it; the others found it made, and none failed.
    let made = answers.iter().filter(|made| **made == Ok(true)).count();
    let found = answers.iter().filter(|made| **made == Ok(false)).count();
    assert_eq!((made, found), (1, PROCESSES - 1), "{answers:?}");
}

/// A key of the organization whose secret is `secret`; not stored.
pub(crate) fn api_key(organization: &Organization, secret: &ApiKeySecret) -> ApiKey {
    ApiKey {
        id: ulid_id(ApiKeyId::from_ulid),
        organization_id: organization.id.clone(),
        hash: secret.hash(),
        created_at: UnixMillis(1_700_000_000_002),
        revoked_at: None,
    }
}
