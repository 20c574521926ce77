//! Sign-in throttling that cannot be turned against the owner (per account and address pair,
//! per address, never the account as a whole), the registration limit per address, and
//! `X-Forwarded-For` believed only from a trusted proxy. The loopback network has many
//! addresses: a client bound to 127.0.0.2 is another client address.

use std::net::IpAddr;

use reqwest::{Response, StatusCode};
use serde_json::json;
use sqlx::PgPool;
use ticketd::service::auth::throttle::{PAIR_BASE_LOCK_SECONDS, PAIR_FAILURES};

use crate::helpers::{json_of, test_config, TestApp, PASSWORD};

/// A client whose requests come from `ip` (a loopback address).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    crate::helpers::http_client()
        .local_address(IpAddr::from(ip))
        .build()
        .unwrap()
}

/// `POST /auth/login` through `client`, with `X-Forwarded-For` if given.
async fn sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Response {
    let mut r = client
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"email": email, "password": password}));
    if let Some(f) = forwarded_for {
        r = r.header("x-forwarded-for", f);
    }
    r.send().await.unwrap()
}

/// Asserts a 429 in API.md's format and returns its `Retry-After` in seconds.
async fn retry_after_of(r: Response) -> u64 {
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    let body = json_of(r, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["code"], "RATE_LIMITED");
    retry_after.expect("a Retry-After header")
}

#[sqlx::test]
async fn an_attackers_failures_from_one_address_never_keep_the_owner_out_of_another(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.user("owner@example.com", "requester").await;
    let attacker = client_from([127, 0, 0, 1]);
    let mut refused = 0;
    for _ in 0..50 {
        let r = sign_in(&app, &attacker, "owner@example.com", "guess", None).await;
        match r.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(refused, 50 - PAIR_FAILURES, "the pair is refused after 5");
    // The attacker's address cannot use even the right password for now...
    let r = sign_in(&app, &attacker, "owner@example.com", PASSWORD, None).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // ...but the owner, from another address, signs in at once.
    let owner = client_from([127, 0, 0, 2]);
    let r = sign_in(&app, &owner, "owner@example.com", PASSWORD, None).await;
    let body = json_of(r, StatusCode::OK).await;
    assert_eq!(body["user"]["email"], "owner@example.com");
}

#[sqlx::test]
async fn after_five_failures_a_pair_gets_429_and_the_wait_doubles_with_each_further_one(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    app.user("gi@example.com", "requester").await;
    let client = client_from([127, 0, 0, 1]);
    // The same for an account that exists and one that does not.
    for email in ["gi@example.com", "nobody@example.com"] {
        for i in 1..=PAIR_FAILURES {
            let r = sign_in(&app, &client, email, "not the password", None).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{email}, failure {i}");
        }
        let base = PAIR_BASE_LOCK_SECONDS as u64;
        let mut waits = Vec::new();
        for _ in 0..4 {
            let r = sign_in(&app, &client, email, "not the password", None).await;
            waits.push(retry_after_of(r).await);
        }
        assert_eq!(waits, [2 * base, 4 * base, 8 * base, 16 * base], "{email}");
    }
    // The cap: never more than 15 minutes.
    for _ in 0..6 {
        sign_in(&app, &client, "gi@example.com", "x", None).await;
    }
    let r = sign_in(&app, &client, "gi@example.com", PASSWORD, None).await;
    assert_eq!(retry_after_of(r).await, 900);
    // Another account from the same address is not affected by this pair.
    app.user("other@example.com", "requester").await;
    let r = sign_in(&app, &client, "other@example.com", PASSWORD, None).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[sqlx::test]
async fn an_address_gets_429_after_the_configured_number_of_failures(pool: PgPool) {
    let mut config = test_config(&pool);
    config.login_address_limit = 3;
    let app = TestApp::spawn_with(pool, config).await;
    app.user("victim@example.com", "requester").await;
    let sprayer = client_from([127, 0, 0, 1]);
    for i in 0..3 {
        let email = format!("guess{i}@example.com");
        let r = sign_in(&app, &sprayer, &email, "not the password", None).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "failure {i}");
    }
    // The 4th attempt from that address is refused, whatever the account and password.
    let r = sign_in(&app, &sprayer, "victim@example.com", PASSWORD, None).await;
    let wait = retry_after_of(r).await;
    assert!(
        (1..=900).contains(&wait),
        "within the 15-minute window: {wait}"
    );
    // Another address is not.
    let r = sign_in(
        &app,
        &client_from([127, 0, 0, 2]),
        "victim@example.com",
        PASSWORD,
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[sqlx::test]
async fn x_forwarded_for_names_the_client_only_when_a_trusted_proxy_sends_it(pool: PgPool) {
    let mut config = test_config(&pool);
    config.login_address_limit = 2;
    config.trusted_proxies = "10.9.8.0/24, 127.0.0.1".into();
    let app = TestApp::spawn_with(pool, config).await;
    app.user("al@example.com", "requester").await;
    let proxy = client_from([127, 0, 0, 1]);
    let al_signs_in = |client, from| sign_in(&app, client, "al@example.com", PASSWORD, Some(from));
    // Behind the proxy, 203.0.113.7 fails twice and is refused; anything the client itself put
    // in front of the header, and proxies in the trusted range, are skipped.
    for forwarded in ["203.0.113.7", "1.2.3.4, 203.0.113.7, 10.9.8.7"] {
        let r = sign_in(&app, &proxy, "x@example.com", "wrong", Some(forwarded)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = al_signs_in(&proxy, "203.0.113.7").await;
    retry_after_of(r).await;
    // Another client behind the same proxy is a different address.
    let r = al_signs_in(&proxy, "203.0.113.8").await;
    assert_eq!(r.status(), StatusCode::OK);

    // From an address that is not a trusted proxy the header is ignored: a client cannot
    // make itself a new address per attempt.
    let direct = client_from([127, 0, 0, 2]);
    for i in 0..2 {
        let forwarded = format!("198.51.100.{i}");
        let r = sign_in(&app, &direct, "x@example.com", "wrong", Some(&forwarded)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = al_signs_in(&direct, "198.51.100.9").await;
    retry_after_of(r).await;
}

#[sqlx::test]
async fn registration_is_limited_per_client_address(pool: PgPool) {
    let mut config = test_config(&pool);
    config.register_address_limit = 2;
    let app = TestApp::spawn_with(pool, config).await;
    let register = |client: reqwest::Client, n: u32| {
        let url = format!("{}/api/v1/auth/register", app.base);
        async move {
            client
                .post(url)
                .json(&json!({"email": format!("r{n}@example.com"), "password": "long enough pw", "full_name": "R"}))
                .send()
                .await
                .unwrap()
        }
    };
    let one = client_from([127, 0, 0, 1]);
    for n in 0..2 {
        assert_eq!(register(one.clone(), n).await.status(), StatusCode::CREATED);
    }
    let wait = retry_after_of(register(one.clone(), 2).await).await;
    assert!((1..=3600).contains(&wait), "within the hour: {wait}");
    let (n,): (i64,) = sqlx::query_as("select count(*) from users where email = 'r2@example.com'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing was registered");
    // Another address still registers.
    let r = register(client_from([127, 0, 0, 2]), 3).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}
