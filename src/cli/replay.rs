//! `ticketd replay ticket|approval ID`: an aggregate's events, one line each with who, when and
//! what changed, then the state they fold into.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use aggregates::approval::{Approval, ApprovalEvent, ApprovalRequest, StepSpec};
use aggregates::ticket::{PostedComment, Ticket, TicketChanges, TicketEvent, TicketFields};
use chrono::{DateTime, SecondsFormat, Utc};
use cqrs_es::Aggregate;
use projections::sla::{policy_in_force, PolicyContext, Sla};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::service::error::any::Result;
use crate::service::history::{Bound, HistoryEntry};
use crate::service::names::{NameMap, Named};

/// How to print a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Which part of the history to replay.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Stop at the state as it was at this time (RFC 3339).
    #[arg(long, value_parser = crate::service::history::parse_time_arg, conflicts_with = "until_seq")]
    pub as_of: Option<DateTime<Utc>>,
    /// Stop after this sequence number.
    #[arg(long)]
    pub until_seq: Option<i64>,
    /// `table` (default) or `json`.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

impl ReplayArgs {
    fn bound(&self) -> Bound {
        match (self.as_of, self.until_seq) {
            (Some(t), _) => Bound::AsOf(t),
            (None, Some(n)) => Bound::UntilSequence(n),
            (None, None) => Bound::All,
        }
    }
}

/// `ticketd replay ...`
#[derive(Debug, clap::Subcommand)]
pub enum ReplayCmd {
    /// Replay a ticket's events.
    Ticket {
        /// The ticket number.
        id: i64,
        #[command(flatten)]
        args: ReplayArgs,
    },
    /// Replay an approval's events.
    Approval {
        /// The approval id (a UUID).
        id: uuid::Uuid,
        #[command(flatten)]
        args: ReplayArgs,
    },
}

/// Runs `ticketd replay ...`. Read-only: it connects without migrating.
pub async fn cli(pool: &PgPool, command: ReplayCmd) -> Result<()> {
    let started = std::time::Instant::now();
    let connected = started.elapsed();
    let replay = match &command {
        ReplayCmd::Ticket { id, args } => replay_ticket(pool, *id, args.bound()).await?,
        ReplayCmd::Approval { id, args } => replay_approval(pool, *id, args.bound()).await?,
    };
    let format = match &command {
        ReplayCmd::Ticket { args, .. } | ReplayCmd::Approval { args, .. } => args.format,
    };
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&replay)?,
        Format::Table => replay.to_table(),
    };
    crate::cli::out(&text);
    tracing::debug!(
        events = replay.events.len(),
        connect_ms = connected.as_secs_f64() * 1000.0,
        total_ms = started.elapsed().as_secs_f64() * 1000.0,
        "replayed"
    );
    Ok(())
}

/// One replayed event.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayedEvent {
    pub sequence: i64,
    pub event_type: String,
    pub recorded_at: DateTime<Utc>,
    pub global_position: i64,
    /// Metadata `user_id`.
    pub actor_id: Option<i64>,
    /// The actor's email, if the user is known.
    pub actor: Option<String>,
    /// What changed, in words.
    pub summary: String,
    /// The event's payload (its inner object).
    pub data: Value,
}

/// A replayed aggregate.
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Events in the whole stream.
    pub total_events: usize,
    pub events: Vec<ReplayedEvent>,
    /// The last replayed event's sequence.
    pub version: i64,
    /// The state after the last replayed event (null before the first).
    pub state: Value,
}

impl Replay {
    /// The replay as a table followed by the final state.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} {}: {} of {} events",
            self.aggregate_type,
            self.aggregate_id,
            self.events.len(),
            self.total_events
        );
        let who: Vec<String> = self
            .events
            .iter()
            .map(|e| who(e.actor_id, &e.actor))
            .collect();
        let w = who.iter().map(|w| w.len()).max().unwrap_or(3).max(3);
        let tw = self
            .events
            .iter()
            .map(|e| e.event_type.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(
            s,
            "{:>5}  {:<27}  {:<w$}  {:<tw$}  WHAT",
            "SEQ", "RECORDED AT (UTC)", "WHO", "EVENT"
        );
        for (e, who) in self.events.iter().zip(&who) {
            let _ = writeln!(
                s,
                "{:>5}  {:<27}  {:<w$}  {:<tw$}  {}",
                e.sequence,
                e.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
                who,
                e.event_type,
                e.summary
            );
        }
        let _ = writeln!(s, "\nstate at version {}:", self.version);
        match &self.state {
            Value::Object(map) => {
                let kw = map.keys().map(|k| k.len()).max().unwrap_or(0);
                for (k, v) in map {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let _ = writeln!(s, "  {k:<kw$}  {v}");
                }
            }
            other => {
                let _ = writeln!(s, "  {other}");
            }
        }
        s.trim_end().to_string()
    }
}

