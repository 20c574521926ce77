//! Saved views of the ticket queue (agents and up): a name, the ticket list's filters and sort,
//! the columns to show and a place in the sidebar; personal, or shared with the whole desk.
//!
//! Views are settings, not tickets: they live in a plain table (`saved_views`) and are not
//! event-sourced, like users and items. Their filters are the list's query parameters and are
//! checked by the list's own rules (`tickets::list::filter_of`), with `unassigned: true` for
//! `assignee_id=none`; `assignee_id: "me"` names whoever runs the view ("My open tickets"). The
//! desk's four shared views ("Unassigned", "My open tickets", "Due soon", "Breached") are
//! seeded by the migration, without an owner.
//!
//! Who may do what: everyone on staff sees their own views and the shared ones (another
//! person's personal view is 404); owners change and delete their own views; shared views are
//! created, changed and deleted by managers and admins only (403 for agents).

use aggregates::Role;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use projections::tickets::queries::{count_tickets, TicketFilter};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};
use sqlx::{FromRow, PgPool};
use utoipa::ToSchema;

use crate::service::auth::AuthUser;
use crate::service::error::{Error, FieldError, Validator};
use crate::service::paging::Page;
use crate::service::tickets::list::TicketSummary;
use crate::service::tickets::list::{self, filter_of, ListContext, TicketListQueryParams};
use crate::service::Services;

/// How many personal views one person may keep, and how many shared views a desk may have.
pub const MAX_VIEWS: i64 = 50;
/// Views counted at once, each on its own connection.
const COUNT_CONCURRENCY: usize = 4;

/// A column a view's ticket list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ViewColumn {
    Id,
    Title,
    Status,
    Priority,
    Type,
    Requester,
    Assignee,
    Tags,
    ApprovalStatus,
    CommentCount,
    AttachmentCount,
    CreatedAt,
    UpdatedAt,
    ResolvedAt,
    Sla,
}

impl ViewColumn {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ViewColumn::Id => "id",
            ViewColumn::Title => "title",
            ViewColumn::Status => "status",
            ViewColumn::Priority => "priority",
            ViewColumn::Type => "type",
            ViewColumn::Requester => "requester",
            ViewColumn::Assignee => "assignee",
            ViewColumn::Tags => "tags",
            ViewColumn::ApprovalStatus => "approval_status",
            ViewColumn::CommentCount => "comment_count",
            ViewColumn::AttachmentCount => "attachment_count",
            ViewColumn::CreatedAt => "created_at",
            ViewColumn::UpdatedAt => "updated_at",
            ViewColumn::ResolvedAt => "resolved_at",
            ViewColumn::Sla => "sla",
        }
    }

    /// The columns of a view that names none.
    pub const DEFAULT: [ViewColumn; 8] = [
        ViewColumn::Id,
        ViewColumn::Title,
        ViewColumn::Status,
        ViewColumn::Priority,
        ViewColumn::Requester,
        ViewColumn::Assignee,
        ViewColumn::Sla,
        ViewColumn::UpdatedAt,
    ];
}

/// Accepts a JSON string or integer as a string (`assignee_id: 42` or `"42"`, `"me"`).
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) if n.is_i64() => Ok(Some(n.to_string())),
        Some(_) => Err(serde::de::Error::custom(
            "assignee_id must be a user id, \"me\" or \"none\"",
        )),
    }
}

/// `assignee_id` of a view's filters, as the OpenAPI document shows it: a user id (a number or
/// its digits), `me` or `none`.
pub struct AssigneeRef;

impl utoipa::PartialSchema for AssigneeRef {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
        };
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
            )
            .item(ObjectBuilder::new().schema_type(Type::String))
            .into()
    }
}

impl ToSchema for AssigneeRef {}

