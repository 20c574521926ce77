//! Ticket list and search queries on the read models, and the log position of a ticket event.

use aggregates::{ApprovalStatus, Priority, TicketStatus, TicketType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, FromRow, PgPool};
use utoipa::{IntoParams, ToSchema};

use crate::service::error::{Error, Validator};
use crate::service::paging::Page;

/// Relevance ranks the newest this-many matches of a search.
const RELEVANCE_WINDOW: i64 = 200;
/// Searches estimated to match more rows than this report an estimated total.
const EXACT_COUNT_LIMIT: i64 = 2000;

/// A ticket as a list row.
#[derive(Debug, Serialize, ToSchema, FromRow)]
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
    pub assignee_id: Option<i64>,
    pub tags: Vec<String>,
    #[sqlx(try_from = "String")]
    pub approval_status: ApprovalStatus,
    pub comment_count: i32,
    pub attachment_count: i32,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// The page of `TicketSummary` rows answered by list and search (OpenAPI name).
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketListResponse {
    pub items: Vec<TicketSummary>,
    pub total: i64,
    pub page: i64,
    pub size: i64,
    pub pages: i64,
    /// False when `total` is an estimate (searches matching thousands of tickets).
    pub total_exact: bool,
}

/// Filters, sort and paging of `GET /tickets` and `/tickets/search`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketListQueryParams {
    /// Words to search for (search-as-you-type: the last word may be a prefix).
    pub q: Option<String>,
    /// One status or several, comma-separated.
    pub status: Option<String>,
    /// One priority or several, comma-separated.
    pub priority: Option<String>,
    /// One type or several, comma-separated.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub ticket_type: Option<String>,
    /// An agent's id, or `none` for unassigned tickets.
    pub assignee_id: Option<String>,
    pub requester_id: Option<i64>,
    pub tag: Option<String>,
    pub approval_status: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// `created_at`, `-created_at` (default), `updated_at`, `-updated_at`, `priority`,
    /// `-priority`, `relevance`.
    pub sort: Option<String>,
    pub page: Option<i64>,
    pub size: Option<i64>,
}

fn parse_list<T>(
    v: &mut Validator,
    field: &str,
    raw: &Option<String>,
    parse: fn(&str) -> Option<T>,
) -> Vec<T> {
    let Some(raw) = raw else { return vec![] };
    let mut out = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match parse(part) {
            Some(x) => out.push(x),
            None => v.check_query(false, field, &format!("Unknown {field} '{part}'")),
        }
    }
    out
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

/// Runs a ticket list or search. `requester_scope` limits a requester to their own tickets.
/// A search that finds nothing is retried once with its words corrected towards the
/// vocabulary of ticket titles (typos such as transposed letters).
pub async fn search_tickets(
    pool: &PgPool,
    query: &TicketListQueryParams,
    requester_scope: Option<i64>,
) -> Result<Page<TicketSummary>, Error> {
    let page = run_search(pool, query, requester_scope, None).await?;
    let q = query.q.as_deref().map(str::trim).unwrap_or_default();
    if page.total > 0 || q.is_empty() || query.page.unwrap_or(1) != 1 {
        return Ok(page);
    }
    match corrected_tsquery(pool, q).await? {
        Some(corrected) => run_search(pool, query, requester_scope, Some(&corrected)).await,
        None => Ok(page),
    }
}

