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

use std::collections::HashMap;
use std::io::Write as _;
use std::ops::Bound;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

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

/// A position in the log, in the readers' order `(transaction_id, global_position)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogPosition {
    pub txid: u64,
    pub position: i64,
}

/// A seal as printed by `audit seal` and read back by `audit verify --seal FILE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealRecord {
    /// The seal's id in `audit_seals`.
    pub id: i64,
    /// How `root` is computed ([`ALGORITHM`]).
    pub algorithm: String,
    /// The last covered event's transaction id (xid8, as text).
    pub upto_txid: String,
    /// The last covered event's global position.
    pub upto_position: i64,
    /// Transactions below `upto_txid` that were still running: their events are not covered.
    #[serde(default)]
    pub excluded_txids: Vec<String>,
    /// Streams with at least one covered event.
    pub streams: i64,
    /// Covered events.
    pub events: i64,
    /// The digest over every stream's head, hex.
    pub root: String,
    /// When the seal was recorded.
    pub sealed_at: DateTime<Utc>,
}

impl SealRecord {
    fn excluded(&self) -> Result<Vec<u64>> {
        let mut out = Vec::with_capacity(self.excluded_txids.len());
        for x in &self.excluded_txids {
            out.push(x.parse().map_err(|_| {
                format!(
                    "seal {}: excluded_txids holds {x:?}, not a transaction id",
                    self.id
                )
            })?);
        }
        out.sort_unstable();
        Ok(out)
    }

    fn upto(&self) -> Result<LogPosition> {
        Ok(LogPosition {
            txid: self
                .upto_txid
                .parse()
                .map_err(|_| format!("seal {}: upto_txid is not a transaction id", self.id))?,
            position: self.upto_position,
        })
    }
}

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A stream's sequences do not run 1, 2, 3... (an event was removed or renumbered).
    SequenceGap,
    /// An event's `prev_hash` is not its predecessor's `hash`.
    PrevHashMismatch,
    /// An event's content does not hash to its stored `hash` (it was edited).
    HashMismatch,
    /// `prev_hash` or `hash` is not a sha256 digest.
    MalformedHash,
    /// A sealed stream's head differs from the seal (truncated, extended below the seal
    /// position, or rewritten).
    SealHeadMismatch,
    /// A sealed stream has no events at or below the seal's position any more.
    SealStreamMissing,
    /// A stream has events at or below a seal's position that the seal does not know.
    SealUnexpectedStream,
    /// The number of streams or events covered by a seal changed.
    SealCountMismatch,
    /// The log as of a seal's position no longer hashes to the seal's root.
    SealRootMismatch,
    /// The stored seal differs from the copy kept outside the database.
    SealAltered,
    /// The seal kept outside the database is not in the database.
    SealUnknown,
    /// Seals are not in log order (their positions were edited).
    SealOrder,
}

/// One finding of `verify`.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_position: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal_id: Option<i64>,
    /// What is wrong, in words.
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(seal) = self.seal_id {
            write!(f, "seal {seal}: ")?;
        }
        if let (Some(t), Some(id)) = (&self.aggregate_type, &self.aggregate_id) {
            write!(f, "{t}/{id}")?;
            if let Some(seq) = self.sequence {
                write!(f, " sequence {seq}")?;
            }
            if let Some(pos) = self.global_position {
                write!(f, " (global position {pos})")?;
            }
            write!(f, ": ")?;
        }
        let kind = serde_json::to_value(self.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        write!(f, "{kind}: {}", self.detail)
    }
}

/// The outcome of `verify`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// True when nothing is wrong.
    pub ok: bool,
    /// Events read and re-hashed.
    pub events: u64,
    /// Streams read.
    pub streams: u64,
    /// Stored seals checked.
    pub seals_checked: usize,
    /// The id of the external seal checked, if one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_seal: Option<i64>,
    pub seconds: f64,
    pub events_per_second: f64,
    /// Every problem found (only the first few are listed).
    pub problem_count: u64,
    /// The first broken link, in log-scan order.
    pub first_problem: Option<Problem>,
    pub problems: Vec<Problem>,
}

impl Report {
    /// The report for people.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let summary = format!(
            "{} events in {} streams, {} seal{} checked{} in {:.2}s ({:.0} events/s)",
            self.events,
            self.streams,
            self.seals_checked,
            if self.seals_checked == 1 { "" } else { "s" },
            self.external_seal
                .map(|id| format!(" plus external seal {id}"))
                .unwrap_or_default(),
            self.seconds,
            self.events_per_second
        );
        match &self.first_problem {
            None => s.push_str(&format!("audit verify: OK: {summary}")),
            Some(first) => {
                s.push_str(&format!(
                    "audit verify: BROKEN: first broken link: {first}\n"
                ));
                s.push_str(&format!(
                    "{} problem{} in total ({summary}):",
                    self.problem_count,
                    if self.problem_count == 1 { "" } else { "s" }
                ));
                for p in &self.problems {
                    s.push_str(&format!("\n  - {p}"));
                }
                if self.problem_count as usize > self.problems.len() {
                    s.push_str(&format!(
                        "\n  ... and {} more",
                        self.problem_count as usize - self.problems.len()
                    ));
                }
            }
        }
        s
    }
}

