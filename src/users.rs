//! The users table (not event-sourced): lookups, creation and updates.

use aggregates::Role;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgPool};

use crate::error::{ApiError, Validator};

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub full_name: String,
    pub role: Role,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
}

/// A user row with its password hash (never serialised).
#[derive(Debug, Clone, FromRow)]
pub struct UserRecord {
    pub id: i64,
    pub email: String,
    pub full_name: String,
    pub password_hash: String,
    pub role: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
}

impl UserRecord {
    /// The public view.
    pub fn public(&self) -> User {
        User {
            id: self.id,
            email: self.email.clone(),
            full_name: self.full_name.clone(),
            role: self.role(),
            is_active: self.is_active,
            created_at: self.created_at,
        }
    }

    /// The role (an unknown stored value falls back to the least privilege).
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Requester)
    }
}

const COLUMNS: &str = "id, email, full_name, password_hash, role, is_active, created_at";

/// Finds a user by email, case-insensitively.
pub async fn find_by_email(pool: &PgPool, email: &str) -> Result<Option<UserRecord>, ApiError> {
    Ok(sqlx::query_as(&format!(
        "select {COLUMNS} from users where lower(email) = lower($1)"
    ))
    .bind(email.trim())
    .fetch_optional(pool)
    .await?)
}

/// Finds a user by id.
pub async fn find_by_id(pool: &PgPool, id: i64) -> Result<Option<UserRecord>, ApiError> {
    Ok(
        sqlx::query_as(&format!("select {COLUMNS} from users where id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Checks an email, a password and a name, collecting every problem.
pub fn validate_new_user(v: &mut Validator, email: &str, password: &str, full_name: &str) {
    let email = email.trim();
    let at = email.find('@');
    v.check(
        email.len() <= 254
            && at.is_some_and(|i| i > 0 && i < email.len() - 1 && email[i + 1..].contains('.'))
            && !email.contains(char::is_whitespace),
        "email",
        "Enter a valid email address",
    );
    validate_password(v, "password", password);
    validate_name(v, full_name);
}

/// Password policy (ASVS 6.2): 8 to 128 characters.
pub fn validate_password(v: &mut Validator, field: &str, password: &str) {
    let n = password.chars().count();
    v.check(n >= 8, field, "Password must be at least 8 characters");
    v.check(n <= 128, field, "Password must be at most 128 characters");
}

/// A display name: 1 to 100 characters.
pub fn validate_name(v: &mut Validator, full_name: &str) {
    let n = full_name.trim().chars().count();
    v.check(n >= 1, "full_name", "Full name is required");
    v.check(
        n <= 100,
        "full_name",
        "Full name must be at most 100 characters",
    );
}

/// Inserts a user (the password already hashed). 409 if the email is taken.
pub async fn insert(
    pool: &PgPool,
    email: &str,
    full_name: &str,
    password_hash: &str,
    role: Role,
) -> Result<UserRecord, ApiError> {
    let result = sqlx::query_as(&format!(
        "insert into users (email, full_name, password_hash, role) values ($1, $2, $3, $4)
         returning {COLUMNS}"
    ))
    .bind(email.trim())
    .bind(full_name.trim())
    .bind(password_hash)
    .bind(role.as_str())
    .fetch_one(pool)
    .await;
    match result {
        Ok(u) => Ok(u),
        Err(sqlx::Error::Database(db)) if db.constraint() == Some("users_email_key") => {
            Err(ApiError::conflict("A user with this email already exists"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Makes sure an admin with this email exists (password reset to the given one).
pub async fn ensure_admin(pool: &PgPool, email: &str, password: &str) -> Result<(), ApiError> {
    let hash = crate::auth::hash_password(password.to_string()).await?;
    match find_by_email(pool, email).await? {
        Some(u) => {
            sqlx::query(
                "update users set role = 'admin', is_active = true, password_hash = $2, updated_at = now() where id = $1",
            )
            .bind(u.id)
            .bind(hash)
            .execute(pool)
            .await?;
        }
        None => {
            insert(pool, email, "Administrator", &hash, Role::Admin).await?;
        }
    }
    Ok(())
}

/// True if any active admin exists.
pub async fn admin_exists(pool: &PgPool) -> Result<bool, ApiError> {
    let (n,): (i64,) =
        sqlx::query_as("select count(*) from users where role = 'admin' and is_active")
            .fetch_one(pool)
            .await?;
    Ok(n > 0)
}
