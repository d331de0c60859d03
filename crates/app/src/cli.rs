//! The command line: `serve` (the default), `migrate`, `admin …` and
//! `config check`. Every command's `--help` ends with an example.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Okaya webhooks: register HTTP endpoints per group and deliver events to
/// them, signed, retried and logged.
#[derive(Debug, Parser)]
#[command(
    name = "okaya-webhooks",
    version,
    about = "Okaya webhooks: register HTTP endpoints per group and deliver events to them, signed, retried and logged.",
    long_about = None,
    after_help = "Examples:\n  okaya-webhooks\n  okaya-webhooks --config prod.toml serve --role api\n  okaya-webhooks config check --format json\n\nEvery setting is also an environment variable WEBHOOKS__SECTION__KEY, e.g. WEBHOOKS__SERVER__BIND=0.0.0.0:8080."
)]
pub struct Cli {
    /// A TOML configuration file; environment variables WEBHOOKS__SECTION__KEY override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API and/or run the delivery workers (the default command).
    #[command(
        after_help = "Examples:\n  okaya-webhooks serve\n  okaya-webhooks serve --role worker --config prod.toml"
    )]
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    #[command(after_help = "Example:\n  okaya-webhooks --config prod.toml migrate")]
    Migrate,
    /// Manage organizations, groups and API keys directly in the database.
    #[command(
        subcommand,
        after_help = "Examples:\n  okaya-webhooks admin create-org --name Acme\n  okaya-webhooks admin create-key --org org_01j…"
    )]
    Admin(AdminCommand),
    /// Inspect the configuration.
    #[command(
        subcommand,
        after_help = "Example:\n  okaya-webhooks --config prod.toml config check"
    )]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration, secrets masked.
    ///
    /// The settings every other command would run with: built-in defaults,
    /// then the --config file, then WEBHOOKS__SECTION__KEY variables. Tokens,
    /// the encryption key and database passwords print as ****. Nothing is
    /// opened or created. A bad setting prints one line naming it and exits
    /// with code 2.
    #[command(
        after_help = "Examples:\n  okaya-webhooks config check\n  WEBHOOKS__LOG__FORMAT=json okaya-webhooks --config prod.toml config check --format json"
    )]
    Check {
        /// How to print it.
        #[arg(long, value_enum, default_value_t = ConfigFormat::Toml)]
        format: ConfigFormat,
    },
}

/// The output of `config check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfigFormat {
    /// A TOML file that `--config` reads back (masked values aside).
    Toml,
    /// One JSON object, a member per section.
    Json,
}

#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// What this process does.
    #[arg(long, value_enum, default_value_t = Role::All)]
    pub role: Role,
}

/// The parts of the service a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Role {
    /// The API and the delivery workers.
    #[default]
    All,
    /// Only the HTTP API.
    Api,
    /// Only the delivery workers.
    Worker,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an organization; prints {"id","name"}.
    #[command(after_help = "Example:\n  okaya-webhooks admin create-org --name Acme")]
    CreateOrg {
        #[arg(long)]
        name: String,
    },
    /// Create a group of an organization; prints {"id","name"}.
    #[command(
        after_help = "Example:\n  okaya-webhooks admin create-group --org org_01j… --name Production --id 123456"
    )]
    CreateGroup {
        /// The organization's id (org_…).
        #[arg(long)]
        org: String,
        #[arg(long)]
        name: String,
        /// The groupID to use; chosen at random when absent.
        #[arg(long)]
        id: Option<i64>,
    },
    /// Create an API key of an organization; prints {"id","key"} (the key is shown only here).
    #[command(after_help = "Example:\n  okaya-webhooks admin create-key --org org_01j…")]
    CreateKey {
        #[arg(long)]
        org: String,
    },
    /// Revoke an API key at once; prints {"id","revoked"}.
    #[command(after_help = "Example:\n  okaya-webhooks admin revoke-key --id key_01j…")]
    RevokeKey {
        #[arg(long)]
        id: String,
    },
    /// Point an organization's operator endpoint at a URL (made with its
    /// operations group on first use); prints {"groupID","webhookID","url","events","secret"}.
    #[command(
        after_help = "Example:\n  okaya-webhooks admin set-operator-endpoint --org org_01j… --url https://ops.example/webhooks --events webhook.disabled,delivery.failed"
    )]
    SetOperatorEndpoint {
        #[arg(long)]
        org: String,
        #[arg(long)]
        url: String,
        /// Operational event types, comma-separated; all four when absent.
        #[arg(long)]
        events: Option<String>,
    },
    /// Show an organization's operator endpoint; prints {"groupID","webhookID","url","events"}.
    #[command(
        after_help = "Example:\n  okaya-webhooks admin show-operator-endpoint --org org_01j…"
    )]
    ShowOperatorEndpoint {
        #[arg(long)]
        org: String,
    },
    /// Remove an organization's operator endpoint (its operations group
    /// stays); prints {"org","removed"}.
    #[command(
        after_help = "Example:\n  okaya-webhooks admin remove-operator-endpoint --org org_01j…"
    )]
    RemoveOperatorEndpoint {
        #[arg(long)]
        org: String,
    },
}
