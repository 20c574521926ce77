//! `/api/v1/items`: CRUD with `If-Match`, roles, links from tickets.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{json_of, TestApp};
use crate::steps::{get_consistent, get_ok, token_of, users};

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    json_of(
        app.post("/api/v1/items/", token, body).await,
        StatusCode::CREATED,
    )
    .await
}

async fn patch_if(
    app: &TestApp,
    token: &str,
    id: i64,
    version: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut r = app
        .request(Method::PATCH, &format!("/api/v1/items/{id}"), Some(token))
        .json(&body);
    if let Some(v) = version {
        r = r.header("if-match", v);
    }
    r.send().await.unwrap()
}

async fn delete_if(
    app: &TestApp,
    token: &str,
    id: i64,
    version: Option<&str>,
) -> reqwest::Response {
    let mut r = app.request(Method::DELETE, &format!("/api/v1/items/{id}"), Some(token));
    if let Some(v) = version {
        r = r.header("if-match", v);
    }
    r.send().await.unwrap()
}

#[sqlx::test]
async fn admins_create_read_change_and_delete_items(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [admin, req] = users(&app, [("root", "admin"), ("ann", "requester")]).await;

    let r = app
        .post(
            "/api/v1/items/",
            &admin.token,
            json!({"name": " Laptop 42 ", "kind": "Laptop", "description": "ThinkPad", "attributes": {"serial": "X1"}, "owner_id": req.id}),
        )
        .await;
    assert_eq!(r.headers()["etag"], "\"1\"");
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let item = json_of(r, StatusCode::CREATED).await;
    assert_eq!(location, format!("/api/v1/items/{}", item["id"]));
    assert_eq!(item["name"], "Laptop 42");
    assert_eq!(item["kind"], "laptop");
    assert_eq!(item["status"], "active");
    assert_eq!(item["attributes"], json!({"serial": "X1"}));
    assert_eq!(item["owner_id"], req.id);
    assert_eq!(item["version"], 1);
    let id = item["id"].as_i64().unwrap();
    create(
        &app,
        &admin.token,
        json!({"name": "Mail server", "kind": "server", "status": "maintenance"}),
    )
    .await;
    create(
        &app,
        &admin.token,
        json!({"name": "Laptop 7", "kind": "laptop", "status": "retired"}),
    )
    .await;

    // Every signed-in user reads, with filters and paging.
    let got = app.get(&location, &req.token).await;
    assert_eq!(got.headers()["etag"], "\"1\"");
    assert_eq!(
        json_of(got, StatusCode::OK).await["description"],
        "ThinkPad"
    );
    let laptops = get_ok(&app, &req, "/api/v1/items?kind=laptop").await;
    assert_eq!(laptops["total"], 2);
    let active = get_ok(&app, &req, "/api/v1/items?kind=laptop&status=active").await;
    assert_eq!(active["total"], 1);
    let found = get_ok(&app, &req, "/api/v1/items?q=mail").await;
    assert_eq!(found["items"][0]["name"], "Mail server");
    let paged = get_ok(&app, &req, "/api/v1/items?size=2&page=2").await;
    assert_eq!(
        (paged["total"].as_i64(), paged["pages"].as_i64()),
        (Some(3), Some(2))
    );
    assert_eq!(paged["items"].as_array().unwrap().len(), 1);
    let bad = json_of(
        app.get("/api/v1/items?status=lost", &req.token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(bad["detail"][0]["loc"], json!(["query", "status"]));

    // Change with the current version; the version moves on.
    let r = patch_if(&app, &admin.token, id, Some("\"1\""), json!({"status": "maintenance", "owner_id": null, "attributes": {"serial": "X1", "ram": 32}})).await;
    assert_eq!(r.headers()["etag"], "\"2\"");
    let item = json_of(r, StatusCode::OK).await;
    assert_eq!(item["version"], 2);
    assert_eq!(item["status"], "maintenance");
    assert_eq!(item["owner_id"], Value::Null);
    assert_eq!(item["name"], "Laptop 42");
    assert_eq!(item["attributes"]["ram"], 32);

    // Delete with the current version.
    assert_eq!(
        delete_if(&app, &admin.token, id, Some("2")).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&location, &admin.token).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete_if(&app, &admin.token, id, Some("2")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test]
async fn a_stale_if_match_is_412_a_missing_one_428_and_neither_changes_anything(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let admin = app.user("root@example.com", "admin").await;
    let item = create(
        &app,
        &admin.token,
        json!({"name": "Router", "kind": "network"}),
    )
    .await;
    let id = item["id"].as_i64().unwrap();
    // Someone else changes it first: version 2.
    json_of(
        patch_if(
            &app,
            &admin.token,
            id,
            Some("\"1\""),
            json!({"name": "Core router"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;

    let cases = [
        (
            Some("\"1\""),
            StatusCode::PRECONDITION_FAILED,
            "PRECONDITION_FAILED",
        ),
        (
            Some("7"),
            StatusCode::PRECONDITION_FAILED,
            "PRECONDITION_FAILED",
        ),
        (
            Some("yesterday"),
            StatusCode::PRECONDITION_FAILED,
            "PRECONDITION_FAILED",
        ),
        (
            None,
            StatusCode::PRECONDITION_REQUIRED,
            "PRECONDITION_REQUIRED",
        ),
        (
            Some("*"),
            StatusCode::PRECONDITION_REQUIRED,
            "PRECONDITION_REQUIRED",
        ),
    ];
    for (version, status, code) in cases {
        let r = patch_if(
            &app,
            &admin.token,
            id,
            version,
            json!({"name": "Edge router", "status": "retired"}),
        )
        .await;
        let body = json_of(r, status).await;
        assert_eq!(body["code"], code, "{version:?}");
        assert!(body["detail"].as_str().unwrap().len() > 10);
        let r = delete_if(&app, &admin.token, id, version).await;
        assert_eq!(json_of(r, status).await["code"], code, "{version:?}");
    }
    // An empty change with a stale version is refused as well.
    let r = patch_if(&app, &admin.token, id, Some("1"), json!({})).await;
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);

    let now = get_ok(&app, &admin, &format!("/api/v1/items/{id}")).await;
    assert_eq!(now["name"], "Core router");
    assert_eq!(now["status"], "active");
    assert_eq!(now["version"], 2);
}

#[sqlx::test]
async fn only_admins_write_items_and_bad_input_is_422(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [admin, manager, req] = users(
        &app,
        [("root", "admin"), ("boss", "manager"), ("ann", "requester")],
    )
    .await;
    let item = create(
        &app,
        &admin.token,
        json!({"name": "Printer", "kind": "printer"}),
    )
    .await;
    let id = item["id"].as_i64().unwrap();

    for token in [&manager.token, &req.token] {
        let r = app
            .post("/api/v1/items/", token, json!({"name": "X", "kind": "y"}))
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            patch_if(&app, token, id, Some("1"), json!({"name": "Z"}))
                .await
                .status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            delete_if(&app, token, id, Some("1")).await.status(),
            StatusCode::FORBIDDEN
        );
    }
    let r = app
        .request(Method::GET, "/api/v1/items/", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let bad = json_of(
        app.post(
            "/api/v1/items/",
            &admin.token,
            json!({"name": "", "kind": "k", "attributes": [1, 2]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let locs: Vec<Value> = bad["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"].clone())
        .collect();
    assert!(
        locs.contains(&json!(["body", "name"])) && locs.contains(&json!(["body", "attributes"])),
        "{bad}"
    );
    let missing = json_of(
        app.post("/api/v1/items/", &admin.token, json!({"name": "N"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(missing["detail"][0]["loc"], json!(["body", "kind"]));
    let owner = json_of(
        app.post(
            "/api/v1/items/",
            &admin.token,
            json!({"name": "N", "kind": "k", "owner_id": 9999}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(owner["detail"][0]["loc"], json!(["body", "owner_id"]));
    let total: i64 = sqlx::query_scalar("select count(*) from items")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(total, 1);
}

#[sqlx::test]
async fn tickets_link_only_existing_items_and_an_item_lists_its_tickets(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [admin, ann, bob, agent] = users(
        &app,
        [
            ("root", "admin"),
            ("ann", "requester"),
            ("bob", "requester"),
            ("agent", "agent"),
        ],
    )
    .await;
    let printer = create(
        &app,
        &admin.token,
        json!({"name": "Printer", "kind": "printer"}),
    )
    .await;
    let pid = printer["id"].as_i64().unwrap();

    // An unknown item: 422 on item_ids, and no ticket is opened.
    let ticket =
        |title: &str, items: Value| json!({"title": title, "description": "d", "item_ids": items});
    let bad = json_of(
        app.post(
            "/api/v1/tickets/",
            &ann.token,
            ticket("Jam", json!([pid, 4242])),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(bad["detail"][0]["loc"], json!(["body", "item_ids"]));
    assert!(bad["detail"][0]["msg"].as_str().unwrap().contains("4242"));
    app.settle().await;
    let mine = get_ok(&app, &ann, "/api/v1/tickets/").await;
    assert_eq!(mine["total"], 0);

    let t1 = json_of(
        app.post(
            "/api/v1/tickets/",
            &ann.token,
            ticket("Paper jam", json!([pid])),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let t2 = json_of(
        app.post(
            "/api/v1/tickets/",
            &bob.token,
            ticket("Toner low", json!([])),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(t1["item_ids"], json!([pid]));
    // Linking on update is checked the same way, and a refused update changes nothing.
    let t2path = format!("/api/v1/tickets/{}", t2["id"]);
    let bad = json_of(
        app.patch(
            &t2path,
            &bob.token,
            json!({"item_ids": [777], "title": "Other"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(bad["detail"][0]["loc"], json!(["body", "item_ids"]));
    // Linking the item records an event; its token must make the next read see the link.
    let linked = app
        .patch(&t2path, &bob.token, json!({"item_ids": [pid]}))
        .await;
    let token = token_of(&linked);
    let t2now = json_of(linked, StatusCode::OK).await;
    assert_eq!(t2now["title"], "Toner low");
    assert_eq!(t2now["item_ids"], json!([pid]));

    // The item's tickets: staff see both, a requester only their own. Read-your-writes: the
    // token makes the read wait for the projection, so the link just made is there at once.
    let path = format!("/api/v1/items/{pid}/tickets");
    let response = get_consistent(&app, &agent, &path, &token).await;
    let all = json_of(response, StatusCode::OK).await;
    assert_eq!(all["total"], 2);
    let ids: Vec<&Value> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["id"])
        .collect();
    assert_eq!(ids, vec![&t2["id"], &t1["id"]]);
    let anns = get_ok(&app, &ann, &path).await;
    assert_eq!(anns["total"], 1);
    assert_eq!(anns["items"][0]["id"], t1["id"]);
    assert_eq!(
        app.get("/api/v1/items/999/tickets", &agent.token)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // An item tickets refer to cannot be deleted.
    let r = delete_if(&app, &admin.token, pid, Some("1")).await;
    assert_eq!(json_of(r, StatusCode::CONFLICT).await["code"], "CONFLICT");
    assert_eq!(
        app.get(&format!("/api/v1/items/{pid}"), &admin.token)
            .await
            .status(),
        StatusCode::OK
    );
}
