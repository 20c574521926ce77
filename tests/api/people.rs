//! Names, not numbers, and the requester's portal (issue 17): every response that carries a
//! user id carries the person's name; history says what changed, from what to what; agents open
//! tickets on behalf of a requester; the requester policy limits what requesters may choose and
//! for how long they may reopen.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{json_of, FixedClock, TestApp, TestUser};
use crate::steps::{get_ok, move_to, open_ticket_with, step, try_move_to, users};

/// Every `<x>_name` value in `v` (at any depth), with the key it was found under.
fn names_in(v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k.ends_with("_name") {
                    out.push((k.clone(), v.clone()));
                }
                if k == "approver_names" {
                    let list = v.as_array().into_iter().flatten();
                    out.extend(list.map(|n| (k.clone(), n.clone())));
                }
                names_in(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| names_in(v, out)),
        _ => {}
    }
}

fn name_of(u: &TestUser) -> Value {
    json!(format!("User {}", u.email))
}

#[sqlx::test]
async fn a_requester_sees_the_staff_names_on_everything_of_their_ticket_and_no_other_requester(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let [rita, other, alex, mia] = users(
        &app,
        [
            ("rita", "requester"),
            ("oscar", "requester"),
            ("alex", "agent"),
            ("mia", "manager"),
        ],
    )
    .await;
    let id = app.ticket(&rita, "Printer jams").await["id"]
        .as_i64()
        .unwrap();
    // Someone else's ticket, with a reply by the same agent: never in Rita's answers.
    let theirs = app.ticket(&other, "Not Rita's").await["id"]
        .as_i64()
        .unwrap();
    let r = app
        .post(
            "/api/v1/comments/",
            &alex.token,
            json!({"ticket_id": theirs, "content": "for Oscar"}),
        )
        .await;
    json_of(r, StatusCode::CREATED).await;

    let r = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/tickets/{id}/assign"),
            Some(&alex.token),
        )
        .json(&json!({"assignee_id": alex.id}))
        .send()
        .await
        .unwrap();
    json_of(r, StatusCode::OK).await;
    let r = app
        .post(
            "/api/v1/comments/",
            &alex.token,
            json!({"ticket_id": id, "content": "I am on it"}),
        )
        .await;
    json_of(r, StatusCode::CREATED).await;
    let r = crate::attachments::upload(&app, &alex, id, "log.txt", b"log").await;
    json_of(r, StatusCode::CREATED).await;
    let approval = app
        .post(
            "/api/v1/approvals/",
            &alex.token,
            json!({"ticket_id": id, "steps": [step("Manager", &[&mia], "any")], "reason": "cost"}),
        )
        .await;
    let approval = json_of(approval, StatusCode::CREATED).await;
    // A rejection must say why.
    let path = format!(
        "/api/v1/approvals/{}/decisions",
        approval["id"].as_str().unwrap()
    );
    let r = app
        .post(&path, &mia.token, json!({"decision": "reject"}))
        .await;
    let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["detail"][0]["loc"], json!(["body", "comment"]));
    app.settle().await;

    let ticket = get_ok(&app, &rita, &format!("/api/v1/tickets/{id}")).await;
    assert_eq!(ticket["requester_name"], name_of(&rita));
    assert_eq!(ticket["assignee_name"], name_of(&alex));
    let list = get_ok(&app, &rita, "/api/v1/tickets/").await;
    assert_eq!(list["items"][0]["assignee_name"], name_of(&alex));
    assert_eq!(list["items"][0]["requester_name"], name_of(&rita));
    let comments = get_ok(&app, &rita, &format!("/api/v1/comments/?ticket_id={id}")).await;
    assert_eq!(comments["items"][0]["author_name"], name_of(&alex));
    let files = get_ok(&app, &rita, &format!("/api/v1/attachments/?ticket_id={id}")).await;
    assert_eq!(files["items"][0]["uploaded_by_name"], name_of(&alex));
    let history = get_ok(&app, &rita, &format!("/api/v1/tickets/{id}/history")).await;
    let actors: Vec<&Value> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["actor_name"])
        .collect();
    assert!(actors.contains(&&name_of(&rita)) && actors.contains(&&name_of(&alex)));
    let approvals = get_ok(&app, &rita, &format!("/api/v1/approvals/?ticket_id={id}")).await;
    let a = &approvals["items"][0];
    assert_eq!(a["requested_by_name"], name_of(&alex));
    assert_eq!(a["ticket_requester_name"], name_of(&rita));
    assert_eq!(a["ticket_title"], json!("Printer jams"));
    assert_eq!(a["steps"][0]["approver_names"], json!([name_of(&mia)]));

    // Every name Rita was shown is hers or a staff member's: never Oscar's.
    let mut seen = Vec::new();
    for v in [&ticket, &list, &comments, &files, &history, &approvals] {
        names_in(v, &mut seen);
    }
    assert!(seen.len() >= 10, "names shown: {seen:?}");
    let allowed = [name_of(&rita), name_of(&alex), name_of(&mia), Value::Null];
    for (key, name) in &seen {
        assert!(allowed.contains(name), "{key}: {name} shown to Rita");
    }

    // A rename is seen at once (the cached name is forgotten).
    let r = app
        .patch(
            "/api/v1/auth/profile",
            &alex.token,
            json!({"full_name": "Alex Agent"}),
        )
        .await;
    json_of(r, StatusCode::OK).await;
    let mut renamed = Value::Null;
    for _ in 0..100 {
        renamed =
            get_ok(&app, &rita, &format!("/api/v1/tickets/{id}")).await["assignee_name"].clone();
        if renamed == json!("Alex Agent") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(renamed, json!("Alex Agent"));
}

