//! Where a ticket stands against its SLA targets at a given moment: the `sla` object of ticket
//! responses, computed from the clock's stored state and the time of the question.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::sla::clock::{Phase, SlaClock, SlaMarks};

/// How a target stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    /// Running, with at least 20 % of the target left.
    Ok,
    /// Running, with less than 20 % of the target left.
    Warning,
    /// Missed: the clock ran past the target.
    Breached,
    /// Not running while the ticket is pending.
    Paused,
    /// Reached in time.
    Met,
    /// Not measured (the ticket was closed, cancelled or deleted before it was reached).
    #[default]
    None,
}

/// One target: when it falls (or fell) due, and how it stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct SlaTarget {
    /// When a running target falls due, or when a missed one was missed; null otherwise.
    pub due: Option<DateTime<Utc>>,
    pub state: SlaState,
}

/// A ticket's SLA at a glance: both targets, and at top level the earliest unmet target that
/// still runs (or was missed while the ticket is open). A stopped ticket reads `breached` at
/// top level if it missed a target, else `met` once resolved, else `none`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Sla {
    pub first_response: SlaTarget,
    pub resolution: SlaTarget,
    /// The top-level target's due time (null while paused or once stopped).
    pub due: Option<DateTime<Utc>>,
    pub state: SlaState,
}

/// What a ticket's standing is computed from (columns of the ticket list read model).
#[derive(Debug, Clone, Default, PartialEq, Eq, FromRow)]
pub struct SlaFacts {
    pub status: String,
    pub deleted: bool,
    pub priority: String,
    pub first_response_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    pub clock: SlaClock,
    #[sqlx(flatten)]
    pub marks: SlaMarks,
}

impl SlaFacts {
    fn phase(&self) -> Phase<'_> {
        Phase {
            status: &self.status,
            deleted: self.deleted,
            priority: &self.priority,
            first_response_at: self.first_response_at,
        }
    }

    /// The standing at `now`.
    pub fn standing(&self, now: DateTime<Utc>) -> Sla {
        let phase = self.phase();
        let c = &self.clock;
        let first_response = target(Target {
            live: phase.first_response_live(),
            reached: self.first_response_at.is_some(),
            due: c.first_response_due_at,
            missed: c.first_response_breached_at,
            warn: self.marks.first_response_warn_at,
            now,
        });
        let resolution = target(Target {
            live: phase.resolution_live(),
            reached: self.resolved_at.is_some(),
            due: c.resolution_due_at,
            missed: c.resolution_breached_at,
            warn: self.marks.resolution_warn_at,
            now,
        });
        let m = &self.marks;
        let (due, state) = if m.sla_breach_at.is_some_and(|b| b < now) {
            (m.sla_due_at, SlaState::Breached)
        } else if phase.resolution_live() {
            match m.sla_due_at {
                Some(due) if m.sla_warn_at.is_some_and(|w| w < now) => {
                    (Some(due), SlaState::Warning)
                }
                Some(due) => (Some(due), SlaState::Ok),
                None => (None, SlaState::Paused),
            }
        } else if resolution.state == SlaState::Met {
            (None, SlaState::Met)
        } else {
            (None, SlaState::None)
        };
        Sla {
            first_response,
            resolution,
            due,
            state,
        }
    }
}

/// What one target's standing is computed from.
struct Target {
    live: bool,
    reached: bool,
    due: Option<DateTime<Utc>>,
    missed: Option<DateTime<Utc>>,
    warn: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

fn target(t: Target) -> SlaTarget {
    let (due, state) = match (t.missed, t.live, t.due) {
        (Some(missed), _, _) => (Some(missed), SlaState::Breached),
        (None, true, Some(due)) if due < t.now => (Some(due), SlaState::Breached),
        (None, true, Some(due)) if t.warn.is_some_and(|w| w < t.now) => {
            (Some(due), SlaState::Warning)
        }
        (None, true, Some(due)) => (Some(due), SlaState::Ok),
        // A live target without a due time is one the pending ticket holds still.
        (None, true, None) => (None, SlaState::Paused),
        (None, false, _) if t.reached => (None, SlaState::Met),
        (None, false, _) => (None, SlaState::None),
    };
    SlaTarget { due, state }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sla::clock::PolicyContext;
    use crate::sla::policy::SlaPolicy;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// A high-priority ticket opened at 10:00 (default policy: 60 / 480 minutes).
    fn opened() -> SlaFacts {
        let ctx = PolicyContext::new(0, SlaPolicy::default());
        let mut facts = SlaFacts {
            status: "open".into(),
            priority: "high".into(),
            ..SlaFacts::default()
        };
        facts.clock = SlaClock::started(utc("2026-03-02T10:00:00Z"), &facts.phase(), &ctx);
        facts.marks = facts.clock.marks(&facts.phase(), &ctx);
        facts
    }

    #[test]
    fn a_running_target_is_ok_then_warns_then_is_breached_as_time_passes() {
        let facts = opened();
        let at = |s: &str| facts.standing(utc(s));
        let ok = at("2026-03-02T10:47:59Z");
        assert_eq!(ok.state, SlaState::Ok);
        assert_eq!(ok.due, Some(utc("2026-03-02T11:00:00Z")));
        assert_eq!(ok.resolution.state, SlaState::Ok);
        assert_eq!(at("2026-03-02T10:48:01Z").state, SlaState::Warning);
        // Due at 11:00 exactly is not yet missed: a target is missed once the clock runs past it.
        assert_eq!(at("2026-03-02T11:00:00Z").state, SlaState::Warning);
        let late = at("2026-03-02T11:00:01Z");
        assert_eq!(late.state, SlaState::Breached);
        assert_eq!(late.first_response.state, SlaState::Breached);
        assert_eq!(late.resolution.state, SlaState::Ok);
        assert_eq!(late.due, Some(utc("2026-03-02T11:00:00Z")));
    }

    #[test]
    fn stopped_tickets_read_met_or_none_or_their_miss() {
        let mut facts = opened();
        facts.status = "resolved".into();
        facts.first_response_at = Some(utc("2026-03-02T10:10:00Z"));
        facts.resolved_at = Some(utc("2026-03-02T12:00:00Z"));
        facts.clock.first_response_due_at = None;
        facts.clock.resolution_due_at = None;
        facts.marks = SlaMarks::default();
        let now = utc("2026-03-09T00:00:00Z");
        let s = facts.standing(now);
        assert_eq!(
            (s.first_response.state, s.resolution.state, s.state, s.due),
            (SlaState::Met, SlaState::Met, SlaState::Met, None)
        );
        facts.status = "cancelled".into();
        facts.resolved_at = None;
        let s = facts.standing(now);
        assert_eq!(
            (s.resolution.state, s.state),
            (SlaState::None, SlaState::None)
        );
        facts.clock.first_response_breached_at = Some(utc("2026-03-02T11:00:00Z"));
        facts.marks.sla_breach_at = Some(utc("2026-03-02T11:00:00Z"));
        let s = facts.standing(now);
        assert_eq!(
            (s.first_response.state, s.state),
            (SlaState::Breached, SlaState::Breached)
        );
        assert_eq!(s.first_response.due, Some(utc("2026-03-02T11:00:00Z")));
    }
}
