//! Sign-in and registration throttling (OWASP ASVS 6.3), shared by every API process through
//! one table. Failures count per (account, client address) pair and per address: a pair is
//! refused after 5 failures, for a time that doubles with every further failure (up to 15
//! minutes), and an address after `login_address_limit` failures in 15 minutes. The account as
//! a whole is never locked, so failures from one address never keep the owner out elsewhere.
//! Rows are keyed by a SHA-256 of what they count: no email or address is kept here.

use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::service::error::Error;

/// Failures of one (account, address) pair before it is refused.
pub const PAIR_FAILURES: i32 = 5;
/// How long a pair is refused after its 5th failure; doubled by every further one.
pub const PAIR_BASE_LOCK_SECONDS: f64 = 30.0;
/// The longest a pair is ever refused.
pub const PAIR_MAX_LOCK_SECONDS: f64 = 900.0;
/// A pair's failures are forgotten a day after the first one (or at a successful sign-in).
const PAIR_WINDOW_SECONDS: f64 = 86_400.0;
/// The window of the per-address sign-in failure limit.
pub const ADDRESS_WINDOW_SECONDS: f64 = 900.0;
/// The window of the per-address registration limit.
pub const REGISTER_WINDOW_SECONDS: f64 = 3_600.0;

/// The limits that come from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Failed sign-ins from one address in 15 minutes before it is refused.
    pub login_address_limit: u32,
    /// Registrations from one address in an hour before it is refused.
    pub register_address_limit: u32,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits {
            login_address_limit: 100,
            register_address_limit: 20,
        }
    }
}

/// What one sign-in attempt is counted under.
pub struct SignInKeys {
    pair: Vec<u8>,
    address: Vec<u8>,
}

impl SignInKeys {
    /// The keys of an attempt for `email` from `client_ip`.
    pub fn new(email: &str, client_ip: &str) -> Self {
        SignInKeys {
            pair: key(&["pair", client_ip, &email.trim().to_lowercase()]),
            address: key(&["address", client_ip]),
        }
    }
}

fn key(parts: &[&str]) -> Vec<u8> {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize().to_vec()
}

/// Where an attempt stands before its password is checked.
pub struct SignInState {
    /// Seconds the address must wait (its failure limit is reached).
    pub address_wait: Option<u64>,
    /// The pair is refused for now.
    pub pair_locked: bool,
    /// The pair has failures on record (cleared by a successful sign-in).
    pub pair_known: bool,
}

fn seconds(wait: f64) -> u64 {
    wait.ceil().max(1.0) as u64
}

/// One read: is the address over its limit, is the pair refused, has the pair failed before.
pub async fn sign_in_state(
    pool: &PgPool,
    keys: &SignInKeys,
    address_limit: u32,
) -> Result<SignInState, Error> {
    let (address_wait, pair_locked, pair_known): (Option<f64>, bool, bool) = sqlx::query_as(
        "select (select extract(epoch from window_start + make_interval(secs => $4) - now())::float8
                   from login_throttle
                  where key = $2 and failures >= $3
                    and window_start > now() - make_interval(secs => $4)),
                exists(select 1 from login_throttle where key = $1 and locked_until > now()),
                exists(select 1 from login_throttle where key = $1)",
    )
    .bind(&keys.pair)
    .bind(&keys.address)
    .bind(i64::from(address_limit))
    .bind(ADDRESS_WINDOW_SECONDS)
    .fetch_one(pool)
    .await?;
    Ok(SignInState {
        address_wait: address_wait.map(seconds),
        pair_locked,
        pair_known,
    })
}

/// Counts a failure (a wrong password, or an attempt while refused) of the pair; from the 5th
/// on, the pair is refused for 30 s doubled per further failure, at most 15 minutes. Returns
/// the seconds it is now refused for, if it is.
pub async fn pair_failed(pool: &PgPool, keys: &SignInKeys) -> Result<Option<u64>, Error> {
    const FAILURES: &str = "case when t.window_start < now() - make_interval(secs => $5)
                                and coalesce(t.locked_until, '-infinity') <= now()
                               then 1 else t.failures + 1 end";
    let (wait,): (Option<f64>,) = sqlx::query_as(&format!(
        "insert into login_throttle as t (key, failures) values ($1, 1)
         on conflict (key) do update set
           failures = {FAILURES},
           window_start = case when {FAILURES} = 1 then now() else t.window_start end,
           locked_until = case when {FAILURES} >= $2
               then now() + make_interval(secs => least($3 * power(2, {FAILURES} - $2), $4))
               end
         returning extract(epoch from locked_until - now())::float8"
    ))
    .bind(&keys.pair)
    .bind(PAIR_FAILURES)
    .bind(PAIR_BASE_LOCK_SECONDS)
    .bind(PAIR_MAX_LOCK_SECONDS)
    .bind(PAIR_WINDOW_SECONDS)
    .fetch_one(pool)
    .await?;
    Ok(wait.map(seconds))
}

/// Counts a failed sign-in of the address, and forgets rows nobody needs any more (this runs
/// only on failures, so the success path stays one read).
pub async fn address_failed(pool: &PgPool, keys: &SignInKeys) -> Result<(), Error> {
    count(pool, &keys.address, ADDRESS_WINDOW_SECONDS).await?;
    sqlx::query(
        "delete from login_throttle
          where window_start < now() - make_interval(secs => $1)
            and coalesce(locked_until, '-infinity') < now()",
    )
    .bind(PAIR_WINDOW_SECONDS)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets the pair's failures after a successful sign-in (the address keeps its count).
pub async fn pair_succeeded(pool: &PgPool, keys: &SignInKeys) -> Result<(), Error> {
    sqlx::query("delete from login_throttle where key = $1")
        .bind(&keys.pair)
        .execute(pool)
        .await?;
    Ok(())
}

/// Counts a registration from `client_ip`: 429 once the address has registered `limit` times
/// within the hour.
pub async fn registration_attempt(pool: &PgPool, client_ip: &str, limit: u32) -> Result<(), Error> {
    let (n, wait) = count(
        pool,
        &key(&["register", client_ip]),
        REGISTER_WINDOW_SECONDS,
    )
    .await?;
    if n > i64::from(limit) {
        return Err(Error::RateLimited {
            detail: "Too many registrations from this address; try again later".into(),
            retry_after: seconds(wait),
        });
    }
    Ok(())
}

/// Adds one to `key`'s count in a fixed window of `window` seconds; returns the count and the
/// seconds left in the window.
async fn count(pool: &PgPool, key: &[u8], window: f64) -> Result<(i64, f64), Error> {
    Ok(sqlx::query_as(
        "insert into login_throttle as t (key, failures) values ($1, 1)
         on conflict (key) do update set
           failures = case when t.window_start < now() - make_interval(secs => $2)
                           then 1 else t.failures + 1 end,
           window_start = case when t.window_start < now() - make_interval(secs => $2)
                               then now() else t.window_start end
         returning failures::int8,
                   extract(epoch from window_start + make_interval(secs => $2) - now())::float8",
    )
    .bind(key)
    .bind(window)
    .fetch_one(pool)
    .await?)
}
