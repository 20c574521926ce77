//! One pass over a range of the log: the chain of every stream and the heads of every seal.

use std::ops::Bound;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::FromRow as _;

use super::hash::{event_hash, seal_root, LogPosition};
use super::report::{Problem, ProblemKind};
use super::{GENESIS, MAX_LISTED};
use crate::service::error::any::Result;

/// What a seal target is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// A seal stored in the database: compare every stream's head with its stored heads.
    Stored,
    /// An external seal that cannot lean on the stored heads: compare counts and root only.
    External,
    /// The seal being recorded: collect the heads that changed since the last stored seal.
    New,
}

/// A seal the scan computes heads for.
#[derive(Clone)]
pub(super) struct Target {
    pub(super) id: i64,
    pub(super) upto: LogPosition,
    /// Transactions whose events the seal does not cover (sorted).
    pub(super) excluded: Vec<u64>,
    pub(super) role: Role,
    pub(super) expected_streams: u64,
    pub(super) expected_events: u64,
    pub(super) expected_root: [u8; 32],
    pub(super) streams: u64,
    pub(super) events: u64,
    pub(super) leaves: Vec<[u8; 32]>,
}

/// A head that changed since the previous seal (for the seal being recorded).
pub(super) struct NewHead {
    pub(super) aggregate_type: String,
    pub(super) aggregate_id: String,
    pub(super) sequence: i64,
    pub(super) hash: Vec<u8>,
}

/// A stream key: (aggregate_type, aggregate_id).
pub(super) type Key = (String, String);

/// A part of the key space, in the database's order: streams from `start` (inclusive) up to
/// `end` (exclusive).
#[derive(Debug, Clone, Default)]
pub(super) struct Range {
    pub(super) start: Option<Key>,
    pub(super) end: Option<Key>,
}

/// A stream whose events have all been read, waiting for its stored seal heads.
pub(super) struct DoneStream {
    pub(super) key: (String, String),
    /// Per-target heads, as (first target index in `order`, sequence, hash): the head of
    /// target `order[j]` is the last entry whose index is `<= j`.
    pub(super) heads: Vec<(usize, i64, [u8; 32])>,
}

/// Stored heads of one stream: (seal id, sequence, hash), by seal id.
pub(super) type StoredHeads = Vec<(i64, i64, Vec<u8>)>;

/// The columns of one event, as `scan_range` selects them.
#[derive(sqlx::FromRow)]
struct EventRow<'r> {
    aggregate_type: &'r str,
    aggregate_id: &'r str,
    #[sqlx(rename = "sequence")]
    seq: i64,
    event_type: &'r str,
    event_version: &'r str,
    payload: &'r str,
    metadata: &'r str,
    recorded_at: DateTime<Utc>,
    #[sqlx(rename = "global_position")]
    pos: i64,
    #[sqlx(rename = "transaction_id")]
    txid: &'r str,
    prev_hash: &'r [u8],
    hash: &'r [u8],
}

/// The state of one pass over the log.
pub(super) struct Scan {
    pub(super) targets: Vec<Target>,
    /// Target indexes ordered by position.
    pub(super) order: Vec<usize>,
    /// Whether any target has stored heads to compare with.
    pub(super) has_stored: bool,
    /// Per position in `order`: events that enter at that target (prefix sums give counts).
    pub(super) entering: Vec<u64>,
    pub(super) cur_type: String,
    pub(super) cur_id: String,
    pub(super) in_stream: bool,
    pub(super) last_seq: i64,
    pub(super) prev: [u8; 32],
    pub(super) stack: Vec<(usize, i64, [u8; 32])>,
    pub(super) pending: Vec<DoneStream>,
    /// Where the next comparison with stored heads starts.
    pub(super) compared_upto: Bound<Key>,
    pub(super) new_heads: Vec<NewHead>,
    pub(super) buf: Vec<u8>,
    pub(super) events: u64,
    pub(super) streams: u64,
    pub(super) problems: Vec<Problem>,
    pub(super) problem_count: u64,
}

impl Target {
    /// A target at `upto` that expects nothing yet.
    pub(super) fn new(id: i64, upto: LogPosition, excluded: Vec<u64>, role: Role) -> Target {
        Target {
            id,
            upto,
            excluded,
            role,
            expected_streams: 0,
            expected_events: 0,
            expected_root: GENESIS,
            streams: 0,
            events: 0,
            leaves: Vec::new(),
        }
    }
}

