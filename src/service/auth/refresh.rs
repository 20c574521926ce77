//! Refresh tokens: opaque, stored hashed, rotated on use; presenting a spent one revokes its
//! whole family (the login it belongs to: a sign-in session). Revoking sessions publishes them
//! on the bus in the same transaction and marks them revoked in this process at once.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::service::auth::Revocations;
use crate::service::bus::{self, Message};
use crate::service::error::Error;

/// Lifetime of a refresh token family member.
pub const REFRESH_TOKEN_DAYS: i64 = 14;

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn new_opaque_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Starts a new refresh-token family (a sign-in session) and returns its first token and the
/// session id.
pub async fn issue_refresh_token(pool: &PgPool, user_id: i64) -> Result<(String, Uuid), Error> {
    let token = new_opaque_token();
    let session = Uuid::new_v4();
    let mut conn = pool.acquire().await?;
    insert_token(&mut conn, session, user_id, &token).await?;
    Ok((token, session))
}

async fn insert_token(
    conn: &mut PgConnection,
    session: Uuid,
    user_id: i64,
    token: &str,
) -> Result<(), Error> {
    sqlx::query(
        "insert into refresh_tokens (id, family_id, user_id, token_hash, expires_at)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::new_v4())
    .bind(session)
    .bind(user_id)
    .bind(token_hash(token))
    .bind(Utc::now() + Duration::days(REFRESH_TOKEN_DAYS))
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    id: Uuid,
    family_id: Uuid,
    user_id: i64,
    expires_at: DateTime<Utc>,
    rotated_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    is_active: bool,
}

/// A refresh token exchanged for the next one of its family.
#[derive(Debug)]
pub struct Rotated {
    pub user_id: i64,
    pub session: Uuid,
    pub token: String,
}

/// Rotates a refresh token: the presented one is spent and a new one of the same family
/// is returned with its user and session. A spent token presented again revokes the whole
/// family (and so the access tokens of that session).
pub async fn rotate_refresh_token(
    pool: &PgPool,
    revocations: &Revocations,
    token: &str,
) -> Result<Rotated, Error> {
    let invalid = || Error::Unauthorized("Invalid or expired refresh token".into());
    let mut tx = pool.begin().await?;
    let row: Option<RefreshRow> = sqlx::query_as(
        "select t.id, t.family_id, t.user_id, t.expires_at, t.rotated_at, t.revoked_at, u.is_active
               from refresh_tokens t join users u on u.id = t.user_id
              where t.token_hash = $1
              for update of t",
    )
    .bind(token_hash(token))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(invalid());
    };
    if row.rotated_at.is_some() {
        // Reuse of a spent token: someone else may hold the family. Revoke it all.
        let revoked = revoke_in(&mut tx, Sessions::Family(row.family_id)).await?;
        tx.commit().await?;
        revocations.revoke(revoked);
        tracing::warn!(family_id = %row.family_id, row.user_id, "refresh token reuse detected; family revoked");
        return Err(invalid());
    }
    if row.revoked_at.is_some() || row.expires_at <= Utc::now() || !row.is_active {
        return Err(invalid());
    }
    sqlx::query("update refresh_tokens set rotated_at = now() where id = $1")
        .bind(row.id)
        .execute(&mut *tx)
        .await?;
    let new_token = new_opaque_token();
    insert_token(&mut tx, row.family_id, row.user_id, &new_token).await?;
    tx.commit().await?;
    Ok(Rotated {
        user_id: row.user_id,
        session: row.family_id,
        token: new_token,
    })
}

/// Which sessions to revoke.
enum Sessions {
    /// One family.
    Family(Uuid),
    /// Every session of a user, but for one if given.
    OfUser { user_id: i64, except: Option<Uuid> },
}

/// Revokes sessions in `tx` and publishes them on the bus (delivered on commit). Returns the
/// sessions that were not revoked before.
async fn revoke_in(tx: &mut PgConnection, which: Sessions) -> Result<Vec<Uuid>, Error> {
    let (family, user_id, except) = match which {
        Sessions::Family(f) => (Some(f), None, None),
        Sessions::OfUser { user_id, except } => (None, Some(user_id), except),
    };
    let filter = "($1::uuid is null or family_id = $1) and ($2::bigint is null or user_id = $2)
                  and ($3::uuid is null or family_id <> $3)";
    // Lock first, update in a second statement: a rotation holding one of these rows finishes
    // first, and the update's fresh snapshot then includes the token it inserted, so a revoked
    // family never keeps a live refresh token (which would mint access tokens after the
    // revocation has been forgotten).
    sqlx::query(&format!(
        "select 1 from refresh_tokens where {filter} order by id for update"
    ))
    .bind(family)
    .bind(user_id)
    .bind(except)
    .execute(&mut *tx)
    .await?;
    let mut sessions: Vec<Uuid> = sqlx::query_scalar(&format!(
        "update refresh_tokens set revoked_at = now() where {filter} and revoked_at is null
         returning family_id"
    ))
    .bind(family)
    .bind(user_id)
    .bind(except)
    .fetch_all(&mut *tx)
    .await?;
    sessions.sort_unstable();
    sessions.dedup();
    for chunk in sessions.chunks(bus::MAX_IDS_PER_MESSAGE) {
        let message = Message::SessionsRevoked {
            sessions: chunk.to_vec(),
        };
        bus::publish(tx, &message).await?;
    }
    Ok(sessions)
}

/// Revokes the session of a refresh token (logout). Unknown tokens are ignored.
pub async fn revoke_family(
    pool: &PgPool,
    revocations: &Revocations,
    token: &str,
) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    let family: Option<Uuid> =
        sqlx::query_scalar("select family_id from refresh_tokens where token_hash = $1")
            .bind(token_hash(token))
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(family) = family {
        let revoked = revoke_in(&mut tx, Sessions::Family(family)).await?;
        tx.commit().await?;
        revocations.revoke(revoked);
    }
    Ok(())
}

/// Revokes every session of a user (deactivation) or every one but `except` (a password
/// change keeps the session that made it).
pub async fn revoke_user_sessions(
    pool: &PgPool,
    revocations: &Revocations,
    user_id: i64,
    except: Option<Uuid>,
) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    let revoked = revoke_in(&mut tx, Sessions::OfUser { user_id, except }).await?;
    tx.commit().await?;
    revocations.revoke(revoked);
    Ok(())
}
