//! `audit verify`: the whole log, every stored seal and, if given, one kept elsewhere.

use std::time::Instant;

use sqlx::PgPool;

use super::read::scan;
use super::report::{Problem, ProblemKind, Report};
use super::scan::Role;
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
