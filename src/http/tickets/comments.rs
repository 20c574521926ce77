//! `/api/v1/comments`: a ticket's conversation. Comments are events of the Ticket aggregate
//! (`CommentAdded`, `CommentEdited` with the previous text, `CommentDeleted` as a tombstone);
//! reads come from the `comments` read model.
//!
//! - **Internal notes** (`is_internal: true`) are written by agents and up. Requesters can
//!   neither write (403) nor see them: lists and lookups leave them out (404), and the
//!   `tickets` projection never puts their text in the search document.
//! - **Threads**: `parent_id` names a live comment on the same ticket that the author can
//!   see. A deleted comment disappears from lists and lookups (404); its replies stay, with
//!   their `parent_id` unchanged, so clients show them as replies to a removed comment.
//! - **Edits and deletes**: by the author, or by staff. Every earlier text stays in the
//!   ticket's event log (`previous_content` of each `CommentEdited`).
//! - **Mentions**: `@email` (`@alice@example.com`) or `@<user id>` (`@42`), preceded by
//!   the start of the text or a character that is not a letter, digit, `.`, `_` or `@`
//!   (so `bob@example.com` alone is no mention). A mention resolves to an active user who
//!   can read the comment: staff always, the ticket's requester for public comments only.
//!   Anything else is ignored (so mentions cannot probe which emails exist). The resolved
//!   ids are recorded on the event and returned as `mentions` (at most 20).

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::consistency::{wait_for_token, ConsistencyHeader};
use crate::http::error::{ApiError, AppJson, AppPath, AppQuery, Validator};
use crate::http::idempotency::IdempotencyHeader;
use crate::http::responses::{CommandErrors, ReadErrors, WriteErrors};
use crate::http::state::AppState;
use crate::http::with_token;
use crate::service::auth::AuthUser;
use crate::service::comments::{self, Comment, CommentCreate, CommentCreated, CommentUpdate};
use crate::service::paging::{paging, Page};

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_comments, create_comment))
        .routes(routes!(find_comment, update_comment, delete_comment))
}

page_schema! {
    /// The page answered by `GET /comments` (OpenAPI name).
    CommentListResponse, Comment
}

/// Query of `GET /comments`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommentListQueryParams {
    /// The ticket whose conversation to list.
    pub ticket_id: i64,
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<i64>,
}

fn comment_response(
    status: StatusCode,
    comment: &Comment,
    token: Option<projections::Checkpoint>,
) -> Response {
    with_token((status, axum::Json(comment)).into_response(), token)
}

async fn wait_for_comments(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    wait_for_token(
        state,
        headers,
        &[projections::comments::CommentsProjection::NAME],
    )
    .await
}

/// Add a comment or an internal note (agents and up) to a ticket, optionally as a reply.
#[utoipa::path(post, path = "/", tag = "comments", security(("bearer" = [])), request_body = CommentCreate,
    params(IdempotencyHeader), responses((status = 201, body = CommentCreated, headers(("Location" = String), ("X-Consistency-Token" = String))), WriteErrors))]
async fn create_comment(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<CommentCreate>,
) -> Result<Response, ApiError> {
    let (comment, committed) = comments::add(&state, &user, body).await?;
    let id = comment.id;
    let ticket_version = committed.version as i64;
    let created = CommentCreated {
        comment,
        ticket_version,
    };
    let mut response = with_token(
        (StatusCode::CREATED, axum::Json(created)).into_response(),
        committed.token,
    );
    response
        .extensions_mut()
        .insert(crate::http::idempotency::AnsweredTicketVersion(
            ticket_version,
        ));
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/comments/{id}")) {
        response.headers_mut().insert(LOCATION, v);
    }
    Ok(response)
}

/// A ticket's conversation, oldest first. Requesters never see internal notes.
#[utoipa::path(get, path = "/", tag = "comments", security(("bearer" = [])),
    params(CommentListQueryParams, ConsistencyHeader),
    responses((status = 200, body = CommentListResponse), ReadErrors))]
async fn list_comments(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppQuery(query): AppQuery<CommentListQueryParams>,
) -> Result<axum::Json<Page<Comment>>, ApiError> {
    let mut v = Validator::default();
    let (page, size, offset) = paging(&mut v, query.page, query.size);
    let ticket_id = query.ticket_id;
    v.finish()?;
    wait_for_comments(&state, &headers).await?;
    let page = comments::list(&state, &user, ticket_id, (page, size, offset)).await?;
    Ok(axum::Json(page))
}

/// One comment.
#[utoipa::path(get, path = "/{id}", tag = "comments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Comment id"), ConsistencyHeader),
    responses((status = 200, body = Comment), ReadErrors))]
async fn find_comment(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
) -> Result<axum::Json<Comment>, ApiError> {
    wait_for_comments(&state, &headers).await?;
    Ok(axum::Json(comments::load(&state, &user, id).await?))
}

/// Edit a comment's text (its author, or staff). The previous text stays in the history.
#[utoipa::path(patch, path = "/{id}", tag = "comments", security(("bearer" = [])), request_body = CommentUpdate,
    params(("id" = Uuid, Path, description = "Comment id")),
    responses((status = 200, body = Comment, headers(("X-Consistency-Token" = String))), WriteErrors))]
async fn update_comment(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<CommentUpdate>,
) -> Result<Response, ApiError> {
    comments::check_content(&body.content)?;
    wait_for_comments(&state, &headers).await?;
    let (comment, committed) = comments::edit(&state, &user, id, body.content).await?;
    Ok(comment_response(StatusCode::OK, &comment, committed.token))
}

/// Delete a comment (its author, or staff). A tombstone stays in the history; replies stay.
#[utoipa::path(delete, path = "/{id}", tag = "comments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Comment id")),
    responses((status = 204, headers(("X-Consistency-Token" = String))), CommandErrors))]
async fn delete_comment(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
) -> Result<Response, ApiError> {
    wait_for_comments(&state, &headers).await?;
    let committed = comments::delete(&state, &user, id).await?;
    Ok(with_token(
        StatusCode::NO_CONTENT.into_response(),
        committed.token,
    ))
}
