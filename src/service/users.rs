//! The users table (not event-sourced): lookups, creation and updates.

use aggregates::Role;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgPool};
use utoipa::ToSchema;

use crate::service::auth::AuthUser;
use crate::service::bus;
use crate::service::error::{Error, Validator};
use crate::service::Services;

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub full_name: String,
    pub role: Role,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    /// The language of the SPA and e-mails: `en` or `de`.
    pub locale: String,
    /// `light`, `dark` or `system`.
    pub theme: String,
    /// An IANA time zone name (`Europe/Berlin`).
    pub time_zone: String,
    /// Which notification kinds reach the person by e-mail and in the app.
    pub notify: NotifyPreferences,
}

/// The notification kinds: `assigned`, `comment`, `mention`, `status_changed`,
/// `approval_requested`.
pub const NOTIFY_KINDS: [&str; 5] = [
    "assigned",
    "comment",
    "mention",
    "status_changed",
    "approval_requested",
];

/// Which notification kinds a person wants, per channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyPreferences {
    pub email: Vec<String>,
    pub in_app: Vec<String>,
}

impl Default for NotifyPreferences {
    fn default() -> Self {
        let all: Vec<String> = NOTIFY_KINDS.iter().map(|k| k.to_string()).collect();
        NotifyPreferences {
            email: all.clone(),
            in_app: all,
        }
    }
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
    pub locale: String,
    pub theme: String,
    pub time_zone: String,
    pub notify: sqlx::types::Json<NotifyPreferences>,
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
            locale: self.locale.clone(),
            theme: self.theme.clone(),
            time_zone: self.time_zone.clone(),
            notify: self.notify.0.clone(),
        }
    }

    /// The role (an unknown stored value falls back to the least privilege).
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Requester)
    }
}

const COLUMNS: &str = "id, email, full_name, password_hash, role, is_active, created_at, \
    locale, theme, time_zone, notify";

/// Finds a user by email, case-insensitively.
pub async fn find_by_email(pool: &PgPool, email: &str) -> Result<Option<UserRecord>, Error> {
    Ok(sqlx::query_as(&format!(
        "select {COLUMNS} from users where lower(email) = lower($1)"
    ))
    .bind(email.trim())
    .fetch_optional(pool)
    .await?)
}

