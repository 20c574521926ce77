//! The audit trail: `ticketd audit verify|seal` (run as the real binary), tampering caught,
//! `ticketd replay`, `GET /tickets/{id}/history` and `GET /tickets/{id}?as_of=`.
#![allow(clippy::unwrap_used, reason = "tests may unwrap (STYLE.md)")]

use aggregates::approval::{ApprovalCommand, ApprovalRequest, Decision, Rule, StepSpec};
use aggregates::ticket::TicketCommand;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use ticketd::service::executor::Actor;
use uuid::Uuid;

use crate::helpers::{json_of, ticketd, TestApp, TestUser};
use crate::steps::{assign, comment_directly, get_ok, move_to, open_ticket, run_directly, users};

/// Runs the binary and reads its stdout as JSON.
async fn ticketd_json(pool: &PgPool, args: &[&str]) -> (bool, Value) {
    let (ok, stdout, stderr) = ticketd(pool, args).await;
    let value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (ok, value)
}

/// `audit verify --json`, reading the log as three key ranges in parallel, in pages of 25 rows
/// (so streams straddle pages and ranges).
async fn verify(pool: &PgPool) -> (bool, Value) {
    let args = [
        "audit",
        "verify",
        "--json",
        "--jobs",
        "3",
        "--page-size",
        "25",
    ];
    ticketd_json(pool, &args).await
}

async fn seal(pool: &PgPool) -> Value {
    let (ok, seal) = ticketd_json(pool, &["audit", "seal", "--page-size", "20"]).await;
    assert!(ok, "seal failed: {seal}");
    seal
}

async fn psql(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sql).execute(pool).await.expect(sql);
}

/// Lets the test edit the log the way an attacker with database rights would.
async fn disable_guards(pool: &PgPool) {
    psql(
        pool,
        "alter table events disable trigger events_no_update;
         alter table audit_seals disable trigger audit_seals_no_update;
         alter table audit_seal_heads disable trigger audit_seal_heads_no_update;",
    )
    .await;
}

async fn position(pool: &PgPool, id: &str, seq: i64) -> i64 {
    let (p,): (i64,) = sqlx::query_as(
        "select global_position from events where aggregate_type = 'ticket' and aggregate_id = $1 and sequence = $2",
    )
    .bind(id)
    .bind(seq)
    .fetch_one(pool)
    .await
    .expect("event");
    p
}

/// `author` comments `text` on the ticket as staff, straight through the aggregate.
async fn comment(
    app: &TestApp,
    ticket: i64,
    author: &TestUser,
    internal: bool,
    text: &str,
) -> Uuid {
    comment_directly(app, ticket, author, true, text, internal, vec![]).await
}

/// A log with a seeded bulk, one ticket with a known history, and a seal over all of it.
/// Returns the known ticket's id.
async fn sealed_log(app: &TestApp) -> String {
    let (ok, _, err) = ticketd(&app.pool, &["seed", "--tickets", "150"]).await;
    assert!(ok, "seed failed: {err}");
    let [req, agent] = users(app, [("req", "requester"), ("agent", "agent")]).await;
    let id = open_ticket(app, &req, "Laptop fan noise").await;
    comment(app, id, &agent, false, "We will swap the fan").await;
    move_to(app, &agent, id, "in_progress").await;
    move_to(app, &agent, id, "resolved").await;
    let (ok, report) = verify(&app.pool).await;
    assert!(ok, "{report}");
    let sealed = seal(&app.pool).await;
    // The seal covers everything committed, however busy the rest of the cluster is: the 150
    // seeded tickets, the known one, and the `person` stream of everyone whose data key was
    // issued (their first personal text sealed).
    let (people,): (i64,) = sqlx::query_as("select count(*) from person_keys")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(people >= 2, "{people}");
    assert_eq!(sealed["streams"], 151 + people, "{sealed}");
    id.to_string()
}

