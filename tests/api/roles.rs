//! The role matrix (`tests/api/role_table.rs`) against the running server: every route of the OpenAPI
//! document, called by every role and without a token, must answer as the table says. A route
//! without a rule (or a rule without a route) fails the test by name.

use std::collections::HashMap;

use crate::role_table::{self as roles, Caller};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{json_of, TestApp, TestUser, PASSWORD};
use crate::steps::{get_ok, request_approval, step};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every (METHOD, path, operation) of the OpenAPI document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                out.push((m.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    out
}

#[test]
fn every_route_of_the_openapi_document_has_a_rule_and_every_rule_a_route() {
    let doc = serde_json::to_value(ticketd::http::openapi()).expect("doc");
    let ops = operations(&doc);
    let missing: Vec<String> = ops
        .iter()
        .filter(|(m, p, _)| roles::find(m, p).is_none())
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    let stale: Vec<String> = roles::ROUTES
        .iter()
        .filter(|r| {
            !ops.iter()
                .any(|(m, p, _)| roles::find(m, p).is_some_and(|f| std::ptr::eq(f, *r)))
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "the role matrix is out of date.\n  routes without a rule in tests/api/role_table.rs (add one, then \
         rerun with UPDATE_ROLES_DOC=1): {missing:#?}\n  rules in tests/api/role_table.rs that match no route: {stale:#?}"
    );
}

#[test]
fn docs_roles_md_holds_the_same_table_as_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/roles.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let (begin, end) = ("<!-- roles:begin -->\n", "<!-- roles:end -->");
    let table = roles::markdown_table();
    let current = text.find(begin).and_then(|b| {
        text[b + begin.len()..]
            .find(end)
            .map(|e| &text[b + begin.len()..b + begin.len() + e])
    });
    if current == Some(table.as_str()) {
        return;
    }
    if std::env::var("UPDATE_ROLES_DOC").is_ok() {
        let updated = match (text.find(begin), text.find(end)) {
            (Some(b), Some(e)) => format!("{}{begin}{table}{}", &text[..b], &text[e..]),
            _ => format!("{text}\n{begin}{table}{end}\n"),
        };
        std::fs::write(&path, updated).expect("write docs/roles.md");
        return;
    }
    panic!(
        "docs/roles.md does not match tests/api/role_table.rs; rerun with UPDATE_ROLES_DOC=1 to rewrite it. \
         The table should be:\n{table}"
    );
}

/// The things a route's path and body can refer to, fresh for each route.
struct Fixtures {
    by_area: HashMap<&'static str, String>,
    ticket: i64,
    item: i64,
    agent: i64,
    manager: i64,
}

impl Fixtures {
    /// The things each route needs; for a view's routes (`path`), a view of `caller`'s own.
    async fn create(
        app: &TestApp,
        users: &HashMap<&'static str, TestUser>,
        caller: Caller,
        path: &str,
    ) -> Fixtures {
        let requester = &users["requester"];
        let admin = &users["admin"];
        let ticket = app.ticket(requester, "Role matrix fixture").await["id"]
            .as_i64()
            .expect("ticket");
        let item = json_of(
            app.post(
                "/api/v1/items/",
                &admin.token,
                json!({"name": "Fixture", "kind": "test"}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await["id"]
            .as_i64()
            .expect("item");
        let victim: i64 = sqlx::query_scalar(
            "insert into users (email, full_name, password_hash, role) values ($1, 'Victim', 'x', 'requester') returning id",
        )
        .bind(format!("victim-{}@example.com", Uuid::new_v4()))
        .fetch_one(&app.pool)
        .await
        .expect("victim");
        let mut by_area: HashMap<&'static str, String> = HashMap::from([
            ("tickets", ticket.to_string()),
            ("items", item.to_string()),
            ("users", victim.to_string()),
            // A small read model: an allowed rebuild of it ends at once.
            ("projections", "attachments".to_string()),
        ]);
        // Every area with an `{id}` route gets a fixture; one that cannot be made fails here.
        let comment = app
            .post(
                "/api/v1/comments/",
                &requester.token,
                json!({"ticket_id": ticket, "content": "fixture", "is_internal": false}),
            )
            .await;
        let comment = json_of(comment, StatusCode::CREATED).await;
        by_area.insert("comments", comment["id"].as_str().expect("comment").into());
        // Every caller is an approver: deciding is for approvers, whatever their role.
        let approvers: Vec<&TestUser> = ["requester", "agent", "manager", "admin"]
            .iter()
            .map(|r| &users[*r])
            .collect();
        let approval = request_approval(
            app,
            &users["agent"],
            ticket,
            vec![step("Fixture", &approvers, "any")],
        )
        .await;
        by_area.insert(
            "approvals",
            approval["id"].as_str().expect("approval").into(),
        );
        let upload = crate::attachments::upload(app, requester, ticket, "fixture.txt", b"x").await;
        let attachment = json_of(upload, StatusCode::CREATED).await;
        by_area.insert(
            "attachments",
            attachment["id"].as_str().expect("attachment").into(),
        );
        if path.starts_with("/api/v1/views/{id}") {
            // A personal view of the caller (of an agent for callers without views).
            let owner = match caller.role() {
                Some(role) if role.is_staff() => &users[role.as_str()],
                _ => &users["agent"],
            };
            let view = app
                .post("/api/v1/views/", &owner.token, json!({"name": "Fixture"}))
                .await;
            let view = json_of(view, StatusCode::CREATED).await;
            by_area.insert("views", view["id"].as_i64().expect("view").to_string());
        }
        if path.starts_with("/api/v1/macros/{id}") || path.contains("/macros/{macro_id}") {
            // A personal macro of the caller (of an agent for callers without macros).
            let owner = match caller.role() {
                Some(role) if role.is_staff() => &users[role.as_str()],
                _ => &users["agent"],
            };
            let body = json!({"name": "Fixture", "content": "Hello {{requester.name}}"});
            let m = app.post("/api/v1/macros/", &owner.token, body).await;
            let m = json_of(m, StatusCode::CREATED).await;
            by_area.insert("macros", m["id"].as_i64().expect("macro").to_string());
        }
        if path.starts_with("/api/v1/webhooks/{id}") {
            // A webhook, and a delivery of it to retry.
            let hook = app
                .post(
                    "/api/v1/webhooks/",
                    &users["admin"].token,
                    json!({"url": "https://hooks.example.com/matrix"}),
                )
                .await;
            let hook = json_of(hook, StatusCode::CREATED).await;
            let id = hook["id"].as_i64().expect("webhook");
            let (delivery,): (i64,) = sqlx::query_as(
                "insert into deliveries (channel, event_position, recipient, kind, status)
                 values ('webhook', 1, $1, 'ticket.created', 'failed') returning id",
            )
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .expect("delivery");
            by_area.insert("webhooks", id.to_string());
            by_area.insert("deliveries", delivery.to_string());
        }
        Fixtures {
            by_area,
            ticket,
            item,
            agent: users["agent"].id,
            manager: users["manager"].id,
        }
    }

    /// A value for a path parameter of `path`: the fixture of the area it sits in.
    fn path_value(&self, path: &str, param: &str, schema: &Value, doc: &Value) -> String {
        let before = path
            .split(&format!("{{{param}}}"))
            .next()
            .unwrap_or_default();
        let area = before
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        match self.by_area.get(area) {
            Some(v) => v.clone(),
            None => scalar_text(&example(doc, schema, param, self, 0)),
        }
    }

    /// Values for fields whose meaning the name gives away.
    fn by_name(&self, name: &str) -> Option<Value> {
        Some(match name {
            "ticket_id" => json!(self.ticket),
            "ticket_ids" => json!([self.ticket]),
            "changes" => json!({"add_tags": ["matrix"]}),
            "item_ids" => json!([self.item]),
            "approver_ids" => json!([self.manager]),
            "approvers" => json!([{"user_id": self.manager}]),
            "assignee_id" | "owner_id" | "to_user_id" | "approver_id" | "user_id" => {
                json!(self.agent)
            }
            "email" => json!(format!("matrix-{}@example.com", Uuid::new_v4().simple())),
            "password" | "current_password" => json!(PASSWORD),
            "url" => json!("https://hooks.example.com/matrix"),
            "If-Match" | "if-match" => json!("1"),
            _ => return None,
        })
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or_default();
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// A minimal valid value for `schema`: required properties only, first enum value, one
/// element per array, fixtures for fields named like ids.
fn example(doc: &Value, schema: &Value, name: &str, fx: &Fixtures, depth: usize) -> Value {
    if let Some(v) = fx.by_name(name) {
        return v;
    }
    let schema = resolve(doc, schema);
    if depth > 6 {
        return Value::Null;
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(variants) = schema.get(key).and_then(Value::as_array) {
            let pick = variants
                .iter()
                .find(|v| resolve(doc, v).get("type") != Some(&json!("null")))
                .unwrap_or(&Value::Null);
            return example(doc, pick, name, fx, depth + 1);
        }
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        for p in parts {
            if let Value::Object(o) = example(doc, p, name, fx, depth + 1) {
                merged.extend(o);
            }
        }
        return Value::Object(merged);
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .find(|v| !v.is_null())
            .cloned()
            .unwrap_or(Value::Null);
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_string(),
        _ if schema.get("properties").is_some() => "object".into(),
        _ => "object".into(),
    };
    match ty.as_str() {
        "object" => {
            let mut out = Map::new();
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (prop, s) in props {
                    if required.contains(&prop.as_str()) {
                        out.insert(prop.clone(), example(doc, s, prop, fx, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        "array" => json!([example(doc, &schema["items"], "", fx, depth + 1)]),
        "integer" | "number" => json!(1),
        "boolean" => json!(false),
        "string" => match schema.get("format").and_then(Value::as_str) {
            Some("date-time") => json!(chrono::Utc::now().to_rfc3339()),
            Some("date") => json!(chrono::Utc::now().format("%Y-%m-%d").to_string()),
            Some("uuid") => json!(Uuid::new_v4().to_string()),
            _ => json!("matrix"),
        },
        _ => Value::Null,
    }
}

/// True if the matrix says `rule` hides others' things from `caller` ("own only"), so that
/// a 404 or 422 may be the right answer to an allowed caller.
fn hides_others(rule: &roles::RouteRule, caller: Caller) -> bool {
    let own = rule.note.contains("own") || rule.note.contains("themselves");
    let for_requesters_only = rule.note.starts_with("requesters:");
    own && (caller == Caller::Requester || !for_requesters_only)
}

/// Builds the request for one operation.
fn build(
    app: &TestApp,
    doc: &Value,
    method: &str,
    path: &str,
    op: &Value,
    fx: &Fixtures,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut url = path.to_string();
    let mut query: Vec<(String, String)> = Vec::new();
    let mut headers: Vec<(String, String)> = Vec::new();
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = p["name"].as_str().unwrap_or_default();
        let schema = p.get("schema").cloned().unwrap_or(json!({}));
        match p["in"].as_str() {
            Some("path") => {
                url = url.replace(
                    &format!("{{{name}}}"),
                    &fx.path_value(path, name, &schema, doc),
                )
            }
            // A list filter the route needs (`ticket_id`) is sent even where it is optional.
            Some("query") if p["required"] == true || name == "ticket_id" => query.push((
                name.into(),
                scalar_text(&example(doc, &schema, name, fx, 0)),
            )),
            Some("header") if p["required"] == true || name.eq_ignore_ascii_case("if-match") => {
                headers.push((
                    name.into(),
                    scalar_text(&example(doc, &schema, name, fx, 0)),
                ))
            }
            _ => {}
        }
    }
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut r = app.request(method, &url, token).query(&query);
    for (k, v) in headers {
        r = r.header(k, v);
    }
    let content = &op["requestBody"]["content"];
    if let Some(media) = content.get("application/json") {
        r = r.json(&example(doc, &media["schema"], "", fx, 0));
    } else if let Some(media) = content.get("multipart/form-data") {
        let boundary = "matrixboundary";
        let schema = resolve(doc, &media["schema"]);
        let mut body = String::new();
        for (prop, s) in schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let s = resolve(doc, s);
            if s.get("format").and_then(Value::as_str) == Some("binary")
                || s.get("contentMediaType").is_some()
            {
                body.push_str(&format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{prop}\"; filename=\"matrix.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
                ));
            } else {
                let v = scalar_text(&example(doc, s, prop, fx, 0));
                body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{prop}\"\r\n\r\n{v}\r\n"));
            }
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        r = r
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
    }
    r
}

/// Waits (at most 30 s) until no rebuild runs.
async fn rebuild_finished(app: &TestApp, admin: &TestUser) {
    for _ in 0..300 {
        let list = get_ok(app, admin, "/api/v1/admin/projections").await;
        let running = list
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["rebuild"]["running"] == json!(true));
        if !running {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("a rebuild did not finish within 30 s");
}

#[sqlx::test]
async fn every_route_answers_every_role_as_the_role_matrix_says(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let doc = serde_json::to_value(ticketd::http::openapi()).expect("doc");
    let mut users: HashMap<&'static str, TestUser> = HashMap::new();
    for role in ["requester", "agent", "manager", "admin"] {
        users.insert(
            role,
            app.user(&format!("matrix-{role}@example.com"), role).await,
        );
    }
    let mut failures: Vec<String> = Vec::new();
    let mut checked = 0;
    for (method, path, op) in operations(&doc) {
        let Some(rule) = roles::find(&method, &path) else {
            failures.push(format!(
                "{method} {path}: no rule in tests/api/role_table.rs"
            ));
            continue;
        };
        for caller in Caller::ALL {
            // Fresh for each caller: an allowed DELETE must find its thing still there.
            let fx = Fixtures::create(&app, &users, caller, &path).await;
            let token = caller.role().map(|r| users[r.as_str()].token.clone());
            let response = build(&app, &doc, &method, &path, &op, &fx, token.as_deref())
                .send()
                .await
                .expect("request");
            let status = response.status();
            if path.ends_with("/rebuild") && status == StatusCode::ACCEPTED {
                // The rebuild goes on in the background: let it end before the next route,
                // whose fixtures it would otherwise race.
                rebuild_finished(&app, &users["admin"]).await;
            }
            if path.ends_with("/requester-policy") {
                // An allowed PUT narrows what the next fixture's requester may choose.
                sqlx::query("delete from requester_policy")
                    .execute(&app.pool)
                    .await
                    .expect("reset the requester policy");
            }
            // Streams (SSE, exports) are judged by their status line; don't wait for the body.
            let body = if response.headers().get("content-type").is_some_and(|c| {
                c.to_str()
                    .unwrap_or_default()
                    .starts_with("text/event-stream")
            }) {
                String::new()
            } else {
                response.text().await.unwrap_or_default()
            };
            let missing_token =
                status == StatusCode::UNAUTHORIZED && body.contains("Not authenticated");
            let ok = match (rule.allows(caller), caller) {
                // Public routes may refuse bad credentials (401), never a missing token.
                (true, _) if rule.is_public() => {
                    !missing_token
                        && status != StatusCode::FORBIDDEN
                        && status != StatusCode::METHOD_NOT_ALLOWED
                        && !status.is_server_error()
                }
                // An allowed caller reaches the resource: a 404 or 422 counts only where the
                // matrix says the route hides others' things from this caller.
                (true, _) => {
                    let hidden =
                        [StatusCode::NOT_FOUND, StatusCode::UNPROCESSABLE_ENTITY].contains(&status);
                    ![
                        StatusCode::UNAUTHORIZED,
                        StatusCode::FORBIDDEN,
                        StatusCode::METHOD_NOT_ALLOWED,
                    ]
                    .contains(&status)
                        && !status.is_server_error()
                        && (!hidden || hides_others(rule, caller))
                }
                (false, Caller::Anonymous) => status == StatusCode::UNAUTHORIZED,
                (false, _) => status == StatusCode::FORBIDDEN,
            };
            checked += 1;
            if !ok {
                let expected = match (rule.allows(caller), caller) {
                    (true, _) => "allowed and reaching the resource (not 401/403/404/422)",
                    (false, Caller::Anonymous) => "401",
                    (false, _) => "403",
                };
                let snippet: String = body.chars().take(200).collect();
                failures.push(format!(
                    "{method} {path} as {}: expected {expected}, got {status} {snippet}",
                    caller.label()
                ));
            }
        }
    }
    assert!(
        checked >= 5 * roles::ROUTES.len(),
        "only {checked} calls were checked"
    );
    assert!(
        failures.is_empty(),
        "the server disagrees with the role matrix:\n{}",
        failures.join("\n")
    );
}
