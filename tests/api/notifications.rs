//! `/api/v1/notifications`: who is told what, read marks, and the Server-Sent Events stream.

use std::pin::Pin;
use std::time::{Duration, Instant};

use aggregates::approval::{ApprovalCommand, ApprovalRequest, Decision, Rule, StepSpec};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use ticketd::service::executor::Actor;
use uuid::Uuid;

use crate::helpers::{json_of, TestApp, TestUser};
use crate::steps::{assign, comment_directly, get_ok, move_to, open_ticket, set_role, users};

/// One event of a stream.
#[derive(Debug, Clone)]
pub(crate) struct SseEvent {
    id: i64,
    data: Value,
}

/// A minimal Server-Sent Events client over reqwest.
pub(crate) struct SseClient {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    buffer: String,
}

impl SseClient {
    pub(crate) async fn connect(
        app: &TestApp,
        user: &TestUser,
        last_event_id: Option<i64>,
    ) -> SseClient {
        let mut r = stream_request(app, Some(user)).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            r = r.header("last-event-id", id.to_string());
        }
        let response = r.send().await.expect("connect");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        SseClient {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event that carries data, or None if none comes within `wait`.
    pub(crate) async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().parse::<i64>().expect("numeric id"));
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if !data.is_empty() {
                    if let Some(id) = id {
                        return Some(SseEvent {
                            id,
                            data: serde_json::from_str(&data).expect("json data"),
                        });
                    }
                }
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(_) => panic!("the stream ended"),
                Err(_) => return None,
            }
        }
    }

    /// Every event up to and including the first one `is_marker` accepts. The stream delivers
    /// in notification order, so what comes before a marker caused later is everything that
    /// was sent before it: no timeout decides that nothing else arrived.
    async fn until(&mut self, is_marker: impl Fn(&SseEvent) -> bool) -> Vec<SseEvent> {
        let mut out = Vec::new();
        loop {
            let e = self
                .next(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("no marker after {out:?}"));
            let done = is_marker(&e);
            out.push(e);
            if done {
                return out;
            }
        }
    }
}

/// A request for `who`'s notification stream (no token for `None`).
fn stream_request(app: &TestApp, who: Option<&TestUser>) -> reqwest::RequestBuilder {
    let token = who.map(|u| u.token.as_str());
    app.request(Method::GET, "/api/v1/notifications/stream", token)
}

/// The user's notifications, oldest first.
async fn notifications_of(app: &TestApp, user: &TestUser) -> Vec<Value> {
    app.settle().await;
    let page = get_ok(app, user, "/api/v1/notifications/?size=100").await;
    let mut items = page["items"].as_array().unwrap().clone();
    items.reverse();
    items
}

fn kinds(items: &[Value]) -> Vec<&str> {
    items.iter().map(|n| n["kind"].as_str().unwrap()).collect()
}