/// The hash the chain trigger gives an event, recomputed from its stored columns.
/// `buf` is scratch space reused between calls.
#[expect(clippy::too_many_arguments, reason = "one argument per hashed column")]
pub fn event_hash(
    buf: &mut Vec<u8>,
    prev_hash: &[u8],
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
    event_type: &str,
    event_version: &str,
    payload: &str,
    metadata: &str,
    recorded_at_micros: i64,
) -> [u8; 32] {
    buf.clear();
    buf.extend_from_slice(prev_hash);
    // Writing to a Vec cannot fail.
    let _ = write!(
        buf,
        "{}:{aggregate_type}|{}:{aggregate_id}|{sequence}|{}:{event_type}|{}:{event_version}|{}:",
        aggregate_type.len(),
        aggregate_id.len(),
        event_type.len(),
        event_version.len(),
        payload.len()
    );
    buf.extend_from_slice(payload.as_bytes());
    let _ = write!(buf, "|{}:", metadata.len());
    buf.extend_from_slice(metadata.as_bytes());
    let _ = write!(buf, "|{recorded_at_micros}");
    Sha256::digest(&buf[..]).into()
}

/// A seal's leaf for one stream head.
pub fn seal_leaf(aggregate_type: &str, aggregate_id: &str, sequence: i64, hash: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(format!(
        "{}:{aggregate_type}|{}:{aggregate_id}|{sequence}|",
        aggregate_type.len(),
        aggregate_id.len()
    ));
    h.update(hash);
    h.finalize().into()
}

/// A seal's root over its leaves (sorted here); `excluded` is sorted.
pub fn seal_root(
    upto: LogPosition,
    excluded: &[u64],
    streams: u64,
    events: u64,
    leaves: &mut [[u8; 32]],
) -> [u8; 32] {
    leaves.sort_unstable();
    let excluded: Vec<String> = excluded.iter().map(u64::to_string).collect();
    let mut h = Sha256::new();
    h.update(format!(
        "{ALGORITHM}|{}|{}|{}|{streams}|{events}|",
        upto.txid,
        upto.position,
        excluded.join(",")
    ));
    for leaf in leaves.iter() {
        h.update(leaf);
    }
    h.finalize().into()
}

/// What a seal target is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A seal stored in the database: compare every stream's head with its stored heads.
    Stored,
    /// An external seal that cannot lean on the stored heads: compare counts and root only.
    External,
    /// The seal being recorded: collect the heads that changed since the last stored seal.
    New,
}

/// A seal the scan computes heads for.
#[derive(Clone)]
struct Target {
    id: i64,
    upto: LogPosition,
    /// Transactions whose events the seal does not cover (sorted).
    excluded: Vec<u64>,
    role: Role,
    expected_streams: u64,
    expected_events: u64,
    expected_root: [u8; 32],
    streams: u64,
    events: u64,
    leaves: Vec<[u8; 32]>,
}

/// A head that changed since the previous seal (for the seal being recorded).
struct NewHead {
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    hash: Vec<u8>,
}

/// A stream key: (aggregate_type, aggregate_id).
type Key = (String, String);

/// A part of the key space, in the database's order: streams from `start` (inclusive) up to
/// `end` (exclusive).
#[derive(Debug, Clone, Default)]
struct Range {
    start: Option<Key>,
    end: Option<Key>,
}

/// A stream whose events have all been read, waiting for its stored seal heads.
struct DoneStream {
    key: (String, String),
    /// Per-target heads, as (first target index in `order`, sequence, hash): the head of
    /// target `order[j]` is the last entry whose index is `<= j`.
    heads: Vec<(usize, i64, [u8; 32])>,
}

/// Stored heads of one stream: (seal id, sequence, hash), by seal id.
type StoredHeads = Vec<(i64, i64, Vec<u8>)>;

/// The state of one pass over the log.
struct Scan {
    targets: Vec<Target>,
    /// Target indexes ordered by position.
    order: Vec<usize>,
    /// Whether any target has stored heads to compare with.
    has_stored: bool,
    /// Per position in `order`: events that enter at that target (prefix sums give counts).
    entering: Vec<u64>,
    cur_type: String,
    cur_id: String,
    in_stream: bool,
    last_seq: i64,
    prev: [u8; 32],
    stack: Vec<(usize, i64, [u8; 32])>,
    pending: Vec<DoneStream>,
    /// Where the next comparison with stored heads starts.
    compared_upto: Bound<Key>,
    new_heads: Vec<NewHead>,
    buf: Vec<u8>,
    events: u64,
    streams: u64,
    problems: Vec<Problem>,
    problem_count: u64,
}

impl Scan {
    fn new(targets: Vec<Target>) -> Scan {
        let mut order: Vec<usize> = (0..targets.len()).collect();
        order.sort_by_key(|&i| (targets[i].upto, targets[i].id));
        let has_stored = targets.iter().any(|t| t.role == Role::Stored);
        Scan {
            entering: vec![0; targets.len()],
            targets,
            order,
            has_stored,
            cur_type: String::new(),
            cur_id: String::new(),
            in_stream: false,
            last_seq: 0,
            prev: GENESIS,
            stack: Vec::new(),
            pending: Vec::new(),
            compared_upto: Bound::Unbounded,
            new_heads: Vec::new(),
            buf: Vec::with_capacity(4096),
            events: 0,
            streams: 0,
            problems: Vec::new(),
            problem_count: 0,
        }
    }

