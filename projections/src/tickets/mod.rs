//! The ticket list/search read model (`rm_tickets`, `rm_ticket_counts`,
//! `rm_ticket_tag_counts`, `rm_ticket_search`, `rm_search_words`).
//! A batch is folded in memory per ticket, then written with one upsert per table. Each row
//! carries its ticket's SLA clock ([`crate::sla::clock`], the clock the reports run) and the
//! marks lists sort and filter by, computed with the SLA policy in force at the batch's start.

use std::collections::{BTreeMap, HashMap};

use aggregates::ticket::{PostedComment, TicketEvent};
use aggregates::{Priority, TicketStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::batch::write_json_rows;
use crate::log::StoredEvent;
use crate::runtime::{ApplyError, Tables};
use crate::sla::clock::{clock_time, current_policy, Phase, PolicyContext, SlaClock, SlaMarks};
use crate::sla::standing::SlaFacts;

mod bulk;
pub mod queries;

/// One row of `rm_tickets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, FromRow)]
pub struct TicketRow {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub status: String,
    pub priority: String,
    pub priority_rank: i16,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub ticket_type: String,
    pub requester_id: i64,
    pub assignee_id: Option<i64>,
    pub tags: Vec<String>,
    pub item_ids: Vec<i64>,
    pub approval_status: String,
    pub version: i64,
    pub deleted: bool,
    pub comment_count: i32,
    pub attachment_count: i32,
    pub public_comments: String,
    /// Each live public comment's text in thread order; `public_comments` is their join.
    #[sqlx(json)]
    pub public_comment_texts: Vec<CommentText>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub first_response_at: Option<DateTime<Utc>>,
    /// The SLA clock.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub clock: SlaClock,
    /// What lists sort and filter the SLA by.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub marks: SlaMarks,
}

/// One public comment's part of a ticket's search document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommentText {
    pub id: Uuid,
    pub text: String,
    /// Who wrote it (so that an erasure finds it; absent in rows written before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_id: Option<i64>,
}

/// The sort rank of a priority (low 0 .. critical 3).
pub fn priority_rank(p: Priority) -> i16 {
    match p {
        Priority::Low => 0,
        Priority::Medium => 1,
        Priority::High => 2,
        Priority::Critical => 3,
    }
}

/// Columns of `rm_tickets` in the order of `TicketRow`.
pub const TICKET_COLUMNS: &str = "id, title, description, status, priority, priority_rank, type, \
    requester_id, assignee_id, tags, item_ids, approval_status, version, deleted, comment_count, \
    attachment_count, public_comments, public_comment_texts, created_at, updated_at, resolved_at, \
    first_response_at, sla_running_since, sla_elapsed_us, first_response_due_at, resolution_due_at, \
    first_response_breached_at, resolution_breached_at, policy_version, first_response_warn_at, \
    resolution_warn_at, sla_due_at, sla_warn_at, sla_breach_at";

/// The `tickets` projection.
pub struct TicketsProjection;

impl TicketsProjection {
    /// The checkpoint name.
    pub const NAME: &'static str = "tickets";
}

/// The key of `rm_ticket_counts`: status, priority, type and assignee (0: unassigned).
type CountKey = (String, String, String, i64);

/// What a live row adds to the counts tables: one to its key's row (and to its key's row of
/// each of its tags), and whether it can read `breached` (it has an `sla_breach_at`).
#[derive(Debug, Clone)]
struct Counted {
    key: CountKey,
    breachable: i64,
    tags: Vec<String>,
}

fn counted(row: &TicketRow) -> Option<Counted> {
    (!row.deleted).then(|| Counted {
        key: (
            row.status.clone(),
            row.priority.clone(),
            row.ticket_type.clone(),
            row.assignee_id.unwrap_or(0),
        ),
        breachable: i64::from(row.marks.sla_breach_at.is_some()),
        tags: row.tags.clone(),
    })
}