#[sqlx::test]
async fn history_says_what_each_event_changed_from_and_to_with_names(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [rita, alex, sam] = users(
        &app,
        [("rita", "requester"), ("alex", "agent"), ("sam", "agent")],
    )
    .await;
    let id = app.ticket(&rita, "VPN drops").await["id"].as_i64().unwrap();
    let assign = |who: i64| {
        app.request(
            reqwest::Method::PATCH,
            &format!("/api/v1/tickets/{id}/assign"),
            Some(&alex.token),
        )
        .json(&json!({"assignee_id": who}))
        .send()
    };
    json_of(assign(alex.id).await.unwrap(), StatusCode::OK).await;
    json_of(assign(sam.id).await.unwrap(), StatusCode::OK).await;
    let r = app
        .patch(
            &format!("/api/v1/tickets/{id}"),
            &alex.token,
            json!({"title": "VPN drops hourly", "priority": "high", "tags": ["vpn"]}),
        )
        .await;
    json_of(r, StatusCode::OK).await;
    move_to(&app, &alex, id, "in_progress").await;
    let c = app
        .post(
            "/api/v1/comments/",
            &alex.token,
            json!({"ticket_id": id, "content": "first text"}),
        )
        .await;
    let comment = json_of(c, StatusCode::CREATED).await;
    let r = app
        .patch(
            &format!("/api/v1/comments/{}", comment["id"].as_str().unwrap()),
            &alex.token,
            json!({"content": "second text"}),
        )
        .await;
    json_of(r, StatusCode::OK).await;

    let history = get_ok(&app, &alex, &format!("/api/v1/tickets/{id}/history")).await;
    let events = history.as_array().unwrap();
    let changes_of = |event_type: &str, nth: usize| {
        events
            .iter()
            .filter(|e| e["event_type"] == json!(event_type))
            .nth(nth)
            .unwrap_or_else(|| panic!("no {event_type} #{nth} in {history}"))["changes"]
            .clone()
    };
    assert_eq!(changes_of("TicketOpened", 0), json!([]));
    assert_eq!(
        changes_of("TicketAssigned", 0),
        json!([{"field": "assignee_id", "from": null, "to": alex.id, "to_name": "User alex@example.com"}])
    );
    assert_eq!(
        changes_of("TicketAssigned", 1),
        json!([{"field": "assignee_id", "from": alex.id, "to": sam.id,
                "from_name": "User alex@example.com", "to_name": "User sam@example.com"}])
    );
    assert_eq!(
        changes_of("TicketUpdated", 0),
        json!([
            {"field": "title", "from": "VPN drops", "to": "VPN drops hourly"},
            {"field": "priority", "from": "medium", "to": "high"},
            {"field": "tags", "from": [], "to": ["vpn"]},
        ])
    );
    assert_eq!(
        changes_of("TicketStatusChanged", 0),
        json!([{"field": "status", "from": "open", "to": "in_progress"}])
    );
    assert_eq!(
        changes_of("CommentEdited", 0),
        json!([{"field": "comment", "from": "first text", "to": "second text"}])
    );
    // One request, one id: the events of different requests have different ones.
    let ids: std::collections::HashSet<&Value> = events.iter().map(|e| &e["request_id"]).collect();
    assert!(ids.len() >= 6, "{history}");
}