    fn report(&mut self, p: Problem) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(p);
        }
    }

    fn event_problem(&mut self, kind: ProblemKind, seq: i64, pos: i64, detail: String) {
        let p = Problem {
            kind,
            aggregate_type: Some(self.cur_type.clone()),
            aggregate_id: Some(self.cur_id.clone()),
            sequence: Some(seq),
            global_position: Some(pos),
            seal_id: None,
            detail,
        };
        self.report(p);
    }

    /// Checks one event (rows arrive in primary-key order).
    fn event(&mut self, row: &PgRow) -> Result<()> {
        let aggregate_type: &str = row.try_get(0)?;
        let aggregate_id: &str = row.try_get(1)?;
        let seq: i64 = row.try_get(2)?;
        let event_type: &str = row.try_get(3)?;
        let event_version: &str = row.try_get(4)?;
        let payload: &str = row.try_get(5)?;
        let metadata: &str = row.try_get(6)?;
        let recorded_at: DateTime<Utc> = row.try_get(7)?;
        let pos: i64 = row.try_get(8)?;
        let txid: &str = row.try_get(9)?;
        let prev_hash: &[u8] = row.try_get(10)?;
        let hash: &[u8] = row.try_get(11)?;

        if !self.in_stream || aggregate_type != self.cur_type || aggregate_id != self.cur_id {
            self.finish_stream();
            self.cur_type.clear();
            self.cur_type.push_str(aggregate_type);
            self.cur_id.clear();
            self.cur_id.push_str(aggregate_id);
            self.in_stream = true;
            self.last_seq = 0;
            self.prev = GENESIS;
            self.streams += 1;
        }
        self.events += 1;

        let expected = self.last_seq + 1;
        if seq != expected {
            let detail = if self.last_seq == 0 {
                format!(
                    "the stream begins at sequence {seq}: sequence{} 1..{} {} missing",
                    if seq > 2 { "s" } else { "" },
                    seq - 1,
                    if seq > 2 { "are" } else { "is" }
                )
            } else {
                format!(
                    "sequence {seq} follows sequence {}: {} missing",
                    self.last_seq,
                    if seq == expected + 1 {
                        format!("sequence {expected} is")
                    } else {
                        format!("sequences {expected}..{} are", seq - 1)
                    }
                )
            };
            self.event_problem(ProblemKind::SequenceGap, seq, pos, detail);
        }
        let stored_hash: [u8; 32] = match (
            <[u8; 32]>::try_from(prev_hash),
            <[u8; 32]>::try_from(hash),
        ) {
            (Ok(prev), Ok(stored)) => {
                if seq == expected && prev != self.prev {
                    let detail = if seq <= 1 {
                        "prev_hash of the first event is not the genesis hash (32 zero bytes)"
                            .to_string()
                    } else {
                        format!(
                            "prev_hash does not match the hash of sequence {}: one of the two events was rewritten",
                            seq - 1
                        )
                    };
                    self.event_problem(ProblemKind::PrevHashMismatch, seq, pos, detail);
                }
                let recomputed = event_hash(
                    &mut self.buf,
                    &prev,
                    aggregate_type,
                    aggregate_id,
                    seq,
                    event_type,
                    event_version,
                    payload,
                    metadata,
                    recorded_at.timestamp_micros(),
                );
                if recomputed != stored {
                    self.event_problem(
                        ProblemKind::HashMismatch,
                        seq,
                        pos,
                        format!(
                            "the stored event ({event_type}) does not hash to its recorded hash: its payload, metadata, type or time was changed"
                        ),
                    );
                }
                stored
            }
            _ => {
                self.event_problem(
                    ProblemKind::MalformedHash,
                    seq,
                    pos,
                    "prev_hash or hash is not a 32-byte sha256 digest".into(),
                );
                GENESIS
            }
        };
        self.prev = stored_hash;
        self.last_seq = seq;

        if !self.targets.is_empty() {
            let txid: u64 = txid
                .parse()
                .map_err(|_| format!("unreadable transaction id {txid:?}"))?;
            let key = LogPosition {
                txid,
                position: pos,
            };
            let targets = &self.targets;
            let mut first = self.order.partition_point(|&i| targets[i].upto < key);
            // A transaction still running when a seal was taken joins only later seals.
            while first < self.order.len()
                && targets[self.order[first]]
                    .excluded
                    .binary_search(&txid)
                    .is_ok()
            {
                first += 1;
            }
            if first < self.order.len() {
                self.entering[first] += 1;
                while self.stack.last().is_some_and(|top| top.0 >= first) {
                    self.stack.pop();
                }
                self.stack.push((first, seq, stored_hash));
            }
        }
        Ok(())
    }

    /// Ends the current stream: its heads wait in `pending` for the stored-heads comparison.
    fn finish_stream(&mut self) {
        if !self.in_stream {
            return;
        }
        self.in_stream = false;
        if !self.stack.is_empty() {
            self.pending.push(DoneStream {
                key: (self.cur_type.clone(), self.cur_id.clone()),
                heads: std::mem::take(&mut self.stack),
            });
        }
    }

    /// Compares every pending stream with the stored heads of the key range they cover:
    /// after the previous comparison, up to and including the last pending stream (or, on the
    /// last call, up to the end of the scanned range).
    async fn flush(&mut self, pool: &PgPool, last: Option<&Range>) -> Result<()> {
        if self.targets.is_empty() {
            return Ok(());
        }
        let upper = match last {
            Some(range) => match &range.end {
                Some(end) => Bound::Excluded(end.clone()),
                None => Bound::Unbounded,
            },
            None => match self.pending.last() {
                Some(d) => Bound::Included(d.key.clone()),
                None => return Ok(()),
            },
        };
        let mut stored: HashMap<Key, StoredHeads> = HashMap::new();
        if self.has_stored {
            stored = stored_heads(pool, &self.compared_upto, &upper).await?;
        }
        let pending = std::mem::take(&mut self.pending);
        for done in pending {
            let rows = stored.remove(&done.key).unwrap_or_default();
            self.compare_stream(&done, &rows);
        }
        // Stored heads of streams that have no event at or below any seal any more.
        let mut missing: Vec<_> = stored.into_iter().collect();
        missing.sort_by(|a, b| a.0.cmp(&b.0));
        for ((t, id), rows) in missing {
            for j in 0..self.order.len() {
                let target = &self.targets[self.order[j]];
                if target.role != Role::Stored {
                    continue;
                }
                let Some(head) = rows.iter().rev().find(|r| r.0 <= target.id) else {
                    continue;
                };
                let p = Problem {
                    kind: ProblemKind::SealStreamMissing,
                    aggregate_type: Some(t.clone()),
                    aggregate_id: Some(id.clone()),
                    sequence: Some(head.1),
                    global_position: None,
                    seal_id: Some(target.id),
                    detail: format!(
                        "the seal recorded this stream with head sequence {}, but the log has no event of it at or below the seal's position: the stream was deleted",
                        head.1
                    ),
                };
                self.report(p);
            }
        }
        if let Bound::Included(upper) = upper {
            self.compared_upto = Bound::Excluded(upper);
        }
        Ok(())
    }

    /// Adds the findings of the scan of a later range.
    fn merge(&mut self, other: Scan) {
        self.events += other.events;
        self.streams += other.streams;
        for (a, b) in self.entering.iter_mut().zip(other.entering) {
            *a += b;
        }
        for (a, b) in self.targets.iter_mut().zip(other.targets) {
            a.streams += b.streams;
            a.leaves.extend(b.leaves);
        }
        self.new_heads.extend(other.new_heads);
        let unlisted = other.problem_count - other.problems.len() as u64;
        for p in other.problems {
            self.report(p);
        }
        self.problem_count += unlisted;
    }

    fn compare_stream(&mut self, done: &DoneStream, stored: &StoredHeads) {
        let (t, id) = &done.key;
        let mut k = 0;
        for j in 0..self.order.len() {
            while k + 1 < done.heads.len() && done.heads[k + 1].0 <= j {
                k += 1;
            }
            let computed = done.heads.get(k).filter(|h| h.0 <= j);
            let index = self.order[j];
            let target = &mut self.targets[index];
            if let Some(&(_, seq, hash)) = computed {
                target.streams += 1;
                target.leaves.push(seal_leaf(t, id, seq, &hash));
            }
            let problem = match target.role {
                Role::External => None,
                Role::New => {
                    let previous = stored.last();
                    if let Some(&(_, seq, hash)) = computed {
                        let same = previous.is_some_and(|p| p.1 == seq && p.2 == hash);
                        if !same {
                            self.new_heads.push(NewHead {
                                aggregate_type: t.clone(),
                                aggregate_id: id.clone(),
                                sequence: seq,
                                hash: hash.to_vec(),
                            });
                        }
                    }
                    None
                }
                Role::Stored => {
                    let sealed = stored.iter().rev().find(|r| r.0 <= target.id);
                    compare_head(target.id, computed.map(|c| (c.1, &c.2[..])), sealed)
                }
            };
            if let Some((kind, sequence, detail)) = problem {
                let seal_id = self.targets[index].id;
                self.report(Problem {
                    kind,
                    aggregate_type: Some(t.clone()),
                    aggregate_id: Some(id.clone()),
                    sequence: Some(sequence),
                    global_position: None,
                    seal_id: Some(seal_id),
                    detail,
                });
            }
        }
    }

    /// Compares the counts and roots of every seal once the whole log was read.
    fn finish_targets(&mut self) {
        let mut entered = 0;
        let mut findings = Vec::new();
        for j in 0..self.order.len() {
            entered += self.entering[j];
            let target = &mut self.targets[self.order[j]];
            target.events = entered;
            if target.role == Role::New {
                continue;
            }
            let root = seal_root(
                target.upto,
                &target.excluded,
                target.streams,
                target.events,
                &mut target.leaves,
            );
            if target.streams != target.expected_streams || target.events != target.expected_events
            {
                findings.push(Problem {
                    kind: ProblemKind::SealCountMismatch,
                    aggregate_type: None,
                    aggregate_id: None,
                    sequence: None,
                    global_position: None,
                    seal_id: Some(target.id),
                    detail: format!(
                        "the seal covers {} events in {} streams; the log now has {} events in {} streams at or below its position",
                        target.expected_events, target.expected_streams, target.events, target.streams
                    ),
                });
            }
            if root != target.expected_root {
                findings.push(Problem {
                    kind: ProblemKind::SealRootMismatch,
                    aggregate_type: None,
                    aggregate_id: None,
                    sequence: None,
                    global_position: None,
                    seal_id: Some(target.id),
                    detail: format!(
                        "the log as of the seal's position hashes to {}, the seal says {}",
                        hex::encode(root),
                        hex::encode(target.expected_root)
                    ),
                });
            }
        }
        for f in findings {
            self.report(f);
        }
    }
}

