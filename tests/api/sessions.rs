//! Sessions end everywhere at once: logout, a password change (the other sessions) and a
//! reused refresh token make the session's access tokens 401 on the server that did it at
//! once, and on a second server with its own bus listener on the same database within a
//! short bound; a listener that missed the notice catches up on reconnect or reload.
//! Nothing here sleeps to prove a negative: every wait polls until a deadline.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{json_of, test_config, TestApp, TestUser, PASSWORD};
use crate::steps::set_role;

/// How long another server may take to hear of a change over the bus.
const BUS_BOUND: Duration = Duration::from_secs(3);

/// Two servers on one database, each with its own services and bus listener.
async fn two_servers(pool: PgPool) -> (TestApp, TestApp) {
    let a = TestApp::spawn(pool.clone()).await;
    let b = TestApp::spawn(pool).await;
    (a, b)
}

/// The status of `GET /auth/profile` with `token` on `app`.
async fn profile_status(app: &TestApp, token: &str) -> StatusCode {
    app.get("/api/v1/auth/profile", token).await.status()
}

/// Polls `path` with `token` on `app` until it answers `status`; panics after `within`.
async fn eventually(app: &TestApp, token: &str, path: &str, status: StatusCode, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = app.get(path, token).await.status();
        if got == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} still answers {got}, not {status}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until `app` refuses `token`; panics after `within`.
async fn signed_out_within(app: &TestApp, token: &str, within: Duration) {
    let profile = "/api/v1/auth/profile";
    eventually(app, token, profile, StatusCode::UNAUTHORIZED, within).await;
}

/// POSTs `{refresh_token}` to `/auth/{action}` on `app`.
async fn with_refresh_token(app: &TestApp, action: &str, token: &str) -> reqwest::Response {
    app.request(Method::POST, &format!("/api/v1/auth/{action}"), None)
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .unwrap()
}