#[sqlx::test]
async fn an_agent_opens_a_ticket_for_a_requester_who_then_sees_it_as_their_own(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [rita, oscar, alex] = users(
        &app,
        [
            ("rita", "requester"),
            ("oscar", "requester"),
            ("alex", "agent"),
        ],
    )
    .await;
    let body = json!({"title": "Phoned in: screen flickers", "requester_id": rita.id, "priority": "critical"});
    let t = open_ticket_with(&app, &alex, body).await;
    assert_eq!(t["requester_id"], json!(rita.id));
    assert_eq!(t["requester_name"], name_of(&rita));
    app.settle().await;
    let mine = get_ok(&app, &rita, "/api/v1/tickets/").await;
    assert_eq!(mine["total"], json!(1));
    assert_eq!(mine["items"][0]["id"], t["id"]);
    let r = app
        .get(&format!("/api/v1/tickets/{}", t["id"]), &oscar.token)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // A requester cannot open one for someone else; nobody for an unknown user.
    let r = app
        .post(
            "/api/v1/tickets/",
            &oscar.token,
            json!({"title": "for Rita", "requester_id": rita.id}),
        )
        .await;
    let body = json_of(r, StatusCode::FORBIDDEN).await;
    assert!(body["detail"].as_str().unwrap().contains("requester_id"));
    let r = app
        .post(
            "/api/v1/tickets/",
            &alex.token,
            json!({"title": "for nobody", "requester_id": 999_999}),
        )
        .await;
    json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    app.settle().await;
    let all = get_ok(&app, &alex, "/api/v1/tickets/").await;
    assert_eq!(all["total"], json!(1), "a refused ticket was stored");
}

#[sqlx::test]
async fn an_agent_adds_a_new_customer_as_a_requester_but_no_staff_member(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [alex, mia] = users(&app, [("alex", "agent"), ("mia", "manager")]).await;
    let account = |email: &str, role: &str| json!({"email": email, "password": "Phoned-in-2026!", "full_name": "Paula Phone", "role": role});
    let r = app
        .post(
            "/api/v1/users/",
            &alex.token,
            account("paula@example.com", "requester"),
        )
        .await;
    let paula = json_of(r, StatusCode::CREATED).await;
    assert_eq!(paula["role"], "requester");
    let body = json!({"title": "Printer jams", "requester_id": paula["id"]});
    let t = open_ticket_with(&app, &alex, body).await;
    assert_eq!(t["requester_name"], "Paula Phone");
    let paula = app.login("paula@example.com", "Phoned-in-2026!").await;
    app.settle().await;
    let mine = get_ok(&app, &paula, "/api/v1/tickets/").await;
    assert_eq!(mine["items"][0]["id"], t["id"]);

    // Staff accounts stay with the admins: the refusal names the field and stores nobody.
    for (caller, role) in [(&alex, "agent"), (&mia, "admin"), (&mia, "manager")] {
        let r = app
            .post(
                "/api/v1/users/",
                &caller.token,
                account("sneaky@example.com", role),
            )
            .await;
        let body = json_of(r, StatusCode::FORBIDDEN).await;
        assert!(
            body["detail"].as_str().unwrap().starts_with("role:"),
            "{body}"
        );
    }
    let stored: i64 = sqlx::query_scalar("select count(*) from users where email like 'sneaky%'")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(stored, 0);
}

