//! The revoked sign-in sessions, held in memory so that checking an access token's session
//! costs no query: filled at start and on every resync from the database, kept current by the
//! bus (`SessionsRevoked`), and emptied of sessions whose access tokens have all expired.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use uuid::Uuid;

use crate::service::auth::ACCESS_TOKEN_SECONDS;
use crate::service::error::Error;

/// How long a revoked session is remembered: every access token of it was issued before the
/// revocation (a revoked family issues none), so after their lifetime, the validation leeway
/// and a margin for clocks that differ between hosts, none can be valid any more.
pub const REMEMBER: Duration = Duration::from_secs(ACCESS_TOKEN_SECONDS.unsigned_abs() + 5 + 60);

/// Revoked sessions and until when each must be remembered.
#[derive(Default)]
pub struct Revocations {
    entries: Mutex<HashMap<Uuid, Instant>>,
}

impl Revocations {
    /// True if `session` was revoked (and may still have valid access tokens).
    pub fn is_revoked(&self, session: Uuid) -> bool {
        self.lock().contains_key(&session)
    }

    /// Remembers `sessions` as revoked, and forgets those that need no remembering any more.
    pub fn revoke(&self, sessions: impl IntoIterator<Item = Uuid>) {
        let now = Instant::now();
        let mut entries = self.lock();
        entries.retain(|_, until| *until > now);
        for session in sessions {
            entries.insert(session, now + REMEMBER);
        }
    }

    /// How many sessions are remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True if none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds every session revoked within [`REMEMBER`] according to the database (a partial
    /// index on `revoked_at` keeps this cheap). Returns how many there were.
    pub async fn reload(&self, pool: &PgPool) -> Result<usize, Error> {
        let sessions: Vec<Uuid> = sqlx::query_scalar(
            "select distinct family_id from refresh_tokens
              where revoked_at is not null and revoked_at > now() - make_interval(secs => $1)",
        )
        .bind(REMEMBER.as_secs_f64())
        .fetch_all(pool)
        .await?;
        let n = sessions.len();
        self.revoke(sessions);
        Ok(n)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Instant>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
