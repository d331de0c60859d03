//! The use cases of the domain crate against `mockall` mocks of every port:
//! [`WebhookService`] (the public webhook API, with the seed's check order) and
//! [`TenancyService`] (organizations, groups, API keys).
//!
//! A port a test does not expect to be used is a mock whose methods are all
//! `.never()`: reaching it fails the test, which is how the check order is proved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::{Debug, Display};
use std::sync::{Arc, Mutex};

use mockall::predicate::eq;
use webhooks_domain::ports::{
    MockClock, MockIdSource, MockTenancyRepository, MockWebhookRepository,
};
use webhooks_domain::{
    AdminError, ApiKey, ApiKeyId, ApiKeySecret, CreatedWebhook, Description, EnabledEvents,
    EventType, Group, GroupId, Organization, OrganizationId, Principal, RateLimit, RepositoryError,
    SealedSecret, SecretCipher, TenancyService, UnixMillis, Webhook, WebhookError, WebhookId,
    WebhookService, WebhookStatus, WebhookUrl, DEMO_GROUP_ID,
};

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const GROUP: i64 = 123_456;
const GROUP_PARAM: &str = "123456";
const WEBHOOK_ID: &str = "we_01hzy3k4m5n6p7q8r9s0t1v2w3";
/// The ULID the mocked id source hands out, and the ids built from it.
const ULID: &str = "01J9ZQ4X2K7M3N8P5R6S0T1V2W";
const ULID_LOWER: &str = "01j9zq4x2k7m3n8p5r6s0t1v2w";
const API_KEY: &str = "okw_the-key-the-client-sends";
/// When the fixtures were made, and what the mocked clock says now.
const CREATED: UnixMillis = UnixMillis(1_700_000_000_000);
const NOW: UnixMillis = UnixMillis(1_750_000_000_000);
const VALID_BODY: &[u8] =
    br#"{"url":"https://integration.example/webhook","description":"Webhook Description"}"#;

fn group_id() -> GroupId {
    GroupId::new(GROUP).unwrap()
}

fn org_id() -> OrganizationId {
    OrganizationId::parse("org_01hzy3k4m5n6p7q8r9s0t1v2w3").unwrap()
}

fn other_org_id() -> OrganizationId {
    OrganizationId::parse("org_01j9zq4x2k7m3n8p5r6s0t1v2w").unwrap()
}

fn key_id() -> ApiKeyId {
    ApiKeyId::parse("key_01hzy3k4m5n6p7q8r9s0t1v2w3").unwrap()
}

fn webhook_id() -> WebhookId {
    WebhookId::parse(WEBHOOK_ID).unwrap()
}

fn ulid() -> ulid::Ulid {
    ulid::Ulid::from_string(ULID).unwrap()
}

/// The service's encryption key for signing secrets.
fn cipher() -> SecretCipher {
    SecretCipher::new(&[7u8; 32]).unwrap()
}

/// The caller: an API key of [`org_id`].
fn principal() -> Principal {
    Principal {
        organization_id: org_id(),
        api_key_id: key_id(),
    }
}

fn organization(id: OrganizationId) -> Organization {
    Organization {
        id,
        name: "Acme".to_owned(),
        created_at: CREATED,
    }
}

/// Group [`GROUP`], owned by `owner`.
fn group_of(owner: OrganizationId) -> Group {
    Group {
        id: group_id(),
        organization_id: owner,
        name: "Production".to_owned(),
        created_at: CREATED,
    }
}

/// An existing webhook [`WEBHOOK_ID`] of group [`GROUP`], created at [`CREATED`],
/// with a rate limit so that updates can be seen to keep or clear it. Its
/// sealed secret is a fixed stand-in: these tests never open it.
fn webhook() -> Webhook {
    Webhook {
        id: webhook_id(),
        group_id: group_id(),
        url: WebhookUrl::new("https://old.example/hook").unwrap(),
        description: Description::new("old description").unwrap(),
        status: WebhookStatus::Enabled,
        enabled_events: EnabledEvents::all(),
        rate_limit: Some(RateLimit::new(5).unwrap()),
        secret: SealedSecret::from_stored("x1:sealed-secret-of-the-fixture".to_owned()),
        created_at: CREATED,
        updated_at: CREATED,
    }
}

