//! The command-line tools beside the server: users, projections, seed, audit, replay, reports.
//! Each works on the pool `app` opens and calls services, never handlers.

pub mod audit;
pub mod privacy;
pub mod progress;
pub mod replay;
pub mod report;
pub mod seed;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use clap::Subcommand;
use sqlx::PgPool;

use crate::service::error::any::Result;

/// The commands that work on an open database (`serve`, `migrate` and `openapi` are `app`'s).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCmd,
    },
    /// Inspect and rebuild projections.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCmd,
    },
    /// Generate realistic tickets through the event log.
    Seed {
        /// How many tickets.
        #[arg(long, default_value_t = 1000)]
        tickets: u64,
        /// Write the personal fields in plaintext, as events were written before encryption
        /// (to measure what sealing costs, or to try the upcaster and erasure of old data).
        #[arg(long)]
        plaintext: bool,
    },
    /// Verify the tamper-evident log and record seals.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCmd,
    },
    /// Print an aggregate's events (who, when, what changed) and its final state.
    Replay {
        #[command(subcommand)]
        command: replay::ReplayCmd,
    },
    /// Reports from the read models: dashboard, analytics, tickets.
    Report {
        #[command(subcommand)]
        command: report::ReportCmd,
    },
    /// Erase or export a person's personal data.
    Privacy {
        #[command(subcommand)]
        command: privacy::PrivacyCmd,
    },
}

impl Command {
    /// Whether the command only reads (then it needs neither migrations nor a large pool).
    pub fn read_only(&self) -> bool {
        matches!(self, Command::Replay { .. })
    }
}

/// `ticketd user ...`
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, env = "TICKETD_NEW_USER_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long, default_value = "")]
        full_name: String,
        #[arg(long, default_value = "requester")]
        role: String,
    },
}

/// `ticketd projections ...`
#[derive(Debug, Subcommand)]
pub enum ProjectionsCmd {
    /// Position, lag and leader of every projection.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild a projection from the start of the log and swap it in.
    Rebuild { name: String },
    /// Let a projection stopped by an event it could not apply run again.
    Resume { name: String },
}

/// Runs a command on `pool`.
pub async fn run(pool: PgPool, command: Command) -> Result<()> {
    match command {
        Command::User {
            command:
                UserCmd::Create {
                    email,
                    password,
                    full_name,
                    role,
                },
        } => create_user(&pool, email, password, full_name, role).await,
        Command::Projections { command } => projections_cmd(pool, command).await,
        Command::Seed { tickets, plaintext } => seed::seed(&pool, tickets, !plaintext).await,
        Command::Audit { command } => audit::cli(&pool, command).await,
        Command::Replay { command } => replay::cli(&pool, command).await,
        Command::Report { command } => report::run(&pool, command).await,
        Command::Privacy { .. } => {
            Err("`privacy` needs the whole configuration (run through `app::run`)".into())
        }
    }
}

async fn create_user(
    pool: &PgPool,
    email: String,
    password: String,
    full_name: String,
    role: String,
) -> Result<()> {
    let role =
        aggregates::Role::parse(&role).ok_or("role must be requester, agent, manager or admin")?;
    let mut v = crate::service::error::Validator::default();
    let name = if full_name.is_empty() {
        email.clone()
    } else {
        full_name
    };
    crate::service::users::validate_new_user(&mut v, &email, &password, &name);
    v.finish().map_err(|e| match e {
        // The messages people read, not the Rust structure around them.
        crate::service::error::Error::Validation(errors) => {
            let msgs: Vec<String> = errors.into_iter().map(|f| f.msg).collect();
            msgs.join("; ")
        }
        other => other.to_string(),
    })?;
    let hash = crate::service::auth::hash_password(password)
        .await
        .map_err(|e| e.to_string())?;
    let user = crate::service::users::insert(pool, &email, &name, &hash, role)
        .await
        .map_err(|e| e.to_string())?;
    out(&format!(
        "created user {} ({}) with role {}",
        user.id, user.email, user.role
    ));
    Ok(())
}

async fn projections_cmd(pool: PgPool, command: ProjectionsCmd) -> Result<()> {
    match command {
        ProjectionsCmd::Status { json } => {
            for p in crate::service::all_projections(&pool) {
                projections::runtime::ensure_checkpoint(&pool, p.name()).await?;
            }
            let reports = projections::runtime::report(&pool).await?;
            if json {
                out(&serde_json::to_string_pretty(&reports)?);
            } else {
                out(&format!(
                    "{:<24} {:<22} {:>10} {:>10} {:<9} leader",
                    "projection", "checkpoint", "lag_events", "lag_s", "status"
                ));
                for r in reports {
                    out(&format!(
                        "{:<24} {:<22} {:>10} {:>10.3} {:<9} {}{}",
                        r.name,
                        r.checkpoint,
                        r.lag_events,
                        r.lag_seconds,
                        r.status,
                        r.leader.unwrap_or_else(|| "none".into()),
                        r.error.map(|e| format!("  error: {e}")).unwrap_or_default()
                    ));
                }
            }
            Ok(())
        }
        ProjectionsCmd::Resume { name } => {
            if projections::runtime::resume(&pool, &name).await? {
                out(&format!("{name}: running"));
                Ok(())
            } else {
                Err(format!("no projection named {name}").into())
            }
        }
        ProjectionsCmd::Rebuild { name } => {
            let projection = crate::service::all_projections(&pool)
                .into_iter()
                .find(|p| p.name() == name)
                .ok_or_else(|| format!("no projection named {name}"))?;
            projections::runtime::ensure_checkpoint(&pool, projection.name()).await?;
            let folded = Arc::new(AtomicU64::new(0));
            let (progress, ticker) = rebuild_progress(&pool, &name, folded.clone()).await?;
            let result =
                projections::rebuild::rebuild_exclusive(&pool, projection.as_ref(), 5000, &folded)
                    .await;
            ticker.abort();
            let report =
                result?.ok_or_else(|| format!("a rebuild of {name} is already running"))?;
            progress.finish(report.checkpoint.position.max(0) as u64);
            out(&format!(
                "rebuilt {name}: {} events in {:.2}s ({:.0} events/s), checkpoint {}",
                report.events,
                report.seconds,
                report.events as f64 / report.seconds.max(1e-9),
                report.checkpoint
            ));
            Ok(())
        }
    }
}

/// Shows a rebuild's progress (its shadow checkpoint's log position against the log's end, as
/// `/admin/projections` does, or the events its first pass `folded` when that is further)
/// until the returned task is aborted.
async fn rebuild_progress(
    pool: &PgPool,
    name: &str,
    folded: Arc<AtomicU64>,
) -> Result<(Arc<progress::Progress>, tokio::task::JoinHandle<()>)> {
    let (head,): (Option<i64>,) = sqlx::query_as("select max(global_position) from events")
        .fetch_one(pool)
        .await?;
    let head = head.unwrap_or(0).max(0) as u64;
    let progress = Arc::new(progress::Progress::new(
        &format!("rebuild {name}"),
        "events",
        Some(head),
    ));
    let (pool, shadow, shown) = (pool.clone(), format!("{name}__rebuild"), progress.clone());
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            if let Ok(at) = projections::runtime::checkpoint_of(&pool, &shadow).await {
                let done = (at.position.max(0) as u64)
                    .max(folded.load(Ordering::Relaxed))
                    .min(head);
                shown.set(done.max(shown.done()));
            }
        }
    });
    Ok((progress, ticker))
}

/// Writes a line of command output to stdout.
pub fn out(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
}