/// Compares a stream's head as of a seal with the head the seal recorded.
fn compare_head(
    seal_id: i64,
    computed: Option<(i64, &[u8])>,
    sealed: Option<&(i64, i64, Vec<u8>)>,
) -> Option<(ProblemKind, i64, String)> {
    match (computed, sealed) {
        (None, _) => None, // a stream without covered events left its stored rows unmatched
        (Some((seq, _)), None) => Some((
            ProblemKind::SealUnexpectedStream,
            seq,
            format!("the stream has events up to sequence {seq} at or below the position of seal {seal_id}, which does not know it: events were inserted"),
        )),
        (Some((seq, hash)), Some(&(_, sealed_seq, ref sealed_hash))) => {
            if seq < sealed_seq {
                Some((
                    ProblemKind::SealHeadMismatch,
                    sealed_seq,
                    format!("the seal recorded head sequence {sealed_seq}, but as of the seal's position the stream ends at sequence {seq}: the stream was truncated"),
                ))
            } else if seq > sealed_seq {
                Some((
                    ProblemKind::SealHeadMismatch,
                    seq,
                    format!("the seal recorded head sequence {sealed_seq}, but the stream has events up to sequence {seq} at or below the seal's position: events were inserted"),
                ))
            } else if hash != &sealed_hash[..] {
                Some((
                    ProblemKind::SealHeadMismatch,
                    seq,
                    format!("the hash of head sequence {seq} differs from the seal: the stream was rewritten"),
                ))
            } else {
                None
            }
        }
    }
}

