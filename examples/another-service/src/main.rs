//! Another service that links the webhooks domain and its Diesel adapter,
//! without the HTTP API: on a temporary SQLite file it creates an
//! organization, a group and a webhook through the domain's use cases, runs
//! the domain's `Dispatcher` with an `OutboundSender` of its own, publishes an
//! event, and waits until its loopback receiver has got it with a valid
//! `webhook-signature`. It prints what happened and exits 0.

mod receiver;
mod sender;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use webhooks_adapters_diesel::{
    Database, DieselDeliveryQueue, DieselEventStore, DieselTenancyRepository,
    DieselWebhookRepository,
};
use webhooks_domain::{
    Description, DispatchSettings, Dispatcher, DisplayName, EnabledEvents, EventPublisher,
    EventType, NewEvent, NewWebhook, RandomIds, RetryPolicy, SecretCipher, SystemClock,
    TenancyService, Wakeup, WebhookService, WebhookUrl,
};

use crate::receiver::Receiver;
use crate::sender::ReqwestSender;

/// How long the delivery may take before the program gives up.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let url = format!("sqlite://{}", dir.path().join("webhooks.db").display());
    let database = Database::connect(&url, 4).context("cannot open the database")?;
    database.migrate().context("cannot apply the migrations")?;
    let outcome = run(&database).await;
    let closing = database.clone();
    tokio::task::spawn_blocking(move || closing.close()).await?;
    outcome
}

async fn run(database: &Database) -> anyhow::Result<()> {
    let clock = Arc::new(SystemClock);
    let ids = Arc::new(RandomIds::default());
    let cipher = SecretCipher::from_base64(&SecretCipher::generate_key())?;
    let wakeup = Wakeup::default();
    let tenancy_repository = Arc::new(DieselTenancyRepository::new(database.clone()));
    let tenancy = TenancyService::new(tenancy_repository.clone(), clock.clone(), ids.clone());
    let webhooks = WebhookService::new(
        Arc::new(DieselWebhookRepository::new(database.clone())),
        tenancy_repository.clone(),
        clock.clone(),
        ids.clone(),
        cipher.clone(),
    );
    let publisher = EventPublisher::new(
        Arc::new(DieselEventStore::new(database.clone())),
        tenancy_repository,
        clock.clone(),
        ids,
        wakeup.clone(),
    );

    // Tenancy: an organization, its group and an API key, whose holder is
    // the caller of the webhook use cases.
    let organization = tenancy
        .create_organization(DisplayName::new("Another service")?)
        .await?;
    let group = tenancy
        .create_group(&organization.id, DisplayName::new("Example")?, None)
        .await?;
    let key = tenancy.create_api_key(&organization.id).await?;
    let caller = webhooks.authenticate(&key.secret).await?;
    println!("organization {} with group {}", organization.id, group.id);

    let receiver = Receiver::start().await?;
    let created = webhooks
        .create(
            &caller,
            group.id,
            NewWebhook {
                url: WebhookUrl::new(&receiver.url())?,
                description: Description::new("The loopback receiver of the example")?,
                enabled_events: EnabledEvents::new([EventType::UserCreated])?,
                headers: None,
                ordering: None,
            },
        )
        .await?;
    println!(
        "webhook {} -> {}",
        created.webhook.id,
        created.webhook.url.as_str()
    );

    // The domain's delivery loop, sending through our own port.
    let timeout = Duration::from_secs(5);
    let dispatcher = Arc::new(Dispatcher::new(
        Arc::new(DieselDeliveryQueue::new(database.clone())),
        Arc::new(ReqwestSender::new(timeout)?),
        clock,
        cipher,
        RetryPolicy::new(vec![Duration::from_secs(1)]),
        DispatchSettings::for_timeout(timeout, 4),
        wakeup,
    ));
    let (stop, shutdown) = watch::channel(false);
    let running = tokio::spawn(dispatcher.run(shutdown));

    let mut data = serde_json::Map::new();
    data.insert("userID".into(), "u_123".into());
    let published = publisher
        .publish(NewEvent {
            group_id: group.id,
            event_type: EventType::UserCreated,
            data,
            idempotency_key: None,
        })
        .await?;
    println!(
        "published {} to {} webhook(s)",
        published.event_id, published.deliveries
    );

    let delivered = tokio::time::timeout(DELIVERY_DEADLINE, receiver.delivered())
        .await
        .context("no delivery arrived in time")??;
    let signature = created.secret.sign(
        &delivered.webhook_id,
        delivered.webhook_timestamp,
        delivered.body.as_bytes(),
    );
    // During a secret rotation the header carries one signature per secret.
    let verified = delivered
        .webhook_signature
        .split(' ')
        .any(|candidate| candidate == signature);
    anyhow::ensure!(
        verified,
        "webhook-signature {:?} is not the webhook secret's",
        delivered.webhook_signature
    );
    anyhow::ensure!(
        delivered.webhook_id == published.event_id.as_str(),
        "received event {}, published {}",
        delivered.webhook_id,
        published.event_id
    );
    println!(
        "delivered {} to the receiver, webhook-signature verified: {}",
        delivered.webhook_id, delivered.body
    );

    stop.send(true)?;
    running.await?;
    Ok(())
}
