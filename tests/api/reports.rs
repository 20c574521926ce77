//! Reports: the dashboard, analytics, the export and the SLA policy, over scripted histories
//! with fixed times checked against hand-computed figures; the rebuild that applies a changed
//! policy to the past; CSV escaping; roles; and the `ticketd report` command line.

use std::collections::BTreeMap;

use aggregates::approval::ApprovalCommand;
use aggregates::ticket::TicketCommand;
use aggregates::{Priority, TicketStatus, TicketType};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use ticketd::service::executor::Actor;
use uuid::Uuid;

use crate::helpers::{json_of, ticketd, TestApp, TestUser};
use crate::steps::{
    get_ok, locs, office_policy, open_at, reply, run_directly, status, try_open_ticket_with,
    try_put_sla_policy, users,
};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// An assignment to `agent`.
fn assign_to(agent: i64, at: DateTime<Utc>) -> TicketCommand {
    TicketCommand::AssignTicket {
        assignee_id: Some(agent),
        at,
    }
}

/// A ticket's usual life, at these times: `agent` answers it, starts work, waits on the
/// requester (pending), resumes and resolves it.
fn answered_paused_resolved(agent: i64, at: [&str; 5]) -> Vec<TicketCommand> {
    use TicketStatus::{InProgress, Pending, Resolved};
    let [answered, started, paused, resumed, resolved] = at.map(utc);
    vec![
        reply(agent, answered),
        status(InProgress, started),
        status(Pending, paused),
        status(InProgress, resumed),
        status(Resolved, resolved),
    ]
}

/// Runs `commands` on a ticket as `actor`, in order.
async fn run_all(app: &TestApp, id: i64, actor: i64, commands: Vec<TicketCommand>) {
    for command in commands {
        run_directly(app, id, actor, command).await;
    }
}

async fn export_rows(app: &TestApp, user: &TestUser, query: &str) -> BTreeMap<String, Value> {
    let r = app
        .get(
            &format!("/api/v1/reports/export?format=json&{query}"),
            &user.token,
        )
        .await;
    let rows = json_of(r, StatusCode::OK).await;
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| (r["title"].as_str().unwrap().to_string(), r.clone()))
        .collect()
}

#[sqlx::test]
async fn requesters_and_agents_are_refused_every_report_and_only_admins_change_the_policy(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let [requester, agent, manager, admin] = users(
        &app,
        [
            ("requester", "requester"),
            ("agent", "agent"),
            ("manager", "manager"),
            ("admin", "admin"),
        ],
    )
    .await;
    let paths = [
        "/api/v1/reports/dashboard",
        "/api/v1/reports/analytics",
        "/api/v1/reports/export",
        "/api/v1/reports/sla-policy",
    ];
    for path in paths {
        for user in [&requester, &agent] {
            let body = json_of(app.get(path, &user.token).await, StatusCode::FORBIDDEN).await;
            assert_eq!(body["code"], "PERMISSION_ERROR", "{path}");
        }
        for user in [&manager, &admin] {
            let r = app.get(path, &user.token).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
        }
        let r = app.request(Method::GET, path, None).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let policy = json!({"targets": {
        "low": {"first_response_minutes": 60, "resolution_minutes": 600},
        "medium": {"first_response_minutes": 60, "resolution_minutes": 600},
        "high": {"first_response_minutes": 60, "resolution_minutes": 600},
        "critical": {"first_response_minutes": 60, "resolution_minutes": 600}}});
    for user in [&requester, &agent, &manager] {
        let r = try_put_sla_policy(&app, user, policy.clone()).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    let saved = json_of(
        try_put_sla_policy(&app, &admin, policy).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(saved["version"], 1);
    assert_eq!(saved["targets"]["high"]["resolution_minutes"], 600);
    assert_eq!(
        saved["rebuild_command"],
        "ticketd projections rebuild reports"
    );
    let read = get_ok(&app, &manager, "/api/v1/reports/sla-policy").await;
    assert_eq!(read["version"], 1);
    assert_eq!(read["updated_by"], admin.id);
}

#[sqlx::test]
async fn a_bad_policy_is_refused_field_by_field_and_nothing_is_stored(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let admin = app.user("admin@example.com", "admin").await;
    let put = |body: Value| try_put_sla_policy(&app, &admin, body);
    let target = json!({"first_response_minutes": 30, "resolution_minutes": 240});
    let r = put(json!({
        "targets": {"low": target, "medium": target, "high": {"first_response_minutes": 0, "resolution_minutes": 240},
                    "critical": {"first_response_minutes": 500, "resolution_minutes": 240}},
        "business_hours": {"time_zone": "Nowhere/Atlantis",
                           "week": {"mon": [["17:00", "09:00"]], "tue": [["09:00", "25:00"]]}}
    }))
    .await;
    let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        locs(&body),
        vec![
            json!(["body", "targets", "high", "first_response_minutes"]),
            json!(["body", "targets", "critical", "first_response_minutes"]),
            json!(["body", "business_hours", "time_zone"]),
            json!(["body", "business_hours", "week", "mon", 0]),
            json!(["body", "business_hours", "week", "tue", 0]),
            json!(["body", "business_hours", "week"]),
        ]
    );
    // Wrong shapes are 422 too, located by serde.
    let r = put(json!({"targets": {"low": target, "medium": target, "high": target}})).await;
    let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "targets", "critical"])
    );
    let (n,): (i64,) = sqlx::query_as("select count(*) from sla_policies")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let read = get_ok(&app, &admin, "/api/v1/reports/sla-policy").await;
    assert_eq!(read["version"], 0, "the built-in default is still in force");
    assert_eq!(read["targets"]["critical"]["first_response_minutes"], 30);
}

