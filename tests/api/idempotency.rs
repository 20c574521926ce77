//! `Idempotency-Key` on POSTs: a repeat answers the first answer and changes nothing, a
//! different body under the same key is 422, a race creates one resource, and a request whose
//! answer was lost after its write committed is answered from what it wrote.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use ticketd::service::idempotency::request_hash;

use crate::helpers::{json_of, TestApp, TestUser};
use crate::steps::{open_ticket, request_approval, users};

const TICKET: &str = "/api/v1/tickets/";

fn new_ticket(title: &str) -> Value {
    json!({"title": title, "description": "details", "priority": "high", "type": "incident"})
}

/// POSTs `body` to `path` as `who` under `key`; the status, `Location`, `ETag` and body.
async fn post_keyed(
    app: &TestApp,
    who: &TestUser,
    path: &str,
    key: &str,
    body: &Value,
) -> (StatusCode, Option<String>, Option<String>, Value) {
    let r = app
        .request(Method::POST, path, Some(&who.token))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("request");
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (location, etag) = (header("location"), header("etag"));
    let status = r.status();
    let text = r.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
    (status, location, etag, body)
}

/// Leaves `who`'s claim of `key` for creating a ticket from `body` in flight, as a process
/// that died five minutes ago would: with its request id and the transaction id (`since_txid`,
/// an SQL expression) from which its writes would be found.
async fn claim_left_in_flight(
    app: &TestApp,
    who: &TestUser,
    key: &str,
    body: &Value,
    request_id: &str,
    since_txid: &str,
) {
    let body = serde_json::to_vec(body).unwrap();
    let hash = request_hash("POST", "/api/v1/tickets", "application/json", &body);
    sqlx::query(&format!(
        "insert into idempotency_keys (user_id, key, request_hash, request_id, since_txid, created_at)
         values ($1, $2, $3, $4, {since_txid}, now() - interval '5 minutes')"
    ))
    .bind(who.id)
    .bind(key)
    .bind(&hash)
    .bind(request_id)
    .execute(&app.pool)
    .await
    .unwrap();
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&app.pool).await.unwrap();
    n
}

/// How many events of `event_type` the log holds.
async fn events_of_type(app: &TestApp, event_type: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("select count(*) from events where event_type = $1")
        .bind(event_type)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    n
}

async fn tickets_opened(app: &TestApp) -> i64 {
    events_of_type(app, "TicketOpened").await
}

/// POSTs `body` twice under one key: the repeat must answer exactly what the first did
/// (status, `Location`, `ETag`, body). The first answer.
async fn post_twice(
    app: &TestApp,
    who: &TestUser,
    path: &str,
    key: &str,
    body: &Value,
) -> (StatusCode, Option<String>, Option<String>, Value) {
    let first = post_keyed(app, who, path, key, body).await;
    let again = post_keyed(app, who, path, key, body).await;
    assert_eq!(
        again, first,
        "the repeat answers status, Location, ETag and body again"
    );
    first
}

#[sqlx::test]
async fn the_same_key_twice_creates_one_ticket_and_answers_the_same_twice(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [ann] = users(&app, [("ann", "requester")]).await;
    let body = new_ticket("Printer on fire");
    let first = post_twice(&app, &ann, TICKET, "create-1", &body).await;
    assert_eq!(first.0, StatusCode::CREATED, "{:?}", first.3);
    assert!(first.1.is_some() && first.2.is_some());
    assert_eq!(tickets_opened(&app).await, 1);

    // A new key is a new ticket; the same key from another user is that user's own key.
    let other = post_keyed(&app, &ann, TICKET, "create-2", &body).await;
    assert_eq!(other.0, StatusCode::CREATED);
    assert_ne!(other.3["id"], first.3["id"]);
    let [bea] = users(&app, [("bea", "requester")]).await;
    let beas = post_keyed(&app, &bea, TICKET, "create-1", &body).await;
    assert_eq!(beas.0, StatusCode::CREATED);
    assert_eq!(beas.3["requester_id"], bea.id);
    assert_eq!(tickets_opened(&app).await, 3);
}

#[sqlx::test]
async fn a_different_body_under_a_used_key_is_422_and_changes_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [ann] = users(&app, [("ann", "requester")]).await;
    let first = post_keyed(&app, &ann, TICKET, "k", &new_ticket("One")).await;
    assert_eq!(first.0, StatusCode::CREATED);
    let other = post_keyed(&app, &ann, TICKET, "k", &new_ticket("Two")).await;
    assert_eq!(other.0, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", other.3);
    assert_eq!(
        other.3["detail"][0]["loc"],
        json!(["header", "Idempotency-Key"])
    );
    assert_eq!(tickets_opened(&app).await, 1);
}

#[sqlx::test]
async fn a_key_older_than_a_day_is_free_again(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [ann] = users(&app, [("ann", "requester")]).await;
    let first = post_keyed(&app, &ann, TICKET, "daily", &new_ticket("Monday")).await;
    assert_eq!(first.0, StatusCode::CREATED);
    sqlx::query("update idempotency_keys set created_at = now() - interval '25 hours'")
        .execute(&app.pool)
        .await
        .unwrap();
    let next_day = post_keyed(&app, &ann, TICKET, "daily", &new_ticket("Tuesday")).await;
    assert_eq!(next_day.0, StatusCode::CREATED, "{:?}", next_day.3);
    assert_ne!(next_day.3["id"], first.3["id"]);
}

