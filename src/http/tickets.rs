//! `/api/v1/tickets`: the write API (commands through the Ticket aggregate) and the list and
//! search API (the `tickets` read model).

use aggregates::ticket::{Ticket, TicketCommand, TicketError, TicketFields};
use aggregates::{ApprovalStatus, Priority, Role, TicketStatus, TicketType};
use axum::extract::State;
use axum::http::header::{ETAG, IF_MATCH, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::commands::{metadata, CommandError, Committed};
use crate::error::{capitalise, ApiError, AppJson, AppPath, AppQuery, Validator};
use crate::http::with_token;
use crate::read::{self, Page};
use crate::state::AppState;

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tickets, create_ticket))
        .routes(routes!(search_tickets))
        .routes(routes!(find_ticket, update_ticket, delete_ticket))
        .routes(routes!(change_ticket_status))
        .routes(routes!(assign_ticket))
}

/// A ticket in full, as the aggregate holds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketDetail {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub status: TicketStatus,
    pub priority: Priority,
    #[serde(rename = "type")]
    pub ticket_type: TicketType,
    pub requester_id: i64,
    pub assignee_id: Option<i64>,
    pub tags: Vec<String>,
    pub item_ids: Vec<i64>,
    pub approval_status: ApprovalStatus,
    /// The ticket's version (its last event's sequence); also the `ETag`.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub first_response_at: Option<DateTime<Utc>>,
    /// True once deleted (cancelled and hidden from lists).
    pub deleted: bool,
    /// The statuses this ticket may move to now.
    pub allowed_transitions: Vec<TicketStatus>,
}

impl TicketDetail {
    /// Renders an aggregate at a version.
    pub fn from_aggregate(t: &Ticket, version: usize) -> Self {
        TicketDetail {
            id: t.id,
            title: t.title.clone(),
            description: t.description.clone(),
            status: t.current_status(),
            priority: t.priority.unwrap_or(Priority::Medium),
            ticket_type: t.ticket_type.unwrap_or(TicketType::Issue),
            requester_id: t.requester_id,
            assignee_id: t.assignee_id,
            tags: t.tags.clone(),
            item_ids: t.item_ids.clone(),
            approval_status: t.current_approval_status(),
            version: version as i64,
            created_at: t.created_at.unwrap_or_default(),
            updated_at: t.updated_at.unwrap_or_default(),
            resolved_at: t.resolved_at,
            first_response_at: t.first_response_at,
            deleted: t.deleted,
            allowed_transitions: t.allowed_next_states(),
        }
    }
}

/// Body of `POST /tickets`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TicketCreate {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Defaults to `medium`.
    pub priority: Option<Priority>,
    /// Defaults to `issue`.
    #[serde(rename = "type")]
    pub ticket_type: Option<TicketType>,
    pub tags: Option<Vec<String>>,
    pub item_ids: Option<Vec<i64>>,
}

/// Body of `PATCH /tickets/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TicketUpdate {
    pub title: Option<String>,
    pub description: Option<String>,
    pub priority: Option<Priority>,
    #[serde(rename = "type")]
    pub ticket_type: Option<TicketType>,
    pub tags: Option<Vec<String>>,
    pub item_ids: Option<Vec<i64>>,
}

/// Body of `PATCH /tickets/{id}/status`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TicketStatusUpdate {
    pub status: TicketStatus,
    pub reason: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// Body of `PATCH /tickets/{id}/assign`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TicketAssign {
    /// The agent to assign, or `null` to unassign.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, required = true)]
    pub assignee_id: Option<Option<i64>>,
}

