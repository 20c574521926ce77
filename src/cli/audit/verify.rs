//! `audit verify`: the whole log, every stored seal and, if given, one kept elsewhere.

use std::time::Instant;

use sqlx::PgPool;

use super::read::scan;
use super::report::{Problem, ProblemKind, Report};
use super::scan::{Role, Scan};
use super::seals::{stored_seals, target, SealRecord};
use super::ReadArgs;
use crate::service::error::any::Result;

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
            early.push(Problem::of_seal(
                ProblemKind::SealOrder,
                pair[1].id,
                format!(
                    "its position comes before that of seal {}: seal positions were edited",
                    pair[0].id
                ),
            ));
        }
    }
    if let Some(ext) = external {
        match seals.iter().find(|s| s.id == ext.id) {
            Some(stored) if stored == ext => {}
            Some(stored) => {
                early.push(Problem::of_seal(
                    ProblemKind::SealAltered,
                    ext.id,
                    format!(
                        "the stored seal differs from the external copy (root {} in the database, {} kept outside)",
                        stored.root, ext.root
                    ),
                ));
                let mut t = target(ext, Role::External)?;
                t.id = ext.id;
                targets.push(t);
            }
            None => {
                early.push(Problem::of_seal(
                    ProblemKind::SealUnknown,
                    ext.id,
                    "the seal kept outside the database is not in the database: seals were removed"
                        .into(),
                ));
                targets.push(target(ext, Role::External)?);
            }
        }
    }
    let state = scan(pool, targets, early, read).await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Report::from_scan(
        state,
        seals.len(),
        external.map(|e| e.id),
        seconds,
    ))
}

impl Report {
    /// The report of a finished scan.
    pub(super) fn from_scan(
        state: Scan,
        seals_checked: usize,
        external_seal: Option<i64>,
        seconds: f64,
    ) -> Report {
        Report {
            ok: state.problem_count == 0,
            events: state.events,
            streams: state.streams,
            seals_checked,
            external_seal,
            seconds,
            events_per_second: state.events as f64 / seconds.max(1e-9),
            problem_count: state.problem_count,
            first_problem: state.problems.first().cloned(),
            problems: state.problems,
        }
    }
}
