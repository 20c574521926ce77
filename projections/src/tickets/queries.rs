//! Reads of the ticket list read model: the list and search queries (with the search
//! planner) behind `GET /tickets`, `/tickets/search`, an item's tickets and the saved views,
//! their totals and counts, and a ticket's SLA standing.

use aggregates::ticket::TicketEvent;
use aggregates::{ApprovalStatus, Priority, TicketStatus, TicketType};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgPool, Postgres, QueryBuilder};
use utoipa::ToSchema;

use crate::sla::clock::{policy_in_force, PolicyContext};
use crate::sla::policy::SlaPolicy;
use crate::sla::standing::{Sla, SlaFacts};
use crate::tickets::{fold, TicketRow, TICKET_COLUMNS};

/// Relevance ranks the newest this-many matches of a search.
const RELEVANCE_WINDOW: i64 = 200;
/// Searches estimated to match more rows than this report an estimated total.
const EXACT_COUNT_LIMIT: i64 = 2000;

/// A row of `rm_tickets` as lists show it: the read side of [`super::TicketRow`], without
/// the search text and the bookkeeping columns. (Its OpenAPI description stays the one
/// clients know.)
#[derive(Debug, Serialize, ToSchema, FromRow)]
#[schema(description = "A ticket as a list row.")]
pub struct TicketSummary {
    pub id: i64,
    pub title: String,
    #[sqlx(try_from = "String")]
    pub status: TicketStatus,
    #[sqlx(try_from = "String")]
    pub priority: Priority,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    #[sqlx(try_from = "String")]
    pub ticket_type: TicketType,
    pub requester_id: i64,
    /// The requester's display name (filled by the server from its users).
    #[sqlx(skip)]
    pub requester_name: Option<String>,
    pub assignee_id: Option<i64>,
    /// The assignee's display name; `null` when unassigned.
    #[sqlx(skip)]
    pub assignee_name: Option<String>,
    pub tags: Vec<String>,
    #[sqlx(try_from = "String")]
    pub approval_status: ApprovalStatus,
    pub comment_count: i32,
    pub attachment_count: i32,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The SLA at the time of the request.
    #[sqlx(skip)]
    pub sla: Sla,
}

/// Columns of `rm_tickets` in the order of `TicketSummary`, then what its SLA is computed from.
const SUMMARY_COLUMNS: &str = "id, title, status, priority, type, requester_id, assignee_id, \
    tags, approval_status, comment_count, attachment_count, version, created_at, updated_at, \
    resolved_at, deleted, first_response_at, sla_running_since, sla_elapsed_us, \
    first_response_due_at, resolution_due_at, first_response_breached_at, resolution_breached_at, \
    policy_version, first_response_warn_at, resolution_warn_at, sla_due_at, sla_warn_at, \
    sla_breach_at";

/// A list row as read: the summary, and the facts its SLA is computed from.
#[derive(FromRow)]
struct SummaryRow {
    #[sqlx(flatten)]
    summary: TicketSummary,
    #[sqlx(flatten)]
    facts: SlaFacts,
}

impl SummaryRow {
    /// The summary with its SLA standing at `now`.
    fn at(self, now: DateTime<Utc>) -> TicketSummary {
        TicketSummary {
            sla: self.facts.standing(now),
            ..self.summary
        }
    }
}

/// The order of a ticket list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TicketSort {
    CreatedAsc,
    #[default]
    CreatedDesc,
    UpdatedAsc,
    UpdatedDesc,
    PriorityAsc,
    PriorityDesc,
    /// Best match first (newest first without search words).
    Relevance,
    /// The earliest SLA due time first; tickets without one last.
    SlaDue,
}

impl TicketSort {
    /// Parses `created_at`, `-created_at`, `updated_at`, `-updated_at`, `priority`,
    /// `-priority`, `relevance` or `sla_due`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created_at" => Self::CreatedAsc,
            "-created_at" => Self::CreatedDesc,
            "updated_at" => Self::UpdatedAsc,
            "-updated_at" => Self::UpdatedDesc,
            "priority" => Self::PriorityAsc,
            "-priority" => Self::PriorityDesc,
            "relevance" => Self::Relevance,
            "sla_due" => Self::SlaDue,
            _ => return None,
        })
    }

    /// The order of a plain page (a relevance search past its ranked window continues
    /// newest first).
    fn order_by(self) -> &'static str {
        match self {
            Self::CreatedAsc => "created_at asc, id asc",
            Self::CreatedDesc => "created_at desc, id desc",
            Self::UpdatedAsc => "updated_at asc, id asc",
            Self::UpdatedDesc => "updated_at desc, id desc",
            Self::PriorityAsc => "priority_rank asc, created_at desc, id desc",
            Self::PriorityDesc => "priority_rank desc, created_at desc, id desc",
            Self::Relevance => "created_at desc, id desc",
            Self::SlaDue => "sla_due_at asc nulls last, id asc",
        }
    }
}

