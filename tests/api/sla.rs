//! SLA at a glance: the `sla` object of list rows, search rows and the ticket itself,
//! `sort=sla_due` and `sla=warning|breached`, over a scripted history on office hours with a
//! pause, judged at a fixed clock that the test moves; and a command's answer, whose SLA
//! comes from its own events before the list has applied them.

use aggregates::{Priority, TicketStatus, TicketType};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{json_of, FixedClock, TestApp, TestUser};
use crate::steps::{
    get_ok, move_to, office_policy, open_at, reply, run_directly, status, try_put_sla_policy, users,
};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The titles of a list's rows, in order.
fn titles(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_string())
        .collect()
}

/// Every row of `path` (one page of 100), asserting that its total is the rows' number.
async fn rows(app: &TestApp, who: &TestUser, path: &str) -> Value {
    let sep = if path.contains('?') { '&' } else { '?' };
    let page = get_ok(app, who, &format!("{path}{sep}size=100")).await;
    let n = page["items"].as_array().unwrap().len();
    assert_eq!(page["total"], json!(n), "{path}: total and rows differ");
    page
}

/// The desk of the scenario, opened through the aggregate at these times (UTC office hours,
/// 09:00-17:00 on weekdays; medium: first response 60 business minutes, high: 30).
/// Monday 2026-03-09 is the day the clock shows.
async fn scripted_desk(app: &TestApp, requester: i64, agent: i64) {
    use TicketStatus::*;
    let medium = Priority::Medium;
    let open = |title: &'static str, priority: Priority, at: &'static str| async move {
        open_at(
            app,
            requester,
            title,
            priority,
            TicketType::Incident,
            utc(at),
        )
        .await
    };
    // Alpha: Friday 16:30: 30 minutes on Friday, due Monday 09:30 (the weekend does not count).
    open("Alpha", medium, "2026-03-06T16:30:00Z").await;
    // Bravo: Monday 09:30, due 10:30 (warns at 10:18).
    open("Bravo", medium, "2026-03-09T09:30:00Z").await;
    // Charlie: Monday 09:05, due 10:05 (warns at 09:53).
    open("Charlie", medium, "2026-03-09T09:05:00Z").await;
    // Delta: Friday 16:00, pending from 16:30 (30 minutes used) until Monday 09:50: due 10:20,
    // warns at 10:08. Without the pause it would have been due at Friday's closing.
    let d = open("Delta", medium, "2026-03-06T16:00:00Z").await;
    for (to, at) in [
        (InProgress, "2026-03-06T16:10:00Z"),
        (Pending, "2026-03-06T16:30:00Z"),
        (InProgress, "2026-03-09T09:50:00Z"),
    ] {
        run_directly(app, d, agent, status(to, utc(at))).await;
    }
    // Echo: high, Monday 09:55, due 10:25 (warns at 10:19).
    open("Echo", Priority::High, "2026-03-09T09:55:00Z").await;
    // Foxtrot: answered and resolved on Monday morning: both targets met, no due time.
    let f = open("Foxtrot", medium, "2026-03-09T09:00:00Z").await;
    run_directly(app, f, agent, reply(agent, utc("2026-03-09T09:10:00Z"))).await;
    for (to, at) in [
        (InProgress, "2026-03-09T09:15:00Z"),
        (Resolved, "2026-03-09T09:40:00Z"),
    ] {
        run_directly(app, f, agent, status(to, utc(at))).await;
    }
    // Golf: pending since Monday 09:20 after 20 minutes: paused, no due time.
    let g = open("Golf", medium, "2026-03-09T09:00:00Z").await;
    for (to, at) in [
        (InProgress, "2026-03-09T09:05:00Z"),
        (Pending, "2026-03-09T09:20:00Z"),
    ] {
        run_directly(app, g, agent, status(to, utc(at))).await;
    }
}