/// A view's filters: the ticket list's query parameters, checked by the same rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewFilters {
    /// Search words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// One status or several, comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// One priority or several, comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// One type or several, comma-separated.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub ticket_type: Option<String>,
    /// An agent's id, `me` (whoever runs the view) or `none`.
    #[serde(
        default,
        deserialize_with = "string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<AssigneeRef>)]
    pub assignee_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Only tickets without an assignee (the list's `assignee_id=none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unassigned: Option<bool>,
    /// `warning`, `breached` or both, comma-separated (the top-level SLA state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^\s*(warning|breached)\s*(,\s*(warning|breached)\s*)*$")]
    pub sla: Option<String>,
}

impl ViewFilters {
    /// The list query these filters and `sort` make, on page `page` of `size`.
    fn query(
        &self,
        sort: Option<&str>,
        page: Option<i64>,
        size: Option<i64>,
    ) -> TicketListQueryParams {
        let assignee_id = match self.unassigned {
            Some(true) => Some("none".to_string()),
            _ => self.assignee_id.clone(),
        };
        TicketListQueryParams {
            q: self.q.clone(),
            status: self.status.clone(),
            priority: self.priority.clone(),
            ticket_type: self.ticket_type.clone(),
            assignee_id,
            requester_id: self.requester_id,
            tag: self.tag.clone(),
            sla: self.sla.clone(),
            sort: sort.map(str::to_string),
            page,
            size,
            ..TicketListQueryParams::default()
        }
    }
}

/// A saved view.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct View {
    pub id: i64,
    pub name: String,
    pub filters: ViewFilters,
    /// The list's sort (`-created_at` when null, `relevance` with `q`).
    #[schema(pattern = r"^(-?(created_at|updated_at|priority)|relevance|sla_due)$")]
    pub sort: Option<String>,
    pub columns: Vec<ViewColumn>,
    /// Shared with the whole desk (changed by managers and admins only).
    pub shared: bool,
    /// Who keeps it (null for the desk's own views).
    pub owner_id: Option<i64>,
    pub owner_name: Option<String>,
    /// Its place in the sidebar (smallest first).
    pub position: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row of `saved_views` with its owner's name.
