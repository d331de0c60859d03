//! The delivery use cases of the domain crate against `mockall` mocks of every
//! port: [`EventPublisher`] (events in), [`Dispatcher`] (sign, send, record,
//! reschedule), [`DeliveryService`] (the delivery log and its actions) and the
//! secret endpoints of [`WebhookService`].
//!
//! A port method a test does not expect to be used is `.never()`: reaching it
//! fails the test, which is how "answers before any port call" is proved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::{Debug, Display};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mockall::predicate::{always, eq};
use serde_json::{Map, Value};
use webhooks_domain::ports::{
    MockClock, MockDeliveryQueue, MockEventStore, MockIdSource, MockOutboundSender,
    MockTenancyRepository, MockWebhookRepository,
};
use webhooks_domain::{
    ApiKeyId, Attempt, CircuitSettings, Clock, Delivery, DeliveryDetail, DeliveryId, DeliveryJob,
    DeliveryPage, DeliveryQuery, DeliveryService, DeliveryStatus, Description, DispatchSettings,
    Dispatcher, EnabledEvents, EndpointHealth, Event, EventId, EventPublisher, EventType, Group,
    GroupId, IdSource, IdempotencyKey, NextStep, OrganizationId, Principal, PublishError,
    PublishOutcome, PublishRequest, RateLimit, RepositoryError, Requeue, RetryPolicy, SealedSecret,
    SecretCipher, SendOutcome, SignedRequest, SigningSecret, TestSend, UnixMillis, Wakeup, Webhook,
    WebhookError, WebhookId, WebhookService, WebhookStatus, WebhookUrl, TEST_EVENT_TYPE,
};

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const GROUP: i64 = 123_456;
const GROUP_PARAM: &str = "123456";
const WEBHOOK_ID: &str = "we_01hzy3k4m5n6p7q8r9s0t1v2w3";
const DELIVERY_ID: &str = "dlv_01hzy3k4m5n6p7q8r9s0t1v2w3";
/// The event of [`job`].
const EVENT_ID: &str = "evt_01hzy3k4m5n6p7q8r9s0t1v2w3";
/// The ULID the mocked id source hands out, and its lowercase form in ids.
const ULID: &str = "01J9ZQ4X2K7M3N8P5R6S0T1V2W";
const ULID_LOWER: &str = "01j9zq4x2k7m3n8p5r6s0t1v2w";
/// When the fixtures were made, and what the mocked clock says now.
const CREATED: UnixMillis = UnixMillis(1_700_000_000_000);
const NOW: UnixMillis = UnixMillis(1_750_000_000_000);
/// [`NOW`] in Unix seconds, as `webhook-timestamp` and `created` carry it.
const NOW_SECS: i64 = 1_750_000_000;
/// 24 hours before [`NOW`]: the oldest idempotency key still remembered.
const IDEMPOTENCY_SINCE: UnixMillis = UnixMillis(1_749_913_600_000);
/// The receiver's URL and the body of [`job`].
const URL: &str = "https://integration.example/webhook";
const PAYLOAD: &str = r#"{"id":"evt_01hzy3k4m5n6p7q8r9s0t1v2w3","object":"event","type":"user.created","created":1700000000,"groupID":123456,"data":{}}"#;
/// The signing secret of the Standard Webhooks specification's example.
const CURRENT_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The secret before the last rotation (24 bytes: "the-previous-signing-key").
const PREVIOUS_SECRET: &str = "whsec_dGhlLXByZXZpb3VzLXNpZ25pbmcta2V5";
/// The retry schedule of [`dispatcher`]: two retries, so three attempts in all.
const FIRST_WAIT: Duration = Duration::from_secs(10);
const SECOND_WAIT: Duration = Duration::from_secs(20);
/// A webhook failing this long is disabled (5 days).
const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);
const BUSY_BACKOFF: Duration = Duration::from_millis(200);

fn group_id() -> GroupId {
    GroupId::new(GROUP).unwrap()
}

fn org_id() -> OrganizationId {
    OrganizationId::parse("org_01hzy3k4m5n6p7q8r9s0t1v2w3").unwrap()
}

fn other_org_id() -> OrganizationId {
    OrganizationId::parse("org_01j9zq4x2k7m3n8p5r6s0t1v2w").unwrap()
}

fn webhook_id() -> WebhookId {
    WebhookId::parse(WEBHOOK_ID).unwrap()
}

fn delivery_id() -> DeliveryId {
    DeliveryId::parse(DELIVERY_ID).unwrap()
}

fn event_id() -> EventId {
    EventId::parse(EVENT_ID).unwrap()
}

fn ulid() -> ulid::Ulid {
    ulid::Ulid::from_string(ULID).unwrap()
}

/// The id of an event published while the id source hands out [`ULID`].
fn new_event_id() -> EventId {
    EventId::parse(&format!("evt_{ULID_LOWER}")).unwrap()
}

/// [`NOW`] shifted by `duration` (negative: earlier).
fn now_plus(duration: Duration) -> UnixMillis {
    NOW.plus_millis(i64::try_from(duration.as_millis()).unwrap())
}

fn now_minus(duration: Duration) -> UnixMillis {
    NOW.plus_millis(-i64::try_from(duration.as_millis()).unwrap())
}

/// The service's encryption key for signing secrets.
fn cipher() -> SecretCipher {
    SecretCipher::new(&[7u8; 32]).unwrap()
}

fn current_secret() -> SigningSecret {
    SigningSecret::parse(CURRENT_SECRET).unwrap()
}

fn previous_secret() -> SigningSecret {
    SigningSecret::parse(PREVIOUS_SECRET).unwrap()
}

/// A stored secret that [`cipher`] cannot open: sealed under another key.
fn sealed_under_another_key() -> SealedSecret {
    SecretCipher::new(&[8u8; 32])
        .unwrap()
        .seal(&current_secret())
}

