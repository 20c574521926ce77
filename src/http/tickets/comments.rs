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

use aggregates::ticket::{Ticket, TicketCommand};
use aggregates::Role;
use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::consistency::wait_for_token;
use crate::http::error::{ApiError, AppJson, AppPath, AppQuery, FieldError, Validator};
use crate::http::state::AppState;
use crate::http::with_token;
use crate::service::auth::AuthUser;
use crate::service::comments::{self, resolve_mentions, validate_content, Comment, COLUMNS};
use crate::service::executor::Committed;
use crate::service::paging::{paging, Page};
use crate::service::tickets::{command_error, execute_checked, load_visible};

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

/// Body of `POST /comments`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CommentCreate {
    pub ticket_id: i64,
    pub content: String,
    /// Defaults to `false`; only agents and up may write internal notes.
    #[serde(default)]
    pub is_internal: bool,
    /// Reply to this comment (on the same ticket).
    pub parent_id: Option<Uuid>,
}

/// Body of `PATCH /comments/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CommentUpdate {
    pub content: String,
}

/// Query of `GET /comments`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommentListQueryParams {
    /// The ticket whose conversation to list (required).
    pub ticket_id: Option<i64>,
    pub page: Option<i64>,
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
    responses((status = 201, body = Comment, headers(("Location" = String), ("X-Consistency-Token" = String))),
              (status = 403, body = crate::http::error::ErrorBody), (status = 404, body = crate::http::error::ErrorBody),
              (status = 422, body = crate::http::error::ValidationErrorBody)))]
async fn create_comment(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<CommentCreate>,
) -> Result<Response, ApiError> {
    let mut v = Validator::default();
    validate_content(&mut v, &body.content);
    v.finish()?;
    let (ticket, _) = load_visible(&state, &user, body.ticket_id).await?;
    if body.is_internal && !user.is_staff() {
        return Err(ApiError::Forbidden(
            "Only agents can write internal notes".into(),
        ));
    }
    if let Some(parent) = body.parent_id {
        let visible = ticket
            .comments
            .get(&parent)
            .is_some_and(|c| !c.deleted && (user.is_staff() || !c.is_internal));
        if !visible {
            return Err(ApiError::field(
                "parent_id",
                "The parent comment is not on this ticket",
            ));
        }
    }
    let mentions = resolve_mentions(&state.pool, &body.content, body.is_internal, &ticket).await?;
    let at = Utc::now();
    let comment = Comment {
        id: Uuid::new_v4(),
        ticket_id: body.ticket_id,
        author_id: user.id,
        content: body.content,
        is_internal: body.is_internal,
        parent_id: body.parent_id,
        mentions,
        edited: false,
        created_at: at,
        updated_at: at,
    };
    let committed: Committed<Ticket> = state
        .tickets
        .execute(
            &comment.ticket_id.to_string(),
            None,
            user.actor.metadata(),
            |_| TicketCommand::AddComment {
                comment_id: comment.id,
                author_id: user.id,
                by_staff: user.is_staff(),
                content: comment.content.clone(),
                is_internal: comment.is_internal,
                parent_id: comment.parent_id,
                mentions: comment.mentions.clone(),
                at: comment.created_at,
            },
        )
        .await
        .map_err(command_error)?;
    crate::service::metrics::command_committed();
    let mut response = comment_response(StatusCode::CREATED, &comment, committed.token);
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/comments/{}", comment.id)) {
        response.headers_mut().insert(LOCATION, v);
    }
    Ok(response)
}

/// A ticket's conversation, oldest first. Requesters never see internal notes.
#[utoipa::path(get, path = "/", tag = "comments", security(("bearer" = [])),
    params(CommentListQueryParams, ("X-Consistency-Token" = Option<String>, Header, description = "Wait until this write is visible")),
    responses((status = 200, body = CommentListResponse), (status = 404, body = crate::http::error::ErrorBody),
              (status = 422, body = crate::http::error::ValidationErrorBody)))]