fn assert_first_problem(report: &Value, kind: &str, id: &str, sequence: Option<i64>) {
    let first = &report["first_problem"];
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(first["kind"], kind, "{report}");
    assert_eq!(first["aggregate_type"], "ticket", "{report}");
    assert_eq!(first["aggregate_id"], id, "{report}");
    if let Some(seq) = sequence {
        assert_eq!(first["sequence"], seq, "{report}");
    }
}

/// The kind of every problem the verifier reported, in order.
fn kinds(report: &Value) -> Vec<&str> {
    let problems = report["problems"].as_array();
    let problems = problems.unwrap_or_else(|| panic!("no problems listed: {report}"));
    problems
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect()
}

/// The type of every event in a list of events, in order.
fn event_types(events: &Value) -> Vec<&str> {
    let events = events.as_array();
    let events = events.unwrap_or_else(|| panic!("not a list of events: {events:?}"));
    events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect()
}

/// Seals a seeded log, then tampers with it behind the guards' back (`sql` is given the
/// sealed ticket's id); the id and the verifier's report, which must call the log broken.
async fn tampered(pool: &PgPool, sql: impl FnOnce(&str) -> String) -> (String, Value) {
    let app = TestApp::spawn(pool.clone()).await;
    let id = sealed_log(&app).await;
    disable_guards(pool).await;
    psql(pool, &sql(&id)).await;
    let (ok, report) = verify(pool).await;
    assert!(!ok, "the tampering went unnoticed: {report}");
    (id, report)
}