/// A bind value of a generated query.
enum Arg<'a> {
    Text(&'a str),
    Int(i64),
}

/// A `where` clause under construction, with its binds numbered from `$first`.
struct Filter<'a> {
    first: usize,
    conditions: Vec<String>,
    args: Vec<Arg<'a>>,
}

impl<'a> Filter<'a> {
    fn new(first: usize) -> Self {
        Filter {
            first,
            conditions: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Binds a value and returns its placeholder.
    fn arg(&mut self, a: Arg<'a>) -> String {
        self.args.push(a);
        format!("${}", self.first + self.args.len() - 1)
    }

    fn push(&mut self, condition: String) {
        self.conditions.push(condition);
    }

    /// Limits the streams to those between two bounds, in a form whose both ends PostgreSQL's
    /// b-tree uses to start and stop (a row comparison alone stops the scan only on its
    /// first column).
    fn key_range(&mut self, lower: &'a Bound<Key>, upper: &'a Bound<Key>) {
        fn parts(b: &Bound<Key>, lower: bool) -> Option<(&Key, &'static str)> {
            match (b, lower) {
                (Bound::Unbounded, _) => None,
                (Bound::Included(k), true) => Some((k, ">=")),
                (Bound::Excluded(k), true) => Some((k, ">")),
                (Bound::Included(k), false) => Some((k, "<=")),
                (Bound::Excluded(k), false) => Some((k, "<")),
            }
        }
        match (parts(lower, true), parts(upper, false)) {
            (Some((lo, lo_op)), Some((hi, hi_op))) if lo.0 == hi.0 => {
                let t = self.arg(Arg::Text(&lo.0));
                let a = self.arg(Arg::Text(&lo.1));
                let b = self.arg(Arg::Text(&hi.1));
                self.push(format!(
                    "aggregate_type = {t} and aggregate_id {lo_op} {a} and aggregate_id {hi_op} {b}"
                ));
            }
            (lo, hi) => {
                for (bound, scalar) in [(lo, ">="), (hi, "<=")] {
                    if let Some((k, op)) = bound {
                        let t = self.arg(Arg::Text(&k.0));
                        let i = self.arg(Arg::Text(&k.1));
                        self.push(format!(
                            "aggregate_type {scalar} {t} and (aggregate_type, aggregate_id) {op} ({t}, {i})"
                        ));
                    }
                }
            }
        }
    }

    fn sql(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!("where {}", self.conditions.join(" and "))
        }
    }
}

/// Stored seal heads of the streams between `lower` and `upper`.
async fn stored_heads(
    pool: &PgPool,
    lower: &Bound<Key>,
    upper: &Bound<Key>,
) -> Result<HashMap<Key, StoredHeads>> {
    let mut filter = Filter::new(1);
    filter.key_range(lower, upper);
    let sql = format!(
        "select aggregate_type, aggregate_id, seal_id, head_sequence, head_hash
           from audit_seal_heads {}
          order by aggregate_type, aggregate_id, seal_id",
        filter.sql()
    );
    // Unnamed statements are planned with their values: a generic plan of these range
    // queries can be far slower.
    let mut query =
        sqlx::query_as::<_, (String, String, i64, i64, Vec<u8>)>(&sql).persistent(false);
    for a in filter.args {
        query = match a {
            Arg::Text(t) => query.bind(t),
            Arg::Int(i) => query.bind(i),
        };
    }
    let rows = query.fetch_all(pool).await?;
    let mut map: HashMap<Key, StoredHeads> = HashMap::new();
    for (t, id, seal, seq, hash) in rows {
        map.entry((t, id)).or_default().push((seal, seq, hash));
    }
    Ok(map)
}

async fn stored_seals(pool: &PgPool) -> Result<Vec<SealRecord>> {
    type SealRow = (
        i64,
        String,
        i64,
        Vec<String>,
        i64,
        i64,
        Vec<u8>,
        String,
        DateTime<Utc>,
    );
    let rows: Vec<SealRow> = sqlx::query_as(
        "select id, upto_txid::text, upto_position, excluded_txids::text[], streams, events,
                root, algorithm, sealed_at
           from audit_seals order by id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                upto_txid,
                upto_position,
                excluded_txids,
                streams,
                events,
                root,
                algorithm,
                sealed_at,
            )| {
                SealRecord {
                    id,
                    algorithm,
                    upto_txid,
                    upto_position,
                    excluded_txids,
                    streams,
                    events,
                    root: hex::encode(root),
                    sealed_at,
                }
            },
        )
        .collect())
}