/// A top-level SLA state a list can be narrowed to (`sla=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaFilter {
    Warning,
    Breached,
}

impl SlaFilter {
    /// Parses `warning` or `breached`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "warning" => Some(Self::Warning),
            "breached" => Some(Self::Breached),
            _ => None,
        }
    }
}

/// Checked filters, order and page of a ticket list or search.
#[derive(Debug, Default, Clone)]
pub struct TicketFilter {
    /// A requester's own tickets only.
    pub requester_scope: Option<i64>,
    pub requester_id: Option<i64>,
    /// Tickets that refer to this item.
    pub item_id: Option<i64>,
    pub statuses: Vec<TicketStatus>,
    pub priorities: Vec<Priority>,
    pub types: Vec<TicketType>,
    pub approvals: Vec<ApprovalStatus>,
    /// `Some(None)`: unassigned tickets.
    pub assignee: Option<Option<i64>>,
    pub tag: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// Search words (trimmed, not empty).
    pub q: Option<String>,
    /// Top-level SLA states (any of them).
    pub sla: Vec<SlaFilter>,
    /// The time SLA states are judged at.
    pub now: DateTime<Utc>,
    pub sort: TicketSort,
    pub offset: i64,
    pub size: i64,
}

impl TicketFilter {
    /// Whether a filter other than status, priority, type and the words applies.
    fn narrowed(&self) -> bool {
        self.requester_scope.is_some()
            || self.requester_id.is_some()
            || self.item_id.is_some()
            || !self.approvals.is_empty()
            || self.assignee.is_some()
            || self.tag.is_some()
            || self.created_from.is_some()
            || self.created_to.is_some()
            || !self.sla.is_empty()
    }

    /// Whether the total can be read from `rm_ticket_counts` or `rm_ticket_tag_counts` (plus
    /// a small range of `rm_tickets` for SLA states): only status, priority, type, assignee,
    /// tag and SLA filters.
    fn countable(&self) -> bool {
        self.q.is_none()
            && self.requester_scope.is_none()
            && self.requester_id.is_none()
            && self.item_id.is_none()
            && self.approvals.is_empty()
            && self.created_from.is_none()
            && self.created_to.is_none()
    }

    /// Whether only the words (and the live-ticket condition) apply.
    fn words_only(&self) -> bool {
        !self.narrowed()
            && self.statuses.is_empty()
            && self.priorities.is_empty()
            && self.types.is_empty()
    }

    /// Whether the rows are ranked by relevance among the newest matches.
    fn ranked_window(&self) -> bool {
        self.q.is_some()
            && self.sort == TicketSort::Relevance
            && self.offset + self.size <= RELEVANCE_WINDOW
    }

    /// A relevance search's page that crosses the end of the ranked window, as its two
    /// parts: the window's last rows, then the older matches newest first (so that paging
    /// with any size shows every match once).
    fn split_at_window(&self) -> Option<(TicketFilter, TicketFilter)> {
        let end = self.offset + self.size;
        let crosses = self.offset < RELEVANCE_WINDOW && end > RELEVANCE_WINDOW;
        (self.q.is_some() && self.sort == TicketSort::Relevance && crosses).then(|| {
            let head = TicketFilter {
                size: RELEVANCE_WINDOW - self.offset,
                ..self.clone()
            };
            let tail = TicketFilter {
                offset: RELEVANCE_WINDOW,
                size: end - RELEVANCE_WINDOW,
                ..self.clone()
            };
            (head, tail)
        })
    }
}

/// The rows of one page and the total they are part of.
#[derive(Debug)]
pub struct TicketPage {
    pub items: Vec<TicketSummary>,
    pub total: i64,
    /// False when `total` is the planner's estimate.
    pub total_exact: bool,
}

/// Words of a search, as a prefix tsquery (`printer:* & fire:*`), or None if no words.
pub fn prefix_tsquery(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(8)
        .map(|w| format!("{}:*", w.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" & "))
}