/// The caller: an API key of [`org_id`].
fn principal() -> Principal {
    Principal {
        organization_id: org_id(),
        api_key_id: ApiKeyId::parse("key_01hzy3k4m5n6p7q8r9s0t1v2w3").unwrap(),
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

/// Webhook [`WEBHOOK_ID`] of group [`GROUP`], whose secret is [`CURRENT_SECRET`]
/// sealed by [`cipher`].
fn webhook() -> Webhook {
    Webhook {
        id: webhook_id(),
        group_id: group_id(),
        url: WebhookUrl::new(URL).unwrap(),
        description: Description::new("Webhook Description").unwrap(),
        status: WebhookStatus::Enabled,
        enabled_events: EnabledEvents::all(),
        rate_limit: None,
        secret: cipher().seal(&current_secret()),
        created_at: CREATED,
        updated_at: CREATED,
    }
}

/// A pending delivery of webhook [`WEBHOOK_ID`] whose id is built from `n`, so
/// that several deliveries have distinct ids.
fn delivery(n: u128) -> Delivery {
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
fn delivery_detail() -> DeliveryDetail {
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

/// The request to publish a `user.created` event to group [`GROUP`].
fn publish_request() -> PublishRequest {
    let mut data = Map::new();
    data.insert("userID".into(), Value::from("u_123"));
    PublishRequest {
        group_id: group_id(),
        event_type: EventType::UserCreated,
        data,
        idempotency_key: None,
    }
}

fn publish_outcome(deliveries: u64, created: bool) -> PublishOutcome {
    PublishOutcome {
        event_id: new_event_id(),
        deliveries,
        created,
    }
}

/// Delivery [`DELIVERY_ID`] of event [`EVENT_ID`] to webhook [`WEBHOOK_ID`],
/// after `attempts_made` attempts, signed by [`CURRENT_SECRET`] alone and
/// without a rate limit.
fn job(attempts_made: u32) -> DeliveryJob {
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
        created_at: CREATED,
    }
}

/// `secret`'s signature of [`job`]'s body sent at [`NOW`].
fn signature_by(secret: &SigningSecret) -> String {
    secret.sign(EVENT_ID, NOW_SECS, PAYLOAD.as_bytes())
}

/// Attempt `number` of [`DELIVERY_ID`] at [`NOW`], answered with `status`.
fn attempt(number: u32, status: Option<u16>) -> Attempt {
    Attempt {
        delivery_id: delivery_id(),
        number,
        attempted_at: NOW,
        duration_ms: 120,
        response_status: status,
        response_body: None,
        error: status.is_none().then(|| "timed out".to_owned()),
    }
}

/// What a failure at [`NOW`] says about the webhook.
fn failing() -> EndpointHealth {
    EndpointHealth::Failing {
        disable_if_failing_since: now_minus(DISABLE_AFTER),
    }
}

fn settings() -> DispatchSettings {
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

fn unavailable() -> RepositoryError {
    RepositoryError::Unavailable("connection refused".to_owned())
}

const UNEXPECTED_TEXT: &str = "unexpected: storage unavailable: connection refused";

// ---------------------------------------------------------------------------
// Ports and services
// ---------------------------------------------------------------------------

/// The ports a service is built from. Start from [`Ports::untouched`], replace
/// the mocks the test expects to be used, and build the service: every method
/// the test did not expect is then made `.never()`. (Mockall matches a
/// method's expectations in the order they were set, so the test's own come
/// first and the `.never()` catches everything else.)
struct Ports {
    webhooks: MockWebhookRepository,
    tenancy: MockTenancyRepository,
    clock: MockClock,
    ids: MockIdSource,
    events: MockEventStore,
    queue: MockDeliveryQueue,
    sender: MockOutboundSender,
}

impl Ports {
    /// Ports that fail the test when any of their methods is called.
    fn untouched() -> Self {
        Self {
            webhooks: MockWebhookRepository::new(),
            tenancy: MockTenancyRepository::new(),
            clock: MockClock::new(),
            ids: MockIdSource::new(),
            events: MockEventStore::new(),
            queue: MockDeliveryQueue::new(),
            sender: MockOutboundSender::new(),
        }
    }

    /// Adds `.never()` after the test's own expectations of every method.
    fn forbid_the_rest(mut self) -> Self {
        self.webhooks.expect_list_by_group().never();
        self.webhooks.expect_find().never();
        self.webhooks.expect_insert().never();
        self.webhooks.expect_update().never();
        self.webhooks.expect_delete().never();
        self.webhooks.expect_rotate_secret().never();

        self.tenancy.expect_insert_organization().never();
        self.tenancy.expect_find_organization().never();
        self.tenancy.expect_is_empty().never();
        self.tenancy.expect_insert_group().never();
        self.tenancy.expect_find_group().never();
        self.tenancy.expect_insert_api_key().never();
        self.tenancy.expect_find_api_key_by_hash().never();
        self.tenancy.expect_revoke_api_key().never();

        self.clock.expect_now().never();
        self.ids.expect_ulid().never();
        self.ids.expect_group_id().never();

        self.events.expect_publish().never();
        self.events.expect_publish_to().never();

        self.queue.expect_claim_due().never();
        self.queue.expect_record_attempts().never();
        self.queue.expect_release().never();
        self.queue.expect_take_rate_slot().never();
        self.queue.expect_list().never();
        self.queue.expect_find().never();
        self.queue.expect_requeue().never();
        self.queue.expect_requeue_failed_since().never();
        self.queue.expect_depth().never();

        self.sender.expect_send().never();
        self
    }

    fn webhook_service(self) -> WebhookService {
        let ports = self.forbid_the_rest();
        WebhookService::new(
            Arc::new(ports.webhooks),
            Arc::new(ports.tenancy),
            Arc::new(ports.clock),
            Arc::new(ports.ids),
            cipher(),
        )
    }

    fn publisher(self, wakeup: &Wakeup) -> EventPublisher {
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
    fn dispatcher(self) -> Dispatcher {
        let ports = self.forbid_the_rest();
        Dispatcher::new(
            Arc::new(ports.queue),
            Arc::new(ports.sender),
            Arc::new(ports.clock),
            cipher(),
            RetryPolicy::exact(vec![FIRST_WAIT, SECOND_WAIT]),
            settings(),
            Wakeup::default(),
        )
    }

    /// The delivery service over a webhook service that shares its clock and ids.
    fn delivery_service(self, wakeup: &Wakeup) -> DeliveryService {
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
fn clock_at(at: UnixMillis) -> MockClock {
    let mut clock = MockClock::new();
    clock.expect_now().return_const(at);
    clock
}

fn clock_at_now() -> MockClock {
    clock_at(NOW)
}

/// An id source whose ULIDs are all [`ULID`].
fn ids_giving_ulid() -> MockIdSource {
    let mut ids = MockIdSource::new();
    ids.expect_ulid().return_const(ulid());
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

/// The lookup of webhook [`WEBHOOK_ID`] in group [`GROUP`] answers `found`.
fn webhooks_finding(found: Option<Webhook>) -> MockWebhookRepository {
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
fn ports_with_webhook() -> Ports {
    Ports {
        tenancy: tenancy_with_group_of(org_id()),
        webhooks: webhooks_finding(Some(webhook())),
        ..Ports::untouched()
    }
}

/// Group [`GROUP`] belongs to another organization than the caller's.
fn ports_of_other_organization() -> Ports {
    Ports {
        tenancy: tenancy_with_group_of(other_org_id()),
        ..Ports::untouched()
    }
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

/// The wake-up was fired (its permit is waiting).
async fn assert_woken(wakeup: &Wakeup) {
    tokio::time::timeout(Duration::from_secs(1), wakeup.notified())
        .await
        .expect("the dispatcher was not woken");
}

/// The wake-up was not fired.
async fn assert_not_woken(wakeup: &Wakeup) {
    let waited = tokio::time::timeout(Duration::from_millis(50), wakeup.notified()).await;
    assert!(waited.is_err(), "the dispatcher was woken");
}

// ---------------------------------------------------------------------------
// EventPublisher::publish and publish_json
// ---------------------------------------------------------------------------

/// An event store whose `publish` answers `outcome` once and records the
/// event and the idempotency window it was given.
fn events_publishing(
    outcome: Result<PublishOutcome, RepositoryError>,
    stored: &Recorded<(Event, UnixMillis)>,
) -> MockEventStore {
    let mut events = MockEventStore::new();
    let recorder = stored.clone();
    events
        .expect_publish()
        .times(1)
        .returning(move |event, since| {
            recorder.record(&(event.clone(), since));
            outcome.clone()
        });
    events
}

/// The ports of a publish to the existing group [`GROUP`] at [`NOW`].
fn publishing_ports(events: MockEventStore) -> Ports {
    Ports {
        events,
        tenancy: tenancy_with_group_of(org_id()),
        clock: clock_at_now(),
        ids: ids_giving_ulid(),
        ..Ports::untouched()
    }
}

#[tokio::test]
async fn publish_to_unknown_group_is_group_not_found_and_stores_nothing() {
    let wakeup = Wakeup::default();
    let publisher = Ports {
        tenancy: tenancy_without_group(),
        ..Ports::untouched()
    }
    .publisher(&wakeup);

    assert_rejected(
        publisher.publish(publish_request()).await,
        PublishError::GroupNotFound,
        "Group not found",
    );
    assert_not_woken(&wakeup).await;
}

#[tokio::test]
async fn publish_when_group_lookup_fails_is_unexpected_and_stores_nothing() {
    let mut tenancy = MockTenancyRepository::new();
    tenancy
        .expect_find_group()
        .times(1)
        .returning(|_| Err(unavailable()));
    let publisher = Ports {
        tenancy,
        ..Ports::untouched()
    }
    .publisher(&Wakeup::default());

    assert_rejected(
        publisher.publish(publish_request()).await,
        PublishError::Unexpected("storage unavailable: connection refused".to_owned()),
        UNEXPECTED_TEXT,
    );
}

#[tokio::test]
async fn publish_stores_an_event_with_the_evt_id_of_the_id_source_and_the_clock_time() {
    let stored = Recorded::new();
    let publisher = publishing_ports(events_publishing(Ok(publish_outcome(1, true)), &stored))
        .publisher(&Wakeup::default());

    publisher.publish(publish_request()).await.unwrap();

    let (event, _) = stored.get();
    assert_eq!(event.id.as_str(), format!("evt_{ULID_LOWER}"));
    assert_eq!(event.group_id, group_id());
    assert_eq!(event.event_type, "user.created");
    assert_eq!(event.created_at, NOW);
    assert_eq!(event.idempotency_key, None);
}

#[tokio::test]
async fn publish_stores_exactly_the_documented_payload() {
    let stored = Recorded::new();
    let publisher = publishing_ports(events_publishing(Ok(publish_outcome(1, true)), &stored))
        .publisher(&Wakeup::default());

    publisher.publish(publish_request()).await.unwrap();

    let (event, _) = stored.get();
    assert_eq!(
        event.payload,
        format!(
            r#"{{"id":"evt_{ULID_LOWER}","object":"event","type":"user.created","created":{NOW_SECS},"groupID":123456,"data":{{"userID":"u_123"}}}}"#
        )
    );
}

#[tokio::test]
async fn publish_asks_the_store_for_idempotency_keys_of_the_last_24_hours() {
    let stored = Recorded::new();
    let publisher = publishing_ports(events_publishing(Ok(publish_outcome(1, true)), &stored))
        .publisher(&Wakeup::default());

    publisher.publish(publish_request()).await.unwrap();

    let (_, since) = stored.get();
    assert_eq!(since, IDEMPOTENCY_SINCE);
    assert_eq!(since, now_minus(Duration::from_secs(24 * 3600)));
}

#[tokio::test]
async fn publish_answers_the_outcome_of_the_store() {
    let stored = Recorded::new();
    let publisher = publishing_ports(events_publishing(Ok(publish_outcome(2, true)), &stored))
        .publisher(&Wakeup::default());

    assert_eq!(
        publisher.publish(publish_request()).await,
        Ok(publish_outcome(2, true))
    );
}

#[tokio::test]
async fn publish_of_a_new_event_with_deliveries_wakes_the_dispatcher() {
    let wakeup = Wakeup::default();
    let stored = Recorded::new();
    let publisher = publishing_ports(events_publishing(Ok(publish_outcome(2, true)), &stored))
        .publisher(&wakeup);

    publisher.publish(publish_request()).await.unwrap();

    assert_woken(&wakeup).await;
}

#[tokio::test]
async fn publish_of_an_idempotent_repeat_answers_the_first_event_and_wakes_nobody() {
    let wakeup = Wakeup::default();
    let first = PublishOutcome {
        event_id: event_id(),
        deliveries: 2,
        created: false,
    };
    let stored = Recorded::new();
    let publisher =
        publishing_ports(events_publishing(Ok(first.clone()), &stored)).publisher(&wakeup);
    let request = PublishRequest {
        idempotency_key: Some(IdempotencyKey::new("signup-u_123").unwrap()),
        ..publish_request()
    };

    assert_eq!(publisher.publish(request).await, Ok(first));
    assert_not_woken(&wakeup).await;
}

#[tokio::test]
async fn publish_without_deliveries_wakes_nobody() {
    let wakeup = Wakeup::default();
    let stored = Recorded::new();
    let publisher = publishing_ports(events_publishing(Ok(publish_outcome(0, true)), &stored))
        .publisher(&wakeup);

    assert_eq!(
        publisher.publish(publish_request()).await,
        Ok(publish_outcome(0, true))
    );
    assert_not_woken(&wakeup).await;
}

#[tokio::test]
async fn publish_when_the_store_fails_is_unexpected_and_wakes_nobody() {
    let wakeup = Wakeup::default();
    let stored = Recorded::new();
    let publisher =
        publishing_ports(events_publishing(Err(unavailable()), &stored)).publisher(&wakeup);

    assert_rejected(
        publisher.publish(publish_request()).await,
        PublishError::Unexpected("storage unavailable: connection refused".to_owned()),
        UNEXPECTED_TEXT,
    );
    assert_not_woken(&wakeup).await;
}

#[tokio::test]
async fn publish_json_with_bad_body_answers_the_body_error_without_any_port() {
    let wakeup = Wakeup::default();
    let publisher = Ports::untouched().publisher(&wakeup);
    let cases = [
        (
            "not json",
            PublishError::InvalidJsonBody,
            "Invalid JSON body",
        ),
        ("[]", PublishError::InvalidJsonBody, "Invalid JSON body"),
        (
            r#"{"type":"user.created"}"#,
            PublishError::MissingGroupId,
            "You are missing the body parameter groupID",
        ),
        (
            r#"{"groupID":"12a","type":"user.created"}"#,
            PublishError::GroupIdNotANumber,
            "groupID must be a number",
        ),
        (
            r#"{"groupID":123456}"#,
            PublishError::MissingType,
            "You are missing the body parameter type",
        ),
        (
            r#"{"groupID":123456,"type":"user.deleted"}"#,
            PublishError::UnknownType,
            "Unknown event type",
        ),
        (
            r#"{"groupID":123456,"type":"user.created","data":"x"}"#,
            PublishError::DataNotAnObject,
            "data must be an object",
        ),
        (
            r#"{"groupID":123456,"type":"user.created","idempotencyKey":7}"#,
            PublishError::InvalidIdempotencyKey,
            "Invalid idempotencyKey",
        ),
        (
            r#"{"groupID":123456,"type":"user.created","idempotencyKey":"k\u0000"}"#,
            PublishError::InvalidIdempotencyKey,
            "Invalid idempotencyKey",
        ),
        (
            r#"{"groupID":123456,"type":"user.created","idempotencyKey":"k\r\nX: 1"}"#,
            PublishError::InvalidIdempotencyKey,
            "Invalid idempotencyKey",
        ),
        (
            r#"{"groupID":123456,"type":"user.created\u0000"}"#,
            PublishError::UnknownType,
            "Unknown event type",
        ),
    ];

    for (body, expected, message) in cases {
        assert_rejected(
            publisher.publish_json(body.as_bytes()).await,
            expected,
            message,
        );
    }
    assert_not_woken(&wakeup).await;
}

#[tokio::test]
async fn publish_json_publishes_the_parsed_body() {
    let wakeup = Wakeup::default();
    let stored = Recorded::new();
    let publisher = publishing_ports(events_publishing(Ok(publish_outcome(1, true)), &stored))
        .publisher(&wakeup);
    let body = br#"{"groupID":"123456","type":"user.session.result","data":{"ok":true},"idempotencyKey":"k-1"}"#;

    assert_eq!(
        publisher.publish_json(body).await,
        Ok(publish_outcome(1, true))
    );
    let (event, _) = stored.get();
    assert_eq!(event.group_id, group_id());
    assert_eq!(event.event_type, "user.session.result");
    assert_eq!(
        event.idempotency_key,
        Some(IdempotencyKey::new("k-1").unwrap())
    );
    assert_eq!(
        event.payload,
        format!(
            r#"{{"id":"evt_{ULID_LOWER}","object":"event","type":"user.session.result","created":{NOW_SECS},"groupID":123456,"data":{{"ok":true}}}}"#
        )
    );
    assert_woken(&wakeup).await;
}

// ---------------------------------------------------------------------------
// Dispatcher::next_step (schedule [10 s, 20 s], no jitter)
// ---------------------------------------------------------------------------

fn next_step_after(attempt: &Attempt, retry_after: Option<Duration>) -> (NextStep, EndpointHealth) {
    Ports {
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .dispatcher()
    .next_step(attempt, retry_after)
}

#[test]
fn next_step_after_a_2xx_is_succeeded_and_healthy() {
    for status in [200, 201, 204, 299] {
        assert_eq!(
            next_step_after(&attempt(1, Some(status)), None),
            (NextStep::Succeeded, EndpointHealth::Healthy),
            "{status}"
        );
    }
}

#[test]
fn next_step_after_410_gone_is_failed_and_gone_at_once() {
    assert_eq!(
        next_step_after(&attempt(1, Some(410)), None),
        (NextStep::Failed, EndpointHealth::Gone)
    );
}

#[test]
fn next_step_after_a_first_500_retries_after_the_first_wait_and_is_failing() {
    assert_eq!(
        next_step_after(&attempt(1, Some(500)), None),
        (NextStep::RetryAt(now_plus(FIRST_WAIT)), failing())
    );
    assert_eq!(
        failing(),
        EndpointHealth::Failing {
            disable_if_failing_since: UnixMillis(1_749_568_000_000)
        }
    );
}

#[test]
fn next_step_after_a_second_failure_retries_after_the_second_wait() {
    assert_eq!(
        next_step_after(&attempt(2, Some(500)), None),
        (NextStep::RetryAt(now_plus(SECOND_WAIT)), failing())
    );
}

#[test]
fn next_step_after_the_last_scheduled_attempt_is_failed() {
    assert_eq!(
        next_step_after(&attempt(3, Some(500)), None),
        (NextStep::Failed, failing())
    );
}

#[test]
fn next_step_after_a_non_2xx_answer_such_as_a_redirect_retries() {
    for status in [301, 404, 429] {
        assert_eq!(
            next_step_after(&attempt(1, Some(status)), None),
            (NextStep::RetryAt(now_plus(FIRST_WAIT)), failing()),
            "{status}"
        );
    }
}

#[test]
fn next_step_after_a_timeout_without_status_retries() {
    assert_eq!(
        next_step_after(&attempt(1, None), None),
        (NextStep::RetryAt(now_plus(FIRST_WAIT)), failing())
    );
}

#[test]
fn next_step_with_retry_after_longer_than_the_schedule_waits_that_long() {
    assert_eq!(
        next_step_after(&attempt(1, Some(503)), Some(Duration::from_secs(15))),
        (
            NextStep::RetryAt(now_plus(Duration::from_secs(15))),
            failing()
        )
    );
}

#[test]
fn next_step_with_retry_after_of_an_hour_is_capped_at_twice_the_schedule() {
    assert_eq!(
        next_step_after(&attempt(1, Some(503)), Some(Duration::from_secs(3600))),
        (
            NextStep::RetryAt(now_plus(Duration::from_secs(20))),
            failing()
        )
    );
}

#[test]
fn next_step_with_retry_after_shorter_than_the_schedule_keeps_the_schedule() {
    assert_eq!(
        next_step_after(&attempt(1, Some(429)), Some(Duration::from_secs(1))),
        (NextStep::RetryAt(now_plus(FIRST_WAIT)), failing())
    );
}

#[test]
fn next_step_with_retry_after_on_the_last_attempt_is_still_failed() {
    assert_eq!(
        next_step_after(&attempt(3, Some(503)), Some(Duration::from_secs(15))),
        (NextStep::Failed, failing())
    );
}

// ---------------------------------------------------------------------------
// Dispatcher::deliver
// ---------------------------------------------------------------------------

/// What `record_attempts` was given, for the one attempt `deliver` records.
type Recording = (Attempt, NextStep, EndpointHealth);

/// A sender that answers `outcome` once and records the request.
fn sender_answering(outcome: SendOutcome, sent: &Recorded<SignedRequest>) -> MockOutboundSender {
    let mut sender = MockOutboundSender::new();
    let recorder = sent.clone();
    sender.expect_send().times(1).returning(move |request| {
        recorder.record(request);
        outcome.clone()
    });
    sender
}

/// A queue that records one attempt and answers `result`.
fn queue_recording(
    result: Result<(), RepositoryError>,
    recorded: &Recorded<Recording>,
) -> MockDeliveryQueue {
    let mut queue = MockDeliveryQueue::new();
    let recorder = recorded.clone();
    queue
        .expect_record_attempts()
        .withf(|records| records.len() == 1)
        .times(1)
        .returning(move |records| {
            let record = &records[0];
            recorder.record(&(record.attempt.clone(), record.next, record.health));
            result.clone()
        });
    queue
}

/// A receiver's `200 OK` after 35 ms.
fn ok_answer() -> SendOutcome {
    SendOutcome {
        status: Some(200),
        body: Some("thanks".to_owned()),
        error: None,
        retry_after: None,
        duration_ms: 35,
        timed_out: false,
    }
}

/// Delivers `job` at [`NOW`] to a receiver answering `outcome`; answers the
/// request sent and what was recorded.
async fn deliver_answered(job: DeliveryJob, outcome: SendOutcome) -> (SignedRequest, Recording) {
    let sent = Recorded::new();
    let recorded = Recorded::new();
    let dispatcher = Ports {
        queue: queue_recording(Ok(()), &recorded),
        sender: sender_answering(outcome, &sent),
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .dispatcher();

    dispatcher.deliver(job).await;
    (sent.get(), recorded.get())
}

#[tokio::test]
async fn deliver_sends_the_payload_to_the_url_under_the_event_id_stamped_with_the_clock_seconds() {
    let (request, _) = deliver_answered(job(0), ok_answer()).await;

    assert_eq!(request.url, URL);
    assert_eq!(request.body, PAYLOAD);
    assert_eq!(request.webhook_id, EVENT_ID);
    assert_eq!(request.webhook_timestamp, NOW_SECS);
}

#[tokio::test]
async fn deliver_signs_with_the_secret_sealed_in_the_job() {
    let (request, _) = deliver_answered(job(0), ok_answer()).await;

    assert_eq!(request.webhook_signature, signature_by(&current_secret()));
    assert!(request.webhook_signature.starts_with("v1,"));
    assert!(!request.webhook_signature.contains(' '));
}

#[tokio::test]
async fn deliver_during_a_rotation_signs_with_the_current_then_the_previous_secret() {
    let job = DeliveryJob {
        previous_secret: Some(cipher().seal(&previous_secret())),
        ..job(0)
    };

    let (request, _) = deliver_answered(job, ok_answer()).await;

    let parts: Vec<&str> = request.webhook_signature.split(' ').collect();
    assert_eq!(
        parts,
        [
            signature_by(&current_secret()),
            signature_by(&previous_secret())
        ]
    );
    assert!(parts.iter().all(|part| part.starts_with("v1,")));
}

#[tokio::test]
async fn deliver_leaves_out_a_previous_secret_that_cannot_be_opened() {
    let job = DeliveryJob {
        previous_secret: Some(sealed_under_another_key()),
        ..job(0)
    };

    let (request, _) = deliver_answered(job, ok_answer()).await;

    assert_eq!(request.webhook_signature, signature_by(&current_secret()));
}

#[tokio::test]
async fn deliver_records_attempt_number_attempts_made_plus_one_with_the_answer() {
    let answer = SendOutcome {
        status: Some(500),
        body: Some("oops".to_owned()),
        error: None,
        retry_after: None,
        duration_ms: 123,
        timed_out: false,
    };

    let (_, recorded) = deliver_answered(job(1), answer).await;

    assert_eq!(
        recorded,
        (
            Attempt {
                delivery_id: delivery_id(),
                number: 2,
                attempted_at: NOW,
                duration_ms: 123,
                response_status: Some(500),
                response_body: Some("oops".to_owned()),
                error: None,
            },
            NextStep::RetryAt(now_plus(SECOND_WAIT)),
            failing(),
        )
    );
}

#[tokio::test]
async fn deliver_records_a_timeout_with_its_error_and_retries() {
    let answer = SendOutcome {
        status: None,
        body: None,
        error: Some("timed out after 15s".to_owned()),
        retry_after: None,
        duration_ms: 15_000,
        timed_out: true,
    };

    let (_, recorded) = deliver_answered(job(0), answer).await;

    assert_eq!(
        recorded,
        (
            Attempt {
                delivery_id: delivery_id(),
                number: 1,
                attempted_at: NOW,
                duration_ms: 15_000,
                response_status: None,
                response_body: None,
                error: Some("timed out after 15s".to_owned()),
            },
            NextStep::RetryAt(now_plus(FIRST_WAIT)),
            failing(),
        )
    );
}

#[tokio::test]
async fn deliver_records_a_2xx_as_succeeded_and_healthy() {
    let (_, recorded) = deliver_answered(job(0), ok_answer()).await;

    assert_eq!(
        recorded,
        (
            Attempt {
                delivery_id: delivery_id(),
                number: 1,
                attempted_at: NOW,
                duration_ms: 35,
                response_status: Some(200),
                response_body: Some("thanks".to_owned()),
                error: None,
            },
            NextStep::Succeeded,
            EndpointHealth::Healthy,
        )
    );
}

#[tokio::test]
async fn deliver_of_the_last_scheduled_attempt_records_failed() {
    let answer = SendOutcome {
        status: Some(502),
        duration_ms: 10,
        ..SendOutcome::default()
    };

    let (_, (attempt, next, health)) = deliver_answered(job(2), answer).await;

    assert_eq!(attempt.number, 3);
    assert_eq!((next, health), (NextStep::Failed, failing()));
}

#[tokio::test]
async fn deliver_passes_the_receivers_retry_after_to_the_schedule() {
    let answer = SendOutcome {
        status: Some(503),
        retry_after: Some(Duration::from_secs(15)),
        duration_ms: 10,
        ..SendOutcome::default()
    };

    let (_, (_, next, _)) = deliver_answered(job(0), answer).await;

    assert_eq!(next, NextStep::RetryAt(now_plus(Duration::from_secs(15))));
}

#[tokio::test]
async fn deliver_with_an_undecryptable_secret_sends_nothing_and_leaves_endpoint_health_alone() {
    let recorded = Recorded::new();
    let dispatcher = Ports {
        queue: queue_recording(Ok(()), &recorded),
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .dispatcher();
    let job = DeliveryJob {
        secret: sealed_under_another_key(),
        ..job(0)
    };

    dispatcher.deliver(job).await;

    assert_eq!(
        recorded.get(),
        (
            Attempt {
                delivery_id: delivery_id(),
                number: 1,
                attempted_at: NOW,
                duration_ms: 0,
                response_status: None,
                response_body: None,
                error: Some("cannot decrypt the signing secret".to_owned()),
            },
            NextStep::RetryAt(now_plus(FIRST_WAIT)),
            // Our fault, not the endpoint's: its health is left alone.
            EndpointHealth::Unchanged,
        )
    );
}

/// [`NOW`] plus a quarter second: within the second [`NOW_SECS`].
const QUARTER_PAST_NOW: UnixMillis = UnixMillis(1_750_000_000_250);

#[tokio::test]
async fn deliver_over_the_rate_limit_sends_nothing_and_releases_until_the_next_second() {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_take_rate_slot()
        .with(eq(webhook_id()), eq(NOW_SECS), eq(5))
        .times(1)
        .returning(|_, _, _| Ok(false));
    queue
        .expect_release()
        .with(eq(delivery_id()), eq(UnixMillis(1_750_000_001_000)))
        .times(1)
        .returning(|_, _| Ok(()));
    let dispatcher = Ports {
        queue,
        clock: clock_at(QUARTER_PAST_NOW),
        ..Ports::untouched()
    }
    .dispatcher();
    let job = DeliveryJob {
        rate_limit: Some(RateLimit::new(5).unwrap()),
        ..job(0)
    };

    dispatcher.deliver(job).await;
}

#[tokio::test]
async fn deliver_within_the_rate_limit_sends_and_records() {
    let sent = Recorded::new();
    let recorded = Recorded::new();
    let mut queue = queue_recording(Ok(()), &recorded);
    queue
        .expect_take_rate_slot()
        .with(eq(webhook_id()), eq(NOW_SECS), eq(5))
        .times(1)
        .returning(|_, _, _| Ok(true));
    let dispatcher = Ports {
        queue,
        sender: sender_answering(ok_answer(), &sent),
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .dispatcher();
    let job = DeliveryJob {
        rate_limit: Some(RateLimit::new(5).unwrap()),
        ..job(0)
    };

    dispatcher.deliver(job).await;

    assert_eq!(sent.get().webhook_id, EVENT_ID);
    let (attempt, next, _) = recorded.get();
    assert_eq!((attempt.number, next), (1, NextStep::Succeeded));
}

#[tokio::test]
async fn deliver_when_the_rate_limit_check_fails_sends_nothing_and_releases_after_the_backoff() {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_take_rate_slot()
        .times(1)
        .returning(|_, _, _| Err(unavailable()));
    queue
        .expect_release()
        .with(eq(delivery_id()), eq(now_plus(BUSY_BACKOFF)))
        .times(1)
        .returning(|_, _| Ok(()));
    let dispatcher = Ports {
        queue,
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .dispatcher();
    let job = DeliveryJob {
        rate_limit: Some(RateLimit::new(5).unwrap()),
        ..job(0)
    };

    dispatcher.deliver(job).await;
}

#[tokio::test]
async fn deliver_when_the_release_fails_does_not_panic() {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_take_rate_slot()
        .times(1)
        .returning(|_, _, _| Ok(false));
    queue
        .expect_release()
        .times(1)
        .returning(|_, _| Err(unavailable()));
    let dispatcher = Ports {
        queue,
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .dispatcher();
    let job = DeliveryJob {
        rate_limit: Some(RateLimit::new(1).unwrap()),
        ..job(0)
    };

    dispatcher.deliver(job).await;
}

#[tokio::test]
async fn deliver_when_recording_the_attempt_fails_does_not_panic() {
    let sent = Recorded::new();
    let recorded = Recorded::new();
    let dispatcher = Ports {
        queue: queue_recording(Err(unavailable()), &recorded),
        sender: sender_answering(ok_answer(), &sent),
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .dispatcher();

    dispatcher.deliver(job(0)).await;

    assert_eq!(recorded.get().0.number, 1);
}

// ---------------------------------------------------------------------------
// DeliveryService::list
// ---------------------------------------------------------------------------

/// Lists the deliveries of [`WEBHOOK_ID`] in group [`GROUP`] as the caller.
async fn list_with(
    service: &DeliveryService,
    query: DeliveryQuery<'_>,
) -> Result<DeliveryPage, WebhookError> {
    service
        .list(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID), query)
        .await
}

/// A queue whose `list` is asked exactly for these arguments and answers `found`.
fn queue_listing(
    status: Option<DeliveryStatus>,
    before: Option<DeliveryId>,
    limit: usize,
    found: Vec<Delivery>,
) -> MockDeliveryQueue {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_list()
        .with(eq(webhook_id()), eq(status), eq(before), eq(limit))
        .times(1)
        .returning(move |_, _, _, _| Ok(found.clone()));
    queue
}

#[tokio::test]
async fn list_with_unknown_status_filter_is_invalid_status_filter_before_any_lookup() {
    let service = Ports::untouched().delivery_service(&Wakeup::default());

    for status in ["", "Failed", "done", "pending "] {
        let query = DeliveryQuery {
            status: Some(status),
            ..DeliveryQuery::default()
        };
        assert_rejected(
            list_with(&service, query).await,
            WebhookError::InvalidStatusFilter,
            "Invalid status filter",
        );
    }
}

#[tokio::test]
async fn list_with_malformed_cursor_is_invalid_cursor_before_any_lookup() {
    let service = Ports::untouched().delivery_service(&Wakeup::default());

    for cursor in [
        "",
        "abc",
        WEBHOOK_ID,
        "dlv_short",
        "dlv_01HZY3K4M5N6P7Q8R9S0T1V2W3",
    ] {
        let query = DeliveryQuery {
            cursor: Some(cursor),
            ..DeliveryQuery::default()
        };
        assert_rejected(
            list_with(&service, query).await,
            WebhookError::InvalidCursor,
            "Invalid cursor",
        );
    }
}

#[tokio::test]
async fn list_with_limit_outside_1_to_250_is_invalid_limit_before_any_lookup() {
    let service = Ports::untouched().delivery_service(&Wakeup::default());

    for limit in [
        "",
        "0",
        "251",
        "-1",
        "abc",
        "1.5",
        " 5",
        "99999999999999999999999",
    ] {
        let query = DeliveryQuery {
            limit: Some(limit),
            ..DeliveryQuery::default()
        };
        assert_rejected(
            list_with(&service, query).await,
            WebhookError::InvalidLimit,
            "Invalid limit",
        );
    }
}

#[tokio::test]
async fn list_of_unknown_webhook_is_webhook_not_found_without_reading_the_queue() {
    let service = Ports {
        tenancy: tenancy_with_group_of(org_id()),
        webhooks: webhooks_finding(None),
        ..Ports::untouched()
    }
    .delivery_service(&Wakeup::default());

    assert_rejected(
        list_with(&service, DeliveryQuery::default()).await,
        WebhookError::WebhookNotFound,
        "Webhook not found",
    );
}

#[tokio::test]
async fn list_asks_the_queue_for_one_more_than_the_limit_with_the_parsed_filter_and_cursor() {
    let found = vec![delivery(3), delivery(2)];
    let service = Ports {
        queue: queue_listing(
            Some(DeliveryStatus::Failed),
            Some(delivery_id()),
            3,
            found.clone(),
        ),
        ..ports_with_webhook()
    }
    .delivery_service(&Wakeup::default());
    let query = DeliveryQuery {
        status: Some("failed"),
        cursor: Some(DELIVERY_ID),
        limit: Some("2"),
    };

    assert_eq!(
        list_with(&service, query).await,
        Ok(DeliveryPage {
            deliveries: found,
            next_cursor: None,
        })
    );
}

#[tokio::test]
async fn list_without_query_asks_for_the_default_page_of_50() {
    let service = Ports {
        queue: queue_listing(None, None, 51, vec![]),
        ..ports_with_webhook()
    }
    .delivery_service(&Wakeup::default());

    assert_eq!(
        list_with(&service, DeliveryQuery::default()).await,
        Ok(DeliveryPage {
            deliveries: vec![],
            next_cursor: None,
        })
    );
}

#[tokio::test]
async fn list_accepts_the_largest_limit_of_250() {
    let service = Ports {
        queue: queue_listing(Some(DeliveryStatus::Pending), None, 251, vec![delivery(1)]),
        ..ports_with_webhook()
    }
    .delivery_service(&Wakeup::default());
    let query = DeliveryQuery {
        status: Some("pending"),
        limit: Some("250"),
        ..DeliveryQuery::default()
    };

    assert_eq!(
        list_with(&service, query).await,
        Ok(DeliveryPage {
            deliveries: vec![delivery(1)],
            next_cursor: None,
        })
    );
}

#[tokio::test]
async fn list_with_more_deliveries_than_the_limit_answers_the_limit_and_the_last_id_as_cursor() {
    let service = Ports {
        queue: queue_listing(None, None, 3, vec![delivery(9), delivery(8), delivery(7)]),
        ..ports_with_webhook()
    }
    .delivery_service(&Wakeup::default());
    let query = DeliveryQuery {
        limit: Some("2"),
        ..DeliveryQuery::default()
    };

    assert_eq!(
        list_with(&service, query).await,
        Ok(DeliveryPage {
            deliveries: vec![delivery(9), delivery(8)],
            next_cursor: Some(delivery(8).id),
        })
    );
}

#[tokio::test]
async fn list_when_the_queue_fails_is_unexpected() {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_list()
        .times(1)
        .returning(|_, _, _, _| Err(unavailable()));
    let service = Ports {
        queue,
        ..ports_with_webhook()
    }
    .delivery_service(&Wakeup::default());

    assert_rejected(
        list_with(&service, DeliveryQuery::default()).await,
        WebhookError::Unexpected("storage unavailable: connection refused".to_owned()),
        UNEXPECTED_TEXT,
    );
}

#[tokio::test]
async fn list_in_group_of_another_organization_is_group_not_found() {
    let service = ports_of_other_organization().delivery_service(&Wakeup::default());

    assert_rejected(
        list_with(&service, DeliveryQuery::default()).await,
        WebhookError::GroupNotFound,
        "Group not found",
    );
}

// ---------------------------------------------------------------------------
// DeliveryService::get and retry
// ---------------------------------------------------------------------------

/// Delivery ids that cannot exist: missing, empty, the wrong shape or prefix.
const MALFORMED_DELIVERY_IDS: [Option<&str>; 5] = [
    None,
    Some(""),
    Some("dlv_short"),
    Some("dlv_01HZY3K4M5N6P7Q8R9S0T1V2W3"),
    Some(EVENT_ID),
];

#[tokio::test]
async fn get_with_malformed_delivery_id_is_delivery_not_found_without_reading_the_queue() {
    for raw in MALFORMED_DELIVERY_IDS {
        let service = ports_with_webhook().delivery_service(&Wakeup::default());

        assert_rejected(
            service
                .get(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID), raw)
                .await,
            WebhookError::DeliveryNotFound,
            "Delivery not found",
        );
    }
}

#[tokio::test]
async fn get_of_unknown_delivery_is_delivery_not_found() {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_find()
        .with(eq(webhook_id()), eq(delivery_id()))
        .times(1)
        .returning(|_, _| Ok(None));
    let service = Ports {
        queue,
        ..ports_with_webhook()
    }
    .delivery_service(&Wakeup::default());

    assert_rejected(
        service
            .get(
                &principal(),
                Some(GROUP_PARAM),
                Some(WEBHOOK_ID),
                Some(DELIVERY_ID),
            )
            .await,
        WebhookError::DeliveryNotFound,
        "Delivery not found",
    );
}

#[tokio::test]
async fn get_returns_the_delivery_with_its_body_and_attempts() {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_find()
        .with(eq(webhook_id()), eq(delivery_id()))
        .times(1)
        .returning(|_, _| Ok(Some(delivery_detail())));
    let service = Ports {
        queue,
        ..ports_with_webhook()
    }
    .delivery_service(&Wakeup::default());

    assert_eq!(
        service
            .get(
                &principal(),
                Some(GROUP_PARAM),
                Some(WEBHOOK_ID),
                Some(DELIVERY_ID)
            )
            .await,
        Ok(delivery_detail())
    );
}

#[tokio::test]
async fn get_in_group_of_another_organization_is_group_not_found() {
    let service = ports_of_other_organization().delivery_service(&Wakeup::default());

    assert_rejected(
        service
            .get(
                &principal(),
                Some(GROUP_PARAM),
                Some(WEBHOOK_ID),
                Some(DELIVERY_ID),
            )
            .await,
        WebhookError::GroupNotFound,
        "Group not found",
    );
}

/// A queue whose `requeue` of [`DELIVERY_ID`] at [`NOW`] answers `outcome`.
fn queue_requeuing(outcome: Requeue) -> MockDeliveryQueue {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_requeue()
        .with(eq(webhook_id()), eq(delivery_id()), eq(NOW))
        .times(1)
        .returning(move |_, _, _| Ok(outcome));
    queue
}

#[tokio::test]
async fn retry_with_malformed_delivery_id_is_delivery_not_found_without_touching_the_queue() {
    for raw in MALFORMED_DELIVERY_IDS {
        let wakeup = Wakeup::default();
        let service = ports_with_webhook().delivery_service(&wakeup);

        assert_rejected(
            service
                .retry(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID), raw)
                .await,
            WebhookError::DeliveryNotFound,
            "Delivery not found",
        );
        assert_not_woken(&wakeup).await;
    }
}

#[tokio::test]
async fn retry_of_unknown_delivery_is_delivery_not_found_and_wakes_nobody() {
    let wakeup = Wakeup::default();
    let service = Ports {
        queue: queue_requeuing(Requeue::NotFound),
        clock: clock_at_now(),
        ..ports_with_webhook()
    }
    .delivery_service(&wakeup);

    assert_rejected(
        service
            .retry(
                &principal(),
                Some(GROUP_PARAM),
                Some(WEBHOOK_ID),
                Some(DELIVERY_ID),
            )
            .await,
        WebhookError::DeliveryNotFound,
        "Delivery not found",
    );
    assert_not_woken(&wakeup).await;
}

#[tokio::test]
async fn retry_of_a_delivery_in_flight_is_delivery_in_progress_and_wakes_nobody() {
    let wakeup = Wakeup::default();
    let service = Ports {
        queue: queue_requeuing(Requeue::InFlight),
        clock: clock_at_now(),
        ..ports_with_webhook()
    }
    .delivery_service(&wakeup);

    assert_rejected(
        service
            .retry(
                &principal(),
                Some(GROUP_PARAM),
                Some(WEBHOOK_ID),
                Some(DELIVERY_ID),
            )
            .await,
        WebhookError::DeliveryInProgress,
        "Delivery is already in progress",
    );
    assert_not_woken(&wakeup).await;
}

#[tokio::test]
async fn retry_requeues_the_delivery_due_now_and_wakes_the_dispatcher() {
    let wakeup = Wakeup::default();
    let service = Ports {
        queue: queue_requeuing(Requeue::Requeued),
        clock: clock_at_now(),
        ..ports_with_webhook()
    }
    .delivery_service(&wakeup);

    assert_eq!(
        service
            .retry(
                &principal(),
                Some(GROUP_PARAM),
                Some(WEBHOOK_ID),
                Some(DELIVERY_ID)
            )
            .await,
        Ok(delivery_id())
    );
    assert_woken(&wakeup).await;
}

#[tokio::test]
async fn retry_in_group_of_another_organization_is_group_not_found() {
    let wakeup = Wakeup::default();
    let service = ports_of_other_organization().delivery_service(&wakeup);

    assert_rejected(
        service
            .retry(
                &principal(),
                Some(GROUP_PARAM),
                Some(WEBHOOK_ID),
                Some(DELIVERY_ID),
            )
            .await,
        WebhookError::GroupNotFound,
        "Group not found",
    );
    assert_not_woken(&wakeup).await;
}

// ---------------------------------------------------------------------------
// DeliveryService::send_test
// ---------------------------------------------------------------------------

/// The ports of a test send to [`WEBHOOK_ID`]; the stored event is recorded.
fn test_send_ports(stored: &Recorded<Event>) -> Ports {
    let mut events = MockEventStore::new();
    let recorder = stored.clone();
    events
        .expect_publish_to()
        .with(always(), eq(webhook_id()))
        .times(1)
        .returning(move |event, _| {
            recorder.record(event);
            Ok(delivery_id())
        });
    Ports {
        events,
        clock: clock_at_now(),
        ids: ids_giving_ulid(),
        ..ports_with_webhook()
    }
}

#[tokio::test]
async fn send_test_stores_a_webhook_test_event_for_that_webhook_alone() {
    let stored = Recorded::new();
    let service = test_send_ports(&stored).delivery_service(&Wakeup::default());

    service
        .send_test(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
        .await
        .unwrap();

    let event = stored.get();
    assert_eq!(event.id, new_event_id());
    assert_eq!(event.group_id, group_id());
    assert_eq!(event.event_type, TEST_EVENT_TYPE);
    assert_eq!(event.event_type, "webhook.test");
    assert_eq!(event.created_at, NOW);
    assert_eq!(event.idempotency_key, None);
    assert_eq!(
        event.payload,
        format!(
            r#"{{"id":"evt_{ULID_LOWER}","object":"event","type":"webhook.test","created":{NOW_SECS},"groupID":123456,"data":{{"message":"This is a test event.","webhookID":"{WEBHOOK_ID}"}}}}"#
        )
    );
}

#[tokio::test]
async fn send_test_answers_the_event_and_delivery_ids_and_wakes_the_dispatcher() {
    let wakeup = Wakeup::default();
    let stored = Recorded::new();
    let service = test_send_ports(&stored).delivery_service(&wakeup);

    assert_eq!(
        service
            .send_test(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
            .await,
        Ok(TestSend {
            event_id: new_event_id(),
            delivery_id: delivery_id(),
        })
    );
    assert_woken(&wakeup).await;
}

#[tokio::test]
async fn send_test_to_unknown_webhook_is_webhook_not_found_and_stores_nothing() {
    let service = Ports {
        tenancy: tenancy_with_group_of(org_id()),
        webhooks: webhooks_finding(None),
        ..Ports::untouched()
    }
    .delivery_service(&Wakeup::default());

    assert_rejected(
        service
            .send_test(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
            .await,
        WebhookError::WebhookNotFound,
        "Webhook not found",
    );
}

#[tokio::test]
async fn send_test_to_a_disabled_webhook_is_refused_and_stores_nothing() {
    let disabled = Webhook {
        status: WebhookStatus::Disabled,
        ..webhook()
    };
    let service = Ports {
        tenancy: tenancy_with_group_of(org_id()),
        webhooks: webhooks_finding(Some(disabled)),
        ..Ports::untouched()
    }
    .delivery_service(&Wakeup::default());

    assert_rejected(
        service
            .send_test(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
            .await,
        WebhookError::WebhookDisabled,
        "Webhook is disabled",
    );
}

#[tokio::test]
async fn send_test_in_group_of_another_organization_is_group_not_found() {
    let service = ports_of_other_organization().delivery_service(&Wakeup::default());

    assert_rejected(
        service
            .send_test(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
            .await,
        WebhookError::GroupNotFound,
        "Group not found",
    );
}

// ---------------------------------------------------------------------------
// DeliveryService::recover
// ---------------------------------------------------------------------------

/// 2025-06-01T00:00:00Z.
const SINCE: UnixMillis = UnixMillis(1_748_736_000_000);

/// A queue whose `requeue_failed_since` [`SINCE`] at [`NOW`] answers `count`.
fn queue_recovering(count: u64) -> MockDeliveryQueue {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_requeue_failed_since()
        .with(eq(webhook_id()), eq(SINCE), eq(NOW))
        .times(1)
        .returning(move |_, _, _| Ok(count));
    queue
}

#[tokio::test]
async fn recover_with_bad_body_answers_the_body_error_before_any_lookup() {
    let wakeup = Wakeup::default();
    let service = Ports::untouched().delivery_service(&wakeup);
    let cases = [
        (
            "not json",
            WebhookError::InvalidJsonBody,
            "Invalid JSON body",
        ),
        ("[]", WebhookError::InvalidJsonBody, "Invalid JSON body"),
        (
            "{}",
            WebhookError::MissingSince,
            "You are missing the body parameter since",
        ),
        (
            r#"{"since":5}"#,
            WebhookError::InvalidSince,
            "since must be an RFC 3339 date-time",
        ),
        (
            r#"{"since":"yesterday"}"#,
            WebhookError::InvalidSince,
            "since must be an RFC 3339 date-time",
        ),
        (
            r#"{"since":"2025-06-01"}"#,
            WebhookError::InvalidSince,
            "since must be an RFC 3339 date-time",
        ),
    ];

    for (body, expected, message) in cases {
        assert_rejected(
            service
                .recover(
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
    assert_not_woken(&wakeup).await;
}

#[tokio::test]
async fn recover_requeues_failed_deliveries_since_the_given_instant_and_wakes_the_dispatcher() {
    let wakeup = Wakeup::default();
    let service = Ports {
        queue: queue_recovering(3),
        clock: clock_at_now(),
        ..ports_with_webhook()
    }
    .delivery_service(&wakeup);

    assert_eq!(
        service
            .recover(
                &principal(),
                Some(GROUP_PARAM),
                Some(WEBHOOK_ID),
                br#"{"since":"2025-06-01T02:00:00+02:00"}"#,
            )
            .await,
        Ok(3)
    );
    assert_woken(&wakeup).await;
}

#[tokio::test]
async fn recover_with_nothing_to_requeue_answers_zero_and_wakes_nobody() {
    let wakeup = Wakeup::default();
    let service = Ports {
        queue: queue_recovering(0),
        clock: clock_at_now(),
        ..ports_with_webhook()
    }
    .delivery_service(&wakeup);

    assert_eq!(
        service
            .recover(
                &principal(),
                Some(GROUP_PARAM),
                Some(WEBHOOK_ID),
                br#"{"since":"2025-06-01T00:00:00Z"}"#,
            )
            .await,
        Ok(0)
    );
    assert_not_woken(&wakeup).await;
}

#[tokio::test]
async fn recover_in_group_of_another_organization_is_group_not_found() {
    let service = ports_of_other_organization().delivery_service(&Wakeup::default());

    assert_rejected(
        service
            .recover(
                &principal(),
                Some(GROUP_PARAM),
                Some(WEBHOOK_ID),
                br#"{"since":"2025-06-01T00:00:00Z"}"#,
            )
            .await,
        WebhookError::GroupNotFound,
        "Group not found",
    );
}

// ---------------------------------------------------------------------------
// WebhookService::secret and rotate_secret
// ---------------------------------------------------------------------------

#[tokio::test]
async fn secret_returns_the_opened_secret_of_the_stored_webhook() {
    let service = ports_with_webhook().webhook_service();

    let secret = service
        .secret(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
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
            .secret(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
            .await,
        WebhookError::WebhookNotFound,
        "Webhook not found",
    );
}

#[tokio::test]
async fn secret_in_group_of_another_organization_is_group_not_found() {
    let service = ports_of_other_organization().webhook_service();

    assert_rejected(
        service
            .secret(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
            .await,
        WebhookError::GroupNotFound,
        "Group not found",
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
        .secret(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
        .await
        .unwrap_err();
    assert!(matches!(error, WebhookError::Unexpected(_)), "{error:?}");
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
        .rotate_secret(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
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
        .rotate_secret(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
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
        .rotate_secret(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
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
            .rotate_secret(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
            .await,
        WebhookError::WebhookNotFound,
        "Webhook not found",
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
            .rotate_secret(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
            .await,
        WebhookError::WebhookNotFound,
        "Webhook not found",
    );
}

#[tokio::test]
async fn rotate_secret_in_group_of_another_organization_is_group_not_found() {
    let service = ports_of_other_organization().webhook_service();

    assert_rejected(
        service
            .rotate_secret(&principal(), Some(GROUP_PARAM), Some(WEBHOOK_ID))
            .await,
        WebhookError::GroupNotFound,
        "Group not found",
    );
}

// ---------------------------------------------------------------------------
// Dispatcher::run
// ---------------------------------------------------------------------------

/// A queue in memory for `run`: claims take from `due`, releases put back,
/// and every recorded delivery id is kept in order.
fn queue_in_memory(
    due: &Arc<Mutex<Vec<DeliveryJob>>>,
    recorded: &Arc<Mutex<Vec<DeliveryId>>>,
) -> MockDeliveryQueue {
    let mut queue = MockDeliveryQueue::new();
    let claimable = Arc::clone(due);
    queue.expect_claim_due().returning(move |_, limit, _, _| {
        let mut due = claimable.lock().unwrap();
        let take = limit.min(due.len());
        Ok(due.drain(..take).collect())
    });
    let released = Arc::clone(due);
    let jobs = due.lock().unwrap().clone();
    queue.expect_release_many().returning(move |ids, _| {
        let mut due = released.lock().unwrap();
        due.extend(
            jobs.iter()
                .filter(|job| ids.contains(&job.delivery_id))
                .cloned(),
        );
        Ok(())
    });
    let recorder = Arc::clone(recorded);
    queue.expect_record_attempts().returning(move |records| {
        // A slow database: attempts pile up behind the one being written.
        std::thread::sleep(Duration::from_millis(5));
        let mut recorded = recorder.lock().unwrap();
        recorded.extend(
            records
                .iter()
                .map(|record| record.attempt.delivery_id.clone()),
        );
        Ok(())
    });
    queue
}

// Two threads, so that `run` could return while the recorder is writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_records_every_attempt_once_before_it_stops() {
    let jobs: Vec<DeliveryJob> = (0..60u128)
        .map(|n| DeliveryJob {
            delivery_id: DeliveryId::from_ulid(ulid::Ulid(n + 1)),
            // Three endpoints, so that several workers send at once.
            webhook_id: WebhookId::from_ulid(ulid::Ulid(1_000 + n % 3)),
            ..job(0)
        })
        .collect();
    let due = Arc::new(Mutex::new(jobs.clone()));
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let sent = Arc::new(Mutex::new(0usize));
    let mut sender = MockOutboundSender::new();
    let counter = Arc::clone(&sent);
    sender.expect_send().returning(move |_| {
        *counter.lock().unwrap() += 1;
        ok_answer()
    });
    let ports = Ports {
        queue: queue_in_memory(&due, &recorded),
        sender,
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .forbid_the_rest();
    let dispatcher = Arc::new(Dispatcher::new(
        Arc::new(ports.queue),
        Arc::new(ports.sender),
        Arc::new(ports.clock),
        cipher(),
        RetryPolicy::exact(vec![FIRST_WAIT, SECOND_WAIT]),
        DispatchSettings {
            workers: 8,
            per_endpoint: 2,
            poll_interval: Duration::from_millis(10),
            ..settings()
        },
        Wakeup::default(),
    ));
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(Arc::clone(&dispatcher).run(shutdown));

    // Stop as soon as the last one is sent: its record may still be on the way.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while *sent.lock().unwrap() < jobs.len() {
        assert!(tokio::time::Instant::now() < deadline, "not all sent");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap();

    let mut recorded = recorded.lock().unwrap().clone();
    recorded.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let mut expected: Vec<DeliveryId> = jobs.iter().map(|job| job.delivery_id.clone()).collect();
    expected.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(recorded, expected);
    assert_eq!(*sent.lock().unwrap(), jobs.len());
}
