//! The `ticketd` binary: server and CLI.

/// mimalloc gives memory back as connections come and go; with glibc's allocator a process
/// holding a thousand live connections kept about 400 KB of freed memory per connection.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