#[sqlx::test]
async fn an_sse_client_gets_a_notification_within_a_second_and_resumes_after_last_event_id(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let [req, agent, lead] = users(
        &app,
        [("ann", "requester"), ("ag", "agent"), ("lead", "agent")],
    )
    .await;
    let mut stream = SseClient::connect(&app, &agent, None).await;
    // The tail cannot pass a transaction of this database that is still open (DESIGN.md), and
    // the suite's neighbours load the two cores: take the best of three tries.
    let mut latencies = Vec::new();
    let (mut id, mut first) = (0, None);
    for attempt in 0..3 {
        let t = app
            .ticket(&req, &format!("Printer on fire {attempt}"))
            .await;
        id = t["id"].as_i64().unwrap();
        let started = Instant::now();
        assign(&app, &lead, id, &agent).await;
        let e = stream
            .next(Duration::from_secs(5))
            .await
            .expect("a notification");
        latencies.push(started.elapsed());
        assert_eq!(e.data["ticket_id"], id);
        first = Some(e);
        if latencies
            .last()
            .is_some_and(|l| *l < Duration::from_secs(1))
        {
            break;
        }
    }
    assert!(
        latencies.iter().any(|l| *l < Duration::from_secs(1)),
        "no notification arrived within a second: {latencies:?}"
    );
    let first = first.unwrap();
    assert_eq!(first.data["kind"], "assigned");
    assert_eq!(first.data["actor_id"], lead.id);
    assert_eq!(first.data["id"], first.id);
    assert_eq!(first.data["read"], false);
    assert!(first.data["message"]
        .as_str()
        .unwrap()
        .contains(&format!("TKT-{id}")));
    drop(stream);

    // While the client is away: a reply from the requester, a status change, an internal note.
    comment_directly(&app, id, &req, false, "It is still burning", false, vec![]).await;
    move_to(&app, &lead, id, "in_progress").await;
    comment_directly(&app, id, &lead, true, "Call facilities", true, vec![]).await;
    let missed: Vec<i64> = notifications_of(&app, &agent)
        .await
        .iter()
        .map(|n| n["id"].as_i64().unwrap())
        .filter(|n| *n > first.id)
        .collect();
    assert_eq!(missed.len(), 3);

    // Reconnecting with Last-Event-ID replays exactly what was missed, in order ...
    // ... and then goes on live: everything before the first live event is the replay.
    let mut stream = SseClient::connect(&app, &agent, Some(first.id)).await;
    let last_missed = *missed.last().unwrap();
    move_to(&app, &lead, id, "pending").await;
    let mut replayed = stream.until(|e| e.id > last_missed).await;
    let live = replayed.pop().expect("live again");
    let replayed_ids: Vec<i64> = replayed.iter().map(|e| e.id).collect();
    assert_eq!(replayed_ids, missed);
    assert_eq!(
        replayed
            .iter()
            .map(|e| e.data["kind"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["comment", "status_changed", "comment"]
    );
    assert_eq!(live.data["kind"], "status_changed");
    // Nothing else came after it: the next event is the one a later change makes.
    move_to(&app, &lead, id, "in_progress").await;
    let later = stream.next(Duration::from_secs(5)).await.expect("later");
    let after_live: Vec<i64> = notifications_of(&app, &agent)
        .await
        .iter()
        .map(|n| n["id"].as_i64().unwrap())
        .filter(|n| *n > live.id)
        .collect();
    assert_eq!(
        after_live,
        vec![later.id],
        "one notification after the live one"
    );

    // Without Last-Event-ID a new stream starts from now: its first event is the newest one.
    let mut fresh = SseClient::connect(&app, &agent, None).await;
    move_to(&app, &lead, id, "pending").await;
    let first_fresh = fresh.next(Duration::from_secs(5)).await.expect("fresh");
    assert!(first_fresh.id > later.id, "an old notification replayed");
    assert_eq!(first_fresh.data["kind"], "status_changed");
}

#[sqlx::test]
async fn a_requesters_stream_never_carries_an_internal_note(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [admin, req, agent, helper, expert] = users(
        &app,
        [
            ("root", "admin"),
            ("ann", "requester"),
            ("ag", "agent"),
            ("helper", "agent"),
            ("expert", "manager"),
        ],
    )
    .await;
    let id = open_ticket(&app, &req, "Laptop stolen").await;
    assign(&app, &agent, id, &agent).await;
    comment_directly(&app, id, &helper, true, "I can help", false, vec![]).await; // helper now follows
    app.settle().await;

    let mut stream = SseClient::connect(&app, &req, None).await;
    let mut helper_stream = SseClient::connect(&app, &helper, None).await;
    // An internal note that even mentions the requester, then a public reply.
    comment_directly(
        &app,
        id,
        &agent,
        true,
        "Secret: it was the CFO",
        true,
        vec![req.id, expert.id],
    )
    .await;
    comment_directly(&app, id, &agent, true, "We are on it", false, vec![]).await;

    // The note comes first in the log: had it been sent, it would arrive before the reply; a
    // status change after both marks the end of what the two comments sent.
    move_to(&app, &agent, id, "in_progress").await;
    let mut got = stream.until(|e| e.data["kind"] == "status_changed").await;
    got.pop();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].data["kind"], "comment");
    assert_eq!(got[0].data["excerpt"], "We are on it");
    assert_eq!(got[0].data["internal"], false);
    for e in &got {
        assert!(!e.data.to_string().contains("Secret"));
    }
    let listed = notifications_of(&app, &req).await;
    assert_eq!(
        listed
            .iter()
            .map(|n| n["excerpt"].as_str())
            .collect::<Vec<_>>(),
        vec![Some("I can help"), Some("We are on it"), None],
        "two comments and the status change"
    );
    assert!(!listed.iter().any(|n| n.to_string().contains("Secret")));

    // Staff hear about it: a following agent as a comment, a mentioned manager as a mention.
    let mut seen = helper_stream
        .until(|e| e.data["kind"] == "status_changed")
        .await;
    seen.pop();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (
            seen[0].data["kind"].as_str(),
            seen[0].data["internal"].as_bool()
        ),
        (Some("comment"), Some(true))
    );
    let expert_items = notifications_of(&app, &expert).await;
    assert_eq!(kinds(&expert_items), vec!["mention"]);
    assert_eq!(expert_items[0]["internal"], true);

    // If the helper becomes a requester, the internal note disappears from their list and
    // their stream too.
    set_role(&app, &admin, &helper, "requester").await;
    let now = notifications_of(&app, &helper).await;
    assert_eq!(
        now.iter()
            .map(|n| (n["kind"].as_str().unwrap(), n["internal"].as_bool()))
            .collect::<Vec<_>>(),
        vec![("comment", Some(false)), ("status_changed", Some(false))],
        "the public notifications stay listed, the internal one is gone"
    );
    // The replay from the start is the list, then the live marker.
    let mut replay = SseClient::connect(&app, &helper, Some(0)).await;
    // (A requester follows no one else's ticket: the marker is a reply on their own.)
    let own = open_ticket(&app, &helper, "Marker ticket").await;
    comment_directly(&app, own, &agent, true, "Marker", false, vec![]).await;
    let mut replayed = replay.until(|e| e.data["excerpt"] == "Marker").await;
    replayed.pop();
    let replayed_ids: Vec<i64> = replayed.iter().map(|e| e.id).collect();
    let listed_ids: Vec<i64> = now.iter().map(|n| n["id"].as_i64().unwrap()).collect();
    assert_eq!(
        replayed_ids, listed_ids,
        "the replay is the list: {replayed:?}"
    );
}

