//! Tamper evidence for the event log: `ticketd audit verify` and `ticketd audit seal`.
//!
//! **The chain.** A trigger (`events_chain`, first migration) gives every event
//! `hash = sha256(prev_hash || input)`, where `prev_hash` is the hash of the stream's previous
//! event (32 zero bytes for sequence 1) and `input` is the length-prefixed stored form of the
//! event: `len:aggregate_type|len:aggregate_id|sequence|len:event_type|len:event_version|`
//! `len:payload::text|len:metadata::text|recorded_at in epoch microseconds`. [`verify`]
//! recomputes every hash here, in Rust, from the stored columns, and checks that sequences run
//! 1..n without gaps and that each `prev_hash` is the previous event's `hash`.
//!
//! **Seals.** The chain cannot see an event removed from the end of a stream, nor a stream
//! removed whole. A seal covers the events at or below a log position `(transaction_id,
//! global_position)`: the newest committed event when the seal is taken, minus the events of
//! the transactions below it that were still running then (`excluded_txids`; xids belong to
//! the whole cluster, so another database's long transaction must not hold a seal back). No
//! event can join that set later. The seal records, per stream, its head as of that position:
//! the event with the highest sequence, and its hash. Only heads that changed since the
//! previous seal are stored (`audit_seal_heads`). The seal's `root` binds it all:
//! `root = sha256("ticketd-seal-v1|txid|position|excluded,txids|streams|events|" || sorted leaves)` with
//! `leaf = sha256("len:aggregate_type|len:aggregate_id|head_sequence|" || head_hash)`; it is
//! printed as JSON so it can be kept outside the database (`verify --seal FILE`).
//!
//! **Reading.** One pass over the log in primary-key order `(aggregate_type, aggregate_id,
//! sequence)`, keyset pages of [`PAGE`] rows, each page its own read-only statement: no
//! transaction, no xid, nothing that pauses the projection tailers. In that order a stream is
//! contiguous, so only the current stream's state is kept; stored seal heads are fetched for
//! the same key range as each page, so the comparison never depends on how the database
//! collates text. The key space is cut at sampled stream keys into one range per job, read
//! on parallel connections (the database's work is most of the cost) and merged in order.

mod hash;
mod heads;
mod read;
mod report;
mod scan;
mod seal;
mod seals;
mod verify;

use sqlx::PgPool;

pub use hash::{event_hash, seal_leaf, seal_root, LogPosition};
pub use report::{Problem, ProblemKind, Report};
pub use seal::seal;
pub use seals::SealRecord;
pub use verify::verify;

use crate::service::error::any::Result;

/// Rows per keyset page.
pub const PAGE: i64 = 10_000;
/// The name of the seal format (stored with each seal and in its JSON).
pub const ALGORITHM: &str = "ticketd-seal-v1";
/// How many problems a report lists (all are counted).
const MAX_LISTED: usize = 100;
/// The advisory lock that serialises `audit seal` runs.
const SEAL_LOCK: i64 = 0x7469_636b_6574_6401;
/// The previous hash of every stream's first event.
const GENESIS: [u8; 32] = [0; 32];

/// `ticketd audit ...`
#[derive(Debug, clap::Subcommand)]
pub enum AuditCmd {
    /// Recompute every hash of the log, check every stored seal (and, with `--seal`, a seal
    /// kept elsewhere); exits non-zero and names the first broken link if anything is wrong.
    Verify {
        /// A seal's JSON as printed by `audit seal`, kept outside the database.
        #[arg(long, value_name = "FILE")]
        seal: Option<std::path::PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Verify the log, then record a seal over every stream's head and print it as JSON.
    Seal {
        #[command(flatten)]
        read: ReadArgs,
    },
}

/// How the log is read.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ReadArgs {
    /// Parallel database connections (default: one per CPU, at least 2).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Rows per keyset page (tests use small pages).
    #[arg(long, hide = true, default_value_t = PAGE)]
    pub page_size: i64,
}

impl Default for ReadArgs {
    fn default() -> Self {
        ReadArgs {
            jobs: None,
            page_size: PAGE,
        }
    }
}

impl ReadArgs {
    fn jobs(&self) -> usize {
        self.jobs
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
                    .clamp(2, 8)
            })
            .max(1)
    }

    fn page_size(&self) -> i64 {
        self.page_size.max(1)
    }
}

/// Runs `ticketd audit ...`.
pub async fn cli(pool: &PgPool, command: AuditCmd) -> Result<()> {
    match command {
        AuditCmd::Verify { seal, json, read } => {
            let external = match seal {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                    let record: SealRecord = serde_json::from_str(&text)
                        .map_err(|e| format!("{} is not a seal: {e}", path.display()))?;
                    Some(record)
                }
                None => None,
            };
            let report = verify(pool, external.as_ref(), read).await?;
            if json {
                crate::cli::out(&serde_json::to_string_pretty(&report)?);
            } else {
                crate::cli::out(&report.to_text());
            }
            if report.ok {
                Ok(())
            } else {
                Err(format!(
                    "the event log failed verification ({} problem{})",
                    report.problem_count,
                    if report.problem_count == 1 { "" } else { "s" }
                )
                .into())
            }
        }
        AuditCmd::Seal { read } => match seal(pool, read).await? {
            Ok(record) => {
                crate::cli::out(&serde_json::to_string_pretty(&record)?);
                Ok(())
            }
            Err(report) => {
                crate::cli::out(&report.to_text());
                Err("the event log failed verification; no seal was recorded".into())
            }
        },
    }
}