/// Runs a ticket list or search. A search that finds nothing is retried once with its words
/// corrected towards the vocabulary of ticket titles (typos such as transposed letters).
pub async fn search_tickets(
    pool: &PgPool,
    filter: &TicketFilter,
) -> Result<TicketPage, sqlx::Error> {
    let page = run_search(pool, filter, None).await?;
    let q = filter.q.as_deref().unwrap_or_default();
    if page.total > 0 || q.is_empty() || filter.offset != 0 {
        return Ok(page);
    }
    match corrected_tsquery(pool, q).await? {
        Some(corrected) => run_search(pool, filter, Some(corrected)).await,
        None => Ok(page),
    }
}

/// Each word of `q` replaced by the known title words most similar to it, as a tsquery:
/// `(printer | print) & (jam)`. None when no word has a close match.
async fn corrected_tsquery(pool: &PgPool, q: &str) -> Result<Option<String>, sqlx::Error> {
    let mut parts = Vec::new();
    let mut corrected_any = false;
    for word in q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(6)
    {
        let word = word.to_lowercase();
        let similar: Vec<String> = if word.chars().count() >= 3 {
            sqlx::query_scalar(
                "select word from rm_search_words where word % $1
                  order by similarity(word, $1) desc, word limit 3",
            )
            .bind(&word)
            .fetch_all(pool)
            .await?
        } else {
            Vec::new()
        };
        if similar.is_empty() {
            parts.push(format!("{word}:*"));
        } else {
            corrected_any = true;
            parts.push(format!("({})", similar.join(" | ")));
        }
    }
    Ok(corrected_any.then(|| parts.join(" & ")))
}

/// How rows match the search words.
enum TextMatch {
    /// No words: every row.
    Nothing,
    /// A tsquery over the search documents.
    Words(String),
    /// Search text without a single letter or digit ("!!!", "--"): nothing matches. The
    /// search documents hold no punctuation, nor do trigrams (`pg_trgm` keeps only letters
    /// and digits; checked in `docs/performance.md`, sixth round), so no text search could
    /// match it.
    NoWords,
}

/// A list or search ready to be turned into SQL.
struct Search<'a> {
    filter: &'a TicketFilter,
    text: TextMatch,
    /// The tables the rows come from.
    from: &'static str,
}

/// Where the ranked window found its rows, for the total.
#[derive(Default)]
struct Found {
    plan: Option<SearchPlan>,
    /// How many matches the ranked window holds.
    matched: Option<i64>,
    /// How many documents the walk passed to fill the window.
    walk_passed: Option<i64>,
    /// False when the window was filled by a walk (more matches may exist).
    complete: bool,
}

impl<'a> Search<'a> {
    fn new(filter: &'a TicketFilter, corrected: Option<String>) -> Self {
        let text = match filter.q.as_deref() {
            None => TextMatch::Nothing,
            Some(q) => match corrected.or_else(|| prefix_tsquery(q)) {
                Some(tsq) => TextMatch::Words(tsq),
                None => TextMatch::NoWords,
            },
        };
        let from = match text {
            TextMatch::Words(_) => {
                "rm_tickets join rm_ticket_search s on s.ticket_id = rm_tickets.id"
            }
            _ => "rm_tickets",
        };
        Search { filter, text, from }
    }

