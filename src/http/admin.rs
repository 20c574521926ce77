//! `/api/v1/admin`: operations for admins — the projections, their lag and leaders, and
//! rebuilds started from the SPA (the SLA policy screen applies a new policy to the past so).

use aggregates::Role;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiError, AppPath};
use crate::http::responses::{CommandErrors, ReadErrors};
use crate::http::state::AppState;
use crate::service::auth::AuthUser;
use crate::service::operations::{self, ProjectionState};

/// The routes of this area (nested under `/api/v1/admin`).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projections))
        .routes(routes!(rebuild_projection))
}

/// Every projection: its position, lag, status, leader and rebuild (admins).
#[utoipa::path(get, path = "/projections", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<ProjectionState>), ReadErrors))]
async fn list_projections(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<axum::Json<Vec<ProjectionState>>, ApiError> {
    user.require(Role::Admin)?;
    Ok(axum::Json(operations::projections(&state).await?))
}

/// Rebuild a projection from the whole log in the background (admins): the read model keeps
/// serving until the rebuilt one is swapped in. 202 at once; the progress is in
/// `GET /admin/projections`. 409 while a rebuild of it runs.
#[utoipa::path(post, path = "/projections/{name}/rebuild", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "Projection name (`tickets`, `reports`...)")),
    responses((status = 202, body = ProjectionState), CommandErrors))]
async fn rebuild_projection(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(name): AppPath<String>,
) -> Result<Response, ApiError> {
    user.require(Role::Admin)?;
    let started = operations::start_rebuild(&state, &name).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(started)).into_response())
}
