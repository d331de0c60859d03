//! [`Dispatcher`]: the next step after an attempt, delivering one claimed
//! job (sign, send, record, rate limit), and the delivery loop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mockall::predicate::eq;
use webhooks_domain::ports::{MockDeliveryQueue, MockOutboundSender, OutboundSender};
use webhooks_domain::{
    Attempt, DeliveryId, DeliveryJob, DeliveryOrdering, DispatchSettings, Dispatcher,
    EndpointHealth, NextStep, RateLimit, RepositoryError, RetryPolicy, SecretCipher, SendOutcome,
    SignedRequest, SigningSecret, UnixMillis, Wakeup, WebhookId,
};

use crate::support::*;

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
async fn deliver_sends_the_webhooks_custom_headers_opened() {
    let job = DeliveryJob {
        headers: Some(cipher().seal_headers(&custom_headers())),
        ..job(0)
    };

    let (request, _) = deliver_answered(job, ok_answer()).await;

    assert_eq!(request.headers, custom_headers());
    assert_eq!(request.webhook_signature, signature_by(&current_secret()));
}

#[tokio::test]
async fn deliver_without_custom_headers_sends_none() {
    let (request, _) = deliver_answered(job(0), ok_answer()).await;

    assert!(request.headers.is_empty());
}

#[tokio::test]
async fn deliver_with_custom_headers_that_cannot_be_opened_sends_nothing_and_leaves_health_unchanged(
) {
    let sealed_elsewhere = SecretCipher::new(&[8u8; 32])
        .unwrap()
        .seal_headers(&custom_headers());
    let job = DeliveryJob {
        headers: Some(sealed_elsewhere),
        ..job(0)
    };
    let recorded = Recorded::new();
    let dispatcher = Ports {
        queue: queue_recording(Ok(()), &recorded),
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .dispatcher();

    dispatcher.deliver(job).await;

    let (attempt, _, health) = recorded.get();
    assert_eq!(
        attempt.error.as_deref(),
        Some("cannot decrypt the custom headers")
    );
    assert_eq!(health, EndpointHealth::Unchanged);
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
    put_back_when_released(&mut queue, due);
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

/// Releases put the released jobs (of those `due` holds now) back into
/// `due`; answers the count of deliveries released.
fn put_back_when_released(
    queue: &mut MockDeliveryQueue,
    due: &Arc<Mutex<Vec<DeliveryJob>>>,
) -> Arc<Mutex<usize>> {
    let (released, counter) = (Arc::clone(due), Arc::new(Mutex::new(0usize)));
    let count = Arc::clone(&counter);
    let jobs = due.lock().unwrap().clone();
    queue.expect_release_many().returning(move |ids, _| {
        *count.lock().unwrap() += ids.len();
        let mut due = released.lock().unwrap();
        due.extend(
            jobs.iter()
                .filter(|job| ids.contains(&job.delivery_id))
                .cloned(),
        );
        Ok(())
    });
    counter
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
    let dispatcher = Ports {
        queue: queue_in_memory(&due, &recorded),
        sender,
        clock: clock_at_now(),
        ..Ports::untouched()
    }
    .dispatcher_with(DispatchSettings {
        workers: 8,
        per_endpoint: 2,
        poll_interval: Duration::from_millis(10),
        ..settings()
    });
    let dispatcher = Arc::new(dispatcher);
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

/// A receiver that takes a while to answer, counting the sends in flight.
#[derive(Default)]
struct SlowReceiver {
    /// (in flight now, most at once, sent)
    flight: Mutex<(usize, usize, usize)>,
}

#[async_trait::async_trait]
impl OutboundSender for SlowReceiver {
    async fn send(&self, _: &SignedRequest) -> SendOutcome {
        {
            let mut flight = self.flight.lock().unwrap();
            flight.0 += 1;
            flight.1 = flight.1.max(flight.0);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut flight = self.flight.lock().unwrap();
        flight.0 -= 1;
        flight.2 += 1;
        ok_answer()
    }
}

/// Runs a dispatcher (4 per endpoint, 8 workers) over 12 deliveries to one
/// webhook of this ordering, and answers the most sends in flight at once.
async fn most_in_flight_at_once(ordering: Option<DeliveryOrdering>) -> usize {
    let jobs: Vec<DeliveryJob> = (0..12u128)
        .map(|n| DeliveryJob {
            delivery_id: DeliveryId::from_ulid(ulid::Ulid(n + 1)),
            ordering,
            ..job(0)
        })
        .collect();
    let due = Arc::new(Mutex::new(jobs.clone()));
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let queue = queue_in_memory(&due, &recorded);
    let receiver = send_to_slow_receiver(queue, 4, jobs.len(), Duration::from_secs(10)).await;
    let most = receiver.flight.lock().unwrap().1;
    most
}

/// Runs a dispatcher over `queue` (8 slots, `per_endpoint` in flight per
/// endpoint) sending to a [`SlowReceiver`] until it has sent `count`
/// deliveries (within `within`), then stops it; answers the receiver.
async fn send_to_slow_receiver(
    queue: MockDeliveryQueue,
    per_endpoint: usize,
    count: usize,
    within: Duration,
) -> Arc<SlowReceiver> {
    let receiver = Arc::new(SlowReceiver::default());
    let dispatcher = Arc::new(Dispatcher::new(
        Arc::new(queue),
        Arc::clone(&receiver) as Arc<dyn OutboundSender>,
        Arc::new(clock_at_now()),
        cipher(),
        RetryPolicy::exact(vec![FIRST_WAIT]),
        DispatchSettings {
            workers: 8,
            per_endpoint,
            poll_interval: Duration::from_millis(10),
            ..settings()
        },
        Wakeup::default(),
    ));
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(dispatcher.run(shutdown));
    let deadline = tokio::time::Instant::now() + within;
    while receiver.flight.lock().unwrap().2 < count {
        assert!(tokio::time::Instant::now() < deadline, "not all sent");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap();
    receiver
}

#[tokio::test]
async fn a_fifo_webhook_has_one_delivery_in_flight_at_a_time() {
    assert_eq!(
        most_in_flight_at_once(Some(DeliveryOrdering::Fifo)).await,
        1
    );
}

#[tokio::test]
async fn a_webhook_without_ordering_has_several_deliveries_in_flight() {
    assert_eq!(most_in_flight_at_once(None).await, 4);
}

/// Drains 40 deliveries to one slow webhook (2 in flight, 2 waiting, 8
/// slots) from a queue that honours the claim's skipped endpoints; answers
/// how many claimed deliveries were handed back for want of room.
async fn handed_back_while_draining_one_webhook() -> usize {
    let jobs: Vec<DeliveryJob> = (0..40u128)
        .map(|n| DeliveryJob {
            delivery_id: DeliveryId::from_ulid(ulid::Ulid(n + 1)),
            ..job(0)
        })
        .collect();
    let due = Arc::new(Mutex::new(jobs.clone()));
    let mut queue = MockDeliveryQueue::new();
    let claimable = Arc::clone(&due);
    queue
        .expect_claim_due()
        .returning(move |_, limit, _, exclude| {
            let mut due = claimable.lock().unwrap();
            let (taken, kept): (Vec<_>, Vec<_>) = due
                .drain(..)
                .enumerate()
                .partition(|(at, job)| *at < limit && !exclude.contains(&job.webhook_id));
            *due = kept.into_iter().map(|(_, job)| job).collect();
            Ok(taken.into_iter().map(|(_, job)| job).collect())
        });
    let handed_back = put_back_when_released(&mut queue, &due);
    queue.expect_record_attempts().returning(|_| Ok(()));
    send_to_slow_receiver(queue, 2, jobs.len(), Duration::from_secs(20)).await;
    let handed_back = *handed_back.lock().unwrap();
    handed_back
}

#[tokio::test]
async fn a_claim_never_takes_more_than_its_endpoints_have_room_for() {
    // Each one handed back costs two writes and waits for the busy backoff.
    assert_eq!(handed_back_while_draining_one_webhook().await, 0);
}
