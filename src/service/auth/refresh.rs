//! Refresh tokens: opaque, stored hashed, rotated on use; presenting a spent one revokes its
//! whole family (the login it belongs to).

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

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

/// Starts a new refresh-token family (a login) and returns its first token.
pub async fn issue_refresh_token(
    pool: &PgPool,
    user_id: i64,
    family_id: Option<Uuid>,
) -> Result<String, Error> {
    let token = new_opaque_token();
    sqlx::query(
        "insert into refresh_tokens (id, family_id, user_id, token_hash, expires_at)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::new_v4())
    .bind(family_id.unwrap_or_else(Uuid::new_v4))
    .bind(user_id)
    .bind(token_hash(&token))
    .bind(Utc::now() + Duration::days(REFRESH_TOKEN_DAYS))
    .execute(pool)
    .await?;
    Ok(token)
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

/// Rotates a refresh token: the presented one is spent and a new one of the same family
/// is returned with its user id. A spent token presented again revokes the whole family.
pub async fn rotate_refresh_token(pool: &PgPool, token: &str) -> Result<(i64, String), Error> {
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
    let Some(RefreshRow {
        id,
        family_id,
        user_id,
        expires_at,
        rotated_at,
        revoked_at,
        is_active,
    }) = row
    else {
        return Err(invalid());
    };
    if rotated_at.is_some() {
        // Reuse of a spent token: someone else may hold the family. Revoke it all.
        sqlx::query(
            "update refresh_tokens set revoked_at = coalesce(revoked_at, now()) where family_id = $1",
        )
        .bind(family_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::warn!(%family_id, user_id, "refresh token reuse detected; family revoked");
        return Err(invalid());
    }
    if revoked_at.is_some() || expires_at <= Utc::now() || !is_active {
        return Err(invalid());
    }
    sqlx::query("update refresh_tokens set rotated_at = now() where id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let new_token = new_opaque_token();
    sqlx::query(
        "insert into refresh_tokens (id, family_id, user_id, token_hash, expires_at)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::new_v4())
    .bind(family_id)
    .bind(user_id)
    .bind(token_hash(&new_token))
    .bind(Utc::now() + Duration::days(REFRESH_TOKEN_DAYS))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((user_id, new_token))
}

/// Revokes the family of a refresh token (logout). Unknown tokens are ignored.
pub async fn revoke_family(pool: &PgPool, token: &str) -> Result<(), Error> {
    sqlx::query(
        "update refresh_tokens set revoked_at = coalesce(revoked_at, now())
          where family_id = (select family_id from refresh_tokens where token_hash = $1)",
    )
    .bind(token_hash(token))
    .execute(pool)
    .await?;
    Ok(())
}

/// Revokes every refresh token of a user (deactivation, password change).
pub async fn revoke_user_tokens(pool: &PgPool, user_id: i64) -> Result<(), Error> {
    sqlx::query(
        "update refresh_tokens set revoked_at = coalesce(revoked_at, now()) where user_id = $1",
    )
    .bind(user_id)
    .execute(pool)
    .await?;
    Ok(())
}