fn clean_tags(tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim().to_lowercase();
        if !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

fn validate_fields(
    v: &mut Validator,
    title: Option<&str>,
    description: Option<&str>,
    tags: Option<&[String]>,
    item_ids: Option<&[i64]>,
) {
    if let Some(title) = title {
        let n = title.trim().chars().count();
        v.check(n >= 1, "title", "Title is required");
        v.check(n <= 200, "title", "Title must be at most 200 characters");
    }
    if let Some(d) = description {
        v.check(
            d.chars().count() <= 20_000,
            "description",
            "Description must be at most 20000 characters",
        );
    }
    if let Some(tags) = tags {
        v.check(tags.len() <= 20, "tags", "At most 20 tags");
        v.check(
            tags.iter().all(|t| {
                let n = t.trim().chars().count();
                (1..=50).contains(&n)
            }),
            "tags",
            "Each tag must have 1 to 50 characters",
        );
    }
    if let Some(ids) = item_ids {
        v.check(ids.len() <= 50, "item_ids", "At most 50 items");
        v.check(
            ids.iter().all(|i| *i > 0),
            "item_ids",
            "Item ids are positive integers",
        );
    }
}

/// Maps a command failure to the API's answer.
pub fn command_error(e: CommandError<TicketError>) -> ApiError {
    ApiError::from_command(e, "ticket", |e| match e {
        TicketError::NotFound => ApiError::not_found("Ticket"),
        TicketError::IllegalTransition { from, to, allowed } => ApiError::Conflict {
            detail: format!("A ticket cannot move from {from} to {to}"),
            extra: Some(serde_json::json!({ "allowed": allowed })),
        },
        TicketError::CommentNotFound => ApiError::not_found("Comment"),
        TicketError::AttachmentNotFound => ApiError::not_found("Attachment"),
        TicketError::ParentNotFound => {
            ApiError::field("parent_id", "The parent comment is not on this ticket")
        }
        other => ApiError::conflict(capitalise(&other.to_string())),
    })
}

/// Parses `If-Match` into a version (`*` or absent: any version).
pub fn if_match(headers: &HeaderMap) -> Result<Option<usize>, ApiError> {
    let Some(value) = headers.get(IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    let text = text.trim_start_matches("W/").trim_matches('"');
    text.parse().map(Some).map_err(|_| {
        ApiError::PreconditionFailed("If-Match must carry the ETag you received".into())
    })
}

/// A ticket response with its `ETag`.
fn ticket_response(status: StatusCode, committed: &Committed<Ticket>) -> Response {
    let detail = TicketDetail::from_aggregate(&committed.aggregate, committed.version);
    let mut response = (status, axum::Json(detail)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", committed.version)) {
        response.headers_mut().insert(ETAG, v);
    }
    with_token(response, committed.token)
}

/// Loads a ticket the caller may see, else 404 (requesters only see their own).
pub async fn load_visible(
    state: &AppState,
    user: &AuthUser,
    id: i64,
) -> Result<(Ticket, usize), ApiError> {
    let (ticket, version) = state
        .tickets
        .load(&id.to_string())
        .await
        .map_err(command_error)?;
    if !ticket.exists() || (!user.is_staff() && ticket.requester_id != user.id) {
        return Err(ApiError::not_found("Ticket"));
    }
    Ok((ticket, version))
}

/// Runs a command on ticket `id` as `user`, recording who did it; the caller has already
/// checked that the user may act on this ticket.
pub(crate) async fn execute_checked(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    expected: Option<usize>,
    command: impl Fn(&Ticket) -> TicketCommand,
) -> Result<Committed<Ticket>, ApiError> {
    let committed = state
        .tickets
        .execute(
            &id.to_string(),
            expected,
            metadata(Some(user.id), &user.request),
            command,
        )
        .await
        .map_err(command_error)?;
    if committed.appended > 0 {
        crate::metrics::command_committed();
    }
    Ok(committed)
}

/// Runs a command on a ticket the caller may see.
async fn run(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    expected: Option<usize>,
    command: impl Fn(&Ticket) -> TicketCommand,
) -> Result<Committed<Ticket>, ApiError> {
    load_visible(state, user, id).await?;
    let mut committed = execute_checked(state, user, id, expected, command).await?;
    if committed.appended == 0 && committed.token.is_none() {
        committed.token = read::ticket_position(&state.pool, id, committed.version).await;
    }
    Ok(committed)
}

/// Open a ticket. The caller becomes its requester.
#[utoipa::path(post, path = "/", tag = "tickets", security(("bearer" = [])), request_body = TicketCreate,
    responses((status = 201, body = TicketDetail, headers(("Location" = String), ("ETag" = String), ("X-Consistency-Token" = String))),
              (status = 401, body = crate::error::ErrorBody), (status = 422, body = crate::error::ValidationErrorBody)))]
