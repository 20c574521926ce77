//! `/api/v1/macros` (agents and up): canned replies with changes, personal or shared; and
//! `POST /api/v1/tickets/{id}/macros/{macro_id}`, which applies one to a ticket.

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiError, AppJson, AppPath, AppQuery, Validator};
use crate::http::idempotency::IdempotencyHeader;
use crate::http::responses::{CommandErrors, ListErrors, ReadErrors, WriteErrors};
use crate::http::state::AppState;
use crate::http::views::ViewPageQuery;
use crate::service::auth::AuthUser;
use crate::service::macros::{self, Macro, MacroCreate, MacroUpdate};
use crate::service::paging::{paging, Page};

/// The routes of this area (nested under `/api/v1/macros`).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_macros, create_macro))
        .routes(routes!(find_macro, update_macro, delete_macro))
}

page_schema! {
    /// A page of macros (OpenAPI name).
    MacroListResponse, Macro
}

/// Your macros and the shared ones, shared first, then by name.
#[utoipa::path(get, path = "/", tag = "macros", security(("bearer" = [])), params(ViewPageQuery),
    responses((status = 200, body = MacroListResponse), ListErrors))]
async fn list_macros(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(query): AppQuery<ViewPageQuery>,
) -> Result<axum::Json<Page<Macro>>, ApiError> {
    let mut v = Validator::default();
    let paged = paging(&mut v, query.page, query.size);
    v.finish()?;
    Ok(axum::Json(macros::list(&state, &user, paged).await?))
}

/// Save a macro: a reply with placeholders (`{{ticket.id}}`, `{{ticket.title}}`,
/// `{{requester.name}}`, `{{agent.name}}`) and changes. Shared macros: managers and admins.
#[utoipa::path(post, path = "/", tag = "macros", security(("bearer" = [])), request_body = MacroCreate,
    params(IdempotencyHeader),
    responses((status = 201, body = Macro, headers(("Location" = String))), WriteErrors))]
async fn create_macro(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<MacroCreate>,
) -> Result<Response, ApiError> {
    let m = macros::create(&state, &user, body).await?;
    let mut response = (StatusCode::CREATED, axum::Json(&m)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/macros/{}", m.id)) {
        response.headers_mut().insert(LOCATION, v);
    }
    Ok(response)
}

/// One macro: yours or a shared one (another person's personal macro is 404).
#[utoipa::path(get, path = "/{id}", tag = "macros", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Macro id")),
    responses((status = 200, body = Macro), ReadErrors))]
async fn find_macro(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<axum::Json<Macro>, ApiError> {
    Ok(axum::Json(macros::find(&state, &user, id).await?))
}

/// Change a macro: your own; shared ones only as a manager or admin.
#[utoipa::path(patch, path = "/{id}", tag = "macros", security(("bearer" = [])), request_body = MacroUpdate,
    params(("id" = i64, Path, description = "Macro id")),
    responses((status = 200, body = Macro), WriteErrors))]
async fn update_macro(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    AppJson(body): AppJson<MacroUpdate>,
) -> Result<axum::Json<Macro>, ApiError> {
    Ok(axum::Json(macros::update(&state, &user, id, body).await?))
}

/// Delete a macro: your own; shared ones only as a manager or admin.
#[utoipa::path(delete, path = "/{id}", tag = "macros", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Macro id")),
    responses((status = 204), CommandErrors))]
async fn delete_macro(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<StatusCode, ApiError> {
    macros::delete(&state, &user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
