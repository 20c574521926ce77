//! Inputs PostgreSQL cannot store or read back: NUL in any text (body, query, file name) and
//! numbers beyond `f64` answer 422 naming the field, and nothing is stored; every finite
//! number that is stored reads back as it was sent.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

use ticketd::http::error::visit_json;

use crate::helpers::{json_of, TestApp};
use crate::steps::users;

/// Every operation with a JSON body: method, path as OpenAPI spells it, a path to call and a
/// body that parses (the checks run before the handler, so the ids need not exist).
fn write_routes() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    let target = json!({"first_response_minutes": 60, "resolution_minutes": 600});
    let step =
        json!({"name": "Manager", "approver_ids": [1], "rule": "quorum", "min_approvals": 1});
    let actions = json!({"status": "open", "reason": "R", "priority": "low", "assignee_id": 1,
        "add_tags": ["t"], "remove_tags": ["u"]});
    let view_filters = json!({"q": "Q", "status": "open", "priority": "low", "type": "issue",
        "assignee_id": "me", "requester_id": 1, "tag": "t", "sla": "breached"});
    vec![
        (
            "POST",
            "/api/v1/auth/register",
            "/api/v1/auth/register",
            json!({"email": "a@example.com", "password": "long password", "full_name": "A"}),
        ),
        (
            "POST",
            "/api/v1/auth/login",
            "/api/v1/auth/login",
            json!({"email": "a@example.com", "password": "long password"}),
        ),
        (
            "POST",
            "/api/v1/auth/refresh",
            "/api/v1/auth/refresh",
            json!({"refresh_token": "x"}),
        ),
        (
            "POST",
            "/api/v1/auth/logout",
            "/api/v1/auth/logout",
            json!({"refresh_token": "x"}),
        ),
        (
            "PATCH",
            "/api/v1/auth/profile",
            "/api/v1/auth/profile",
            json!({"full_name": "A", "password": "new password", "current_password": "old password"}),
        ),
        (
            "POST",
            "/api/v1/users",
            "/api/v1/users",
            json!({"email": "b@example.com", "password": "long password", "full_name": "B", "role": "agent"}),
        ),
        (
            "PATCH",
            "/api/v1/users/{id}",
            "/api/v1/users/9",
            json!({"role": "agent", "is_active": true, "full_name": "B"}),
        ),
        (
            "POST",
            "/api/v1/tickets",
            "/api/v1/tickets",
            json!({"title": "T", "description": "D", "priority": "low", "type": "issue",
                "tags": ["t"], "item_ids": [1]}),
        ),
        (
            "PATCH",
            "/api/v1/tickets/{id}",
            "/api/v1/tickets/9",
            json!({"title": "T", "description": "D", "priority": "low", "type": "issue",
                "tags": ["t"], "item_ids": [1]}),
        ),
        (
            "PATCH",
            "/api/v1/tickets/{id}/status",
            "/api/v1/tickets/9/status",
            json!({"status": "resolved", "reason": "R"}),
        ),
        (
            "PATCH",
            "/api/v1/tickets/{id}/assign",
            "/api/v1/tickets/9/assign",
            json!({"assignee_id": 1}),
        ),
        (
            "POST",
            "/api/v1/comments",
            "/api/v1/comments",
            json!({"ticket_id": 9, "content": "C", "is_internal": false,
                "parent_id": "00000000-0000-0000-0000-000000000000",
                "set_status": "resolved", "reason": "R"}),
        ),
        (
            "PATCH",
            "/api/v1/comments/{id}",
            "/api/v1/comments/00000000-0000-0000-0000-000000000000",
            json!({"content": "C"}),
        ),
        (
            "POST",
            "/api/v1/approvals",
            "/api/v1/approvals",
            json!({"ticket_id": 9, "steps": [step], "reason": "R"}),
        ),
        (
            "POST",
            "/api/v1/approvals/{id}/decisions",
            "/api/v1/approvals/00000000-0000-0000-0000-000000000000/decisions",
            json!({"decision": "approve", "comment": "C"}),
        ),
        (
            "POST",
            "/api/v1/approvals/{id}/delegate",
            "/api/v1/approvals/00000000-0000-0000-0000-000000000000/delegate",
            json!({"to_user_id": 1, "comment": "C"}),
        ),
        (
            "PUT",
            "/api/v1/approvals/policy",
            "/api/v1/approvals/policy",
            json!({"steps": [{"name": "S", "rule": "quorum", "min_approvals": 1,
                           "approvers": [{"user_id": 1}, {"role": "manager"}]}]}),
        ),
        (
            "POST",
            "/api/v1/items",
            "/api/v1/items",
            json!({"name": "N", "kind": "K", "description": "D", "attributes": {"a": "x", "n": 1},
                "owner_id": 1, "status": "active"}),
        ),
        (
            "PATCH",
            "/api/v1/items/{id}",
            "/api/v1/items/9",
            json!({"name": "N", "kind": "K", "description": "D", "attributes": {"a": ["x", 1]},
                "owner_id": 1, "status": "active"}),
        ),
        (
            "PUT",
            "/api/v1/reports/sla-policy",
            "/api/v1/reports/sla-policy",
            json!({"targets": {"low": target, "medium": target, "high": target, "critical": target},
                "business_hours": {"time_zone": "UTC", "week": {"mon": [["09:00", "17:00"]]}}}),
        ),
        (
            "PUT",
            "/api/v1/tickets/requester-policy",
            "/api/v1/tickets/requester-policy",
            json!({"priorities": ["low"], "types": ["issue"], "reopen_days": 3}),
        ),
        (
            "PUT",
            "/api/v1/tickets/{id}/presence",
            "/api/v1/tickets/9/presence",
            json!({"state": "typing", "internal": false}),
        ),
        (
            "POST",
            "/api/v1/views",
            "/api/v1/views",
            json!({"name": "N", "filters": view_filters, "sort": "sla_due", "columns": ["id"],
                "position": 1}),
        ),
        (
            "POST",
            "/api/v1/macros",
            "/api/v1/macros",
            json!({"name": "N", "content": "C", "is_internal": false, "changes": actions, "shared": false}),
        ),
        (
            "PATCH",
            "/api/v1/macros/{id}",
            "/api/v1/macros/9",
            json!({"name": "N", "content": "C", "is_internal": true, "changes": actions}),
        ),
        (
            "POST",
            "/api/v1/tickets/bulk",
            "/api/v1/tickets/bulk",
            json!({"ticket_ids": [9], "versions": {"9": 1}, "changes": actions,
                "comment": {"content": "C", "is_internal": false}, "macro_id": 9}),
        ),
        (
            "POST",
            "/api/v1/webhooks",
            "/api/v1/webhooks",
            json!({"url": "https://hooks.example.com/h", "events": ["ticket.created"],
                "active": true, "description": "D"}),
        ),
        (
            "PATCH",
            "/api/v1/webhooks/{id}",
            "/api/v1/webhooks/9",
            json!({"url": "https://hooks.example.com/h", "events": ["ticket.created"],
                "active": true, "description": "D"}),
        ),
        (
            "PATCH",
            "/api/v1/views/{id}",
            "/api/v1/views/9",
            json!({"name": "N", "filters": view_filters, "sort": "sla_due", "columns": ["id"],
                "position": 1}),
        ),
    ]
}

