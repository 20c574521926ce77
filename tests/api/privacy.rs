//! Privacy (issue 19): personal fields are sealed under a key per person; erasing a person
//! destroys the key and rewrites the read models, so their words are gone from every response,
//! search, history, replay, export and table — while the log and `audit verify` stay intact.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::attachments::upload;
use crate::helpers::{json_of, ticketd, url_of, TestApp, TestUser, PASSWORD};
use crate::steps::{get_ok, request_approval, users};

/// What person A writes: each string is unique, so finding it anywhere is a leak.
const A_EMAIL: &str = "quillonaxe@example.com";
const A_TITLE: &str = "Zephyrquokka printer";
const A_DESCRIPTION: &str = "Marmalisk toner smudges everywhere";
const A_UPDATED: &str = "Plinthoraxe jams on duplex";
const A_COMMENT: &str = "Snorkelwhisp paper keeps folding";
const A_FILE: &str = "Grimblefax-invoice.pdf";
/// What person B writes: it must stay.
const B_REPLY: &str = "Vorpalquinn restarted the spooler";

/// The strings of A that must be unreadable after the erasure (search words in lower case too).
const A_SECRETS: &[&str] = &[
    "quillonaxe",
    "Zephyrquokka",
    "Marmalisk",
    "Plinthoraxe",
    "Snorkelwhisp",
    "Grimblefax",
];

fn leaks(text: &str) -> Vec<&'static str> {
    let lower = text.to_lowercase();
    A_SECRETS
        .iter()
        .copied()
        .filter(|s| lower.contains(&s.to_lowercase()))
        .collect()
}

async fn verify_ok(pool: &PgPool) {
    let (ok, out, err) = ticketd(pool, &["audit", "verify", "--json"]).await;
    assert!(ok, "audit verify failed: {out} {err}");
}

/// Every row of every table in the database as text, table by table (the scan of a dump).
async fn database_text(pool: &PgPool) -> Vec<(String, String)> {
    let tables: Vec<(String,)> = sqlx::query_as(
        "select format('%I.%I', table_schema, table_name) from information_schema.tables
          where table_schema not in ('pg_catalog', 'information_schema')
            and table_type = 'BASE TABLE'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = Vec::new();
    for (table,) in tables {
        let rows: Vec<(String,)> = sqlx::query_as(&format!("select t::text from {table} t"))
            .fetch_all(pool)
            .await
            .unwrap();
        out.push((
            table,
            rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("\n"),
        ));
    }
    out
}

/// Whether any file under `dir` holds `content`.
fn store_holds(dir: &std::path::Path, content: &[u8]) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        if path.is_dir() {
            store_holds(&path, content)
        } else {
            std::fs::read(&path)
                .is_ok_and(|bytes| bytes.windows(content.len()).any(|w| w == content))
        }
    })
}