#[sqlx::test]
async fn assignment_replies_mentions_status_and_approvals_notify_everyone_but_the_actor(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let [req, other, agent, lead, boss, cab, deputy] = users(
        &app,
        [
            ("ann", "requester"),
            ("bob", "requester"),
            ("ag", "agent"),
            ("lead", "agent"),
            ("boss", "manager"),
            ("cab", "manager"),
            ("deputy", "agent"),
        ],
    )
    .await;
    let id = open_ticket(&app, &req, "New VPN account").await;

    assign(&app, &lead, id, &agent).await; // agent: assigned
    assign(&app, &agent, id, &agent).await; // nobody: the actor assigned themself
    move_to(&app, &agent, id, "in_progress").await; // ann: status
    comment_directly(&app, id, &req, false, "Thanks!", false, vec![]).await; // agent: comment

    // A public mention of a manager, and of a requester who cannot see the ticket.
    comment_directly(
        &app,
        id,
        &agent,
        true,
        "@boss please approve",
        false,
        vec![boss.id, other.id],
    )
    .await; // ann: comment, boss: mention

    let at = chrono::Utc::now();
    let approval = Uuid::new_v4();
    let meta = |u: &TestUser| Actor::user(u.id).metadata();
    let steps = vec![
        StepSpec {
            name: "Manager".into(),
            approver_ids: vec![boss.id, agent.id],
            rule: Rule::Any,
            min_approvals: None,
        },
        StepSpec {
            name: "CAB".into(),
            approver_ids: vec![cab.id],
            rule: Rule::Any,
            min_approvals: None,
        },
    ];
    app.state
        .approvals
        .execute(&approval.to_string(), Some(0), meta(&agent), |_| {
            ApprovalCommand::RequestApproval(ApprovalRequest {
                id: approval,
                ticket_id: id,
                ticket_requester_id: req.id,
                requested_by: agent.id,
                steps: steps.clone(),
                reason: None,
                at,
            })
        })
        .await
        .expect("request"); // boss: approval (agent is the actor)
    app.state
        .approvals
        .execute(&approval.to_string(), None, meta(&boss), |_| {
            ApprovalCommand::Delegate {
                from_user_id: boss.id,
                to_user_id: deputy.id,
                comment: None,
                at,
            }
        })
        .await
        .expect("delegate"); // deputy: approval
    app.state
        .approvals
        .execute(&approval.to_string(), None, meta(&deputy), |_| {
            ApprovalCommand::Decide {
                approver_id: deputy.id,
                decision: Decision::Approve,
                comment: None,
                at,
            }
        })
        .await
        .expect("decide"); // cab: approval (the next step)

    let ann = notifications_of(&app, &req).await;
    assert_eq!(kinds(&ann), vec!["status_changed", "comment"]);
    assert!(ann[0]["message"]
        .as_str()
        .unwrap()
        .contains("from open to in_progress"));
    let ag = notifications_of(&app, &agent).await;
    assert_eq!(kinds(&ag), vec!["assigned", "comment"]);
    assert_eq!(ag[1]["excerpt"], "Thanks!");
    let bs = notifications_of(&app, &boss).await;
    assert_eq!(kinds(&bs), vec!["mention", "approval_requested"]);
    assert_eq!(bs[1]["approval_id"], approval.to_string());
    assert!(bs[1]["message"].as_str().unwrap().contains("Manager"));
    let dp = notifications_of(&app, &deputy).await;
    assert_eq!(kinds(&dp), vec!["approval_requested"]);
    assert!(dp[0]["message"]
        .as_str()
        .unwrap()
        .contains("delegated to you"));
    let cb = notifications_of(&app, &cab).await;
    assert_eq!(kinds(&cb), vec!["approval_requested"]);
    assert!(cb[0]["message"].as_str().unwrap().contains("CAB"));
    assert!(cb[0]["message"]
        .as_str()
        .unwrap()
        .contains("New VPN account"));
    assert!(notifications_of(&app, &other).await.is_empty());
    assert!(notifications_of(&app, &lead).await.is_empty());
}

