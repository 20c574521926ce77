//! Saved views: who sees and who changes personal and shared views, the checks their filters
//! share with the ticket list, and counts that equal the number of tickets each view lists
//! (paged through, not its `total`), at a fixed clock for the SLA views.

use std::collections::BTreeMap;

use aggregates::{Priority, TicketStatus, TicketType};
use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{json_of, FixedClock, TestApp, TestUser};
use crate::steps::{get_ok, locs, open_at, reply, run_directly, status, users};

const VIEWS: &str = "/api/v1/views";

/// `who` saves a view with `body`; the answer, whatever it is.
async fn try_save(app: &TestApp, who: &TestUser, body: Value) -> reqwest::Response {
    app.post(&format!("{VIEWS}/"), &who.token, body).await
}

/// `who` saves a view with `body` (asserting 201); the view.
async fn save(app: &TestApp, who: &TestUser, body: Value) -> Value {
    json_of(try_save(app, who, body).await, StatusCode::CREATED).await
}

/// The names of the views `who` sees, in sidebar order.
async fn names(app: &TestApp, who: &TestUser) -> Vec<String> {
    let page = get_ok(app, who, &format!("{VIEWS}?size=100")).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect()
}

fn id_of(view: &Value) -> i64 {
    view["id"].as_i64().unwrap()
}

const DESK: [&str; 4] = ["Unassigned", "My open tickets", "Due soon", "Breached"];