/// The location of every string (`true`) and number (`false`) leaf of `body`.
fn leaves(body: &Value) -> Vec<(Vec<Value>, bool)> {
    let mut out = Vec::new();
    visit_json(body, &mut vec![], &mut |loc, value| match value {
        Value::String(_) => out.push((loc.to_vec(), true)),
        Value::Number(_) => out.push((loc.to_vec(), false)),
        _ => {}
    });
    out
}

fn slot<'a>(body: &'a mut Value, loc: &[Value]) -> &'a mut Value {
    loc.iter().fold(body, |v, segment| match segment {
        Value::String(key) => &mut v[key.as_str()],
        other => &mut v[other.as_u64().unwrap() as usize],
    })
}

/// What the database holds that a refused request could have changed.
async fn stored(app: &TestApp) -> (i64, i64, i64, i64, i64) {
    sqlx::query_as(
        "select (select count(*) from events), (select count(*) from users), (select count(*) from items),
                (select count(*) from saved_views), (select count(*) from webhooks)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn assert_refused(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: String,
    loc: &[Value],
) {
    let r = app
        .request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            path,
            Some(token),
        )
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let got = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let mut want = vec![json!("body")];
    want.extend_from_slice(loc);
    assert!(
        got["detail"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["loc"] == json!(want)),
        "{method} {path} {body}: expected an error at {want:?}, got {got}"
    );
}

#[sqlx::test]
async fn nul_and_out_of_range_numbers_are_refused_in_every_field_and_nothing_is_stored(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let [admin] = users(&app, [("root", "admin")]).await;
    let routes = write_routes();

    // The table covers every operation that takes a JSON body.
    let doc = serde_json::to_value(ticketd::http::openapi()).unwrap();
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if op["requestBody"]["content"]
                .get("application/json")
                .is_some()
            {
                documented.insert((
                    method.to_uppercase(),
                    path.trim_end_matches('/').to_string(),
                ));
            }
        }
    }
    let covered: BTreeSet<_> = routes
        .iter()
        .map(|(m, p, _, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        documented, covered,
        "write_routes() must list every JSON operation"
    );

    let before = stored(&app).await;
    for (method, _, path, body) in &routes {
        for (loc, is_text) in leaves(body) {
            let mut bad = body.clone();
            let text = if is_text {
                *slot(&mut bad, &loc) = json!("a\u{0}b");
                bad.to_string()
            } else {
                *slot(&mut bad, &loc) = json!("__number__");
                bad.to_string().replace("\"__number__\"", "1e400")
            };
            assert_refused(&app, &admin.token, method, path, text, &loc).await;
        }
        // A key holding NUL, wherever free-form objects are taken.
        if body.get("attributes").is_some() {
            let mut bad = body.clone();
            bad["attributes"] = json!({"a\u{0}": 1});
            let loc = [json!("attributes"), json!("a\u{0}")];
            assert_refused(&app, &admin.token, method, path, bad.to_string(), &loc).await;
        }
    }
    assert_eq!(
        stored(&app).await,
        before,
        "a refused request stored something"
    );
}