#[sqlx::test]
async fn sort_by_sla_due_and_the_sla_filters_follow_business_hours_and_pauses_at_a_fixed_clock(
    pool: PgPool,
) {
    let clock = FixedClock::at(utc("2026-03-09T10:00:00Z"));
    let app = TestApp::spawn_at(pool, clock.clone()).await;
    let [requester, agent, admin] = users(
        &app,
        [
            ("requester", "requester"),
            ("agent", "agent"),
            ("admin", "admin"),
        ],
    )
    .await;
    let r = try_put_sla_policy(&app, &admin, office_policy(Some("UTC"))).await;
    json_of(r, StatusCode::OK).await;
    scripted_desk(&app, requester.id, agent.id).await;
    app.settle().await;

    let list = |query: &'static str| rows(&app, &agent, query);
    let by_due = list("/api/v1/tickets?sort=sla_due").await;
    assert_eq!(
        titles(&by_due),
        ["Alpha", "Charlie", "Delta", "Echo", "Bravo", "Foxtrot", "Golf"]
    );
    let dues: Vec<Value> = by_due["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["sla"]["due"].clone())
        .collect();
    assert_eq!(
        dues,
        [
            json!("2026-03-09T09:30:00Z"),
            json!("2026-03-09T10:05:00Z"),
            json!("2026-03-09T10:20:00Z"),
            json!("2026-03-09T10:25:00Z"),
            json!("2026-03-09T10:30:00Z"),
            Value::Null,
            Value::Null,
        ]
    );
    let first = &by_due["items"][0]["sla"];
    assert_eq!(
        first,
        &json!({
            "first_response": {"due": "2026-03-09T09:30:00Z", "state": "breached"},
            "resolution": {"due": "2026-03-09T16:30:00Z", "state": "ok"},
            "due": "2026-03-09T09:30:00Z", "state": "breached"
        })
    );
    let states: Vec<&str> = by_due["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["sla"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["breached", "warning", "ok", "ok", "ok", "met", "paused"]
    );

    // As the clock moves, tickets warn and then breach, with no event in between.
    for (now, breached, warning) in [
        ("2026-03-09T10:00:00Z", vec!["Alpha"], vec!["Charlie"]),
        (
            "2026-03-09T10:10:00Z",
            vec!["Alpha", "Charlie"],
            vec!["Delta"],
        ),
        (
            "2026-03-09T10:21:00Z",
            vec!["Alpha", "Charlie", "Delta"],
            vec!["Echo", "Bravo"],
        ),
    ] {
        clock.set(utc(now));
        let got = list("/api/v1/tickets?sla=breached&sort=sla_due").await;
        assert_eq!(titles(&got), breached, "breached at {now}");
        let got = list("/api/v1/tickets?sla=warning&sort=sla_due").await;
        assert_eq!(titles(&got), warning, "warning at {now}");
        let both = list("/api/v1/tickets?sla=warning,breached&sort=sla_due").await;
        assert_eq!(both["total"], json!(breached.len() + warning.len()));
    }
}

#[sqlx::test]
async fn list_search_and_the_ticket_itself_show_the_same_sla(pool: PgPool) {
    let clock = FixedClock::at(utc("2026-03-09T10:00:00Z"));
    let app = TestApp::spawn_at(pool, clock).await;
    let [requester, agent, admin] = users(
        &app,
        [
            ("requester", "requester"),
            ("agent", "agent"),
            ("admin", "admin"),
        ],
    )
    .await;
    let r = try_put_sla_policy(&app, &admin, office_policy(Some("UTC"))).await;
    json_of(r, StatusCode::OK).await;
    scripted_desk(&app, requester.id, agent.id).await;
    app.settle().await;

    let listed = rows(&app, &agent, "/api/v1/tickets").await;
    let searched = get_ok(&app, &agent, "/api/v1/tickets/search?q=alpha").await;
    let mut seen_states = Vec::new();
    for row in listed["items"].as_array().unwrap() {
        let id = row["id"].as_i64().unwrap();
        let detail = get_ok(&app, &agent, &format!("/api/v1/tickets/{id}")).await;
        assert_eq!(detail["sla"], row["sla"], "ticket {id}: detail and list");
        // The requester sees the same on their own ticket.
        let theirs = get_ok(&app, &requester, &format!("/api/v1/tickets/{id}")).await;
        assert_eq!(theirs["sla"], row["sla"]);
        seen_states.push(row["sla"]["state"].as_str().unwrap().to_string());
        if row["title"] == "Alpha" {
            let hit = &searched["items"][0];
            assert_eq!(hit["id"], row["id"]);
            assert_eq!(hit["sla"], row["sla"], "search and list");
        }
    }
    seen_states.sort();
    seen_states.dedup();
    assert_eq!(seen_states, ["breached", "met", "ok", "paused", "warning"]);
    let met = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["title"] == "Foxtrot")
        .unwrap();
    assert_eq!(
        met["sla"],
        json!({"first_response": {"due": null, "state": "met"},
               "resolution": {"due": null, "state": "met"}, "due": null, "state": "met"})
    );
}