/// Spends a refresh token on `app`; returns the answer's status and body.
async fn refresh(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let r = with_refresh_token(app, "refresh", token).await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Signs out the session of `refresh_token` on `app`.
async fn logout(app: &TestApp, refresh_token: &str) {
    let r = with_refresh_token(app, "logout", refresh_token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

/// Both servers accept `user`'s token (and cache what they know of the user).
async fn accepted_on_both(a: &TestApp, b: &TestApp, user: &TestUser) {
    assert_eq!(profile_status(a, &user.token).await, StatusCode::OK);
    assert_eq!(profile_status(b, &user.token).await, StatusCode::OK);
}

#[sqlx::test]
async fn logout_makes_the_sessions_access_token_401_at_once_here_and_soon_on_another_server(
    pool: PgPool,
) {
    let (a, b) = two_servers(pool).await;
    let first = a.user("lo@example.com", "requester").await;
    let second = a.login("lo@example.com", PASSWORD).await;
    accepted_on_both(&a, &b, &first).await;
    accepted_on_both(&a, &b, &second).await;

    logout(&a, &first.refresh).await;

    // The server that signed out refuses the token in the very next request.
    assert_eq!(
        profile_status(&a, &first.token).await,
        StatusCode::UNAUTHORIZED
    );
    let r = a.get("/api/v1/auth/profile", &first.token).await;
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let body = json_of(r, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["code"], "AUTH_ERROR");
    signed_out_within(&b, &first.token, BUS_BOUND).await;
    // The other sign-in of the same user is not affected, on either server.
    accepted_on_both(&a, &b, &second).await;
}

#[sqlx::test]
async fn a_password_change_ends_the_other_sessions_at_once_and_keeps_this_one(pool: PgPool) {
    let (a, b) = two_servers(pool).await;
    let this = a.user("pw@example.com", "requester").await;
    let other = a.login("pw@example.com", PASSWORD).await;
    accepted_on_both(&a, &b, &this).await;
    accepted_on_both(&a, &b, &other).await;

    let r = a
        .patch(
            "/api/v1/auth/profile",
            &this.token,
            json!({"password": "a brand new password", "current_password": PASSWORD}),
        )
        .await;
    json_of(r, StatusCode::OK).await;

    assert_eq!(
        profile_status(&a, &other.token).await,
        StatusCode::UNAUTHORIZED
    );
    signed_out_within(&b, &other.token, BUS_BOUND).await;
    assert_eq!(
        refresh(&a, &other.refresh).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The session that changed the password goes on, on both servers, refresh included.
    accepted_on_both(&a, &b, &this).await;
    let (status, renewed) = refresh(&b, &this.refresh).await;
    assert_eq!(status, StatusCode::OK);
    let renewed = renewed["access_token"].as_str().unwrap();
    assert_eq!(profile_status(&a, renewed).await, StatusCode::OK);
}

#[sqlx::test]
async fn reusing_a_spent_refresh_token_ends_the_sessions_access_tokens_at_once(pool: PgPool) {
    let (a, b) = two_servers(pool).await;
    let victim = a.user("ru@example.com", "requester").await;
    let bystander = a.login("ru@example.com", PASSWORD).await;
    let (status, rotated) = refresh(&a, &victim.refresh).await;
    assert_eq!(status, StatusCode::OK);
    let newer = rotated["access_token"].as_str().unwrap().to_string();
    for token in [&victim.token, &newer, &bystander.token] {
        assert_eq!(profile_status(&a, token).await, StatusCode::OK);
        assert_eq!(profile_status(&b, token).await, StatusCode::OK);
    }

    // The spent token comes back (on the other server): the whole family is revoked.
    assert_eq!(
        refresh(&b, &victim.refresh).await.0,
        StatusCode::UNAUTHORIZED
    );

    for token in [&victim.token, &newer] {
        assert_eq!(profile_status(&b, token).await, StatusCode::UNAUTHORIZED);
        signed_out_within(&a, token, BUS_BOUND).await;
    }
    accepted_on_both(&a, &b, &bystander).await;
}

#[sqlx::test]
async fn a_demotion_applies_on_another_server_sooner_than_its_status_cache_expires(pool: PgPool) {
    let (a, b) = two_servers(pool).await;
    let admin = a.user("ad@example.com", "admin").await;
    let agent = a.user("ag@example.com", "agent").await;
    for server in [&a, &b] {
        let r = server.get("/api/v1/users/", &agent.token).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    set_role(&a, &admin, &agent, "requester").await;
    // Well inside `users::STATUS_TTL` (5 s): only the bus can have told server B.
    eventually(
        &b,
        &agent.token,
        "/api/v1/users/",
        StatusCode::FORBIDDEN,
        BUS_BOUND,
    )
    .await;
}

/// The process ids of this database's bus listeners, once `n` of them are listening.
async fn listeners(pool: &PgPool, n: usize) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids: Vec<i32> = sqlx::query_scalar(
            "select pid from pg_stat_activity
              where datname = current_database() and application_name = 'ticketd bus'
                and query ilike 'listen%'",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        if pids.len() == n {
            return pids;
        }
        assert!(
            Instant::now() < deadline,
            "{n} listeners expected, {pids:?} found"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test]
async fn a_listener_that_missed_the_notice_catches_up_when_it_reconnects(pool: PgPool) {
    let mut config = test_config(&pool);
    // No periodic reload in this test; the listeners stay away for 2 s when cut off.
    config.bus.session_reload_secs = 3600;
    config.bus.bus_reconnect_ms = 2000;
    let a = TestApp::spawn_with(pool.clone(), config.clone()).await;
    let b = TestApp::spawn_with(pool.clone(), config).await;
    let user = a.user("mi@example.com", "requester").await;
    accepted_on_both(&a, &b, &user).await;

    // Cut both servers' listeners off (waiting until they are gone), then sign out: the
    // notice goes out while nobody listens.
    for pid in listeners(&pool, 2).await {
        let gone: bool = sqlx::query_scalar("select pg_terminate_backend($1, 5000)")
            .bind(pid)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(gone);
    }
    logout(&a, &user.refresh).await;

    // A, deaf too, knows at once: it marks what it revoked itself.
    assert_eq!(
        profile_status(&a, &user.token).await,
        StatusCode::UNAUTHORIZED
    );
    // B reconnects after 2 s and reloads what it may have missed.
    signed_out_within(&b, &user.token, Duration::from_secs(10)).await;
    listeners(&pool, 2).await;
}

#[sqlx::test]
async fn the_periodic_reload_revokes_a_session_whose_notice_never_came(pool: PgPool) {
    let mut config = test_config(&pool);
    config.bus.session_reload_secs = 1;
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let user = app.user("pe@example.com", "requester").await;
    assert_eq!(profile_status(&app, &user.token).await, StatusCode::OK);

    // Revoked behind the server's back: no NOTIFY at all.
    sqlx::query("update refresh_tokens set revoked_at = now() where user_id = $1")
        .bind(user.id)
        .execute(&pool)
        .await
        .unwrap();

    signed_out_within(&app, &user.token, Duration::from_secs(5)).await;
}
