//! [`PortalService`]: single-use links, sessions scoped to one group, their
//! ends (expiry, sign-out, a revoked key).

use mockall::predicate::eq;
use webhooks_domain::ports::{MockPortalStore, MockTenancyRepository, MockWebhookRepository};
use webhooks_domain::{
    DomainError, GroupId, PortalGrant, PortalPass, PortalToken, Principal, Resource, UnixMillis,
};

use crate::support::*;

fn grant() -> PortalGrant {
    PortalGrant {
        group_id: group_id(),
        organization_id: org_id(),
        api_key_id: key_id(),
    }
}

/// A stored link or session of [`grant`], for `token`, ending at `expires_at`.
fn pass(token: &PortalToken, expires_at: UnixMillis) -> PortalPass {
    PortalPass {
        hash: token.hash(),
        grant: grant(),
        created_at: CREATED,
        expires_at,
    }
}

/// A portal session's caller: [`principal`] limited to group [`GROUP`].
fn session_caller() -> Principal {
    Principal {
        group: Some(group_id()),
        ..principal()
    }
}

/// The key of [`grant`] is found by its id, revoked at `revoked_at`.
fn tenancy_with_key_by_id(revoked_at: Option<UnixMillis>) -> MockTenancyRepository {
    let mut tenancy = MockTenancyRepository::new();
    tenancy
        .expect_find_api_key()
        .with(eq(key_id()))
        .times(1)
        .returning(move |_| Ok(Some(stored_key(revoked_at))));
    tenancy
}

/// The store takes the link of `token` once, answering it ending at `expires_at`.
fn store_taking_link(token: &PortalToken, expires_at: UnixMillis) -> MockPortalStore {
    let link = pass(token, expires_at);
    let mut store = MockPortalStore::new();
    store
        .expect_take_link()
        .with(eq(token.hash()))
        .times(1)
        .returning(move |_| Ok(Some(link.clone())));
    store
}

/// The store finds the session of `token`, ending at `expires_at`.
fn store_finding_session(token: &PortalToken, expires_at: UnixMillis) -> MockPortalStore {
    let session = pass(token, expires_at);
    let mut store = MockPortalStore::new();
    store
        .expect_find_session()
        .with(eq(token.hash()))
        .times(1)
        .returning(move |_| Ok(Some(session.clone())));
    store
}

fn expect_session_deleted(store: &mut MockPortalStore, token: &PortalToken) {
    store
        .expect_delete_session()
        .with(eq(token.hash()))
        .times(1)
        .returning(|_| Ok(true));
}

/// The store records the session it is given.
fn expect_session_stored(store: &mut MockPortalStore) -> Recorded<PortalPass> {
    let stored = Recorded::new();
    let recorder = stored.clone();
    store
        .expect_insert_session()
        .times(1)
        .returning(move |session| {
            recorder.record(session);
            Ok(())
        });
    stored
}

// ---------------------------------------------------------------------------
// Links
// ---------------------------------------------------------------------------

#[tokio::test]
async fn create_link_stores_only_the_tokens_hash_scoped_to_the_group_until_the_link_ttl() {
    let stored = Recorded::new();
    let recorder = stored.clone();
    let mut portal = MockPortalStore::new();
    portal.expect_insert_link().times(1).returning(move |link| {
        recorder.record(link);
        Ok(())
    });
    let service = Ports {
        tenancy: tenancy_with_group_of(org_id()),
        clock: clock_at_now(),
        portal,
        ..Ports::untouched()
    }
    .portal_service();

    let link = service.create_link(&principal(), group_id()).await.unwrap();

    let expected = PortalPass {
        hash: link.token.hash(),
        grant: grant(),
        created_at: NOW,
        expires_at: now_plus(LINK_TTL),
    };
    assert_eq!(stored.get(), expected);
    assert_eq!(link.expires_at, now_plus(LINK_TTL));
    assert_ne!(stored.get().hash.as_str(), link.token.expose());
}

