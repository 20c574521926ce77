//! Named steps of the API scenarios: each makes one request and, unless its name starts with
//! `try_`, asserts the status a successful step answers, so a test reads as the story it checks.

use aggregates::ticket::{TicketCommand, TicketFields};
use aggregates::{Priority, TicketStatus, TicketType};
use chrono::{DateTime, Utc};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

use ticketd::service::executor::Actor;

use crate::helpers::{json_of, TestApp, TestUser};

/// The approvals collection.
pub const APPROVALS: &str = "/api/v1/approvals";

/// An approval step decided by any one of `approvers` (`rule` "any" or "all").
pub fn step(name: &str, approvers: &[&TestUser], rule: &str) -> Value {
    json!({"name": name, "approver_ids": ids(approvers), "rule": rule})
}

/// An approval step decided once `min` of `approvers` approve.
pub fn quorum(name: &str, approvers: &[&TestUser], min: u32) -> Value {
    json!({"name": name, "approver_ids": ids(approvers), "rule": "quorum", "min_approvals": min})
}

fn ids(users: &[&TestUser]) -> Vec<i64> {
    users.iter().map(|u| u.id).collect()
}

fn approval_path(approval: &Value, action: &str) -> String {
    format!("{APPROVALS}/{}/{action}", approval["id"].as_str().unwrap())
}

/// GET `path` as `who`, asserting 200; the body.
pub async fn get_ok(app: &TestApp, who: &TestUser, path: &str) -> Value {
    json_of(app.get(path, &who.token).await, StatusCode::OK).await
}

/// `who` opens a ticket titled `title`; its id.
pub async fn open_ticket(app: &TestApp, who: &TestUser, title: &str) -> i64 {
    app.ticket(who, title).await["id"].as_i64().unwrap()
}

/// `who` posts `body` to open a ticket; the answer, whatever it is.
pub async fn try_open_ticket_with(app: &TestApp, who: &TestUser, body: Value) -> Response {
    app.post("/api/v1/tickets/", &who.token, body).await
}

/// `who` opens a ticket from `body` (asserting 201); the ticket.
pub async fn open_ticket_with(app: &TestApp, who: &TestUser, body: Value) -> Value {
    json_of(
        try_open_ticket_with(app, who, body).await,
        StatusCode::CREATED,
    )
    .await
}

/// The `loc` of every problem a 422 body lists, in order.
pub fn locs(body: &Value) -> Vec<Value> {
    let problems = body["detail"].as_array();
    let problems = problems.unwrap_or_else(|| panic!("no list of problems in {body}"));
    problems.iter().map(|d| d["loc"].clone()).collect()
}

/// The ticket `id` as `who` sees it.
pub async fn ticket_of(app: &TestApp, who: &TestUser, id: i64) -> Value {
    get_ok(app, who, &format!("/api/v1/tickets/{id}")).await
}

/// `who` moves ticket `id` to `status`; the answer, whatever it is.
pub async fn try_move_to(app: &TestApp, who: &TestUser, id: i64, status: &str) -> Response {
    let path = format!("/api/v1/tickets/{id}/status");
    app.patch(&path, &who.token, json!({"status": status}))
        .await
}

/// `who` moves ticket `id` to `status` (asserting 200); the ticket.
pub async fn move_to(app: &TestApp, who: &TestUser, id: i64, status: &str) -> Value {
    json_of(try_move_to(app, who, id, status).await, StatusCode::OK).await
}

/// `by` asks for an approval of ticket `id` in `steps`; the answer, whatever it is.
pub async fn try_request_approval(
    app: &TestApp,
    by: &TestUser,
    id: i64,
    steps: Vec<Value>,
) -> Response {
    let body = json!({"ticket_id": id, "steps": steps, "reason": "Needs sign-off"});
    app.post(APPROVALS, &by.token, body).await
}

/// `by` asks for an approval of ticket `id` in `steps` (asserting 201); the approval.
pub async fn request_approval(app: &TestApp, by: &TestUser, id: i64, steps: Vec<Value>) -> Value {
    json_of(
        try_request_approval(app, by, id, steps).await,
        StatusCode::CREATED,
    )
    .await
}

/// `who` decides `approval` ("approve" or "reject"); the answer, whatever it is.
pub async fn try_decide(
    app: &TestApp,
    who: &TestUser,
    approval: &Value,
    decision: &str,
) -> Response {
    let body = json!({"decision": decision, "comment": format!("{decision} by {}", who.email)});
    app.post(&approval_path(approval, "decisions"), &who.token, body)
        .await
}

/// `who` approves `approval` (asserting 200); the approval.
pub async fn approve(app: &TestApp, approval: &Value, who: &TestUser) -> Value {
    json_of(
        try_decide(app, who, approval, "approve").await,
        StatusCode::OK,
    )
    .await
}