#[sqlx::test]
async fn nul_in_any_query_parameter_is_refused_naming_it(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [admin] = users(&app, [("root", "admin")]).await;
    let doc = serde_json::to_value(ticketd::http::openapi()).unwrap();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let Some(get) = ops.get("get") else { continue };
        let path = path.replace("{id}", "1");
        for param in get["parameters"].as_array().into_iter().flatten() {
            if param["in"] != "query" {
                continue;
            }
            let name = param["name"].as_str().unwrap();
            let r = app.get(&format!("{path}?{name}=a%00b"), &admin.token).await;
            let got = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert_eq!(
                got["detail"][0]["loc"],
                json!(["query", name]),
                "GET {path}?{name}"
            );
            checked += 1;
        }
    }
    assert!(checked > 10, "only {checked} query parameters found");
}

#[sqlx::test]
async fn every_finite_number_reads_back_as_it_was_stored(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [admin] = users(&app, [("root", "admin")]).await;
    // PostgreSQL prints jsonb numbers in plain notation: f64::MAX comes back as 309 digits.
    let numbers = json!({"max": f64::MAX, "min": f64::MIN, "big": 1.7e308, "avogadro": 6.022_140_76e23,
                         "tiny": 5e-324, "u64": u64::MAX, "i64": i64::MIN, "third": 1.0 / 3.0});
    let r = app
        .post(
            "/api/v1/items/",
            &admin.token,
            json!({"name": "N", "kind": "K", "attributes": numbers}),
        )
        .await;
    let created = json_of(r, StatusCode::CREATED).await;
    assert_eq!(created["attributes"], numbers);
    let id = created["id"].as_i64().unwrap();
    let read = json_of(
        app.get(&format!("/api/v1/items/{id}"), &admin.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(read["attributes"], numbers);
    let list = json_of(app.get("/api/v1/items", &admin.token).await, StatusCode::OK).await;
    assert_eq!(list["items"][0]["attributes"], numbers);
}

#[sqlx::test]
async fn nul_in_an_attachment_file_name_is_not_stored(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [admin] = users(&app, [("root", "admin")]).await;
    let ticket = app.ticket(&admin, "files").await;
    let body = format!(
        "--b\r\ncontent-disposition: form-data; name=\"ticket_id\"\r\n\r\n{}\r\n--b\r\n\
         content-disposition: form-data; name=\"file\"; filename*=UTF-8''a%00b.txt\r\n\
         content-type: text/plain\r\n\r\nhello\r\n--b--\r\n",
        ticket["id"]
    );
    let r = app
        .request(Method::POST, "/api/v1/attachments", Some(&admin.token))
        .header("content-type", "multipart/form-data; boundary=b")
        .body(body)
        .send()
        .await
        .unwrap();
    let got = json_of(r, StatusCode::CREATED).await;
    assert_eq!(got["filename"], "ab.txt");
}