/// The scenario: A (requester) opens a ticket, the agent B rewrites its description on A's
/// behalf, A comments, uploads a file and asks for an approval; B replies and mentions A.
async fn scenario(app: &TestApp) -> (TestUser, TestUser, TestUser, i64) {
    let a = app.user(A_EMAIL, "requester").await;
    let [b, admin] = users(app, [("bertrand", "agent"), ("root", "admin")]).await;
    let ticket = json_of(
        app.post(
            "/api/v1/tickets/",
            &a.token,
            json!({"title": A_TITLE, "description": A_DESCRIPTION, "priority": "medium", "type": "issue"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = ticket["id"].as_i64().unwrap();
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/tickets/{id}"),
            Some(&b.token),
        )
        .header("if-match", "\"1\"")
        .json(&json!({"description": format!("{A_DESCRIPTION}; {A_UPDATED}")}))
        .send()
        .await
        .unwrap();
    json_of(r, StatusCode::OK).await;
    json_of(
        app.post(
            "/api/v1/comments/",
            &a.token,
            json!({"ticket_id": id, "content": A_COMMENT}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let r = upload(app, &a, id, A_FILE, b"the content of A's invoice").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(store_holds(
        &app.config.data_dir,
        b"the content of A's invoice"
    ));
    json_of(
        app.post(
            "/api/v1/comments/",
            &b.token,
            json!({"ticket_id": id, "content": B_REPLY}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let steps = vec![json!({"name": "Manager", "approver_ids": [admin.id], "rule": "any"})];
    let approval = request_approval(app, &b, id, steps).await;
    let r = app
        .post(
            &format!(
                "/api/v1/approvals/{}/decisions",
                approval["id"].as_str().unwrap()
            ),
            &admin.token,
            json!({"decision": "approve", "comment": "fine by me"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    app.settle().await;
    (a, b, admin, id)
}

/// The bodies of every read a person's data shows up in.
async fn responses(
    app: &TestApp,
    a: &TestUser,
    admin: &TestUser,
    id: i64,
    as_of: &str,
) -> Vec<(String, String)> {
    let mut paths = vec![
        format!("/api/v1/tickets/{id}"),
        "/api/v1/tickets/".to_string(),
        format!("/api/v1/tickets/{id}/history"),
        format!("/api/v1/tickets/{id}/history?as_of={as_of}"),
        format!("/api/v1/comments/?ticket_id={id}"),
        format!("/api/v1/users/{}", a.id),
        "/api/v1/users/".to_string(),
        format!("/api/v1/users/{}/export", a.id),
        "/api/v1/reports/export?format=json".to_string(),
        "/api/v1/notifications/".to_string(),
        "/api/v1/approvals/".to_string(),
    ];
    for secret in A_SECRETS {
        paths.push(format!(
            "/api/v1/tickets/search?q={}",
            secret.to_lowercase()
        ));
    }
    let mut out = Vec::new();
    for path in paths {
        let r = app.get(&path, &admin.token).await;
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        out.push((path, body));
    }
    out
}

/// The read models as the tests compare them before and after a rebuild.
async fn read_models(pool: &PgPool) -> Value {
    let (v,): (Value,) = sqlx::query_as(
        "select jsonb_build_object(
            'tickets', (select jsonb_agg(jsonb_build_array(id, title, description, public_comments) order by id) from rm_tickets),
            'search', (select jsonb_agg(document::text order by ticket_id) from rm_ticket_search),
            'comments', (select jsonb_agg(jsonb_build_array(id, content) order by id) from rm_comments),
            'attachments', (select jsonb_agg(jsonb_build_array(id, filename) order by id) from rm_attachments),
            'notifications', (select jsonb_agg(jsonb_build_array(user_id, source_position, message, excerpt) order by user_id, source_position) from rm_notifications),
            'notification_tickets', (select jsonb_agg(jsonb_build_array(ticket_id, title) order by ticket_id) from rm_notification_tickets),
            'reports', (select jsonb_agg(jsonb_build_array(id, title) order by id) from rm_report_tickets),
            'approvals', (select jsonb_agg(jsonb_build_array(reason, steps) order by id) from rm_approvals))",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    v
}

#[sqlx::test]
async fn erasing_a_person_makes_their_words_unreadable_everywhere_and_the_log_still_verifies(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let (a, b, admin, id) = scenario(&app).await;
    let as_of = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);

    // At rest, the log holds A's words sealed only.
    let (events,): (String,) =
        sqlx::query_as("select string_agg(payload::text || metadata::text, ' ') from events")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        leaks(&events).is_empty(),
        "plaintext in the log: {:?}",
        leaks(&events)
    );
    assert!(events.contains(r#""$enc""#));
    // ... and every reader opens them.
    let before = responses(&app, &a, &admin, id, &as_of).await;
    let shown: String = before.iter().map(|(_, b)| b.as_str()).collect();
    for s in [
        A_TITLE,
        A_DESCRIPTION,
        A_UPDATED,
        A_COMMENT,
        A_FILE,
        A_EMAIL,
        B_REPLY,
    ] {
        assert!(shown.contains(s), "{s} is not shown before the erasure");
    }
    verify_ok(&pool).await;

    // A's own export: everything A gave, nothing of B's.
    let export = get_ok(&app, &a, &format!("/api/v1/users/{}/export", a.id)).await;
    let text = export.to_string();
    for s in [A_EMAIL, A_TITLE, A_UPDATED, A_COMMENT, A_FILE] {
        assert!(text.contains(s), "{s} missing from the export: {export}");
    }
    assert!(
        !text.contains("Vorpalquinn") && !text.contains("bertrand"),
        "{export}"
    );
    assert_eq!(export["tickets"][0]["id"], id);
    assert_eq!(export["comments"].as_array().unwrap().len(), 1);
    assert_eq!(export["attachments"][0]["filename"], A_FILE);
    // Others' data is not there for anyone but admins.
    let r = app
        .get(&format!("/api/v1/users/{}/export", a.id), &b.token)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Erase A.
    let r = app
        .post(
            &format!("/api/v1/users/{}/erase", a.id),
            &admin.token,
            json!({}),
        )
        .await;
    let report = json_of(r, StatusCode::OK).await;
    assert_eq!(report["key_destroyed"], true, "{report}");
    assert_eq!(report["files_deleted"], 1, "{report}");
    assert_eq!(report["plaintext_entries"], json!([]), "{report}");
    app.settle().await;

    // Every response: A's words are gone, B's stay.
    let after = responses(&app, &a, &admin, id, &as_of).await;
    for (path, body) in &after {
        assert!(
            leaks(body).is_empty(),
            "{path} still shows {:?}: {body}",
            leaks(body)
        );
    }
    let shown: String = after.iter().map(|(_, b)| b.as_str()).collect();
    assert!(shown.contains(B_REPLY), "B's reply is gone");
    assert!(shown.contains("[erased]"));
    for (path, body) in after.iter().filter(|(p, _)| p.contains("/search?q=")) {
        let page: Value = serde_json::from_str(body).unwrap();
        assert_eq!(page["items"], json!([]), "{path} finds A's words: {body}");
    }
    let page = get_ok(&app, &admin, "/api/v1/tickets/search?q=vorpalquinn").await;
    assert_eq!(page["items"][0]["id"], id, "B's words are still found");

    // Replay, from the CLI.
    let (ok, replay, err) = ticketd(
        &pool,
        &["replay", "ticket", &id.to_string(), "--format", "json"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        leaks(&replay).is_empty(),
        "replay shows {:?}",
        leaks(&replay)
    );
    assert!(replay.contains(B_REPLY));

    // Every table of the database.
    for (table, text) in database_text(&pool).await {
        assert!(
            leaks(&text).is_empty(),
            "table {table} still holds {:?}",
            leaks(&text)
        );
    }
    // The file is gone from the store.
    assert!(!store_holds(
        &app.config.data_dir,
        b"the content of A's invoice"
    ));

    // The log was never rewritten: the chain verifies.
    verify_ok(&pool).await;
    // A cannot sign in any more, with either the old email or the placeholder.
    for email in [
        A_EMAIL.to_string(),
        format!("erased-{}@erased.invalid", a.id),
    ] {
        let r = app
            .request(Method::POST, "/api/v1/auth/login", None)
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{email}");
    }
    let r = app.get("/api/v1/auth/profile", &a.token).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A rebuild from the log gives the same redacted read models.
    let incremental = read_models(&pool).await;
    for name in [
        "tickets",
        "comments",
        "attachments",
        "notifications",
        "reports",
        "approvals",
    ] {
        let (ok, out, err) = ticketd(&pool, &["projections", "rebuild", name]).await;
        assert!(ok, "rebuild {name}: {out} {err}");
    }
    assert_eq!(read_models(&pool).await, incremental);
    verify_ok(&pool).await;
}

#[sqlx::test]
async fn the_last_admin_cannot_be_erased_and_only_admins_erase(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [req, agent, admin] =
        users(&app, [("r", "requester"), ("g", "agent"), ("a", "admin")]).await;
    for who in [&req, &agent] {
        let r = app
            .post(
                &format!("/api/v1/users/{}/erase", req.id),
                &who.token,
                json!({}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    let r = app
        .post(
            &format!("/api/v1/users/{}/erase", admin.id),
            &admin.token,
            json!({}),
        )
        .await;
    let body = json_of(r, StatusCode::CONFLICT).await;
    assert_eq!(body["code"], "CONFLICT");
    let r = app
        .post("/api/v1/users/999999/erase", &admin.token, json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // An erased requester's export is the placeholder profile and nothing else.
    json_of(
        app.post(
            &format!("/api/v1/users/{}/erase", req.id),
            &admin.token,
            json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let export = get_ok(&app, &admin, &format!("/api/v1/users/{}/export", req.id)).await;
    assert_eq!(export["profile"]["full_name"], "[erased]");
    assert_eq!(export["tickets"], json!([]));
}

#[sqlx::test]
async fn events_written_before_encryption_are_redacted_from_the_read_models_and_listed(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let [old, admin] = users(&app, [("oldtimer", "requester"), ("root", "admin")]).await;
    // A ticket from before encryption: its events hold the text in plaintext.
    let (id,): (i64,) = sqlx::query_as("select nextval('ticket_id_seq')")
        .fetch_one(&pool)
        .await
        .unwrap();
    let payload = json!({"TicketOpened": {"id": id, "requester_id": old.id, "title": A_TITLE,
        "description": A_DESCRIPTION, "priority": "low", "type": "issue", "tags": [], "item_ids": [],
        "at": "2026-01-01T00:00:00Z"}});
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         values ('ticket', $1, 1, 'TicketOpened', '1.0', $2, $3)",
    )
    .bind(id.to_string())
    .bind(&payload)
    .bind(json!({"user_id": old.id.to_string(), "request_id": "r", "client_ip": "203.0.113.9", "user_agent": "Grimblefax/1.0"}))
    .execute(&pool)
    .await
    .unwrap();
    app.settle().await;
    // Read as they are (the upcaster leaves plaintext alone).
    assert_eq!(
        get_ok(&app, &old, &format!("/api/v1/tickets/{id}")).await["title"],
        A_TITLE
    );

    let (ok, out, err) = ticketd(&pool, &["privacy", "erase", &old.id.to_string()]).await;
    assert!(ok, "{out} {err}");
    assert!(
        out.contains(&format!("ticket/{id} #1 TicketOpened")),
        "{out}"
    );
    app.settle().await;
    let t = get_ok(&app, &admin, &format!("/api/v1/tickets/{id}")).await;
    assert_eq!(t["title"], "[erased]");
    assert_eq!(t["description"], "[erased]");
    let page = get_ok(&app, &admin, "/api/v1/tickets/search?q=zephyrquokka").await;
    assert_eq!(page["items"], json!([]));
    // A rebuild redacts them too: its first pass decodes an event without the keyring only
    // when nothing in it can be sealed or redacted, and this one can.
    let (ok, out, err) = ticketd(&pool, &["projections", "rebuild", "tickets"]).await;
    assert!(ok, "{out} {err}");
    let t = get_ok(&app, &admin, &format!("/api/v1/tickets/{id}")).await;
    assert_eq!(t["title"], "[erased]", "after a rebuild");
    assert_eq!(t["description"], "[erased]", "after a rebuild");
    let page = get_ok(&app, &admin, "/api/v1/tickets/search?q=zephyrquokka").await;
    assert_eq!(page["items"], json!([]), "after a rebuild");
    // The log keeps them (it is never rewritten), and still verifies.
    verify_ok(&pool).await;
    let (ok, out, _) = ticketd(&pool, &["privacy", "export", &old.id.to_string()]).await;
    assert!(ok);
    assert!(leaks(&out).is_empty(), "{out}");
}

/// `ticketd` with extra environment variables; success and standard error.
async fn ticketd_with(pool: &PgPool, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ticketd"));
    cmd.args(args)
        .env("DATABASE_URL", url_of(pool))
        .env("RUST_LOG", "warn")
        .env(
            "SECRET_KEY",
            "production-secret-key-0123456789-abcdefghijklmnop",
        )
        .env("TICKETD_ADDR", "127.0.0.1:0")
        .env_remove("TICKETD_MASTER_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .expect("ticketd exits")
        .expect("run ticketd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[sqlx::test]
async fn a_missing_malformed_or_wrong_master_key_fails_loudly_at_start(pool: PgPool) {
    // Data sealed under the development key.
    let app = TestApp::spawn(pool.clone()).await;
    let [req] = users(&app, [("r", "requester")]).await;
    app.ticket(&req, "Sealed").await;
    drop(app);
    let prod = ("ENVIRONMENT", "production");
    let (ok, err) = ticketd_with(&pool, &["serve"], &[prod]).await;
    assert!(
        !ok && err.contains("TICKETD_MASTER_KEY must be set"),
        "{err}"
    );
    for bad in ["not base64!", "c2hvcnQ="] {
        let (ok, err) = ticketd_with(&pool, &["serve"], &[prod, ("TICKETD_MASTER_KEY", bad)]).await;
        assert!(!ok && err.contains("TICKETD_MASTER_KEY"), "{bad}: {err}");
    }
    // A well-formed key that is not the one the stored keys were wrapped with.
    let other = (
        "TICKETD_MASTER_KEY",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    );
    let (ok, err) = ticketd_with(&pool, &["serve"], &[prod, other]).await;
    assert!(!ok && err.contains("cannot unwrap"), "{err}");
    let (ok, err) = ticketd_with(&pool, &["projections", "status"], &[other]).await;
    assert!(!ok && err.contains("cannot unwrap"), "{err}");
}

#[sqlx::test]
async fn a_rebuild_after_an_erasure_in_the_middle_of_a_tickets_history_gives_the_same_rows(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let [gone, agent, admin] = users(
        &app,
        [("gone", "requester"), ("agent", "agent"), ("root", "admin")],
    )
    .await;
    let ticket = app.ticket(&gone, "Zephyrquokka printer smokes").await;
    let id = ticket["id"].as_i64().unwrap();
    let r = app
        .post(
            &format!("/api/v1/users/{}/erase", gone.id),
            &admin.token,
            json!({}),
        )
        .await;
    json_of(r, StatusCode::OK).await;
    // After the erasure, the agent renames the ticket and answers on it. The new title is the
    // erased requester's ticket's, sealed under their destroyed key: it reads "[erased]" too;
    // the agent's own answer stays.
    let r = app
        .patch(
            &format!("/api/v1/tickets/{id}"),
            &agent.token,
            json!({"title": "Printer replaced"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post(
            "/api/v1/comments/",
            &agent.token,
            json!({"ticket_id": id, "content": "Swapped the unit", "is_internal": false}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    app.settle().await;
    let before = read_models(&pool).await;
    assert_eq!(
        before["tickets"],
        json!([[id, "[erased]", "[erased]", "Swapped the unit"]])
    );
    projections::rebuild::rebuild(&pool, &projections::tickets::TicketsProjection, 500)
        .await
        .unwrap();
    assert_eq!(read_models(&pool).await, before);
}
