//! Bulk actions: each ticket its own command, the legal changes made, every refusal reported
//! with the status that ticket alone would have got.

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{json_of, TestApp};
use crate::steps::{get_ok, move_to, open_ticket, ticket_of, users};

#[sqlx::test]
async fn a_bulk_change_makes_the_legal_moves_and_reports_each_refusal(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [rita, alex, sam, oscar] = users(
        &app,
        [
            ("rita", "requester"),
            ("alex", "agent"),
            ("sam", "agent"),
            ("oscar", "requester"),
        ],
    )
    .await;
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(open_ticket(&app, &rita, &format!("ticket {n}")).await);
    }
    // Ticket 2 is resolved: in_progress -> pending is legal, resolved -> pending is not.
    move_to(&app, &alex, ids[2], "in_progress").await;
    move_to(&app, &alex, ids[2], "resolved").await;
    for id in [ids[0], ids[1], ids[3]] {
        move_to(&app, &alex, id, "in_progress").await;
    }
    // Ticket 3 changed after the agent looked at it (version 1 seen, 2 now).
    let seen = ticket_of(&app, &alex, ids[3]).await["version"]
        .as_i64()
        .unwrap()
        - 1;
    let body = json!({
        "ticket_ids": [ids[0], ids[1], ids[2], ids[3], 999_999],
        "versions": {ids[3].to_string(): seen},
        "changes": {"status": "pending", "assignee_id": sam.id, "add_tags": ["batch"]},
        "comment": {"content": "Waiting for the vendor", "is_internal": true},
    });
    let r = app.post("/api/v1/tickets/bulk", &alex.token, body).await;
    let answer = json_of(r, StatusCode::OK).await;
    let results = answer["results"].as_array().unwrap();
    let statuses: Vec<&Value> = results.iter().map(|r| &r["status"]).collect();
    assert_eq!(
        statuses,
        vec![
            &json!(200),
            &json!(200),
            &json!(409),
            &json!(412),
            &json!(404)
        ]
    );
    assert_eq!(results[2]["code"], json!("CONFLICT"));
    assert!(
        results[2]["detail"].as_str().unwrap().contains("resolved"),
        "{answer}"
    );
    assert!(results[0]["version"].is_number());
    for id in &ids[..2] {
        let t = ticket_of(&app, &alex, *id).await;
        assert_eq!(
            (t["status"].clone(), t["assignee_id"].clone()),
            (json!("pending"), json!(sam.id))
        );
        assert_eq!(t["tags"], json!(["batch"]));
    }
    for id in &ids[2..] {
        let t = ticket_of(&app, &alex, *id).await;
        assert_ne!(t["status"], json!("pending"));
        assert_eq!(t["assignee_id"], Value::Null, "ticket {id} changed");
    }
    app.settle().await;
    let notes = get_ok(
        &app,
        &alex,
        &format!("/api/v1/comments/?ticket_id={}", ids[2]),
    )
    .await;
    assert_eq!(notes["total"], json!(0), "a refused ticket got the comment");
    let notes = get_ok(
        &app,
        &alex,
        &format!("/api/v1/comments/?ticket_id={}", ids[0]),
    )
    .await;
    assert_eq!(notes["items"][0]["is_internal"], json!(true));

    // Requesters may not; a request without anything to do, or over 100 tickets, is 422.
    let r = app
        .post(
            "/api/v1/tickets/bulk",
            &oscar.token,
            json!({"ticket_ids": [ids[0]], "changes": {"priority": "low"}}),
        )
        .await;
    json_of(r, StatusCode::FORBIDDEN).await;
    let r = app
        .post(
            "/api/v1/tickets/bulk",
            &alex.token,
            json!({"ticket_ids": [ids[0]], "changes": {}}),
        )
        .await;
    json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let many: Vec<i64> = (1..=101).collect();
    let r = app
        .post(
            "/api/v1/tickets/bulk",
            &alex.token,
            json!({"ticket_ids": many, "changes": {"priority": "low"}}),
        )
        .await;
    json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[sqlx::test]
async fn a_bulk_macro_applies_to_each_ticket_with_its_own_placeholders(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [rita, alex] = users(&app, [("rita", "requester"), ("alex", "agent")]).await;
    let a = open_ticket(&app, &rita, "Alpha").await;
    let b = open_ticket(&app, &rita, "Bravo").await;
    let m = json_of(
        app.post(
            "/api/v1/macros/",
            &alex.token,
            json!({"name": "Ack", "content": "About {{ticket.title}}", "changes": {"add_tags": ["ack"]}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let body =
        json!({"ticket_ids": [a, b], "macro_id": m["id"], "changes": {"add_tags": ["bulk"]}});
    let answer = json_of(
        app.post("/api/v1/tickets/bulk", &alex.token, body).await,
        StatusCode::OK,
    )
    .await;
    assert!(answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == json!(200)));
    app.settle().await;
    for (id, title) in [(a, "Alpha"), (b, "Bravo")] {
        assert_eq!(
            ticket_of(&app, &alex, id).await["tags"],
            json!(["ack", "bulk"])
        );
        let c = get_ok(&app, &alex, &format!("/api/v1/comments/?ticket_id={id}")).await;
        assert_eq!(c["items"][0]["content"], json!(format!("About {title}")));
    }
}
