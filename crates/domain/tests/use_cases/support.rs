//! What every test of this binary shares: fixtures (ids, the caller, a group,
//! a webhook, a delivery, a claimed job), the mocked ports a service is built
//! from, and assertions.
//!
//! A port method a test does not expect to be used is `.never()`: reaching it
//! fails the test, which is how "answers before any port call" is proved.

use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use mockall::predicate::eq;
use serde_json::{Map, Value};
use webhooks_domain::ports::{
    MockClock, MockDeliveryQueue, MockEventStore, MockIdSource, MockOutboundSender,
    MockPortalStore, MockTenancyRepository, MockWebhookRepository,
};
use webhooks_domain::{
    ApiKey, ApiKeyId, ApiKeySecret, Attempt, CircuitSettings, Clock, CustomHeaders, Delivery,
    DeliveryDetail, DeliveryId, DeliveryJob, DeliveryService, DeliveryStatus, Description,
    DispatchSettings, Dispatcher, DomainError, EnabledEvents, EventId, EventPublisher, EventType,
    Group, GroupId, IdSource, NewEvent, NewWebhook, OperatorEndpoints, Organization,
    OrganizationId, PortalService, Principal, PublishOutcome, RateLimit, RepositoryError,
    RetryPolicy, SealedSecret, SecretCipher, SigningSecret, TenancyRepository, TenancyService,
    UnixMillis, Wakeup, Webhook, WebhookId, WebhookService, WebhookStatus, WebhookUpdate,
    WebhookUrl,
};

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

pub const GROUP: i64 = 123_456;
pub const WEBHOOK_ID: &str = "we_01hzy3k4m5n6p7q8r9s0t1v2w3";
pub const DELIVERY_ID: &str = "dlv_01hzy3k4m5n6p7q8r9s0t1v2w3";
/// The event of [`job`].
pub const EVENT_ID: &str = "evt_01hzy3k4m5n6p7q8r9s0t1v2w3";
/// The ULID the mocked id source hands out, and its lowercase form in ids.
pub const ULID: &str = "01J9ZQ4X2K7M3N8P5R6S0T1V2W";
pub const ULID_LOWER: &str = "01j9zq4x2k7m3n8p5r6s0t1v2w";
/// The API key the caller sends.
pub const API_KEY: &str = "okw_the-key-the-client-sends";
/// When the fixtures were made, and what the mocked clock says now.
pub const CREATED: UnixMillis = UnixMillis(1_700_000_000_000);
pub const NOW: UnixMillis = UnixMillis(1_750_000_000_000);
/// [`NOW`] in Unix seconds, as `webhook-timestamp` and `created` carry it.
pub const NOW_SECS: i64 = 1_750_000_000;
/// 24 hours before [`NOW`]: the oldest idempotency key still remembered.
pub const IDEMPOTENCY_SINCE: UnixMillis = UnixMillis(1_749_913_600_000);
/// The receiver's URL and the body of [`job`].
pub const URL: &str = "https://integration.example/webhook";
pub const PAYLOAD: &str = r#"{"id":"evt_01hzy3k4m5n6p7q8r9s0t1v2w3","object":"event","type":"user.created","created":1700000000,"groupID":123456,"data":{}}"#;
/// The signing secret of the Standard Webhooks specification's example.
pub const CURRENT_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The secret before the last rotation (24 bytes: "the-previous-signing-key").
pub const PREVIOUS_SECRET: &str = "whsec_dGhlLXByZXZpb3VzLXNpZ25pbmcta2V5";
/// The retry schedule of [`Ports::dispatcher`]: two retries, so three attempts in all.
pub const FIRST_WAIT: Duration = Duration::from_secs(10);
pub const SECOND_WAIT: Duration = Duration::from_secs(20);
/// A webhook failing this long is disabled (5 days).
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);
pub const BUSY_BACKOFF: Duration = Duration::from_millis(200);
/// How long the portal's links and sessions last in [`Ports::portal_service`].
pub const LINK_TTL: Duration = Duration::from_secs(600);
pub const SESSION_TTL: Duration = Duration::from_secs(7200);