/// The API key [`API_KEY`] as stored: its hash, owned by [`org_id`].
fn stored_key(revoked_at: Option<UnixMillis>) -> ApiKey {
    ApiKey {
        id: key_id(),
        organization_id: org_id(),
        hash: ApiKeySecret::from_header(API_KEY).hash(),
        created_at: CREATED,
        revoked_at,
    }
}

fn unavailable() -> RepositoryError {
    RepositoryError::Unavailable("connection refused".to_owned())
}

fn conflict() -> RepositoryError {
    RepositoryError::Conflict("duplicate key".to_owned())
}

// ---------------------------------------------------------------------------
// Ports and services
// ---------------------------------------------------------------------------

/// The ports a service is built from. Start from [`Ports::untouched`] and
/// replace the ports the test expects to be used:
/// `Ports { tenancy: tenancy_with_group_of(org_id()), ..Ports::untouched() }`.
struct Ports {
    webhooks: MockWebhookRepository,
    tenancy: MockTenancyRepository,
    clock: MockClock,
    ids: MockIdSource,
}

impl Ports {
    /// Ports that fail the test when any of their methods is called.
    fn untouched() -> Self {
        Self {
            webhooks: webhooks_untouched(),
            tenancy: tenancy_untouched(),
            clock: clock_untouched(),
            ids: ids_untouched(),
        }
    }

    fn webhook_service(self) -> WebhookService {
        WebhookService::new(
            Arc::new(self.webhooks),
            Arc::new(self.tenancy),
            Arc::new(self.clock),
            Arc::new(self.ids),
            cipher(),
        )
    }

    fn tenancy_service(self) -> TenancyService {
        TenancyService::new(
            Arc::new(self.tenancy),
            Arc::new(self.clock),
            Arc::new(self.ids),
        )
    }
}

fn webhooks_untouched() -> MockWebhookRepository {
    let mut webhooks = MockWebhookRepository::new();
    webhooks.expect_list_by_group().never();
    webhooks.expect_find().never();
    webhooks.expect_insert().never();
    webhooks.expect_update().never();
    webhooks.expect_delete().never();
    webhooks
}

fn tenancy_untouched() -> MockTenancyRepository {
    let mut tenancy = MockTenancyRepository::new();
    tenancy.expect_insert_organization().never();
    tenancy.expect_find_organization().never();
    tenancy.expect_is_empty().never();
    tenancy.expect_insert_group().never();
    tenancy.expect_find_group().never();
    tenancy.expect_insert_api_key().never();
    tenancy.expect_find_api_key_by_hash().never();
    tenancy.expect_revoke_api_key().never();
    tenancy
}

fn clock_untouched() -> MockClock {
    let mut clock = MockClock::new();
    clock.expect_now().never();
    clock
}

fn ids_untouched() -> MockIdSource {
    let mut ids = MockIdSource::new();
    ids.expect_ulid().never();
    ids.expect_group_id().never();
    ids
}

/// A clock that always says [`NOW`].
fn clock_at_now() -> MockClock {
    let mut clock = MockClock::new();
    clock.expect_now().return_const(NOW);
    clock
}

/// An id source whose ULIDs are all [`ULID`] and that never draws a group id.
fn ids_giving_ulid() -> MockIdSource {
    let mut ids = MockIdSource::new();
    ids.expect_ulid().return_const(ulid());
    ids.expect_group_id().never();
    ids
}

/// Group [`GROUP`] exists, owned by `owner`, and is looked up exactly once.
fn tenancy_with_group_of(owner: OrganizationId) -> MockTenancyRepository {
    let mut tenancy = MockTenancyRepository::new();
    tenancy
        .expect_find_group()
        .with(eq(group_id()))
        .times(1)
        .returning(move |_| Ok(Some(group_of(owner.clone()))));
    tenancy
}

/// Group [`GROUP`] does not exist.
fn tenancy_without_group() -> MockTenancyRepository {
    let mut tenancy = MockTenancyRepository::new();
    tenancy
        .expect_find_group()
        .with(eq(group_id()))
        .times(1)
        .returning(|_| Ok(None));
    tenancy
}