async fn list_comments(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppQuery(query): AppQuery<CommentListQueryParams>,
) -> Result<axum::Json<Page<Comment>>, ApiError> {
    let mut v = Validator::default();
    let (page, size, offset) = paging(&mut v, query.page, query.size);
    let Some(ticket_id) = query.ticket_id else {
        return Err(ApiError::Validation(vec![FieldError {
            loc: vec![serde_json::json!("query"), serde_json::json!("ticket_id")],
            msg: "ticket_id is required".into(),
            kind: "missing".into(),
        }]));
    };
    v.finish()?;
    wait_for_comments(&state, &headers).await?;
    load_visible(&state, &user, ticket_id).await?;
    let with_internal = user.role != Role::Requester;
    let items: Vec<Comment> = sqlx::query_as(&format!(
        "select {COLUMNS} from rm_comments
          where ticket_id = $1 and not deleted and ($2 or not is_internal)
          order by created_at, id limit $3 offset $4"
    ))
    .bind(ticket_id)
    .bind(with_internal)
    .bind(size)
    .bind(offset)
    .fetch_all(&state.pool)
    .await?;
    let (total,): (i64,) = sqlx::query_as(
        "select count(*) from rm_comments
          where ticket_id = $1 and not deleted and ($2 or not is_internal)",
    )
    .bind(ticket_id)
    .bind(with_internal)
    .fetch_one(&state.pool)
    .await?;
    Ok(axum::Json(Page::new(items, total, page, size)))
}

/// One comment.
#[utoipa::path(get, path = "/{id}", tag = "comments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Comment id"), ("X-Consistency-Token" = Option<String>, Header, description = "Wait until this write is visible")),
    responses((status = 200, body = Comment), (status = 404, body = crate::http::error::ErrorBody)))]
async fn find_comment(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
) -> Result<axum::Json<Comment>, ApiError> {
    wait_for_comments(&state, &headers).await?;
    Ok(axum::Json(comments::load(&state, &user, id).await?))
}

/// A comment the caller may change: its author, or staff.
async fn load_own_comment(
    state: &AppState,
    user: &AuthUser,
    headers: &HeaderMap,
    id: Uuid,
) -> Result<Comment, ApiError> {
    wait_for_comments(state, headers).await?;
    let comment = comments::load(state, user, id).await?;
    if comment.author_id != user.id && !user.is_staff() {
        return Err(ApiError::Forbidden(
            "Only the author or an agent can change this comment".into(),
        ));
    }
    Ok(comment)
}

/// Edit a comment's text (its author, or staff). The previous text stays in the history.
#[utoipa::path(patch, path = "/{id}", tag = "comments", security(("bearer" = [])), request_body = CommentUpdate,
    params(("id" = Uuid, Path, description = "Comment id")),
    responses((status = 200, body = Comment, headers(("X-Consistency-Token" = String))),
              (status = 403, body = crate::http::error::ErrorBody), (status = 404, body = crate::http::error::ErrorBody),
              (status = 422, body = crate::http::error::ValidationErrorBody)))]
async fn update_comment(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<CommentUpdate>,
) -> Result<Response, ApiError> {
    let mut v = Validator::default();
    validate_content(&mut v, &body.content);
    v.finish()?;
    let mut comment = load_own_comment(&state, &user, &headers, id).await?;
    let (ticket, _) = load_visible(&state, &user, comment.ticket_id).await?;
    let mentions =
        resolve_mentions(&state.pool, &body.content, comment.is_internal, &ticket).await?;
    let at = Utc::now();
    let committed = state
        .tickets
        .execute(
            &comment.ticket_id.to_string(),
            None,
            user.actor.metadata(),
            |_| TicketCommand::EditComment {
                comment_id: id,
                editor_id: user.id,
                content: body.content.clone(),
                mentions: mentions.clone(),
                at,
            },
        )
        .await
        .map_err(command_error)?;
    if committed.appended > 0 {
        crate::service::metrics::command_committed();
        comment.content = body.content;
        comment.mentions = mentions;
        comment.edited = true;
        comment.updated_at = at;
    }
    Ok(comment_response(StatusCode::OK, &comment, committed.token))
}

/// Delete a comment (its author, or staff). A tombstone stays in the history; replies stay.
#[utoipa::path(delete, path = "/{id}", tag = "comments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Comment id")),
    responses((status = 204, headers(("X-Consistency-Token" = String))), (status = 403, body = crate::http::error::ErrorBody),
              (status = 404, body = crate::http::error::ErrorBody)))]
async fn delete_comment(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
) -> Result<Response, ApiError> {
    let comment = load_own_comment(&state, &user, &headers, id).await?;
    let committed = execute_checked(&state, &user, comment.ticket_id, None, |_| {
        TicketCommand::DeleteComment {
            comment_id: id,
            deleted_by: user.id,
            at: Utc::now(),
        }
    })
    .await?;
    Ok(with_token(
        StatusCode::NO_CONTENT.into_response(),
        committed.token,
    ))
}