pub fn group_id() -> GroupId {
    GroupId::new(GROUP).unwrap()
}

pub fn org_id() -> OrganizationId {
    OrganizationId::parse("org_01hzy3k4m5n6p7q8r9s0t1v2w3").unwrap()
}

pub fn other_org_id() -> OrganizationId {
    OrganizationId::parse("org_01j9zq4x2k7m3n8p5r6s0t1v2w").unwrap()
}

pub fn key_id() -> ApiKeyId {
    ApiKeyId::parse("key_01hzy3k4m5n6p7q8r9s0t1v2w3").unwrap()
}

pub fn webhook_id() -> WebhookId {
    WebhookId::parse(WEBHOOK_ID).unwrap()
}

pub fn delivery_id() -> DeliveryId {
    DeliveryId::parse(DELIVERY_ID).unwrap()
}

pub fn event_id() -> EventId {
    EventId::parse(EVENT_ID).unwrap()
}

pub fn ulid() -> ulid::Ulid {
    ulid::Ulid::from_string(ULID).unwrap()
}

/// The id of an event published while the id source hands out [`ULID`].
pub fn new_event_id() -> EventId {
    EventId::parse(&format!("evt_{ULID_LOWER}")).unwrap()
}

/// [`NOW`] shifted by `duration`.
pub fn now_plus(duration: Duration) -> UnixMillis {
    NOW.plus_millis(i64::try_from(duration.as_millis()).unwrap())
}

pub fn now_minus(duration: Duration) -> UnixMillis {
    NOW.plus_millis(-i64::try_from(duration.as_millis()).unwrap())
}

/// The service's encryption key for signing secrets.
pub fn cipher() -> SecretCipher {
    SecretCipher::new(&[7u8; 32]).unwrap()
}

pub fn current_secret() -> SigningSecret {
    SigningSecret::parse(CURRENT_SECRET).unwrap()
}

pub fn previous_secret() -> SigningSecret {
    SigningSecret::parse(PREVIOUS_SECRET).unwrap()
}

/// [`CURRENT_SECRET`] sealed by [`cipher`]: always the same bytes, so that
/// fixtures holding it compare equal (every sealing draws a new nonce).
pub fn sealed_current_secret() -> SealedSecret {
    static SEALED: OnceLock<SealedSecret> = OnceLock::new();
    SEALED
        .get_or_init(|| cipher().seal(&current_secret()))
        .clone()
}

/// A stored secret that [`cipher`] cannot open: sealed under another key.
pub fn sealed_under_another_key() -> SealedSecret {
    SecretCipher::new(&[8u8; 32])
        .unwrap()
        .seal(&current_secret())
}

/// The custom headers `X-Api-Key: k3y` and `Authorization: Bearer t0ken`.
pub fn custom_headers() -> CustomHeaders {
    CustomHeaders::new([("X-Api-Key", "k3y"), ("Authorization", "Bearer t0ken")]).unwrap()
}

/// [`API_KEY`], as the caller presents it.
pub fn api_key() -> ApiKeySecret {
    ApiKeySecret::from_header(API_KEY)
}

/// The caller: an API key of [`org_id`].
pub fn principal() -> Principal {
    Principal {
        organization_id: org_id(),
        api_key_id: key_id(),
        group: None,
    }
}

pub fn organization(id: OrganizationId) -> Organization {
    Organization {
        id,
        name: "Acme".to_owned(),
        created_at: CREATED,
    }
}

/// Group [`GROUP`], owned by `owner`.
pub fn group_of(owner: OrganizationId) -> Group {
    Group {
        id: group_id(),
        organization_id: owner,
        name: "Production".to_owned(),
        operations: false,
        created_at: CREATED,
    }
}

