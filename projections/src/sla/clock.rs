//! The SLA clock of one ticket, folded event by event: how much business time has run, when
//! each running target falls due, and when a target was missed.
//!
//! The clock runs while the ticket is `open` or `in_progress`, pauses while it is `pending`,
//! stops when it is resolved, closed, cancelled or deleted, and resumes when it is reopened. It
//! counts business time only (see [`crate::sla::policy`]). Two targets are measured on it: first
//! response (stops at the first public reply of an agent) and resolution. A running target has
//! a `*_due_at` (when it will be missed); a missed one has a `*_breached_at` (when it was
//! missed). A running target is missed at query time once `now > *_due_at`; when the clock stops
//! or pauses after its due time, `*_breached_at` takes the due time. Changing a ticket's
//! priority judges its unstopped targets again against the new priority's targets: one that is
//! now exceeded is missed from the moment of the change, one that no longer is, is not missed.
//!
//! Every read model that shows SLA figures folds the same events through this one clock (the
//! `reports` facts and the ticket list), so they agree event for event. Each reads the policy
//! in force at the start of its batch.

use aggregates::{Priority, TicketStatus};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection};

use crate::runtime::ApplyError;
use crate::sla::policy::{Calendar, SlaPolicy, Target, US};

/// The statuses in which a ticket's targets can still run (the open backlog).
pub const OPEN_STATUSES: [&str; 3] = ["open", "in_progress", "pending"];

/// The policy a batch is applied with.
#[derive(Debug, Clone)]
pub struct PolicyContext {
    pub version: i64,
    pub policy: SlaPolicy,
    pub calendar: Calendar,
}

impl PolicyContext {
    /// A context for `policy` at `version`.
    pub fn new(version: i64, policy: SlaPolicy) -> Self {
        let calendar = policy.calendar();
        PolicyContext {
            version,
            policy,
            calendar,
        }
    }

    fn target(&self, priority: &str) -> Target {
        self.policy
            .targets
            .of(Priority::parse(priority).unwrap_or(Priority::Medium))
    }
}

/// The policy in force: the newest saved one (its id is the version), else the default (0).
pub async fn policy_in_force(conn: &mut PgConnection) -> Result<PolicyContext, sqlx::Error> {
    let row: Option<(i64, serde_json::Value)> =
        sqlx::query_as("select id, policy from sla_policies order by id desc limit 1")
            .fetch_optional(conn)
            .await?;
    match row {
        None => Ok(PolicyContext::new(0, SlaPolicy::default())),
        Some((id, json)) => serde_json::from_value(json)
            .map(|p| PolicyContext::new(id, p))
            .map_err(|e| sqlx::Error::Decode(format!("SLA policy {id} is unreadable: {e}").into())),
    }
}

/// [`policy_in_force`] for a projection's batch: an unreadable policy stops the projection.
pub async fn current_policy(conn: &mut PgConnection) -> Result<PolicyContext, ApplyError> {
    policy_in_force(conn).await.map_err(|e| match e {
        sqlx::Error::Decode(reason) => ApplyError::Poison {
            position: -1,
            reason: reason.to_string(),
        },
        other => other.into(),
    })
}

/// The instant an event moves the clock to: its own time at the database's precision, never
/// before the previous one (whatever times the commands carried).
pub fn clock_time(at: DateTime<Utc>, previous: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6).max(previous.trunc_subsecs(6))
}

/// What the clock needs to know of its ticket after an event.
#[derive(Debug, Clone, Copy)]
pub struct Phase<'a> {
    pub status: &'a str,
    pub deleted: bool,
    pub priority: &'a str,
    pub first_response_at: Option<DateTime<Utc>>,
}

impl<'a> Phase<'a> {
    /// The phase of a row with these fields.
    pub fn of(
        status: &'a str,
        deleted: bool,
        priority: &'a str,
        first_response_at: Option<DateTime<Utc>>,
    ) -> Self {
        Phase {
            status,
            deleted,
            priority,
            first_response_at,
        }
    }

    /// True while the resolution target can still run (not resolved, closed, cancelled or
    /// deleted).
    pub fn resolution_live(&self) -> bool {
        !self.deleted && OPEN_STATUSES.contains(&self.status)
    }

    /// True while the first-response target can still run.
    pub fn first_response_live(&self) -> bool {
        self.resolution_live() && self.first_response_at.is_none()
    }

    /// True while the clock runs (live and not pending).
    pub fn running(&self) -> bool {
        self.resolution_live() && self.status != TicketStatus::Pending.as_str()
    }
}

/// The clock's state, as the read models store it (their columns have these names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct SlaClock {
    /// Start of the clock's current running segment (None while paused or stopped).
    pub sla_running_since: Option<DateTime<Utc>>,
    /// Business microseconds on the clock up to `sla_running_since` (or the stop).
    pub sla_elapsed_us: i64,
    pub first_response_due_at: Option<DateTime<Utc>>,
    pub resolution_due_at: Option<DateTime<Utc>>,
    pub first_response_breached_at: Option<DateTime<Utc>>,
    pub resolution_breached_at: Option<DateTime<Utc>>,
    /// The SLA policy version that last computed this clock.
    pub policy_version: i64,
}

