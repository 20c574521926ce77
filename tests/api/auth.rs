//! `/api/v1/auth` and `/api/v1/users` (admin create).

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{json_of, TestApp, PASSWORD};
use crate::steps::{get_ok, users};

#[sqlx::test]
async fn register_creates_a_requester_and_a_duplicate_email_is_409(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let body =
        json!({"email": "ann@example.com", "password": "long enough pw", "full_name": "Ann"});
    let r = app
        .request(Method::POST, "/api/v1/auth/register", None)
        .json(&body)
        .send()
        .await
        .unwrap();
    let user = json_of(r, StatusCode::CREATED).await;
    assert_eq!(user["role"], "requester");
    assert!(user.get("password_hash").is_none());
    let again =
        json!({"email": "ANN@example.com", "password": "long enough pw", "full_name": "Ann"});
    let r = app
        .request(Method::POST, "/api/v1/auth/register", None)
        .json(&again)
        .send()
        .await
        .unwrap();
    let body = json_of(r, StatusCode::CONFLICT).await;
    assert_eq!(body["code"], "CONFLICT");
}

#[sqlx::test]
async fn register_reports_every_missing_or_bad_field_with_its_loc(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let r = app
        .request(Method::POST, "/api/v1/auth/register", None)
        .json(&json!({"email": "nope", "password": "short", "full_name": ""}))
        .send()
        .await
        .unwrap();
    let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let locs: Vec<String> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["loc"][1].as_str().unwrap().to_string())
        .collect();
    assert!(
        locs.contains(&"email".into())
            && locs.contains(&"password".into())
            && locs.contains(&"full_name".into()),
        "{locs:?}"
    );
    for field in ["email", "password", "full_name"] {
        let mut b = json!({"email": "a@b.co", "password": "long enough pw", "full_name": "A"});
        b.as_object_mut().unwrap().remove(field);
        let r = app
            .request(Method::POST, "/api/v1/auth/register", None)
            .json(&b)
            .send()
            .await
            .unwrap();
        let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["detail"][0]["loc"], json!(["body", field]));
        assert_eq!(body["detail"][0]["type"], "missing");
    }
}

#[sqlx::test]
async fn login_returns_tokens_and_profile_works_with_them(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let u = app.user("bo@example.com", "agent").await;
    let me = get_ok(&app, &u, "/api/v1/auth/profile").await;
    assert_eq!(me["email"], "bo@example.com");
    assert_eq!(me["role"], "agent");
    let r = app
        .request(Method::POST, "/api/v1/auth/login", None)
        .json(&json!({"email": "bo@example.com", "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
}

#[sqlx::test]
async fn refresh_rotates_and_reusing_a_spent_token_revokes_the_family(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let u = app.user("cy@example.com", "requester").await;
    let refresh = |t: String| {
        app.request(Method::POST, "/api/v1/auth/refresh", None)
            .json(&json!({"refresh_token": t}))
            .send()
    };
    let first = json_of(refresh(u.refresh.clone()).await.unwrap(), StatusCode::OK).await;
    let second_token = first["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(second_token, u.refresh);
    // The spent token comes back: reuse. The family is revoked, so the new one dies too.
    assert_eq!(
        refresh(u.refresh.clone()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(second_token).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[sqlx::test]
async fn logout_revokes_the_refresh_token(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let u = app.user("di@example.com", "requester").await;
    let r = app
        .request(Method::POST, "/api/v1/auth/logout", None)
        .json(&json!({"refresh_token": u.refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .request(Method::POST, "/api/v1/auth/refresh", None)
        .json(&json!({"refresh_token": u.refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test]
async fn a_password_change_needs_the_current_password(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let u = app.user("ed@example.com", "requester").await;
    let r = app
        .patch(
            "/api/v1/auth/profile",
            &u.token,
            json!({"password": "a new password"}),
        )
        .await;
    let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "current_password"])
    );
    let r = app
        .patch(
            "/api/v1/auth/profile",
            &u.token,
            json!({"password": "a new password", "current_password": "wrong one!"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.patch("/api/v1/auth/profile", &u.token, json!({"password": "a new password", "current_password": PASSWORD, "full_name": "Ed Two"})).await;
    let me = json_of(r, StatusCode::OK).await;
    assert_eq!(me["full_name"], "Ed Two");
    app.login("ed@example.com", "a new password").await;
}

#[sqlx::test]
async fn bad_tokens_are_401_with_www_authenticate(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let u = app.user("fa@example.com", "requester").await;
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": u.id.to_string(), "role": "admin", "typ": "access", "iat": now, "nbf": now, "exp": now + 600, "jti": "x"});
    let alg_none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(claims.clone())
    );
    let other_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"another key that is long enough!!"),
    )
    .unwrap();
    let mut expired_claims = claims.clone();
    expired_claims["exp"] = json!(now - 3600);
    expired_claims["nbf"] = json!(now - 7200);
    let secret = app.config.signing_key().unwrap();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &expired_claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    let mut refresh_typed = claims.clone();
    refresh_typed["typ"] = json!("refresh");
    let wrong_type = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &refresh_typed,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    for token in [
        None,
        Some("garbage"),
        Some(alg_none.as_str()),
        Some(other_key.as_str()),
        Some(expired.as_str()),
        Some(wrong_type.as_str()),
    ] {
        let r = app
            .request(Method::GET, "/api/v1/tickets/", token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "token {token:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let body = json_of(r, StatusCode::UNAUTHORIZED).await;
        assert_eq!(body["code"], "AUTH_ERROR");
    }
}

#[sqlx::test]
async fn only_admins_create_users_with_roles(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [admin, agent] = users(&app, [("admin", "admin"), ("agent", "agent")]).await;
    let body = json!({"email": "new@example.com", "password": "long enough pw", "full_name": "New", "role": "manager"});
    assert_eq!(
        app.post("/api/v1/users/", &agent.token, body.clone())
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let r = app.post("/api/v1/users/", &admin.token, body.clone()).await;
    assert!(r.headers().get("location").is_some());
    let u = json_of(r, StatusCode::CREATED).await;
    assert_eq!(u["role"], "manager");
    assert_eq!(
        app.post("/api/v1/users/", &admin.token, body)
            .await
            .status(),
        StatusCode::CONFLICT
    );
    let r = app.post("/api/v1/users/", &admin.token, json!({"email": "x@example.com", "password": "long enough pw", "full_name": "X", "role": "emperor"})).await;
    let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["detail"][0]["loc"], json!(["body", "role"]));
}

#[sqlx::test]
async fn a_token_whose_sub_is_not_the_canonical_user_id_is_401(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let u = app.user("ca@example.com", "requester").await;
    assert_eq!(u.id, 1, "the first user");
    let secret = app.config.signing_key().unwrap();
    let now = chrono::Utc::now().timestamp();
    let token_for = |sub: &str| {
        let claims = json!({"sub": sub, "role": "requester", "typ": "access", "iat": now, "nbf": now, "exp": now + 600, "jti": "x", "sid": uuid::Uuid::new_v4()});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let app = &app;
    let profile =
        |token: String| async move { app.get("/api/v1/auth/profile", &token).await.status() };
    assert_eq!(profile(token_for("1")).await, StatusCode::OK);
    for sub in ["01", "+1", " 1", "1 ", "1.0", "0x1"] {
        assert_eq!(
            profile(token_for(sub)).await,
            StatusCode::UNAUTHORIZED,
            "sub {sub:?}"
        );
    }
}
