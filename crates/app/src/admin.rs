//! `okaya-webhooks admin …`: the tenancy use cases straight on the database,
//! each printing one JSON object. The arguments are read as the admin API
//! reads its requests (name, then id, then organization), and an error says
//! what the admin API would say; a fault of ours shows its detail.

use serde_json::{json, Value};
use webhooks_adapters_http::{operational_events, ApiError, OperatorEndpointView, RequestError};
use webhooks_domain::{
    ApiKeyId, DemoTenant, DisplayName, DomainError, GroupId, OrganizationId, Resource, WebhookUrl,
};

use crate::cli::AdminCommand;
use crate::config::Settings;
use crate::startup::Services;

pub async fn run(settings: &Settings, command: AdminCommand) -> anyhow::Result<()> {
    let services = Services::connect(settings)?;
    let output = run_command(&services, command).await;
    // Every connection closed before the process exits.
    services.close().await;
    println!("{}", output?);
    Ok(())
}

async fn run_command(services: &Services, command: AdminCommand) -> anyhow::Result<Value> {
    run_checked(services, command)
        .await
        .map_err(|err| match err {
            ApiError::Domain(DomainError::Unexpected(_)) => anyhow::anyhow!("{err}"),
            refused => anyhow::anyhow!("{}", refused.client_message()),
        })
}

async fn run_checked(services: &Services, command: AdminCommand) -> Result<Value, ApiError> {
    let tenancy = &services.tenancy;
    let operators = &services.operators;
    Ok(match command {
        AdminCommand::CreateOrg { name } => {
            let org = tenancy.create_organization(display_name(&name)?).await?;
            json!({ "id": org.id.as_str(), "name": org.name })
        }
        AdminCommand::CreateGroup { org, name, id } => {
            let name = display_name(&name)?;
            let id = id
                .map(|raw| GroupId::new(raw).map_err(|_| RequestError::InvalidGroupId))
                .transpose()?;
            let group = tenancy.create_group(&organization(&org)?, name, id).await?;
            json!({ "id": group.id.get(), "name": group.name })
        }
        AdminCommand::CreateKey { org } => {
            let issued = tenancy.create_api_key(&organization(&org)?).await?;
            json!({ "id": issued.key.id.as_str(), "key": issued.secret.expose() })
        }
        AdminCommand::RevokeKey { id } => {
            let key = ApiKeyId::parse(&id).ok_or(DomainError::NotFound(Resource::ApiKey))?;
            tenancy.revoke_api_key(&key).await?;
            json!({ "id": id, "revoked": true })
        }
        AdminCommand::SetOperatorEndpoint { org, url, events } => {
            let url = WebhookUrl::new(&url).map_err(|_| RequestError::InvalidUrl)?;
            let events: Option<Vec<String>> =
                events.map(|list| list.split(',').map(str::to_owned).collect());
            let events = operational_events(events.as_deref())?;
            let set = operators.set(&organization(&org)?, url, events).await?;
            let mut view = OperatorEndpointView::from(&set.endpoint);
            view.secret = Some(set.secret.expose());
            json!(view)
        }
        AdminCommand::ShowOperatorEndpoint { org } => {
            let endpoint = operators.find(&organization(&org)?).await?;
            json!(OperatorEndpointView::from(&endpoint))
        }
        AdminCommand::RemoveOperatorEndpoint { org } => {
            operators.remove(&organization(&org)?).await?;
            json!({ "org": org, "removed": true })
        }
    })
}

/// `--org`: one of the wrong shape names no organization.
fn organization(raw: &str) -> Result<OrganizationId, DomainError> {
    OrganizationId::parse(raw).ok_or(DomainError::NotFound(Resource::Organization))
}

fn display_name(raw: &str) -> Result<DisplayName, RequestError> {
    DisplayName::new(raw).map_err(|_| RequestError::InvalidName)
}

/// Printed once, on the first start on an empty database, to standard output
/// (never to the logs): enough to try the seed's examples at once.
pub fn print_demo(demo: &DemoTenant, port: u16) {
    let key = demo.api_key.secret.expose();
    let group = demo.group.id;
    println!(
        "\nA demo tenant was created (shown once):\n  organization  {org}\n  group         {group}\n  API key       {key}\n\nTry it:\n  curl --location \"http://127.0.0.1:{port}/webhooks/{group}\" --header \"x-api-key: {key}\"\n\nOr open the portal, where group {group} is filled in, and sign in with this key:\n  http://127.0.0.1:{port}/portal/#/signin?group={group}\n",
        org = demo.organization.id,
    );
}
