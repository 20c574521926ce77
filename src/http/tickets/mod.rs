//! `/api/v1/tickets`: the write API (commands through the Ticket aggregate) and the list and
//! search API (the `tickets` read model).

pub mod actions;
pub mod attachments;
pub mod comments;
pub mod history;
pub mod policy;

use aggregates::ticket::Ticket;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{ETAG, IF_MATCH, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::consistency::{wait_for_token, ConsistencyHeader};
use crate::http::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::http::idempotency::IdempotencyHeader;
use crate::http::responses::{
    ConditionalCommandErrors, ConditionalWriteErrors, ListErrors, ReadErrors, WriteErrors,
};
use crate::http::state::AppState;
use crate::http::tickets::history::HistoryQuery;
use crate::http::with_token;
use crate::service::auth::AuthUser;
use crate::service::executor::Committed;
use crate::service::paging::Page;
use crate::service::tickets::list::{
    self, TicketListQueryParams, TicketListResponse, TicketSummary,
};
use crate::service::tickets::{
    self, load_visible, TicketAssign, TicketCreate, TicketDetail, TicketStatusUpdate, TicketUpdate,
};

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tickets, create_ticket))
        .routes(routes!(search_tickets))
        .routes(routes!(find_ticket, update_ticket, delete_ticket))
        .routes(routes!(change_ticket_status))
        .routes(routes!(assign_ticket))
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

/// The target of a ticket command: its number and the version `If-Match` names (a malformed
/// one is kept as the error, for the handler to answer in its own order).
struct Target {
    id: i64,
    expected: Result<Option<usize>, ApiError>,
}

/// How the OpenAPI document names a `Target`: the ticket number in the path and the optional
/// `If-Match` header.
impl utoipa::IntoParams for Target {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};
        use utoipa::openapi::Required;
        let number = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)));
        let etag =
            ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null]));
        vec![
            ParameterBuilder::new()
                .name("id")
                .parameter_in(ParameterIn::Path)
                .description(Some("Ticket number"))
                .required(Required::True)
                .schema(Some(number))
                .build(),
            ParameterBuilder::new()
                .name("If-Match")
                .parameter_in(ParameterIn::Header)
                .description(Some("The ETag you hold"))
                .required(Required::False)
                .schema(Some(etag))
                .build(),
        ]
    }
}

impl FromRequestParts<AppState> for Target {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AppPath(id) = AppPath::<i64>::from_request_parts(parts, state).await?;
        let expected = if_match(&parts.headers);
        Ok(Target { id, expected })
    }
}

/// A ticket response with its `ETag` and its SLA now.
pub(crate) async fn ticket_response(
    state: &AppState,
    status: StatusCode,
    committed: &Committed<Ticket>,
) -> Result<Response, ApiError> {
    let detail = tickets::detail_committed(state, committed).await?;
    Ok(with_token(detail_response(status, detail), committed.token))
}

fn detail_response(status: StatusCode, detail: TicketDetail) -> Response {
    let version = detail.version;
    let mut response = (status, axum::Json(detail)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(ETAG, v);
    }
    response
}

/// Open a ticket. The caller becomes its requester.
#[utoipa::path(post, path = "/", tag = "tickets", security(("bearer" = [])), request_body = TicketCreate,
    params(IdempotencyHeader), responses((status = 201, body = TicketDetail, headers(("Location" = String), ("ETag" = String), ("X-Consistency-Token" = String))), WriteErrors))]
async fn create_ticket(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<TicketCreate>,
) -> Result<Response, ApiError> {
    let committed = tickets::open(&state, &user, body).await?;
    let committed = crate::service::approvals::on_ticket_created(&state, &user, committed).await?;
    let id = committed.aggregate.id;
    let mut response = ticket_response(&state, StatusCode::CREATED, &committed).await?;
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/tickets/{id}")) {
        response.headers_mut().insert(LOCATION, v);
    }
    Ok(response)
}

/// A ticket, loaded from its events (optionally as it was at `as_of`).
#[utoipa::path(get, path = "/{id}", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Ticket number"), HistoryQuery),
    responses((status = 200, body = TicketDetail, headers(("ETag" = String))), ReadErrors))]
async fn find_ticket(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    AppQuery(query): AppQuery<HistoryQuery>,
) -> Result<Response, ApiError> {
    let (ticket, version) = load_visible(&state, &user, id).await?;
    let detail = match query.as_of {
        Some(as_of) => tickets::detail_as_of(&state, id, as_of)
            .await?
            .ok_or_else(|| ApiError::NotFound("The ticket did not exist at that time".into()))?,
        None => tickets::detail(&state, &ticket, version).await?,
    };
    Ok(detail_response(StatusCode::OK, detail))
}