fn target(record: &SealRecord, role: Role) -> Result<Target> {
    if record.algorithm != ALGORITHM {
        return Err(format!(
            "seal {} uses algorithm {:?}; this build knows {ALGORITHM:?}",
            record.id, record.algorithm
        )
        .into());
    }
    let root: [u8; 32] = hex::decode(&record.root)
        .ok()
        .and_then(|r| r.try_into().ok())
        .ok_or_else(|| format!("seal {}: root is not a sha256 digest", record.id))?;
    Ok(Target {
        id: record.id,
        upto: record.upto()?,
        excluded: record.excluded()?,
        role,
        expected_streams: record.streams.max(0) as u64,
        expected_events: record.events.max(0) as u64,
        expected_root: root,
        streams: 0,
        events: 0,
        leaves: Vec::new(),
    })
}

/// Cuts the key space into up to `jobs` ranges of similar size, at stream keys sampled from
/// the log. A poor sample only costs balance, never correctness.
async fn split(pool: &PgPool, jobs: usize) -> Result<Vec<Range>> {
    if jobs <= 1 {
        return Ok(vec![Range::default()]);
    }
    let (mut estimate,): (f32,) =
        sqlx::query_as("select reltuples from pg_class where oid = 'events'::regclass")
            .fetch_one(pool)
            .await?;
    if estimate < 0.0 {
        // Never analysed: count, up to a bound.
        let (n,): (i64,) =
            sqlx::query_as("select count(*) from (select 1 from events limit 100000) as e")
                .fetch_one(pool)
                .await?;
        estimate = if n < 100_000 { n as f32 } else { 10_000_000.0 };
    }
    // About 2,000 sampled rows.
    let percent = (2_000.0 * 100.0 / estimate.max(1.0)).clamp(0.001, 100.0);
    let keys: Vec<Key> = sqlx::query_as(
        "select distinct aggregate_type, aggregate_id from events tablesample system ($1)
          order by aggregate_type, aggregate_id",
    )
    .bind(percent)
    .fetch_all(pool)
    .await?;
    let mut cuts: Vec<Key> = Vec::new();
    for i in 1..jobs {
        if let Some(k) = keys.get(i * keys.len() / jobs) {
            if cuts.last() != Some(k) {
                cuts.push(k.clone());
            }
        }
    }
    let mut ranges = Vec::with_capacity(cuts.len() + 1);
    let mut start = None;
    for cut in cuts {
        ranges.push(Range {
            start: start.take(),
            end: Some(cut.clone()),
        });
        start = Some(cut);
    }
    ranges.push(Range { start, end: None });
    Ok(ranges)
}

/// Reads one range of the log, page by page.
async fn scan_range(pool: &PgPool, mut scan: Scan, range: Range, page: i64) -> Result<Scan> {
    const COLUMNS: &str =
        "select aggregate_type, aggregate_id, sequence, event_type, event_version,
            payload::text, metadata::text, recorded_at, global_position, transaction_id::text,
            prev_hash, hash
       from events";
    scan.compared_upto = match &range.start {
        Some(k) => Bound::Included(k.clone()),
        None => Bound::Unbounded,
    };
    let start = scan.compared_upto.clone();
    let end = match &range.end {
        Some(k) => Bound::Excluded(k.clone()),
        None => Bound::Unbounded,
    };
    let mut after: Option<(String, String, i64)> = None;
    loop {
        // `$1` is the page size.
        let mut filter = Filter::new(2);
        match &after {
            None => filter.key_range(&start, &end),
            Some((t, id, seq)) => match &range.end {
                // The usual case: the rest of the range is in the same aggregate type.
                Some((end_t, end_id)) if end_t == t => {
                    let t = filter.arg(Arg::Text(t));
                    let i = filter.arg(Arg::Text(id));
                    let s = filter.arg(Arg::Int(*seq));
                    let e = filter.arg(Arg::Text(end_id));
                    filter.push(format!(
                        "aggregate_type = {t} and (aggregate_id, sequence) > ({i}, {s}) and aggregate_id < {e}"
                    ));
                }
                _ => {
                    let t = filter.arg(Arg::Text(t));
                    let i = filter.arg(Arg::Text(id));
                    let s = filter.arg(Arg::Int(*seq));
                    filter.push(format!(
                        "aggregate_type >= {t} and (aggregate_type, aggregate_id, sequence) > ({t}, {i}, {s})"
                    ));
                    filter.key_range(&Bound::Unbounded, &end);
                }
            },
        }
        let sql = format!(
            "{COLUMNS} {} order by aggregate_type, aggregate_id, sequence limit $1",
            filter.sql()
        );
        let mut query = sqlx::query(&sql).bind(page).persistent(false);
        for a in filter.args {
            query = match a {
                Arg::Text(t) => query.bind(t),
                Arg::Int(i) => query.bind(i),
            };
        }
        let mut rows = query.fetch(pool);
        let mut count = 0;
        while let Some(row) = rows.try_next().await? {
            scan.event(&row)?;
            count += 1;
        }
        drop(rows);
        if count < page {
            scan.finish_stream();
            scan.flush(pool, Some(&range)).await?;
            break;
        }
        after = Some((scan.cur_type.clone(), scan.cur_id.clone(), scan.last_seq));
        scan.flush(pool, None).await?;
    }
    Ok(scan)
}

