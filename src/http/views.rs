//! `/api/v1/views`: saved views of the ticket queue (agents and up): personal and shared
//! views, how many tickets each shows now, and the page of tickets a view gives.

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::consistency::{wait_for_token, ConsistencyHeader};
use crate::http::error::{ApiError, AppJson, AppPath, AppQuery, Validator};
use crate::http::idempotency::IdempotencyHeader;
use crate::http::responses::{CommandErrors, ListErrors, ReadErrors, WriteErrors};
use crate::http::state::AppState;
use crate::http::with_token;
use crate::service::auth::AuthUser;
use crate::service::paging::{paging, Page};
use crate::service::tickets::list::{TicketListResponse, TicketSummary};
use crate::service::views::{self, View, ViewCount, ViewCreate, ViewUpdate};

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_views, create_view))
        .routes(routes!(count_views))
        .routes(routes!(find_view, update_view, delete_view))
        .routes(routes!(list_view_tickets))
}

page_schema! {
    /// A page of saved views (OpenAPI name).
    ViewListResponse, View
}

/// Paging of `GET /views` and `GET /views/{id}/tickets`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ViewPageQuery {
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<i64>,
}

/// Every write answers with a consistency token; views are not in the log, so a read never
/// has to wait for them.
fn written(response: Response) -> Response {
    with_token(response, Some(projections::Checkpoint::default()))
}

/// Your views and the shared ones, in sidebar order (`position`, then id).
#[utoipa::path(get, path = "/", tag = "views", security(("bearer" = [])), params(ViewPageQuery),
    responses((status = 200, body = ViewListResponse), ListErrors))]
async fn list_views(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(query): AppQuery<ViewPageQuery>,
) -> Result<axum::Json<Page<View>>, ApiError> {
    let mut v = Validator::default();
    let paged = paging(&mut v, query.page, query.size);
    v.finish()?;
    Ok(axum::Json(views::list(&state.pool, &user, paged).await?))
}

/// Save a view. Its filters and sort follow the ticket list's rules (a bad one is 422 at
/// `["body", "filters", <name>]`); `assignee_id: "me"` names whoever runs it. Shared views:
/// managers and admins only.
#[utoipa::path(post, path = "/", tag = "views", security(("bearer" = [])), request_body = ViewCreate,
    params(IdempotencyHeader),
    responses((status = 201, body = View, headers(("Location" = String), ("X-Consistency-Token" = String))), WriteErrors))]
async fn create_view(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<ViewCreate>,
) -> Result<Response, ApiError> {
    let view = views::create(&state.pool, &user, body).await?;
    let mut response = (StatusCode::CREATED, axum::Json(&view)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/views/{}", view.id)) {
        response.headers_mut().insert(LOCATION, v);
    }
    Ok(written(response))
}

/// How many tickets each of your views and the shared ones shows now, answered from the
/// read models (exact unless a view searches words matching thousands of tickets).
#[utoipa::path(get, path = "/counts", tag = "views", security(("bearer" = [])),
    params(ConsistencyHeader),
    responses((status = 200, body = Vec<ViewCount>), ListErrors))]
async fn count_views(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
) -> Result<axum::Json<Vec<ViewCount>>, ApiError> {
    agent_reading_the_list(&state, &user, &headers).await?;
    Ok(axum::Json(views::counts(&state, &user).await?))
}

/// One view: yours or a shared one (another person's personal view is 404).
#[utoipa::path(get, path = "/{id}", tag = "views", security(("bearer" = [])),
    params(("id" = i64, Path, description = "View id")),
    responses((status = 200, body = View), ReadErrors))]
async fn find_view(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<axum::Json<View>, ApiError> {
    Ok(axum::Json(views::find(&state.pool, &user, id).await?))
}

/// Change a view: yours, or a shared one as a manager or admin (agents: 403).
#[utoipa::path(patch, path = "/{id}", tag = "views", security(("bearer" = [])), request_body = ViewUpdate,
    params(("id" = i64, Path, description = "View id")),
    responses((status = 200, body = View, headers(("X-Consistency-Token" = String))), WriteErrors))]
async fn update_view(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    AppJson(body): AppJson<ViewUpdate>,
) -> Result<Response, ApiError> {
    let view = views::update(&state.pool, &user, id, body).await?;
    Ok(written(axum::Json(view).into_response()))
}

/// Delete a view: yours, or a shared one as a manager or admin (agents: 403).
#[utoipa::path(delete, path = "/{id}", tag = "views", security(("bearer" = [])),
    params(("id" = i64, Path, description = "View id")),
    responses((status = 204, headers(("X-Consistency-Token" = String))), CommandErrors))]
async fn delete_view(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<Response, ApiError> {
    views::delete(&state.pool, &user, id).await?;
    Ok(written(StatusCode::NO_CONTENT.into_response()))
}

/// The page of tickets a view gives you, in its sort (`me` in its filters is you).
#[utoipa::path(get, path = "/{id}/tickets", tag = "views", security(("bearer" = [])),
    params(("id" = i64, Path, description = "View id"), ViewPageQuery, ConsistencyHeader),
    responses((status = 200, body = TicketListResponse), ReadErrors))]
async fn list_view_tickets(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    headers: HeaderMap,
    AppQuery(query): AppQuery<ViewPageQuery>,
) -> Result<axum::Json<Page<TicketSummary>>, ApiError> {
    agent_reading_the_list(&state, &user, &headers).await?;
    let page = views::tickets(&state, &user, id, query.page, query.size).await?;
    Ok(axum::Json(page))
}

/// Agents and up, once the ticket list has applied the caller's consistency token.
async fn agent_reading_the_list(
    state: &AppState,
    user: &AuthUser,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    user.require(aggregates::Role::Agent)?;
    wait_for_token(
        state,
        headers,
        &[projections::tickets::TicketsProjection::NAME],
    )
    .await
}