impl Scan {
    pub(super) fn new(targets: Vec<Target>) -> Scan {
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

    pub(super) fn report(&mut self, p: Problem) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(p);
        }
    }

    pub(super) fn event_problem(&mut self, kind: ProblemKind, seq: i64, pos: i64, detail: String) {
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
    pub(super) fn event(&mut self, row: &PgRow) -> Result<()> {
        let e = EventRow::from_row(row)?;
        if !self.in_stream || e.aggregate_type != self.cur_type || e.aggregate_id != self.cur_id {
            self.enter_stream(e.aggregate_type, e.aggregate_id);
        }
        self.events += 1;
        self.check_sequence(e.seq, e.pos);
        let stored_hash = self.check_hashes(&e);
        self.prev = stored_hash;
        self.last_seq = e.seq;
        if !self.targets.is_empty() {
            self.enter_targets(e.txid, e.pos, e.seq, stored_hash)?;
        }
        Ok(())
    }

    /// Ends the stream read so far and starts the stream of `aggregate_type/aggregate_id`.
    fn enter_stream(&mut self, aggregate_type: &str, aggregate_id: &str) {
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

    /// Reports a gap before sequence `seq` of the current stream.
    fn check_sequence(&mut self, seq: i64, pos: i64) {
        let expected = self.last_seq + 1;
        if seq == expected {
            return;
        }
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

    /// Checks the event's link to its predecessor and its own hash; returns the stored hash
    /// (the genesis hash when it is malformed).
    fn check_hashes(&mut self, e: &EventRow<'_>) -> [u8; 32] {
        let (seq, pos) = (e.seq, e.pos);
        let (Ok(prev), Ok(stored)) = (
            <[u8; 32]>::try_from(e.prev_hash),
            <[u8; 32]>::try_from(e.hash),
        ) else {
            self.event_problem(
                ProblemKind::MalformedHash,
                seq,
                pos,
                "prev_hash or hash is not a 32-byte sha256 digest".into(),
            );
            return GENESIS;
        };
        if seq == self.last_seq + 1 && prev != self.prev {
            let detail = if seq <= 1 {
                "prev_hash of the first event is not the genesis hash (32 zero bytes)".to_string()
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
            e.aggregate_type,
            e.aggregate_id,
            seq,
            e.event_type,
            e.event_version,
            e.payload,
            e.metadata,
            e.recorded_at.timestamp_micros(),
        );
        if recomputed != stored {
            self.event_problem(
                ProblemKind::HashMismatch,
                seq,
                pos,
                format!(
                    "the stored event ({}) does not hash to its recorded hash: its payload, metadata, type or time was changed",
                    e.event_type
                ),
            );
        }
        stored
    }

    /// Counts the event for the first seal that covers it and keeps its head for that seal.
    fn enter_targets(&mut self, txid: &str, pos: i64, seq: i64, hash: [u8; 32]) -> Result<()> {
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
            self.stack.push((first, seq, hash));
        }
        Ok(())
    }

    /// Ends the current stream: its heads wait in `pending` for the stored-heads comparison.
    pub(super) fn finish_stream(&mut self) {
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

    /// Adds the findings of the scan of a later range.
    pub(super) fn merge(&mut self, other: Scan) {
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

    /// Compares the counts and roots of every seal once the whole log was read.
    pub(super) fn finish_targets(&mut self) {
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
                findings.push(Problem::of_seal(
                    ProblemKind::SealCountMismatch,
                    target.id,
                    format!(
                        "the seal covers {} events in {} streams; the log now has {} events in {} streams at or below its position",
                        target.expected_events, target.expected_streams, target.events, target.streams
                    ),
                ));
            }
            if root != target.expected_root {
                findings.push(Problem::of_seal(
                    ProblemKind::SealRootMismatch,
                    target.id,
                    format!(
                        "the log as of the seal's position hashes to {}, the seal says {}",
                        hex::encode(root),
                        hex::encode(target.expected_root)
                    ),
                ));
            }
        }
        for f in findings {
            self.report(f);
        }
    }
}