#[sqlx::test]
async fn views_are_personal_or_shared_and_only_managers_change_shared_ones(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [requester, ann, bob, boss] = users(
        &app,
        [
            ("requester", "requester"),
            ("ann", "agent"),
            ("bob", "agent"),
            ("boss", "manager"),
        ],
    )
    .await;
    // Every desk starts with four shared views that nobody owns.
    assert_eq!(names(&app, &ann).await, DESK);
    let desk = get_ok(&app, &ann, &format!("{VIEWS}?size=100")).await;
    let unassigned = desk["items"][0].clone();
    assert_eq!(
        (
            &unassigned["shared"],
            &unassigned["owner_id"],
            &unassigned["owner_name"]
        ),
        (&json!(true), &Value::Null, &Value::Null)
    );

    // Ann's personal view: hers alone.
    let mine = save(
        &app,
        &ann,
        json!({"name": "My VPN work", "filters": {"tag": "vpn", "assignee_id": "me"},
               "sort": "sla_due", "columns": ["id", "title", "sla"]}),
    )
    .await;
    assert_eq!(mine["owner_id"], ann.id);
    assert_eq!(mine["owner_name"], "User ann@example.com");
    assert_eq!(mine["shared"], false);
    assert_eq!(mine["position"], 4, "after the last view she sees");
    assert_eq!(mine["columns"], json!(["id", "title", "sla"]));
    let path = format!("{VIEWS}/{}", id_of(&mine));
    assert_eq!(names(&app, &ann).await.last().unwrap(), "My VPN work");
    assert_eq!(names(&app, &bob).await, DESK);
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let r = app
            .request(method.clone(), &path, Some(&bob.token))
            .json(&json!({"name": "Taken"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::NOT_FOUND,
            "{method} by another agent"
        );
    }
    let r = app
        .patch(&path, &ann.token, json!({"name": "VPN", "sort": null}))
        .await;
    let changed = json_of(r, StatusCode::OK).await;
    assert_eq!(
        (&changed["name"], &changed["sort"]),
        (&json!("VPN"), &Value::Null)
    );
    assert_eq!(
        changed["filters"],
        json!({"tag": "vpn", "assignee_id": "me"})
    );

    // Agents may neither share a view nor change or delete a shared one.
    let r = try_save(&app, &ann, json!({"name": "For all", "shared": true})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.patch(&path, &ann.token, json!({"shared": true})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let desk_view = format!("{VIEWS}/{}", id_of(&unassigned));
    let r = app
        .patch(&desk_view, &ann.token, json!({"name": "Mine now"}))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.delete(&desk_view, &ann.token).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(names(&app, &bob).await, DESK);

    // A manager changes the desk's views and shares new ones, which every agent sees.
    let r = app
        .patch(
            &desk_view,
            &boss.token,
            json!({"name": "Nobody's", "position": 9}),
        )
        .await;
    assert_eq!(json_of(r, StatusCode::OK).await["name"], "Nobody's");
    let shared = save(
        &app,
        &boss,
        json!({"name": "Critical", "shared": true,
                                          "filters": {"priority": "critical"}}),
    )
    .await;
    assert_eq!(shared["owner_name"], "User boss@example.com");
    assert_eq!(
        names(&app, &bob).await,
        [
            "My open tickets",
            "Due soon",
            "Breached",
            "Nobody's",
            "Critical"
        ]
    );
    let shared_path = format!("{VIEWS}/{}", id_of(&shared));
    assert_eq!(
        app.delete(&shared_path, &bob.token).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&shared_path, &boss.token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&shared_path, &bob.token).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&path, &ann.token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&path, &ann.token).await.status(),
        StatusCode::NOT_FOUND
    );

    // Views are the staff's: requesters are refused every route.
    for r in [
        app.get(VIEWS, &requester.token).await,
        app.get(&format!("{VIEWS}/counts"), &requester.token).await,
        app.get(&desk_view, &requester.token).await,
        app.get(&format!("{desk_view}/tickets"), &requester.token)
            .await,
        try_save(&app, &requester, json!({"name": "Mine"})).await,
    ] {
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
}

#[sqlx::test]
async fn filters_and_sort_are_checked_by_the_list_rules_and_nothing_bad_is_saved(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [ann] = users(&app, [("ann", "agent")]).await;
    let refused = |body: Value| {
        let app = &app;
        let ann = &ann;
        async move {
            let r = try_save(app, ann, body).await;
            locs(&json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await)
        }
    };
    assert_eq!(
        refused(json!({"name": "x", "filters": {"status": "open,bogus", "sla": "late"}})).await,
        [
            json!(["body", "filters", "status"]),
            json!(["body", "filters", "sla"])
        ]
    );
    assert_eq!(
        refused(json!({"name": "x", "filters": {"assignee_id": "someone"}})).await,
        [json!(["body", "filters", "assignee_id"])]
    );
    assert_eq!(
        refused(json!({"name": "x", "sort": "due"})).await,
        [json!(["body", "sort"])]
    );
    assert_eq!(
        refused(json!({"name": "x", "filters": {"unassigned": true, "assignee_id": "me"}})).await,
        [json!(["body", "filters", "unassigned"])]
    );
    assert_eq!(
        refused(json!({"name": " ", "columns": ["id", "id"]})).await,
        [json!(["body", "name"]), json!(["body", "columns"])]
    );
    // Unknown columns and filters are refused by name.
    let r = try_save(
        &app,
        &ann,
        json!({"name": "x", "columns": ["id", "salary"]}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = try_save(
        &app,
        &ann,
        json!({"name": "x", "filters": {"colour": "red"}}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The same filter on the list is refused with the same message.
    let listed = app
        .get("/api/v1/tickets?status=open,bogus", &ann.token)
        .await;
    let listed = json_of(listed, StatusCode::UNPROCESSABLE_ENTITY).await;
    let saved = try_save(
        &app,
        &ann,
        json!({"name": "x", "filters": {"status": "open,bogus"}}),
    )
    .await;
    let saved = json_of(saved, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(saved["detail"][0]["msg"], listed["detail"][0]["msg"]);
    assert_eq!(names(&app, &ann).await, DESK, "nothing was saved");

    // A repeated create with the same key is answered once.
    let create = || {
        app.request(Method::POST, &format!("{VIEWS}/"), Some(&ann.token))
            .header("Idempotency-Key", "view-1")
            .json(&json!({"name": "Once"}))
            .send()
    };
    let first = json_of(create().await.unwrap(), StatusCode::CREATED).await;
    let again = json_of(create().await.unwrap(), StatusCode::CREATED).await;
    assert_eq!(first["id"], again["id"]);
    assert_eq!(names(&app, &ann).await.len(), DESK.len() + 1);
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A desk of 38 tickets around the clock (default policy), opened over the 40 hours before
/// `now`, of every priority and status, assigned to `agents` (the first more often) or to no
/// one, half of them tagged `vpn`.
async fn varied_desk(app: &TestApp, requesters: [i64; 2], agents: [i64; 2], now: DateTime<Utc>) {
    use TicketStatus::*;
    let priorities = [
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Critical,
    ];
    for i in 0..36_i64 {
        let opened = now - Duration::minutes(40 * 60 - i * 65);
        let title = if i % 2 == 0 {
            "VPN drops"
        } else {
            "Printer jams"
        };
        let id = open_at(
            app,
            requesters[(i % 2) as usize],
            title,
            priorities[(i % 4) as usize],
            TicketType::Incident,
            opened,
        )
        .await;
        let agent = agents[usize::from(i % 3 == 1 && i % 5 != 0)];
        let at = |m: i64| opened + Duration::minutes(m);
        let mut commands = Vec::new();
        if i % 3 != 2 {
            commands.push(aggregates::ticket::TicketCommand::AssignTicket {
                assignee_id: Some(agent),
                at: at(1),
            });
        }
        if i % 2 == 0 {
            commands.push(aggregates::ticket::TicketCommand::UpdateTicket {
                asked: aggregates::ticket::TicketChanges {
                    tags: Some(vec!["vpn".into()]),
                    ..Default::default()
                },
                at: at(2),
            });
        }
        match i % 6 {
            1 => commands.push(reply(agent, at(20))),
            2 => commands.extend([status(InProgress, at(10)), status(Pending, at(30))]),
            3 => commands.extend([
                reply(agent, at(5)),
                status(InProgress, at(6)),
                status(Resolved, at(50)),
            ]),
            4 => commands.push(status(Cancelled, at(15))),
            _ => {}
        }
        for command in commands {
            run_directly(app, id, agent, command).await;
        }
    }
    // Two medium tickets (240 minutes to first response, warning from 192): one warns at
    // `now` and is breached three hours later, when the other warns.
    for minutes in [200, 20] {
        let opened = now - Duration::minutes(minutes);
        open_at(
            app,
            requesters[0],
            "Laptop slow",
            Priority::Medium,
            TicketType::Issue,
            opened,
        )
        .await;
    }
}

/// The number of tickets `path` lists, paged through 7 at a time (not its `total`).
async fn listed(app: &TestApp, who: &TestUser, path: &str) -> i64 {
    let mut n = 0;
    for page in 1.. {
        let got = get_ok(app, who, &format!("{path}?page={page}&size=7")).await;
        let items = got["items"].as_array().unwrap().len() as i64;
        n += items;
        if items < 7 {
            return n;
        }
    }
    n
}

/// How many open tickets the list shows assigned to `who`.
async fn open_total(app: &TestApp, who: &TestUser) -> i64 {
    let path = format!(
        "/api/v1/tickets?assignee_id={}&status=open,in_progress,pending",
        who.id
    );
    get_ok(app, who, &path).await["total"].as_i64().unwrap()
}

/// `who`'s counts, by view name.
async fn counts(app: &TestApp, who: &TestUser) -> BTreeMap<String, i64> {
    let views = get_ok(app, who, &format!("{VIEWS}?size=100")).await;
    let counts = get_ok(app, who, &format!("{VIEWS}/counts")).await;
    let counts = counts.as_array().unwrap();
    assert_eq!(counts.len(), views["items"].as_array().unwrap().len());
    views["items"]
        .as_array()
        .unwrap()
        .iter()
        .zip(counts)
        .map(|(v, c)| {
            assert_eq!(v["id"], c["id"], "counts in sidebar order");
            assert_eq!(c["exact"], true);
            (
                v["name"].as_str().unwrap().to_string(),
                c["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[sqlx::test]
async fn counts_equal_the_tickets_each_view_lists_and_me_is_whoever_asks(pool: PgPool) {
    let now = utc("2026-03-09T10:00:00Z");
    let clock = FixedClock::at(now);
    let app = TestApp::spawn_at(pool, clock.clone()).await;
    let [ann, bob, req1, req2] = users(
        &app,
        [
            ("ann", "agent"),
            ("bob", "agent"),
            ("req1", "requester"),
            ("req2", "requester"),
        ],
    )
    .await;
    varied_desk(&app, [req1.id, req2.id], [ann.id, bob.id], now).await;
    app.settle().await;
    for (name, filters, sort) in [
        ("Open", json!({"status": "open"}), json!(null)),
        (
            "Urgent",
            json!({"priority": "high,critical"}),
            json!("-priority"),
        ),
        (
            "Mine breached",
            json!({"assignee_id": "me", "sla": "breached"}),
            json!("sla_due"),
        ),
        (
            "Medium at risk",
            json!({"priority": "medium", "sla": "warning,breached"}),
            json!(null),
        ),
        ("Bob's", json!({"assignee_id": bob.id}), json!(null)),
        (
            "VPN",
            json!({"tag": "vpn", "status": "open,in_progress"}),
            json!(null),
        ),
        (
            "From req1",
            json!({"requester_id": req1.id, "sla": "breached"}),
            json!(null),
        ),
        ("Printers", json!({"q": "printer"}), json!(null)),
    ] {
        save(
            &app,
            &ann,
            json!({"name": name, "filters": filters, "sort": sort}),
        )
        .await;
    }
    for at in ["2026-03-09T10:00:00Z", "2026-03-09T13:00:00Z"] {
        clock.set(utc(at));
        let mine = counts(&app, &ann).await;
        let views = get_ok(&app, &ann, &format!("{VIEWS}?size=100")).await;
        for view in views["items"].as_array().unwrap() {
            let name = view["name"].as_str().unwrap();
            let n = listed(&app, &ann, &format!("{VIEWS}/{}/tickets", id_of(view))).await;
            assert_eq!(mine[name], n, "{name} at {at}");
        }
        // Every view shows something, so that a count of zero would not pass unnoticed.
        assert!(mine.values().all(|n| *n > 0), "{mine:?} at {at}");
        // "My open tickets" is whoever asks: Ann's and Bob's differ and add up with the rest.
        let theirs = counts(&app, &bob).await;
        assert_eq!(mine["My open tickets"], open_total(&app, &ann).await);
        assert_eq!(theirs["My open tickets"], open_total(&app, &bob).await);
        assert_ne!(mine["My open tickets"], theirs["My open tickets"]);
    }
    // Time alone moves tickets into "Breached" (the default policy runs around the clock).
    clock.set(utc("2026-03-09T10:00:00Z"));
    let before = counts(&app, &ann).await["Breached"];
    clock.set(utc("2026-03-12T10:00:00Z"));
    let after = counts(&app, &ann).await["Breached"];
    assert!(after > before, "{before} breached, then {after}");

    // A view's tickets come in its sort: earliest due first, tickets without one last.
    let unassigned = get_ok(&app, &ann, &format!("{VIEWS}?size=100")).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "Unassigned")
        .map(id_of)
        .unwrap();
    let page = get_ok(
        &app,
        &ann,
        &format!("{VIEWS}/{unassigned}/tickets?size=100"),
    )
    .await;
    let dues: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["sla"]["due"].as_str())
        .collect();
    let mut sorted = dues.clone();
    sorted.sort();
    assert!(dues.len() > 1);
    assert_eq!(dues, sorted);
    assert!(page["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["assignee_id"].is_null()));
}

#[sqlx::test]
async fn an_empty_sla_filter_is_refused_not_saved(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [alex] = users(&app, [("alex", "agent")]).await;
    let r = try_save(
        &app,
        &alex,
        json!({"name": "Empty", "filters": {"sla": ""}}),
    )
    .await;
    let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(locs(&body), vec![json!(["body", "filters", "sla"])]);
    assert!(!names(&app, &alex).await.contains(&"Empty".to_string()));
}

#[sqlx::test]
async fn filters_given_as_a_list_are_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [alex] = users(&app, [("alex", "agent")]).await;
    let r = try_save(
        &app,
        &alex,
        json!({"name": "List", "filters": [null, null]}),
    )
    .await;
    json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let view = save(&app, &alex, json!({"name": "Fine"})).await;
    let r = app
        .patch(
            &format!("{VIEWS}/{}", id_of(&view)),
            &alex.token,
            json!({"filters": [null]}),
        )
        .await;
    json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(!names(&app, &alex).await.contains(&"List".to_string()));
}