/// Webhook [`WEBHOOK_ID`] of group [`GROUP`], created at [`CREATED`], whose
/// secret is [`CURRENT_SECRET`] sealed by [`cipher`]; with a rate limit so
/// that updates can be seen to keep or clear it.
pub fn webhook() -> Webhook {
    Webhook {
        id: webhook_id(),
        group_id: group_id(),
        url: WebhookUrl::new(URL).unwrap(),
        description: Description::new("Webhook Description").unwrap(),
        status: WebhookStatus::Enabled,
        enabled_events: EnabledEvents::all(),
        rate_limit: Some(RateLimit::new(5).unwrap()),
        secret: sealed_current_secret(),
        headers: None,
        ordering: None,
        created_at: CREATED,
        updated_at: CREATED,
    }
}

/// The seed's example webhook to create, receiving every event.
pub fn new_webhook() -> NewWebhook {
    NewWebhook {
        url: WebhookUrl::new(URL).unwrap(),
        description: Description::new("Webhook Description").unwrap(),
        enabled_events: EnabledEvents::all(),
        headers: None,
        ordering: None,
    }
}

/// An update to the seed's new URL and description that changes nothing else.
pub fn webhook_update() -> WebhookUpdate {
    WebhookUpdate {
        url: WebhookUrl::new("https://integration.example/newWebhook").unwrap(),
        description: Description::new("New Webhook Description").unwrap(),
        enabled_events: None,
        status: None,
        rate_limit: None,
        headers: None,
        ordering: None,
    }
}

/// The API key [`API_KEY`] as stored: its hash, owned by [`org_id`].
pub fn stored_key(revoked_at: Option<UnixMillis>) -> ApiKey {
    ApiKey {
        id: key_id(),
        organization_id: org_id(),
        hash: api_key().hash(),
        created_at: CREATED,
        revoked_at,
    }
}

/// A failed delivery of webhook [`WEBHOOK_ID`] whose id is built from `n`, so
/// that several deliveries have distinct ids.
pub fn delivery(n: u128) -> Delivery {
    Delivery {
        id: DeliveryId::from_ulid(ulid::Ulid(n)),
        event_id: event_id(),
        event_type: "user.created".to_owned(),
        webhook_id: webhook_id(),
        group_id: group_id(),
        status: DeliveryStatus::Failed,
        attempt_count: 3,
        next_attempt_at: None,
        created_at: CREATED,
        updated_at: CREATED,
    }
}

/// Delivery [`DELIVERY_ID`] with its body and one failed attempt.
pub fn delivery_detail() -> DeliveryDetail {
    DeliveryDetail {
        delivery: Delivery {
            id: delivery_id(),
            ..delivery(1)
        },
        payload: PAYLOAD.to_owned(),
        attempts: vec![Attempt {
            delivery_id: delivery_id(),
            number: 1,
            attempted_at: CREATED,
            duration_ms: 42,
            response_status: Some(500),
            response_body: Some("oops".to_owned()),
            error: None,
        }],
    }
}

/// A `user.created` event for group [`GROUP`].
pub fn new_event() -> NewEvent {
    let mut data = Map::new();
    data.insert("userID".into(), Value::from("u_123"));
    NewEvent {
        group_id: group_id(),
        event_type: EventType::UserCreated,
        data,
        idempotency_key: None,
    }
}

pub fn publish_outcome(deliveries: u64, created: bool) -> PublishOutcome {
    PublishOutcome {
        event_id: new_event_id(),
        deliveries,
        handed_over: 0,
        created,
    }
}

/// Delivery [`DELIVERY_ID`] of event [`EVENT_ID`] to webhook [`WEBHOOK_ID`],
/// after `attempts_made` attempts, signed by [`CURRENT_SECRET`] alone and
/// without a rate limit.
pub fn job(attempts_made: u32) -> DeliveryJob {
    DeliveryJob {
        delivery_id: delivery_id(),
        event_id: event_id(),
        attempts_made,
        payload: PAYLOAD.to_owned(),
        webhook_id: webhook_id(),
        url: URL.to_owned(),
        secret: cipher().seal(&current_secret()),
        previous_secret: None,
        rate_limit: None,
        headers: None,
        ordering: None,
        created_at: CREATED,
    }
}