/// Reads the whole log once, `jobs` ranges in parallel, checking the chain and the targets.
/// `early` problems are listed first.
async fn scan(
    pool: &PgPool,
    targets: Vec<Target>,
    early: Vec<Problem>,
    read: ReadArgs,
) -> Result<Scan> {
    let ranges = split(pool, read.jobs()).await?;
    let page = read.page_size();
    tracing::debug!(?ranges, "reading the log in key ranges");
    let mut handles = Vec::with_capacity(ranges.len());
    for range in ranges {
        let pool = pool.clone();
        let part = Scan::new(targets.clone());
        handles.push(tokio::spawn(async move {
            scan_range(&pool, part, range, page)
                .await
                .map_err(|e| e.to_string())
        }));
    }
    let mut all = Scan::new(targets);
    for p in early {
        all.report(p);
    }
    for handle in handles {
        let part = handle.await.map_err(|e| e.to_string())??;
        all.merge(part);
    }
    all.finish_targets();
    Ok(all)
}

/// Verifies the whole log, every stored seal and, if given, a seal kept elsewhere.
pub async fn verify(
    pool: &PgPool,
    external: Option<&SealRecord>,
    read: ReadArgs,
) -> Result<Report> {
    let started = Instant::now();
    let seals = stored_seals(pool).await?;
    let mut early = Vec::new();
    let mut targets = Vec::new();
    for record in &seals {
        targets.push(target(record, Role::Stored)?);
    }
    for pair in targets.windows(2) {
        if pair[1].upto < pair[0].upto {
            early.push(Problem {
                kind: ProblemKind::SealOrder,
                aggregate_type: None,
                aggregate_id: None,
                sequence: None,
                global_position: None,
                seal_id: Some(pair[1].id),
                detail: format!(
                    "its position comes before that of seal {}: seal positions were edited",
                    pair[0].id
                ),
            });
        }
    }
    if let Some(ext) = external {
        match seals.iter().find(|s| s.id == ext.id) {
            Some(stored) if stored == ext => {}
            Some(stored) => {
                early.push(Problem {
                    kind: ProblemKind::SealAltered,
                    aggregate_type: None,
                    aggregate_id: None,
                    sequence: None,
                    global_position: None,
                    seal_id: Some(ext.id),
                    detail: format!(
                        "the stored seal differs from the external copy (root {} in the database, {} kept outside)",
                        stored.root, ext.root
                    ),
                });
                let mut t = target(ext, Role::External)?;
                t.id = ext.id;
                targets.push(t);
            }
            None => {
                early.push(Problem {
                    kind: ProblemKind::SealUnknown,
                    aggregate_type: None,
                    aggregate_id: None,
                    sequence: None,
                    global_position: None,
                    seal_id: Some(ext.id),
                    detail: "the seal kept outside the database is not in the database: seals were removed".into(),
                });
                targets.push(target(ext, Role::External)?);
            }
        }
    }
    let state = scan(pool, targets, early, read).await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Report {
        ok: state.problem_count == 0,
        events: state.events,
        streams: state.streams,
        seals_checked: seals.len(),
        external_seal: external.map(|e| e.id),
        seconds,
        events_per_second: state.events as f64 / seconds.max(1e-9),
        problem_count: state.problem_count,
        first_problem: state.problems.first().cloned(),
        problems: state.problems,
    })
}

/// Verifies the log and records a seal over every stream's head up to the newest position
/// no running transaction can still write below. A broken log is not sealed: its report is
/// returned instead.
pub async fn seal(
    pool: &PgPool,
    read: ReadArgs,
) -> Result<std::result::Result<SealRecord, Report>> {
    let started = Instant::now();
    // A session lock on its own connection: seals are recorded one at a time, and no xid is
    // held while the log is read.
    let mut lock = pool.acquire().await?;
    sqlx::query("select pg_advisory_lock($1)")
        .bind(SEAL_LOCK)
        .execute(&mut *lock)
        .await?;
    let outcome = seal_locked(pool, &mut lock, started, read).await;
    let _ = sqlx::query("select pg_advisory_unlock($1)")
        .bind(SEAL_LOCK)
        .execute(&mut *lock)
        .await;
    outcome
}

