//! The portal's links and sessions: kept by hash, a link taken once.

use std::sync::Arc;

use webhooks_adapters_diesel::Database;
use webhooks_domain::{
    ApiKeySecret, PortalGrant, PortalPass, PortalStore, PortalToken, TenancyRepository, UnixMillis,
};

use crate::support::{group, portal, tenancy};
use crate::tenancy::api_key;

on_both_backends!(
    a_link_is_taken_once_then_gone,
    a_link_is_not_a_session_nor_a_session_a_link,
    concurrent_takes_of_one_link_give_it_once,
    a_session_is_found_until_deleted,
    new_rows_delete_those_that_ended,
);

/// A grant on a stored group, made with a stored key.
async fn grant(db: &Database) -> PortalGrant {
    let group = group(db, 123_456).await;
    let organization = tenancy(db)
        .find_organization(&group.organization_id)
        .await
        .unwrap()
        .unwrap();
    let key = api_key(&organization, &ApiKeySecret::generate());
    tenancy(db).insert_api_key(&key).await.unwrap();
    PortalGrant {
        group_id: group.id,
        organization_id: group.organization_id,
        api_key_id: key.id,
    }
}

fn pass(token: &PortalToken, grant: &PortalGrant, created_at: i64, expires_at: i64) -> PortalPass {
    PortalPass {
        hash: token.hash(),
        grant: grant.clone(),
        created_at: UnixMillis(created_at),
        expires_at: UnixMillis(expires_at),
    }
}

async fn a_link_is_taken_once_then_gone(db: &Database) {
    let store = portal(db);
    let token = PortalToken::generate();
    let link = pass(&token, &grant(db).await, 1_000, 2_000);
    store.insert_link(&link).await.unwrap();

    assert_eq!(store.take_link(&token.hash()).await, Ok(Some(link)));
    assert_eq!(store.take_link(&token.hash()).await, Ok(None));
}

async fn a_link_is_not_a_session_nor_a_session_a_link(db: &Database) {
    let store = portal(db);
    let grant = grant(db).await;
    let link = PortalToken::generate();
    let session = PortalToken::generate();
    store
        .insert_link(&pass(&link, &grant, 1_000, 2_000))
        .await
        .unwrap();
    store
        .insert_session(&pass(&session, &grant, 1_000, 2_000))
        .await
        .unwrap();

    assert_eq!(store.find_session(&link.hash()).await, Ok(None));
    assert_eq!(store.delete_session(&link.hash()).await, Ok(false));
    assert_eq!(store.take_link(&session.hash()).await, Ok(None));
    assert!(store.take_link(&link.hash()).await.unwrap().is_some());
}

async fn concurrent_takes_of_one_link_give_it_once(db: &Database) {
    let store = Arc::new(portal(db));
    let token = PortalToken::generate();
    store
        .insert_link(&pass(&token, &grant(db).await, 1_000, 2_000))
        .await
        .unwrap();

    let takes: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            let hash = token.hash();
            tokio::spawn(async move { store.take_link(&hash).await.unwrap() })
        })
        .collect();
    let mut taken = 0;
    for take in takes {
        taken += usize::from(take.await.unwrap().is_some());
    }
    assert_eq!(taken, 1);
}

async fn a_session_is_found_until_deleted(db: &Database) {
    let store = portal(db);
    let token = PortalToken::generate();
    let session = pass(&token, &grant(db).await, 1_000, 2_000);
    store.insert_session(&session).await.unwrap();

    assert_eq!(store.find_session(&token.hash()).await, Ok(Some(session)));
    assert_eq!(store.delete_session(&token.hash()).await, Ok(true));
    assert_eq!(store.find_session(&token.hash()).await, Ok(None));
    assert_eq!(store.delete_session(&token.hash()).await, Ok(false));
}

async fn new_rows_delete_those_that_ended(db: &Database) {
    let store = portal(db);
    let grant = grant(db).await;
    let (ended, live) = (PortalToken::generate(), PortalToken::generate());
    store
        .insert_session(&pass(&ended, &grant, 1_000, 2_000))
        .await
        .unwrap();
    store
        .insert_link(&pass(&live, &grant, 1_000, 9_000))
        .await
        .unwrap();

    store
        .insert_session(&pass(&PortalToken::generate(), &grant, 2_000, 9_000))
        .await
        .unwrap();

    assert_eq!(store.find_session(&ended.hash()).await, Ok(None));
    assert!(store.take_link(&live.hash()).await.unwrap().is_some());
}
