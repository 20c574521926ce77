//! `/api/v1/notifications`: the caller's notifications (the `notifications` read model), read
//! marks, and `GET /stream`: Server-Sent Events of new ones, authenticated with the
//! `Authorization` header (a token never travels in a URL), with keep-alives, each event's
//! `id` the notification id, resuming after `Last-Event-ID`.
//!
//! Requesters never see a notification about an internal note, whatever the read model holds.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::consistency::ConsistencyHeader;
use crate::http::error::{ApiError, AppPath, AppQuery, Validator};
use crate::http::idempotency::IdempotencyHeader;
use crate::http::live::{last_event_id, stream, token_expiry, Format};
use crate::http::responses::{CommandErrors, ListErrors};
use crate::http::state::AppState;
use crate::http::with_token;
use crate::service::auth::AuthUser;
use crate::service::live::{resume, Interest};
use projections::notifications::queries::{self, Notification, Reader};
use projections::notifications::NotificationsProjection;

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(stream_notifications))
        .routes(routes!(mark_all_read))
        .routes(routes!(mark_read))
}

/// Ends every open stream of this server (called when it starts shutting down).
pub fn close_streams(state: &AppState) {
    state.shutdown.send_replace(true);
}

/// A page of notifications, with the caller's unread count.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationListResponse {
    pub items: Vec<Notification>,
    pub total: i64,
    pub page: i64,
    pub size: i64,
    pub pages: i64,
    /// All the caller's unread notifications (not just this page's).
    pub unread_count: i64,
}

/// Query of `GET /notifications`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationListQueryParams {
    /// `true`: only unread ones; `false`: only read ones.
    pub unread: Option<bool>,
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<i64>,
}

/// The caller's notifications, newest first.
#[utoipa::path(get, path = "/", tag = "notifications", security(("bearer" = [])),
    params(NotificationListQueryParams, ConsistencyHeader),
    responses((status = 200, body = NotificationListResponse), ListErrors))]
async fn list_notifications(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppQuery(query): AppQuery<NotificationListQueryParams>,
) -> Result<axum::Json<NotificationListResponse>, ApiError> {
    let mut v = Validator::default();
    let (page, size, offset) = crate::service::paging::paging(&mut v, query.page, query.size);
    v.finish()?;
    crate::http::consistency::wait_for_token(&state, &headers, &[NotificationsProjection::NAME])
        .await?;
    let (items, total, unread_count) =
        queries::page(&state.pool, reader(&user), query.unread, (offset, size)).await?;
    let p = crate::service::paging::Page::new(items, total, page, size);
    Ok(axum::Json(NotificationListResponse {
        items: p.items,
        total: p.total,
        page: p.page,
        size: p.size,
        pages: p.pages,
        unread_count,
    }))
}

/// Mark one of your notifications read (404 for anyone else's).
#[utoipa::path(post, path = "/{id}/read", tag = "notifications", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Notification id"), IdempotencyHeader),
    responses((status = 204), CommandErrors))]
async fn mark_read(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<Response, ApiError> {
    if !queries::mark_read(&state.pool, reader(&user), id).await? {
        return Err(ApiError::not_found("Notification"));
    }
    Ok(with_token(
        StatusCode::NO_CONTENT.into_response(),
        Some(projections::Checkpoint::default()),
    ))
}

/// Mark all your notifications read.
#[utoipa::path(post, path = "/read-all", tag = "notifications", security(("bearer" = [])),
    params(IdempotencyHeader), responses((status = 204), CommandErrors))]
async fn mark_all_read(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Response, ApiError> {
    queries::mark_all_read(&state.pool, user.id).await?;
    Ok(with_token(
        StatusCode::NO_CONTENT.into_response(),
        Some(projections::Checkpoint::default()),
    ))
}

/// Whose notifications `user` reads.
fn reader(user: &AuthUser) -> Reader {
    Reader {
        user_id: user.id,
        staff: user.is_staff(),
    }
}

/// Server-Sent Events of your new notifications. Send `Last-Event-ID` to receive everything
/// after that id first. Keep-alive comments every 15 s; the stream ends when your access token
/// expires (reconnect with a fresh one and `Last-Event-ID`).
#[utoipa::path(get, path = "/stream", tag = "notifications", security(("bearer" = [])),
    params(("Last-Event-ID" = Option<i64>, Header, description = "The last notification id you received")),
    responses((status = 200, description = "text/event-stream: `id` is the notification id, `data` its JSON", content_type = "text/event-stream"), ListErrors))]
async fn stream_notifications(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let expires = token_expiry(&state, &headers)?;
    let last_id = last_event_id(&headers, |s| {
        s.trim().parse::<i64>().ok().filter(|id| *id >= 0)
    })?;
    let sub = state.live.subscribe(Interest {
        user_id: user.id,
        session: user.session,
        staff: user.is_staff(),
        tickets: Vec::new(),
        queue: false,
        live: false,
    });
    // Without Last-Event-ID: only what happens from now on.
    let backlog = match last_id {
        Some(id) => resume::notifications_after(&state.pool, reader(&user), id, sub.head).await?,
        None => Vec::new(),
    };
    Ok(stream(
        &state,
        sub,
        backlog.into(),
        expires,
        Format::Notifications,
    ))
}
