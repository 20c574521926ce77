//! Signing in and staying signed in: a password sign-in (throttled per account and per client
//! address, equal work for unknown emails) and the exchange of a refresh token for new tokens.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::service::auth::{self, ACCESS_TOKEN_SECONDS};
use crate::service::error::Error;
use crate::service::executor::Actor;
use crate::service::users::{self, User, UserRecord};
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
/// password hash, and answers the same for unknown users.
pub async fn sign_in(
    services: &Services,
    request: &Actor,
    body: LoginRequest,
) -> Result<TokenResponse, Error> {
    let account_key = format!("account:{}", body.email.trim().to_lowercase());
    let address_key = format!("address:{}", request.client_ip);
    for key in [&account_key, &address_key] {
        if let Some(retry_after) = auth::throttle_check(&services.pool, key).await? {
            return Err(Error::RateLimited {
                detail: "Too many failed sign-in attempts; try again later".into(),
                retry_after,
            });
        }
    }
    let user = users::find_by_email(&services.pool, &body.email).await?;
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| services.dummy_hash.clone());
    let matches = auth::verify_password(body.password, hash).await?;
    match user {
        Some(user) if matches && user.is_active => {
            auth::throttle_clear(&services.pool, &account_key).await?;
            let refresh = auth::issue_refresh_token(&services.pool, user.id, None).await?;
            tokens_for(services, &user, refresh).await
        }
        _ => {
            auth::throttle_fail(&services.pool, &account_key, &auth::ACCOUNT_POLICY).await?;
            auth::throttle_fail(&services.pool, &address_key, &auth::ADDRESS_POLICY).await?;
            Err(Error::Unauthorized("Incorrect email or password".into()))
        }
    }
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