/// The lookup of the key [`API_KEY`] (by its hash) answers `found`.
fn tenancy_with_key(found: Option<ApiKey>) -> MockTenancyRepository {
    let mut tenancy = MockTenancyRepository::new();
    tenancy
        .expect_find_api_key_by_hash()
        .with(eq(ApiKeySecret::from_header(API_KEY).hash()))
        .times(1)
        .returning(move |_| Ok(found.clone()));
    tenancy
}

/// Organization [`org_id`] exists and is looked up exactly once.
fn tenancy_with_organization() -> MockTenancyRepository {
    let mut tenancy = MockTenancyRepository::new();
    tenancy
        .expect_find_organization()
        .with(eq(org_id()))
        .times(1)
        .returning(|id| Ok(Some(organization(id.clone()))));
    tenancy
}

/// The lookup of webhook [`WEBHOOK_ID`] in group [`GROUP`] answers `found`;
/// nothing else may be called.
fn webhooks_finding(found: Option<Webhook>) -> MockWebhookRepository {
    let mut webhooks = MockWebhookRepository::new();
    webhooks
        .expect_find()
        .with(eq(group_id()), eq(webhook_id()))
        .times(1)
        .returning(move |_, _| Ok(found.clone()));
    webhooks.expect_update().never();
    webhooks
}

/// The last value a mock was given, for the test to inspect afterwards.
#[derive(Clone)]
struct Recorded<T>(Arc<Mutex<Option<T>>>);

impl<T: Clone> Recorded<T> {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(None)))
    }

    fn record(&self, value: &T) {
        *self.0.lock().unwrap() = Some(value.clone());
    }

    fn get(&self) -> T {
        self.0
            .lock()
            .unwrap()
            .clone()
            .expect("the mock was never called")
    }
}

/// Asserts the exact error variant and its client-facing text.
#[track_caller]
fn assert_rejected<T: Debug, E: Debug + Display + PartialEq>(
    result: Result<T, E>,
    expected: E,
    message: &str,
) {
    let error = result.expect_err("expected an error");
    assert_eq!(error, expected);
    assert_eq!(error.to_string(), message);
}

/// Creates a webhook in group [`GROUP`] of the caller with `body`; answers the
/// result and the webhook handed to the repository.
async fn create_with(body: &[u8]) -> (CreatedWebhook, Webhook) {
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
    }
    .webhook_service();

    let created = service
        .create(&principal(), Some(GROUP_PARAM), body)
        .await
        .unwrap();
    (created, stored.get())
}

