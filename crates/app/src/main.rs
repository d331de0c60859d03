//! `okaya-webhooks`: the binary. Parsing, configuration and dispatch only;
//! the wiring is in `startup`.

use std::process::ExitCode;

use clap::Parser;
use okaya_webhooks::cli::{Cli, Command, ConfigCommand, ConfigFormat, ServeArgs};
use okaya_webhooks::config::Settings;
use okaya_webhooks::{admin, startup, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log.format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
            Command::Serve(args) => serve(settings, args).await,
            Command::Migrate => match startup::Services::connect(&settings) {
                Ok(services) => {
                    services.close().await;
                    tracing::info!("migrations applied");
                    Ok(())
                }
                Err(err) => Err(err),
            },
            Command::Admin(command) => admin::run(&settings, command).await,
            Command::Config(ConfigCommand::Check { format }) => print_config(&settings, format),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings, args: ServeArgs) -> anyhow::Result<()> {
    let mut app = startup::Application::build(settings, args.role).await?;
    if let Some(demo) = app.take_demo() {
        admin::print_demo(&demo, app.port());
    }
    app.run_until_stopped().await?;
    Ok(())
}

/// `config check`: the settings loaded, so valid; printed with secrets masked.
fn print_config(settings: &Settings, format: ConfigFormat) -> anyhow::Result<()> {
    let effective = settings.effective();
    match format {
        ConfigFormat::Toml => print!("{}", effective.to_toml()),
        ConfigFormat::Json => println!("{}", serde_json::to_string_pretty(&effective)?),
    }
    Ok(())
}