#[sqlx::test]
async fn verify_passes_on_an_untouched_log_of_thousands_of_mixed_events(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (ok, _, err) = ticketd(&pool, &["seed", "--tickets", "700"]).await;
    assert!(ok, "seed failed: {err}");
    let [req, agent] = users(&app, [("req", "requester"), ("agent", "agent")]).await;
    let mut approval_ticket = 0;
    for i in 0..5 {
        let t = app
            .ticket(&req, &format!("Mixed ticket {i} ✓ «ünïcode»"))
            .await;
        let id = t["id"].as_i64().unwrap();
        approval_ticket = id;
        let path = format!("/api/v1/tickets/{id}");
        let r = app
            .patch(
                &path,
                &req.token,
                json!({"description": "line\nbreak \"quoted\" \\ back", "tags": ["a", "b"]}),
            )
            .await;
        json_of(r, StatusCode::OK).await;
        assign(&app, &agent, id, &agent).await;
        comment(&app, id, &agent, true, "internal: check the warranty").await;
        comment(&app, id, &agent, false, "public reply").await;
        move_to(&app, &agent, id, "in_progress").await;
        if i % 2 == 0 {
            let r = app.delete(&path, &req.token).await;
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
        }
    }
    for _ in 0..3 {
        app.request_approval_directly(approval_ticket, req.id, agent.id, agent.id, Utc::now())
            .await;
    }
    // The approval process manager reacts to approvals with ticket events: let it finish.
    app.settle().await;
    let (count,): (i64,) = sqlx::query_as("select count(*) from events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(count > 3000, "only {count} events");

    // However many connections read it, in whatever pages.
    for (jobs, page) in [("1", "10000"), ("2", "7"), ("5", "3")] {
        let args = [
            "audit",
            "verify",
            "--json",
            "--jobs",
            jobs,
            "--page-size",
            page,
        ];
        let (ok, report) = ticketd_json(&pool, &args).await;
        assert!(ok, "{report}");
        assert_eq!(report["ok"], true);
        assert_eq!(report["events"], count);
        assert_eq!(report["problem_count"], 0);
    }

    // A seal over all of it verifies too, from the database and from a copy kept elsewhere.
    let sealed = seal(&pool).await;
    assert_eq!(sealed["events"], count);
    assert_eq!(sealed["root"].as_str().unwrap().len(), 64);
    let file = std::env::temp_dir().join(format!("seal-{}.json", Uuid::new_v4()));
    std::fs::write(&file, sealed.to_string()).unwrap();
    // More events after the seal are fine.
    app.ticket(&req, "After the seal").await;
    let (ok, report) = ticketd_json(
        &pool,
        &[
            "audit",
            "verify",
            "--json",
            "--page-size",
            "9",
            "--seal",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok, "{report}");
    assert_eq!(report["seals_checked"], 1);
    assert_eq!(report["external_seal"], sealed["id"]);
    let (ok, text, _) = ticketd(&pool, &["audit", "verify"]).await;
    assert!(ok);
    assert!(text.starts_with("audit verify: OK"), "{text}");
    let _ = std::fs::remove_file(file);
}

#[sqlx::test]
async fn changing_one_byte_of_one_payload_is_caught_at_that_event(pool: PgPool) {
    // `app.ticket` writes the priority "medium": one byte becomes "mediun". (The description is
    // personal: it is stored sealed.)
    let (id, report) = tampered(&pool, |id| {
        format!(
            "update events set payload = replace(payload::text, '\"medium\"', '\"mediun\"')::jsonb
              where aggregate_type = 'ticket' and aggregate_id = '{id}' and sequence = 1"
        )
    })
    .await;
    assert_first_problem(&report, "hash_mismatch", &id, Some(1));
    assert_eq!(
        report["first_problem"]["global_position"],
        position(&pool, &id, 1).await
    );
    // The text report names the same event and the exit code is non-zero.
    let (ok, text, _) = ticketd(&pool, &["audit", "verify"]).await;
    assert!(!ok);
    assert!(
        text.contains(&format!("first broken link: ticket/{id} sequence 1 ")),
        "{text}"
    );
    // A broken log is not sealed.
    let (ok, _, err) = ticketd(&pool, &["audit", "seal"]).await;
    assert!(!ok, "{err}");
}

#[sqlx::test]
async fn swapping_two_events_payloads_is_caught_at_both_events(pool: PgPool) {
    let (id, report) = tampered(&pool, |id| {
        format!(
            "update events e set payload = o.payload
               from events o
              where e.aggregate_type = 'ticket' and e.aggregate_id = '{id}'
                and o.aggregate_type = 'ticket' and o.aggregate_id = '{id}'
                and ((e.sequence = 3 and o.sequence = 4) or (e.sequence = 4 and o.sequence = 3))"
        )
    })
    .await;
    assert_first_problem(&report, "hash_mismatch", &id, Some(3));
    assert_eq!(report["problem_count"], 2, "{report}");
    assert_eq!(report["problems"][1]["sequence"], 4);
    assert_eq!(
        report["problems"][1]["global_position"],
        position(&pool, &id, 4).await
    );
}

#[sqlx::test]
async fn deleting_the_last_event_of_a_stream_is_caught_by_the_seal(pool: PgPool) {
    let (id, report) = tampered(&pool, |id| format!("delete from events where aggregate_type = 'ticket' and aggregate_id = '{id}' and sequence = 5")).await;
    assert_first_problem(&report, "seal_head_mismatch", &id, Some(5));
    assert!(report["first_problem"]["detail"]
        .as_str()
        .unwrap()
        .contains("truncated"));
}

#[sqlx::test]
async fn deleting_a_whole_stream_is_caught_by_the_seal(pool: PgPool) {
    let (id, report) = tampered(&pool, |id| {
        format!("delete from events where aggregate_type = 'ticket' and aggregate_id = '{id}'")
    })
    .await;
    assert_first_problem(&report, "seal_stream_missing", &id, Some(5));
    // Every stream was still chained: only the seal could tell.
    let kinds = kinds(&report);
    assert!(kinds.iter().all(|k| k.starts_with("seal_")), "{report}");
}

#[sqlx::test]
async fn deleting_an_event_in_the_middle_of_a_stream_is_a_gap(pool: PgPool) {
    let (id, report) = tampered(&pool, |id| format!("delete from events where aggregate_type = 'ticket' and aggregate_id = '{id}' and sequence = 2")).await;
    assert_first_problem(&report, "sequence_gap", &id, Some(3));
    assert_eq!(
        report["first_problem"]["global_position"],
        position(&pool, &id, 3).await
    );
}

#[sqlx::test]
async fn a_stream_rewritten_with_fresh_hashes_is_caught_by_the_seal(pool: PgPool) {
    // The attacker knows the hash function and recomputes the head's hash: the chain holds.
    let (id, report) = tampered(&pool, |id| format!(
            "update events set payload = jsonb_set(payload, '{{TicketStatusChanged,to}}', '\"closed\"')
              where aggregate_type = 'ticket' and aggregate_id = '{id}' and sequence = 5;
             update events set hash = sha256(prev_hash || event_hash_input(aggregate_type, aggregate_id,
                    sequence, event_type, event_version, payload, metadata, recorded_at))
              where aggregate_type = 'ticket' and aggregate_id = '{id}' and sequence = 5;"
        )).await;
    assert_first_problem(&report, "seal_head_mismatch", &id, Some(5));
    assert!(report["first_problem"]["detail"]
        .as_str()
        .unwrap()
        .contains("rewritten"));
}

#[sqlx::test]
async fn a_seal_kept_outside_catches_tampering_even_when_the_stored_seals_are_removed(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let id = sealed_log(&app).await;
    let (_, seal_json, _) = ticketd(&pool, &["audit", "seal"]).await;
    let file = std::env::temp_dir().join(format!("seal-{}.json", Uuid::new_v4()));
    std::fs::write(&file, &seal_json).unwrap();
    disable_guards(&pool).await;
    psql(
        &pool,
        &format!(
            "delete from events where aggregate_type = 'ticket' and aggregate_id = '{id}';
             delete from audit_seal_heads; delete from audit_seals;"
        ),
    )
    .await;
    // Without the seals the database alone cannot tell.
    let (ok, report) = verify(&pool).await;
    assert!(ok, "{report}");
    let (ok, report) = ticketd_json(
        &pool,
        &[
            "audit",
            "verify",
            "--json",
            "--seal",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert!(!ok);
    let kinds = kinds(&report);
    assert_eq!(
        kinds,
        ["seal_unknown", "seal_count_mismatch", "seal_root_mismatch"],
        "{report}"
    );
    let _ = std::fs::remove_file(file);
}

/// Captures a ticket's GET response and the time right after it.
async fn capture(app: &TestApp, user: &TestUser, id: i64) -> (DateTime<Utc>, Value, String) {
    let r = app.get(&format!("/api/v1/tickets/{id}"), &user.token).await;
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let body = json_of(r, StatusCode::OK).await;
    let at = Utc::now();
    // The next change is recorded strictly later than `at`.
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    (at, body, etag)
}

#[sqlx::test]
async fn as_of_returns_exactly_the_state_the_ticket_had_then(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [req, agent] = users(&app, [("req", "requester"), ("agent", "agent")]).await;
    let before = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    let id = open_ticket(&app, &req, "Badge reader broken").await;
    let path = format!("/api/v1/tickets/{id}");
    let mut states = vec![capture(&app, &req, id).await];
    let r = app
        .patch(
            &path,
            &req.token,
            json!({"title": "Badge reader broken at gate 2", "priority": "high"}),
        )
        .await;
    json_of(r, StatusCode::OK).await;
    states.push(capture(&app, &req, id).await);
    assign(&app, &agent, id, &agent).await;
    states.push(capture(&app, &req, id).await);
    // One command, two events (the comment and the first response it records).
    comment(&app, id, &agent, false, "On my way").await;
    states.push(capture(&app, &req, id).await);
    move_to(&app, &agent, id, "in_progress").await;
    states.push(capture(&app, &req, id).await);
    move_to(&app, &agent, id, "resolved").await;
    states.push(capture(&app, &req, id).await);
    move_to(&app, &req, id, "closed").await;
    states.push(capture(&app, &req, id).await);

    for (at, body, etag) in &states {
        let iso = at.to_rfc3339_opts(SecondsFormat::Micros, true);
        let r = app
            .get(&format!("{path}?as_of={}", urlencode(&iso)), &req.token)
            .await;
        assert_eq!(r.headers()["etag"].to_str().unwrap(), etag, "as of {iso}");
        assert_eq!(&json_of(r, StatusCode::OK).await, body, "as of {iso}");
    }
    // Other offsets, a '+' left unencoded (a space once decoded), nanoseconds.
    let (at, body, _) = &states[2];
    let plus_two = at
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339_opts(SecondsFormat::Nanos, false);
    for form in [urlencode(&plus_two), plus_two.clone()] {
        let r = app.get(&format!("{path}?as_of={form}"), &agent.token).await;
        assert_eq!(&json_of(r, StatusCode::OK).await, body, "as of {form}");
    }
    // The history as of a time holds exactly the events of that version.
    let (at, body, _) = &states[3];
    let iso = urlencode(&at.to_rfc3339_opts(SecondsFormat::Micros, true));
    let r = app
        .get(&format!("{path}/history?as_of={iso}"), &agent.token)
        .await;
    let history = json_of(r, StatusCode::OK).await;
    assert_eq!(
        history.as_array().unwrap().len() as i64,
        body["version"].as_i64().unwrap()
    );

    // Before the ticket existed: 404; nonsense: 422 naming the parameter.
    let iso = urlencode(&before.to_rfc3339_opts(SecondsFormat::Micros, true));
    let r = app.get(&format!("{path}?as_of={iso}"), &req.token).await;
    json_of(r, StatusCode::NOT_FOUND).await;
    let r = app
        .get(&format!("{path}?as_of=yesterday"), &req.token)
        .await;
    let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["detail"][0]["loc"], json!(["query", "as_of"]));
    // Another requester cannot look into the past either.
    let other = app.user("other@example.com", "requester").await;
    let iso = urlencode(&states[0].0.to_rfc3339_opts(SecondsFormat::Micros, true));
    let r = app.get(&format!("{path}?as_of={iso}"), &other.token).await;
    json_of(r, StatusCode::NOT_FOUND).await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[sqlx::test]
async fn history_lists_the_events_and_hides_internal_notes_from_requesters(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [req, agent] = users(&app, [("req", "requester"), ("agent", "agent")]).await;
    let id = open_ticket(&app, &req, "Printer jams").await;
    let note = comment(&app, id, &agent, true, "internal: the requester broke it").await;
    let edit = TicketCommand::EditComment {
        comment_id: note,
        editor_id: agent.id,
        content: "internal: paper jam".into(),
        mentions: vec![],
        at: Utc::now(),
    };
    run_directly(&app, id, agent.id, edit).await;
    comment(&app, id, &agent, false, "Fixed the tray").await;
    move_to(&app, &agent, id, "in_progress").await;
    let path = format!("/api/v1/tickets/{id}/history");

    let staff = get_ok(&app, &agent, &path).await;
    let types = event_types(&staff);
    assert_eq!(
        types,
        [
            "TicketOpened",
            "CommentAdded",
            "CommentEdited",
            "CommentAdded",
            "FirstResponseRecorded",
            "TicketStatusChanged"
        ]
    );
    let opened = &staff[0];
    assert_eq!(opened["sequence"], 1);
    assert_eq!(opened["actor_id"], req.id);
    assert_eq!(opened["data"]["title"], "Printer jams");
    assert!(opened["recorded_at"].is_string());
    assert_eq!(staff[1]["data"]["is_internal"], true);
    assert_eq!(staff[5]["data"]["to"], "in_progress");
    assert_eq!(staff[5]["actor_id"], agent.id);

    let mine = get_ok(&app, &req, &path).await;
    let seqs: Vec<i64> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 4, 5, 6]);
    assert!(!mine.to_string().contains("internal:"));

    let other = app.user("other@example.com", "requester").await;
    json_of(app.get(&path, &other.token).await, StatusCode::NOT_FOUND).await;
    json_of(
        app.get("/api/v1/tickets/999999/history", &agent.token)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let r = app
        .request(reqwest::Method::GET, &path, None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test]
async fn replay_prints_who_when_and_what_then_the_state(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [req, agent] = users(&app, [("req", "requester"), ("agent", "agent")]).await;
    let id = open_ticket(&app, &req, "VPN drops").await;
    let path = format!("/api/v1/tickets/{id}");
    let r = app
        .patch(&path, &req.token, json!({"title": "VPN drops hourly"}))
        .await;
    json_of(r, StatusCode::OK).await;
    let (at, after_update, _) = capture(&app, &req, id).await;
    assign(&app, &agent, id, &agent).await;
    comment(&app, id, &agent, true, "internal: check the concentrator").await;
    move_to(&app, &agent, id, "in_progress").await;
    let now = get_ok(&app, &agent, &path).await;

    let id_s = id.to_string();
    let (ok, replay) = ticketd_json(&pool, &["replay", "ticket", &id_s, "--format", "json"]).await;
    assert!(ok, "{replay}");
    let events = replay["events"].as_array().unwrap();
    assert_eq!(events.len(), 5);
    assert_eq!(events[0]["actor"], "req@example.com");
    assert_eq!(events[0]["actor_id"], req.id);
    assert!(events[0]["summary"]
        .as_str()
        .unwrap()
        .contains("opened \"VPN drops\""));
    assert_eq!(
        events[1]["summary"],
        "title \"VPN drops\" → \"VPN drops hourly\""
    );
    assert_eq!(
        events[2]["summary"],
        "assigned to agent@example.com (was nobody)"
    );
    assert!(events[3]["summary"]
        .as_str()
        .unwrap()
        .starts_with("internal note"));
    assert_eq!(events[4]["summary"], "status open → in_progress");
    assert_eq!(events[4]["actor"], "agent@example.com");
    assert_eq!(replay["state"], now);

    let (ok, replay) = ticketd_json(
        &pool,
        &[
            "replay",
            "ticket",
            &id_s,
            "--until-seq",
            "2",
            "--format",
            "json",
        ],
    )
    .await;
    assert!(ok);
    assert_eq!(replay["events"].as_array().unwrap().len(), 2);
    assert_eq!(replay["state"], after_update);
    let iso = at.to_rfc3339_opts(SecondsFormat::Micros, true);
    let (ok, replay) = ticketd_json(
        &pool,
        &[
            "replay", "ticket", &id_s, "--as-of", &iso, "--format", "json",
        ],
    )
    .await;
    assert!(ok);
    assert_eq!(replay["state"], after_update);

    let (ok, table, _) = ticketd(&pool, &["replay", "ticket", &id_s]).await;
    assert!(ok);
    assert!(table.contains("req@example.com"), "{table}");
    assert!(table.contains("state at version 5:"), "{table}");
    assert!(table.contains("in_progress"), "{table}");
    let (ok, _, err) = ticketd(&pool, &["replay", "ticket", "999999"]).await;
    assert!(!ok);
    assert!(err.contains("there is no ticket 999999"), "{err}");
}

#[sqlx::test]
async fn replay_of_an_approval_shows_each_decision(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [req, boss, sec] = users(
        &app,
        [("req", "requester"), ("boss", "manager"), ("sec", "agent")],
    )
    .await;
    let t = app.ticket(&req, "New laptop").await;
    let approval = Uuid::new_v4();
    let key = approval.to_string();
    let meta = |u: &TestUser| Actor::user(u.id).metadata();
    app.state
        .approvals
        .execute(&key, Some(0), meta(&req), |_| {
            ApprovalCommand::RequestApproval(ApprovalRequest {
                id: approval,
                ticket_id: t["id"].as_i64().unwrap(),
                ticket_requester_id: req.id,
                requested_by: req.id,
                steps: vec![
                    StepSpec {
                        name: "Manager".into(),
                        approver_ids: vec![boss.id],
                        rule: Rule::Any,
                        min_approvals: None,
                    },
                    StepSpec {
                        name: "Security".into(),
                        approver_ids: vec![sec.id],
                        rule: Rule::All,
                        min_approvals: None,
                    },
                ],
                reason: Some("old one died".into()),
                at: Utc::now(),
            })
        })
        .await
        .expect("request");
    for (user, decision) in [(&boss, Decision::Approve), (&sec, Decision::Reject)] {
        app.state
            .approvals
            .execute(&key, None, meta(user), |_| ApprovalCommand::Decide {
                approver_id: user.id,
                decision,
                comment: Some("ok".into()),
                at: Utc::now(),
            })
            .await
            .expect("decide");
    }
    let (ok, replay) = ticketd_json(&pool, &["replay", "approval", &key, "--format", "json"]).await;
    assert!(ok, "{replay}");
    let types = event_types(&replay["events"]);
    assert_eq!(
        types,
        [
            "ApprovalRequested",
            "DecisionRecorded",
            "StepCompleted",
            "DecisionRecorded",
            "ApprovalRejected"
        ]
    );
    assert!(replay["events"][0]["summary"]
        .as_str()
        .unwrap()
        .contains("\"Manager\" (any of boss@example.com)"));
    assert_eq!(
        replay["events"][1]["summary"],
        "step 1 (\"Manager\"): boss@example.com decided approve: \"ok\""
    );
    assert_eq!(replay["events"][3]["actor"], "sec@example.com");
    assert_eq!(replay["state"]["status"], "rejected");
    let (ok, replay) = ticketd_json(
        &pool,
        &[
            "replay",
            "approval",
            &key,
            "--until-seq",
            "3",
            "--format",
            "json",
        ],
    )
    .await;
    assert!(ok);
    assert_eq!(replay["state"]["status"], "pending");
    assert_eq!(replay["state"]["current_step"], 1);
}

#[sqlx::test]
async fn a_transaction_still_running_during_a_seal_is_left_to_the_next_seal(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let req = app.user("req@example.com", "requester").await;
    // A writer that took its transaction id before the events below, and commits after the seal.
    let mut late = pool.begin().await.unwrap();
    let (xid,): (String,) = sqlx::query_as("select pg_current_xact_id()::text")
        .fetch_one(&mut *late)
        .await
        .unwrap();
    for i in 0..3 {
        app.ticket(&req, &format!("Committed {i}")).await;
    }
    let sealed = seal(&pool).await;
    // The three tickets and the requester's `DataKeyIssued` (their first sealed text).
    assert_eq!(sealed["events"], 4, "{sealed}");
    // Other databases of the cluster may have running transactions too: xids are shared.
    assert!(
        sealed["excluded_txids"]
            .as_array()
            .unwrap()
            .contains(&json!(xid)),
        "{sealed}"
    );
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         values ('ticket', 'late', 1, 'TicketDeleted', '1.0', '{}', '{}')",
    )
    .execute(&mut *late)
    .await
    .unwrap();
    late.commit().await.unwrap();
    let (ok, report) = verify(&pool).await;
    assert!(ok, "{report}");
    let sealed = seal(&pool).await;
    assert_eq!(sealed["events"], 5, "{sealed}");
    let (ok, report) = verify(&pool).await;
    assert!(ok, "{report}");
}
