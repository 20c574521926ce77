//! Passwords (argon2id), access tokens (JWT HS256, 15 minutes, bound to their session),
//! refresh tokens (opaque, stored hashed, rotated, reuse revokes the family), the revoked
//! sessions, login throttling, and the caller (`AuthUser`) that every use case is given.

pub mod jwt;
pub mod password;
pub mod refresh;
pub mod revocations;
pub mod throttle;

pub use jwt::{Claims, JwtKeys, ACCESS_TOKEN_SECONDS};
pub use password::{hash_password, verify_password};
pub use refresh::{
    issue_refresh_token, revoke_family, revoke_user_sessions, rotate_refresh_token, Rotated,
    REFRESH_TOKEN_DAYS,
};
pub use revocations::Revocations;
pub use throttle::ThrottleLimits;

use aggregates::Role;

use crate::service::error::Error;
use crate::service::executor::Actor;

/// Who is calling and from where: the audit "who" of every command.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: i64,
    pub role: Role,
    /// The sign-in session (refresh-token family) of the access token, if a token was used.
    pub session: Option<uuid::Uuid>,
    /// The audit "who" of the commands this caller runs.
    pub actor: Actor,
}

impl AuthUser {
    /// 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), Error> {
        if self.role >= role {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "You do not have permission to do this".into(),
            ))
        }
    }

    /// Agents, managers and admins.
    pub fn is_staff(&self) -> bool {
        self.role.is_staff()
    }
}