#[derive(Debug, FromRow)]
struct ViewRow {
    id: i64,
    name: String,
    filters: Value,
    sort: Option<String>,
    columns: Vec<String>,
    shared: bool,
    owner_id: Option<i64>,
    owner_name: Option<String>,
    position: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

const SELECT: &str = "select v.id, v.name, v.filters, v.sort, v.columns, v.shared, v.owner_id,
        u.full_name as owner_name, v.position, v.created_at, v.updated_at
   from saved_views v left join users u on u.id = v.owner_id";

impl ViewRow {
    fn view(self) -> Result<View, Error> {
        let filters = serde_json::from_value(self.filters).map_err(Error::internal)?;
        let columns = self
            .columns
            .iter()
            .filter_map(|c| serde_json::from_value(json!(c)).ok())
            .collect();
        Ok(View {
            id: self.id,
            name: self.name,
            filters,
            sort: self.sort,
            columns,
            shared: self.shared,
            owner_id: self.owner_id,
            owner_name: self.owner_name,
            position: self.position,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Body of `POST /views`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewCreate {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// Defaults to no filter (every live ticket).
    #[serde(default, deserialize_with = "crate::service::objects::object_or_null")]
    pub filters: Option<ViewFilters>,
    #[schema(pattern = r"^(-?(created_at|updated_at|priority)|relevance|sla_due)$")]
    pub sort: Option<String>,
    /// Defaults to id, title, status, priority, requester, assignee, sla, updated_at.
    #[schema(min_items = 1, max_items = 20)]
    pub columns: Option<Vec<ViewColumn>>,
    /// Managers and admins only.
    pub shared: Option<bool>,
    /// Defaults to after the last view the caller sees.
    #[schema(minimum = 0, maximum = 10000)]
    pub position: Option<i32>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Body of `PATCH /views/{id}`: absent fields stay as they are; `sort: null` resets the sort.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewUpdate {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    /// Replaces every filter.
    #[serde(default, deserialize_with = "crate::service::objects::object_or_null")]
    pub filters: Option<ViewFilters>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = r"^(-?(created_at|updated_at|priority)|relevance|sla_due)$")]
    pub sort: Option<Option<String>>,
    #[schema(min_items = 1, max_items = 20)]
    pub columns: Option<Vec<ViewColumn>>,
    /// Managers and admins only; a view no longer shared becomes its owner's (or the
    /// caller's, for the desk's own views).
    pub shared: Option<bool>,
    #[schema(minimum = 0, maximum = 10000)]
    pub position: Option<i32>,
}

/// How many tickets one view shows now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ViewCount {
    pub id: i64,
    pub count: i64,
    /// False when the view searches words that match thousands of tickets (an estimate, as
    /// its list's `total`).
    pub exact: bool,
}

/// The fields of a view to store, checked.
struct Checked<'a> {
    name: Option<String>,
    filters: Option<&'a ViewFilters>,
    sort: Option<Option<&'a str>>,
    columns: Option<&'a [ViewColumn]>,
    position: Option<i32>,
}

/// Checks a view's fields: the filters and sort by the ticket list's rules (a problem with
/// filter `status` is located at `["body", "filters", "status"]`).
fn check(user: &AuthUser, fields: &Checked<'_>) -> Result<(), Error> {
    let mut v = Validator::default();
    if let Some(name) = &fields.name {
        let n = name.trim().chars().count();
        v.check(
            (1..=100).contains(&n),
            "name",
            "Name must have 1 to 100 characters",
        );
    }
    if let Some(columns) = fields.columns {
        v.check(
            (1..=20).contains(&columns.len()),
            "columns",
            "A view shows 1 to 20 columns",
        );
        let mut seen = columns.to_vec();
        seen.sort_by_key(|c| c.as_str());
        seen.dedup();
        v.check(seen.len() == columns.len(), "columns", "Each column once");
    }
    if let Some(p) = fields.position {
        v.check(
            (0..=10_000).contains(&p),
            "position",
            "Position must be 0 to 10000",
        );
    }
    let mut problems = match v.finish() {
        Ok(()) => Vec::new(),
        Err(Error::Validation(p)) => p,
        Err(other) => return Err(other),
    };
    let filters = fields.filters.cloned().unwrap_or_default();
    if filters.unassigned == Some(true) && filters.assignee_id.is_some() {
        problems.push(FieldError {
            loc: vec![json!("body"), json!("filters"), json!("unassigned")],
            msg: "unassigned and assignee_id exclude each other".into(),
            kind: "value_error".into(),
        });
    }
    if filters.sla.as_deref().is_some_and(|s| s.trim().is_empty()) {
        problems.push(FieldError {
            loc: vec![json!("body"), json!("filters"), json!("sla")],
            msg: "sla is warning, breached or both (leave it out for any)".into(),
            kind: "value_error".into(),
        });
    }
    let sort = fields.sort.flatten();
    let cx = ListContext {
        caller: user.id,
        requester_scope: None,
        now: crate::service::now(),
    };
    if let Err(Error::Validation(found)) = filter_of(&filters.query(sort, None, None), cx) {
        problems.extend(found.into_iter().map(in_body));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(problems))
    }
}

/// A list query problem (`["query", "status"]`) as one of a view body's
/// (`["body", "filters", "status"]`; the sort: `["body", "sort"]`).
fn in_body(mut e: FieldError) -> FieldError {
    let field = e.loc.get(1).cloned().unwrap_or(Value::Null);
    e.loc = if field == json!("sort") {
        vec![json!("body"), field]
    } else {
        vec![json!("body"), json!("filters"), field]
    };
    e
}

/// 403 unless staff (views are the agents' tool).
fn require_staff(user: &AuthUser) -> Result<(), Error> {
    user.require(Role::Agent)
}

/// 403 unless `user` may create, change or delete shared views.
fn require_shared_rights(user: &AuthUser) -> Result<(), Error> {
    user.require(Role::Manager).map_err(|_| {
        Error::Forbidden(
            "Only managers and admins may create, change or delete shared views".into(),
        )
    })
}

/// The views `user` sees: their own and the shared ones, in sidebar order.
pub async fn list(
    pool: &PgPool,
    user: &AuthUser,
    (page, size, offset): (i64, i64, i64),
) -> Result<Page<View>, Error> {
    require_staff(user)?;
    let rows: Vec<ViewRow> = sqlx::query_as(&format!(
        "{SELECT} where v.shared or v.owner_id = $1 order by v.position, v.id limit $2 offset $3"
    ))
    .bind(user.id)
    .bind(size)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let (total,): (i64,) =
        sqlx::query_as("select count(*) from saved_views where shared or owner_id = $1")
            .bind(user.id)
            .fetch_one(pool)
            .await?;
    let items = rows
        .into_iter()
        .map(ViewRow::view)
        .collect::<Result<_, _>>()?;
    Ok(Page::new(items, total, page, size))
}

/// Every view `user` sees, in sidebar order.
async fn all_visible(pool: &PgPool, user: &AuthUser) -> Result<Vec<View>, Error> {
    let rows: Vec<ViewRow> = sqlx::query_as(&format!(
        "{SELECT} where v.shared or v.owner_id = $1 order by v.position, v.id"
    ))
    .bind(user.id)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(ViewRow::view).collect()
}

/// A view `user` sees, else 404 (another person's personal view is not there for them).
pub async fn find(pool: &PgPool, user: &AuthUser, id: i64) -> Result<View, Error> {
    require_staff(user)?;
    let row: Option<ViewRow> = sqlx::query_as(&format!(
        "{SELECT} where v.id = $1 and (v.shared or v.owner_id = $2)"
    ))
    .bind(id)
    .bind(user.id)
    .fetch_optional(pool)
    .await?;
    row.ok_or_else(|| Error::not_found("View"))?.view()
}

/// 409 when `owner` already keeps [`MAX_VIEWS`] personal views (or the desk as many shared).
async fn check_room(pool: &PgPool, owner: i64, shared: bool) -> Result<(), Error> {
    let (n,): (i64,) = sqlx::query_as(
        "select count(*) from saved_views where ($1 and shared) or (not $1 and not shared and owner_id = $2)",
    )
    .bind(shared)
    .bind(owner)
    .fetch_one(pool)
    .await?;
    if n >= MAX_VIEWS {
        return Err(Error::conflict(format!(
            "There are already {MAX_VIEWS} such views; delete one first"
        )));
    }
    Ok(())
}

/// Creates a view owned by `user` (shared ones: managers and admins).
pub async fn create(pool: &PgPool, user: &AuthUser, body: ViewCreate) -> Result<View, Error> {
    require_staff(user)?;
    let shared = body.shared.unwrap_or(false);
    if shared {
        require_shared_rights(user)?;
    }
    check(
        user,
        &Checked {
            name: Some(body.name.clone()),
            filters: body.filters.as_ref(),
            sort: Some(body.sort.as_deref()),
            columns: body.columns.as_deref(),
            position: body.position,
        },
    )?;
    check_room(pool, user.id, shared).await?;
    let columns: Vec<&str> = body
        .columns
        .as_deref()
        .unwrap_or(&ViewColumn::DEFAULT)
        .iter()
        .map(|c| c.as_str())
        .collect();
    let filters =
        serde_json::to_value(body.filters.unwrap_or_default()).map_err(Error::internal)?;
    let (id,): (i64,) = sqlx::query_as(
        "insert into saved_views (name, filters, sort, columns, shared, owner_id, position)
         values ($1, $2, $3, $4, $5, $6, coalesce($7, (select coalesce(max(position) + 1, 0)
                  from saved_views where shared or owner_id = $6)))
         returning id",
    )
    .bind(body.name.trim())
    .bind(filters)
    .bind(&body.sort)
    .bind(&columns)
    .bind(shared)
    .bind(user.id)
    .bind(body.position)
    .fetch_one(pool)
    .await?;
    find(pool, user, id).await
}

/// 403 unless `user` may change `view` (and share it, if `sharing`): owners change their
/// personal views, managers and admins the shared ones.
fn may_change(user: &AuthUser, view: &View, sharing: bool) -> Result<(), Error> {
    if view.shared || sharing {
        require_shared_rights(user)?;
    }
    Ok(())
}

/// Changes a view `user` may change.
pub async fn update(
    pool: &PgPool,
    user: &AuthUser,
    id: i64,
    body: ViewUpdate,
) -> Result<View, Error> {
    let view = find(pool, user, id).await?;
    may_change(user, &view, body.shared == Some(true))?;
    check(
        user,
        &Checked {
            name: body.name.clone(),
            filters: body.filters.as_ref(),
            sort: body.sort.as_ref().map(|s| s.as_deref()),
            columns: body.columns.as_deref(),
            position: body.position,
        },
    )?;
    let shared = body.shared.unwrap_or(view.shared);
    // A view no longer shared becomes its owner's; the desk's own views, the caller's.
    let owner = if shared {
        view.owner_id
    } else {
        Some(view.owner_id.unwrap_or(user.id))
    };
    if shared != view.shared {
        check_room(pool, owner.unwrap_or(user.id), shared).await?;
    }
    let filters = body
        .filters
        .map(serde_json::to_value)
        .transpose()
        .map_err(Error::internal)?;
    let columns: Option<Vec<&str>> = body
        .columns
        .as_ref()
        .map(|c| c.iter().map(|c| c.as_str()).collect());
    sqlx::query(
        "update saved_views set name = coalesce($2, name), filters = coalesce($3, filters),
                sort = case when $4 then $5 else sort end, columns = coalesce($6, columns),
                shared = $7, owner_id = $8, position = coalesce($9, position), updated_at = now()
          where id = $1",
    )
    .bind(id)
    .bind(body.name.as_deref().map(str::trim))
    .bind(filters)
    .bind(body.sort.is_some())
    .bind(body.sort.flatten())
    .bind(columns)
    .bind(shared)
    .bind(owner)
    .bind(body.position)
    .execute(pool)
    .await?;
    find(pool, user, id).await
}

/// Deletes a view `user` may change.
pub async fn delete(pool: &PgPool, user: &AuthUser, id: i64) -> Result<(), Error> {
    let view = find(pool, user, id).await?;
    may_change(user, &view, false)?;
    sqlx::query("delete from saved_views where id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The list filter a view gives `cx`'s caller, with the page number.
fn ticket_filter(
    view: &View,
    cx: ListContext,
    page: Option<i64>,
    size: Option<i64>,
) -> Result<(TicketFilter, i64), Error> {
    filter_of(&view.filters.query(view.sort.as_deref(), page, size), cx)
}

/// How many tickets each view `user` sees shows now, in sidebar order: each counted from
/// the read model in one statement (the list's own total; see `count_tickets`).
pub async fn counts(services: &Services, user: &AuthUser) -> Result<Vec<ViewCount>, Error> {
    require_staff(user)?;
    let pool = &services.pool;
    let cx = ListContext::of(services, user);
    let filters = all_visible(pool, user)
        .await?
        .iter()
        .map(|v| Ok((v.id, ticket_filter(v, cx, None, None)?.0)))
        .collect::<Result<Vec<_>, Error>>()?;
    futures::stream::iter(filters)
        .map(|(id, filter)| async move {
            let (count, exact) = count_tickets(pool, &filter).await?;
            Ok::<_, Error>(ViewCount { id, count, exact })
        })
        .buffered(COUNT_CONCURRENCY)
        .try_collect()
        .await
}

/// The page of tickets a view `user` sees gives them (`me` is `user`).
pub async fn tickets(
    services: &Services,
    user: &AuthUser,
    id: i64,
    page: Option<i64>,
    size: Option<i64>,
) -> Result<Page<TicketSummary>, Error> {
    let view = find(&services.pool, user, id).await?;
    let (filter, page) = ticket_filter(&view, ListContext::of(services, user), page, size)?;
    list::run(services, &filter, page).await
}