fn who(id: Option<i64>, email: &Option<String>) -> String {
    match (id, email) {
        (Some(id), Some(email)) => format!("{email} (#{id})"),
        (Some(id), None) => format!("#{id}"),
        (None, _) => "system".into(),
    }
}

/// User emails by id.
struct Names(HashMap<i64, String>);

impl Names {
    async fn load(pool: &PgPool, ids: BTreeSet<i64>) -> Result<Names> {
        let ids: Vec<i64> = ids.into_iter().collect();
        let rows: Vec<(i64, String)> =
            sqlx::query_as("select id, email from users where id = any($1)")
                .bind(&ids)
                .fetch_all(pool)
                .await?;
        Ok(Names(rows.into_iter().collect()))
    }

    fn get(&self, id: i64) -> String {
        match self.0.get(&id) {
            Some(email) => email.clone(),
            None => format!("user #{id}"),
        }
    }

    fn opt(&self, id: Option<i64>) -> String {
        id.map_or_else(|| "nobody".into(), |id| self.get(id))
    }

    fn list(&self, ids: &[i64]) -> String {
        ids.iter()
            .map(|i| self.get(*i))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn quote(s: &str) -> String {
    const MAX: usize = 60;
    let one_line = s.replace(['\n', '\r'], " ");
    if one_line.chars().count() > MAX {
        format!("{:?}", one_line.chars().take(MAX).collect::<String>() + "…")
    } else {
        format!("{one_line:?}")
    }
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Decoded events with their entries, and every user they name.
fn decode<E: serde::de::DeserializeOwned>(
    entries: &[HistoryEntry],
    users_of: impl Fn(&E) -> Vec<i64>,
) -> Result<(Vec<E>, BTreeSet<i64>)> {
    let mut events = Vec::with_capacity(entries.len());
    let mut users = BTreeSet::new();
    for e in entries {
        let event: E = serde_json::from_value(e.payload.clone()).map_err(|err| {
            format!(
                "event {} ({}) cannot be read: {err}",
                e.sequence, e.event_type
            )
        })?;
        users.extend(e.actor_id());
        users.extend(users_of(&event));
        events.push(event);
    }
    Ok((events, users))
}

fn replayed(e: &HistoryEntry, names: &Names, summary: String) -> ReplayedEvent {
    let actor_id = e.actor_id();
    ReplayedEvent {
        sequence: e.sequence,
        event_type: e.event_type.clone(),
        recorded_at: e.recorded_at,
        global_position: e.global_position,
        actor_id,
        actor: actor_id.and_then(|id| names.0.get(&id).cloned()),
        summary,
        data: e.data(),
    }
}

/// An aggregate that can be replayed: who its events name, how each reads, and the state
/// printed at the end.
trait Replayable: Aggregate + Default {
    fn users(event: &Self::Event) -> Vec<i64>;
    fn describe(&self, event: &Self::Event, names: &Names) -> String;
    /// The state at `version` (only called once the aggregate exists).
    fn state(&self, version: i64, sla: Option<Sla>, people: &NameMap) -> Result<Value>;
    fn exists(&self) -> bool;
    /// The SLA standing at `now` after `events` (sequence, event), where the aggregate has one.
    fn standing(
        events: &[(i64, Self::Event)],
        ctx: &PolicyContext,
        now: DateTime<Utc>,
    ) -> Option<Sla>;
}

impl Replayable for Ticket {
    fn users(event: &TicketEvent) -> Vec<i64> {
        ticket_users(event)
    }

    fn describe(&self, event: &TicketEvent, names: &Names) -> String {
        describe_ticket(self, event, names)
    }

    fn state(&self, version: i64, sla: Option<Sla>, people: &NameMap) -> Result<Value> {
        let mut detail = crate::service::tickets::TicketDetail::from_aggregate(
            self,
            version as usize,
            sla.unwrap_or_default(),
        );
        detail.take_names(people);
        Ok(serde_json::to_value(detail)?)
    }

    fn exists(&self) -> bool {
        Ticket::exists(self)
    }

    fn standing(
        events: &[(i64, TicketEvent)],
        ctx: &PolicyContext,
        now: DateTime<Utc>,
    ) -> Option<Sla> {
        projections::tickets::queries::standing_after(None, events, ctx, now)
    }
}

impl Replayable for Approval {
    fn users(event: &ApprovalEvent) -> Vec<i64> {
        approval_users(event)
    }

    fn describe(&self, event: &ApprovalEvent, names: &Names) -> String {
        describe_approval(self, event, names)
    }

    fn state(&self, version: i64, _sla: Option<Sla>, _people: &NameMap) -> Result<Value> {
        Ok(approval_state(self, version))
    }

    fn exists(&self) -> bool {
        Approval::exists(self)
    }

    fn standing(_: &[(i64, ApprovalEvent)], _: &PolicyContext, _: DateTime<Utc>) -> Option<Sla> {
        None
    }
}

/// Replays the aggregate `A` with id `key` within `bound`.
async fn replay<A: Replayable>(pool: &PgPool, key: String, bound: Bound) -> Result<Replay> {
    let all = crate::service::history::load(pool, A::TYPE, &key, Bound::All).await?;
    if all.is_empty() {
        return Err(format!("there is no {} {key}", A::TYPE).into());
    }
    let total = all.len();
    let entries = crate::service::history::within(all, bound);
    let (events, users) = decode::<A::Event>(&entries, A::users)?;
    let people = crate::service::names::Names::default()
        .of(pool, &users.iter().copied().collect::<Vec<_>>())
        .await?;
    let names = Names::load(pool, users).await?;
    let mut aggregate = A::default();
    let mut out = Vec::with_capacity(entries.len());
    let mut folded = Vec::with_capacity(entries.len());
    for (entry, event) in entries.iter().zip(events) {
        let summary = aggregate.describe(&event, &names);
        out.push(replayed(entry, &names, summary));
        aggregate.apply(event.clone());
        folded.push((entry.sequence, event));
    }
    let version = entries.last().map_or(0, |e| e.sequence);
    let state = if aggregate.exists() {
        // The SLA as it stood at the end of the replay: at `--as-of`, at the last replayed
        // event of `--until-seq`, else now.
        let now = match bound {
            Bound::AsOf(t) => t,
            Bound::UntilSequence(_) => entries.last().map_or_else(Utc::now, |e| e.recorded_at),
            Bound::All => Utc::now(),
        };
        let ctx = policy_in_force(&mut *pool.acquire().await?).await?;
        aggregate.state(version, A::standing(&folded, &ctx, now), &people)?
    } else {
        Value::Null
    };
    Ok(Replay {
        aggregate_type: A::TYPE.into(),
        aggregate_id: key,
        total_events: total,
        events: out,
        version,
        state,
    })
}

/// Replays ticket `id` within `bound`.
pub async fn replay_ticket(pool: &PgPool, id: i64, bound: Bound) -> Result<Replay> {
    replay::<Ticket>(pool, id.to_string(), bound).await
}

/// Replays approval `id` within `bound`.
pub async fn replay_approval(pool: &PgPool, id: uuid::Uuid, bound: Bound) -> Result<Replay> {
    replay::<Approval>(pool, id.to_string(), bound).await
}

fn ticket_users(e: &TicketEvent) -> Vec<i64> {
    match e {
        TicketEvent::TicketOpened { requester_id, .. } => vec![*requester_id],
        TicketEvent::TicketAssigned {
            assignee_id,
            previous_assignee_id,
            ..
        } => assignee_id
            .iter()
            .chain(previous_assignee_id)
            .copied()
            .collect(),
        TicketEvent::CommentAdded(PostedComment { author_id, .. }) => vec![*author_id],
        TicketEvent::CommentEdited { editor_id, .. } => vec![*editor_id],
        TicketEvent::CommentDeleted { deleted_by, .. } => vec![*deleted_by],
        TicketEvent::FirstResponseRecorded { responder_id, .. } => vec![*responder_id],
        TicketEvent::AttachmentAdded(file) => vec![file.uploaded_by],
        TicketEvent::AttachmentRemoved { removed_by, .. } => vec![*removed_by],
        _ => vec![],
    }
}

/// What a ticket event changed, given the state before it.
fn describe_ticket(before: &Ticket, e: &TicketEvent, names: &Names) -> String {
    match e {
        TicketEvent::TicketOpened {
            requester_id,
            fields,
            ..
        } => describe_opened(fields, &names.get(*requester_id)),
        TicketEvent::TicketUpdated { changes, .. } => describe_changes(before, changes),
        TicketEvent::TicketStatusChanged {
            from, to, reason, ..
        } => format!("status {from} → {to}{}", because(reason)),
        TicketEvent::TicketAssigned {
            assignee_id,
            previous_assignee_id,
            ..
        } => describe_assigned(*assignee_id, *previous_assignee_id, names),
        TicketEvent::TicketDeleted { from, reason, .. } => format!(
            "deleted: status {from} → cancelled, hidden from lists{}",
            because(reason)
        ),
        TicketEvent::CommentAdded(_)
        | TicketEvent::CommentEdited { .. }
        | TicketEvent::CommentDeleted { .. }
        | TicketEvent::FirstResponseRecorded { .. } => describe_comment(e, names),
        TicketEvent::AttachmentAdded(file) => format!(
            "attachment {} ({}, {} bytes, sha256 {}) added by {}",
            quote(&file.filename),
            file.content_type,
            file.size,
            short_hash(&file.sha256),
            names.get(file.uploaded_by)
        ),
        TicketEvent::AttachmentRemoved {
            attachment_id,
            removed_by,
            ..
        } => {
            let name = before
                .attachments
                .get(attachment_id)
                .map(|h| format!("{attachment_id} (sha256 {})", short_hash(h)))
                .unwrap_or_else(|| attachment_id.to_string());
            format!("attachment {name} removed by {}", names.get(*removed_by))
        }
        TicketEvent::ApprovalRecorded {
            approval_id,
            status,
            ..
        } => format!(
            "approval {approval_id}: {} → {status}",
            before.current_approval_status()
        ),
    }
}

/// ` (reason: "...")`, or nothing without a reason.
fn because(reason: &Option<String>) -> String {
    reason
        .as_deref()
        .map(|r| format!(" (reason: {})", quote(r)))
        .unwrap_or_default()
}

/// The first 12 hex digits of a sha256 and an ellipsis.
fn short_hash(sha256: &str) -> String {
    format!("{}…", &sha256[..sha256.len().min(12)])
}

fn describe_opened(fields: &TicketFields, requester: &str) -> String {
    format!(
        "opened {} for {requester} (priority {}, type {}, tags: {}{})",
        quote(&fields.title),
        fields.priority,
        fields.ticket_type,
        list(&fields.tags),
        if fields.item_ids.is_empty() {
            String::new()
        } else {
            format!(", items: {}", list(&fields.item_ids))
        }
    )
}

fn describe_changes(before: &Ticket, changes: &TicketChanges) -> String {
    let mut parts = Vec::new();
    if let Some(t) = &changes.title {
        parts.push(format!("title {} → {}", quote(&before.title), quote(t)));
    }
    if let Some(d) = &changes.description {
        parts.push(format!(
            "description {} → {}",
            quote(&before.description),
            quote(d)
        ));
    }
    if let Some(p) = changes.priority {
        parts.push(format!("priority {} → {p}", or_none(before.priority)));
    }
    if let Some(t) = changes.ticket_type {
        parts.push(format!("type {} → {t}", or_none(before.ticket_type)));
    }
    if let Some(tags) = &changes.tags {
        parts.push(format!("tags [{}] → [{}]", list(&before.tags), list(tags)));
    }
    if let Some(items) = &changes.item_ids {
        parts.push(format!(
            "items [{}] → [{}]",
            list(&before.item_ids),
            list(items)
        ));
    }
    if parts.is_empty() {
        "updated (no field changed)".into()
    } else {
        parts.join("; ")
    }
}

fn or_none<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or("none".into(), |v| v.to_string())
}

fn describe_assigned(assignee_id: Option<i64>, previous: Option<i64>, names: &Names) -> String {
    match assignee_id {
        Some(_) => format!(
            "assigned to {} (was {})",
            names.opt(assignee_id),
            names.opt(previous)
        ),
        None => format!("unassigned (was {})", names.opt(previous)),
    }
}

/// What a comment event did; `describe_ticket` hands on only comment events.
fn describe_comment(e: &TicketEvent, names: &Names) -> String {
    match e {
        TicketEvent::CommentAdded(c) => format!(
            "{} {} by {}{}: {}",
            if c.is_internal {
                "internal note"
            } else {
                "comment"
            },
            c.comment_id,
            names.get(c.author_id),
            c.parent_id
                .map(|p| format!(" in reply to {p}"))
                .unwrap_or_default(),
            quote(&c.content)
        ),
        TicketEvent::CommentEdited {
            comment_id,
            editor_id,
            content,
            previous_content,
            ..
        } => format!(
            "comment {comment_id} edited by {}: {} → {}",
            names.get(*editor_id),
            quote(previous_content),
            quote(content)
        ),
        TicketEvent::CommentDeleted {
            comment_id,
            deleted_by,
            ..
        } => format!("comment {comment_id} deleted by {}", names.get(*deleted_by)),
        TicketEvent::FirstResponseRecorded {
            comment_id,
            responder_id,
            ..
        } => format!(
            "first response by {} (comment {comment_id})",
            names.get(*responder_id)
        ),
        other => unreachable!("describe_ticket hands on only comment events, not {other:?}"),
    }
}

fn approval_state(a: &Approval, version: i64) -> Value {
    json!({
        "id": a.id,
        "ticket_id": a.ticket_id,
        "status": a.status(),
        "current_step": a.current_step,
        "steps": a.steps,
        "requested_by": a.requested_by,
        "reason": a.reason,
        "waiting_on": a.waiting_on(),
        "version": version,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
        "finished_at": a.finished_at,
    })
}

fn approval_users(e: &ApprovalEvent) -> Vec<i64> {
    match e {
        ApprovalEvent::ApprovalRequested(ApprovalRequest {
            ticket_requester_id,
            requested_by,
            steps,
            ..
        }) => {
            let mut ids = vec![*ticket_requester_id, *requested_by];
            for s in steps {
                ids.extend(&s.approver_ids);
            }
            ids
        }
        ApprovalEvent::DecisionRecorded { approver_id, .. } => vec![*approver_id],
        ApprovalEvent::DecisionDelegated {
            from_user_id,
            to_user_id,
            ..
        } => vec![*from_user_id, *to_user_id],
        ApprovalEvent::ApprovalRejected { by, .. }
        | ApprovalEvent::ApprovalCancelled { by, .. } => {
            vec![*by]
        }
        _ => vec![],
    }
}

fn step_name(a: &Approval, step: usize) -> String {
    match a.steps.get(step) {
        Some(s) => format!("step {} ({})", step + 1, quote(&s.name)),
        None => format!("step {}", step + 1),
    }
}

/// The requested steps, numbered, with their rules and approvers.
fn describe_steps(steps: &[StepSpec], names: &Names) -> String {
    let steps: Vec<String> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let rule = match s.min_approvals {
                Some(n) => format!("{} {n} of", s.rule.as_str()),
                None => format!("{} of", s.rule.as_str()),
            };
            format!(
                "{}. {} ({rule} {})",
                i + 1,
                quote(&s.name),
                names.list(&s.approver_ids)
            )
        })
        .collect();
    steps.join("; ")
}