    /// Newest first, in the table the ranked window walks.
    fn newest_first(&self) -> &'static str {
        match self.text {
            TextMatch::Words(_) => "s.opened_at desc, s.ticket_id desc",
            _ => "created_at desc, id desc",
        }
    }

    /// Pushes ` where …` with every filter of the search.
    fn push_where(&self, qb: &mut QueryBuilder<'_, Postgres>) {
        let f = self.filter;
        qb.push(" where not deleted");
        for (column, value) in [
            ("requester_id", f.requester_scope),
            ("requester_id", f.requester_id),
        ] {
            if let Some(value) = value {
                qb.push(format_args!(" and {column} = ")).push_bind(value);
            }
        }
        if let Some(item) = f.item_id {
            qb.push(" and item_ids @> array[")
                .push_bind(item)
                .push("]::bigint[]");
        }
        push_dimensions(qb, f);
        push_one_of(
            qb,
            "approval_status",
            f.approvals.iter().map(|s| s.as_str()),
        );
        if let Some(tag) = &f.tag {
            qb.push(" and tags @> ").push_bind(vec![tag.to_lowercase()]);
        }
        if let Some(from) = f.created_from {
            qb.push(" and created_at >= ").push_bind(from);
        }
        if let Some(to) = f.created_to {
            qb.push(" and created_at <= ").push_bind(to);
        }
        push_sla_states(qb, f);
        self.push_text_match(qb);
    }

    fn push_text_match(&self, qb: &mut QueryBuilder<'_, Postgres>) {
        match &self.text {
            TextMatch::Nothing => {}
            TextMatch::Words(tsq) => {
                qb.push(" and s.document @@ ticketd_tsquery(")
                    .push_bind(tsq.clone())
                    .push(")");
            }
            TextMatch::NoWords => {
                qb.push(" and false");
            }
        }
    }

    /// Pushes the rank of a row: how well it matches the words.
    fn push_rank(&self, qb: &mut QueryBuilder<'_, Postgres>) {
        match &self.text {
            TextMatch::Nothing | TextMatch::NoWords => {
                qb.push("0::real");
            }
            TextMatch::Words(tsq) => {
                qb.push("ts_rank_cd(s.document, ticketd_tsquery(")
                    .push_bind(tsq.clone())
                    .push("))");
            }
        }
    }

    /// `select <summary>, <rank> as rank from <source> where …`
    fn push_select(&self, qb: &mut QueryBuilder<'_, Postgres>, source: &str) {
        qb.push(format_args!("select {SUMMARY_COLUMNS}, "));
        self.push_rank(qb);
        qb.push(format_args!(" as rank from {source}"));
        self.push_where(qb);
    }

    fn push_page(&self, qb: &mut QueryBuilder<'_, Postgres>) {
        qb.push(" limit ")
            .push_bind(self.filter.size)
            .push(" offset ")
            .push_bind(self.filter.offset);
    }
}

/// Pushes the conditions on the dimensions `rm_ticket_counts` counts by: status, priority,
/// type and assignee.
fn push_dimensions(qb: &mut QueryBuilder<'_, Postgres>, f: &TicketFilter) {
    push_one_of(qb, "status", f.statuses.iter().map(|s| s.as_str()));
    push_one_of(qb, "priority", f.priorities.iter().map(|s| s.as_str()));
    push_one_of(qb, "type", f.types.iter().map(|s| s.as_str()));
    match f.assignee {
        Some(Some(id)) => {
            qb.push(" and assignee_id = ").push_bind(id);
        }
        Some(None) => {
            qb.push(" and assignee_id is null");
        }
        None => {}
    }
}

/// Pushes the condition that the top-level SLA state is one of `f.sla` at `f.now`.
fn push_sla_states(qb: &mut QueryBuilder<'_, Postgres>, f: &TicketFilter) {
    if f.sla.is_empty() {
        return;
    }
    qb.push(" and (");
    for (i, state) in f.sla.iter().enumerate() {
        if i > 0 {
            qb.push(" or ");
        }
        push_sla_state(qb, *state, f.now);
    }
    qb.push(")");
}

/// The top-level state at `now`, as comparisons with the marks the projection keeps
/// (`SlaFacts::standing` reads them the same way).
fn push_sla_state(qb: &mut QueryBuilder<'_, Postgres>, state: SlaFilter, now: DateTime<Utc>) {
    match state {
        SlaFilter::Breached => {
            qb.push("sla_breach_at < ").push_bind(now);
        }
        SlaFilter::Warning => {
            qb.push("(sla_warn_at < ")
                .push_bind(now)
                .push(" and sla_due_at >= ")
                .push_bind(now)
                .push(")");
        }
    }
}

/// Compares `column` with one value (`=`) or several (`= any(…)`); nothing when none.
/// One value is compared with `=`, not `= any(array)`: only then can PostgreSQL read an
/// index on (column, created_at) in order and stop after a page of rows.
fn push_one_of<'s>(
    qb: &mut QueryBuilder<'_, Postgres>,
    column: &str,
    values: impl Iterator<Item = &'s str>,
) {
    let values: Vec<String> = values.map(str::to_string).collect();
    match values.as_slice() {
        [] => {}
        [one] => {
            qb.push(format_args!(" and {column} = "))
                .push_bind(one.clone());
        }
        _ => {
            qb.push(format_args!(" and {column} = any("))
                .push_bind(values)
                .push(")");
        }
    }
}