/// Folds one event into a row (creating it on `TicketOpened`); `ctx` is the SLA policy the
/// clock runs on.
pub fn fold(
    row: Option<TicketRow>,
    event: &TicketEvent,
    sequence: i64,
    ctx: &PolicyContext,
) -> Option<TicketRow> {
    if let TicketEvent::TicketOpened {
        id,
        requester_id,
        fields,
        at,
    } = event
    {
        return Some(opened_row(*id, *requester_id, fields, *at, sequence, ctx));
    }
    let mut row = row?;
    // The events the reports' clock follows; the rest leave it as it is.
    let clocked = event.moves_the_sla_clock();
    let t = clock_time(event.at(), row.updated_at);
    if clocked {
        row.clock.advance(t, &ctx.calendar);
    }
    let priority = row.priority.clone();
    row.version = sequence;
    row.updated_at = event.at();
    apply_event(&mut row, event);
    if clocked {
        row.settle_clock(t, ctx, row.priority != priority);
    }
    Some(row)
}

/// Applies an event's change to the row's own columns.
fn apply_event(row: &mut TicketRow, event: &TicketEvent) {
    match event {
        TicketEvent::TicketOpened { .. } => {}
        TicketEvent::TicketUpdated { changes, .. } => row.update(changes),
        TicketEvent::TicketStatusChanged { to, at, .. } => row.move_to(*to, *at),
        TicketEvent::TicketAssigned { assignee_id, .. } => row.assignee_id = *assignee_id,
        TicketEvent::TicketDeleted { .. } => {
            row.status = TicketStatus::Cancelled.as_str().into();
            row.deleted = true;
        }
        // Internal notes never enter the search document.
        TicketEvent::CommentAdded(PostedComment {
            comment_id,
            is_internal: false,
            content,
            author_id,
            ..
        }) => row.add_comment(*comment_id, *author_id, content),
        TicketEvent::CommentEdited {
            comment_id,
            is_internal: false,
            content,
            previous_content,
            ..
        } => row.edit_comment(*comment_id, content, previous_content),
        TicketEvent::CommentDeleted {
            comment_id,
            is_internal: false,
            ..
        } => row.delete_comment(*comment_id),
        TicketEvent::CommentAdded(_)
        | TicketEvent::CommentEdited { .. }
        | TicketEvent::CommentDeleted { .. } => {}
        TicketEvent::FirstResponseRecorded { at, .. } => {
            row.first_response_at.get_or_insert(*at);
        }
        TicketEvent::AttachmentAdded(_) => row.attachment_count += 1,
        TicketEvent::AttachmentRemoved { .. } => {
            row.attachment_count = (row.attachment_count - 1).max(0)
        }
        TicketEvent::ApprovalRecorded { status, .. } => {
            row.approval_status = status.as_str().into()
        }
    }
}

/// The row of a ticket just opened.
fn opened_row(
    id: i64,
    requester_id: i64,
    fields: &aggregates::ticket::TicketFields,
    at: DateTime<Utc>,
    sequence: i64,
    ctx: &PolicyContext,
) -> TicketRow {
    let mut row = TicketRow {
        id,
        title: fields.title.clone(),
        description: fields.description.clone(),
        status: TicketStatus::Open.as_str().into(),
        priority: fields.priority.as_str().into(),
        priority_rank: priority_rank(fields.priority),
        ticket_type: fields.ticket_type.as_str().into(),
        requester_id,
        assignee_id: None,
        tags: fields.tags.clone(),
        item_ids: fields.item_ids.clone(),
        approval_status: "none".into(),
        version: sequence,
        deleted: false,
        comment_count: 0,
        attachment_count: 0,
        public_comments: String::new(),
        public_comment_texts: Vec::new(),
        created_at: at,
        updated_at: at,
        resolved_at: None,
        first_response_at: None,
        clock: SlaClock {
            sla_running_since: Some(clock_time(at, at)),
            ..SlaClock::default()
        },
        marks: SlaMarks::default(),
    };
    row.settle_clock(clock_time(at, at), ctx, false);
    row
}

impl TicketRow {
    /// What an erasure of `person` leaves of this row: the title and description of a ticket
    /// they requested and the text of their public comments read `"[erased]"`. Returns the
    /// title words that went.
    fn redact(&mut self, person: i64) -> Vec<String> {
        let mut old_words = Vec::new();
        if self.requester_id == person {
            old_words.extend(title_words(&self.title));
            self.title = privacy::ERASED.into();
            self.description = privacy::ERASED.into();
        }
        let mut touched = false;
        for c in &mut self.public_comment_texts {
            if c.author_id == Some(person) {
                c.text = privacy::ERASED.into();
                touched = true;
            }
        }
        if touched {
            self.public_comments = join_texts(&self.public_comment_texts);
        }
        old_words
    }