/// Updates `current` (webhook [`WEBHOOK_ID`] of group [`GROUP`]) with `body`;
/// checks the answer is what was stored and returns it.
async fn update_with(current: Webhook, body: &str) -> Webhook {
    let stored = Recorded::new();
    let mut webhooks = MockWebhookRepository::new();
    webhooks
        .expect_find()
        .with(eq(group_id()), eq(webhook_id()))
        .times(1)
        .returning(move |_, _| Ok(Some(current.clone())));
    let recorder = stored.clone();
    webhooks.expect_update().times(1).returning(move |webhook| {
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
        .update(
            &principal(),
            Some(GROUP_PARAM),
            Some(WEBHOOK_ID),
            body.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(updated, stored.get());
    updated
}

// ---------------------------------------------------------------------------
// WebhookService::authenticate
// ---------------------------------------------------------------------------

#[tokio::test]
async fn authenticate_without_api_key_is_unauthorized() {
    let service = Ports::untouched().webhook_service();

    assert_rejected(
        service.authenticate(None).await,
        WebhookError::Unauthorized,
        "Unauthorized",
    );
}

#[tokio::test]
async fn authenticate_with_empty_api_key_is_unauthorized() {
    let service = Ports::untouched().webhook_service();

    assert_rejected(
        service.authenticate(Some("")).await,
        WebhookError::Unauthorized,
        "Unauthorized",
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
        service.authenticate(Some(API_KEY)).await,
        WebhookError::Unauthorized,
        "Unauthorized",
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
        service.authenticate(Some(API_KEY)).await,
        WebhookError::Unauthorized,
        "Unauthorized",
    );
}

#[tokio::test]
async fn authenticate_with_valid_api_key_is_its_organization() {
    let service = Ports {
        tenancy: tenancy_with_key(Some(stored_key(None))),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_eq!(service.authenticate(Some(API_KEY)).await, Ok(principal()));
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

    let error = service.authenticate(Some(API_KEY)).await.unwrap_err();
    assert!(matches!(error, WebhookError::Unexpected(_)), "{error:?}");
}

// ---------------------------------------------------------------------------
// WebhookService: check order (groupID, webhookID, body, group, webhook)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn list_without_group_id_is_missing_group_id() {
    let service = Ports::untouched().webhook_service();

    for missing in [None, Some("")] {
        assert_rejected(
            service.list(&principal(), missing).await,
            WebhookError::MissingGroupId,
            "You are missing the path parameter groupID",
        );
    }
}

#[tokio::test]
async fn list_with_group_id_not_a_positive_i64_is_group_id_must_be_a_number() {
    let service = Ports::untouched().webhook_service();

    for raw in [
        "abc",
        "12a",
        "0",
        "-1",
        "+1",
        "1.5",
        " 1",
        "9223372036854775808",
    ] {
        assert_rejected(
            service.list(&principal(), Some(raw)).await,
            WebhookError::GroupIdNotANumber,
            "groupID must be a number",
        );
    }
}

#[tokio::test]
async fn update_without_group_id_is_missing_group_id_before_webhook_id_and_body() {
    let service = Ports::untouched().webhook_service();

    assert_rejected(
        service.update(&principal(), None, None, b"not json").await,
        WebhookError::MissingGroupId,
        "You are missing the path parameter groupID",
    );
}

#[tokio::test]
async fn delete_with_non_numeric_group_id_is_group_id_must_be_a_number_before_webhook_id() {
    let service = Ports::untouched().webhook_service();

    assert_rejected(
        service.delete(&principal(), Some("nope"), None).await,
        WebhookError::GroupIdNotANumber,
        "groupID must be a number",
    );
}

#[tokio::test]
async fn create_with_non_numeric_group_id_is_group_id_must_be_a_number_before_body() {
    let service = Ports::untouched().webhook_service();

    assert_rejected(
        service.create(&principal(), Some("12a"), b"{}").await,
        WebhookError::GroupIdNotANumber,
        "groupID must be a number",
    );
}

#[tokio::test]
async fn update_without_webhook_id_is_missing_webhook_id_before_body() {
    let service = Ports::untouched().webhook_service();

    for missing in [None, Some("")] {
        assert_rejected(
            service
                .update(&principal(), Some(GROUP_PARAM), missing, b"not json")
                .await,
            WebhookError::MissingWebhookId,
            "You are missing the path parameter webhookID",
        );
    }
}

#[tokio::test]
async fn delete_without_webhook_id_is_missing_webhook_id() {
    let service = Ports::untouched().webhook_service();

    for missing in [None, Some("")] {
        assert_rejected(
            service
                .delete(&principal(), Some(GROUP_PARAM), missing)
                .await,
            WebhookError::MissingWebhookId,
            "You are missing the path parameter webhookID",
        );
    }
}

#[tokio::test]
async fn get_without_webhook_id_is_missing_webhook_id() {
    let service = Ports::untouched().webhook_service();

    assert_rejected(
        service.get(&principal(), Some(GROUP_PARAM), Some("")).await,
        WebhookError::MissingWebhookId,
        "You are missing the path parameter webhookID",
    );
}

#[tokio::test]
async fn create_with_bad_body_answers_the_body_error_before_group_lookup() {
    let service = Ports::untouched().webhook_service();
    let cases: [(&str, WebhookError, &str); 9] = [
        (
            "not json",
            WebhookError::InvalidJsonBody,
            "Invalid JSON body",
        ),
        ("[]", WebhookError::InvalidJsonBody, "Invalid JSON body"),
        (
            r#"{"description":"d"}"#,
            WebhookError::MissingUrl,
            "You are missing the body parameter url",
        ),
        (
            r#"{"url":null,"description":"d"}"#,
            WebhookError::UrlNotAString,
            "url must be a string",
        ),
        (
            r#"{"url":"integration.example/webhook","description":"d"}"#,
            WebhookError::InvalidUrl,
            "Invalid URL",
        ),
        (
            r#"{"url":"https://integration.example/webhook"}"#,
            WebhookError::MissingDescription,
            "You are missing the body parameter description",
        ),
        (
            r#"{"url":"https://integration.example/webhook","description":null}"#,
            WebhookError::DescriptionNotAString,
            "description must be a string",
        ),
        (
            &format!(
                r#"{{"url":"https://integration.example/webhook","description":"{}"}}"#,
                "x".repeat(1025)
            ),
            WebhookError::InvalidDescription,
            "Invalid description",
        ),
        (
            r#"{"url":"https://integration.example/webhook","description":"d","enabledEvents":[]}"#,
            WebhookError::InvalidEnabledEvents,
            "Invalid enabledEvents",
        ),
    ];

    for (body, expected, message) in cases {
        assert_rejected(
            service
                .create(&principal(), Some(GROUP_PARAM), body.as_bytes())
                .await,
            expected,
            message,
        );
    }
}

#[tokio::test]
async fn create_with_url_without_authority_is_invalid_url() {
    let service = Ports::untouched().webhook_service();

    for url in ["http:///path", "http:/path", "http:path"] {
        let body = format!(r#"{{"url":"{url}","description":"d"}}"#);
        assert_rejected(
            service
                .create(&principal(), Some(GROUP_PARAM), body.as_bytes())
                .await,
            WebhookError::InvalidUrl,
            "Invalid URL",
        );
    }
}

#[tokio::test]
async fn update_with_bad_body_answers_the_body_error_before_group_lookup() {
    let service = Ports::untouched().webhook_service();
    let base = r#""url":"https://integration.example/webhook","description":"d""#;
    let cases = [
        (
            r#"{"url":"https://integration.example/webhook","description":5}"#.to_owned(),
            WebhookError::DescriptionNotAString,
            "description must be a string",
        ),
        (
            format!(r#"{{{base},"status":"paused"}}"#),
            WebhookError::InvalidStatus,
            "Invalid status",
        ),
        (
            format!(r#"{{{base},"rateLimit":0}}"#),
            WebhookError::InvalidRateLimit,
            "Invalid rateLimit",
        ),
    ];

    for (body, expected, message) in cases {
        assert_rejected(
            service
                .update(
                    &principal(),
                    Some(GROUP_PARAM),
                    Some(WEBHOOK_ID),
                    body.as_bytes(),
                )
                .await,
            expected,
            message,
        );
    }
}

#[tokio::test]
async fn create_and_update_with_control_characters_touch_no_port() {
    let service = Ports::untouched().webhook_service();
    let cases = [
        (
            "https://integration.example/\0",
            "d",
            WebhookError::InvalidUrl,
            "Invalid URL",
        ),
        (
            "http://127.0.0.1:19003/x\r\nX-Injected: 1",
            "d",
            WebhookError::InvalidUrl,
            "Invalid URL",
        ),
        (
            "https://u:p@integration.example/",
            "d",
            WebhookError::InvalidUrl,
            "Invalid URL",
        ),
        (
            "https://integration.example:0/",
            "d",
            WebhookError::InvalidUrl,
            "Invalid URL",
        ),
        (
            "https://integration.example/",
            "d\0",
            WebhookError::InvalidDescription,
            "Invalid description",
        ),
        (
            "https://integration.example/",
            "\u{1b}[2J",
            WebhookError::InvalidDescription,
            "Invalid description",
        ),
    ];

    for (url, description, expected, message) in cases {
        let body = serde_json::json!({"url": url, "description": description}).to_string();
        assert_rejected(
            service
                .create(&principal(), Some(GROUP_PARAM), body.as_bytes())
                .await,
            expected.clone(),
            message,
        );
        assert_rejected(
            service
                .update(
                    &principal(),
                    Some(GROUP_PARAM),
                    Some(WEBHOOK_ID),
                    body.as_bytes(),
                )
                .await,
            expected,
            message,
        );
    }
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
            .create(&principal(), Some(GROUP_PARAM), VALID_BODY)
            .await,
        WebhookError::GroupNotFound,
        "Group not found",
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
            .create(&principal(), Some(GROUP_PARAM), VALID_BODY)
            .await,
        WebhookError::GroupNotFound,
        "Group not found",
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
        service.list(&principal(), Some(GROUP_PARAM)).await,
        WebhookError::GroupNotFound,
        "Group not found",
    );
}

#[tokio::test]
async fn get_with_malformed_webhook_id_in_unknown_group_is_group_not_found() {
    let service = Ports {
        tenancy: tenancy_without_group(),
        ..Ports::untouched()
    }
    .webhook_service();

    // The webhookID's shape is judged only after the group.
    assert_rejected(
        service
            .get(&principal(), Some(GROUP_PARAM), Some("nope"))
            .await,
        WebhookError::GroupNotFound,
        "Group not found",
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
            .update(
                &principal(),
                Some(GROUP_PARAM),
                Some(WEBHOOK_ID),
                VALID_BODY,
            )
            .await,
        WebhookError::GroupNotFound,
        "Group not found",
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
            .delete(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
            .await,
        WebhookError::GroupNotFound,
        "Group not found",
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

    let error = service
        .list(&principal(), Some(GROUP_PARAM))
        .await
        .unwrap_err();
    assert!(matches!(error, WebhookError::Unexpected(_)), "{error:?}");
}

#[tokio::test]
async fn get_with_malformed_webhook_id_is_webhook_not_found_after_group_check() {
    let service = Ports {
        tenancy: tenancy_with_group_of(org_id()),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_rejected(
        service
            .get(&principal(), Some(GROUP_PARAM), Some("nope"))
            .await,
        WebhookError::WebhookNotFound,
        "Webhook not found",
    );
}

#[tokio::test]
async fn update_with_malformed_webhook_id_is_webhook_not_found_after_group_check() {
    let service = Ports {
        tenancy: tenancy_with_group_of(org_id()),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_rejected(
        service
            .update(&principal(), Some(GROUP_PARAM), Some("nope"), VALID_BODY)
            .await,
        WebhookError::WebhookNotFound,
        "Webhook not found",
    );
}

#[tokio::test]
async fn delete_with_malformed_webhook_id_is_webhook_not_found_after_group_check() {
    // Uppercase and other prefixes are not ids this service hands out.
    for malformed in [
        "nope",
        &WEBHOOK_ID.to_uppercase(),
        "evt_01hzy3k4m5n6p7q8r9s0t1v2w3",
    ] {
        let service = Ports {
            tenancy: tenancy_with_group_of(org_id()),
            ..Ports::untouched()
        }
        .webhook_service();
        assert_rejected(
            service
                .delete(&principal(), Some(GROUP_PARAM), Some(malformed))
                .await,
            WebhookError::WebhookNotFound,
            "Webhook not found",
        );
    }
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
        service
            .get(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
            .await,
        WebhookError::WebhookNotFound,
        "Webhook not found",
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
            .update(
                &principal(),
                Some(GROUP_PARAM),
                Some(WEBHOOK_ID),
                VALID_BODY,
            )
            .await,
        WebhookError::WebhookNotFound,
        "Webhook not found",
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
    webhooks.expect_update().times(1).returning(|_| Ok(false));
    let service = Ports {
        webhooks,
        tenancy: tenancy_with_group_of(org_id()),
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .webhook_service();

    assert_rejected(
        service
            .update(
                &principal(),
                Some(GROUP_PARAM),
                Some(WEBHOOK_ID),
                VALID_BODY,
            )
            .await,
        WebhookError::WebhookNotFound,
        "Webhook not found",
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
            .delete(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
            .await,
        WebhookError::WebhookNotFound,
        "Webhook not found",
    );
}

// ---------------------------------------------------------------------------
// WebhookService: list, get, delete
// ---------------------------------------------------------------------------

#[tokio::test]
async fn list_passes_the_parsed_group_and_keeps_the_repository_order() {
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

    // Leading zeros are still the number 123456.
    let listed = service.list(&principal(), Some("0123456")).await;

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

    let found = service
        .get(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
        .await;

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
            .delete(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
            .await,
        Ok(())
    );
}

// ---------------------------------------------------------------------------
// WebhookService::create
// ---------------------------------------------------------------------------

#[tokio::test]
async fn create_stores_and_returns_an_enabled_webhook_with_every_event() {
    let (created, stored) = create_with(VALID_BODY).await;

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
    let (created, _) = create_with(VALID_BODY).await;

    let id = created.webhook.id.as_str();
    assert_eq!(id, format!("we_{ULID_LOWER}"));
    assert_eq!(id.len(), 29);
    assert!(id[3..]
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
}

#[tokio::test]
async fn create_seals_the_secret_it_returns() {
    let (created, stored) = create_with(VALID_BODY).await;

    assert!(created.secret.expose().starts_with("whsec_"));
    assert_eq!(cipher().open(&stored.secret), Ok(created.secret.clone()));
    let plaintext = &created.secret.expose()["whsec_".len()..];
    assert!(!stored.secret.as_str().contains(plaintext));
}

#[tokio::test]
async fn create_stamps_created_and_updated_at_from_the_clock() {
    let (created, _) = create_with(VALID_BODY).await;

    assert_eq!(created.webhook.created_at, NOW);
    assert_eq!(created.webhook.updated_at, NOW);
}

#[tokio::test]
async fn create_keeps_the_requested_enabled_events() {
    let body = br#"{"url":"https://integration.example/webhook","description":"","enabledEvents":["user.session.result"]}"#;

    let (_, stored) = create_with(body).await;

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
    }
    .webhook_service();

    let error = service
        .create(&principal(), Some(GROUP_PARAM), VALID_BODY)
        .await
        .unwrap_err();
    assert!(matches!(error, WebhookError::Unexpected(_)), "{error:?}");
}

// ---------------------------------------------------------------------------
// WebhookService::update
// ---------------------------------------------------------------------------

#[tokio::test]
async fn update_replaces_url_and_description() {
    let updated = update_with(
        webhook(),
        r#"{"url":"https://new.example/hook","description":"new"}"#,
    )
    .await;

    assert_eq!(updated.url.as_str(), "https://new.example/hook");
    assert_eq!(updated.description.as_str(), "new");
}

#[tokio::test]
async fn update_without_optional_fields_keeps_events_status_and_rate_limit() {
    let current = Webhook {
        status: WebhookStatus::Disabled,
        enabled_events: EnabledEvents::new([EventType::UserCreated]).unwrap(),
        ..webhook()
    };

    let updated = update_with(current.clone(), std::str::from_utf8(VALID_BODY).unwrap()).await;

    assert_eq!(updated.enabled_events, current.enabled_events);
    assert_eq!(updated.status, WebhookStatus::Disabled);
    assert_eq!(updated.rate_limit, current.rate_limit);
}

#[tokio::test]
async fn update_with_optional_fields_changes_events_status_and_rate_limit() {
    let updated = update_with(
        webhook(),
        r#"{"url":"https://new.example/hook","description":"new",
            "enabledEvents":["user.created"],"status":"disabled","rateLimit":10}"#,
    )
    .await;

    assert_eq!(
        updated.enabled_events,
        EnabledEvents::new([EventType::UserCreated]).unwrap()
    );
    assert_eq!(updated.status, WebhookStatus::Disabled);
    assert_eq!(updated.rate_limit, Some(RateLimit::new(10).unwrap()));
}

#[tokio::test]
async fn update_with_null_rate_limit_clears_it() {
    let updated = update_with(
        webhook(),
        r#"{"url":"https://new.example/hook","description":"new","rateLimit":null}"#,
    )
    .await;

    assert_eq!(updated.rate_limit, None);
}

#[tokio::test]
async fn update_stamps_updated_at_from_the_clock_and_keeps_identity_secret_and_created_at() {
    let current = webhook();

    let updated = update_with(current.clone(), std::str::from_utf8(VALID_BODY).unwrap()).await;

    assert_eq!(updated.updated_at, NOW);
    assert_eq!(updated.created_at, CREATED);
    assert_eq!(updated.id, current.id);
    assert_eq!(updated.group_id, current.group_id);
    assert_eq!(updated.secret, current.secret);
}

// ---------------------------------------------------------------------------
// TenancyService: organizations
// ---------------------------------------------------------------------------

/// Ports for an organization that must not be stored. The service draws the
/// id before it checks the name, so only the id source may be used.
fn ports_for_rejected_organization() -> Ports {
    Ports {
        ids: ids_giving_ulid(),
        ..Ports::untouched()
    }
}

#[tokio::test]
async fn create_organization_with_empty_name_is_invalid_name() {
    let admin = ports_for_rejected_organization().tenancy_service();

    assert_rejected(
        admin.create_organization("").await,
        AdminError::InvalidName,
        "Invalid name",
    );
}

#[tokio::test]
async fn create_organization_with_blank_name_is_invalid_name() {
    let admin = ports_for_rejected_organization().tenancy_service();

    assert_rejected(
        admin.create_organization(" \t\n ").await,
        AdminError::InvalidName,
        "Invalid name",
    );
}

#[tokio::test]
async fn create_organization_with_name_over_200_characters_is_invalid_name() {
    let admin = ports_for_rejected_organization().tenancy_service();

    assert_rejected(
        admin.create_organization(&"é".repeat(201)).await,
        AdminError::InvalidName,
        "Invalid name",
    );
}

#[tokio::test]
async fn create_organization_with_a_control_character_is_invalid_name() {
    let admin = ports_for_rejected_organization().tenancy_service();

    for name in [
        "Acme\0",
        "Ac\u{1}me",
        "Acme\nInc",
        "Acme\u{7f}",
        "Acme\u{2028}",
    ] {
        assert_rejected(
            admin.create_organization(name).await,
            AdminError::InvalidName,
            "Invalid name",
        );
    }
}

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
        .create_organization(&format!("  {}  ", "é".repeat(200)))
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
async fn create_group_with_invalid_name_is_invalid_name() {
    let admin = Ports::untouched().tenancy_service();

    for name in [
        "",
        "   ",
        &"x".repeat(201),
        "Prod\0",
        "Prod\r\n",
        "Prod\u{9b}",
    ] {
        assert_rejected(
            admin.create_group(org_id().as_str(), name, None).await,
            AdminError::InvalidName,
            "Invalid name",
        );
    }
}

#[tokio::test]
async fn create_group_with_zero_or_negative_id_is_invalid_group_id() {
    let admin = Ports::untouched().tenancy_service();

    for id in [0, -1, i64::MIN] {
        assert_rejected(
            admin
                .create_group(org_id().as_str(), "Production", Some(id))
                .await,
            AdminError::InvalidGroupId,
            "Invalid id",
        );
    }
}

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
            .create_group(org_id().as_str(), "Production", None)
            .await,
        AdminError::OrganizationNotFound,
        "Organization not found",
    );
}

#[tokio::test]
async fn create_group_of_malformed_organization_id_is_organization_not_found_without_lookup() {
    let admin = Ports::untouched().tenancy_service();

    for malformed in ["", "acme", "org_short", "key_01hzy3k4m5n6p7q8r9s0t1v2w3"] {
        assert_rejected(
            admin.create_group(malformed, "Production", None).await,
            AdminError::OrganizationNotFound,
            "Organization not found",
        );
    }
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
        .create_group(org_id().as_str(), " Production ", Some(777))
        .await
        .unwrap();

    assert_eq!(
        group,
        Group {
            id: GroupId::new(777).unwrap(),
            organization_id: org_id(),
            name: "Production".to_owned(),
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
            .create_group(org_id().as_str(), "Production", Some(GROUP))
            .await,
        AdminError::GroupIdTaken,
        "Group id already exists",
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
        .create_group(org_id().as_str(), "Production", None)
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
            .create_group(org_id().as_str(), "Production", None)
            .await,
        AdminError::GroupIdTaken,
        "Group id already exists",
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
        .create_group(org_id().as_str(), "Production", None)
        .await
        .unwrap_err();
    assert!(matches!(error, AdminError::Unexpected(_)), "{error:?}");
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

    let issued = admin.create_api_key(org_id().as_str()).await.unwrap();
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
        admin.create_api_key(org_id().as_str()).await,
        AdminError::OrganizationNotFound,
        "Organization not found",
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

    assert_eq!(admin.revoke_api_key(key_id().as_str()).await, Ok(()));
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
        admin.revoke_api_key(key_id().as_str()).await,
        AdminError::ApiKeyNotFound,
        "API key not found",
    );
}

#[tokio::test]
async fn revoke_malformed_api_key_id_is_api_key_not_found_without_repository() {
    let admin = Ports::untouched().tenancy_service();

    // The plaintext key is not its id.
    for malformed in ["", "nope", API_KEY, "org_01hzy3k4m5n6p7q8r9s0t1v2w3"] {
        assert_rejected(
            admin.revoke_api_key(malformed).await,
            AdminError::ApiKeyNotFound,
            "API key not found",
        );
    }
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
