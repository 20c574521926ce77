//! `/api/v1/auth`: register, login, refresh (rotation with reuse detection), logout, profile.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiError, AppJson, Validator};
use crate::http::state::AppState;
use crate::service::auth::{self, AuthUser, ACCESS_TOKEN_SECONDS};
use crate::service::executor::Actor;
use crate::service::users::{self, User};

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(get_profile, update_profile))
}

/// Body of `POST /register`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub full_name: String,
}

/// Body of `POST /login`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// Body of `POST /refresh` and `POST /logout`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Body of `PATCH /profile`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ProfileUpdate {
    pub full_name: Option<String>,
    pub password: Option<String>,
    pub current_password: Option<String>,
}

/// Answer of login and refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub user: User,
}

async fn tokens_for(
    state: &AppState,
    user: &users::UserRecord,
    refresh: String,
) -> Result<TokenResponse, ApiError> {
    Ok(TokenResponse {
        access_token: state.jwt.issue(user.id, user.role())?,
        refresh_token: refresh,
        token_type: "bearer".into(),
        expires_in: ACCESS_TOKEN_SECONDS,
        user: user.public(),
    })
}

/// Register a new requester account.
#[utoipa::path(post, path = "/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = User), (status = 409, body = crate::http::error::ErrorBody),
              (status = 422, body = crate::http::error::ValidationErrorBody)))]
async fn register(
    State(state): State<AppState>,
    AppJson(body): AppJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    let mut v = Validator::default();
    users::validate_new_user(&mut v, &body.email, &body.password, &body.full_name);
    v.finish()?;
    let hash = auth::hash_password(body.password).await?;
    let user = users::insert(
        &state.pool,
        &body.email,
        &body.full_name,
        &hash,
        aggregates::Role::Requester,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(user.public())).into_response())
}

/// Sign in with email and password. Throttled per account and per client address.
#[utoipa::path(post, path = "/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = crate::http::error::ErrorBody),
              (status = 429, body = crate::http::error::ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    request: Actor,
    AppJson(body): AppJson<LoginRequest>,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    let account_key = format!("account:{}", body.email.trim().to_lowercase());
    let address_key = format!("address:{}", request.client_ip);
    // Throttling runs before the password hash, and answers the same for unknown users.
    for key in [&account_key, &address_key] {
        if let Some(retry_after) = auth::throttle_check(&state.pool, key).await? {
            return Err(ApiError::RateLimited {
                detail: "Too many failed sign-in attempts; try again later".into(),
                retry_after,
            });
        }
    }
    let user = users::find_by_email(&state.pool, &body.email).await?;
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| state.dummy_hash.clone());
    let matches = auth::verify_password(body.password, hash).await?;
    match user {
        Some(user) if matches && user.is_active => {
            auth::throttle_clear(&state.pool, &account_key).await?;
            let refresh = auth::issue_refresh_token(&state.pool, user.id, None).await?;
            Ok(axum::Json(tokens_for(&state, &user, refresh).await?))
        }
        _ => {
            auth::throttle_fail(&state.pool, &account_key, &auth::ACCOUNT_POLICY).await?;
            auth::throttle_fail(&state.pool, &address_key, &auth::ADDRESS_POLICY).await?;
            Err(ApiError::Unauthorized("Incorrect email or password".into()))
        }
    }
}

/// Exchange a refresh token for new tokens. The presented token is spent; presenting it
/// again revokes every token of its login.
#[utoipa::path(post, path = "/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = crate::http::error::ErrorBody)))]
async fn refresh(
    State(state): State<AppState>,
    AppJson(body): AppJson<RefreshRequest>,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    let (user_id, token) = auth::rotate_refresh_token(&state.pool, &body.refresh_token).await?;
    let user = users::find_by_id(&state.pool, user_id)
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(|| ApiError::Unauthorized("Invalid or expired refresh token".into()))?;
    Ok(axum::Json(tokens_for(&state, &user, token).await?))
}

/// Sign out: the refresh token's whole family is revoked.
#[utoipa::path(post, path = "/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204)))]
async fn logout(
    State(state): State<AppState>,
    AppJson(body): AppJson<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    auth::revoke_family(&state.pool, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[utoipa::path(get, path = "/profile", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = crate::http::error::ErrorBody)))]
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
    responses((status = 200, body = User), (status = 401, body = crate::http::error::ErrorBody),
              (status = 422, body = crate::http::error::ValidationErrorBody)))]
async fn update_profile(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<ProfileUpdate>,
) -> Result<axum::Json<User>, ApiError> {
    let record = users::find_by_id(&state.pool, user.id)
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(|| ApiError::Unauthorized("Account not available".into()))?;
    let mut v = Validator::default();
    if let Some(name) = &body.full_name {
        users::validate_name(&mut v, name);
    }
    if let Some(password) = &body.password {
        users::validate_password(&mut v, "password", password);
        if body.current_password.is_none() {
            v.missing(
                "current_password",
                "The current password is required to set a new one",
            );
        }
    }
    v.finish()?;
    if let Some(password) = body.password {
        let current = body.current_password.unwrap_or_default();
        if !auth::verify_password(current, record.password_hash.clone()).await? {
            return Err(ApiError::field(
                "current_password",
                "The current password is incorrect",
            ));
        }
        let hash = auth::hash_password(password).await?;
        sqlx::query("update users set password_hash = $2, updated_at = now() where id = $1")
            .bind(user.id)
            .bind(hash)
            .execute(&state.pool)
            .await?;
        // Other sessions end with the old password.
        auth::revoke_user_tokens(&state.pool, user.id).await?;
    }
    if let Some(name) = body.full_name {
        sqlx::query("update users set full_name = $2, updated_at = now() where id = $1")
            .bind(user.id)
            .bind(name.trim())
            .execute(&state.pool)
            .await?;
    }
    let record = users::find_by_id(&state.pool, user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    Ok(axum::Json(record.public()))
}
