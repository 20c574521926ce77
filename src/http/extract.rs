//! Extractors for who is calling: the signed-in user (`AuthUser`) and the request facts
//! recorded with every event (`Actor`).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::service::auth::AuthUser;
use crate::service::executor::Actor;

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(request_info(parts))
    }
}

/// Reads the request id (set by the request-id layer), client address and user agent.
pub fn request_info(parts: &Parts) -> Actor {
    let request_id = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let user_agent = parts
        .headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(512)
        .collect();
    Actor {
        user_id: None,
        request_id,
        client_ip: client_ip(parts)
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
        user_agent,
    }
}

fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::Unauthorized("Not authenticated".into()))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::Unauthorized("Not authenticated".into()))?;
        let claims = state.jwt.verify(token.trim())?;
        // A signed-out session's tokens are out at once; the set is in memory (no query).
        if state.revocations.is_revoked(claims.sid) {
            return Err(ApiError::Unauthorized("Invalid or expired token".into()));
        }
        let id = claims
            .sub
            .parse()
            .map_err(|_| ApiError::Unauthorized("Invalid or expired token".into()))?;
        // The token is only as good as the account: a deactivated or deleted user is out at
        // once, and the role is the current one, not the one the token was issued with.
        let role = match state.user_status.get(&state.pool, id).await? {
            Some((role, true)) => role,
            _ => return Err(ApiError::Unauthorized("Invalid or expired token".into())),
        };
        Ok(AuthUser {
            id,
            role,
            session: Some(claims.sid),
            actor: Actor {
                user_id: Some(id),
                ..request_info(parts)
            },
        })
    }
}