/// `who` rejects `approval` (asserting 200); the approval.
pub async fn reject(app: &TestApp, approval: &Value, who: &TestUser) -> Value {
    json_of(
        try_decide(app, who, approval, "reject").await,
        StatusCode::OK,
    )
    .await
}

/// `who` hands their part of `approval` to `to`; the answer, whatever it is.
pub async fn try_delegate(
    app: &TestApp,
    who: &TestUser,
    approval: &Value,
    to: &TestUser,
) -> Response {
    let body = json!({"to_user_id": to.id, "comment": "I am on leave"});
    app.post(&approval_path(approval, "delegate"), &who.token, body)
        .await
}

/// `who` hands their part of `approval` to `to` (asserting 200); the approval.
pub async fn delegate(app: &TestApp, approval: &Value, who: &TestUser, to: &TestUser) -> Value {
    json_of(try_delegate(app, who, approval, to).await, StatusCode::OK).await
}

/// `who` cancels `approval`; the answer, whatever it is.
pub async fn try_cancel(app: &TestApp, who: &TestUser, approval: &Value) -> Response {
    app.request(
        Method::POST,
        &approval_path(approval, "cancel"),
        Some(&who.token),
    )
    .send()
    .await
    .unwrap()
}

/// `who` cancels `approval` (asserting 200); the approval.
pub async fn cancel(app: &TestApp, who: &TestUser, approval: &Value) -> Value {
    json_of(try_cancel(app, who, approval).await, StatusCode::OK).await
}

/// Signs up one user per `(name, role)`, in order, as `name@example.com`.
pub async fn users<const N: usize>(app: &TestApp, cast: [(&str, &str); N]) -> [TestUser; N] {
    let mut made = Vec::with_capacity(N);
    for (name, role) in cast {
        made.push(app.user(&format!("{name}@example.com"), role).await);
    }
    made.try_into().unwrap()
}

/// `admin` gives `user` another role through the API (asserting 200).
pub async fn set_role(app: &TestApp, admin: &TestUser, user: &TestUser, role: &str) {
    let path = format!("/api/v1/users/{}", user.id);
    let r = app
        .patch(&path, &admin.token, json!({ "role": role }))
        .await;
    json_of(r, StatusCode::OK).await;
}

/// Signs up one user per name, in order, as `name@example.com`, all with `role`.
pub async fn with_role<const N: usize>(
    app: &TestApp,
    role: &str,
    names: [&str; N],
) -> [TestUser; N] {
    users(app, names.map(|name| (name, role))).await
}

/// The cast of most approval scenarios: requester `req`, agent `agent` and manager `boss`.
pub async fn requester_agent_and_boss(app: &TestApp) -> [TestUser; 3] {
    users(
        app,
        [
            ("req", "requester"),
            ("agent", "agent"),
            ("boss", "manager"),
        ],
    )
    .await
}

/// Two requesters, `ann` and `bob`, and the agent `agent`.
pub async fn ann_bob_and_agent(app: &TestApp) -> [TestUser; 3] {
    users(
        app,
        [
            ("ann", "requester"),
            ("bob", "requester"),
            ("agent", "agent"),
        ],
    )
    .await
}

/// Marks `user` inactive straight in the database (as an admin would).
pub async fn deactivate(app: &TestApp, user: &TestUser) {
    sqlx::query("update users set is_active = false where id = $1")
        .bind(user.id)
        .execute(&app.pool)
        .await
        .unwrap();
}

/// The consistency token a write answered with; fails if it sent none.
pub fn token_of(r: &Response) -> reqwest::header::HeaderValue {
    r.headers()
        .get("x-consistency-token")
        .expect("the write answers an x-consistency-token")
        .clone()
}

/// Read-your-writes, as promised: a GET carrying `token` answers 200 within 2 s. A 503 (or a
/// slower answer) fails the test instead of being retried; the tests that hold transactions
/// open, which would stall this, run apart (`.config/nextest.toml`).
pub async fn get_consistent(
    app: &TestApp,
    who: &TestUser,
    path: &str,
    token: &reqwest::header::HeaderValue,
) -> Response {
    let started = std::time::Instant::now();
    let r = try_get_with_token(app, who, path, token).await;
    let took = started.elapsed();
    assert_ne!(
        r.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "a read with a consistency token gave up after {took:?}"
    );
    assert!(
        took < std::time::Duration::from_millis(2500),
        "a read with a consistency token took {took:?}"
    );
    r
}

