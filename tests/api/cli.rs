//! The command line, run as the real binary against a test database.

use std::time::{Duration, Instant};

use clap::CommandFactory;
use sqlx::PgPool;

use crate::helpers::{ticketd, TestApp};

#[test]
fn the_command_line_definition_is_valid() {
    ticketd::app::Cli::command().debug_assert();
}

#[sqlx::test]
async fn seed_status_and_rebuild_work_from_the_command_line(pool: PgPool) {
    let (ok, out, err) = ticketd(&pool, &["seed", "--tickets", "300"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("seeded 300 tickets"), "{out}");
    let (ok, out, err) = ticketd(&pool, &["projections", "rebuild", "tickets"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("rebuilt tickets"), "{out}");
    let (n,): (i64,) = sqlx::query_as("select count(*) from rm_tickets")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 300);
    let (ok, out, _) = ticketd(&pool, &["projections", "status", "--json"]).await;
    assert!(ok);
    let status: serde_json::Value = serde_json::from_str(&out).expect("json");
    let tickets = status
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "tickets")
        .expect("tickets");
    assert_eq!(tickets["lag_events"], 0);
    assert_eq!(tickets["status"], "running");
    // With a server running, status names the leader.
    let app = TestApp::spawn(pool.clone()).await;
    app.settle().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (ok, out, _) = ticketd(&pool, &["projections", "status"]).await;
    assert!(ok);
    assert!(
        out.lines()
            .any(|l| l.starts_with("tickets") && l.contains("pid ")),
        "{out}"
    );
    let (ok, _, err) = ticketd(&pool, &["projections", "rebuild", "nope"]).await;
    assert!(!ok && err.contains("no projection named nope"));
}

async fn checkpoint_status(pool: &PgPool, name: &str) -> String {
    let (status,): (String,) =
        sqlx::query_as("select status from projection_checkpoints where projection = $1")
            .bind(name)
            .fetch_one(pool)
            .await
            .unwrap();
    status
}

async fn projected_titles(pool: &PgPool) -> Vec<String> {
    let rows: Vec<(String,)> = sqlx::query_as("select title from rm_tickets order by id")
        .fetch_all(pool)
        .await
        .unwrap();
    rows.into_iter().map(|(t,)| t).collect()
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test]
async fn a_projection_stopped_by_an_event_it_cannot_apply_runs_again_after_resume(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let agent = app.user("agent@example.com", "agent").await;
    app.ticket(&agent, "Before the stop").await;
    app.settle().await;
    // The read model refuses one title: the tickets projection stops on that event.
    sqlx::query(
        "alter table rm_tickets add constraint refuses_one_title check (title <> 'Refused title')",
    )
    .execute(&pool)
    .await
    .unwrap();
    app.ticket(&agent, "Refused title").await;
    app.ticket(&agent, "After the stop").await;
    wait_for("the projection to stop", async || {
        checkpoint_status(&pool, "tickets").await == "stopped"
    })
    .await;
    assert_eq!(projected_titles(&pool).await, ["Before the stop"]);
    // The cause is mended; the projection stays stopped until an operator resumes it.
    sqlx::query("alter table rm_tickets drop constraint refuses_one_title")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(checkpoint_status(&pool, "tickets").await, "stopped");

    let (ok, out, err) = ticketd(&pool, &["projections", "resume", "tickets"]).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "tickets: running");
    wait_for("the resumed projection to catch up", async || {
        projected_titles(&pool).await.len() == 3
    })
    .await;
    assert_eq!(
        projected_titles(&pool).await,
        ["Before the stop", "Refused title", "After the stop"]
    );
    assert_eq!(checkpoint_status(&pool, "tickets").await, "running");
    let listed = crate::helpers::json_of(
        app.get("/api/v1/tickets?sort=created_at", &agent.token)
            .await,
        reqwest::StatusCode::OK,
    )
    .await;
    assert_eq!(listed["total"], 3);
    assert_eq!(listed["items"][2]["title"], "After the stop");

    let (ok, _, err) = ticketd(&pool, &["projections", "resume", "nope"]).await;
    assert!(!ok && err.contains("no projection named nope"), "{err}");
}

