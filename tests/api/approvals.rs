//! `/api/v1/approvals`: requests, decisions in order under each rule, delegation, cancelling,
//! visibility, the inbox, the change request policy, and the process manager that keeps
//! tickets in line (exactly once across crashes, replays and rebuilds).

use aggregates::approval::{ApprovalCommand, Decision};
use chrono::Utc;
use projections::runtime::RuntimeConfig;
use projections::{Projection, Runtime, Tables};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, PgPool};
use ticketd::service::executor::Actor;

use crate::helpers::{json_of, TestApp, TestUser};
use crate::steps::{
    approve, cancel, deactivate, delegate, get_ok, locs, move_to, open_ticket, open_ticket_with,
    quorum, reject, request_approval, requester_agent_and_boss, step, ticket_of, try_cancel,
    try_decide, try_delegate, try_move_to, try_request_approval, users, with_role, APPROVALS,
};

/// The approval states recorded on a ticket, in order.
async fn recorded(pool: &PgPool, ticket_id: i64) -> Vec<String> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "select payload -> 'ApprovalRecorded' ->> 'status' from events
          where aggregate_type = 'ticket' and aggregate_id = $1 and event_type = 'ApprovalRecorded'
          order by sequence",
    )
    .bind(ticket_id.to_string())
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter().map(|(s,)| s).collect()
}

async fn ticket_events(pool: &PgPool) -> i64 {
    let (n,): (i64,) =
        sqlx::query_as("select count(*) from events where aggregate_type = 'ticket'")
            .fetch_one(pool)
            .await
            .unwrap();
    n
}

/// The caller's inbox as (approval id, current step) pairs.
async fn inbox(app: &TestApp, who: &TestUser) -> Vec<(String, i64)> {
    let page = get_ok(app, who, &format!("{APPROVALS}/?mine=true")).await;
    assert_eq!(page["total"], page["items"].as_array().unwrap().len());
    let mut items: Vec<(String, i64)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["current_step"].as_i64().unwrap(),
            )
        })
        .collect();
    items.sort();
    items
}

fn entry(approval: &Value, step: i64) -> (String, i64) {
    (approval["id"].as_str().unwrap().to_string(), step)
}

#[sqlx::test]
async fn a_pending_approval_blocks_work_until_it_is_granted(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [req, agent, boss] = requester_agent_and_boss(&app).await;
    let id = open_ticket(&app, &req, "Open port 443").await;

    let r = app
        .post(
            APPROVALS,
            &agent.token,
            json!({"ticket_id": id, "steps": [step("Manager", &[&boss], "any")], "reason": "Firewall change"}),
        )
        .await;
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(r.headers().get("x-consistency-token").is_some());
    let approval = json_of(r, StatusCode::CREATED).await;
    assert_eq!(
        location,
        format!("{APPROVALS}/{}", approval["id"].as_str().unwrap())
    );
    assert_eq!(approval["status"], "pending");
    assert_eq!(approval["ticket_id"], id);
    assert_eq!(approval["current_step"], 0);
    assert_eq!(approval["requested_by"], agent.id);
    assert_eq!(approval["reason"], "Firewall change");
    assert_eq!(approval["steps"][0]["status"], "pending");
    assert_eq!(approval["steps"][0]["rule"], "any");
    assert_eq!(approval["steps"][0]["approver_ids"], json!([boss.id]));
    assert_eq!(approval["steps"][0]["decisions"], json!([]));
    assert_eq!(approval["waiting_on"], json!([boss.id]));
    app.settle().await;

    assert_eq!(
        ticket_of(&app, &agent, id).await["approval_status"],
        "pending"
    );
    let body = json_of(
        try_move_to(&app, &agent, id, "in_progress").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(body["code"], "CONFLICT");
    assert!(
        body["detail"].as_str().unwrap().contains("approval"),
        "{body}"
    );
    // The list shows it too.
    let list = get_ok(&app, &agent, "/api/v1/tickets/?approval_status=pending").await;
    assert_eq!(list["items"][0]["id"], id);

    let r = try_decide(&app, &boss, &approval, "approve").await;
    let decided = json_of(r, StatusCode::OK).await;
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["steps"][0]["status"], "approved");
    let decision = &decided["steps"][0]["decisions"][0];
    assert_eq!(decision["approver_id"], boss.id);
    assert_eq!(decision["decision"], "approve");
    assert_eq!(decision["comment"], "approve by boss@example.com");
    assert!(decision["decided_at"].is_string());
    assert!(decided["finished_at"].is_string());
    app.settle().await;

    assert_eq!(
        ticket_of(&app, &agent, id).await["approval_status"],
        "approved"
    );
    let moved = move_to(&app, &agent, id, "in_progress").await;
    assert_eq!(moved["status"], "in_progress");
    assert_eq!(recorded(&pool, id).await, vec!["pending", "approved"]);
    // A second decision on a finished approval is a conflict.
    assert_eq!(
        try_decide(&app, &boss, &approval, "approve").await.status(),
        StatusCode::CONFLICT
    );
}