#[sqlx::test]
async fn the_dashboard_adds_up_a_scripted_history(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [requester, agent, agent2, manager] = users(
        &app,
        [
            ("requester", "requester"),
            ("agent", "agent"),
            ("agent2", "agent"),
            ("manager", "manager"),
        ],
    )
    .await;
    let (r, a) = (requester.id, agent.id);
    let t0 = Utc::now().trunc_subsecs(0);
    let ago = |h: i64| t0 - Duration::hours(h);
    let m = Duration::minutes;
    use TicketStatus::*;

    // A: high, answered in 30 min, resolved in 2 h.
    let ta = ago(5 * 24);
    let id = open_at(&app, r, "A", Priority::High, TicketType::Incident, ta).await;
    run_directly(&app, id, a, assign_to(a, ta + m(1))).await;
    run_directly(&app, id, a, reply(a, ta + m(30))).await;
    run_directly(&app, id, a, status(InProgress, ta + m(40))).await;
    run_directly(&app, id, a, status(Resolved, ta + m(120))).await;
    // B: medium, answered in 1 h, pending 24 h, resolved after 30 h (6 h on the clock).
    let tb = ago(4 * 24);
    let id = open_at(&app, r, "B", Priority::Medium, TicketType::Incident, tb).await;
    run_directly(&app, id, a, reply(a, tb + m(60))).await;
    run_directly(&app, id, a, status(InProgress, tb + m(60))).await;
    run_directly(&app, id, a, status(Pending, tb + m(120))).await;
    run_directly(&app, id, a, status(InProgress, tb + m(26 * 60))).await;
    run_directly(&app, id, a, status(Resolved, tb + m(30 * 60))).await;
    // C: critical, answered after 2 h (target 30 min), resolved after 10 h (target 4 h).
    let tc = ago(3 * 24);
    let id = open_at(&app, r, "C", Priority::Critical, TicketType::Incident, tc).await;
    run_directly(&app, id, a, assign_to(a, tc + m(1))).await;
    run_directly(&app, id, a, reply(a, tc + m(120))).await;
    run_directly(&app, id, a, status(InProgress, tc + m(120))).await;
    run_directly(&app, id, a, status(Resolved, tc + m(600))).await;
    // D: low service request, answered in 10 min, in progress with agent 2 (due in a day).
    let td = ago(2 * 24);
    let id = open_at(&app, r, "D", Priority::Low, TicketType::ServiceRequest, td).await;
    let live_ticket = id;
    run_directly(&app, id, a, reply(a, td + m(10))).await;
    run_directly(&app, id, a, status(InProgress, td + m(20))).await;
    run_directly(
        &app,
        id,
        a,
        TicketCommand::AssignTicket {
            assignee_id: Some(agent2.id),
            at: td + m(21),
        },
    )
    .await;
    // E: medium, untouched for 40 days: both targets missed.
    open_at(
        &app,
        r,
        "E",
        Priority::Medium,
        TicketType::Incident,
        ago(40 * 24),
    )
    .await;
    // F: high, opened 30 min ago: first response due in 30 min (at risk within the hour).
    open_at(
        &app,
        r,
        "F",
        Priority::High,
        TicketType::Incident,
        t0 - m(30),
    )
    .await;
    // G: medium, pending after 1 h: its clock is paused.
    let tg = ago(6);
    let id = open_at(&app, r, "G", Priority::Medium, TicketType::Incident, tg).await;
    run_directly(&app, id, a, status(InProgress, tg + m(30))).await;
    run_directly(&app, id, a, status(Pending, tg + m(60))).await;
    // H: deleted: in no report.
    let th = ago(24);
    let id = open_at(&app, r, "H", Priority::Critical, TicketType::Incident, th).await;
    run_directly(
        &app,
        id,
        a,
        TicketCommand::DeleteTicket {
            reason: None,
            at: th + m(60),
        },
    )
    .await;
    // Approvals on the live ticket D (the approval process cancels those of a deleted
    // ticket): one pending for two days, one withdrawn.
    let id = live_ticket;
    for (hours, cancel) in [(48, false), (1, true)] {
        let at = ago(hours);
        let approval = app
            .request_approval_directly(id, r, a, manager.id, at)
            .await;
        if cancel {
            app.state
                .approvals
                .execute(
                    &approval.to_string(),
                    None,
                    Actor::user(a).metadata(),
                    move |_| ApprovalCommand::Cancel {
                        by: a,
                        by_staff: true,
                        at: at + m(5),
                    },
                )
                .await
                .unwrap();
        }
    }
    app.settle().await;

    let d = get_ok(&app, &manager, "/api/v1/reports/dashboard").await;
    assert_eq!(
        d["by_status"],
        json!({"open": 2, "in_progress": 1, "pending": 1, "resolved": 3, "closed": 0, "cancelled": 0})
    );
    assert_eq!(d["open_backlog"], 4);
    assert_eq!(
        d["by_priority"],
        json!({"low": 1, "medium": 2, "high": 1, "critical": 0})
    );
    assert_eq!(d["by_type"]["incident"], 3);
    assert_eq!(d["by_type"]["service_request"], 1);
    let mut assignees = serde_json::Map::new();
    assignees.insert(agent2.id.to_string(), json!(1));
    assignees.insert("none".into(), json!(3));
    assert_eq!(d["by_assignee"], Value::Object(assignees));
    assert_eq!(
        d["backlog_by_age"],
        json!([{"bucket": "<1d", "count": 2}, {"bucket": "1-3d", "count": 1},
               {"bucket": "3-7d", "count": 0}, {"bucket": "7-30d", "count": 0},
               {"bucket": ">30d", "count": 1}])
    );
    // First responses 600, 1800, 3600, 7200 s; resolutions 7200, 36000, 108000 s.
    assert_eq!(d["median_first_response_seconds"], 2700.0);
    assert_eq!(d["p90_first_response_seconds"], 6120.0);
    assert_eq!(d["median_resolution_seconds"], 36000.0);
    assert_eq!(d["p90_resolution_seconds"], 93600.0);
    // E is past both targets; F's first response is due within the hour; G is paused.
    assert_eq!(d["sla_breaches"], 1);
    assert_eq!(
        d["sla"]["breached"],
        json!({"first_response": 1, "resolution": 1, "any": 1})
    );
    assert_eq!(
        d["sla"]["at_risk"],
        json!({"first_response": 1, "resolution": 0, "any": 1})
    );
    assert_eq!(d["sla"]["paused"], 1);
    assert_eq!(d["sla"]["at_risk_minutes"], 60);
    assert_eq!(
        d["sla"]["missed_last_30_days"],
        json!({"first_response": 1, "resolution": 1, "any": 2})
    );
    // Daily flow: the last 30 UTC days, today last.
    let days = d["created_vs_resolved"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[29]["date"], t0.date_naive().to_string());
    let mut expected: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for t in [ta, tb, tc, td, t0 - m(30), tg] {
        expected.entry(t.date_naive().to_string()).or_default().0 += 1;
    }
    for t in [ta + m(120), tb + m(30 * 60), tc + m(600)] {
        expected.entry(t.date_naive().to_string()).or_default().1 += 1;
    }
    let got: BTreeMap<String, (i64, i64)> = days
        .iter()
        .filter(|p| p["created"] != 0 || p["resolved"] != 0)
        .map(|p| {
            (
                p["date"].as_str().unwrap().to_string(),
                (
                    p["created"].as_i64().unwrap(),
                    p["resolved"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert_eq!(d["pending_approvals"], 1);
    let oldest = d["approvals"]["oldest_age_seconds"].as_f64().unwrap();
    assert!(
        (48.0 * 3600.0..48.0 * 3600.0 + 120.0).contains(&oldest),
        "{oldest}"
    );
    assert_eq!(
        d["approvals"]["by_age"][1],
        json!({"bucket": "1-3d", "count": 1})
    );
    assert_eq!(
        d["policy"],
        json!({"version": 0, "applied_to_history": true})
    );

    // A shorter horizon: nothing at risk. A bad one: 422.
    let d = get_ok(
        &app,
        &manager,
        "/api/v1/reports/dashboard?at_risk_minutes=10",
    )
    .await;
    assert_eq!(d["sla"]["at_risk"]["any"], 0);
    let bad = json_of(
        app.get(
            "/api/v1/reports/dashboard?at_risk_minutes=0",
            &manager.token,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(bad["detail"][0]["loc"], json!(["query", "at_risk_minutes"]));

    // The dashboard is cached for a moment, but a client that sends back the consistency
    // token of its write sees it.
    let fresh = json!({"title": "Fresh", "priority": "medium", "type": "issue"});
    let r = try_open_ticket_with(&app, &requester, fresh).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let token = r.headers()["x-consistency-token"].clone();
    let r = app
        .request(
            Method::GET,
            "/api/v1/reports/dashboard",
            Some(&manager.token),
        )
        .header("x-consistency-token", token)
        .send()
        .await
        .unwrap();
    let d = json_of(r, StatusCode::OK).await;
    assert_eq!(d["open_backlog"], 5);

    // Analytics over the same history, filtered to incidents, by day.
    let a = json_of(
        app.get(
            &format!(
                "/api/v1/reports/analytics?from={}&to={}&group_by=week&type=incident&priority=critical",
                (t0 - Duration::days(10)).date_naive(),
                t0.date_naive()
            ),
            &manager.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let totals = |key: &str| -> i64 {
        a["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[key].as_i64().unwrap())
            .sum()
    };
    // Only C (H, also critical, is deleted).
    assert_eq!(totals("created"), 1);
    assert_eq!(totals("resolved"), 1);
    assert_eq!(totals("first_response_missed"), 1);
    assert_eq!(totals("resolution_missed"), 1);
    assert_eq!(totals("breaches"), 2);

    // The incremental read model equals one rebuilt from the log.
    let before = snapshot(&app.pool).await;
    projections::rebuild::rebuild(&app.pool, &projections::reports::ReportsProjection, 7)
        .await
        .unwrap();
    assert_eq!(snapshot(&app.pool).await, before);
}

/// Every table of the reports read model as text, in a stable order.
async fn snapshot(pool: &PgPool) -> Vec<String> {
    let mut out = Vec::new();
    for (table, order) in [
        ("rm_report_tickets", "id"),
        ("rm_report_counts", "status, priority, type, assignee_key"),
        ("rm_report_daily", "day"),
        ("rm_report_backlog", "day"),
        ("rm_report_approvals", "id"),
        ("rm_report_meta", "id"),
    ] {
        let rows: Vec<(String,)> =
            sqlx::query_as(&format!("select t::text from {table} t order by {order}"))
                .fetch_all(pool)
                .await
                .unwrap();
        out.extend(rows.into_iter().map(|(r,)| format!("{table}: {r}")));
    }
    out
}

#[sqlx::test]
async fn sla_clocks_follow_business_hours_and_pauses_and_a_rebuild_applies_a_new_policy(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let [requester, agent, admin] = users(
        &app,
        [
            ("requester", "requester"),
            ("agent", "agent"),
            ("admin", "admin"),
        ],
    )
    .await;
    let put = |body: Value| try_put_sla_policy(&app, &admin, body);
    // Weekdays 09:00–17:00 Berlin (UTC+1 in early March); medium: 60 min / 8 h.
    let r = put(office_policy(Some("Europe/Berlin"))).await;
    assert_eq!(json_of(r, StatusCode::OK).await["version"], 1);
    let (q, a) = (requester.id, agent.id);
    use TicketStatus::*;

    for (title, opened, history) in [
        // S1: opened Friday 16:30 local; answered Monday 09:20 (50 business minutes); pending
        // Monday 11:00 to Tuesday 14:00; resolved Tuesday 16:00 (150 + 120 = 270 minutes).
        (
            "S1",
            "2026-03-06T15:30:00Z",
            answered_paused_resolved(
                a,
                [
                    "2026-03-09T08:20:00Z",
                    "2026-03-09T08:30:00Z",
                    "2026-03-09T10:00:00Z",
                    "2026-03-10T13:00:00Z",
                    "2026-03-10T15:00:00Z",
                ],
            ),
        ),
        // S2: opened Monday 16:00 local, never answered; its hour is used up at Monday's
        // closing, so the first response is missed at Tuesday's opening (08:00 UTC); 8 h are
        // reached Tuesday 16:00 local; resolved Wednesday 15:00 local after 15 business hours.
        (
            "S2",
            "2026-03-09T15:00:00Z",
            vec![
                status(InProgress, utc("2026-03-10T07:00:00Z")),
                status(Resolved, utc("2026-03-11T14:00:00Z")),
            ],
        ),
        // S3: opened Tuesday 09:00 local, answered in 30 min, pending from 10:00 to Thursday
        // 09:00, resolved Thursday 16:00: exactly its 8 hours, so not missed.
        (
            "S3",
            "2026-03-10T08:00:00Z",
            answered_paused_resolved(
                a,
                [
                    "2026-03-10T08:30:00Z",
                    "2026-03-10T08:45:00Z",
                    "2026-03-10T09:00:00Z",
                    "2026-03-12T08:00:00Z",
                    "2026-03-12T15:00:00Z",
                ],
            ),
        ),
    ] {
        let medium = (Priority::Medium, TicketType::Incident);
        let id = open_at(&app, q, title, medium.0, medium.1, utc(opened)).await;
        run_all(&app, id, a, history).await;
    }
    app.settle().await;

    let range = "from=2026-03-01&to=2026-03-31";
    let rows = export_rows(&app, &admin, range).await;
    assert_eq!(rows.len(), 3);
    // Business seconds to the first response and to the resolution, seconds paused, and
    // whether each target was missed.
    let facts = |row: &Value| {
        json!([
            row["first_response_business_seconds"],
            row["resolution_business_seconds"],
            row["paused_seconds"],
            row["first_response_breached"],
            row["resolution_breached"],
        ])
    };
    assert_eq!(
        facts(&rows["S1"]),
        json!([3000, 16200, 97200, false, false])
    );
    assert_eq!(facts(&rows["S2"]), json!([null, 54000, 0, true, true]));
    assert_eq!(
        facts(&rows["S3"]),
        json!([1800, 28800, 169200, false, false])
    );
    assert_eq!(rows["S1"]["first_response_seconds"], 233_400);
    assert_eq!(rows["S1"]["resolution_seconds"], 343_800);

    // By week: S1 was created in the week of March 2; everything else in the week of March 9,
    // where S2 missed both targets (at Tuesday 08:00 and 15:00 UTC).
    let a = get_ok(
        &app,
        &admin,
        &format!("/api/v1/reports/analytics?{range}&group_by=week"),
    )
    .await;
    let series = a["series"].as_array().unwrap();
    assert_eq!(series.len(), 6, "weeks from Feb 23 to Mar 30");
    assert_eq!(series[0]["period"], "2026-02-23");
    let week2 = &series[1];
    assert_eq!(week2["period"], "2026-03-02");
    assert_eq!(
        (week2["created"].clone(), week2["resolved"].clone()),
        (json!(1), json!(0))
    );
    let week3 = &series[2];
    assert_eq!(week3["period"], "2026-03-09");
    assert_eq!(week3["created"], 2);
    assert_eq!(week3["resolved"], 3);
    assert_eq!(week3["first_responses"], 2);
    assert_eq!(week3["breaches"], 2);
    assert_eq!(week3["first_response_missed"], 0);
    assert_eq!(week3["resolution_missed"], 1);
    // First responses 1800 and 233400 s; resolutions 169200, 198000, 343800 s.
    assert_eq!(week3["median_first_response_seconds"], 117_600.0);
    assert_eq!(week3["p90_first_response_seconds"], 210_240.0);
    assert_eq!(week3["median_resolution_seconds"], 198_000.0);
    assert_eq!(week3["p90_resolution_seconds"], 314_640.0);
    let by_day = get_ok(
        &app,
        &admin,
        "/api/v1/reports/analytics?from=2026-03-09&to=2026-03-12&group_by=day&status=resolved",
    )
    .await;
    let resolved: Vec<i64> = by_day["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["resolved"].as_i64().unwrap())
        .collect();
    assert_eq!(resolved, vec![0, 1, 1, 1]);

    // The policy becomes around the clock: nothing changes until the projection is rebuilt.
    let r = put(office_policy(None)).await;
    let doc = json_of(r, StatusCode::OK).await;
    assert_eq!(doc["version"], 2);
    assert_eq!(doc["applied_to_history"], false);
    assert_eq!(export_rows(&app, &admin, range).await, rows);

    let report =
        projections::rebuild::rebuild(&app.pool, &projections::reports::ReportsProjection, 500)
            .await
            .unwrap();
    assert!(report.events > 0);
    let doc = get_ok(&app, &admin, "/api/v1/reports/sla-policy").await;
    assert_eq!(doc["applied_to_history"], true);
    let rows = export_rows(&app, &admin, range).await;
    // Around the clock, S1's weekend counts (and its pause still does not).
    assert_eq!(
        facts(&rows["S1"]),
        json!([233_400, 246_600, 97200, true, true])
    );
    assert_eq!(facts(&rows["S2"]), json!([null, 169_200, 0, true, true]));
    // S3's pause covered both nights: still exactly 8 hours.
    assert_eq!(
        facts(&rows["S3"]),
        json!([1800, 28800, 169200, false, false])
    );
}

#[sqlx::test]
async fn the_csv_export_escapes_cells_and_neutralises_formulas(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [requester, manager] =
        users(&app, [("requester", "requester"), ("manager", "manager")]).await;
    let titles = [
        "Printer, third floor",
        "Say \"hello\"",
        "two\nlines",
        "=HYPERLINK(\"http://evil.example\",\"x\")",
        "+1 555 0100",
        "-5 degrees in the server room",
        "@admin please",
    ];
    for t in titles {
        app.ticket(&requester, t).await;
    }
    // A leading tab cannot come through the API (titles are trimmed) but can from the log.
    open_at(
        &app,
        requester.id,
        "\tTabbed",
        Priority::Low,
        TicketType::Question,
        Utc::now(),
    )
    .await;
    app.settle().await;
    let r = app
        .get("/api/v1/reports/export?format=csv", &manager.token)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"tickets-")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let body = r.text().await.unwrap();
    assert!(body.starts_with("id,title,status,priority,type,requester_id,"));
    for expected in [
        ",\"Printer, third floor\",",
        ",\"Say \"\"hello\"\"\",",
        ",\"two\nlines\",",
        ",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",",
        ",'+1 555 0100,",
        ",'-5 degrees in the server room,",
        ",'@admin please,",
        ",'\tTabbed,",
    ] {
        assert!(body.contains(expected), "{expected:?} not in {body}");
    }
    // Eight records (one spans two lines) after the header, CRLF-terminated.
    assert_eq!(body.matches("\r\n").count(), 9);

    // JSON: a streamed array of the same rows, raw text.
    let r = app
        .get(
            "/api/v1/reports/export?format=json&from=2000-01-01",
            &manager.token,
        )
        .await;
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .ends_with(".json\""));
    let rows: Value = r.json().await.unwrap();
    let got: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert_eq!(got.len(), 8);
    assert!(got.contains(&"=HYPERLINK(\"http://evil.example\",\"x\")"));
    // A range with nothing in it is an empty array; a bad format or range is 422.
    let r = app
        .get(
            "/api/v1/reports/export?format=json&to=2000-01-01",
            &manager.token,
        )
        .await;
    assert_eq!(json_of(r, StatusCode::OK).await, json!([]));
    for (query, field) in [
        ("format=xml", "format"),
        ("from=yesterday", "from"),
        ("from=2026-02-01&to=2026-01-01", "to"),
    ] {
        let r = app
            .get(&format!("/api/v1/reports/export?{query}"), &manager.token)
            .await;
        let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["detail"][0]["loc"], json!(["query", field]), "{query}");
    }
}

#[sqlx::test]
async fn the_report_command_prints_the_same_figures_as_the_api(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [requester, manager] =
        users(&app, [("requester", "requester"), ("manager", "manager")]).await;
    for t in ["One, with a comma", "=2+2", "Three"] {
        app.ticket(&requester, t).await;
    }
    app.settle().await;
    let api = get_ok(&app, &manager, "/api/v1/reports/dashboard").await;

    let (ok, out, err) = ticketd(&pool, &["report", "dashboard", "--format", "json"]).await;
    assert!(ok, "{err}");
    let cli: Value = serde_json::from_str(&out).expect("json");
    for key in [
        "by_status",
        "by_priority",
        "open_backlog",
        "backlog_by_age",
        "sla",
        "created_vs_resolved",
    ] {
        assert_eq!(cli[key], api[key], "{key}");
    }
    let (ok, out, _) = ticketd(&pool, &["report", "dashboard", "--format", "md"]).await;
    assert!(ok);
    assert!(
        out.starts_with("| section | key | value |\n|---|---|---|\n"),
        "{out}"
    );
    assert!(out.contains("| backlog | open | 3 |"), "{out}");

    let file = std::env::temp_dir().join(format!("ticketd-report-{}.csv", Uuid::new_v4()));
    let (ok, _, err) = ticketd(
        &pool,
        &[
            "report",
            "tickets",
            "--format",
            "csv",
            "--out",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok, "{err}");
    let csv = std::fs::read_to_string(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    assert_eq!(csv.lines().count(), 4);
    assert!(csv.contains(",\"One, with a comma\","));
    assert!(csv.contains(",'=2+2,"));

    let today = Utc::now().date_naive();
    let (ok, out, err) = ticketd(
        &pool,
        &[
            "report",
            "analytics",
            "--from",
            &(today - Duration::days(6)).to_string(),
            "--to",
            &today.to_string(),
            "--group-by",
            "day",
            "--format",
            "csv",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{out}");
    assert!(lines[0].starts_with("period,created,resolved,"));
    assert!(lines[7].starts_with(&format!("{today},3,0,")), "{out}");
    let (ok, out, _) = ticketd(&pool, &["report", "analytics", "--format", "table"]).await;
    assert!(ok);
    assert!(out.starts_with("period "), "{out}");

    let (ok, _, err) = ticketd(&pool, &["report", "analytics", "--group-by", "year"]).await;
    assert!(!ok);
    assert!(
        err.contains("--group-by: must be day, week or month"),
        "{err}"
    );
}