#[sqlx::test]
async fn keys_that_are_empty_too_long_or_not_visible_ascii_are_422(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [ann] = users(&app, [("ann", "requester")]).await;
    for key in [String::new(), "k".repeat(256), "two words".into()] {
        let r = post_keyed(&app, &ann, TICKET, &key, &new_ticket("Bad key")).await;
        assert_eq!(
            r.0,
            StatusCode::UNPROCESSABLE_ENTITY,
            "key {key:?}: {:?}",
            r.3
        );
    }
    let longest = post_keyed(&app, &ann, TICKET, &"k".repeat(255), &new_ticket("Ok")).await;
    assert_eq!(longest.0, StatusCode::CREATED);
    assert_eq!(tickets_opened(&app).await, 1);
}

#[sqlx::test]
async fn racing_requests_under_one_key_create_one_ticket_and_answer_alike(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [ann] = users(&app, [("ann", "requester")]).await;
    let body = new_ticket("Race");
    let answers =
        futures::future::join_all((0..6).map(|_| post_keyed(&app, &ann, TICKET, "race", &body)))
            .await;
    for a in &answers {
        assert_eq!(a, &answers[0], "every racer gets the first answer");
    }
    assert_eq!(answers[0].0, StatusCode::CREATED);
    assert_eq!(tickets_opened(&app).await, 1);
}

#[sqlx::test]
async fn a_refused_request_gives_its_key_back(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [ann] = users(&app, [("ann", "requester")]).await;
    let refused = post_keyed(&app, &ann, TICKET, "fix", &json!({"title": ""})).await;
    assert_eq!(refused.0, StatusCode::UNPROCESSABLE_ENTITY);
    // The corrected request under the same key runs.
    let fixed = post_keyed(&app, &ann, TICKET, "fix", &new_ticket("Now with a title")).await;
    assert_eq!(fixed.0, StatusCode::CREATED, "{:?}", fixed.3);
    assert_eq!(tickets_opened(&app).await, 1);
}

#[sqlx::test]
async fn a_create_whose_answer_was_lost_is_answered_from_what_it_wrote(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [ann] = users(&app, [("ann", "requester")]).await;
    let body = new_ticket("Saved, answer lost");
    // The first request committed its ticket, then its process died before it answered: its
    // claim is left in flight, and only its events (with its request id) tell what it did.
    let r = app
        .request(Method::POST, TICKET, Some(&ann.token))
        .header("x-request-id", "lost-answer-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    let saved = json_of(r, StatusCode::CREATED).await;
    claim_left_in_flight(&app, &ann, "lost", &body, "lost-answer-1", "'0'::xid8").await;

    let retry = post_keyed(&app, &ann, TICKET, "lost", &body).await;
    assert_eq!(retry.0, StatusCode::CREATED, "{:?}", retry.3);
    assert_eq!(
        retry.3["id"], saved["id"],
        "the retry answers the saved ticket"
    );
    assert_eq!(
        retry.1.as_deref(),
        Some(format!("/api/v1/tickets/{}", saved["id"]).as_str())
    );
    assert_eq!(tickets_opened(&app).await, 1, "nothing was created twice");
}

#[sqlx::test]
async fn an_abandoned_claim_that_wrote_nothing_runs_again(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [ann] = users(&app, [("ann", "requester")]).await;
    let body = new_ticket("Never saved");
    let now = "pg_snapshot_xmin(pg_current_snapshot())";
    claim_left_in_flight(&app, &ann, "died", &body, "died-1", now).await;
    let retry = post_keyed(&app, &ann, TICKET, "died", &body).await;
    assert_eq!(retry.0, StatusCode::CREATED, "{:?}", retry.3);
    assert_eq!(tickets_opened(&app).await, 1);
}

#[sqlx::test]
async fn comments_and_approval_decisions_replay_too(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [ann, agent, boss] = users(
        &app,
        [("ann", "requester"), ("ag", "agent"), ("boss", "manager")],
    )
    .await;
    let id = open_ticket(&app, &ann, "Need a laptop").await;
    let reply = json!({"ticket_id": id, "content": "On it", "is_internal": false});
    let first = post_twice(&app, &agent, "/api/v1/comments/", "c1", &reply).await;
    assert_eq!(first.0, StatusCode::CREATED, "{:?}", first.3);
    assert_eq!(events_of_type(&app, "CommentAdded").await, 1);

    let steps = vec![json!({"name": "Manager", "approver_ids": [boss.id], "rule": "any"})];
    let approval = request_approval(&app, &agent, id, steps).await;
    let path = format!(
        "/api/v1/approvals/{}/decisions",
        approval["id"].as_str().unwrap()
    );
    let decision = json!({"decision": "approve"});
    // The repeat answers the decision again, not 409 "already decided".
    let first = post_twice(&app, &boss, &path, "d1", &decision).await;
    assert_eq!(first.0, StatusCode::OK, "{:?}", first.3);
    assert_eq!(first.3["status"], "approved");
    assert_eq!(events_of_type(&app, "DecisionRecorded").await, 1);
}

#[sqlx::test]
async fn sign_in_ignores_the_key_so_tokens_are_never_handed_out_twice(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [ann] = users(&app, [("ann", "requester")]).await;
    let login = json!({"email": ann.email, "password": crate::helpers::PASSWORD});
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let r = app
            .request(Method::POST, "/api/v1/auth/login", None)
            .header("idempotency-key", "login")
            .json(&login)
            .send()
            .await
            .unwrap();
        tokens.push(json_of(r, StatusCode::OK).await["refresh_token"].clone());
    }
    assert_ne!(tokens[0], tokens[1]);
    assert_eq!(
        count(&app, "select count(*) from idempotency_keys").await,
        0
    );
}