async fn seal_locked(
    pool: &PgPool,
    conn: &mut sqlx::PgConnection,
    started: Instant,
    read: ReadArgs,
) -> Result<std::result::Result<SealRecord, Report>> {
    let seals = stored_seals(pool).await?;
    let mut targets = Vec::new();
    for record in &seals {
        targets.push(target(record, Role::Stored)?);
    }
    // The newest committed event, and the transactions below it that are still running: the
    // seal covers every committed event and nothing that can still commit.
    let head: Option<(String, i64, Vec<String>)> = sqlx::query_as(
        "select e.transaction_id::text, e.global_position,
                array(select x::text from pg_snapshot_xip(q.s) as x
                       where x < e.transaction_id order by x)
           from events e, (select pg_current_snapshot() as s) q
          where pg_visible_in_snapshot(e.transaction_id, q.s)
          order by e.transaction_id desc, e.global_position desc
          limit 1",
    )
    .fetch_optional(pool)
    .await?;
    let (upto, excluded_txids) = match head {
        Some((txid, position, excluded)) => (
            LogPosition {
                txid: txid.parse().map_err(|_| "unreadable transaction id")?,
                position,
            },
            excluded,
        ),
        None => (
            LogPosition {
                txid: 0,
                position: 0,
            },
            Vec::new(),
        ),
    };
    let mut excluded = Vec::with_capacity(excluded_txids.len());
    for x in &excluded_txids {
        excluded.push(x.parse::<u64>().map_err(|_| "unreadable transaction id")?);
    }
    if let Some(last) = targets.iter().map(|t| t.upto).max() {
        if last > upto {
            return Err(format!(
                "the last seal's position ({}, {}) is ahead of the log's ({}, {})",
                last.txid, last.position, upto.txid, upto.position
            )
            .into());
        }
    }
    targets.push(Target {
        id: i64::MAX,
        upto,
        excluded: excluded.clone(),
        role: Role::New,
        expected_streams: 0,
        expected_events: 0,
        expected_root: GENESIS,
        streams: 0,
        events: 0,
        leaves: Vec::new(),
    });
    let mut state = scan(pool, targets, Vec::new(), read).await?;
    let seconds = started.elapsed().as_secs_f64();
    if state.problem_count > 0 {
        return Ok(Err(Report {
            ok: false,
            events: state.events,
            streams: state.streams,
            seals_checked: seals.len(),
            external_seal: None,
            seconds,
            events_per_second: state.events as f64 / seconds.max(1e-9),
            problem_count: state.problem_count,
            first_problem: state.problems.first().cloned(),
            problems: std::mem::take(&mut state.problems),
        }));
    }
    let Some(new) = state.targets.iter_mut().find(|t| t.role == Role::New) else {
        return Err("internal: the new seal went missing".into());
    };
    let root = seal_root(
        new.upto,
        &excluded,
        new.streams,
        new.events,
        &mut new.leaves,
    );
    let (streams, events) = (new.streams as i64, new.events as i64);

    let mut tx = sqlx::Connection::begin(conn).await?;
    let (id, sealed_at): (i64, DateTime<Utc>) = sqlx::query_as(
        "insert into audit_seals (upto_txid, upto_position, excluded_txids, streams, events, root, algorithm)
         values ($1::text::xid8, $2, $3::text[]::xid8[], $4, $5, $6, $7) returning id, sealed_at",
    )
    .bind(upto.txid.to_string())
    .bind(upto.position)
    .bind(&excluded_txids)
    .bind(streams)
    .bind(events)
    .bind(&root[..])
    .bind(ALGORITHM)
    .fetch_one(&mut *tx)
    .await?;
    for chunk in state.new_heads.chunks(20_000) {
        let types: Vec<&str> = chunk.iter().map(|h| h.aggregate_type.as_str()).collect();
        let ids: Vec<&str> = chunk.iter().map(|h| h.aggregate_id.as_str()).collect();
        let seqs: Vec<i64> = chunk.iter().map(|h| h.sequence).collect();
        let hashes: Vec<&[u8]> = chunk.iter().map(|h| &h.hash[..]).collect();
        sqlx::query(
            "insert into audit_seal_heads (seal_id, aggregate_type, aggregate_id, head_sequence, head_hash)
             select $1, t, i, s, h from unnest($2::text[], $3::text[], $4::bigint[], $5::bytea[]) as u(t, i, s, h)",
        )
        .bind(id)
        .bind(&types)
        .bind(&ids)
        .bind(&seqs)
        .bind(&hashes)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(
        seal = id,
        streams,
        events,
        changed_heads = state.new_heads.len(),
        seconds = started.elapsed().as_secs_f64(),
        "seal recorded"
    );
    Ok(Ok(SealRecord {
        id,
        algorithm: ALGORITHM.into(),
        upto_txid: upto.txid.to_string(),
        upto_position: upto.position,
        excluded_txids,
        streams,
        events,
        root: hex::encode(root),
        sealed_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_hash_input_is_length_prefixed_like_the_trigger() {
        let mut buf = Vec::new();
        let got = event_hash(
            &mut buf,
            &GENESIS,
            "ticket",
            "1000",
            1,
            "TicketOpened",
            "1.0",
            "{\"a\": 1}",
            "{}",
            42,
        );
        let mut expected = GENESIS.to_vec();
        expected.extend_from_slice(b"6:ticket|4:1000|1|12:TicketOpened|3:1.0|8:{\"a\": 1}|2:{}|42");
        assert_eq!(buf, expected);
        assert_eq!(got, <[u8; 32]>::from(Sha256::digest(&expected)));
    }

    #[test]
    fn a_root_does_not_depend_on_the_order_of_its_leaves() {
        let a = seal_leaf("ticket", "1", 3, &[1; 32]);
        let b = seal_leaf("ticket", "2", 1, &[2; 32]);
        let upto = LogPosition {
            txid: 5,
            position: 9,
        };
        assert_eq!(
            seal_root(upto, &[], 2, 4, &mut [a, b]),
            seal_root(upto, &[], 2, 4, &mut [b, a])
        );
        assert_ne!(
            seal_root(upto, &[], 2, 4, &mut [a, b]),
            seal_root(upto, &[], 2, 5, &mut [a, b])
        );
        assert_ne!(
            seal_root(upto, &[], 2, 4, &mut [a, b]),
            seal_root(upto, &[3], 2, 4, &mut [a, b])
        );
    }
}