pub fn settings() -> DispatchSettings {
    DispatchSettings {
        workers: 1,
        per_endpoint: 1,
        lease: Duration::from_secs(45),
        poll_interval: Duration::from_millis(500),
        disable_after: DISABLE_AFTER,
        busy_backoff: BUSY_BACKOFF,
        circuit: CircuitSettings::default(),
    }
}

pub fn unavailable() -> RepositoryError {
    RepositoryError::Unavailable("connection refused".to_owned())
}

pub fn conflict() -> RepositoryError {
    RepositoryError::Conflict("duplicate key".to_owned())
}

/// What a use case answers when the storage is [`unavailable`].
pub fn unexpected() -> DomainError {
    DomainError::Unexpected("storage unavailable: connection refused".to_owned())
}

// ---------------------------------------------------------------------------
// Ports and services
// ---------------------------------------------------------------------------

/// The ports a service is built from. Start from [`Ports::untouched`], replace
/// the mocks the test expects to be used, and build the service: every method
/// the test did not expect is then made `.never()`. (Mockall matches a
/// method's expectations in the order they were set, so the test's own come
/// first and the `.never()` catches everything else.)
pub struct Ports {
    pub webhooks: MockWebhookRepository,
    pub tenancy: MockTenancyRepository,
    pub clock: MockClock,
    pub ids: MockIdSource,
    pub events: MockEventStore,
    pub queue: MockDeliveryQueue,
    pub sender: MockOutboundSender,
    pub portal: MockPortalStore,
}

impl Ports {
    /// Ports that fail the test when any of their methods is called.
    pub fn untouched() -> Self {
        Self {
            webhooks: MockWebhookRepository::new(),
            tenancy: MockTenancyRepository::new(),
            clock: MockClock::new(),
            ids: MockIdSource::new(),
            events: MockEventStore::new(),
            queue: MockDeliveryQueue::new(),
            sender: MockOutboundSender::new(),
            portal: MockPortalStore::new(),
        }
    }

    /// Adds `.never()` after the test's own expectations of every method.
    pub fn forbid_the_rest(mut self) -> Self {
        self.webhooks.expect_list_by_group().never();
        self.webhooks.expect_find().never();
        self.webhooks.expect_insert().never();
        self.webhooks.expect_update().never();
        self.webhooks.expect_delete().never();
        self.webhooks.expect_rotate_secret().never();

        self.tenancy.expect_insert_organization().never();
        self.tenancy.expect_find_organization().never();
        self.tenancy.expect_is_empty().never();
        self.tenancy.expect_insert_demo_tenant().never();
        self.tenancy.expect_insert_group().never();
        self.tenancy.expect_find_group().never();
        self.tenancy.expect_find_operations_group().never();
        self.tenancy.expect_insert_api_key().never();
        self.tenancy.expect_find_api_key_by_hash().never();
        self.tenancy.expect_revoke_api_key().never();
        self.tenancy.expect_find_api_key().never();

        self.clock.expect_now().never();
        self.ids.expect_ulid().never();
        self.ids.expect_group_id().never();

        self.events.expect_publish().never();
        self.events.expect_publish_to().never();

        self.queue.expect_claim_due().never();
        self.queue.expect_record_attempts().never();
        self.queue.expect_release().never();
        self.queue.expect_release_many().never();
        self.queue.expect_defer_webhook().never();
        self.queue.expect_take_rate_slot().never();
        self.queue.expect_list().never();
        self.queue.expect_find().never();
        self.queue.expect_requeue().never();
        self.queue.expect_requeue_failed_since().never();
        self.queue.expect_depth().never();
        self.queue.expect_window_activity().never();

        self.sender.expect_send().never();

        self.portal.expect_insert_link().never();
        self.portal.expect_take_link().never();
        self.portal.expect_insert_session().never();
        self.portal.expect_find_session().never();
        self.portal.expect_delete_session().never();
        self
    }