async fn run_search(
    pool: &PgPool,
    filter: &TicketFilter,
    corrected: Option<String>,
) -> Result<TicketPage, sqlx::Error> {
    let search = Search::new(filter, corrected.clone());
    let mut conn = pool.acquire().await?;
    let (items, found) = if let Some((head, tail)) = filter.split_at_window() {
        let (mut items, found) =
            ranked_page(&mut conn, &Search::new(&head, corrected.clone())).await?;
        items.extend(plain_page(&mut conn, &Search::new(&tail, corrected)).await?);
        (items, found)
    } else if filter.ranked_window() {
        ranked_page(&mut conn, &search).await?
    } else {
        let items = plain_page(&mut conn, &search).await?;
        (items, Found::default())
    };
    let (total, total_exact) = total(&mut conn, &search, &items, &found).await?;
    Ok(TicketPage {
        items,
        total,
        total_exact,
    })
}

/// A page in the order the filter asks for (past the ranked window, a relevance search
/// continues newest first).
async fn plain_page(
    conn: &mut PgConnection,
    search: &Search<'_>,
) -> Result<Vec<TicketSummary>, sqlx::Error> {
    let mut qb = QueryBuilder::new("");
    search.push_select(&mut qb, search.from);
    qb.push(" order by ").push(search.filter.sort.order_by());
    search.push_page(&mut qb);
    let rows: Vec<SummaryRow> = qb.build_query_as().fetch_all(conn).await?;
    let now = search.filter.now;
    Ok(rows.into_iter().map(|r| r.at(now)).collect())
}

/// A row of the ranked window, with how many matches the window holds.
#[derive(FromRow)]
struct RankedRow {
    #[sqlx(flatten)]
    summary: SummaryRow,
    matched: i64,
    /// The window's oldest match and the newest search document, by ticket id.
    oldest_id: i64,
    newest_id: Option<i64>,
}

/// Best match first among the newest matches: ranking every match of a common word in a
/// million tickets would cost far more than the answer is worth. The estimated window
/// first; if it holds too few matches (the newest tickets are unlike the rest), the longest
/// walk; then the index.
async fn ranked_page(
    conn: &mut PgConnection,
    search: &Search<'_>,
) -> Result<(Vec<TicketSummary>, Found), sqlx::Error> {
    let plan = match &search.text {
        TextMatch::Words(tsq) => Some(SearchPlan::estimate(conn, search, tsq).await?),
        _ => None,
    };
    // Scoped searches (a requester's own tickets) are driven by the scope, not the words.
    let scoped = search.filter.requester_scope.is_some() || search.filter.requester_id.is_some();
    let walk = plan
        .as_ref()
        .and_then(|p| (!scoped).then(|| p.walk_rows()).flatten());
    let mut found = Found {
        plan,
        complete: true,
        ..Found::default()
    };
    let mut rows = None;
    for window in SearchPlan::windows(walk) {
        let source = format!(
            "(select ticket_id, opened_at, document from rm_ticket_search
               order by opened_at desc, ticket_id desc limit {window}) s
             join rm_tickets on rm_tickets.id = s.ticket_id"
        );
        let got = ranked_rows(conn, search, &source).await?;
        if let Some(first) = got.first().filter(|r| r.matched >= RELEVANCE_WINDOW) {
            found.complete = false;
            // Ticket ids follow the order the walk takes: from the newest ticket down to
            // the window's oldest match is what it passed (give or take deleted ones).
            found.walk_passed = first.newest_id.map(|newest| newest - first.oldest_id + 1);
            rows = Some(got);
            break;
        }
    }
    let rows = match rows {
        Some(rows) => rows,
        None => ranked_rows(conn, search, search.from).await?,
    };
    found.matched = Some(rows.first().map_or(0, |r| r.matched));
    let now = search.filter.now;
    Ok((rows.into_iter().map(|r| r.summary.at(now)).collect(), found))
}