/// Each word of `q` replaced by the known title words most similar to it, as a tsquery:
/// `(printer | print) & (jam)`. None when no word has a close match.
async fn corrected_tsquery(pool: &PgPool, q: &str) -> Result<Option<String>, Error> {
    let mut parts = Vec::new();
    let mut corrected_any = false;
    for word in q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(6)
    {
        let word = word.to_lowercase();
        let similar: Vec<(String,)> = if word.chars().count() >= 3 {
            sqlx::query_as(
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
            let alternatives: Vec<String> = similar.into_iter().map(|(w,)| w).collect();
            parts.push(format!("({})", alternatives.join(" | ")));
        }
    }
    Ok(corrected_any.then(|| parts.join(" & ")))
}

async fn run_search(
    pool: &PgPool,
    query: &TicketListQueryParams,
    requester_scope: Option<i64>,
    corrected: Option<&str>,
) -> Result<Page<TicketSummary>, Error> {
    let mut v = Validator::default();
    let (page, size, offset) = crate::service::paging::paging(&mut v, query.page, query.size);
    let statuses = parse_list(&mut v, "status", &query.status, TicketStatus::parse);
    let priorities = parse_list(&mut v, "priority", &query.priority, Priority::parse);
    let types = parse_list(&mut v, "type", &query.ticket_type, TicketType::parse);
    let approvals = parse_list(
        &mut v,
        "approval_status",
        &query.approval_status,
        ApprovalStatus::parse,
    );
    let assignee: Option<Option<i64>> = match query.assignee_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("none") | Some("null") => Some(None),
        Some(s) => match s.parse() {
            Ok(id) => Some(Some(id)),
            Err(_) => {
                v.check_query(
                    false,
                    "assignee_id",
                    "assignee_id must be a user id or 'none'",
                );
                None
            }
        },
    };
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    v.check_query(
        q.is_none_or(|q| q.chars().count() <= 200),
        "q",
        "q must be at most 200 characters",
    );
    let sort = query.sort.as_deref().unwrap_or(if q.is_some() {
        "relevance"
    } else {
        "-created_at"
    });
    let order = match sort {
        "created_at" => "created_at asc, id asc",
        "-created_at" => "created_at desc, id desc",
        "updated_at" => "updated_at asc, id asc",
        "-updated_at" => "updated_at desc, id desc",
        "priority" => "priority_rank asc, created_at desc, id desc",
        "-priority" => "priority_rank desc, created_at desc, id desc",
        "relevance" if q.is_some() => "rank desc, created_at desc, id desc",
        "relevance" => "created_at desc, id desc",
        _ => {
            v.check_query(false, "sort", "Unknown sort");
            "created_at desc, id desc"
        }
    };
    if let (Some(from), Some(to)) = (query.created_from, query.created_to) {
        v.check_query(
            from <= to,
            "created_from",
            "created_from must not be after created_to",
        );
    }
    v.finish()?;

    let mut args = PgArguments::default();
    let mut conds: Vec<String> = vec!["not deleted".into()];
    let mut n = 0;
    // Binds a value and yields its placeholder.
    macro_rules! push {
        ($value:expr) => {{
            n += 1;
            args.add($value).map_err(Error::internal)?;
            format!("${n}")
        }};
    }
    // Only the status/priority/type filters can be answered from the counts table.
    let mut countable = true;
    if let Some(me) = requester_scope {
        let p = push!(me);
        conds.push(format!("requester_id = {p}"));
        countable = false;
    }
    if let Some(r) = query.requester_id {
        let p = push!(r);
        conds.push(format!("requester_id = {p}"));
        countable = false;
    }
    let status_strs: Vec<String> = statuses.iter().map(|s| s.as_str().to_string()).collect();
    let priority_strs: Vec<String> = priorities.iter().map(|s| s.as_str().to_string()).collect();
    let type_strs: Vec<String> = types.iter().map(|s| s.as_str().to_string()).collect();
    // One value is compared with `=`, not `= any(array)`: only then can PostgreSQL read
    // an index on (column, created_at) in order and stop after a page of rows.
    let approval_strs: Vec<String> = approvals.iter().map(|s| s.as_str().to_string()).collect();
    for (column, values) in [
        ("status", &status_strs),
        ("priority", &priority_strs),
        ("type", &type_strs),
        ("approval_status", &approval_strs),
    ] {
        match values.as_slice() {
            [] => {}
            [one] => {
                let p = push!(one.clone());
                conds.push(format!("{column} = {p}"));
            }
            many => {
                let p = push!(many.to_vec());
                conds.push(format!("{column} = any({p})"));
            }
        }
    }
    if !approval_strs.is_empty() {
        countable = false;
    }
    match assignee {
        Some(Some(id)) => {
            let p = push!(id);
            conds.push(format!("assignee_id = {p}"));
            countable = false;
        }
        Some(None) => {
            conds.push("assignee_id is null".into());
            countable = false;
        }
        None => {}
    }
    if let Some(tag) = query
        .tag
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let p = push!(vec![tag.to_lowercase()]);
        conds.push(format!("tags @> {p}"));
        countable = false;
    }
    if let Some(from) = query.created_from {
        let p = push!(from);
        conds.push(format!("created_at >= {p}"));
        countable = false;
    }
    if let Some(to) = query.created_to {
        let p = push!(to);
        conds.push(format!("created_at <= {p}"));
        countable = false;
    }
    let mut rank = "0::real".to_string();
    let mut from = "rm_tickets";
    // Newest first, in the table the ranked window walks.
    let mut newest_first = "created_at desc, id desc";
    let mut text_query: Option<String> = None;
    if let Some(q) = q {
        countable = false;
        let tsquery = match corrected {
            Some(c) => Some(c.to_string()),
            None => prefix_tsquery(q),
        };
        match tsquery {
            Some(tsq) => {
                text_query = Some(tsq.clone());
                let tsq = push!(tsq);
                from = "rm_tickets join rm_ticket_search s on s.ticket_id = rm_tickets.id";
                newest_first = "s.opened_at desc, s.ticket_id desc";
                conds.push(format!("s.document @@ to_tsquery('english', {tsq})"));
                rank = format!("ts_rank_cd(s.document, to_tsquery('english', {tsq}))");
            }
            None => {
                // No words at all (only punctuation): match titles by trigram similarity.
                let text = push!(q.to_string());
                conds.push(format!("{text} <% title"));
                rank = format!("word_similarity({text}, title)");
            }
        }
    }
    let where_sql = conds.join(" and ");
    let count_args = args.clone();
    let ranked_window = q.is_some() && sort == "relevance" && offset + size <= RELEVANCE_WINDOW;
    let order = if q.is_some() && sort == "relevance" && !ranked_window {
        // Past the ranked window, results continue newest first.
        "created_at desc, id desc"
    } else {
        order
    };
    let limit = push!(size);
    let off = push!(offset);
    let columns = "id, title, status, priority, type, requester_id, assignee_id, tags,
                    approval_status, comment_count, attachment_count, version, created_at,
                    updated_at, resolved_at";
    let mut conn = pool.acquire().await?;
    // A ranked text search first estimates how common its words are, to pick how it finds
    // the newest matches (see `SearchPlan`).
    let plan = match &text_query {
        Some(tsq) if ranked_window => {
            // Only the words and the live-ticket condition: the words' estimate is the query's.
            let words_only = conds.len() == 2;
            Some(
                SearchPlan::estimate(&mut conn, tsq, words_only, from, &where_sql, &count_args)
                    .await?,
            )
        }
        _ => None,
    };
    // Scoped searches (a requester's own tickets) are driven by the scope, not the words.
    let scoped = requester_scope.is_some() || query.requester_id.is_some();
    let walk = plan
        .as_ref()
        .and_then(|p| (!scoped).then(|| p.walk_rows()).flatten());
    let ranked_sql = |source: &str| {
        format!(
            "select *, count(*) over () as matched, min(id) over () as oldest_id,
                    (select max(ticket_id) from rm_ticket_search) as newest_id from (
                 select {columns}, {rank} as rank from {source} where {where_sql}
                  order by {newest_first} limit {RELEVANCE_WINDOW}) window_
              order by rank desc, created_at desc, id desc limit {limit} offset {off}"
        )
    };
    let mut matched: Option<i64> = None;
    let mut walk_passed: Option<i64> = None;
    let mut complete = true;
    let items: Vec<TicketSummary> = if ranked_window {
        // Best match first among the newest matches: ranking every match of a common word
        // in a million tickets would cost far more than the answer is worth.
        let mut rows: Option<Vec<RankedRow>> = None;
        // The estimated window first; if it holds too few matches (the newest tickets are
        // unlike the rest), the longest walk; then the index.
        let windows = walk
            .map(|w| {
                if w < SearchPlan::MAX_WALK {
                    vec![w, SearchPlan::MAX_WALK]
                } else {
                    vec![w]
                }
            })
            .unwrap_or_default();
        for window in windows {
            let source = format!(
                "(select ticket_id, opened_at, document from rm_ticket_search
                   order by opened_at desc, ticket_id desc limit {window}) s
                 join rm_tickets on rm_tickets.id = s.ticket_id"
            );
            let found: Vec<RankedRow> = sqlx::query_as_with(&ranked_sql(&source), args.clone())
                .fetch_all(&mut *conn)
                .await?;
            let filled = found.first().is_some_and(|r| r.matched >= RELEVANCE_WINDOW);
            if filled {
                complete = false;
                // Ticket ids follow the order the walk takes: from the newest ticket down
                // to the window's oldest match is what it passed (give or take deleted ones).
                walk_passed = found
                    .first()
                    .and_then(|r| Some(r.newest_id? - r.oldest_id + 1));
                rows = Some(found);
                break;
            }
        }
        let rows = match rows {
            Some(rows) => rows,
            None => {
                sqlx::query_as_with(&ranked_sql(from), args)
                    .fetch_all(&mut *conn)
                    .await?
            }
        };
        matched = Some(rows.first().map_or(0, |r| r.matched));
        rows.into_iter().map(|r| r.summary).collect()
    } else {
        let sql = format!(
            "select {columns}, {rank} as rank from {from} where {where_sql}
              order by {order} limit {limit} offset {off}"
        );
        sqlx::query_as_with(&sql, args)
            .fetch_all(&mut *conn)
            .await?
    };
    let mut total_exact = true;
    let total: i64 = if countable {
        let mut count_args = PgArguments::default();
        let mut cconds = vec!["true".to_string()];
        let mut k = 0;
        for (col, vals) in [
            ("status", &status_strs),
            ("priority", &priority_strs),
            ("type", &type_strs),
        ] {
            if !vals.is_empty() {
                k += 1;
                count_args.add(vals.clone()).map_err(Error::internal)?;
                cconds.push(format!("{col} = any(${k})"));
            }
        }
        let (t,): (Option<i64>,) = sqlx::query_as_with(
            &format!(
                "select sum(n)::bigint from rm_ticket_counts where {}",
                cconds.join(" and ")
            ),
            count_args,
        )
        .fetch_one(&mut *conn)
        .await?;
        t.unwrap_or(0)
    } else if offset == 0 && (items.len() as i64) < size {
        items.len() as i64
    } else if let Some(m) = matched.filter(|m| complete && *m < RELEVANCE_WINDOW) {
        // The ranked window holds every match.
        m
    } else {
        // A search matching a large part of the desk answers with the planner's estimate
        // (`total_exact: false`) instead of counting tens of thousands of rows.
        let estimate = match &plan {
            Some(p) => Some((p.rows, p.upper)),
            None if q.is_some() => {
                let rows = explain_rows(&mut conn, from, &where_sql, count_args.clone()).await?;
                Some((rows, rows))
            }
            None => None,
        };
        match estimate {
            Some((rows, upper)) if upper > EXACT_COUNT_LIMIT => {
                total_exact = false;
                // The planner multiplies the words' frequencies as if they were independent,
                // which is far too low for words that come together ("payroll system"); the
                // share of matches among the documents the walk passed is not fooled by that,
                // but is low when the newest tickets are unlike the rest: the larger of the two.
                let walked = match (walk_passed, &plan) {
                    (Some(passed), Some(p)) => RELEVANCE_WINDOW * p.documents / passed.max(1),
                    _ => 0,
                };
                walked
                    .max(rows)
                    .max(offset + items.len() as i64)
                    .max(matched.unwrap_or(0))
            }
            _ => {
                let (t,): (i64,) = sqlx::query_as_with(
                    &format!("select count(*) from {from} where {where_sql}"),
                    count_args,
                )
                .fetch_one(&mut *conn)
                .await?;
                t
            }
        }
    };
    let mut page = Page::new(items, total, page, size);
    page.total_exact = total_exact;
    Ok(page)
}

