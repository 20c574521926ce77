//! Sign-in throttling: failures counted per account and per client address, with a lockout.

use sqlx::PgPool;

use crate::service::error::Error;

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