#[sqlx::test]
async fn notifications_are_marked_read_one_by_one_or_all_at_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [req, other, agent] = users(
        &app,
        [("ann", "requester"), ("bob", "requester"), ("ag", "agent")],
    )
    .await;
    let id = open_ticket(&app, &req, "Mouse broken").await;
    move_to(&app, &agent, id, "in_progress").await;
    comment_directly(&app, id, &agent, true, "Ordered a new one", false, vec![]).await;
    move_to(&app, &agent, id, "resolved").await;

    let items = notifications_of(&app, &req).await;
    assert_eq!(items.len(), 3);
    let first = items[0]["id"].as_i64().unwrap();
    let r = app
        .post(
            &format!("/api/v1/notifications/{first}/read"),
            &req.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Idempotent for the owner; 404 for anyone else and for unknown ids.
    assert_eq!(
        app.post(
            &format!("/api/v1/notifications/{first}/read"),
            &req.token,
            json!({})
        )
        .await
        .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.post(
            &format!("/api/v1/notifications/{first}/read"),
            &other.token,
            json!({})
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post("/api/v1/notifications/999999/read", &req.token, json!({}))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    let unread = get_ok(&app, &req, "/api/v1/notifications?unread=true").await;
    assert_eq!(unread["total"], 2);
    assert_eq!(unread["unread_count"], 2);
    let read = get_ok(&app, &req, "/api/v1/notifications?unread=false").await;
    assert_eq!(read["total"], 1);
    assert_eq!(read["items"][0]["read"], true);
    assert!(read["items"][0]["read_at"].is_string());
    let paged = get_ok(&app, &req, "/api/v1/notifications?size=2&page=2").await;
    assert_eq!(
        (paged["total"].as_i64(), paged["pages"].as_i64()),
        (Some(3), Some(2))
    );
    assert_eq!(paged["items"][0]["id"], first);

    assert_eq!(
        app.post("/api/v1/notifications/read-all", &req.token, json!({}))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let all = get_ok(&app, &req, "/api/v1/notifications/").await;
    assert_eq!(all["unread_count"], 0);
    assert!(all["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["read"] == true));
    let bad = json_of(
        app.get("/api/v1/notifications?unread=maybe", &req.token)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(bad["detail"][0]["loc"], json!(["query", "unread"]));
}

#[sqlx::test]
async fn the_stream_needs_the_authorization_header_and_a_numeric_last_event_id(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let user = app.user("ann@example.com", "requester").await;
    let r = stream_request(&app, None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A token in the URL is not a credential.
    let r = app
        .request(
            Method::GET,
            &format!("/api/v1/notifications/stream?access_token={}", user.token),
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = stream_request(&app, Some(&user))
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["detail"][0]["loc"], json!(["header", "Last-Event-ID"]));
    // The stream opens with a retry hint, and proxies are asked not to buffer it.
    let r = stream_request(&app, Some(&user)).send().await.unwrap();
    assert_eq!(r.headers()["x-accel-buffering"], "no");
    let mut body = r.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(2), body.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("retry: 5000"));
}

#[sqlx::test]
async fn a_deactivated_users_stream_ends(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [admin, agent] = users(&app, [("root", "admin"), ("ag", "agent")]).await;
    let r = stream_request(&app, Some(&agent)).send().await.unwrap();
    let mut body = r.bytes_stream();
    let r = app
        .delete(&format!("/api/v1/users/{}", agent.id), &admin.token)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream stayed open");
}

#[sqlx::test]
async fn a_rebuild_gives_the_same_notifications_and_keeps_read_marks(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [req, agent, boss] = users(
        &app,
        [("ann", "requester"), ("ag", "agent"), ("boss", "manager")],
    )
    .await;
    for title in ["One", "Two"] {
        let id = open_ticket(&app, &req, title).await;
        assign(&app, &boss, id, &agent).await;
        comment_directly(&app, id, &agent, true, "internal", true, vec![boss.id]).await;
        comment_directly(&app, id, &req, false, "public", false, vec![]).await;
        move_to(&app, &agent, id, "in_progress").await;
    }
    let before = notifications_of(&app, &req).await;
    let first = before[0]["id"].as_i64().unwrap();
    app.post(
        &format!("/api/v1/notifications/{first}/read"),
        &req.token,
        json!({}),
    )
    .await;
    let snapshot = || async {
        let rows: Vec<(i64, String, i64, String, bool)> = sqlx::query_as(
            "select user_id, kind, source_position, message, internal from rm_notifications order by source_position, user_id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        rows
    };
    let old = snapshot().await;
    let old_max: i64 = sqlx::query_scalar("select max(id) from rm_notifications")
        .fetch_one(&pool)
        .await
        .unwrap();
    projections::rebuild::rebuild(
        &pool,
        &projections::notifications::NotificationsProjection,
        3,
    )
    .await
    .expect("rebuild");
    assert_eq!(snapshot().await, old);
    let min: i64 = sqlx::query_scalar("select min(id) from rm_notifications")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(min > old_max, "ids keep increasing across a rebuild");
    let after = notifications_of(&app, &req).await;
    assert_eq!(after[0]["read"], true);
    assert_eq!(after.iter().filter(|n| n["read"] == true).count(), 1);
}
