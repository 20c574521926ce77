//! `/api/v1/auth`: register, login, refresh (rotation with reuse detection), logout, profile.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiError, AppJson};
use crate::http::responses::{ReadErrors, RegisterErrors, SignInErrors, WriteErrors};
use crate::http::state::AppState;
use crate::service::auth::AuthUser;
use crate::service::executor::Actor;
use crate::service::sessions::{self, LoginRequest, TokenResponse};
use crate::service::users::{self, ProfileUpdate, RegisterRequest, User};

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(get_profile, update_profile))
}

/// Body of `POST /refresh` and `POST /logout`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Register a new requester account.
#[utoipa::path(post, path = "/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = User), RegisterErrors))]
async fn register(
    State(state): State<AppState>,
    request: Actor,
    AppJson(body): AppJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    let user = sessions::register(&state, &request, body).await?;
    Ok((StatusCode::CREATED, axum::Json(user.public())).into_response())
}

/// Sign in with email and password. Throttled per account and per client address.
#[utoipa::path(post, path = "/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), SignInErrors))]
async fn login(
    request: Actor,
    State(state): State<AppState>,
    AppJson(body): AppJson<LoginRequest>,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    Ok(axum::Json(sessions::sign_in(&state, &request, body).await?))
}

/// Exchange a refresh token for new tokens. The presented token is spent; presenting it
/// again revokes every token of its login.
#[utoipa::path(post, path = "/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), SignInErrors))]
async fn refresh(
    State(state): State<AppState>,
    AppJson(body): AppJson<RefreshRequest>,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    Ok(axum::Json(
        sessions::refresh(&state, &body.refresh_token).await?,
    ))
}

/// Sign out: the refresh token's whole family is revoked.
#[utoipa::path(post, path = "/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204), SignInErrors))]
async fn logout(
    State(state): State<AppState>,
    AppJson(body): AppJson<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    sessions::sign_out(&state, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[utoipa::path(get, path = "/profile", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = User), ReadErrors))]
async fn get_profile(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<axum::Json<User>, ApiError> {
    let record = users::find_by_id(&state.pool, user.id)
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(|| ApiError::Unauthorized("Account not available".into()))?;
    Ok(axum::Json(record.public()))
}

/// Change your name or password (a new password needs the current one).
#[utoipa::path(patch, path = "/profile", tag = "auth", security(("bearer" = [])), request_body = ProfileUpdate,
    responses((status = 200, body = User), WriteErrors))]
async fn update_profile(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<ProfileUpdate>,
) -> Result<axum::Json<User>, ApiError> {
    Ok(axum::Json(
        users::update_profile(&state, &user, body).await?.public(),
    ))
}
