//! Extractors for who is calling: the signed-in user (`AuthUser`) and the request facts
//! recorded with every event (`Actor`), with the client address seen through trusted proxies.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

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

/// The client's address as `client_address` found it.
#[derive(Debug, Clone, Copy)]
struct ClientAddress(IpAddr);

fn client_ip(parts: &Parts) -> Option<IpAddr> {
    match parts.extensions.get::<ClientAddress>() {
        Some(ClientAddress(ip)) => Some(*ip),
        None => parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_canonical()),
    }
}

/// Middleware: finds the client's address once per request (see `client_address`).
pub async fn resolve_client_address(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let Some(peer) = peer {
        let ip = client_address(peer, request.headers(), &state.settings.trusted_proxies);
        request.extensions_mut().insert(ClientAddress(ip));
    }
    next.run(request).await
}

/// The peer's address, unless the peer is a trusted proxy: then the nearest address of
/// `X-Forwarded-For` (read from the right, as each proxy appends) that is not a trusted proxy
/// itself. Anything before an untrusted hop was written by the client and is ignored; an
/// unreadable entry stops the walk at the last trusted hop.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => client = ip.to_canonical(),
            Err(_) => break,
        }
        if !is_trusted(&client) {
            break;
        }
    }
    client
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
        let id = claims.user_id()?;
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