/// The page of the newest `RELEVANCE_WINDOW` matches in `source`, best match first.
async fn ranked_rows(
    conn: &mut PgConnection,
    search: &Search<'_>,
    source: &str,
) -> Result<Vec<RankedRow>, sqlx::Error> {
    let mut qb = QueryBuilder::new(
        "select *, count(*) over () as matched, min(id) over () as oldest_id,
                (select max(ticket_id) from rm_ticket_search) as newest_id from (",
    );
    search.push_select(&mut qb, source);
    qb.push(format_args!(
        " order by {} limit {RELEVANCE_WINDOW}) window_ order by rank desc, created_at desc, id desc",
        search.newest_first()
    ));
    search.push_page(&mut qb);
    qb.build_query_as().fetch_all(conn).await
}

/// The total of a list, and whether it is exact.
async fn total(
    conn: &mut PgConnection,
    search: &Search<'_>,
    items: &[TicketSummary],
    found: &Found,
) -> Result<(i64, bool), sqlx::Error> {
    let f = search.filter;
    let listed = items.len() as i64;
    if f.countable() {
        return Ok((counted_total(conn, f).await?, true));
    }
    if f.offset == 0 && listed < f.size {
        return Ok((listed, true));
    }
    if let Some(m) = found
        .matched
        .filter(|m| found.complete && *m < RELEVANCE_WINDOW)
    {
        // The ranked window holds every match.
        return Ok((m, true));
    }
    // A search matching a large part of the desk answers with the planner's estimate
    // (`total_exact: false`) instead of counting tens of thousands of rows.
    let estimate = match &found.plan {
        Some(p) => Some((p.rows, p.upper)),
        None if f.q.is_some() => {
            let rows = explain_rows(conn, search.query("explain (format json) select 1")).await?;
            Some((rows, rows))
        }
        None => None,
    };
    match estimate {
        Some((rows, upper)) if upper > EXACT_COUNT_LIMIT => {
            Ok((estimated_total(found, rows, f.offset + listed), false))
        }
        _ => {
            let mut qb = search.query("select count(*)");
            Ok((qb.build_query_scalar().fetch_one(conn).await?, true))
        }
    }
}

/// The planner multiplies the words' frequencies as if they were independent, which is far
/// too low for words that come together ("payroll system"); the share of matches among the
/// documents the walk passed is not fooled by that, but is low when the newest tickets are
/// unlike the rest: the larger of the two (and never less than what was seen).
fn estimated_total(found: &Found, rows: i64, seen: i64) -> i64 {
    let walked = match (found.walk_passed, &found.plan) {
        (Some(passed), Some(p)) => RELEVANCE_WINDOW * p.documents / passed.max(1),
        _ => 0,
    };
    walked.max(rows).max(seen).max(found.matched.unwrap_or(0))
}

impl Search<'_> {
    /// `<select> from <from> where …`
    fn query(&self, select: &str) -> QueryBuilder<'static, Postgres> {
        let mut qb = QueryBuilder::new(format!("{select} from {}", self.from));
        self.push_where(&mut qb);
        qb
    }
}

/// The exact total of a filter on status, priority, type, assignee and SLA states, from the
/// counts table: one statement. A state that depends on the time is a small range of the
/// list's marks: `warning` is among the tickets not yet due, and `breached` is every ticket
/// with a breach time less those whose breach time is still ahead.
async fn counted_total(conn: &mut PgConnection, f: &TicketFilter) -> Result<i64, sqlx::Error> {
    let counts = match f.tag {
        Some(_) => "rm_ticket_tag_counts",
        None => "rm_ticket_counts",
    };
    let mut qb = QueryBuilder::new("select (0");
    if f.sla.is_empty() {
        qb.push(format_args!(
            " + (select coalesce(sum(n), 0) from {counts} where true"
        ));
        push_count_keys(&mut qb, f);
        qb.push(")");
    }
    for state in &f.sla {
        match state {
            SlaFilter::Breached => {
                qb.push(format_args!(
                    " + (select coalesce(sum(breachable), 0) from {counts} where true"
                ));
                push_count_keys(&mut qb, f);
                qb.push(
                    ") - (select count(*) from rm_tickets where not deleted and sla_breach_at >= ",
                )
                .push_bind(f.now);
            }
            SlaFilter::Warning => {
                qb.push(" + (select count(*) from rm_tickets where not deleted and ");
                push_sla_state(&mut qb, SlaFilter::Warning, f.now);
            }
        }
        push_dimensions(&mut qb, f);
        if let Some(tag) = &f.tag {
            qb.push(" and tags @> ").push_bind(vec![tag.to_lowercase()]);
        }
        qb.push(")");
    }
    qb.push(")::bigint");
    qb.build_query_scalar().fetch_one(conn).await
}

