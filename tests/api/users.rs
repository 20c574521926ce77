//! `/api/v1/users`: the directory, admin changes, deactivation and the last-admin guard.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{json_of, TestApp, PASSWORD};
use crate::steps::{ann_bob_and_agent, get_ok, users};

#[sqlx::test]
async fn agents_list_users_filtered_by_role_and_text_with_paging(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let agent = app.user("agent.smith@example.com", "agent").await;
    app.user("ann@example.com", "requester").await;
    app.user("bob.manager@example.com", "manager").await;
    app.user("cy@example.com", "admin").await;
    app.user("dee@example.com", "agent").await;

    let page = get_ok(&app, &agent, "/api/v1/users/").await;
    assert_eq!(page["total"], 5);
    assert_eq!(page["pages"], 1);
    assert!(page["items"][0].get("password_hash").is_none());

    let staff = get_ok(
        &app,
        &agent,
        "/api/v1/users?role=agent,manager,admin&size=2",
    )
    .await;
    assert_eq!(staff["total"], 4);
    assert_eq!(staff["pages"], 2);
    assert_eq!(staff["items"].as_array().unwrap().len(), 2);
    let page2 = get_ok(
        &app,
        &agent,
        "/api/v1/users?role=agent,manager,admin&size=2&page=2",
    )
    .await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 2);
    assert_eq!(page2["total"], 4);

    // `q` matches name or email, case-insensitively; `%` is a literal character.
    let found = get_ok(&app, &agent, "/api/v1/users?q=MANAGER").await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["items"][0]["email"], "bob.manager@example.com");
    let none = get_ok(&app, &agent, "/api/v1/users?q=%25").await;
    assert_eq!(none["total"], 0);

    let bad = json_of(
        app.get("/api/v1/users?role=wizard", &agent.token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(bad["detail"][0]["loc"], json!(["query", "role"]));
    let bad = json_of(
        app.get("/api/v1/users?size=500", &agent.token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(bad["detail"][0]["loc"], json!(["query", "size"]));
}

#[sqlx::test]
async fn requesters_cannot_list_users_and_see_only_themselves(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [ann, bob, agent] = ann_bob_and_agent(&app).await;

    let r = app.get("/api/v1/users/", &ann.token).await;
    assert_eq!(
        json_of(r, StatusCode::FORBIDDEN).await["code"],
        "PERMISSION_ERROR"
    );
    let me = get_ok(&app, &ann, &format!("/api/v1/users/{}", ann.id)).await;
    assert_eq!(me["email"], "ann@example.com");
    // Someone else, or nobody at all: the same 404.
    for id in [bob.id, 99_999] {
        let r = app.get(&format!("/api/v1/users/{id}"), &ann.token).await;
        assert_eq!(json_of(r, StatusCode::NOT_FOUND).await["code"], "NOT_FOUND");
    }
    let other = get_ok(&app, &agent, &format!("/api/v1/users/{}", bob.id)).await;
    assert_eq!(other["role"], "requester");
    assert_eq!(
        app.get("/api/v1/users/99999", &agent.token).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test]
async fn admins_change_role_and_name_and_nobody_else_can(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [admin, manager, ann] = users(
        &app,
        [("root", "admin"), ("boss", "manager"), ("ann", "requester")],
    )
    .await;
    let path = format!("/api/v1/users/{}", ann.id);

    for token in [&manager.token, &ann.token] {
        let r = app.patch(&path, token, json!({"role": "admin"})).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            app.delete(&path, token).await.status(),
            StatusCode::FORBIDDEN
        );
    }
    let r = app
        .patch(
            &path,
            &admin.token,
            json!({"role": "agent", "full_name": "  Ann Agent "}),
        )
        .await;
    assert!(r.headers().get("x-consistency-token").is_some());
    let u = json_of(r, StatusCode::OK).await;
    assert_eq!(u["role"], "agent");
    assert_eq!(u["full_name"], "Ann Agent");
    // The new role applies to the access token she already holds: she may now list users.
    assert_eq!(
        app.get("/api/v1/users/", &ann.token).await.status(),
        StatusCode::OK
    );

    // Bad input is refused field by field and changes nothing.
    let bad = json_of(
        app.patch(&path, &admin.token, json!({"role": "wizard"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(bad["detail"][0]["loc"], json!(["body", "role"]));
    for body in [
        json!({"full_name": ""}),
        json!({"role": null}),
        json!({"is_active": "no"}),
        json!({"email": "x@y.z"}),
    ] {
        let r = app.patch(&path, &admin.token, body.clone()).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let u = get_ok(&app, &admin, &path).await;
    assert_eq!(
        (u["role"].as_str(), u["full_name"].as_str()),
        (Some("agent"), Some("Ann Agent"))
    );
    assert_eq!(
        app.patch(
            "/api/v1/users/99999",
            &admin.token,
            json!({"role": "agent"})
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test]
async fn a_deactivated_user_is_locked_out_at_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [admin, ann] = users(&app, [("root", "admin"), ("ann", "agent")]).await;
    let path = format!("/api/v1/users/{}", ann.id);
    assert_eq!(
        app.get("/api/v1/auth/profile", &ann.token).await.status(),
        StatusCode::OK
    );

    let r = app.delete(&path, &admin.token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.headers().get("x-consistency-token").is_some());

    // Her access token stops working at once, everywhere.
    for p in ["/api/v1/auth/profile", "/api/v1/tickets/", "/api/v1/users/"] {
        let r = app.get(p, &ann.token).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{p}");
    }
    // She cannot sign in, and her refresh token is dead.
    let r = app
        .request(Method::POST, "/api/v1/auth/login", None)
        .json(&json!({"email": "ann@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let refresh = |token: String| {
        app.request(Method::POST, "/api/v1/auth/refresh", None)
            .json(&json!({"refresh_token": token}))
            .send()
    };
    assert_eq!(
        refresh(ann.refresh.clone()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // The account stays, inactive.
    let u = get_ok(&app, &admin, &path).await;
    assert_eq!(u["is_active"], false);
    let listed = get_ok(&app, &admin, "/api/v1/users?is_active=false").await;
    assert_eq!(listed["total"], 1);

    // Reactivated, she signs in again; the old refresh token stays revoked.
    let u = json_of(
        app.patch(&path, &admin.token, json!({"is_active": true}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(u["is_active"], true);
    app.login("ann@example.com", PASSWORD).await;
    assert_eq!(
        refresh(ann.refresh.clone()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[sqlx::test]
async fn the_last_active_admin_can_be_neither_demoted_nor_deactivated(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.user("root@example.com", "admin").await;
    let me = format!("/api/v1/users/{}", admin.id);

    let body = json_of(
        app.patch(&me, &admin.token, json!({"role": "agent"})).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(body["code"], "CONFLICT");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("last active admin"));
    assert_eq!(
        app.patch(&me, &admin.token, json!({"is_active": false}))
            .await
            .status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.delete(&me, &admin.token).await.status(),
        StatusCode::CONFLICT
    );
    // A harmless change to the last admin is fine.
    let u = json_of(
        app.patch(
            &me,
            &admin.token,
            json!({"full_name": "Root", "role": "admin"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (u["role"].as_str(), u["is_active"].as_bool()),
        (Some("admin"), Some(true))
    );

    // Two admins demoting each other at the same moment: exactly one of them succeeds, every
    // time, and one active admin remains.
    let mut survivor = admin;
    for round in 0..6 {
        let other = app
            .user(&format!("admin{round}@example.com"), "admin")
            .await;
        let (a, b) = if round % 2 == 0 {
            (&survivor, &other)
        } else {
            (&other, &survivor)
        };
        let change = if round % 3 == 0 {
            json!({"is_active": false})
        } else {
            json!({"role": "agent"})
        };
        let (path_a, path_b) = (
            format!("/api/v1/users/{}", a.id),
            format!("/api/v1/users/{}", b.id),
        );
        let (ra, rb) = tokio::join!(
            app.patch(&path_b, &a.token, change.clone()),
            app.patch(&path_a, &b.token, change.clone()),
        );
        let statuses = [ra.status(), rb.status()];
        let wins = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(wins, 1, "round {round}: {statuses:?}");
        // The loser was either refused (409) or had already lost the right to ask (401/403).
        assert!(
            statuses.iter().all(|s| [
                StatusCode::OK,
                StatusCode::CONFLICT,
                StatusCode::UNAUTHORIZED,
                StatusCode::FORBIDDEN
            ]
            .contains(s)),
            "round {round}: {statuses:?}"
        );
        let admins: Vec<i64> =
            sqlx::query_scalar("select id from users where role = 'admin' and is_active")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(admins.len(), 1, "round {round}");
        survivor = if admins[0] == a.id {
            a.clone()
        } else {
            b.clone()
        };
    }
}

#[sqlx::test]
async fn a_user_list_item_has_the_api_md_shape(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let agent = app.user("agent@example.com", "agent").await;
    let page = get_ok(&app, &agent, "/api/v1/users").await;
    let u: &Value = &page["items"][0];
    for key in [
        "id",
        "email",
        "full_name",
        "role",
        "is_active",
        "created_at",
    ] {
        assert!(u.get(key).is_some(), "{key}");
    }
    for key in ["items", "total", "page", "size", "pages"] {
        assert!(page.get(key).is_some(), "{key}");
    }
}