async fn create_ticket(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<TicketCreate>,
) -> Result<Response, ApiError> {
    let mut v = Validator::default();
    validate_fields(
        &mut v,
        Some(&body.title),
        Some(&body.description),
        body.tags.as_deref(),
        body.item_ids.as_deref(),
    );
    v.finish()?;
    let item_ids = body.item_ids.unwrap_or_default();
    crate::items::check_items_exist(&state.pool, &item_ids).await?;
    let (id,): (i64,) = sqlx::query_as("select nextval('ticket_id_seq')")
        .fetch_one(&state.pool)
        .await?;
    let fields = TicketFields {
        title: body.title.trim().to_string(),
        description: body.description,
        priority: body.priority.unwrap_or(Priority::Medium),
        ticket_type: body.ticket_type.unwrap_or(TicketType::Issue),
        tags: clean_tags(body.tags.unwrap_or_default()),
        item_ids,
    };
    let at = Utc::now();
    let command = TicketCommand::OpenTicket {
        id,
        requester_id: user.id,
        fields,
        at,
    };
    let committed = state
        .tickets
        .create(
            &id.to_string(),
            metadata(Some(user.id), &user.request),
            command,
        )
        .await
        .map_err(command_error)?;
    crate::metrics::command_committed();
    let committed = super::approvals::on_ticket_created(&state, &user, committed).await?;
    let mut response = ticket_response(StatusCode::CREATED, &committed);
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/tickets/{id}")) {
        response.headers_mut().insert(LOCATION, v);
    }
    Ok(response)
}

/// Query of `GET /tickets/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketFindQuery {
    /// Show the ticket as it was at this time (RFC 3339).
    #[serde(default, deserialize_with = "crate::history::de_as_of")]
    pub as_of: Option<DateTime<Utc>>,
}

/// A ticket, loaded from its events (optionally as it was at `as_of`).
#[utoipa::path(get, path = "/{id}", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Ticket number"), TicketFindQuery),
    responses((status = 200, body = TicketDetail, headers(("ETag" = String))), (status = 404, body = crate::error::ErrorBody)))]
async fn find_ticket(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    AppQuery(query): AppQuery<TicketFindQuery>,
) -> Result<Response, ApiError> {
    let (ticket, version) = load_visible(&state, &user, id).await?;
    let (ticket, version) = match query.as_of {
        Some(as_of) => crate::history::ticket_as_of(&state.pool, id, as_of)
            .await?
            .ok_or_else(|| ApiError::NotFound("The ticket did not exist at that time".into()))?,
        None => (ticket, version),
    };
    let committed = Committed {
        aggregate: ticket,
        version,
        token: None,
        appended: 0,
    };
    Ok(ticket_response(StatusCode::OK, &committed))
}

/// Change a ticket's fields. Requesters may edit their own tickets.
#[utoipa::path(patch, path = "/{id}", tag = "tickets", security(("bearer" = [])), request_body = TicketUpdate,
    params(("id" = i64, Path, description = "Ticket number"), ("If-Match" = Option<String>, Header, description = "The ETag you hold")),
    responses((status = 200, body = TicketDetail), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody), (status = 412, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ValidationErrorBody)))]
async fn update_ticket(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    headers: HeaderMap,
    AppJson(body): AppJson<TicketUpdate>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let mut v = Validator::default();
    validate_fields(
        &mut v,
        body.title.as_deref(),
        body.description.as_deref(),
        body.tags.as_deref(),
        body.item_ids.as_deref(),
    );
    v.finish()?;
    crate::items::check_items_exist(&state.pool, body.item_ids.as_deref().unwrap_or_default())
        .await?;
    let tags = body.tags.map(clean_tags);
    let at = Utc::now();
    let committed = run(&state, &user, id, expected, |_| {
        TicketCommand::UpdateTicket {
            title: body.title.as_ref().map(|t| t.trim().to_string()),
            description: body.description.clone(),
            priority: body.priority,
            ticket_type: body.ticket_type,
            tags: tags.clone(),
            item_ids: body.item_ids.clone(),
            at,
        }
    })
    .await?;
    Ok(ticket_response(StatusCode::OK, &committed))
}

/// Delete a ticket: it is cancelled and hidden from lists; its history stays.
#[utoipa::path(delete, path = "/{id}", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Ticket number"), ("If-Match" = Option<String>, Header, description = "The ETag you hold")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
async fn delete_ticket(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let at = Utc::now();
    let committed = run(&state, &user, id, expected, |_| {
        TicketCommand::DeleteTicket { reason: None, at }
    })
    .await?;
    Ok(with_token(
        StatusCode::NO_CONTENT.into_response(),
        committed.token,
    ))
}

/// Move a ticket through its state machine. 409 lists the allowed states.
/// Requesters may only close, reopen or cancel their own tickets.
#[utoipa::path(patch, path = "/{id}/status", tag = "tickets", security(("bearer" = [])), request_body = TicketStatusUpdate,
    params(("id" = i64, Path, description = "Ticket number"), ("If-Match" = Option<String>, Header, description = "The ETag you hold")),
    responses((status = 200, body = TicketDetail), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
              (status = 412, body = crate::error::ErrorBody)))]