/// Pushes the conditions on the keys of `rm_ticket_counts` or `rm_ticket_tag_counts`
/// (assignee 0: unassigned).
fn push_count_keys(qb: &mut QueryBuilder<'_, Postgres>, f: &TicketFilter) {
    if let Some(tag) = &f.tag {
        qb.push(" and tag = ").push_bind(tag.to_lowercase());
    }
    for (column, values) in [
        (
            "status",
            f.statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        ),
        (
            "priority",
            f.priorities.iter().map(|s| s.as_str()).collect(),
        ),
        ("type", f.types.iter().map(|s| s.as_str()).collect()),
    ] {
        if !values.is_empty() {
            let values: Vec<String> = values.into_iter().map(str::to_string).collect();
            qb.push(format_args!(" and {column} = any("))
                .push_bind(values)
                .push(")");
        }
    }
    if let Some(assignee) = f.assignee {
        qb.push(" and assignee_key = ")
            .push_bind(assignee.unwrap_or(0));
    }
}

/// How many tickets a filter matches, and whether the figure is exact (a search over words
/// that match thousands of tickets answers the estimate its list shows). Lists show the same
/// figure as their `total`.
pub async fn count_tickets(
    pool: &PgPool,
    filter: &TicketFilter,
) -> Result<(i64, bool), sqlx::Error> {
    if filter.q.is_some() {
        let first = TicketFilter {
            offset: 0,
            size: 1,
            ..filter.clone()
        };
        let page = search_tickets(pool, &first).await?;
        return Ok((page.total, page.total_exact));
    }
    let mut conn = pool.acquire().await?;
    if filter.countable() {
        return Ok((counted_total(&mut conn, filter).await?, true));
    }
    let search = Search::new(filter, None);
    let mut qb = search.query("select count(*)");
    Ok((qb.build_query_scalar().fetch_one(&mut *conn).await?, true))
}

/// A ticket's SLA standing at `now` as of its `version`: the list row's clock, carried
/// through the events the projection has not applied yet (those a command just committed)
/// with the policy in force. A read of a ticket the projection is up to date with costs one
/// query (the row); a command's answer one more (the events after the row and the policy).
/// None if the ticket has no events.
pub async fn ticket_sla(
    pool: &PgPool,
    id: i64,
    version: i64,
    now: DateTime<Utc>,
) -> Result<Option<Sla>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let row: Option<TicketRow> = sqlx::query_as(&format!(
        "select {TICKET_COLUMNS} from rm_tickets where id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let applied = row.as_ref().map_or(0, |r| r.version);
    if applied >= version {
        return Ok(row.map(|r| r.sla_facts().standing(now)));
    }
    let (tail, policy): (serde_json::Value, Option<serde_json::Value>) = sqlx::query_as(
        "select coalesce((select jsonb_agg(jsonb_build_array(sequence, payload) order by sequence)
                            from events
                           where aggregate_type = 'ticket' and aggregate_id = $1
                             and sequence > $2 and sequence <= $3), '[]'),
                (select jsonb_build_array(id, policy) from sla_policies order by id desc limit 1)",
    )
    .bind(id.to_string())
    .bind(applied)
    .bind(version)
    .fetch_one(&mut *conn)
    .await?;
    let decode = |e: serde_json::Error| sqlx::Error::Decode(e.into());
    let mut tail: Vec<(i64, serde_json::Value)> = serde_json::from_value(tail).map_err(decode)?;
    let mut payloads: Vec<&mut serde_json::Value> = tail.iter_mut().map(|e| &mut e.1).collect();
    crate::log::open_values(&mut *conn, &mut payloads).await?;
    let ctx = match policy {
        None => PolicyContext::new(0, SlaPolicy::default()),
        Some(p) => {
            let (version, policy): (i64, SlaPolicy) = serde_json::from_value(p).map_err(decode)?;
            PolicyContext::new(version, policy)
        }
    };
    Ok(standing_after(row, &decode_events(tail)?, &ctx, now))
}

/// The SLA standing at `now` of a ticket whose events (sequence, event) are these, folded
/// from the start with the policy in force (a ticket as it was at a past time).
pub async fn sla_of_events(
    pool: &PgPool,
    events: &[(i64, TicketEvent)],
    now: DateTime<Utc>,
) -> Result<Option<Sla>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    fold_sla(&mut conn, None, events, now).await
}

fn decode_events(
    stored: Vec<(i64, serde_json::Value)>,
) -> Result<Vec<(i64, TicketEvent)>, sqlx::Error> {
    stored
        .into_iter()
        .map(|(sequence, payload)| {
            serde_json::from_value(payload)
                .map(|e| (sequence, e))
                .map_err(|e| sqlx::Error::Decode(e.into()))
        })
        .collect()
}

async fn fold_sla(
    conn: &mut PgConnection,
    row: Option<TicketRow>,
    events: &[(i64, TicketEvent)],
    now: DateTime<Utc>,
) -> Result<Option<Sla>, sqlx::Error> {
    let ctx = policy_in_force(conn).await?;
    Ok(standing_after(row, events, &ctx, now))
}

