//! Macros: personal and shared, who sees and changes them, placeholders checked when saved,
//! and applying one: its reply and changes are one request, one actor, one time and one
//! transaction, or nothing at all.

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{json_of, TestApp, TestUser};
use crate::steps::{get_ok, locs, move_to, open_ticket, users};

const MACROS: &str = "/api/v1/macros";

async fn save(app: &TestApp, who: &TestUser, body: Value) -> Value {
    json_of(
        app.post(&format!("{MACROS}/"), &who.token, body).await,
        StatusCode::CREATED,
    )
    .await
}

async fn names(app: &TestApp, who: &TestUser) -> Vec<String> {
    let page = get_ok(app, who, &format!("{MACROS}/?size=100")).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

#[sqlx::test]
async fn macros_are_personal_or_shared_and_only_managers_change_shared_ones(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [alex, sam, mia, rita] = users(
        &app,
        [
            ("alex", "agent"),
            ("sam", "agent"),
            ("mia", "manager"),
            ("rita", "requester"),
        ],
    )
    .await;
    let mine = save(
        &app,
        &alex,
        json!({"name": "Alex's thanks", "content": "Thanks!"}),
    )
    .await;
    assert_eq!(mine["owner_id"], json!(alex.id));
    assert_eq!(mine["owner_name"], json!("User alex@example.com"));
    let r = app
        .post(
            &format!("{MACROS}/"),
            &alex.token,
            json!({"name": "Desk", "shared": true}),
        )
        .await;
    json_of(r, StatusCode::FORBIDDEN).await;
    let shared = save(
        &app,
        &mia,
        json!({"name": "Desk reset", "content": "Reset", "shared": true}),
    )
    .await;
    assert_eq!(shared["owner_id"], Value::Null);

    assert_eq!(
        names(&app, &alex).await,
        vec!["Desk reset", "Alex's thanks"]
    );
    assert_eq!(names(&app, &sam).await, vec!["Desk reset"]);
    let alexs = format!("{MACROS}/{}", mine["id"]);
    assert_eq!(
        app.get(&alexs, &sam.token).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&alexs, &sam.token).await.status(),
        StatusCode::NOT_FOUND
    );
    let desk = format!("{MACROS}/{}", shared["id"]);
    let r = app
        .patch(&desk, &alex.token, json!({"name": "Mine now"}))
        .await;
    json_of(r, StatusCode::FORBIDDEN).await;
    let r = app
        .patch(&desk, &mia.token, json!({"name": "Desk restart"}))
        .await;
    assert_eq!(
        json_of(r, StatusCode::OK).await["name"],
        json!("Desk restart")
    );
    assert_eq!(
        app.get(&format!("{MACROS}/"), &rita.token).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&alexs, &alex.token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(names(&app, &alex).await, vec!["Desk restart"]);
}

#[sqlx::test]
async fn a_bad_macro_is_refused_field_by_field_and_nothing_is_saved(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [alex] = users(&app, [("alex", "agent")]).await;
    let r = app
        .post(
            &format!("{MACROS}/"),
            &alex.token,
            json!({"name": " ", "content": "Hi {{customer.name}}",
                "changes": {"assignee_id": "someone", "add_tags": [""]}}),
        )
        .await;
    let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        locs(&body),
        vec![
            json!(["body", "name"]),
            json!(["body", "content"]),
            json!(["body", "changes.assignee_id"]),
            json!(["body", "changes.add_tags"]),
        ]
    );
    let r = app
        .post(
            &format!("{MACROS}/"),
            &alex.token,
            json!({"name": "N", "content": "{{ticket.title"}),
        )
        .await;
    json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    // Changes are an object, never a list.
    let r = app
        .post(
            &format!("{MACROS}/"),
            &alex.token,
            json!({"name": "N", "changes": [null, null]}),
        )
        .await;
    json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(names(&app, &alex).await.is_empty());
    let ok = save(&app, &alex, json!({"name": "Ok"})).await;
    let r = app
        .patch(
            &format!("{MACROS}/{}", ok["id"]),
            &alex.token,
            json!({"changes": [null]}),
        )
        .await;
    json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[sqlx::test]
async fn a_macro_applies_its_reply_and_changes_in_one_request_and_one_transaction(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [rita, alex] = users(&app, [("rita", "requester"), ("alex", "agent")]).await;
    let id = open_ticket(&app, &rita, "Mailbox full").await;
    let m = save(
        &app,
        &alex,
        json!({"name": "Working on it", "content": "Hello {{requester.name}}, {{agent.name}} took ticket {{ticket.id}} ({{ticket.title}}).",
            "changes": {"status": "in_progress", "priority": "high", "assignee_id": "me", "add_tags": ["mail"]}}),
    )
    .await;
    let path = format!("/api/v1/tickets/{id}/macros/{}", m["id"]);
    let r = app.post(&path, &alex.token, json!({})).await;
    let t = json_of(r, StatusCode::OK).await;
    assert_eq!(t["status"], json!("in_progress"));
    assert_eq!(t["priority"], json!("high"));
    assert_eq!(t["assignee_id"], json!(alex.id));
    assert_eq!(t["tags"], json!(["mail"]));
    app.settle().await;
    let comments = get_ok(&app, &rita, &format!("/api/v1/comments/?ticket_id={id}")).await;
    assert_eq!(
        comments["items"][0]["content"],
        json!(format!(
            "Hello User rita@example.com, User alex@example.com took ticket {id} (Mailbox full)."
        ))
    );
    // One request: the events after the opening share one request id, actor and time, and
    // one transaction in the log.
    let history = get_ok(&app, &alex, &format!("/api/v1/tickets/{id}/history")).await;
    let applied: Vec<&Value> = history.as_array().unwrap().iter().skip(1).collect();
    assert!(applied.len() >= 5, "{history}");
    for e in &applied {
        assert_eq!(e["request_id"], applied[0]["request_id"]);
        assert_eq!(e["actor_id"], json!(alex.id));
        assert_eq!(e["data"]["at"], applied[0]["data"]["at"], "{e}");
    }
    let (transactions,): (i64,) = sqlx::query_as(
        "select count(distinct transaction_id::text) from events
          where aggregate_type = 'ticket' and aggregate_id = $1 and sequence > 1",
    )
    .bind(id.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(transactions, 1);

    // A macro whose move is illegal changes nothing, reply included.
    move_to(&app, &alex, id, "resolved").await;
    let closer = save(
        &app,
        &alex,
        json!({"name": "Back to work", "content": "Still on it", "changes": {"status": "pending"}}),
    )
    .await;
    let before = get_ok(&app, &alex, &format!("/api/v1/tickets/{id}")).await;
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/macros/{}", closer["id"]),
            &alex.token,
            json!({}),
        )
        .await;
    json_of(r, StatusCode::CONFLICT).await;
    app.settle().await;
    let after = get_ok(&app, &alex, &format!("/api/v1/tickets/{id}")).await;
    assert_eq!(after["version"], before["version"]);
    let comments = get_ok(&app, &alex, &format!("/api/v1/comments/?ticket_id={id}")).await;
    assert_eq!(comments["total"], json!(1));
    // A stale If-Match is 412.
    let r = app
        .request(reqwest::Method::POST, &path, Some(&alex.token))
        .header("If-Match", "\"1\"")
        .send()
        .await
        .unwrap();
    json_of(r, StatusCode::PRECONDITION_FAILED).await;
}
