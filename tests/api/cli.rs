//! The command line, run as the real binary against a test database.

use std::process::Command;

use clap::CommandFactory;
use sqlx::PgPool;

use crate::helpers::{url_of, TestApp};

#[test]
fn the_command_line_definition_is_valid() {
    ticketd::app::Cli::command().debug_assert();
}

fn ticketd(pool: &PgPool, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .args(args)
        .env("DATABASE_URL", url_of(pool))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run ticketd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[sqlx::test]
async fn seed_status_and_rebuild_work_from_the_command_line(pool: PgPool) {
    let (ok, out, err) = ticketd(&pool, &["seed", "--tickets", "300"]);
    assert!(ok, "{err}");
    assert!(out.contains("seeded 300 tickets"), "{out}");
    let (ok, out, err) = ticketd(&pool, &["projections", "rebuild", "tickets"]);
    assert!(ok, "{err}");
    assert!(out.contains("rebuilt tickets"), "{out}");
    let (n,): (i64,) = sqlx::query_as("select count(*) from rm_tickets")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 300);
    let (ok, out, _) = ticketd(&pool, &["projections", "status", "--json"]);
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
    let (ok, out, _) = ticketd(&pool, &["projections", "status"]);
    assert!(ok);
    assert!(
        out.lines()
            .any(|l| l.starts_with("tickets") && l.contains("pid ")),
        "{out}"
    );
    let (ok, _, err) = ticketd(&pool, &["projections", "rebuild", "nope"]);
    assert!(!ok && err.contains("no projection named nope"));
}
