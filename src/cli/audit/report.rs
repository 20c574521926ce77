//! What `verify` finds: problems and the report printed for people or as JSON.

use serde::Serialize;

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

impl Problem {
    /// A problem with a whole seal rather than one stream.
    pub(super) fn of_seal(kind: ProblemKind, seal_id: i64, detail: String) -> Problem {
        Problem {
            kind,
            aggregate_type: None,
            aggregate_id: None,
            sequence: None,
            global_position: None,
            seal_id: Some(seal_id),
            detail,
        }
    }
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