#[tokio::test]
async fn create_link_for_another_organizations_group_is_group_not_found() {
    let service = ports_of_other_organization().portal_service();

    assert_rejected(
        service.create_link(&principal(), group_id()).await,
        DomainError::NotFound(Resource::Group),
    );
}

#[tokio::test]
async fn create_link_from_a_portal_session_is_not_allowed() {
    let service = Ports::untouched().portal_service();

    assert_rejected(
        service.create_link(&session_caller(), group_id()).await,
        DomainError::NotAllowed,
    );
}

#[tokio::test]
async fn open_with_link_opens_a_session_on_the_links_group_until_the_session_ttl() {
    let link = PortalToken::generate();
    let mut portal = store_taking_link(&link, now_plus(LINK_TTL));
    let stored = expect_session_stored(&mut portal);
    let service = Ports {
        tenancy: tenancy_with_key_by_id(None),
        clock: clock_at_now(),
        portal,
        ..Ports::untouched()
    }
    .portal_service();

    let session = service.open_with_link(&link).await.unwrap();

    assert_eq!(session.grant, grant());
    assert_eq!(session.expires_at, now_plus(SESSION_TTL));
    assert_eq!(stored.get().hash, session.token.hash());
    assert_ne!(session.token.hash(), link.hash());
}

#[tokio::test]
async fn open_with_a_used_or_unknown_link_is_not_allowed() {
    let mut portal = MockPortalStore::new();
    portal.expect_take_link().times(1).returning(|_| Ok(None));
    let service = Ports {
        portal,
        ..Ports::untouched()
    }
    .portal_service();

    assert_rejected(
        service.open_with_link(&PortalToken::generate()).await,
        DomainError::NotAllowed,
    );
}

#[tokio::test]
async fn open_with_a_link_at_its_end_is_not_allowed() {
    let link = PortalToken::generate();
    let service = Ports {
        clock: clock_at_now(),
        portal: store_taking_link(&link, NOW),
        ..Ports::untouched()
    }
    .portal_service();

    assert_rejected(service.open_with_link(&link).await, DomainError::NotAllowed);
}

#[tokio::test]
async fn open_with_a_link_whose_key_was_revoked_is_not_allowed() {
    let link = PortalToken::generate();
    let service = Ports {
        tenancy: tenancy_with_key_by_id(Some(CREATED)),
        clock: clock_at_now(),
        portal: store_taking_link(&link, now_plus(LINK_TTL)),
        ..Ports::untouched()
    }
    .portal_service();

    assert_rejected(service.open_with_link(&link).await, DomainError::NotAllowed);
}

// ---------------------------------------------------------------------------
// Signing in with an API key
// ---------------------------------------------------------------------------

#[tokio::test]
async fn open_with_key_opens_a_session_on_the_asked_group() {
    let mut tenancy = tenancy_with_key(Some(stored_key(None)));
    tenancy
        .expect_find_group()
        .with(eq(group_id()))
        .times(1)
        .returning(|_| Ok(Some(group_of(org_id()))));
    let mut portal = MockPortalStore::new();
    let stored = expect_session_stored(&mut portal);
    let service = Ports {
        tenancy,
        clock: clock_at_now(),
        portal,
        ..Ports::untouched()
    }
    .portal_service();

    let session = service.open_with_key(&api_key(), group_id()).await.unwrap();

    assert_eq!(stored.get().grant, grant());
    assert_eq!(stored.get().expires_at, now_plus(SESSION_TTL));
    assert_eq!(session.token.hash(), stored.get().hash);
}

#[tokio::test]
async fn open_with_a_revoked_key_is_not_allowed() {
    let service = Ports {
        tenancy: tenancy_with_key(Some(stored_key(Some(CREATED)))),
        ..Ports::untouched()
    }
    .portal_service();

    assert_rejected(
        service.open_with_key(&api_key(), group_id()).await,
        DomainError::NotAllowed,
    );
}