async fn change_ticket_status(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    headers: HeaderMap,
    AppJson(body): AppJson<TicketStatusUpdate>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let mut v = Validator::default();
    v.check(
        body.reason
            .as_ref()
            .is_none_or(|r| r.chars().count() <= 2000),
        "reason",
        "Reason must be at most 2000 characters",
    );
    v.finish()?;
    if !user.is_staff() {
        load_visible(&state, &user, id).await?;
        if !matches!(
            body.status,
            TicketStatus::Closed | TicketStatus::Open | TicketStatus::Cancelled
        ) {
            return Err(ApiError::Forbidden(
                "Requesters may only close, reopen or cancel their tickets".into(),
            ));
        }
    }
    let at = Utc::now();
    let committed = run(&state, &user, id, expected, |_| {
        TicketCommand::ChangeStatus {
            status: body.status,
            reason: body.reason.clone(),
            at,
        }
    })
    .await?;
    Ok(ticket_response(StatusCode::OK, &committed))
}

/// Assign a ticket to an agent, or unassign it with `null` (agents and up).
#[utoipa::path(patch, path = "/{id}/assign", tag = "tickets", security(("bearer" = [])), request_body = TicketAssign,
    params(("id" = i64, Path, description = "Ticket number"), ("If-Match" = Option<String>, Header, description = "The ETag you hold")),
    responses((status = 200, body = TicketDetail), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 412, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ValidationErrorBody)))]
async fn assign_ticket(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    headers: HeaderMap,
    AppJson(body): AppJson<TicketAssign>,
) -> Result<Response, ApiError> {
    if !user.is_staff() {
        // Hide whether the ticket exists from requesters who do not own it.
        load_visible(&state, &user, id).await?;
        return Err(ApiError::Forbidden("Only agents can assign tickets".into()));
    }
    let expected = if_match(&headers)?;
    let Some(assignee_id) = body.assignee_id else {
        return Err(ApiError::Validation(vec![crate::error::FieldError::body(
            "assignee_id",
            "Field 'assignee_id' is required (null unassigns)",
            "missing",
        )]));
    };
    if let Some(assignee) = assignee_id {
        let ok = crate::users::find_by_id(&state.pool, assignee)
            .await?
            .is_some_and(|u| u.is_active && u.role().is_staff());
        if !ok {
            return Err(ApiError::field(
                "assignee_id",
                "The assignee must be an active agent",
            ));
        }
    }
    let at = Utc::now();
    let committed = run(&state, &user, id, expected, |_| {
        TicketCommand::AssignTicket { assignee_id, at }
    })
    .await?;
    Ok(ticket_response(StatusCode::OK, &committed))
}

/// List tickets (newest first by default). Requesters see only their own.
#[utoipa::path(get, path = "/", tag = "tickets", security(("bearer" = [])),
    params(read::TicketListQueryParams, ("X-Consistency-Token" = Option<String>, Header, description = "Wait until this write is visible")),
    responses((status = 200, body = read::TicketListResponse), (status = 422, body = crate::error::ValidationErrorBody),
              (status = 503, body = crate::error::ErrorBody)))]
async fn list_tickets(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppQuery(query): AppQuery<read::TicketListQueryParams>,
) -> Result<axum::Json<Page<read::TicketSummary>>, ApiError> {
    search(state, user, headers, query).await
}

/// Search tickets: full text over title, description and public comments, prefix matching
/// for search-as-you-type and trigram matching for misspellings; best match first.
#[utoipa::path(get, path = "/search", tag = "tickets", security(("bearer" = [])),
    params(read::TicketListQueryParams, ("X-Consistency-Token" = Option<String>, Header, description = "Wait until this write is visible")),
    responses((status = 200, body = read::TicketListResponse), (status = 422, body = crate::error::ValidationErrorBody),
              (status = 503, body = crate::error::ErrorBody)))]
async fn search_tickets(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppQuery(query): AppQuery<read::TicketListQueryParams>,
) -> Result<axum::Json<Page<read::TicketSummary>>, ApiError> {
    search(state, user, headers, query).await
}

async fn search(
    state: AppState,
    user: AuthUser,
    headers: HeaderMap,
    query: read::TicketListQueryParams,
) -> Result<axum::Json<Page<read::TicketSummary>>, ApiError> {
    read::wait_for_token(
        &state,
        &headers,
        &[projections::tickets::TicketsProjection::NAME],
    )
    .await?;
    let scope = if user.role == Role::Requester {
        Some(user.id)
    } else {
        None
    };
    Ok(axum::Json(
        read::search_tickets(&state.pool, &query, scope).await?,
    ))
}