/// Change a ticket's fields. Requesters may edit their own tickets.
#[utoipa::path(patch, path = "/{id}", tag = "tickets", security(("bearer" = [])), request_body = TicketUpdate,
    params(Target),
    responses((status = 200, body = TicketDetail), ConditionalWriteErrors))]
async fn update_ticket(
    State(state): State<AppState>,
    user: AuthUser,
    target: Target,
    AppJson(body): AppJson<TicketUpdate>,
) -> Result<Response, ApiError> {
    let committed = tickets::update(&state, &user, target.id, target.expected?, body).await?;
    ticket_response(&state, StatusCode::OK, &committed).await
}

/// Delete a ticket: it is cancelled and hidden from lists; its history stays.
#[utoipa::path(delete, path = "/{id}", tag = "tickets", security(("bearer" = [])),
    params(Target),
    responses((status = 204), ConditionalCommandErrors))]
async fn delete_ticket(
    State(state): State<AppState>,
    user: AuthUser,
    target: Target,
) -> Result<Response, ApiError> {
    let committed = tickets::delete(&state, &user, target.id, target.expected?).await?;
    Ok(with_token(
        StatusCode::NO_CONTENT.into_response(),
        committed.token,
    ))
}

/// Move a ticket through its state machine. 409 lists the allowed states.
/// Requesters may only close, reopen or cancel their own tickets.
#[utoipa::path(patch, path = "/{id}/status", tag = "tickets", security(("bearer" = [])), request_body = TicketStatusUpdate,
    params(Target),
    responses((status = 200, body = TicketDetail), ConditionalWriteErrors))]
async fn change_ticket_status(
    State(state): State<AppState>,
    user: AuthUser,
    target: Target,
    AppJson(body): AppJson<TicketStatusUpdate>,
) -> Result<Response, ApiError> {
    let (id, expected) = (target.id, target.expected?);
    let committed = tickets::change_status(&state, &user, id, expected, body).await?;
    ticket_response(&state, StatusCode::OK, &committed).await
}

/// Assign a ticket to an agent, or unassign it with `null` (agents and up).
#[utoipa::path(patch, path = "/{id}/assign", tag = "tickets", security(("bearer" = [])), request_body = TicketAssign,
    params(Target),
    responses((status = 200, body = TicketDetail), ConditionalWriteErrors))]
async fn assign_ticket(
    State(state): State<AppState>,
    user: AuthUser,
    target: Target,
    AppJson(body): AppJson<TicketAssign>,
) -> Result<Response, ApiError> {
    // A malformed If-Match is answered after the permission check.
    let committed = tickets::assign(&state, &user, target.id, target.expected, body).await?;
    ticket_response(&state, StatusCode::OK, &committed).await
}

/// List tickets (newest first by default). Requesters see only their own.
#[utoipa::path(get, path = "/", tag = "tickets", security(("bearer" = [])),
    params(TicketListQueryParams, ConsistencyHeader),
    responses((status = 200, body = TicketListResponse), ListErrors))]
async fn list_tickets(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppQuery(query): AppQuery<TicketListQueryParams>,
) -> Result<axum::Json<Page<TicketSummary>>, ApiError> {
    search(state, user, headers, query).await
}

/// Search tickets: full text over title, description and public comments, prefix matching
/// for search-as-you-type and trigram matching for misspellings; best match first.
#[utoipa::path(get, path = "/search", tag = "tickets", security(("bearer" = [])),
    params(TicketListQueryParams, ConsistencyHeader),
    responses((status = 200, body = TicketListResponse), ListErrors))]
async fn search_tickets(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppQuery(query): AppQuery<TicketListQueryParams>,
) -> Result<axum::Json<Page<TicketSummary>>, ApiError> {
    search(state, user, headers, query).await
}

async fn search(
    state: AppState,
    user: AuthUser,
    headers: HeaderMap,
    query: TicketListQueryParams,
) -> Result<axum::Json<Page<TicketSummary>>, ApiError> {
    wait_for_token(
        &state,
        &headers,
        &[projections::tickets::TicketsProjection::NAME],
    )
    .await?;
    Ok(axum::Json(
        list::search_tickets(&state, &user, &query).await?,
    ))
}