#[sqlx::test(migrations = false)]
async fn migrate_creates_the_schema_on_an_empty_database_and_can_run_again(pool: PgPool) {
    let (tables,): (i64,) = sqlx::query_as(
        "select count(*) from information_schema.tables where table_schema = 'public'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(tables, 0, "an empty database");
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|f| {
            f.as_ref()
                .is_ok_and(|f| f.file_name().to_string_lossy().ends_with(".sql"))
        })
        .count() as i64;
    for run in ["first", "second"] {
        let (ok, _, err) = ticketd(&pool, &["migrate"]).await;
        assert!(ok, "{run} run: {err}");
        assert!(err.contains("migrations applied"), "{run} run: {err}");
        let (applied, succeeded): (i64, i64) = sqlx::query_as(
            "select count(*), count(*) filter (where success) from _sqlx_migrations",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!((applied, succeeded), (files, files), "{run} run");
    }
    for table in ["events", "users", "projection_checkpoints", "rm_tickets"] {
        let (exists,): (bool,) = sqlx::query_as("select to_regclass($1) is not null")
            .bind(table)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(exists, "{table} created");
    }
}

#[sqlx::test]
async fn openapi_prints_the_document_the_server_serves(pool: PgPool) {
    let (ok, out, err) = ticketd(&pool, &["openapi"]).await;
    assert!(ok, "{err}");
    let printed: serde_json::Value = serde_json::from_str(&out).expect("the output is JSON");
    let app = TestApp::spawn(pool.clone()).await;
    let served = app
        .request(reqwest::Method::GET, "/api/v1/openapi.json", None)
        .send()
        .await
        .unwrap();
    let served: serde_json::Value = crate::helpers::json_of(served, reqwest::StatusCode::OK).await;
    assert!(
        printed == served,
        "`ticketd openapi` differs from the served document"
    );
    assert!(printed["paths"]["/api/v1/tickets"]["get"].is_object());
}

async fn user_count(pool: &PgPool) -> i64 {
    let (n,): (i64,) = sqlx::query_as("select count(*) from users")
        .fetch_one(pool)
        .await
        .unwrap();
    n
}

#[sqlx::test]
async fn user_create_makes_an_account_that_can_sign_in(pool: PgPool) {
    let (ok, out, err) = ticketd(
        &pool,
        &[
            "user",
            "create",
            "--email",
            "ann@example.com",
            "--password",
            "a long enough secret",
            "--full-name",
            "Ann Agent",
            "--role",
            "agent",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with("created user ") && out.contains("(ann@example.com) with role agent"),
        "{out}"
    );
    let app = TestApp::spawn(pool.clone()).await;
    let ann = app.login("ann@example.com", "a long enough secret").await;
    let me = crate::helpers::json_of(
        app.get("/api/v1/auth/profile", &ann.token).await,
        reqwest::StatusCode::OK,
    )
    .await;
    assert_eq!(me["role"], "agent");
    assert_eq!(me["full_name"], "Ann Agent");
}

#[sqlx::test]
async fn user_create_refuses_a_bad_role_or_a_short_password_and_creates_nothing(pool: PgPool) {
    let before = user_count(&pool).await;
    for (refused, rest, message) in [
        (
            "a bad role",
            &["--password", "a long enough secret", "--role", "wizard"][..],
            "role must be requester, agent, manager or admin",
        ),
        (
            "a short password",
            &["--password", "short"][..],
            "error: Password must be at least 8 characters",
        ),
    ] {
        let args = [&["user", "create", "--email", "bob@example.com"][..], rest].concat();
        let (ok, _, err) = ticketd(&pool, &args).await;
        assert!(!ok, "{refused} is refused");
        assert!(err.contains(message), "{err}");
        assert!(!err.contains("FieldError"), "a message for people: {err}");
    }
    assert_eq!(user_count(&pool).await, before, "nothing created");
}

/// The dashboard's status counts as the command line prints them (`--format json`).
async fn reported_open_tickets(pool: &PgPool) -> (i64, String) {
    let (ok, out, err) = ticketd(pool, &["report", "dashboard", "--format", "json"]).await;
    assert!(ok, "{err}");
    let d: serde_json::Value = serde_json::from_str(&out).expect("json");
    let total = d["by_status"]
        .as_object()
        .expect("by_status")
        .values()
        .map(|n| n.as_i64().unwrap_or(0))
        .sum();
    (total, err)
}

#[sqlx::test]
async fn a_report_after_seeding_without_a_server_shows_the_seeded_tickets_and_says_how_current(
    pool: PgPool,
) {
    let (ok, _, err) = ticketd(&pool, &["seed", "--tickets", "300"]).await;
    assert!(ok, "{err}");
    // Seeding says how far it got (plain lines when stderr is not a terminal).
    assert!(err.contains("seed: 300/300 tickets (100%)"), "{err}");
    // Nobody ran the reports projection: the command brings it up to the head of the log.
    let (total, err) = reported_open_tickets(&pool).await;
    assert_eq!(total, 300, "{err}");
    assert!(err.contains("reports: "), "progress: {err}");
    assert!(err.contains("current with the log ("), "{err}");
    // A second run finds it current and applies nothing.
    let (total, err) = reported_open_tickets(&pool).await;
    assert_eq!(total, 300);
    assert!(err.contains(": current with the log\n"), "{err}");
}

#[sqlx::test]
async fn a_report_while_a_server_leads_the_projection_waits_for_it(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let requester = app.user("rita@example.com", "requester").await;
    for title in ["one", "two", "three"] {
        app.ticket(&requester, title).await;
    }
    // No settling first: the command must not report before the server's projection has
    // passed the newest ticket, and must not apply it itself while the server leads.
    let (total, err) = reported_open_tickets(&pool).await;
    assert_eq!(total, 3, "{err}");
    assert!(
        err.contains("current with the log (brought up to date by the running server)")
            || err.contains(": current with the log\n"),
        "{err}"
    );
}

#[sqlx::test]
async fn rebuild_and_verify_show_their_progress(pool: PgPool) {
    let (ok, _, err) = ticketd(&pool, &["seed", "--tickets", "200"]).await;
    assert!(ok, "{err}");
    let (ok, out, err) = ticketd(&pool, &["audit", "verify"]).await;
    assert!(ok, "{out}{err}");
    let last = err
        .lines()
        .rfind(|l| l.starts_with("audit: "))
        .unwrap_or_default();
    assert!(
        last.contains("events (100%)") && last.contains("done in"),
        "{err}"
    );
    let (ok, _, err) = ticketd(&pool, &["projections", "rebuild", "tickets"]).await;
    assert!(ok, "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("rebuild tickets: ") && l.contains("(100%)")),
        "{err}"
    );
}