/// A row of the ranked window, with how many matches the window holds.
#[derive(FromRow)]
struct RankedRow {
    #[sqlx(flatten)]
    summary: TicketSummary,
    matched: i64,
    /// The window's oldest match and the newest search document, by ticket id.
    oldest_id: i64,
    newest_id: Option<i64>,
}

/// The planner's estimate of the rows `select 1 from {from} where {where_sql}` returns.
async fn explain_rows(
    conn: &mut sqlx::PgConnection,
    from: &str,
    where_sql: &str,
    args: PgArguments,
) -> Result<i64, Error> {
    let (plan,): (serde_json::Value,) = sqlx::query_as_with(
        &format!("explain (format json) select 1 from {from} where {where_sql}"),
        args,
    )
    .fetch_one(conn)
    .await?;
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
        conn: &mut sqlx::PgConnection,
        tsquery: &str,
        words_only: bool,
        from: &str,
        where_sql: &str,
        args: &PgArguments,
    ) -> Result<Self, Error> {
        let parts: Vec<&str> = tsquery.split(" & ").collect();
        let rows = if words_only && parts.len() == 1 {
            None
        } else {
            Some(explain_rows(conn, from, where_sql, args.clone()).await?)
        };
        let mut upper = i64::MAX;
        for part in parts {
            let mut word_args = PgArguments::default();
            word_args.add(part).map_err(Error::internal)?;
            let n = explain_rows(
                conn,
                "rm_ticket_search",
                "document @@ to_tsquery('english', $1)",
                word_args,
            )
            .await?;
            upper = upper.min(n);
        }
        let (documents,): (f32,) = sqlx::query_as(
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
}