#[sqlx::test]
async fn the_requester_policy_limits_fields_and_the_reopen_window(pool: PgPool) {
    let clock = FixedClock::at(Utc::now());
    let app = TestApp::spawn_at(pool, clock.clone()).await;
    let [rita, alex, root] = users(
        &app,
        [("rita", "requester"), ("alex", "agent"), ("root", "admin")],
    )
    .await;
    for (field, value) in [("priority", "critical"), ("type", "change_request")] {
        let r = app
            .post(
                "/api/v1/tickets/",
                &rita.token,
                json!({"title": "wants more", field: value}),
            )
            .await;
        let body = json_of(r, StatusCode::FORBIDDEN).await;
        assert_eq!(body["code"], json!("PERMISSION_ERROR"));
        assert!(
            body["detail"].as_str().unwrap().starts_with(field),
            "{body}"
        );
    }
    let id = open_ticket_with(&app, &rita, json!({"title": "fine", "priority": "high"})).await
        ["id"]
        .as_i64()
        .unwrap();
    let r = app
        .patch(
            &format!("/api/v1/tickets/{id}"),
            &rita.token,
            json!({"priority": "critical"}),
        )
        .await;
    json_of(r, StatusCode::FORBIDDEN).await;
    // An admin widens the policy: now critical is fine.
    let r = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/tickets/requester-policy",
            Some(&root.token),
        )
        .json(&json!({"priorities": ["low", "medium", "high", "critical"], "types": ["issue"], "reopen_days": 3}))
        .send()
        .await
        .unwrap();
    let policy = json_of(r, StatusCode::OK).await;
    assert_eq!(policy["reopen_days"], json!(3));
    let seen = get_ok(&app, &rita, "/api/v1/tickets/requester-policy").await;
    assert_eq!(seen["priorities"], policy["priorities"]);
    let r = app
        .patch(
            &format!("/api/v1/tickets/{id}"),
            &rita.token,
            json!({"priority": "critical"}),
        )
        .await;
    json_of(r, StatusCode::OK).await;

    // Reopen: within 3 days of the resolution, not after; closed is final.
    move_to(&app, &alex, id, "in_progress").await;
    move_to(&app, &alex, id, "resolved").await;
    clock.set(Utc::now() + Duration::days(4));
    let r = try_move_to(&app, &rita, id, "open").await;
    let body = json_of(r, StatusCode::FORBIDDEN).await;
    assert!(
        body["detail"].as_str().unwrap().contains("3 days"),
        "{body}"
    );
    clock.set(Utc::now() + Duration::days(2));
    move_to(&app, &rita, id, "open").await;
    move_to(&app, &alex, id, "in_progress").await;
    move_to(&app, &alex, id, "resolved").await;
    move_to(&app, &rita, id, "closed").await;
    let t = get_ok(&app, &rita, &format!("/api/v1/tickets/{id}")).await;
    assert_eq!(t["status"], json!("closed"));
}

