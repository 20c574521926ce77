//! Passwords (argon2id), access tokens (JWT HS256, 15 minutes), refresh tokens (opaque,
//! stored hashed, rotated, reuse revokes the family), login throttling, and the caller
//! (`AuthUser`) that every use case is given.

use aggregates::Role;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::service::error::Error;
use crate::service::executor::Actor;

/// Lifetime of an access token.
pub const ACCESS_TOKEN_SECONDS: i64 = 15 * 60;
/// Lifetime of a refresh token family member.
pub const REFRESH_TOKEN_DAYS: i64 = 14;

/// Hashes a password with argon2id (the crate's defaults: m=19456 KiB, t=2, p=1).
pub async fn hash_password(password: String) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(Error::internal)
    })
    .await
    .map_err(Error::internal)?
}

/// Checks a password against a stored hash (constant work whether or not it matches).
pub async fn verify_password(password: String, hash: String) -> Result<bool, Error> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(Error::internal)?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(Error::internal)?
}

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    /// Always `access`: nothing else is ever accepted as a bearer token.
    pub typ: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
}

/// The HS256 keys, held in the application state.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    /// Keys from the configured secret.
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "nbf", "sub"]);
        JwtKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// Issues an access token for a user.
    pub fn issue(&self, user_id: i64, role: Role) -> Result<String, Error> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            typ: "access".into(),
            iat: now,
            nbf: now,
            exp: now + ACCESS_TOKEN_SECONDS,
            jti: Uuid::new_v4().to_string(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(Error::internal)
    }

    /// Validates an access token.
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| Error::Unauthorized("Invalid or expired token".into()))?;
        if data.claims.typ != "access" {
            return Err(Error::Unauthorized("Invalid or expired token".into()));
        }
        Ok(data.claims)
    }
}

/// Who is calling and from where: the audit "who" of every command.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: i64,
    pub role: Role,
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

/// Failed-login limits: per account and per client address, within a window.
pub struct ThrottlePolicy {
    pub max_failures: i32,
    pub window_seconds: i64,
    pub lockout_seconds: i64,
}

/// Per account: 5 failures in 15 minutes lock it for 15 minutes.
pub const ACCOUNT_POLICY: ThrottlePolicy = ThrottlePolicy {
    max_failures: 5,
    window_seconds: 900,
    lockout_seconds: 900,
};

/// Per client address: 20 failures in 15 minutes lock it for 15 minutes.
pub const ADDRESS_POLICY: ThrottlePolicy = ThrottlePolicy {
    max_failures: 20,
    window_seconds: 900,
    lockout_seconds: 900,
};

/// Seconds until `key` may try again, if it is locked out.
pub async fn throttle_check(pool: &PgPool, key: &str) -> Result<Option<u64>, Error> {
    let locked: Option<(Option<f64>,)> = sqlx::query_as(
        "select extract(epoch from (locked_until - now()))::float8
           from login_throttle where key = $1 and locked_until > now()",
    )
    .bind(key)
    .fetch_optional(pool)
    .await?;
    Ok(locked.and_then(|(s,)| s).map(|s| s.ceil().max(1.0) as u64))
}

/// Counts one failure for `key`, locking it when the policy's limit is reached.
pub async fn throttle_fail(pool: &PgPool, key: &str, policy: &ThrottlePolicy) -> Result<(), Error> {
    sqlx::query(
        "insert into login_throttle as t (key, failures, window_start) values ($1, 1, now())
         on conflict (key) do update set
           failures = case when t.window_start < now() - make_interval(secs => $2)
                           then 1 else t.failures + 1 end,
           window_start = case when t.window_start < now() - make_interval(secs => $2)
                               then now() else t.window_start end,
           locked_until = case when (case when t.window_start < now() - make_interval(secs => $2)
                                          then 1 else t.failures + 1 end) >= $3
                               then now() + make_interval(secs => $4) else t.locked_until end",
    )
    .bind(key)
    .bind(policy.window_seconds as f64)
    .bind(policy.max_failures)
    .bind(policy.lockout_seconds as f64)
    .execute(pool)
    .await?;
    Ok(())
}

/// Clears the failures of `key` after a successful login.
pub async fn throttle_clear(pool: &PgPool, key: &str) -> Result<(), Error> {
    sqlx::query("delete from login_throttle where key = $1")
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}