#[sqlx::test]
async fn cancelling_or_deleting_a_ticket_cancels_its_pending_approval(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [req, agent, boss] = requester_agent_and_boss(&app).await;
    let approval_of = |id: &Value| id["id"].as_str().unwrap().to_string();
    let mut pending = Vec::new();
    for title in ["New laptop", "New phone", "Granted already"] {
        let id = open_ticket(&app, &req, title).await;
        let approval =
            request_approval(&app, &agent, id, vec![step("Manager", &[&boss], "any")]).await;
        pending.push((id, approval));
    }
    let granted = &pending[2].1;
    approve(&app, granted, &boss).await;
    app.settle().await;
    assert_eq!(inbox(&app, &boss).await.len(), 2);

    // Cancelled by the agent, deleted by its requester, and the decided one cancelled too.
    move_to(&app, &agent, pending[0].0, "cancelled").await;
    let r = app
        .delete(&format!("/api/v1/tickets/{}", pending[1].0), &req.token)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    move_to(&app, &agent, pending[2].0, "cancelled").await;
    app.settle().await;
    app.settle().await;

    let status_of = |approval: &Value| {
        let app = &app;
        let agent = &agent;
        let path = format!("{APPROVALS}/{}", approval_of(approval));
        async move { get_ok(app, agent, &path).await["status"].clone() }
    };
    assert_eq!(status_of(&pending[0].1).await, "cancelled");
    assert_eq!(status_of(&pending[1].1).await, "cancelled");
    assert_eq!(
        status_of(&pending[2].1).await,
        "approved",
        "a decided approval stays decided"
    );
    assert!(
        inbox(&app, &boss).await.is_empty(),
        "nothing left waiting on the approver"
    );
    // The cancelled ticket records the outcome; the process acted for the agent who cancelled.
    assert_eq!(
        recorded(&pool, pending[0].0).await,
        vec!["pending", "cancelled"]
    );
    let (by, process): (String, String) = sqlx::query_as(
        "select payload -> 'ApprovalCancelled' ->> 'by', metadata ->> 'process' from events
          where aggregate_type = 'approval' and aggregate_id = $1 and event_type = 'ApprovalCancelled'",
    )
    .bind(approval_of(&pending[0].1))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(by, agent.id.to_string());
    assert_eq!(process, "approval_saga");

    // An approval that reaches a ticket after its close was processed (a request racing the
    // close; the API itself answers 409) is cancelled as soon as the process sees it.
    let ticket_id = pending[0].0;
    let late = app
        .request_approval_directly(ticket_id, req.id, agent.id, boss.id, Utc::now())
        .await;
    app.settle().await;
    app.settle().await;
    assert_eq!(
        status_of(&json!({"id": late.to_string()})).await,
        "cancelled"
    );
    assert!(inbox(&app, &boss).await.is_empty());
    assert_eq!(
        recorded(&pool, ticket_id).await,
        vec!["pending", "cancelled", "pending", "cancelled"]
    );
}

#[sqlx::test]
async fn a_rejected_ticket_can_be_cancelled_or_sent_for_a_new_approval(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [req, agent, boss] = requester_agent_and_boss(&app).await;
    let id = open_ticket(&app, &req, "Replace the core switch").await;

    let first = request_approval(&app, &agent, id, vec![step("Manager", &[&boss], "any")]).await;
    // One pending approval at a time.
    let r = try_request_approval(&app, &agent, id, vec![step("Manager", &[&boss], "any")]).await;
    let body = json_of(r, StatusCode::CONFLICT).await;
    assert_eq!(body["approval_id"], first["id"]);

    let rejected = reject(&app, &first, &boss).await;
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["steps"][0]["status"], "rejected");
    assert_eq!(
        rejected["steps"][0]["decisions"][0]["comment"],
        "reject by boss@example.com"
    );
    app.settle().await;
    assert_eq!(
        ticket_of(&app, &agent, id).await["approval_status"],
        "rejected"
    );
    assert_eq!(
        try_move_to(&app, &agent, id, "in_progress").await.status(),
        StatusCode::CONFLICT
    );

    // Sent for a new approval, which unblocks it once granted.
    let second = request_approval(&app, &agent, id, vec![step("Director", &[&boss], "any")]).await;
    app.settle().await;
    assert_eq!(
        ticket_of(&app, &agent, id).await["approval_status"],
        "pending"
    );
    assert_eq!(
        try_move_to(&app, &agent, id, "in_progress").await.status(),
        StatusCode::CONFLICT
    );
    approve(&app, &second, &boss).await;
    app.settle().await;
    assert_eq!(
        try_move_to(&app, &agent, id, "in_progress").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        recorded(&pool, id).await,
        vec!["pending", "rejected", "pending", "approved"]
    );

    // Or cancelled after a rejection.
    let other = open_ticket(&app, &req, "Rewire the office").await;
    let a = request_approval(&app, &agent, other, vec![step("Manager", &[&boss], "any")]).await;
    reject(&app, &a, &boss).await;
    app.settle().await;
    let cancelled = move_to(&app, &req, other, "cancelled").await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["approval_status"], "rejected");
    // A finished ticket takes no new approval.
    let r = try_request_approval(&app, &agent, other, vec![step("Manager", &[&boss], "any")]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
}