    /// Settles the clock after an event at `t` and derives the list's marks from it.
    fn settle_clock(&mut self, t: DateTime<Utc>, ctx: &PolicyContext, reevaluate: bool) {
        let (status, priority) = (&self.status, &self.priority);
        let phase = Phase::of(status, self.deleted, priority, self.first_response_at);
        self.clock.settle(&phase, t, ctx, reevaluate);
        self.marks = self.clock.marks(&phase, ctx);
    }

    /// What the row's SLA standing is computed from.
    pub fn sla_facts(&self) -> SlaFacts {
        SlaFacts {
            status: self.status.clone(),
            deleted: self.deleted,
            priority: self.priority.clone(),
            first_response_at: self.first_response_at,
            resolved_at: self.resolved_at,
            clock: self.clock.clone(),
            marks: self.marks.clone(),
        }
    }

    fn update(&mut self, changes: &aggregates::ticket::TicketChanges) {
        if let Some(v) = &changes.title {
            self.title = v.clone();
        }
        if let Some(v) = &changes.description {
            self.description = v.clone();
        }
        if let Some(p) = changes.priority {
            self.priority = p.as_str().into();
            self.priority_rank = priority_rank(p);
        }
        if let Some(t) = changes.ticket_type {
            self.ticket_type = t.as_str().into();
        }
        if let Some(v) = &changes.tags {
            self.tags = v.clone();
        }
        if let Some(v) = &changes.item_ids {
            self.item_ids = v.clone();
        }
    }

    fn move_to(&mut self, to: TicketStatus, at: DateTime<Utc>) {
        self.status = to.as_str().into();
        match to {
            TicketStatus::Resolved => self.resolved_at = Some(at),
            TicketStatus::Open | TicketStatus::InProgress | TicketStatus::Pending => {
                self.resolved_at = None
            }
            _ => {}
        }
    }

    fn add_comment(&mut self, id: Uuid, author_id: i64, content: &str) {
        self.comment_count += 1;
        self.public_comment_texts.push(CommentText {
            id,
            text: content.to_string(),
            author_id: Some(author_id),
        });
        self.public_comments = join_texts(&self.public_comment_texts);
    }

    fn edit_comment(&mut self, id: Uuid, content: &str, previous_content: &str) {
        match self.public_comment_texts.iter_mut().find(|c| c.id == id) {
            Some(part) => {
                part.text = content.to_string();
                self.public_comments = join_texts(&self.public_comment_texts);
            }
            // A row written before per-comment texts were kept.
            None => {
                self.public_comments =
                    replace_once(&self.public_comments, previous_content, content)
            }
        }
    }

    fn delete_comment(&mut self, id: Uuid) {
        self.comment_count = (self.comment_count - 1).max(0);
        let before = self.public_comment_texts.len();
        self.public_comment_texts.retain(|c| c.id != id);
        if self.public_comment_texts.len() != before {
            self.public_comments = join_texts(&self.public_comment_texts);
        }
    }
}

/// The words of a title worth correcting a misspelling towards (lowercase, 3 to 40 letters).
pub fn title_words(title: &str) -> impl Iterator<Item = String> + '_ {
    title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| (3..=40).contains(&w.chars().count()) && !w.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_lowercase)
}

