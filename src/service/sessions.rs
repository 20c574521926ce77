//! Signing up, signing in and staying signed in: registration (limited per client address), a
//! password sign-in (throttled per account and client address pair and per address, equal work
//! for unknown emails) and the exchange of a refresh token for new tokens.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::service::auth::throttle::{self, SignInKeys};
use crate::service::auth::{self, ACCESS_TOKEN_SECONDS};
use crate::service::error::Error;
use crate::service::executor::Actor;
use crate::service::users::{self, RegisterRequest, User, UserRecord};
use crate::service::Services;

/// Body of `POST /login`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
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

/// New tokens for `user` around a refresh token.
async fn tokens_for(
    services: &Services,
    user: &UserRecord,
    refresh: String,
) -> Result<TokenResponse, Error> {
    Ok(TokenResponse {
        access_token: services.jwt.issue(user.id, user.role())?,
        refresh_token: refresh,
        token_type: "bearer".into(),
        expires_in: ACCESS_TOKEN_SECONDS,
        user: user.public(),
    })
}

/// Signs in with email and password from `request`'s address. Throttling runs before the
/// password hash, and answers the same for unknown users (see `auth::throttle`).
pub async fn sign_in(
    services: &Services,
    request: &Actor,
    body: LoginRequest,
) -> Result<TokenResponse, Error> {
    let keys = SignInKeys::new(&body.email, &request.client_ip);
    let state =
        throttle::sign_in_state(&services.pool, &keys, services.throttle.login_address_limit)
            .await?;
    if let Some(retry_after) = state.address_wait {
        return Err(too_many_failures(retry_after));
    }
    if state.pair_locked {
        // An attempt while refused is one more failure: the wait doubles.
        let retry_after = throttle::pair_failed(&services.pool, &keys).await?;
        return Err(too_many_failures(retry_after.unwrap_or(1)));
    }
    let user = users::find_by_email(&services.pool, &body.email).await?;
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| services.dummy_hash.clone());
    let matches = auth::verify_password(body.password, hash).await?;
    match user {
        Some(user) if matches && user.is_active => {
            if state.pair_known {
                throttle::pair_succeeded(&services.pool, &keys).await?;
            }
            let refresh = auth::issue_refresh_token(&services.pool, user.id, None).await?;
            tokens_for(services, &user, refresh).await
        }
        _ => {
            throttle::pair_failed(&services.pool, &keys).await?;
            throttle::address_failed(&services.pool, &keys).await?;
            Err(Error::Unauthorized("Incorrect email or password".into()))
        }
    }
}

fn too_many_failures(retry_after: u64) -> Error {
    Error::RateLimited {
        detail: "Too many failed sign-in attempts; try again later".into(),
        retry_after,
    }
}

/// Registers a requester from `request`'s address (limited per address, see `auth::throttle`).
pub async fn register(
    services: &Services,
    request: &Actor,
    body: RegisterRequest,
) -> Result<UserRecord, Error> {
    throttle::registration_attempt(
        &services.pool,
        &request.client_ip,
        services.throttle.register_address_limit,
    )
    .await?;
    users::register(&services.pool, body).await
}

/// Spends a refresh token for new tokens (presenting it again revokes its whole login).
pub async fn refresh(services: &Services, refresh_token: &str) -> Result<TokenResponse, Error> {
    let (user_id, token) = auth::rotate_refresh_token(&services.pool, refresh_token).await?;
    let user = users::find_by_id(&services.pool, user_id)
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(|| Error::Unauthorized("Invalid or expired refresh token".into()))?;
    tokens_for(services, &user, token).await
}