#[sqlx::test]
async fn steps_are_decided_in_order_under_the_any_quorum_and_all_rules(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [req, agent] = users(&app, [("req", "requester"), ("agent", "agent")]).await;
    let [m1, m2] = with_role(&app, "manager", ["m1", "m2"]).await;
    let [f1, f2, f3] = with_role(&app, "agent", ["f1", "f2", "f3"]).await;
    let id = open_ticket(&app, &req, "Buy a new SAN").await;
    let a = request_approval(
        &app,
        &agent,
        id,
        vec![
            step("Manager", &[&m1, &m2], "any"),
            quorum("Finance", &[&f1, &f2, &f3], 2),
            step("Board", &[&m2, &f3], "all"),
        ],
    )
    .await;
    assert_eq!(a["steps"][1]["min_approvals"], 2);
    assert_eq!(a["steps"][1]["status"], "waiting");

    // A later step's approver must wait for their turn.
    let body = json_of(
        try_decide(&app, &f1, &a, "approve").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("not yours"),
        "{body}"
    );
    // Someone on no step is no approver.
    let body = json_of(
        try_decide(&app, &agent, &a, "approve").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(body["code"], "PERMISSION_ERROR");

    // any: one approval completes the step.
    let s = approve(&app, &a, &m1).await;
    assert_eq!(
        (s["current_step"].as_i64(), s["status"].as_str()),
        (Some(1), Some("pending"))
    );
    assert_eq!(s["steps"][0]["status"], "approved");
    assert_eq!(s["steps"][1]["status"], "pending");
    // m1 is on no later step: 403; m2 (on the board) is early: 409.
    assert_eq!(
        try_decide(&app, &m1, &a, "approve").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        try_decide(&app, &m2, &a, "approve").await.status(),
        StatusCode::CONFLICT
    );

    // quorum: two of three.
    let s = approve(&app, &a, &f1).await;
    assert_eq!(s["current_step"], 1);
    let body = json_of(
        try_decide(&app, &f1, &a, "reject").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("already decided"),
        "{body}"
    );
    let s = approve(&app, &a, &f2).await;
    assert_eq!(s["current_step"], 2);
    assert_eq!(s["steps"][1]["status"], "approved");
    assert_eq!(s["waiting_on"], json!([m2.id, f3.id]));

    // all: every approver.
    let s = approve(&app, &a, &m2).await;
    assert_eq!(s["status"], "pending");
    let s = approve(&app, &a, &f3).await;
    assert_eq!(s["status"], "approved");
    assert_eq!(s["steps"][2]["decisions"].as_array().unwrap().len(), 2);
    app.settle().await;
    assert_eq!(
        ticket_of(&app, &agent, id).await["approval_status"],
        "approved"
    );

    // Finished: nothing more to decide, delegate or cancel.
    let body = json_of(
        try_decide(&app, &f2, &a, "approve").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("no longer pending"),
        "{body}"
    );
    assert_eq!(
        try_delegate(&app, &f3, &a, &agent).await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        try_cancel(&app, &agent, &a).await.status(),
        StatusCode::CONFLICT
    );

    // One rejection at any step rejects the whole approval.
    let other = open_ticket(&app, &req, "Second SAN").await;
    let b = request_approval(
        &app,
        &agent,
        other,
        vec![
            step("Manager", &[&m1], "any"),
            step("Board", &[&m2, &f3], "all"),
        ],
    )
    .await;
    approve(&app, &b, &m1).await;
    approve(&app, &b, &m2).await;
    let s = reject(&app, &b, &f3).await;
    assert_eq!(s["status"], "rejected");
    assert_eq!(s["current_step"], 1);
    assert_eq!(s["steps"][1]["status"], "rejected");
}

#[sqlx::test]
async fn bad_requests_are_refused_with_their_field_and_store_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [req, agent, boss, gone] = users(
        &app,
        [
            ("req", "requester"),
            ("agent", "agent"),
            ("boss", "manager"),
            ("gone", "manager"),
        ],
    )
    .await;
    deactivate(&app, &gone).await;
    let id = open_ticket(&app, &req, "A change").await;

    // Requesters may not request approvals.
    let r = try_request_approval(&app, &req, id, vec![step("Manager", &[&boss], "any")]).await;
    assert_eq!(
        json_of(r, StatusCode::FORBIDDEN).await["code"],
        "PERMISSION_ERROR"
    );

    let cases: Vec<(Value, Value)> = vec![
        (
            json!({"ticket_id": id, "steps": [{"name": "Manager", "approver_ids": [boss.id, 987654], "rule": "any"}]}),
            json!(["body", "steps", 0, "approver_ids", 1]),
        ),
        (
            json!({"ticket_id": id, "steps": [step("Manager", &[&gone], "any")]}),
            json!(["body", "steps", 0, "approver_ids", 0]),
        ),
        (
            json!({"ticket_id": id, "steps": [{"name": "Manager", "approver_ids": [boss.id, boss.id], "rule": "all"}]}),
            json!(["body", "steps", 0, "approver_ids", 1]),
        ),
        (
            json!({"ticket_id": id, "steps": [{"name": "Finance", "approver_ids": [boss.id], "rule": "quorum"}]}),
            json!(["body", "steps", 0, "min_approvals"]),
        ),
        (
            json!({"ticket_id": id, "steps": [quorum("Finance", &[&boss], 2)]}),
            json!(["body", "steps", 0, "min_approvals"]),
        ),
        (
            json!({"ticket_id": id, "steps": [{"name": " ", "approver_ids": [boss.id], "rule": "any"}]}),
            json!(["body", "steps", 0, "name"]),
        ),
        (
            json!({"ticket_id": id, "steps": [{"name": "X", "approver_ids": [], "rule": "any"}]}),
            json!(["body", "steps", 0, "approver_ids"]),
        ),
        (
            json!({"ticket_id": id, "steps": []}),
            json!(["body", "steps"]),
        ),
        (
            json!({"ticket_id": id, "steps": [{"name": "X", "approver_ids": [boss.id], "rule": "most"}]}),
            json!(["body", "steps", 0, "rule"]),
        ),
        (
            json!({"steps": [step("Manager", &[&boss], "any")]}),
            json!(["body", "ticket_id"]),
        ),
    ];
    for (body, loc) in cases {
        let r = app.post(APPROVALS, &agent.token, body.clone()).await;
        let answer = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(locs(&answer).contains(&loc), "{body} → {answer}");
    }
    // A ticket that does not exist.
    let r =
        try_request_approval(&app, &agent, 999999, vec![step("Manager", &[&boss], "any")]).await;
    assert_eq!(json_of(r, StatusCode::NOT_FOUND).await["code"], "NOT_FOUND");
    let (n,): (i64,) =
        sqlx::query_as("select count(*) from events where aggregate_type = 'approval'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(n, 0, "nothing stored");

    let a = request_approval(&app, &agent, id, vec![step("Manager", &[&boss], "any")]).await;
    let r = app
        .post(
            &format!("{APPROVALS}/{}/decisions", a["id"].as_str().unwrap()),
            &boss.token,
            json!({"decision": "maybe"}),
        )
        .await;
    let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["detail"][0]["loc"], json!(["body", "decision"]));
    let r = try_delegate(&app, &boss, &a, &gone).await;
    let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["detail"][0]["loc"], json!(["body", "to_user_id"]));
    let r = app
        .get(&format!("{APPROVALS}/not-a-uuid"), &agent.token)
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .get(
            &format!("{APPROVALS}/{}", uuid::Uuid::new_v4()),
            &agent.token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .get(&format!("{APPROVALS}/?status=maybe"), &agent.token)
        .await;
    let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["detail"][0]["loc"], json!(["query", "status"]));
    let (n,): (i64,) =
        sqlx::query_as("select count(*) from events where aggregate_type = 'approval'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(n, 1, "only the valid request stored");
}