/// `: "comment"`, or nothing without a comment.
fn said(comment: &Option<String>) -> String {
    comment
        .as_deref()
        .map(|c| format!(": {}", quote(c)))
        .unwrap_or_default()
}

/// What an approval event changed, given the state before it.
fn describe_approval(before: &Approval, e: &ApprovalEvent, names: &Names) -> String {
    match e {
        ApprovalEvent::ApprovalRequested(ApprovalRequest {
            ticket_id,
            requested_by,
            steps,
            reason,
            ..
        }) => format!(
            "requested for ticket {ticket_id} by {}: {}{}",
            names.get(*requested_by),
            describe_steps(steps, names),
            because(reason)
        ),
        ApprovalEvent::DecisionRecorded {
            step,
            approver_id,
            decision,
            comment,
            ..
        } => format!(
            "{}: {} decided {}{}",
            step_name(before, *step),
            names.get(*approver_id),
            decision.as_str(),
            said(comment)
        ),
        ApprovalEvent::StepCompleted { step, .. } => {
            format!("{} completed", step_name(before, *step))
        }
        ApprovalEvent::DecisionDelegated {
            step,
            from_user_id,
            to_user_id,
            comment,
            ..
        } => format!(
            "{}: {} delegated to {}{}",
            step_name(before, *step),
            names.get(*from_user_id),
            names.get(*to_user_id),
            said(comment)
        ),
        ApprovalEvent::ApprovalGranted { .. } => {
            format!("approval granted (was {})", before.status())
        }
        ApprovalEvent::ApprovalRejected { step, by, .. } => format!(
            "approval rejected at {} by {}",
            step_name(before, *step),
            names.get(*by)
        ),
        ApprovalEvent::ApprovalCancelled { by, .. } => {
            format!("approval cancelled by {}", names.get(*by))
        }
    }
}