#[sqlx::test]
async fn language_theme_time_zone_and_notifications_are_kept_on_the_profile(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [rita] = users(&app, [("rita", "requester")]).await;
    let me = get_ok(&app, &rita, "/api/v1/auth/profile").await;
    assert_eq!(me["locale"], json!("en"));
    assert_eq!(me["theme"], json!("system"));
    assert_eq!(me["time_zone"], json!("UTC"));
    assert_eq!(me["notify"]["email"].as_array().unwrap().len(), 5);

    let r = app
        .patch(
            "/api/v1/auth/profile",
            &rita.token,
            json!({"locale": "de", "theme": "dark", "time_zone": "Europe/Berlin",
                "notify": {"email": ["comment"], "in_app": ["comment", "mention"]}}),
        )
        .await;
    let changed = json_of(r, StatusCode::OK).await;
    assert_eq!(changed["locale"], json!("de"));
    let me = get_ok(&app, &rita, "/api/v1/auth/profile").await;
    assert_eq!(me["theme"], json!("dark"));
    assert_eq!(me["time_zone"], json!("Europe/Berlin"));
    assert_eq!(
        me["notify"],
        json!({"email": ["comment"], "in_app": ["comment", "mention"]})
    );

    // Each bad value is named, and nothing changes.
    let r = app
        .patch(
            "/api/v1/auth/profile",
            &rita.token,
            json!({"locale": "fr", "theme": "pink", "time_zone": "Mars/Olympus",
                "notify": {"email": ["spam"], "in_app": []}}),
        )
        .await;
    let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let fields: Vec<Value> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"][1].clone())
        .collect();
    assert_eq!(
        fields,
        vec![
            json!("locale"),
            json!("theme"),
            json!("time_zone"),
            json!("notify")
        ]
    );
    assert_eq!(get_ok(&app, &rita, "/api/v1/auth/profile").await, me);
}

#[sqlx::test]
async fn german_words_are_found_with_or_without_their_umlauts(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [rita, alex] = users(&app, [("rita", "requester"), ("alex", "agent")]).await;
    let id = app
        .ticket(&rita, "Überweisung an die Hauptstraße fehlgeschlagen")
        .await["id"]
        .clone();
    app.ticket(&rita, "Printer on the second floor").await;
    app.settle().await;
    for q in [
        "Überweisung",
        "uberweisung",
        "hauptstrasse",
        "Hauptstraße fehlgeschl",
        "überw",
    ] {
        let page = get_ok(&app, &alex, &format!("/api/v1/tickets/search?q={q}")).await;
        let ids: Vec<&Value> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["id"])
            .collect();
        assert_eq!(ids, vec![&id], "q={q}");
    }
}

#[sqlx::test]
async fn a_policy_change_reaches_the_cached_copy_of_another_server(pool: PgPool) {
    let a = TestApp::spawn(pool.clone()).await;
    let b = TestApp::spawn(pool).await;
    let [rita, root] = users(&a, [("rita", "requester"), ("root", "admin")]).await;
    let wants_high = || json!({"title": "printer", "priority": "high"});
    // Server b learns the policy (high is allowed by default) and keeps it.
    let r = b.post("/api/v1/tickets/", &rita.token, wants_high()).await;
    json_of(r, StatusCode::CREATED).await;
    // The admin narrows it on server a: a applies it at once, b as soon as the bus tells it.
    let r = a
        .request(
            reqwest::Method::PUT,
            "/api/v1/tickets/requester-policy",
            Some(&root.token),
        )
        .json(&json!({"priorities": ["low"], "types": ["issue"], "reopen_days": 14}))
        .send()
        .await
        .unwrap();
    json_of(r, StatusCode::OK).await;
    let r = a.post("/api/v1/tickets/", &rita.token, wants_high()).await;
    json_of(r, StatusCode::FORBIDDEN).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = b.post("/api/v1/tickets/", &rita.token, wants_high()).await;
        if r.status() == StatusCode::FORBIDDEN {
            break;
        }
        assert_eq!(r.status(), StatusCode::CREATED);
        assert!(
            std::time::Instant::now() < deadline,
            "server b still applies the old policy after 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
