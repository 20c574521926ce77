//! Reads a user relies on beyond one page: lists and search keep answering while
//! `ticketd projections rebuild tickets` runs (from the old copy, then the new), and search
//! pages past the ranked window continue newest first, as README promises.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sqlx::{Connection, PgPool};

use crate::helpers::{json_of, url_of, TestApp, TestUser};

/// The titles of a list or search answer, and its total.
async fn titles(app: &TestApp, user: &TestUser, path: &str) -> (Vec<String>, i64) {
    let page = json_of(app.get(path, &user.token).await, StatusCode::OK).await;
    let titles = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_string())
        .collect();
    (titles, page["total"].as_i64().unwrap())
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test]
async fn lists_and_search_answer_from_the_old_copy_during_a_rebuild_then_the_new(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let agent = app.user("agent@example.com", "agent").await;
    for n in 1..=3 {
        app.ticket(&agent, &format!("Printer jam {n}")).await;
    }
    app.settle().await;
    // Mark the live copy, so that it can be told from the rebuilt one.
    sqlx::query("update rm_tickets set title = 'old copy: ' || title")
        .execute(&pool)
        .await
        .unwrap();
    let list = "/api/v1/tickets?sort=created_at";
    let search = "/api/v1/tickets/search?q=printer&sort=created_at";
    let old: Vec<String> = (1..=3)
        .map(|n| format!("old copy: Printer jam {n}"))
        .collect();
    assert_eq!(titles(&app, &agent, list).await, (old.clone(), 3));

    // Hold the live checkpoint: the rebuild builds its copy, then waits to swap it in.
    let mut holder = sqlx::PgConnection::connect(&url_of(&pool)).await.unwrap();
    let mut hold = holder.begin().await.unwrap();
    sqlx::query("select 1 from projection_checkpoints where projection = 'tickets' for update")
        .execute(&mut *hold)
        .await
        .unwrap();
    let rebuild = Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .args(["projections", "rebuild", "tickets"])
        .env("DATABASE_URL", url_of(&pool))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ticketd");
    wait_for("the rebuild to wait for its swap", async || {
        let (waiting,): (i64,) = sqlx::query_as(
            "select count(*) from pg_stat_activity
              where datname = current_database() and wait_event_type = 'Lock'
                and query like '%projection_checkpoints%for update%'
                and query not like '%set_config%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        waiting == 1
    })
    .await;
    let (shadow_rows,): (i64,) = sqlx::query_as("select count(*) from rm_tickets__rebuild")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(shadow_rows, 3, "the new copy is built but not swapped in");
    assert_eq!(titles(&app, &agent, list).await, (old.clone(), 3));
    assert_eq!(titles(&app, &agent, search).await, (old, 3));

    hold.commit().await.unwrap();
    // Waited for off the runtime's thread: the server in this test process must keep running
    // (its projection worker may be the next to take the checkpoint row, and must let it go).
    let out = tokio::task::spawn_blocking(move || rebuild.wait_with_output())
        .await
        .expect("join")
        .expect("rebuild");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("rebuilt tickets"), "{stdout}");
    let new: Vec<String> = (1..=3).map(|n| format!("Printer jam {n}")).collect();
    assert_eq!(titles(&app, &agent, list).await, (new.clone(), 3));
    assert_eq!(titles(&app, &agent, search).await, (new, 3));
}

/// Ticket ids of a search page.
async fn page_ids(app: &TestApp, user: &TestUser, q: &str, page: i64, size: i64) -> Vec<i64> {
    let path = format!("/api/v1/tickets/search?q={q}&page={page}&size={size}");
    let body = json_of(app.get(&path, &user.token).await, StatusCode::OK).await;
    assert_eq!(body["total"], 260, "page {page} of {size}");
    assert_eq!(body["total_exact"], true);
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

#[sqlx::test]
async fn search_ranks_the_newest_200_matches_and_later_pages_continue_newest_first(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let agent = app.user("agent@example.com", "agent").await;
    // 260 matches, oldest first; every fifth says the word three times (ranks higher).
    // Tickets that do not match are mixed in.
    let mut matches = Vec::new();
    let mut strong = std::collections::HashSet::new();
    for n in 0..260 {
        let title = if n % 5 == 0 {
            format!("Scanner scanner scanner stuck {n}")
        } else {
            format!("Scanner stuck {n}")
        };
        let id = app.ticket(&agent, &title).await["id"].as_i64().unwrap();
        if n % 5 == 0 {
            strong.insert(id);
        }
        matches.push(id);
        if n % 40 == 0 {
            app.ticket(&agent, "Monitor flickers").await;
        }
    }
    app.settle().await;
    let newest_first: Vec<i64> = matches.iter().rev().copied().collect();
    let (window, older) = newest_first.split_at(200);
    // The window, best first; equal ranks newest first.
    let ranked: Vec<i64> = window
        .iter()
        .filter(|id| strong.contains(id))
        .chain(window.iter().filter(|id| !strong.contains(id)))
        .copied()
        .collect();
    let expected: Vec<i64> = ranked.iter().chain(older).copied().collect();
    for size in [50, 30, 100] {
        let mut seen = Vec::new();
        for page in 1..=(260 + size - 1) / size {
            seen.extend(page_ids(&app, &agent, "scanner", page, size).await);
        }
        assert_eq!(seen.len(), 260, "size {size}: every match once");
        assert_eq!(seen, expected, "size {size}");
    }
    // An explicit newest-first sort pages plainly through every match.
    let mut plain = Vec::new();
    for page in 1..=6 {
        let path = format!("/api/v1/tickets/search?q=scanner&sort=-created_at&page={page}&size=50");
        let body = json_of(app.get(&path, &agent.token).await, StatusCode::OK).await;
        plain.extend(
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_i64().unwrap()),
        );
    }
    assert_eq!(plain, newest_first);
}