    pub fn webhook_service(self) -> WebhookService {
        let ports = self.forbid_the_rest();
        WebhookService::new(
            Arc::new(ports.webhooks),
            Arc::new(ports.tenancy),
            Arc::new(ports.clock),
            Arc::new(ports.ids),
            cipher(),
        )
    }

    pub fn operator_endpoints(self) -> OperatorEndpoints {
        let ports = self.forbid_the_rest();
        let clock = Arc::new(ports.clock);
        let ids = Arc::new(ports.ids);
        OperatorEndpoints::new(
            Arc::new(ports.webhooks),
            TenancyService::new(Arc::new(ports.tenancy), clock.clone(), ids.clone()),
            clock,
            ids,
            cipher(),
        )
    }

    pub fn tenancy_service(self) -> TenancyService {
        let ports = self.forbid_the_rest();
        TenancyService::new(
            Arc::new(ports.tenancy),
            Arc::new(ports.clock),
            Arc::new(ports.ids),
        )
    }

    pub fn publisher(self, wakeup: &Wakeup) -> EventPublisher {
        let ports = self.forbid_the_rest();
        EventPublisher::new(
            Arc::new(ports.events),
            Arc::new(ports.tenancy),
            Arc::new(ports.clock),
            Arc::new(ports.ids),
            wakeup.clone(),
        )
    }

    /// A dispatcher with the retry schedule [[`FIRST_WAIT`], [`SECOND_WAIT`]]
    /// without jitter.
    pub fn dispatcher(self) -> Dispatcher {
        self.dispatcher_with(settings())
    }

    pub fn dispatcher_with(self, settings: DispatchSettings) -> Dispatcher {
        let ports = self.forbid_the_rest();
        Dispatcher::new(
            Arc::new(ports.queue),
            Arc::new(ports.sender),
            Arc::new(ports.clock),
            cipher(),
            RetryPolicy::exact(vec![FIRST_WAIT, SECOND_WAIT]),
            settings,
            Wakeup::default(),
        )
    }

    /// The portal over a webhook service that shares its tenancy and clock,
    /// with links of [`LINK_TTL`] and sessions of [`SESSION_TTL`].
    pub fn portal_service(self) -> PortalService {
        let ports = self.forbid_the_rest();
        let clock: Arc<dyn Clock> = Arc::new(ports.clock);
        let tenancy: Arc<dyn TenancyRepository> = Arc::new(ports.tenancy);
        let webhooks = WebhookService::new(
            Arc::new(ports.webhooks),
            Arc::clone(&tenancy),
            Arc::clone(&clock),
            Arc::new(ports.ids),
            cipher(),
        );
        PortalService::new(Arc::new(ports.portal), tenancy, webhooks, clock)
            .with_lifetimes(LINK_TTL, SESSION_TTL)
    }

    /// The delivery service over a webhook service that shares its clock and ids.
    pub fn delivery_service(self, wakeup: &Wakeup) -> DeliveryService {
        let ports = self.forbid_the_rest();
        let clock: Arc<dyn Clock> = Arc::new(ports.clock);
        let ids: Arc<dyn IdSource> = Arc::new(ports.ids);
        let webhooks = WebhookService::new(
            Arc::new(ports.webhooks),
            Arc::new(ports.tenancy),
            Arc::clone(&clock),
            Arc::clone(&ids),
            cipher(),
        );
        DeliveryService::new(
            webhooks,
            Arc::new(ports.queue),
            Arc::new(ports.events),
            clock,
            ids,
            wakeup.clone(),
        )
    }
}

/// A clock that always says `at`.
pub fn clock_at(at: UnixMillis) -> MockClock {
    let mut clock = MockClock::new();
    clock.expect_now().return_const(at);
    clock
}

pub fn clock_at_now() -> MockClock {
    clock_at(NOW)
}

