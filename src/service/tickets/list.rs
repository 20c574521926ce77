//! Ticket list and search: checks the query parameters and runs the read model's query.

use aggregates::{ApprovalStatus, Priority, TicketStatus, TicketType};
use chrono::{DateTime, Utc};
use projections::tickets::queries::{self, TicketFilter, TicketPage, TicketSort};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};

use crate::service::error::{Error, Validator};
use crate::service::paging::Page;

pub use projections::tickets::queries::TicketSummary;

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
    /// `-created_at` is the default (`relevance` when `q` is given).
    #[param(pattern = r"^(-?(created_at|updated_at|priority)|relevance)$")]
    pub sort: Option<String>,
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<i64>,
}

/// Parses a comma-separated list, reporting each unknown part on `field`.
pub fn parse_list<T>(
    v: &mut Validator,
    field: &str,
    raw: Option<&str>,
    parse: fn(&str) -> Option<T>,
) -> Vec<T> {
    let mut out = Vec::new();
    for part in raw
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match parse(part) {
            Some(x) => out.push(x),
            None => v.check_query(false, field, &format!("Unknown {field} '{part}'")),
        }
    }
    out
}

/// Parses `assignee_id`: a user id, or `none` for unassigned tickets (`Some(None)`).
pub fn parse_assignee(v: &mut Validator, raw: Option<&str>) -> Option<Option<i64>> {
    match raw.map(str::trim) {
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
    }
}

/// Checks the query parameters of a list or search and turns them into the read model's
/// filter. `requester_scope` limits a requester to their own tickets.
fn filter_of(
    query: &TicketListQueryParams,
    requester_scope: Option<i64>,
) -> Result<(TicketFilter, i64), Error> {
    let mut v = Validator::default();
    let (page, size, offset) = crate::service::paging::paging(&mut v, query.page, query.size);
    let statuses = parse_list(
        &mut v,
        "status",
        query.status.as_deref(),
        TicketStatus::parse,
    );
    let priorities = parse_list(
        &mut v,
        "priority",
        query.priority.as_deref(),
        Priority::parse,
    );
    let types = parse_list(
        &mut v,
        "type",
        query.ticket_type.as_deref(),
        TicketType::parse,
    );
    let approvals = parse_list(
        &mut v,
        "approval_status",
        query.approval_status.as_deref(),
        ApprovalStatus::parse,
    );
    let assignee = parse_assignee(&mut v, query.assignee_id.as_deref());
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    v.check_query(
        q.is_none_or(|q| q.chars().count() <= 200),
        "q",
        "q must be at most 200 characters",
    );
    let sort = match query.sort.as_deref() {
        None if q.is_some() => TicketSort::Relevance,
        None => TicketSort::CreatedDesc,
        Some(s) => TicketSort::parse(s).unwrap_or_else(|| {
            v.check_query(false, "sort", "Unknown sort");
            TicketSort::CreatedDesc
        }),
    };
    let tag = query
        .tag
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let filter = TicketFilter {
        requester_scope,
        requester_id: query.requester_id,
        item_id: None,
        statuses,
        priorities,
        types,
        approvals,
        assignee,
        tag: tag.map(str::to_string),
        created_from: query.created_from,
        created_to: query.created_to,
        q: q.map(str::to_string),
        sort,
        offset,
        size,
    };
    if let (Some(from), Some(to)) = (query.created_from, query.created_to) {
        v.check_query(
            from <= to,
            "created_from",
            "created_from must not be after created_to",
        );
    }
    v.finish()?;
    Ok((filter, page))
}

/// Runs a ticket list or search. `requester_scope` limits a requester to their own tickets.
/// A search that finds nothing is retried once with its words corrected towards the
/// vocabulary of ticket titles (typos such as transposed letters).
pub async fn search_tickets(
    pool: &PgPool,
    query: &TicketListQueryParams,
    requester_scope: Option<i64>,
) -> Result<Page<TicketSummary>, Error> {
    let (filter, page) = filter_of(query, requester_scope)?;
    let found = queries::search_tickets(pool, &filter).await?;
    Ok(page_of(found, page, filter.size))
}

/// The live tickets that refer to an item, newest first (`requester_scope`: only theirs).
pub async fn tickets_of_item(
    pool: &PgPool,
    item_id: i64,
    requester_scope: Option<i64>,
    (page, size, offset): (i64, i64, i64),
) -> Result<Page<TicketSummary>, Error> {
    let filter = TicketFilter {
        requester_scope,
        item_id: Some(item_id),
        offset,
        size,
        ..TicketFilter::default()
    };
    let found = queries::search_tickets(pool, &filter).await?;
    Ok(page_of(found, page, size))
}

fn page_of(found: TicketPage, page: i64, size: i64) -> Page<TicketSummary> {
    let mut out = Page::new(found.items, found.total, page, size);
    out.total_exact = found.total_exact;
    out
}
