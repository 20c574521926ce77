//! Signing up, signing in and staying signed in: registration (limited per client address), a
//! password sign-in (throttled per account and client address pair and per address, equal work
//! for unknown emails), the exchange of a refresh token for new tokens, signing out, and keeping
//! this process's view of revoked sessions and users current.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::service::auth::throttle::{self, SignInKeys};
use crate::service::auth::{self, ACCESS_TOKEN_SECONDS};
use crate::service::bus::{Delivery, Message};
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

/// New tokens for `user` in `session` around a refresh token.
async fn tokens_for(
    services: &Services,
    user: &UserRecord,
    session: Uuid,
    refresh: String,
) -> Result<TokenResponse, Error> {
    Ok(TokenResponse {
        access_token: services.jwt.issue(user.id, user.role(), session)?,
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
            let (refresh, session) = auth::issue_refresh_token(&services.pool, user.id).await?;
            tokens_for(services, &user, session, refresh).await
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
    let rotated =
        auth::rotate_refresh_token(&services.pool, &services.revocations, refresh_token).await?;
    let user = users::find_by_id(&services.pool, rotated.user_id)
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(|| Error::Unauthorized("Invalid or expired refresh token".into()))?;
    tokens_for(services, &user, rotated.session, rotated.token).await
}

/// Signs out: the refresh token's session is revoked, its access tokens with it, on every
/// process. Unknown tokens are ignored.
pub async fn sign_out(services: &Services, refresh_token: &str) -> Result<(), Error> {
    auth::revoke_family(&services.pool, &services.revocations, refresh_token).await
}

/// How this process keeps its revoked sessions and cached user statuses current.
#[derive(Debug, Clone, Copy)]
pub struct SyncSettings {
    /// The safety net: reload the revoked sessions this often even when the bus is quiet.
    pub reload_every: Duration,
}

/// Loads the revoked sessions, then keeps them and the cached user statuses current from the
/// bus (a resync reloads and forgets every cached status) and reloads every `reload_every`.
/// The task lives as long as the bus.
pub async fn keep_in_sync(services: &Services, settings: SyncSettings) -> Result<(), Error> {
    let mut deliveries = services.bus.subscribe();
    services.revocations.reload(&services.pool).await?;
    let pool = services.pool.clone();
    let revocations = services.revocations.clone();
    let user_status = services.user_status.clone();
    let names = services.names.clone();
    let policies = services.policies.clone();
    services.bus.attach(tokio::spawn(async move {
        let mut reload = tokio::time::interval(settings.reload_every);
        reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        reload.tick().await;
        loop {
            let resync = tokio::select! {
                delivery = deliveries.recv() => match delivery {
                    Ok(Delivery::Message(Message::SessionsRevoked { sessions })) => {
                        revocations.revoke(sessions);
                        false
                    }
                    Ok(Delivery::Message(Message::UserChanged { user_id })) => {
                        user_status.forget(user_id);
                        names.forget(user_id);
                        false
                    }
                    Ok(Delivery::Message(Message::UserRenamed { user_id })) => {
                        names.forget(user_id);
                        false
                    }
                    Ok(Delivery::Message(Message::PoliciesChanged)) => {
                        policies.forget();
                        false
                    }
                    // An erasure destroyed this person's key: no process may keep it.
                    Ok(Delivery::Message(Message::KeyDestroyed { person_id })) => {
                        privacy::keyring().forget(person_id);
                        false
                    }
                    Ok(Delivery::Message(_)) => false,
                    Ok(Delivery::Resync) | Err(RecvError::Lagged(_)) => {
                        user_status.clear();
                        names.clear();
                        policies.forget();
                        privacy::keyring().forget_all();
                        true
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = reload.tick() => true,
            };
            if resync {
                if let Err(e) = revocations.reload(&pool).await {
                    tracing::warn!(error = %e, "reloading the revoked sessions failed");
                }
            }
        }
    }));
    Ok(())
}