#[sqlx::test]
async fn requesters_see_only_approvals_of_their_tickets_or_on_which_they_decide(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [owner, stranger, business, agent] = users(
        &app,
        [
            ("owner", "requester"),
            ("stranger", "requester"),
            ("business", "requester"),
            ("agent", "agent"),
        ],
    )
    .await;
    let id = open_ticket(&app, &owner, "New CRM field").await;
    let a = request_approval(
        &app,
        &agent,
        id,
        vec![step("Business owner", &[&business], "any")],
    )
    .await;
    let path = format!("{APPROVALS}/{}", a["id"].as_str().unwrap());
    app.settle().await;

    for who in [&owner, &business, &agent] {
        let got = get_ok(&app, who, &path).await;
        assert_eq!(got["id"], a["id"]);
        let list = get_ok(&app, who, &format!("{APPROVALS}/?ticket_id={id}")).await;
        assert_eq!(list["total"], 1, "{}", who.email);
    }
    // A stranger cannot tell the approval exists.
    assert_eq!(
        app.get(&path, &stranger.token).await.status(),
        StatusCode::NOT_FOUND
    );
    let list = get_ok(&app, &stranger, APPROVALS).await;
    assert_eq!(list["total"], 0);
    assert_eq!(
        try_decide(&app, &stranger, &a, "approve").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        try_cancel(&app, &stranger, &a).await.status(),
        StatusCode::NOT_FOUND
    );
    // The ticket's owner sees it but is no approver.
    assert_eq!(
        try_decide(&app, &owner, &a, "approve").await.status(),
        StatusCode::FORBIDDEN
    );
    // An approver who is a requester may decide, but not cancel.
    assert_eq!(
        try_cancel(&app, &business, &a).await.status(),
        StatusCode::FORBIDDEN
    );
    let s = approve(&app, &a, &business).await;
    assert_eq!(s["status"], "approved");
    assert_eq!(
        try_decide(&app, &business, &a, "approve").await.status(),
        StatusCode::CONFLICT
    );
    // Filters by status.
    app.settle().await;
    let list = get_ok(&app, &agent, &format!("{APPROVALS}/?status=approved")).await;
    assert_eq!(list["total"], 1);
    let list = get_ok(
        &app,
        &agent,
        &format!("{APPROVALS}/?status=pending,rejected"),
    )
    .await;
    assert_eq!(list["total"], 0);
}

