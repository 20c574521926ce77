//! Ticket list and search: checks the query parameters and runs the read model's query.

use aggregates::{ApprovalStatus, Priority, Role, TicketStatus, TicketType};
use chrono::{DateTime, Utc};
use projections::tickets::queries::{self, SlaFilter, TicketFilter, TicketPage, TicketSort};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::service::auth::AuthUser;
use crate::service::error::{Error, Validator};
use crate::service::paging::Page;
use crate::service::Services;

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
    /// An agent's id, `me` for the caller, or `none` for unassigned tickets.
    pub assignee_id: Option<String>,
    pub requester_id: Option<i64>,
    pub tag: Option<String>,
    pub approval_status: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// `warning`, `breached` or both, comma-separated: the top-level SLA state at the time of
    /// the request.
    #[param(pattern = r"^\s*(warning|breached)\s*(,\s*(warning|breached)\s*)*$")]
    pub sla: Option<String>,
    /// `-created_at` is the default (`relevance` when `q` is given); `sla_due` puts the
    /// earliest SLA due time first and tickets without one last.
    #[param(pattern = r"^(-?(created_at|updated_at|priority)|relevance|sla_due)$")]
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

/// Parses `assignee_id`: a user id, `none` for unassigned tickets (`Some(None)`), or, where
/// there is a `caller`, `me` for them.
pub fn parse_assignee(
    v: &mut Validator,
    raw: Option<&str>,
    caller: Option<i64>,
) -> Option<Option<i64>> {
    match (raw.map(str::trim), caller) {
        (None | Some(""), _) => None,
        (Some("none") | Some("null"), _) => Some(None),
        (Some("me"), Some(caller)) => Some(Some(caller)),
        (Some(s), _) => match s.parse() {
            Ok(id) => Some(Some(id)),
            Err(_) => {
                let msg = match caller {
                    Some(_) => "assignee_id must be a user id, 'me' or 'none'",
                    None => "assignee_id must be a user id or 'none'",
                };
                v.check_query(false, "assignee_id", msg);
                None
            }
        },
    }
}

/// Who lists: the caller (whom `me` names), a requester's own-tickets scope, and the time SLA
/// states are judged at.
#[derive(Debug, Clone, Copy)]
pub struct ListContext {
    pub caller: i64,
    pub requester_scope: Option<i64>,
    pub now: DateTime<Utc>,
}

impl ListContext {
    /// The context of `user` now (requesters see only their own tickets).
    pub fn of(services: &Services, user: &AuthUser) -> Self {
        ListContext {
            caller: user.id,
            requester_scope: (user.role == Role::Requester).then_some(user.id),
            now: services.clock.now(),
        }
    }
}

/// Checks the query parameters of a list or search and turns them into the read model's
/// filter, with the page number. Every problem is a 422 entry on its query parameter.
pub fn filter_of(
    query: &TicketListQueryParams,
    cx: ListContext,
) -> Result<(TicketFilter, i64), Error> {
    let mut v = Validator::default();
    let (page, size, offset) = crate::service::paging::paging(&mut v, query.page, query.size);
    let mut filter = TicketFilter {
        requester_scope: cx.requester_scope,
        requester_id: query.requester_id,
        statuses: parse_list(
            &mut v,
            "status",
            query.status.as_deref(),
            TicketStatus::parse,
        ),
        priorities: parse_list(
            &mut v,
            "priority",
            query.priority.as_deref(),
            Priority::parse,
        ),
        types: parse_list(
            &mut v,
            "type",
            query.ticket_type.as_deref(),
            TicketType::parse,
        ),
        approvals: parse_list(
            &mut v,
            "approval_status",
            query.approval_status.as_deref(),
            ApprovalStatus::parse,
        ),
        assignee: parse_assignee(&mut v, query.assignee_id.as_deref(), Some(cx.caller)),
        sla: parse_list(&mut v, "sla", query.sla.as_deref(), SlaFilter::parse),
        created_from: query.created_from,
        created_to: query.created_to,
        now: cx.now,
        offset,
        size,
        ..TicketFilter::default()
    };
    filter.sla.sort_by_key(|s| *s as u8);
    filter.sla.dedup();
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    v.check_query(
        q.is_none_or(|q| q.chars().count() <= 200),
        "q",
        "q must be at most 200 characters",
    );
    filter.q = q.map(str::to_string);
    filter.sort = match query.sort.as_deref() {
        None if q.is_some() => TicketSort::Relevance,
        None => TicketSort::CreatedDesc,
        Some(s) => TicketSort::parse(s).unwrap_or_else(|| {
            v.check_query(false, "sort", "Unknown sort");
            TicketSort::CreatedDesc
        }),
    };
    filter.tag = query
        .tag
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
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

/// Runs a ticket list or search for `user` (requesters see only their own tickets). A search
/// that finds nothing is retried once with its words corrected towards the vocabulary of
/// ticket titles (typos such as transposed letters).
pub async fn search_tickets(
    services: &Services,
    user: &AuthUser,
    query: &TicketListQueryParams,
) -> Result<Page<TicketSummary>, Error> {
    let (filter, page) = filter_of(query, ListContext::of(services, user))?;
    run(services, &filter, page).await
}

/// The page `filter` gives (page number `page`), with the people's names.
pub async fn run(
    services: &Services,
    filter: &TicketFilter,
    page: i64,
) -> Result<Page<TicketSummary>, Error> {
    let found = queries::search_tickets(&services.pool, filter).await?;
    page_of(services, found, page, filter.size).await
}

/// The live tickets that refer to an item, newest first (`requester_scope`: only theirs).
pub async fn tickets_of_item(
    services: &Services,
    item_id: i64,
    cx: ListContext,
    (page, size, offset): (i64, i64, i64),
) -> Result<Page<TicketSummary>, Error> {
    let filter = TicketFilter {
        requester_scope: cx.requester_scope,
        item_id: Some(item_id),
        now: cx.now,
        offset,
        size,
        ..TicketFilter::default()
    };
    let found = queries::search_tickets(&services.pool, &filter).await?;
    page_of(services, found, page, size).await
}

async fn page_of(
    services: &Services,
    mut found: TicketPage,
    page: i64,
    size: i64,
) -> Result<Page<TicketSummary>, Error> {
    services
        .names
        .fill(&services.pool, &mut found.items)
        .await?;
    let mut out = Page::new(found.items, found.total, page, size);
    out.total_exact = found.total_exact;
    Ok(out)
}

crate::service::names::named_ticket!(TicketSummary);