#[tokio::test]
async fn open_with_key_on_another_organizations_group_is_group_not_found() {
    let mut tenancy = tenancy_with_key(Some(stored_key(None)));
    tenancy
        .expect_find_group()
        .returning(|_| Ok(Some(group_of(other_org_id()))));
    let service = Ports {
        tenancy,
        ..Ports::untouched()
    }
    .portal_service();

    assert_rejected(
        service.open_with_key(&api_key(), group_id()).await,
        DomainError::NotFound(Resource::Group),
    );
}

// ---------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_live_session_is_its_key_limited_to_its_group() {
    let secret = PortalToken::generate();
    let service = Ports {
        tenancy: tenancy_with_key_by_id(None),
        clock: clock_at_now(),
        portal: store_finding_session(&secret, now_plus(SESSION_TTL)),
        ..Ports::untouched()
    }
    .portal_service();

    assert_eq!(
        service.authenticate(&secret).await.unwrap(),
        session_caller()
    );
}

#[tokio::test]
async fn a_session_at_its_end_is_deleted_and_not_allowed() {
    let secret = PortalToken::generate();
    let mut portal = store_finding_session(&secret, NOW);
    expect_session_deleted(&mut portal, &secret);
    let service = Ports {
        clock: clock_at_now(),
        portal,
        ..Ports::untouched()
    }
    .portal_service();

    assert_rejected(service.authenticate(&secret).await, DomainError::NotAllowed);
}

#[tokio::test]
async fn a_session_whose_key_was_revoked_is_deleted_and_not_allowed() {
    let secret = PortalToken::generate();
    let mut portal = store_finding_session(&secret, now_plus(SESSION_TTL));
    expect_session_deleted(&mut portal, &secret);
    let service = Ports {
        tenancy: tenancy_with_key_by_id(Some(NOW)),
        clock: clock_at_now(),
        portal,
        ..Ports::untouched()
    }
    .portal_service();

    assert_rejected(service.authenticate(&secret).await, DomainError::NotAllowed);
}

#[tokio::test]
async fn an_unknown_session_is_not_allowed() {
    let mut portal = MockPortalStore::new();
    portal
        .expect_find_session()
        .times(1)
        .returning(|_| Ok(None));
    let service = Ports {
        portal,
        ..Ports::untouched()
    }
    .portal_service();

    assert_rejected(
        service.authenticate(&PortalToken::generate()).await,
        DomainError::NotAllowed,
    );
}

#[tokio::test]
async fn an_empty_cookie_is_not_allowed_before_any_lookup() {
    let service = Ports::untouched().portal_service();

    assert_rejected(
        service.authenticate(&PortalToken::from_presented("")).await,
        DomainError::NotAllowed,
    );
}

#[tokio::test]
async fn close_deletes_the_session() {
    let secret = PortalToken::generate();
    let mut portal = MockPortalStore::new();
    expect_session_deleted(&mut portal, &secret);
    let service = Ports {
        portal,
        ..Ports::untouched()
    }
    .portal_service();

    service.close(&secret).await.unwrap();
}

#[tokio::test]
async fn a_session_reaches_no_other_group_not_even_of_its_organization() {
    let service = Ports {
        webhooks: MockWebhookRepository::new(),
        ..Ports::untouched()
    }
    .webhook_service();
    let other = GroupId::new(GROUP + 1).unwrap();

    assert_rejected(
        service.list(&session_caller(), other).await,
        DomainError::NotFound(Resource::Group),
    );
}

#[tokio::test]
async fn a_session_reaches_its_own_group() {
    let mut webhooks = MockWebhookRepository::new();
    webhooks
        .expect_list_by_group()
        .with(eq(group_id()))
        .times(1)
        .returning(|_| Ok(vec![webhook()]));
    let service = Ports {
        tenancy: tenancy_with_group_of(org_id()),
        webhooks,
        ..Ports::untouched()
    }
    .webhook_service();

    assert_eq!(
        service.list(&session_caller(), group_id()).await.unwrap(),
        vec![webhook()]
    );
}
