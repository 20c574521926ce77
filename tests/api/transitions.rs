//! `allowed_transitions` in ticket responses: the statuses a client may offer next, written
//! out by hand per state (the state machine in README), and narrowed while an approval is
//! pending; a refused move answers 409 with the same list as `allowed`.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{json_of, TestApp, TestUser};

async fn move_to(app: &TestApp, agent: &TestUser, id: i64, status: &str) -> Value {
    let r = app
        .patch(
            &format!("/api/v1/tickets/{id}/status"),
            &agent.token,
            json!({"status": status}),
        )
        .await;
    json_of(r, StatusCode::OK).await
}

async fn fetch(app: &TestApp, who: &TestUser, id: i64) -> Value {
    let r = app.get(&format!("/api/v1/tickets/{id}"), &who.token).await;
    json_of(r, StatusCode::OK).await
}

/// Asserts the status and `allowed_transitions` of a response and of a fresh GET.
async fn assert_allowed(app: &TestApp, who: &TestUser, answered: &Value, allowed: &[&str]) {
    let status = &answered["status"];
    assert_eq!(answered["allowed_transitions"], json!(allowed), "{status}");
    let id = answered["id"].as_i64().unwrap();
    let got = fetch(app, who, id).await;
    assert_eq!(&got["status"], status);
    assert_eq!(
        got["allowed_transitions"],
        json!(allowed),
        "GET at {status}"
    );
}

#[sqlx::test]
async fn each_state_offers_exactly_its_next_states(pool: sqlx::PgPool) {
    let app = TestApp::spawn(pool).await;
    let agent = app.user("agent@example.com", "agent").await;
    let requester = app.user("req@example.com", "requester").await;
    let opened = app.ticket(&requester, "Walks the state machine").await;
    assert_eq!(opened["status"], "open");
    assert_allowed(&app, &requester, &opened, &["in_progress", "cancelled"]).await;
    let id = opened["id"].as_i64().unwrap();
    for (status, allowed) in [
        ("in_progress", &["pending", "resolved", "cancelled"][..]),
        ("pending", &["in_progress", "resolved", "cancelled"]),
        ("resolved", &["closed", "open", "cancelled"]),
        ("open", &["in_progress", "cancelled"]),
        ("in_progress", &["pending", "resolved", "cancelled"]),
        ("resolved", &["closed", "open", "cancelled"]),
        ("closed", &[]),
    ] {
        let answered = move_to(&app, &agent, id, status).await;
        assert_eq!(answered["status"], status);
        assert_allowed(&app, &agent, &answered, allowed).await;
    }
    let other = app.ticket(&requester, "Given up").await["id"]
        .as_i64()
        .unwrap();
    let cancelled = move_to(&app, &agent, other, "cancelled").await;
    assert_allowed(&app, &agent, &cancelled, &[]).await;
}

#[sqlx::test]
async fn a_refused_move_answers_409_with_the_allowed_list(pool: sqlx::PgPool) {
    let app = TestApp::spawn(pool).await;
    let agent = app.user("agent@example.com", "agent").await;
    let id = app.ticket(&agent, "Not so fast").await["id"]
        .as_i64()
        .unwrap();
    let r = app
        .patch(
            &format!("/api/v1/tickets/{id}/status"),
            &agent.token,
            json!({"status": "closed"}),
        )
        .await;
    let body = json_of(r, StatusCode::CONFLICT).await;
    assert_eq!(body["code"], "CONFLICT");
    assert_eq!(
        body["allowed"],
        json!(["in_progress", "cancelled"]),
        "{body}"
    );
}

#[sqlx::test]
async fn a_pending_approval_holds_back_work_and_resolution(pool: sqlx::PgPool) {
    let app = TestApp::spawn(pool).await;
    let agent = app.user("agent@example.com", "agent").await;
    let boss = app.user("boss@example.com", "manager").await;
    let open = app.ticket(&agent, "Needs a yes").await["id"]
        .as_i64()
        .unwrap();
    let working = app.ticket(&agent, "Needs a yes too").await["id"]
        .as_i64()
        .unwrap();
    move_to(&app, &agent, working, "in_progress").await;
    let mut approvals = Vec::new();
    for id in [open, working] {
        let r = app
            .post(
                "/api/v1/approvals",
                &agent.token,
                json!({"ticket_id": id, "steps": [{"name": "Manager", "approver_ids": [boss.id], "rule": "any"}]}),
            )
            .await;
        approvals.push(json_of(r, StatusCode::CREATED).await);
    }
    app.settle().await;
    for (id, allowed) in [
        (open, &["cancelled"][..]),
        (working, &["pending", "cancelled"]),
    ] {
        let held = fetch(&app, &agent, id).await;
        assert_eq!(held["approval_status"], "pending");
        assert_eq!(
            held["allowed_transitions"],
            json!(allowed),
            "{}",
            held["status"]
        );
    }
    // Approved: the full lists again.
    for approval in &approvals {
        let r = app
            .post(
                &format!(
                    "/api/v1/approvals/{}/decisions",
                    approval["id"].as_str().unwrap()
                ),
                &boss.token,
                json!({"decision": "approve", "comment": "fine"}),
            )
            .await;
        json_of(r, StatusCode::OK).await;
    }
    app.settle().await;
    for (id, allowed) in [
        (open, &["in_progress", "cancelled"][..]),
        (working, &["pending", "resolved", "cancelled"]),
    ] {
        let freed = fetch(&app, &agent, id).await;
        assert_eq!(freed["approval_status"], "approved");
        assert_eq!(
            freed["allowed_transitions"],
            json!(allowed),
            "{}",
            freed["status"]
        );
    }
}