#[sqlx::test]
async fn a_command_answer_carries_the_sla_of_its_own_events_before_the_list_has_applied_them(
    pool: PgPool,
) {
    // The list has the ticket as opened...
    let app = TestApp::spawn(pool.clone()).await;
    let [requester, agent] = users(&app, [("requester", "requester"), ("agent", "agent")]).await;
    let created = json_of(
        app.post(
            "/api/v1/tickets/",
            &requester.token,
            json!({"title": "Paused soon", "priority": "high"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    // Default policy, around the clock: high is 60 minutes to first response, 480 to
    // resolution, both running from the creation.
    let opened = utc(created["created_at"].as_str().unwrap());
    let due = |minutes: i64| json!(opened + chrono::Duration::minutes(minutes));
    assert_eq!(created["sla"]["state"], "ok");
    assert_eq!(created["sla"]["first_response"]["due"], due(60));
    assert_eq!(created["sla"]["resolution"]["due"], due(480));
    assert_eq!(created["sla"]["due"], due(60));
    app.settle().await;
    drop(app);

    // ...and stays so while no projection runs: the answers come from the events.
    let app = TestApp::spawn_without_projections(pool).await;
    move_to(&app, &agent, id, "in_progress").await;
    let paused = move_to(&app, &agent, id, "pending").await;
    assert_eq!(
        paused["sla"],
        json!({"first_response": {"due": null, "state": "paused"},
               "resolution": {"due": null, "state": "paused"}, "due": null, "state": "paused"})
    );
    let read = get_ok(&app, &agent, &format!("/api/v1/tickets/{id}")).await;
    assert_eq!(read["sla"], paused["sla"]);
    let (status, version): (String, i64) =
        sqlx::query_as("select status, version from rm_tickets where id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), version),
        ("open", 1),
        "the list row is behind"
    );
    let listed = get_ok(&app, &agent, "/api/v1/tickets").await;
    assert_eq!(listed["items"][0]["sla"]["state"], "ok");
}

/// The first-response due of a new high-priority ticket opened on `app`, in minutes after
/// its creation (the answer's own SLA).
async fn first_response_minutes(app: &TestApp, requester: &TestUser) -> i64 {
    let created = json_of(
        app.post(
            "/api/v1/tickets/",
            &requester.token,
            json!({"title": "Policy probe", "priority": "high"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let opened = utc(created["created_at"].as_str().unwrap());
    let due = utc(created["sla"]["first_response"]["due"].as_str().unwrap());
    (due - opened).num_minutes()
}

#[sqlx::test]
async fn a_new_sla_policy_reaches_new_tickets_answers_at_once_here_and_soon_on_another_server(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let other = TestApp::spawn_without_projections(pool).await;
    let [requester, admin] = users(&app, [("requester", "requester"), ("admin", "admin")]).await;
    // Both servers answer with the default policy (high: 60 minutes), and keep it in memory.
    assert_eq!(first_response_minutes(&app, &requester).await, 60);
    assert_eq!(first_response_minutes(&other, &requester).await, 60);
    let saved = try_put_sla_policy(&app, &admin, office_policy(None)).await;
    assert_eq!(saved.status(), StatusCode::OK);
    // Here at once (high: 30 minutes)...
    assert_eq!(first_response_minutes(&app, &requester).await, 30);
    // ...and on the other server as soon as the change notice arrives.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let minutes = first_response_minutes(&other, &requester).await;
        if minutes == 30 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the other server still answers with the old policy ({minutes} minutes)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