impl SlaClock {
    /// The clock of a ticket opened at `at`, running.
    pub fn started(at: DateTime<Utc>, phase: &Phase<'_>, ctx: &PolicyContext) -> Self {
        let mut clock = SlaClock {
            sla_running_since: Some(at),
            ..SlaClock::default()
        };
        clock.settle(phase, at, ctx, false);
        clock
    }

    /// Runs the clock up to `t`; a running target whose due time has passed is missed.
    pub fn advance(&mut self, t: DateTime<Utc>, calendar: &Calendar) {
        if let Some(since) = self.sla_running_since {
            self.sla_elapsed_us += calendar.business_us(since, t);
            self.sla_running_since = Some(t);
        }
        for (due, breached) in [
            (
                &mut self.first_response_due_at,
                &mut self.first_response_breached_at,
            ),
            (
                &mut self.resolution_due_at,
                &mut self.resolution_breached_at,
            ),
        ] {
            if let Some(d) = *due {
                if d < t {
                    *breached = Some(d);
                    *due = None;
                }
            }
        }
    }

    /// Sets the running state and due times after an event at `t` left the ticket in
    /// `phase`. With `reevaluate` (a priority change) the unstopped targets are judged again
    /// against the new target.
    pub fn settle(
        &mut self,
        phase: &Phase<'_>,
        t: DateTime<Utc>,
        ctx: &PolicyContext,
        reevaluate: bool,
    ) {
        let running = phase.running();
        self.sla_running_since = running.then_some(t);
        let (fr_target, res_target) = limits(ctx.target(phase.priority));
        let elapsed = self.sla_elapsed_us;
        let fr_live = phase.first_response_live();
        let res_live = phase.resolution_live();
        if reevaluate {
            for (live, limit, breached) in [
                (fr_live, fr_target, &mut self.first_response_breached_at),
                (res_live, res_target, &mut self.resolution_breached_at),
            ] {
                if live {
                    if elapsed > limit {
                        breached.get_or_insert(t);
                    } else {
                        *breached = None;
                    }
                }
            }
        }
        let due = |live: bool, limit: i64, breached: Option<DateTime<Utc>>| {
            (running && live && breached.is_none())
                .then(|| ctx.calendar.add_business_us(t, limit - elapsed))
        };
        self.first_response_due_at = due(fr_live, fr_target, self.first_response_breached_at);
        self.resolution_due_at = due(res_live, res_target, self.resolution_breached_at);
        self.policy_version = ctx.version;
    }

