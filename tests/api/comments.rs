//! `/api/v1/comments`: internal notes, edits, deletes, threads, mentions, search.

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{json_of, TestApp, TestUser};
use crate::steps::{get_ok, move_to, open_ticket, ticket_of, users};

async fn comment(app: &TestApp, user: &TestUser, body: Value) -> Value {
    json_of(
        app.post("/api/v1/comments/", &user.token, body).await,
        StatusCode::CREATED,
    )
    .await
}

async fn list(app: &TestApp, user: &TestUser, ticket: i64) -> Vec<Value> {
    let page = get_ok(app, user, &format!("/api/v1/comments/?ticket_id={ticket}")).await;
    page["items"].as_array().cloned().unwrap_or_default()
}

async fn search_ids(app: &TestApp, user: &TestUser, q: &str) -> Vec<i64> {
    let page = get_ok(app, user, &format!("/api/v1/tickets/search?q={q}")).await;
    page["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|t| t["id"].as_i64()).collect())
        .unwrap_or_default()
}

async fn events_of(app: &TestApp, ticket: i64, event_type: &str) -> Vec<Value> {
    let mut rows: Vec<(Value,)> = sqlx::query_as(
        "select payload from events where aggregate_type = 'ticket' and aggregate_id = $1
            and event_type = $2 order by sequence",
    )
    .bind(ticket.to_string())
    .bind(event_type)
    .fetch_all(&app.pool)
    .await
    .expect("events");
    // Personal text is stored sealed; the log reader opens it.
    let mut opened: Vec<&mut Value> = rows.iter_mut().map(|(p,)| p).collect();
    projections::log::open_values(&app.pool, &mut opened)
        .await
        .expect("opened");
    rows.into_iter().map(|(p,)| p[event_type].clone()).collect()
}

#[sqlx::test]
async fn a_requester_can_neither_write_nor_read_internal_notes_not_even_through_search(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let [req, other, agent] = users(
        &app,
        [
            ("req", "requester"),
            ("other", "requester"),
            ("agent", "agent"),
        ],
    )
    .await;
    let ticket = open_ticket(&app, &req, "Laptop will not boot").await;

    let note = comment(
        &app,
        &agent,
        json!({"ticket_id": ticket, "content": "zebracrossing: reimage it", "is_internal": true}),
    )
    .await;
    assert_eq!(note["is_internal"], true);
    let public = comment(
        &app,
        &agent,
        json!({"ticket_id": ticket, "content": "giraffe reply for you", "is_internal": false}),
    )
    .await;

    // Writing one: 403, and nothing recorded.
    let r = app
        .post(
            "/api/v1/comments/",
            &req.token,
            json!({"ticket_id": ticket, "content": "let me in", "is_internal": true}),
        )
        .await;
    assert_eq!(
        json_of(r, StatusCode::FORBIDDEN).await["code"],
        "PERMISSION_ERROR"
    );
    assert_eq!(events_of(&app, ticket, "CommentAdded").await.len(), 2);

    app.settle().await;
    // Lists: the requester sees the public reply only; the agent sees both.
    let seen: Vec<Value> = list(&app, &req, ticket)
        .await
        .iter()
        .map(|c| c["id"].clone())
        .collect();
    assert_eq!(seen, vec![public["id"].clone()]);
    assert_eq!(list(&app, &agent, ticket).await.len(), 2);
    // Direct reads, edits and deletes of the note: 404 for the requester.
    let path = format!("/api/v1/comments/{}", note["id"].as_str().expect("id"));
    assert_eq!(
        app.get(&path, &req.token).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.patch(&path, &req.token, json!({"content": "x"}))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&path, &req.token).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get(&path, &agent.token).await.status(), StatusCode::OK);

    // Search: internal text is in nobody's search document, public text is.
    assert!(search_ids(&app, &req, "zebracrossing").await.is_empty());
    assert!(search_ids(&app, &agent, "zebracrossing").await.is_empty());
    assert_eq!(search_ids(&app, &req, "giraffe").await, vec![ticket]);

    // Another requester: the ticket's conversation does not exist for them.
    let r = app
        .get(
            &format!("/api/v1/comments/?ticket_id={ticket}"),
            &other.token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .post(
            "/api/v1/comments/",
            &other.token,
            json!({"ticket_id": ticket, "content": "hi"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let public_path = format!("/api/v1/comments/{}", public["id"].as_str().expect("id"));
    assert_eq!(
        app.get(&public_path, &other.token).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test]
async fn an_edit_keeps_the_previous_text_in_the_event_log_and_search_follows_the_current_text(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let [req, agent] = users(&app, [("req", "requester"), ("agent", "agent")]).await;
    let ticket = open_ticket(&app, &req, "Printer trouble").await;
    let c = comment(
        &app,
        &req,
        json!({"ticket_id": ticket, "content": "it smells of smoke"}),
    )
    .await;
    let same = comment(
        &app,
        &agent,
        json!({"ticket_id": ticket, "content": "it smells of smoke"}),
    )
    .await;
    let path = format!("/api/v1/comments/{}", c["id"].as_str().expect("id"));

    let r = app
        .patch(
            &path,
            &req.token,
            json!({"content": "now it works, thanks"}),
        )
        .await;
    assert!(
        r.headers().get("x-consistency-token").is_some(),
        "{:?}",
        r.status()
    );
    let edited = json_of(r, StatusCode::OK).await;
    assert_eq!(edited["content"], "now it works, thanks");
    assert_eq!(edited["edited"], true);
    let edits = events_of(&app, ticket, "CommentEdited").await;
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0]["previous_content"], "it smells of smoke");
    assert_eq!(edits[0]["content"], "now it works, thanks");

    // Only the author or staff may change a comment.
    let agents_path = format!("/api/v1/comments/{}", same["id"].as_str().expect("id"));
    let r = app
        .patch(&agents_path, &req.token, json!({"content": "mine now"}))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .patch(
            &path,
            &agent.token,
            json!({"content": "now it works, thanks!"}),
        )
        .await;
    assert_eq!(
        json_of(r, StatusCode::OK).await["content"],
        "now it works, thanks!"
    );
    let r = app.patch(&path, &req.token, json!({"content": "  "})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    app.settle().await;
    let got = get_ok(&app, &req, &path).await;
    assert_eq!(got["content"], "now it works, thanks!");
    assert_eq!(got["edited"], true);
    // The other comment with the same old words is still searchable; after the edit only it is.
    assert_eq!(search_ids(&app, &req, "works").await, vec![ticket]);
    assert_eq!(search_ids(&app, &req, "smoke").await, vec![ticket]);

    // Delete: a tombstone in the log; gone from the list, the lookup and the search document.
    let r = app.delete(&agents_path, &agent.token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(events_of(&app, ticket, "CommentDeleted").await.len(), 1);
    app.settle().await;
    assert!(search_ids(&app, &req, "smoke").await.is_empty());
    assert_eq!(search_ids(&app, &req, "works").await, vec![ticket]);
    assert_eq!(
        app.get(&agents_path, &agent.token).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(list(&app, &agent, ticket).await.len(), 1);
    let r = app.delete(&agents_path, &agent.token).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test]
async fn replies_thread_under_their_parent_and_stay_when_it_is_deleted(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [req, agent] = users(&app, [("req", "requester"), ("agent", "agent")]).await;
    let ticket = open_ticket(&app, &req, "VPN").await;
    let elsewhere = open_ticket(&app, &req, "Other").await;

    // An internal note is no first response; the first public agent reply is.
    comment(
        &app,
        &agent,
        json!({"ticket_id": ticket, "content": "checking logs", "is_internal": true}),
    )
    .await;
    let t = get_ok(&app, &req, &format!("/api/v1/tickets/{ticket}")).await;
    assert!(t["first_response_at"].is_null());

    let root = comment(
        &app,
        &req,
        json!({"ticket_id": ticket, "content": "Still broken"}),
    )
    .await;
    let reply = comment(
        &app,
        &agent,
        json!({"ticket_id": ticket, "content": "Try again now", "parent_id": root["id"]}),
    )
    .await;
    assert_eq!(reply["parent_id"], root["id"]);
    let nested = comment(
        &app,
        &req,
        json!({"ticket_id": ticket, "content": "Works!", "parent_id": reply["id"]}),
    )
    .await;
    assert_eq!(nested["parent_id"], reply["id"]);
    let t = get_ok(&app, &req, &format!("/api/v1/tickets/{ticket}")).await;
    assert!(t["first_response_at"].is_string());
    assert_eq!(
        events_of(&app, ticket, "FirstResponseRecorded").await.len(),
        1
    );

    // A parent on another ticket, or one that does not exist: 422, nothing stored.
    for parent in [root["id"].clone(), json!(uuid::Uuid::new_v4())] {
        let r = app
            .post(
                "/api/v1/comments/",
                &req.token,
                json!({"ticket_id": elsewhere, "content": "x", "parent_id": parent}),
            )
            .await;
        let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["detail"][0]["loc"], json!(["body", "parent_id"]));
    }
    assert!(events_of(&app, elsewhere, "CommentAdded").await.is_empty());

    // Deleting the root leaves the replies threaded under it.
    let r = app
        .delete(
            &format!("/api/v1/comments/{}", root["id"].as_str().expect("id")),
            &req.token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    app.settle().await;
    let items = list(&app, &req, ticket).await;
    let pairs: Vec<(Value, Value)> = items
        .iter()
        .map(|c| (c["id"].clone(), c["parent_id"].clone()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (reply["id"].clone(), root["id"].clone()),
            (nested["id"].clone(), reply["id"].clone())
        ]
    );
    // New replies to a deleted comment are refused.
    let r = app
        .post(
            "/api/v1/comments/",
            &req.token,
            json!({"ticket_id": ticket, "content": "x", "parent_id": root["id"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[sqlx::test]
async fn mentions_resolve_to_users_who_can_read_the_comment_and_are_recorded_on_the_event(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let [req, stranger, agent, lead] = users(
        &app,
        [
            ("req", "requester"),
            ("stranger", "requester"),
            ("agent", "agent"),
            ("lead", "manager"),
        ],
    )
    .await;
    let ticket = open_ticket(&app, &req, "Mentions").await;

    let text = format!(
        "@Req@Example.com and @{} please; not @stranger@example.com, @nobody@example.com or mail lead@example.com",
        lead.id
    );
    let c = comment(&app, &agent, json!({"ticket_id": ticket, "content": text})).await;
    assert_eq!(c["mentions"], json!([req.id, lead.id]));
    let note = comment(&app, &agent, json!({"ticket_id": ticket, "content": "@req@example.com @lead@example.com", "is_internal": true})).await;
    assert_eq!(note["mentions"], json!([lead.id]));
    let added = events_of(&app, ticket, "CommentAdded").await;
    assert_eq!(added[0]["mentions"], json!([req.id, lead.id]));
    assert_eq!(added[1]["mentions"], json!([lead.id]));
    let _ = stranger;
}

#[sqlx::test]
async fn a_reply_with_set_status_moves_the_ticket_in_the_same_command_or_not_at_all(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [ann, agent] = users(&app, [("ann", "requester"), ("ag", "agent")]).await;
    let id = open_ticket(&app, &ann, "Toner empty").await;
    move_to(&app, &agent, id, "in_progress").await;

    // Reply and resolve: one command, both events in one transaction, the version after both.
    let reply = comment(
        &app,
        &agent,
        json!({"ticket_id": id, "content": "New toner is in", "set_status": "resolved",
               "reason": "Replaced the toner"}),
    )
    .await;
    assert_eq!(reply["content"], "New toner is in");
    let ticket = ticket_of(&app, &agent, id).await;
    assert_eq!(ticket["status"], "resolved");
    assert_eq!(reply["ticket_version"], ticket["version"]);
    let (txids,): (i64,) = sqlx::query_as(
        "select count(distinct transaction_id) from events
          where aggregate_type = 'ticket' and aggregate_id = $1
            and (event_type = 'CommentAdded'
                 or payload -> 'TicketStatusChanged' ->> 'to' = 'resolved')",
    )
    .bind(id.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(txids, 1, "the reply and the move are one command");

    // A move the state machine refuses refuses the reply: 409 and no comment.
    let refused = app
        .post(
            "/api/v1/comments/",
            &agent.token,
            json!({"ticket_id": id, "content": "Back to work", "set_status": "in_progress"}),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert_eq!(
        events_of(&app, id, "CommentAdded").await.len(),
        1,
        "only the first reply"
    );

    // Requesters may reply and close (their ticket is resolved), but not reply and resolve.
    let other = open_ticket(&app, &ann, "Second").await;
    let forbidden = app
        .post(
            "/api/v1/comments/",
            &ann.token,
            json!({"ticket_id": other, "content": "Done", "set_status": "resolved"}),
        )
        .await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert!(events_of(&app, other, "CommentAdded").await.is_empty());
    let closed = comment(
        &app,
        &ann,
        json!({"ticket_id": id, "content": "Thanks, works", "set_status": "closed"}),
    )
    .await;
    assert_eq!(closed["content"], "Thanks, works");
    assert_eq!(ticket_of(&app, &ann, id).await["status"], "closed");
}

#[sqlx::test]
async fn markdown_is_stored_as_written_and_rendered_without_anything_that_runs(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [rita, alex] = crate::steps::users(&app, [("rita", "requester"), ("alex", "agent")]).await;
    let id = crate::steps::open_ticket(&app, &rita, "Markdown").await;
    let text = "**Fixed** in [the docs](https://example.com/a) and [this](javascript:alert(1))\n\n\
                <script>alert(1)</script>\n\n<img src=x onerror=\"alert(1)\"> <a href=\"#\" onclick=\"x()\">c</a>";
    let r = app
        .post(
            "/api/v1/comments/",
            &alex.token,
            serde_json::json!({"ticket_id": id, "content": text}),
        )
        .await;
    let created = json_of(r, StatusCode::CREATED).await;
    app.settle().await;
    let listed =
        crate::steps::get_ok(&app, &rita, &format!("/api/v1/comments/?ticket_id={id}")).await;
    for c in [&created, &listed["items"][0]] {
        assert_eq!(c["content"], serde_json::json!(text), "stored as written");
        let html = c["content_html"].as_str().unwrap();
        assert!(html.contains("<strong>Fixed</strong>"), "{html}");
        assert!(html.contains("href=\"https://example.com/a\""), "{html}");
        assert!(
            html.contains("rel=\"noopener noreferrer nofollow\""),
            "{html}"
        );
        for bad in ["<script", "javascript:", "onerror", "onclick"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
    }
}
