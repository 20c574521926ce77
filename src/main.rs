//! The `ticketd` binary: server and CLI.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _ = dotenvy::dotenv();
    ticketd::telemetry::init();
    let cli = ticketd::cli::Cli::parse();
    match ticketd::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "ticketd failed");
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