/// An id source whose ULIDs are all [`ULID`].
pub fn ids_giving_ulid() -> MockIdSource {
    let mut ids = MockIdSource::new();
    ids.expect_ulid().return_const(ulid());
    ids
}

/// Group [`GROUP`] exists, owned by `owner`, and is looked up exactly once.
pub fn tenancy_with_group_of(owner: OrganizationId) -> MockTenancyRepository {
    let mut tenancy = MockTenancyRepository::new();
    tenancy
        .expect_find_group()
        .with(eq(group_id()))
        .times(1)
        .returning(move |_| Ok(Some(group_of(owner.clone()))));
    tenancy
}

/// Group [`GROUP`] does not exist.
pub fn tenancy_without_group() -> MockTenancyRepository {
    let mut tenancy = MockTenancyRepository::new();
    tenancy
        .expect_find_group()
        .with(eq(group_id()))
        .times(1)
        .returning(|_| Ok(None));
    tenancy
}

/// The lookup of the key [`API_KEY`] (by its hash) answers `found`.
pub fn tenancy_with_key(found: Option<ApiKey>) -> MockTenancyRepository {
    let mut tenancy = MockTenancyRepository::new();
    tenancy
        .expect_find_api_key_by_hash()
        .with(eq(api_key().hash()))
        .times(1)
        .returning(move |_| Ok(found.clone()));
    tenancy
}

/// Organization [`org_id`] exists and is looked up exactly once.
pub fn tenancy_with_organization() -> MockTenancyRepository {
    let mut tenancy = MockTenancyRepository::new();
    tenancy
        .expect_find_organization()
        .with(eq(org_id()))
        .times(1)
        .returning(|id| Ok(Some(organization(id.clone()))));
    tenancy
}

/// The lookup of webhook [`WEBHOOK_ID`] in group [`GROUP`] answers `found`.
pub fn webhooks_finding(found: Option<Webhook>) -> MockWebhookRepository {
    let mut webhooks = MockWebhookRepository::new();
    webhooks
        .expect_find()
        .with(eq(group_id()), eq(webhook_id()))
        .times(1)
        .returning(move |_, _| Ok(found.clone()));
    webhooks
}

/// The caller's group and its webhook [`WEBHOOK_ID`] exist; everything else
/// is untouched unless the test replaces it.
pub fn ports_with_webhook() -> Ports {
    Ports {
        tenancy: tenancy_with_group_of(org_id()),
        webhooks: webhooks_finding(Some(webhook())),
        ..Ports::untouched()
    }
}

/// Group [`GROUP`] belongs to another organization than the caller's.
pub fn ports_of_other_organization() -> Ports {
    Ports {
        tenancy: tenancy_with_group_of(other_org_id()),
        ..Ports::untouched()
    }
}

/// The last value a mock was given, for the test to inspect afterwards.
#[derive(Clone)]
pub struct Recorded<T>(Arc<Mutex<Option<T>>>);

impl<T: Clone> Recorded<T> {
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(None)))
    }

    pub fn record(&self, value: &T) {
        *self.0.lock().unwrap() = Some(value.clone());
    }

    pub fn get(&self) -> T {
        self.0
            .lock()
            .unwrap()
            .clone()
            .expect("the mock was never called")
    }
}

// ---------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------

/// Asserts the use case answered exactly this business error.
#[track_caller]
pub fn assert_rejected<T: Debug>(result: Result<T, DomainError>, expected: DomainError) {
    assert_eq!(result.expect_err("expected an error"), expected);
}

/// The wake-up was fired (its permit is waiting).
pub async fn assert_woken(wakeup: &Wakeup) {
    tokio::time::timeout(Duration::from_secs(1), wakeup.notified())
        .await
        .expect("the dispatcher was not woken");
}

/// The wake-up was not fired.
pub async fn assert_not_woken(wakeup: &Wakeup) {
    let waited = tokio::time::timeout(Duration::from_millis(50), wakeup.notified()).await;
    assert!(waited.is_err(), "the dispatcher was woken");
}