    /// The earliest due time of a running target, unless a target is already missed.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        if self.first_response_breached_at.is_some() || self.resolution_breached_at.is_some() {
            return None;
        }
        match (self.first_response_due_at, self.resolution_due_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The marks a list sorts and filters by, for a ticket in `phase` (call after
    /// [`SlaClock::settle`]).
    pub fn marks(&self, phase: &Phase<'_>, ctx: &PolicyContext) -> SlaMarks {
        let (fr_target, res_target) = limits(ctx.target(phase.priority));
        // A target enters its warning once less than 20 % of it is left.
        let warn_at = |due: Option<DateTime<Utc>>, limit: i64| {
            let since = self.sla_running_since?;
            due.map(|_| {
                let left_to_warning = limit / 5 * 4 - self.sla_elapsed_us;
                ctx.calendar.add_business_us(since, left_to_warning.max(0))
            })
        };
        let fr_warn = warn_at(self.first_response_due_at, fr_target);
        let res_warn = warn_at(self.resolution_due_at, res_target);
        let mut live: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = Vec::new();
        for (is_live, breached, due, warn) in [
            (
                phase.first_response_live(),
                self.first_response_breached_at,
                self.first_response_due_at,
                fr_warn,
            ),
            (
                phase.resolution_live(),
                self.resolution_breached_at,
                self.resolution_due_at,
                res_warn,
            ),
        ] {
            match (is_live, breached, due) {
                (true, Some(missed), _) => live.push((missed, None)),
                (true, None, Some(due)) => live.push((due, warn)),
                _ => {}
            }
        }
        let top = live.into_iter().min_by_key(|(due, _)| *due);
        let breach_at = if phase.resolution_live() {
            top.map(|(due, _)| due)
        } else {
            [self.first_response_breached_at, self.resolution_breached_at]
                .into_iter()
                .flatten()
                .min()
        };
        SlaMarks {
            first_response_warn_at: fr_warn,
            resolution_warn_at: res_warn,
            sla_due_at: top.map(|(due, _)| due),
            sla_warn_at: top.and_then(|(_, warn)| warn),
            sla_breach_at: breach_at,
        }
    }
}

/// A target's two limits in business microseconds: first response, resolution.
fn limits(target: Target) -> (i64, i64) {
    (
        i64::from(target.first_response_minutes) * 60 * US,
        i64::from(target.resolution_minutes) * 60 * US,
    )
}

/// What a ticket list sorts and filters by, derived from the clock after each event. Every
/// state that depends on the time of the query is one comparison of these with `now`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct SlaMarks {
    /// When each running target enters its last 20 %.
    pub first_response_warn_at: Option<DateTime<Utc>>,
    pub resolution_warn_at: Option<DateTime<Utc>>,
    /// The due time of the earliest unmet target that still runs or was missed while the
    /// ticket is open (the top-level `due`); None while paused or once stopped.
    pub sla_due_at: Option<DateTime<Utc>>,
    /// When that target enters its warning (None if it was missed).
    pub sla_warn_at: Option<DateTime<Utc>>,
    /// From this instant the top-level state reads `breached`: the top-level due of an open
    /// ticket, the first missed target of a stopped one.
    pub sla_breach_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn phase(status: &str, first_response_at: Option<DateTime<Utc>>) -> Phase<'_> {
        Phase {
            status,
            deleted: false,
            priority: "high",
            first_response_at,
        }
    }

    #[test]
    fn the_marks_follow_the_earliest_target_and_warn_at_eighty_percent() {
        // Default policy, high: 60 min first response, 480 min resolution, around the clock.
        let ctx = PolicyContext::new(0, SlaPolicy::default());
        let open = phase("open", None);
        let clock = SlaClock::started(utc("2026-03-02T10:00:00Z"), &open, &ctx);
        let marks = clock.marks(&open, &ctx);
        assert_eq!(marks.sla_due_at, Some(utc("2026-03-02T11:00:00Z")));
        assert_eq!(marks.sla_warn_at, Some(utc("2026-03-02T10:48:00Z")));
        assert_eq!(marks.resolution_warn_at, Some(utc("2026-03-02T16:24:00Z")));
        assert_eq!(marks.sla_breach_at, marks.sla_due_at);

        // Answered at 10:30: resolution is the only target left.
        let mut answered = clock.clone();
        let t = utc("2026-03-02T10:30:00Z");
        answered.advance(t, &ctx.calendar);
        let replied = phase("open", Some(t));
        answered.settle(&replied, t, &ctx, false);
        let marks = answered.marks(&replied, &ctx);
        assert_eq!(marks.sla_due_at, Some(utc("2026-03-02T18:00:00Z")));
        assert_eq!(marks.sla_warn_at, Some(utc("2026-03-02T16:24:00Z")));
        assert_eq!(marks.first_response_warn_at, None);
    }

    #[test]
    fn a_paused_ticket_has_no_due_time_unless_a_target_was_missed_and_a_stopped_one_keeps_its_miss()
    {
        let ctx = PolicyContext::new(0, SlaPolicy::default());
        let mut clock = SlaClock::started(utc("2026-03-02T10:00:00Z"), &phase("open", None), &ctx);
        // Pending at 10:30: paused, nothing missed.
        let t = utc("2026-03-02T10:30:00Z");
        clock.advance(t, &ctx.calendar);
        let pending = phase("pending", None);
        clock.settle(&pending, t, &ctx, false);
        assert_eq!(clock.marks(&pending, &ctx), SlaMarks::default());

        // Resumed at 12:00 and pending again at 12:45: the first response (60 min) ran out at
        // 12:30, so it is missed, and the paused ticket still shows that miss.
        for (at, status) in [
            ("2026-03-02T12:00:00Z", "open"),
            ("2026-03-02T12:45:00Z", "pending"),
        ] {
            let t = utc(at);
            clock.advance(t, &ctx.calendar);
            clock.settle(&phase(status, None), t, &ctx, false);
        }
        let marks = clock.marks(&pending, &ctx);
        assert_eq!(
            clock.first_response_breached_at,
            Some(utc("2026-03-02T12:30:00Z"))
        );
        assert_eq!(marks.sla_due_at, Some(utc("2026-03-02T12:30:00Z")));
        assert_eq!(marks.sla_breach_at, marks.sla_due_at);
        assert_eq!(marks.sla_warn_at, None);

        // Resolved at 13:00: nothing runs, the miss stays the ticket's breach.
        let t = utc("2026-03-02T13:00:00Z");
        clock.advance(t, &ctx.calendar);
        let resolved = phase("resolved", None);
        clock.settle(&resolved, t, &ctx, false);
        let marks = clock.marks(&resolved, &ctx);
        assert_eq!(marks.sla_due_at, None);
        assert_eq!(marks.sla_breach_at, Some(utc("2026-03-02T12:30:00Z")));
    }

    #[test]
    fn the_warning_of_business_hours_falls_inside_them() {
        // Office hours 09:00-17:00 UTC on weekdays; low: 480 min first response. Opened on
        // Friday at 16:00: 80 % (384 min) is reached on Monday at 14:24.
        let ctx = PolicyContext::new(1, crate::sla::policy::nine_to_five("UTC"));
        let low = Phase {
            priority: "low",
            ..phase("open", None)
        };
        let clock = SlaClock::started(utc("2026-03-06T16:00:00Z"), &low, &ctx);
        let marks = clock.marks(&low, &ctx);
        assert_eq!(
            marks.first_response_warn_at,
            Some(utc("2026-03-09T14:24:00Z"))
        );
        assert_eq!(marks.sla_due_at, Some(utc("2026-03-09T16:00:00Z")));
        assert_eq!(clock.policy_version, 1);
    }
}