#[sqlx::test]
async fn cancelling_is_for_the_ticket_requester_the_approval_requester_or_staff(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [owner, agent, other_agent, boss] = users(
        &app,
        [
            ("owner", "requester"),
            ("agent", "agent"),
            ("agent2", "agent"),
            ("boss", "manager"),
        ],
    )
    .await;

    let t1 = open_ticket(&app, &owner, "One").await;
    let a1 = request_approval(&app, &agent, t1, vec![step("Manager", &[&boss], "any")]).await;
    let c = cancel(&app, &owner, &a1).await;
    assert_eq!(c["status"], "cancelled");
    assert_eq!(c["steps"][0]["status"], "skipped");
    assert_eq!(
        try_cancel(&app, &owner, &a1).await.status(),
        StatusCode::CONFLICT
    );
    app.settle().await;
    // A cancelled approval no longer blocks the ticket.
    assert_eq!(
        ticket_of(&app, &agent, t1).await["approval_status"],
        "cancelled"
    );
    assert_eq!(
        try_move_to(&app, &agent, t1, "in_progress").await.status(),
        StatusCode::OK
    );

    let t2 = open_ticket(&app, &owner, "Two").await;
    let a2 = request_approval(&app, &agent, t2, vec![step("Manager", &[&boss], "any")]).await;
    cancel(&app, &agent, &a2).await;

    let t3 = open_ticket(&app, &owner, "Three").await;
    let a3 = request_approval(&app, &agent, t3, vec![step("Manager", &[&boss], "any")]).await;
    cancel(&app, &other_agent, &a3).await;
    app.settle().await;
    let list = get_ok(&app, &boss, &format!("{APPROVALS}/?status=cancelled")).await;
    assert_eq!(list["total"], 3);
}

