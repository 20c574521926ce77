//! Process wiring: configuration, the database (embedded PostgreSQL when none is configured),
//! telemetry, building the services and serving them; and the command line's dispatch.

pub mod config;
pub mod db;
pub mod server;
pub mod startup;
pub mod telemetry;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::service::error::any::Result;
use config::Config;

/// ticketd — an event-sourced ticket desk.
#[derive(Debug, Parser)]
#[command(name = "ticketd", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Cmd,
}

impl Cli {
    /// The command line and the environment, an empty variable counting as unset.
    pub fn from_env() -> Self {
        let matches = config::ignore_empty_env(Cli::command()).get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Serve the API, the SPA and the projection workers.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    #[command(flatten)]
    Tool(crate::cli::Command),
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let config = cli.config;
    match cli.command {
        Cmd::Serve => startup::serve(config).await,
        Cmd::Migrate => {
            startup::open_database(&config).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Cmd::Openapi => {
            let doc = crate::http::openapi();
            crate::cli::out(&serde_json::to_string_pretty(&doc)?);
            Ok(())
        }
        Cmd::Tool(command) => {
            let pool = if command.read_only() {
                startup::connect_read_only(&config).await?
            } else {
                startup::open_database(&config).await?
            };
            startup::install_keyring(&config, &pool).await?;
            if let crate::cli::Command::Privacy { command } = command {
                // Erasure deletes files too: it needs the configured attachment store.
                let state = startup::build_state(config, pool, false).await?;
                return crate::cli::privacy::run(&state, command).await;
            }
            crate::cli::run(pool, command).await
        }
    }
}
