//! The `ticketd` binary: server and CLI.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _ = dotenvy::dotenv();
    ticketd::app::telemetry::init();
    let cli = ticketd::app::Cli::from_env();
    match ticketd::app::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "ticketd failed");
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