/// The SLA standing at `now` of `row` (None: a ticket not yet opened) after `events`
/// (sequence, event), folded as the projection folds them under `ctx`.
pub fn standing_after(
    row: Option<TicketRow>,
    events: &[(i64, TicketEvent)],
    ctx: &PolicyContext,
    now: DateTime<Utc>,
) -> Option<Sla> {
    let row = events.iter().fold(row, |row, (sequence, event)| {
        fold(row, event, *sequence, ctx)
    });
    row.map(|r| r.sla_facts().standing(now))
}

/// The planner's estimate of the rows a query returns (`qb` holds `explain (format json) …`).
async fn explain_rows(
    conn: &mut PgConnection,
    mut qb: QueryBuilder<'_, Postgres>,
) -> Result<i64, sqlx::Error> {
    let plan: serde_json::Value = qb.build_query_scalar().fetch_one(conn).await?;
    Ok(plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0) as i64)
}

/// How a ranked search finds the newest matches of its words.
///
/// Two ways, each fast where the other is slow:
/// - the full-text (GIN) index hands over every match, which are then ordered by age: cheap
///   for rare words, but a word in every twentieth ticket means fetching 50,000 rows;
/// - a walk through the search documents newest first stops at the 200th match: cheap for
///   common words, but a rare word means walking the whole desk.
///
/// The planner picks between them by its estimate for the whole query, which multiplies
/// the words' frequencies as if they were independent. Words of a ticket are not ("payroll
/// system" always come together), so it can guess 2,000 matches where there are 50,000 and
/// fetch them all. Here the upper bound is the rarest word's own frequency: a search walks
/// when that word is common, over a window sized from the estimate (too large a window costs
/// nothing, the walk stops at the 200th match), and falls back to the index when the window
/// turns out to hold too few matches.
struct SearchPlan {
    /// The planner's estimate for the whole query.
    rows: i64,
    /// At most this many documents match: the rarest word's estimate.
    upper: i64,
    /// Search documents in all.
    documents: i64,
}

impl SearchPlan {
    /// Words at most this common are fetched through the index.
    const RARE: i64 = 2_000;
    /// The longest walk before falling back to the index.
    const MAX_WALK: i64 = 300_000;

    async fn estimate(
        conn: &mut PgConnection,
        search: &Search<'_>,
        tsquery: &str,
    ) -> Result<Self, sqlx::Error> {
        let parts: Vec<&str> = tsquery.split(" & ").collect();
        // Only the words and the live-ticket condition: the words' estimate is the query's.
        let rows = if search.filter.words_only() && parts.len() == 1 {
            None
        } else {
            Some(explain_rows(conn, search.query("explain (format json) select 1")).await?)
        };
        let mut upper = i64::MAX;
        for part in parts {
            let mut qb = QueryBuilder::new(
                "explain (format json) select 1 from rm_ticket_search
                  where document @@ ticketd_tsquery(",
            );
            qb.push_bind(part.to_string()).push(")");
            upper = upper.min(explain_rows(conn, qb).await?);
        }
        let documents: f32 = sqlx::query_scalar(
            "select greatest(reltuples, 0) from pg_class where oid = 'rm_ticket_search'::regclass",
        )
        .fetch_one(conn)
        .await?;
        let rows = rows.unwrap_or(upper);
        Ok(SearchPlan {
            rows,
            upper: upper.max(rows),
            documents: documents as i64,
        })
    }

    /// How many of the newest documents to walk, or None to go through the index.
    fn walk_rows(&self) -> Option<i64> {
        if self.upper <= Self::RARE || self.documents <= 0 {
            return None;
        }
        // Ten times the rows that should hold the window's matches: a window too large
        // costs nothing (the walk stops at the last match it needs), one too small costs a
        // second walk, and the newest tickets are often unlike the rest.
        let window = RELEVANCE_WINDOW * 10 * self.documents / self.rows.max(1);
        Some(window.clamp(RELEVANCE_WINDOW * 100, Self::MAX_WALK))
    }

    /// The walks to try: the estimated one, then the longest.
    fn windows(walk: Option<i64>) -> Vec<i64> {
        match walk {
            Some(w) if w < Self::MAX_WALK => vec![w, Self::MAX_WALK],
            Some(w) => vec![w],
            None => vec![],
        }
    }
}