fn join_texts(parts: &[CommentText]) -> String {
    parts
        .iter()
        .map(|c| c.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn replace_once(haystack: &str, old: &str, new: &str) -> String {
    match haystack.find(old) {
        Some(i) if !old.is_empty() => {
            let mut s = String::with_capacity(haystack.len() + new.len());
            s.push_str(&haystack[..i]);
            s.push_str(new);
            s.push_str(&haystack[i + old.len()..]);
            s
        }
        _ => haystack.to_string(),
    }
}

/// What a ticket's search document is made of; None for a deleted ticket (it has none).
type SearchText = (String, String, String);

fn search_text(row: &TicketRow) -> Option<SearchText> {
    (!row.deleted).then(|| {
        (
            row.title.clone(),
            row.description.clone(),
            row.public_comments.clone(),
        )
    })
}

/// Keeps `rm_ticket_search` in line with the changed rows, touching only the tickets whose
/// words changed (most events, such as status changes, leave the document alone).
async fn write_search_documents(
    conn: &mut PgConnection,
    tables: &Tables,
    changed: &[&TicketRow],
    before: &HashMap<i64, Option<SearchText>>,
) -> Result<(), ApplyError> {
    let search = tables.name("rm_ticket_search");
    let mut gone: Vec<i64> = Vec::new();
    let mut write: Vec<&TicketRow> = Vec::new();
    for row in changed {
        let now = search_text(row);
        let was = before.get(&row.id).cloned().flatten();
        match now {
            None if was.is_some() => gone.push(row.id),
            Some(now) if was.as_ref() != Some(&now) => write.push(row),
            _ => {}
        }
    }
    if !gone.is_empty() {
        sqlx::query(&format!("delete from {search} where ticket_id = any($1)"))
            .bind(&gone)
            .execute(&mut *conn)
            .await?;
    }
    if write.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = write.iter().map(|r| r.id).collect();
    let opened: Vec<DateTime<Utc>> = write.iter().map(|r| r.created_at).collect();
    let titles: Vec<&str> = write.iter().map(|r| r.title.as_str()).collect();
    let descriptions: Vec<&str> = write.iter().map(|r| r.description.as_str()).collect();
    let comments: Vec<&str> = write.iter().map(|r| r.public_comments.as_str()).collect();
    sqlx::query(&format!(
        "insert into {search} (ticket_id, opened_at, document)
         select id, opened,
                setweight(ticketd_tsvector(title), 'A') ||
                setweight(ticketd_tsvector(description), 'B') ||
                setweight(ticketd_tsvector(comments), 'C')
           from unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[])
                as u(id, opened, title, description, comments)
         on conflict (ticket_id) do update set document = excluded.document"
    ))
    .bind(&ids)
    .bind(&opened)
    .bind(&titles)
    .bind(&descriptions)
    .bind(&comments)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A decoded ticket event: ticket id, sequence, event.
type Decoded = (i64, i64, TicketEvent);

/// The ticket events of a batch, decoded, with their ticket ids (sorted, once each).
fn decode_batch(events: &[StoredEvent]) -> Result<(Vec<i64>, Vec<Decoded>), ApplyError> {
    let mut ids: Vec<i64> = Vec::new();
    let mut decoded = Vec::with_capacity(events.len());
    for e in events.iter().filter(|e| e.aggregate_type == "ticket") {
        let (id, event) = crate::batch::ticket_event(e)?;
        ids.push(id);
        decoded.push((id, e.sequence, event));
    }
    ids.sort_unstable();
    ids.dedup();
    Ok((ids, decoded))
}

/// The rows of a batch's tickets as stored before it, with what counted and searched them.
struct Before {
    rows: BTreeMap<i64, Option<TicketRow>>,
    counted: HashMap<i64, Option<Counted>>,
    words: HashMap<i64, Option<SearchText>>,
}

/// The stored rows of `ids`, but for the tickets that start in `events` (they have none).
async fn load_before(
    conn: &mut PgConnection,
    tables: &Tables,
    ids: &[i64],
    events: &[StoredEvent],
) -> Result<Before, ApplyError> {
    let sql = format!(
        "select {TICKET_COLUMNS} from {} where id = any($1)",
        tables.name("rm_tickets")
    );
    let existing: Vec<TicketRow> = crate::batch::rows_before(conn, &sql, ids, events).await?;
    let mut before = Before {
        rows: ids.iter().map(|id| (*id, None)).collect(),
        counted: HashMap::new(),
        words: HashMap::new(),
    };
    for row in existing {
        before.counted.insert(row.id, counted(&row));
        before.words.insert(row.id, search_text(&row));
        before.rows.insert(row.id, Some(row));
    }
    Ok(before)
}

async fn apply_tickets(
    conn: &mut PgConnection,
    events: &[StoredEvent],
    tables: &Tables,
) -> Result<(), ApplyError> {
    let (ids, decoded) = decode_batch(events)?;
    if decoded.is_empty() {
        return Ok(());
    }
    let ctx = current_policy(&mut *conn).await?;
    let mut before = load_before(conn, tables, &ids, events).await?;
    let mut rows = std::mem::take(&mut before.rows);
    for (id, sequence, event) in &decoded {
        let slot = rows.entry(*id).or_default();
        *slot = fold(slot.take(), event, *sequence, &ctx);
    }
    let changed: Vec<&TicketRow> = rows.values().flatten().collect();
    if changed.is_empty() {
        return Ok(());
    }
    write_rows(conn, tables, &changed).await?;
    write_search_documents(conn, tables, &changed, &before.words).await?;
    write_vocabulary(conn, tables, &changed).await?;
    write_count_deltas(conn, tables, &changed, &before.counted).await
}

async fn write_rows(
    conn: &mut PgConnection,
    tables: &Tables,
    changed: &[&TicketRow],
) -> Result<(), ApplyError> {
    let sql = format!(
        "insert into {rm} ({TICKET_COLUMNS})
         select {TICKET_COLUMNS} from jsonb_to_recordset($1) as r(
            id bigint, title text, description text, status text, priority text,
            priority_rank smallint, type text, requester_id bigint, assignee_id bigint,
            tags text[], item_ids bigint[], approval_status text, version bigint, deleted boolean,
            comment_count integer, attachment_count integer, public_comments text,
            public_comment_texts jsonb, created_at timestamptz, updated_at timestamptz, resolved_at timestamptz,
            first_response_at timestamptz, sla_running_since timestamptz, sla_elapsed_us bigint,
            first_response_due_at timestamptz, resolution_due_at timestamptz,
            first_response_breached_at timestamptz, resolution_breached_at timestamptz,
            policy_version bigint, first_response_warn_at timestamptz,
            resolution_warn_at timestamptz, sla_due_at timestamptz, sla_warn_at timestamptz,
            sla_breach_at timestamptz)
         on conflict (id) do update set
            title = excluded.title, description = excluded.description, status = excluded.status,
            priority = excluded.priority, priority_rank = excluded.priority_rank, type = excluded.type,
            requester_id = excluded.requester_id, assignee_id = excluded.assignee_id,
            tags = excluded.tags, item_ids = excluded.item_ids,
            approval_status = excluded.approval_status, version = excluded.version,
            deleted = excluded.deleted, comment_count = excluded.comment_count,
            attachment_count = excluded.attachment_count, public_comments = excluded.public_comments,
            public_comment_texts = excluded.public_comment_texts,
            created_at = excluded.created_at, updated_at = excluded.updated_at,
            resolved_at = excluded.resolved_at, first_response_at = excluded.first_response_at,
            sla_running_since = excluded.sla_running_since, sla_elapsed_us = excluded.sla_elapsed_us,
            first_response_due_at = excluded.first_response_due_at,
            resolution_due_at = excluded.resolution_due_at,
            first_response_breached_at = excluded.first_response_breached_at,
            resolution_breached_at = excluded.resolution_breached_at,
            policy_version = excluded.policy_version,
            first_response_warn_at = excluded.first_response_warn_at,
            resolution_warn_at = excluded.resolution_warn_at, sla_due_at = excluded.sla_due_at,
            sla_warn_at = excluded.sla_warn_at, sla_breach_at = excluded.sla_breach_at",
        rm = tables.name("rm_tickets")
    );
    write_json_rows(conn, changed, &sql).await
}

/// The title words of the changed tickets join the vocabulary typos are corrected towards.
async fn write_vocabulary(
    conn: &mut PgConnection,
    tables: &Tables,
    changed: &[&TicketRow],
) -> Result<(), ApplyError> {
    let mut words: Vec<String> = changed.iter().flat_map(|r| title_words(&r.title)).collect();
    words.sort_unstable();
    words.dedup();
    write_words(conn, tables, &words).await
}

/// Adds `words` to the vocabulary.
async fn write_words(
    conn: &mut PgConnection,
    tables: &Tables,
    words: &[String],
) -> Result<(), ApplyError> {
    if !words.is_empty() {
        let vocabulary = tables.name("rm_search_words");
        sqlx::query(&format!(
            "insert into {vocabulary} (word) select unnest($1::text[]) on conflict do nothing"
        ))
        .bind(words)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Signed changes to the counts of one batch: by key, and by tag and key.
#[derive(Default)]
struct CountDeltas {
    keys: HashMap<CountKey, (i64, i64)>,
    tags: HashMap<(String, CountKey), (i64, i64)>,
}

impl CountDeltas {
    fn add(&mut self, c: &Counted, sign: i64) {
        let d = self.keys.entry(c.key.clone()).or_default();
        d.0 += sign;
        d.1 += sign * c.breachable;
        for tag in &c.tags {
            let d = self.tags.entry((tag.clone(), c.key.clone())).or_default();
            d.0 += sign;
            d.1 += sign * c.breachable;
        }
    }
}

/// Moves the changed tickets between the counts of their status, priority, type and assignee
/// (and, per tag, of their tags); rows that fall to zero go, so that the tables depend only on
/// the tickets (a rebuilt read model equals an incremental one).
async fn write_count_deltas(
    conn: &mut PgConnection,
    tables: &Tables,
    changed: &[&TicketRow],
    before: &HashMap<i64, Option<Counted>>,
) -> Result<(), ApplyError> {
    let mut deltas = CountDeltas::default();
    for row in changed {
        if let Some(Some(old)) = before.get(&row.id) {
            deltas.add(old, -1);
        }
        if let Some(new) = counted(row) {
            deltas.add(&new, 1);
        }
    }
    write_deltas(conn, tables, deltas).await
}

/// Adds `deltas` to the counts tables.
async fn write_deltas(
    conn: &mut PgConnection,
    tables: &Tables,
    deltas: CountDeltas,
) -> Result<(), ApplyError> {
    let keys: Vec<(Option<String>, CountKey, (i64, i64))> = deltas
        .keys
        .into_iter()
        .filter(|(_, d)| *d != (0, 0))
        .map(|(k, d)| (None, k, d))
        .collect();
    write_counts(conn, &tables.name("rm_ticket_counts"), &keys).await?;
    let tags: Vec<(Option<String>, CountKey, (i64, i64))> = deltas
        .tags
        .into_iter()
        .filter(|(_, d)| *d != (0, 0))
        .map(|((tag, k), d)| (Some(tag), k, d))
        .collect();
    write_counts(conn, &tables.name("rm_ticket_tag_counts"), &tags).await
}

/// Adds `deltas` (tag, key, (n, breachable)) to a counts table, then removes its rows that
/// fell to zero. With tags, the table is keyed by the tag first.
async fn write_counts(
    conn: &mut PgConnection,
    table: &str,
    deltas: &[(Option<String>, CountKey, (i64, i64))],
) -> Result<(), ApplyError> {
    if deltas.is_empty() {
        return Ok(());
    }
    let tags: Vec<&str> = deltas
        .iter()
        .map(|(t, ..)| t.as_deref().unwrap_or_default())
        .collect();
    let statuses: Vec<&str> = deltas.iter().map(|(_, k, _)| k.0.as_str()).collect();
    let priorities: Vec<&str> = deltas.iter().map(|(_, k, _)| k.1.as_str()).collect();
    let types: Vec<&str> = deltas.iter().map(|(_, k, _)| k.2.as_str()).collect();
    let assignees: Vec<i64> = deltas.iter().map(|(_, k, _)| k.3).collect();
    let tagged = deltas[0].0.is_some();
    let (tag_column, tag_value, tag_match) = if tagged {
        ("tag, ", "k.tag, ", "c.tag = k.tag and ")
    } else {
        ("", "", "")
    };
    let keys = "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
                    as k(tag, status, priority, type, assignee_key)";
    sqlx::query(&format!(
        "insert into {table} as c ({tag_column}status, priority, type, assignee_key, n, breachable)
         select {tag_value}k.status, k.priority, k.type, k.assignee_key, k.n, k.breachable
           from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                       $6::bigint[], $7::bigint[])
                as k(tag, status, priority, type, assignee_key, n, breachable)
         on conflict ({tag_column}status, priority, type, assignee_key) do update
            set n = c.n + excluded.n, breachable = c.breachable + excluded.breachable"
    ))
    .bind(&tags)
    .bind(&statuses)
    .bind(&priorities)
    .bind(&types)
    .bind(&assignees)
    .bind(deltas.iter().map(|(_, _, d)| d.0).collect::<Vec<_>>())
    .bind(deltas.iter().map(|(_, _, d)| d.1).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    // Stored rows count at least one ticket (the zero ones went), so only a delta that is not
    // positive can leave a zero row behind.
    if deltas.iter().all(|(_, _, (n, _))| *n > 0) {
        return Ok(());
    }
    sqlx::query(&format!(
        "delete from {table} c using {keys}
          where {tag_match}c.status = k.status and c.priority = k.priority and c.type = k.type
            and c.assignee_key = k.assignee_key and c.n = 0"
    ))
    .bind(&tags)
    .bind(&statuses)
    .bind(&priorities)
    .bind(&types)
    .bind(&assignees)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An erased person's words leave the list and search: the title and description of the
/// tickets they requested and the text of their public comments read `"[erased]"`, the search
/// documents are rewritten, and title words no other ticket uses leave the vocabulary.
async fn erase_person(
    conn: &mut PgConnection,
    person: i64,
    tables: &Tables,
) -> Result<(), ApplyError> {
    let rows: Vec<TicketRow> = sqlx::query_as(&format!(
        "select {TICKET_COLUMNS} from {} where requester_id = $1
            or public_comment_texts @> jsonb_build_array(jsonb_build_object('author_id', $1::bigint))",
        tables.name("rm_tickets")
    ))
    .bind(person)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let words: HashMap<i64, Option<SearchText>> =
        rows.iter().map(|r| (r.id, search_text(r))).collect();
    let mut old_words: Vec<String> = Vec::new();
    let mut redacted = rows;
    for row in &mut redacted {
        old_words.extend(row.redact(person));
    }
    let changed: Vec<&TicketRow> = redacted.iter().collect();
    write_rows(conn, tables, &changed).await?;
    write_search_documents(conn, tables, &changed, &words).await?;
    write_vocabulary(conn, tables, &changed).await?;
    old_words.sort_unstable();
    old_words.dedup();
    sqlx::query(&format!(
        "delete from {vocabulary} v where v.word = any($1)
            and not exists (select 1 from {rm} t where lower(t.title) like '%' || v.word || '%')",
        vocabulary = tables.name("rm_search_words"),
        rm = tables.name("rm_tickets")
    ))
    .bind(&old_words)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

crate::read_model!(
    TicketsProjection,
    [
        "rm_tickets",
        "rm_ticket_counts",
        "rm_ticket_tag_counts",
        "rm_ticket_search",
        "rm_search_words"
    ],
    apply_tickets,
    erase = erase_person,
    reads = ["ticket"],
    bulk = bulk::load
);

#[cfg(test)]
mod tests {
    use aggregates::ticket::TicketFields;
    use aggregates::TicketType;
    use chrono::TimeZone;

    use super::*;

    fn ctx() -> PolicyContext {
        PolicyContext::new(0, crate::sla::policy::SlaPolicy::default())
    }

    fn opened() -> TicketRow {
        let at = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("time");
        let event = TicketEvent::TicketOpened {
            id: 1,
            requester_id: 7,
            fields: TicketFields {
                title: "t".into(),
                description: "d".into(),
                priority: Priority::Low,
                ticket_type: TicketType::Issue,
                tags: vec![],
                item_ids: vec![],
            },
            at,
        };
        fold(None, &event, 1, &ctx()).expect("row")
    }

    fn add(row: TicketRow, id: Uuid, text: &str, internal: bool) -> TicketRow {
        let event = TicketEvent::CommentAdded(PostedComment {
            comment_id: id,
            author_id: 7,
            content: text.into(),
            is_internal: internal,
            parent_id: None,
            mentions: vec![],
            at: row.updated_at,
        });
        fold(Some(row), &event, 2, &ctx()).expect("row")
    }

    #[test]
    fn edits_and_deletes_change_exactly_their_comment_and_internal_notes_never_enter() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let row = add(opened(), a, "same words", false);
        let row = add(row, b, "secret note", true);
        let row = add(row, c, "same words", false);
        assert_eq!(row.public_comments, "same words\nsame words");
        assert_eq!(row.comment_count, 2);
        let edit = TicketEvent::CommentEdited {
            comment_id: c,
            editor_id: 7,
            content: "changed".into(),
            previous_content: "same words".into(),
            is_internal: false,
            mentions: vec![],
            at: row.updated_at,
        };
        let row = fold(Some(row), &edit, 3, &ctx()).expect("row");
        assert_eq!(row.public_comments, "same words\nchanged");
        let delete = TicketEvent::CommentDeleted {
            comment_id: a,
            deleted_by: 7,
            is_internal: false,
            at: row.updated_at,
        };
        let row = fold(Some(row), &delete, 4, &ctx()).expect("row");
        assert_eq!(row.public_comments, "changed");
        assert_eq!(row.comment_count, 1);
        assert!(!row.public_comments.contains("secret"));
    }
}