/// Finds a user by id.
pub async fn find_by_id(pool: &PgPool, id: i64) -> Result<Option<UserRecord>, Error> {
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
) -> Result<UserRecord, Error> {
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
            Err(Error::conflict("A user with this email already exists"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Makes sure an admin with this email exists (password reset to the given one). The email
/// and password must pass registration's checks (422 otherwise): never an admin without them.
pub async fn ensure_admin(pool: &PgPool, email: &str, password: &str) -> Result<(), Error> {
    let mut v = Validator::default();
    validate_new_user(&mut v, email, password, "Administrator");
    v.finish()?;
    let hash = crate::service::auth::hash_password(password.to_string()).await?;
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
pub async fn admin_exists(pool: &PgPool) -> Result<bool, Error> {
    let (n,): (i64,) =
        sqlx::query_as("select count(*) from users where role = 'admin' and is_active")
            .fetch_one(pool)
            .await?;
    Ok(n > 0)
}

/// Filters and paging of `GET /users`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQueryParams {
    /// One role or several, comma-separated (`agent,manager,admin` for an assignee picker).
    pub role: Option<String>,
    /// Words matched against the name and the email (case-insensitive, substring).
    pub q: Option<String>,
    /// Only active (`true`) or only deactivated (`false`) accounts.
    pub is_active: Option<bool>,
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<i64>,
}

/// Lists users by role, text and activity, ordered by name.
pub async fn list(
    pool: &PgPool,
    query: &UserListQueryParams,
) -> Result<crate::service::paging::Page<User>, Error> {
    let mut v = Validator::default();
    let (page, size, offset) = crate::service::paging::paging(&mut v, query.page, query.size);
    let mut roles: Vec<String> = Vec::new();
    for part in query.role.iter().flat_map(|r| r.split(',')).map(str::trim) {
        if part.is_empty() {
            continue;
        }
        match Role::parse(part) {
            Some(r) => roles.push(r.as_str().to_string()),
            None => v.check_query(false, "role", &format!("Unknown role '{part}'")),
        }
    }
    let pattern = crate::service::paging::contains_pattern(&mut v, query.q.as_deref());
    v.finish()?;
    let filter = "($1::text[] is null or role = any($1))
          and ($2::text is null or (full_name || ' ' || email) ilike $2)
          and ($3::bool is null or is_active = $3)";
    let roles = (!roles.is_empty()).then_some(roles);
    let rows: Vec<UserRecord> = sqlx::query_as(&format!(
        "select {COLUMNS} from users where {filter}
          order by lower(full_name), id limit $4 offset $5"
    ))
    .bind(&roles)
    .bind(&pattern)
    .bind(query.is_active)
    .bind(size)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total: i64 = if offset == 0 && (rows.len() as i64) < size {
        rows.len() as i64
    } else {
        sqlx::query_scalar(&format!("select count(*) from users where {filter}"))
            .bind(&roles)
            .bind(&pattern)
            .bind(query.is_active)
            .fetch_one(pool)
            .await?
    };
    Ok(crate::service::paging::Page::new(
        rows.iter().map(UserRecord::public).collect(),
        total,
        page,
        size,
    ))
}

/// An admin's change to a user (absent fields stay as they are).
#[derive(Debug, Default, Clone)]
pub struct UserChange {
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    pub full_name: Option<String>,
}

/// Applies an admin's change in one transaction. The last active admin can be neither
/// demoted nor deactivated (409): every active admin row is locked (`for update`) before the
/// count, so two admins demoting each other at once cannot both succeed.
pub async fn change(pool: &PgPool, id: i64, change: &UserChange) -> Result<UserRecord, Error> {
    let mut tx = pool.begin().await?;
    // Lock order: the admins first, then the target, always; concurrent changes queue here.
    let admins: Vec<i64> = sqlx::query_scalar(
        "select id from users where role = 'admin' and is_active order by id for update",
    )
    .fetch_all(&mut *tx)
    .await?;
    let target: UserRecord = sqlx::query_as(&format!(
        "select {COLUMNS} from users where id = $1 for update"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::not_found("User"))?;
    let stays_admin = change.role.unwrap_or(target.role()) == Role::Admin
        && change.is_active.unwrap_or(target.is_active);
    if admins.contains(&id) && !stays_admin && admins.len() <= 1 {
        return Err(Error::conflict(
            "This is the last active admin: make another user admin first",
        ));
    }
    let updated: UserRecord = sqlx::query_as(&format!(
        "update users set role = coalesce($2, role), is_active = coalesce($3, is_active),
                full_name = coalesce($4, full_name), updated_at = now()
          where id = $1 returning {COLUMNS}"
    ))
    .bind(id)
    .bind(change.role.map(Role::as_str))
    .bind(change.is_active)
    .bind(change.full_name.as_deref().map(str::trim))
    .fetch_one(&mut *tx)
    .await?;
    // Every process forgets the user's cached status when this commits.
    bus::publish(&mut tx, &bus::Message::UserChanged { user_id: id }).await?;
    tx.commit().await?;
    Ok(updated)
}

/// How long a user's status may be served from memory. A change is seen at once by every
/// process (`UserChanged` on the bus, then `StatusCache::forget`); this bound is the safety net.
pub const STATUS_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// The current role and active flag of users, as every authenticated request checks them,
/// cached briefly so that a request costs no query. This is what stops a deactivated or
/// demoted user's access token (a JWT, valid 15 minutes) from working at once.
pub struct StatusCache(crate::service::memo::UserMemo<Option<(Role, bool)>>);

impl Default for StatusCache {
    fn default() -> Self {
        StatusCache(crate::service::memo::UserMemo::new(STATUS_TTL, 10_000))
    }
}

impl std::ops::Deref for StatusCache {
    type Target = crate::service::memo::UserMemo<Option<(Role, bool)>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl StatusCache {
    /// The user's current (role, is_active), or None if no such user exists.
    pub async fn get(&self, pool: &PgPool, id: i64) -> Result<Option<(Role, bool)>, Error> {
        if let Some(status) = self.fresh(id) {
            return Ok(status);
        }
        let row: Option<(String, bool)> =
            sqlx::query_as("select role, is_active from users where id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
        let status =
            row.map(|(role, active)| (Role::parse(&role).unwrap_or(Role::Requester), active));
        self.keep([(id, status)]);
        Ok(status)
    }
}

/// Body of `POST /register`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(max_length = 254, pattern = r"^\S+@\S*\.\S*$")]
    pub email: String,
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub full_name: String,
}

/// Body of `PATCH /profile`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ProfileUpdate {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub full_name: Option<String>,
    #[schema(min_length = 8, max_length = 128)]
    pub password: Option<String>,
    pub current_password: Option<String>,
    /// `en` or `de`.
    #[schema(pattern = "^(en|de)$")]
    pub locale: Option<String>,
    /// `light`, `dark` or `system`.
    #[schema(pattern = "^(light|dark|system)$")]
    pub theme: Option<String>,
    /// An IANA time zone name, as PostgreSQL knows them.
    #[schema(min_length = 1, max_length = 64)]
    pub time_zone: Option<String>,
    pub notify: Option<NotifyPreferences>,
}

/// Registers a new requester account.
pub async fn register(pool: &PgPool, body: RegisterRequest) -> Result<UserRecord, Error> {
    let mut v = Validator::default();
    validate_new_user(&mut v, &body.email, &body.password, &body.full_name);
    v.finish()?;
    let hash = crate::service::auth::hash_password(body.password).await?;
    insert(pool, &body.email, &body.full_name, &hash, Role::Requester).await
}

/// Changes the caller's own name or password (a new password needs the current one and
/// ends the caller's other sessions).
pub async fn update_profile(
    services: &Services,
    caller: &AuthUser,
    body: ProfileUpdate,
) -> Result<UserRecord, Error> {
    let (pool, user_id) = (&services.pool, caller.id);
    let record = find_by_id(pool, user_id)
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(|| Error::Unauthorized("Account not available".into()))?;
    let mut v = Validator::default();
    if let Some(name) = &body.full_name {
        validate_name(&mut v, name);
    }
    if let Some(password) = &body.password {
        validate_password(&mut v, "password", password);
        if body.current_password.is_none() {
            v.missing(
                "current_password",
                "The current password is required to set a new one",
            );
        }
    }
    check_preferences(pool, &mut v, &body).await?;
    v.finish()?;
    if let Some(password) = body.password {
        let current = body.current_password.unwrap_or_default();
        change_password(pool, &record, current, password).await?;
        crate::service::auth::revoke_user_sessions(
            pool,
            &services.revocations,
            user_id,
            caller.session,
        )
        .await?;
    }
    if let Some(name) = body.full_name {
        let mut tx = pool.begin().await?;
        sqlx::query("update users set full_name = $2, updated_at = now() where id = $1")
            .bind(user_id)
            .bind(name.trim())
            .execute(&mut *tx)
            .await?;
        // Every process forgets the cached name when this commits.
        bus::publish(&mut tx, &bus::Message::UserRenamed { user_id }).await?;
        tx.commit().await?;
    }
    if body.locale.is_some()
        || body.theme.is_some()
        || body.time_zone.is_some()
        || body.notify.is_some()
    {
        sqlx::query(
            "update users set locale = coalesce($2, locale), theme = coalesce($3, theme),
                    time_zone = coalesce($4, time_zone), notify = coalesce($5, notify),
                    updated_at = now()
              where id = $1",
        )
        .bind(user_id)
        .bind(&body.locale)
        .bind(&body.theme)
        .bind(&body.time_zone)
        .bind(body.notify.as_ref().map(sqlx::types::Json))
        .execute(pool)
        .await?;
    }
    find_by_id(pool, user_id)
        .await?
        .ok_or_else(|| Error::not_found("User"))
}

/// Adds a problem to `v` for each preference that is not one of its values.
async fn check_preferences(
    pool: &PgPool,
    v: &mut Validator,
    body: &ProfileUpdate,
) -> Result<(), Error> {
    if let Some(locale) = &body.locale {
        v.check(
            matches!(locale.as_str(), "en" | "de"),
            "locale",
            "Locale must be en or de",
        );
    }
    if let Some(theme) = &body.theme {
        v.check(
            matches!(theme.as_str(), "light" | "dark" | "system"),
            "theme",
            "Theme must be light, dark or system",
        );
    }
    if let Some(zone) = &body.time_zone {
        let known: bool = zone.len() <= 64
            && sqlx::query_scalar(
                "select exists (select 1 from pg_timezone_names where name = $1)",
            )
            .bind(zone)
            .fetch_one(pool)
            .await?;
        v.check(known, "time_zone", "Unknown time zone");
    }
    if let Some(notify) = &body.notify {
        for (field, kinds) in [("email", &notify.email), ("in_app", &notify.in_app)] {
            let unknown = kinds.iter().find(|k| !NOTIFY_KINDS.contains(&k.as_str()));
            v.check(
                unknown.is_none(),
                "notify",
                &format!(
                    "notify.{field}: unknown kind {}",
                    unknown.map(String::as_str).unwrap_or_default()
                ),
            );
        }
    }
    Ok(())
}

/// Sets a new password once the current one is confirmed.
async fn change_password(
    pool: &PgPool,
    record: &UserRecord,
    current: String,
    password: String,
) -> Result<(), Error> {
    let auth = crate::service::auth::password::verify_password;
    if !auth(current, record.password_hash.clone()).await? {
        return Err(Error::field(
            "current_password",
            "The current password is incorrect",
        ));
    }
    let hash = crate::service::auth::hash_password(password).await?;
    sqlx::query("update users set password_hash = $2, updated_at = now() where id = $1")
        .bind(record.id)
        .bind(hash)
        .execute(pool)
        .await?;
    Ok(())
}