/// GET `path` as `who`, carrying the consistency token `token`; the answer, whatever it is
/// and however long it took.
pub async fn try_get_with_token(
    app: &TestApp,
    who: &TestUser,
    path: &str,
    token: &reqwest::header::HeaderValue,
) -> Response {
    app.request(Method::GET, path, Some(&who.token))
        .header("x-consistency-token", token.clone())
        .send()
        .await
        .unwrap()
}

/// `who` assigns ticket `id` to `to`; the answer, whatever it is.
pub async fn try_assign(app: &TestApp, who: &TestUser, id: i64, to: &TestUser) -> Response {
    let path = format!("/api/v1/tickets/{id}/assign");
    app.patch(&path, &who.token, json!({"assignee_id": to.id}))
        .await
}

/// `who` assigns ticket `id` to `to` (asserting 200); the ticket.
pub async fn assign(app: &TestApp, who: &TestUser, id: i64, to: &TestUser) -> Value {
    json_of(try_assign(app, who, id, to).await, StatusCode::OK).await
}

/// `actor` runs `command` on ticket `id` straight through the Ticket aggregate, bypassing the
/// API and its checks (a history dated in the past, a comment flagged at will).
pub async fn run_directly(app: &TestApp, id: i64, actor: i64, command: TicketCommand) {
    app.state
        .tickets
        .execute(
            &id.to_string(),
            None,
            Actor::user(actor).metadata(),
            move |_| command.clone(),
        )
        .await
        .expect("the ticket takes the command");
}

/// `author` comments `content` on ticket `id` straight through the Ticket aggregate, now, as
/// staff or not, internal or not, mentioning `mentions`; the comment's id.
pub async fn comment_directly(
    app: &TestApp,
    id: i64,
    author: &TestUser,
    by_staff: bool,
    content: &str,
    internal: bool,
    mentions: Vec<i64>,
) -> uuid::Uuid {
    let comment_id = uuid::Uuid::new_v4();
    let command = TicketCommand::AddComment {
        comment_id,
        author_id: author.id,
        by_staff,
        content: content.to_string(),
        is_internal: internal,
        parent_id: None,
        mentions,
        then_status: None,
        at: chrono::Utc::now(),
    };
    run_directly(app, id, author.id, command).await;
    comment_id
}

/// Opens a ticket at a chosen time through the Ticket aggregate.
pub async fn open_at(
    app: &TestApp,
    requester: i64,
    title: &str,
    priority: Priority,
    kind: TicketType,
    at: DateTime<Utc>,
) -> i64 {
    let (id,): (i64,) = sqlx::query_as("select nextval('ticket_id_seq')")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let command = TicketCommand::OpenTicket {
        id,
        requester_id: requester,
        fields: TicketFields {
            title: title.into(),
            description: String::new(),
            priority,
            ticket_type: kind,
            tags: vec![],
            item_ids: vec![],
        },
        at,
    };
    app.state
        .tickets
        .execute(
            &id.to_string(),
            Some(0),
            Actor::user(requester).metadata(),
            |_| command.clone(),
        )
        .await
        .unwrap();
    id
}

/// A move to `to` at `at`.
pub fn status(to: TicketStatus, at: DateTime<Utc>) -> TicketCommand {
    TicketCommand::ChangeStatus {
        status: to,
        reason: None,
        at,
    }
}

/// A public reply by an agent: the ticket's first response if it is the first.
pub fn reply(agent: i64, at: DateTime<Utc>) -> TicketCommand {
    TicketCommand::AddComment {
        comment_id: uuid::Uuid::new_v4(),
        author_id: agent,
        by_staff: true,
        content: "Looking into it".into(),
        is_internal: false,
        parent_id: None,
        mentions: vec![],
        then_status: None,
        at,
    }
}

/// `who` replaces the SLA policy with `body`; the answer, whatever it is.
pub async fn try_put_sla_policy(app: &TestApp, who: &TestUser, body: Value) -> reqwest::Response {
    app.request(Method::PUT, "/api/v1/reports/sla-policy", Some(&who.token))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Targets per priority on office hours (09:00-17:00 on weekdays in `time_zone`), or around
/// the clock without a time zone: low 240/960, medium 60/480, high 30/240, critical 15/120 minutes.
pub fn office_policy(time_zone: Option<&str>) -> Value {
    let target = |f: u32, r: u32| json!({"first_response_minutes": f, "resolution_minutes": r});
    let hours = json!([["09:00", "17:00"]]);
    json!({
        "targets": {"low": target(240, 960), "medium": target(60, 480),
                    "high": target(30, 240), "critical": target(15, 120)},
        "business_hours": time_zone.map(|tz| json!({"time_zone": tz,
            "week": {"mon": hours, "tue": hours, "wed": hours, "thu": hours, "fri": hours}}))
    })
}