#[sqlx::test]
async fn the_inbox_shows_exactly_the_steps_waiting_on_its_owner(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [req, agent] = users(&app, [("req", "requester"), ("agent", "agent")]).await;
    let [m1, m2] = with_role(&app, "manager", ["m1", "m2"]).await;
    let [f1] = with_role(&app, "agent", ["f1"]).await;
    let [deputy, spare] = with_role(&app, "manager", ["deputy", "spare"]).await;
    let t1 = open_ticket(&app, &req, "One").await;
    let t2 = open_ticket(&app, &req, "Two").await;
    let t3 = open_ticket(&app, &req, "Three").await;
    let a1 = request_approval(
        &app,
        &agent,
        t1,
        vec![
            step("Managers", &[&m1, &m2], "all"),
            step("Finance", &[&f1], "any"),
        ],
    )
    .await;
    let a2 = request_approval(&app, &agent, t2, vec![step("Finance", &[&f1], "any")]).await;
    let a3 = request_approval(&app, &agent, t3, vec![step("Manager", &[&m1], "any")]).await;
    app.settle().await;

    assert_eq!(
        inbox(&app, &m1).await,
        sorted(vec![entry(&a1, 0), entry(&a3, 0)])
    );
    assert_eq!(inbox(&app, &m2).await, vec![entry(&a1, 0)]);
    // f1 decides a1 only at its second step.
    assert_eq!(inbox(&app, &f1).await, vec![entry(&a2, 0)]);
    assert!(inbox(&app, &deputy).await.is_empty());
    assert!(inbox(&app, &agent).await.is_empty());
    assert!(inbox(&app, &req).await.is_empty());

    cancel(&app, &agent, &a3).await;
    app.settle().await;
    assert_eq!(inbox(&app, &m1).await, vec![entry(&a1, 0)]);

    // Delegation moves the place, once.
    let r = try_delegate(&app, &m1, &a1, &deputy).await;
    let token = r.headers()["x-consistency-token"]
        .to_str()
        .unwrap()
        .to_string();
    let d = json_of(r, StatusCode::OK).await;
    assert_eq!(d["steps"][0]["approver_ids"], json!([deputy.id, m2.id]));
    assert_eq!(d["steps"][0]["delegations"][0]["from_user_id"], m1.id);
    assert_eq!(d["steps"][0]["delegations"][0]["to_user_id"], deputy.id);
    // Read-your-writes: with the token, the inbox already shows the delegation.
    let page = app
        .request(
            Method::GET,
            &format!("{APPROVALS}/?mine=true"),
            Some(&deputy.token),
        )
        .header("x-consistency-token", &token)
        .send()
        .await
        .unwrap();
    let page = json_of(page, StatusCode::OK).await;
    assert_eq!(page["items"][0]["id"], a1["id"]);
    assert!(inbox(&app, &m1).await.is_empty());
    assert_eq!(
        try_delegate(&app, &deputy, &a1, &spare).await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        try_delegate(&app, &m1, &a1, &spare).await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        try_decide(&app, &m1, &a1, "approve").await.status(),
        StatusCode::CONFLICT
    );
    // The delegator still sees the approval (not in the inbox).
    let got = app
        .get(
            &format!("{APPROVALS}/{}", a1["id"].as_str().unwrap()),
            &m1.token,
        )
        .await;
    assert_eq!(got.status(), StatusCode::OK);

    approve(&app, &a1, &deputy).await;
    app.settle().await;
    assert!(inbox(&app, &deputy).await.is_empty());
    assert_eq!(inbox(&app, &m2).await, vec![entry(&a1, 0)]);
    assert!(inbox(&app, &f1).await == vec![entry(&a2, 0)]);

    approve(&app, &a1, &m2).await;
    app.settle().await;
    assert!(inbox(&app, &m2).await.is_empty());
    assert_eq!(
        inbox(&app, &f1).await,
        sorted(vec![entry(&a1, 1), entry(&a2, 0)])
    );

    approve(&app, &a1, &f1).await;
    app.settle().await;
    assert_eq!(inbox(&app, &f1).await, vec![entry(&a2, 0)]);
    let (rows,): (i64,) = sqlx::query_as("select count(*) from rm_approval_inbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "only f1's decision on a2 is waiting");
}

fn sorted(mut v: Vec<(String, i64)>) -> Vec<(String, i64)> {
    v.sort();
    v
}

#[sqlx::test]
async fn the_policy_attaches_approvals_to_new_change_requests(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [admin, agent, req] = users(
        &app,
        [("admin", "admin"), ("agent", "agent"), ("req", "requester")],
    )
    .await;
    let [m1, m2, m3] = with_role(&app, "manager", ["m1", "m2", "m3"]).await;
    deactivate(&app, &m3).await;
    let policy = format!("{APPROVALS}/policy");

    assert_eq!(
        app.get(&policy, &agent.token).await.status(),
        StatusCode::FORBIDDEN
    );
    // Requesters may open change requests on this desk (not by default).
    let r = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/tickets/requester-policy",
            Some(&admin.token),
        )
        .json(&json!({"priorities": ["low", "medium", "high"],
            "types": ["issue", "change_request"], "reopen_days": 14}))
        .send()
        .await
        .unwrap();
    json_of(r, StatusCode::OK).await;
    let none = get_ok(&app, &admin, &policy).await;
    assert_eq!(none["steps"], json!([]));
    assert_eq!(none["type"], "change_request");

    // Invalid policies say where, and change nothing.
    let bad = json!({"steps": [
        {"name": "A", "rule": "any", "approvers": [{"user_id": 987654}]},
        {"name": "B", "rule": "any", "approvers": [{"role": "requester"}]},
        {"name": "C", "rule": "any", "approvers": [{"role": "manager", "user_id": m1.id}]},
        {"name": "D", "rule": "quorum", "approvers": [{"role": "manager"}]},
        {"name": "E", "rule": "any", "approvers": []},
    ]});
    let body = json_of(
        app.request(Method::PUT, &policy, Some(&admin.token))
            .json(&bad)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let locs = locs(&body);
    for loc in [
        json!(["body", "steps", 0, "approvers", 0, "user_id"]),
        json!(["body", "steps", 1, "approvers", 0, "role"]),
        json!(["body", "steps", 2, "approvers", 0]),
        json!(["body", "steps", 3, "min_approvals"]),
        json!(["body", "steps", 4, "approvers"]),
    ] {
        assert!(locs.contains(&loc), "{loc} not in {body}");
    }
    let put = |body: Value, token: String| {
        let r = app.request(Method::PUT, &policy, Some(&token)).json(&body);
        async move { r.send().await.unwrap() }
    };
    let valid = json!({"steps": [
        {"name": "Change manager", "rule": "any", "approvers": [{"role": "manager"}]},
        {"name": "Security", "rule": "all", "approvers": [{"user_id": agent.id}]},
    ]});
    assert_eq!(
        put(valid.clone(), agent.token.clone()).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(get_ok(&app, &admin, &policy).await["steps"], json!([]));
    let saved = json_of(
        put(valid.clone(), admin.token.clone()).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(saved["steps"], valid["steps"]);
    assert_eq!(saved["updated_by"], admin.id);

    // A new change request gets the approval, and is blocked at once.
    let t = open_ticket_with(
        &app,
        &req,
        json!({"title": "Open port 8443", "description": "", "type": "change_request"}),
    )
    .await;
    let id = t["id"].as_i64().unwrap();
    assert_eq!(t["approval_status"], "pending");
    assert_eq!(
        try_move_to(&app, &agent, id, "in_progress").await.status(),
        StatusCode::CONFLICT
    );
    app.settle().await;
    let list = get_ok(&app, &req, &format!("{APPROVALS}/?ticket_id={id}")).await;
    assert_eq!(list["total"], 1);
    let a = &list["items"][0];
    assert_eq!(
        a["id"],
        ticketd::service::approval_policy::policy_approval_id(id).to_string()
    );
    assert_eq!(
        a["steps"][0]["approver_ids"],
        json!([m1.id, m2.id]),
        "active managers only"
    );
    assert_eq!(a["steps"][1]["approver_ids"], json!([agent.id]));
    assert_eq!(a["steps"][1]["rule"], "all");

    // Requesting it again (a retry) creates nothing new.
    let (ticket_agg, version) = app.state.tickets.load(&id.to_string()).await.unwrap();
    let again = ticketd::service::approvals::on_ticket_created(
        &app.state,
        &ticketd::service::auth::AuthUser {
            id: req.id,
            role: aggregates::Role::Requester,
            session: None,
            actor: Actor::user(req.id),
        },
        ticketd::service::executor::Committed {
            aggregate: ticket_agg,
            version,
            token: None,
            appended: 0,
            events: Vec::new(),
        },
    )
    .await
    .unwrap();
    assert_eq!(again.version, version);
    let (streams,): (i64,) = sqlx::query_as(
        "select count(distinct aggregate_id) from events where aggregate_type = 'approval'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(streams, 1);

    // Approving it lets work start.
    let a = list["items"][0].clone();
    approve(&app, &a, &m2).await;
    approve(&app, &a, &agent).await;
    app.settle().await;
    assert_eq!(
        try_move_to(&app, &agent, id, "in_progress").await.status(),
        StatusCode::OK
    );

    // A manager's own change request skips them in the role step.
    let own = open_ticket_with(
        &app,
        &m1,
        json!({"title": "Patch the VPN", "type": "change_request"}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    app.settle().await;
    let list = get_ok(&app, &admin, &format!("{APPROVALS}/?ticket_id={own}")).await;
    assert_eq!(list["items"][0]["steps"][0]["approver_ids"], json!([m2.id]));

    // Other types get nothing, and an empty policy switches it off.
    let issue = open_ticket(&app, &req, "Just an issue").await;
    json_of(
        put(json!({"steps": []}), admin.token.clone()).await,
        StatusCode::OK,
    )
    .await;
    let free = open_ticket_with(
        &app,
        &req,
        json!({"title": "Unchecked change", "type": "change_request"}),
    )
    .await;
    assert_eq!(free["approval_status"], "none");
    app.settle().await;
    for t in [issue, free["id"].as_i64().unwrap()] {
        let list = get_ok(&app, &admin, &format!("{APPROVALS}/?ticket_id={t}")).await;
        assert_eq!(list["total"], 0);
    }
}

/// What a real crash does to the dead process's connections: their open transactions end.
/// (Aborting in-process tasks can leave a pooled connection idle inside a transaction,
/// which would hold back every tailer until `idle_in_transaction_session_timeout`.)
async fn end_orphaned_transactions(pool: &PgPool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        sqlx::query(
            "select pg_terminate_backend(pid) from pg_stat_activity
              where datname = current_database() and pid <> pg_backend_pid()
                and state like 'idle in transaction%'",
        )
        .execute(pool)
        .await
        .unwrap();
        let (open,): (i64,) = sqlx::query_as(
            "select count(*) from pg_stat_activity
              where datname = current_database() and pid <> pg_backend_pid()
                and (backend_xid is not null or state like 'idle in transaction%')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if open == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "transactions left open"
        );
    }
}

#[sqlx::test]
async fn a_crash_between_the_approval_and_the_ticket_update_updates_the_ticket_exactly_once(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let [req, agent, boss] = requester_agent_and_boss(&app).await;
    let id = open_ticket(&app, &req, "Migrate the mail server").await;
    let a = request_approval(&app, &agent, id, vec![step("Manager", &[&boss], "any")]).await;
    app.settle().await;
    assert_eq!(recorded(&pool, id).await, vec!["pending"]);

    // The server dies: its projection workers (and the process manager) are gone, and so
    // are their connections with any transaction they had open...
    app.state.runtime.as_ref().unwrap().abort();
    end_orphaned_transactions(&pool).await;
    // ...right after the decision committed, before anything touched the ticket.
    let approval_id = a["id"].as_str().unwrap().to_string();
    app.state
        .approvals
        .execute(&approval_id, None, Actor::user(boss.id).metadata(), |_| {
            ApprovalCommand::Decide {
                approver_id: boss.id,
                decision: Decision::Approve,
                comment: None,
                at: Utc::now(),
            }
        })
        .await
        .unwrap();
    assert_eq!(recorded(&pool, id).await, vec!["pending"]);

    // A second crash: the process manager updates the ticket, then dies before its
    // checkpoint commits (its transaction is rolled back).
    let saga = ticketd::service::approval_process::ApprovalSaga::new(pool.clone());
    let mut conn = pool.acquire().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let events = loop {
        let mut tx = conn.begin().await.unwrap();
        let (from, _) = projections::runtime::load_checkpoint(
            &mut tx,
            ticketd::service::approval_process::ApprovalSaga::NAME,
            true,
        )
        .await
        .unwrap()
        .unwrap();
        let events = projections::log::read_after(&mut tx, from, 500)
            .await
            .unwrap();
        // The tail waits for every older transaction of the cluster to end.
        if events.iter().any(|e| e.event_type == "ApprovalGranted") {
            saga.apply(&mut tx, &events, &Tables::live()).await.unwrap();
            tx.rollback().await.unwrap();
            break events;
        }
        tx.rollback().await.unwrap();
        assert!(
            std::time::Instant::now() < deadline,
            "the decision never became visible"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    drop(conn);
    assert_eq!(recorded(&pool, id).await, vec!["pending", "approved"]);
    let events_before = ticket_events(&pool).await;

    // Restart: the batch runs again and finds the ticket up to date.
    let rt = Runtime::new(
        pool.clone(),
        ticketd::service::all_projections(&pool),
        RuntimeConfig::default(),
    )
    .start()
    .await
    .unwrap();
    app.settle().await;
    assert_eq!(
        recorded(&pool, id).await,
        vec!["pending", "approved"],
        "updated exactly once"
    );
    let (saga_at,): (i64,) = sqlx::query_as(
        "select last_position from projection_checkpoints where projection = 'approval_saga'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(saga_at >= events.last().unwrap().global_position);

    // A replay from the very start issues nothing either.
    sqlx::query(
        "update projection_checkpoints set last_txid = '0', last_position = 0 where projection = 'approval_saga'",
    )
    .execute(&pool)
    .await
    .unwrap();
    rt.wake();
    app.settle().await;
    assert_eq!(ticket_events(&pool).await, events_before);
    assert_eq!(recorded(&pool, id).await, vec!["pending", "approved"]);
    assert_eq!(
        try_move_to(&app, &agent, id, "in_progress").await.status(),
        StatusCode::OK
    );
    rt.shutdown().await;
}

/// Every row of the approval read models and the ticket states, in a stable order.
async fn approval_snapshot(pool: &PgPool) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let approvals: Vec<(Value,)> =
        sqlx::query_as("select to_jsonb(a) from rm_approvals a order by id")
            .fetch_all(pool)
            .await
            .unwrap();
    let inbox: Vec<(Value,)> =
        sqlx::query_as("select to_jsonb(i) from rm_approval_inbox i order by user_id, approval_id")
            .fetch_all(pool)
            .await
            .unwrap();
    let tickets: Vec<(Value,)> = sqlx::query_as(
        "select jsonb_build_object('id', id, 'status', status, 'approval_status', approval_status, 'version', version)
           from rm_tickets order by id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let unpack = |v: Vec<(Value,)>| v.into_iter().map(|(x,)| x).collect::<Vec<_>>();
    (unpack(approvals), unpack(inbox), unpack(tickets))
}

#[sqlx::test]
async fn a_rebuild_reproduces_the_same_ticket_states_and_approval_rows(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [req, agent] = users(&app, [("req", "requester"), ("agent", "agent")]).await;
    let [m1, m2, deputy] = with_role(&app, "manager", ["m1", "m2", "deputy"]).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(open_ticket(&app, &req, &format!("Change {i}")).await);
    }
    // approved; rejected then approved again; cancelled; pending with a delegation;
    // mid-way through two steps; untouched.
    let a0 = request_approval(&app, &agent, ids[0], vec![step("M", &[&m1], "any")]).await;
    approve(&app, &a0, &m1).await;
    let a1 = request_approval(&app, &agent, ids[1], vec![step("M", &[&m1, &m2], "all")]).await;
    reject(&app, &a1, &m2).await;
    let a1b = request_approval(&app, &agent, ids[1], vec![quorum("M", &[&m1, &m2], 1)]).await;
    approve(&app, &a1b, &m1).await;
    let a2 = request_approval(&app, &agent, ids[2], vec![step("M", &[&m1], "any")]).await;
    cancel(&app, &req, &a2).await;
    let a3 = request_approval(&app, &agent, ids[3], vec![step("M", &[&m1, &m2], "all")]).await;
    delegate(&app, &a3, &m1, &deputy).await;
    let a4 = request_approval(
        &app,
        &agent,
        ids[4],
        vec![step("M", &[&m1], "any"), step("B", &[&m2, &deputy], "all")],
    )
    .await;
    approve(&app, &a4, &m1).await;
    approve(&app, &a4, &deputy).await;
    app.settle().await;
    for id in [ids[0], ids[1], ids[2]] {
        move_to(&app, &agent, id, "in_progress").await;
    }
    app.settle().await;

    let before = approval_snapshot(&pool).await;
    assert_eq!(before.0.len(), 6);
    assert_eq!(before.1.len(), 3, "m2 and deputy on a3, m2 on a4");
    let states: Vec<&str> = before
        .2
        .iter()
        .map(|t| t["approval_status"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        vec![
            "approved",
            "approved",
            "cancelled",
            "pending",
            "pending",
            "none"
        ]
    );
    let events_before = ticket_events(&pool).await;

    // Every read model (a delivery channel's outbox is never rebuilt: it went out already).
    for projection in ticketd::service::all_projections(&pool)
        .into_iter()
        .filter(|p| p.rebuildable())
    {
        let report = projections::rebuild::rebuild(&pool, projection.as_ref(), 7)
            .await
            .unwrap();
        assert!(report.events > 0, "{}", projection.name());
    }
    app.settle().await;
    let after = approval_snapshot(&pool).await;
    assert_eq!(before.0, after.0, "rm_approvals");
    assert_eq!(before.1, after.1, "rm_approval_inbox");
    assert_eq!(before.2, after.2, "ticket states");
    assert_eq!(
        ticket_events(&pool).await,
        events_before,
        "the replayed process manager issued nothing"
    );
    // And the live workers keep going on the swapped-in tables.
    approve(&app, &a4, &m2).await;
    app.settle().await;
    let (status,): (String,) =
        sqlx::query_as("select approval_status from rm_tickets where id = $1")
            .bind(ids[4])
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "approved");
}
