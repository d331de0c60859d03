//! Events in: the use case other services call to publish an event, in-process
//! (linking this crate and a storage adapter) or through `POST /internal/events`.

use std::sync::Arc;

use crate::delivery::Wakeup;
use crate::error::{DomainError, Field, InvalidValue, Resource};
use crate::events::{Event, NewEvent, PublishOutcome, IDEMPOTENCY_WINDOW_MILLIS};
use crate::ids::EventId;
use crate::ports::{Clock, EventStore, IdSource, TenancyRepository};

/// Publishes events: stores each with its deliveries in one transaction, then
/// wakes the dispatcher.
///
/// ```
/// # use std::sync::Arc;
/// # use webhooks_domain::*;
/// # async fn example(events: Arc<dyn EventStore>, tenancy: Arc<dyn TenancyRepository>) -> Result<(), Box<dyn std::error::Error>> {
/// let publisher = EventPublisher::new(
///     events,
///     tenancy,
///     Arc::new(SystemClock),
///     Arc::new(RandomIds::default()),
///     Wakeup::default(),
/// );
/// let mut data = serde_json::Map::new();
/// data.insert("userID".into(), "u_123".into());
/// let outcome = publisher
///     .publish(NewEvent {
///         group_id: GroupId::new(123456)?,
///         event_type: EventType::UserCreated,
///         data,
///         idempotency_key: Some(IdempotencyKey::new("signup-u_123")?),
///     })
///     .await?;
/// println!("{} fanned out to {} webhooks", outcome.event_id, outcome.deliveries);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EventPublisher {
    events: Arc<dyn EventStore>,
    tenancy: Arc<dyn TenancyRepository>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    wakeup: Wakeup,
}

impl EventPublisher {
    /// The publisher over its ports; `wakeup` tells this process's
    /// dispatcher that deliveries are due.
    pub fn new(
        events: Arc<dyn EventStore>,
        tenancy: Arc<dyn TenancyRepository>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
        wakeup: Wakeup,
    ) -> Self {
        Self {
            events,
            tenancy,
            clock,
            ids,
            wakeup,
        }
    }

    /// Stores the event and one delivery per enabled webhook of the group that
    /// receives its type. A repeated idempotency key within 24 hours
    /// answers the first event. Operational event types are the service's
    /// own and cannot be published.
    /// Errors: [`Field::EventType`] invalid for an operational type, then
    /// [`Resource::Group`] not found.
    pub async fn publish(&self, new_event: NewEvent) -> Result<PublishOutcome, DomainError> {
        if new_event.event_type.is_operational() {
            return Err(InvalidValue::new(Field::EventType, "operational").into());
        }
        if self.tenancy.find_group(new_event.group_id).await?.is_none() {
            return Err(DomainError::NotFound(Resource::Group));
        }
        let now = self.clock.now();
        let event = Event::new(
            EventId::from_ulid(self.ids.ulid()),
            new_event.group_id,
            new_event.event_type.as_str(),
            &new_event.data,
            now,
            new_event.idempotency_key,
        );
        let outcome = self
            .events
            .publish(&event, now.plus_millis(-IDEMPOTENCY_WINDOW_MILLIS))
            .await?;
        if outcome.created {
            metrics::counter!("webhooks_events_published_total", "type" => new_event.event_type.as_str())
                .increment(1);
            // Deliveries handed over need no claim round.
            if outcome.deliveries > outcome.handed_over {
                self.wakeup.notify();
            }
        }
        Ok(outcome)
    }
}
