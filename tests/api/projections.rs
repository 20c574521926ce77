//! The projection runtime and the ticket list/search read model: late commits, a crash
//! between the read-model write and the commit, two competing runtimes, rebuild equality,
//! search, filters, paging, scoping and read-your-writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aggregates::ticket::{TicketChanges, TicketCommand, TicketFields};
use aggregates::{Priority, TicketStatus, TicketType};
use chrono::Utc;
use projections::runtime::RuntimeConfig;
use projections::Runtime;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, PgPool};
use ticketd::service::executor::Actor;

use crate::helpers::{json_of, url_of, TestApp};
use crate::steps::{
    ann_bob_and_agent, get_ok, move_to, open_ticket, open_ticket_with, token_of,
    try_get_with_token, try_open_ticket_with, users,
};

/// Asserts the read model holds every ticket exactly once and the counts agree.
async fn assert_exactly_once(pool: &PgPool) {
    let (rows, distinct, events_opened): (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from rm_tickets), (select count(distinct id) from rm_tickets),
                (select count(*) from events where event_type = 'TicketOpened')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(rows, events_opened, "every opened ticket is projected");
    assert_eq!(rows, distinct);
    let (counted, live): (Option<i64>, i64) = sqlx::query_as(
        "select (select sum(n)::bigint from rm_ticket_counts), (select count(*) from rm_tickets where not deleted)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(counted.unwrap_or(0), live, "counts applied exactly once");
    // Each row is at its aggregate's last version: nothing skipped, nothing applied twice.
    let (mismatched,): (i64,) = sqlx::query_as(
        "select count(*) from rm_tickets t
          where t.version <> (select max(sequence) from events e where e.aggregate_type = 'ticket' and e.aggregate_id = t.id::text)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(mismatched, 0);
}

async fn wait_until(what: &str, secs: u64, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn opened_payload(id: i64, requester: i64) -> Value {
    json!({"TicketOpened": {"id": id, "requester_id": requester, "title": "Held back", "description": "late commit",
        "priority": "low", "type": "question", "tags": [], "item_ids": [], "at": Utc::now()}})
}

#[sqlx::test]
async fn an_event_committed_late_is_projected_and_nothing_is_skipped_or_doubled(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let agent = app.user("agent@example.com", "agent").await;
    // A writer takes a position first and commits last.
    let mut held = sqlx::PgConnection::connect(&url_of(&pool)).await.unwrap();
    let mut tx = held.begin().await.unwrap();
    let (late_id,): (i64,) = sqlx::query_as("select nextval('ticket_id_seq')")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let (late_pos,): (i64,) = sqlx::query_as(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         values ('ticket', $1, 1, 'TicketOpened', '1.0', $2, '{}') returning global_position",
    )
    .bind(late_id.to_string())
    .bind(opened_payload(late_id, agent.id))
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let mut others = Vec::new();
    for i in 0..5 {
        others.push(app.ticket(&agent, &format!("committed first {i}")).await);
    }
    let (first_other_pos,): (i64,) =
        sqlx::query_as("select min(global_position) from events where aggregate_id <> $1")
            .bind(late_id.to_string())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        late_pos < first_other_pos,
        "the held event has the lower position"
    );
    // Readers wait for the open transaction rather than pass it: a whole pass of the tickets
    // projection, run here to its end (it takes the checkpoint row the worker uses), applies
    // nothing while the held event's transaction is open.
    {
        use projections::Projection;
        let mut conn = sqlx::PgConnection::connect(&url_of(&pool)).await.unwrap();
        let tickets = projections::tickets::TicketsProjection;
        let name = projections::Tables::live().name(tickets.name());
        let (applied, _) = projections::runtime::apply_batch(
            &mut conn,
            &tickets,
            &name,
            &projections::Tables::live(),
            1000,
        )
        .await
        .unwrap();
        assert_eq!(applied, 0, "a pass went past an open transaction");
    }
    let (n,): (i64,) = sqlx::query_as("select count(*) from rm_tickets")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing may be projected past an open transaction");
    tx.commit().await.unwrap();
    app.settle().await;
    assert_exactly_once(&pool).await;
    let (n,): (i64,) = sqlx::query_as("select count(*) from rm_tickets")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 6);
}

/// Applies one batch of the live tickets projection, as its worker would; the events applied.
async fn one_tickets_batch(pool: &PgPool) -> usize {
    use projections::Projection;
    let mut conn = sqlx::PgConnection::connect(&url_of(pool)).await.unwrap();
    let tickets = projections::tickets::TicketsProjection;
    let live = projections::Tables::live();
    let name = live.name(tickets.name());
    projections::runtime::apply_batch(&mut conn, &tickets, &name, &live, 1000)
        .await
        .unwrap()
        .0
}

#[sqlx::test]
async fn a_long_transaction_of_another_database_on_the_server_holds_back_no_projection(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let agent = app.user("agent@example.com", "agent").await;
    app.ticket(&agent, "before the other database's transaction")
        .await;
    app.settle().await;
    // Another application's write transaction on the same server (here: in the `postgres`
    // database), begun before the next ticket and still running after it: the snapshot's
    // `xmin` (the oldest transaction still running anywhere) is at most its id.
    let o = pool.connect_options();
    let other_url = format!(
        "postgres://{}@{}:{}/postgres",
        o.get_username(),
        o.get_host(),
        o.get_port()
    );
    let mut other = sqlx::PgConnection::connect(&other_url).await.unwrap();
    let mut other_tx = other.begin().await.unwrap();
    let (other_xid,): (String,) = sqlx::query_as("select pg_current_xact_id()::text")
        .fetch_one(&mut *other_tx)
        .await
        .unwrap();
    let ticket = app.ticket(&agent, "after it").await["id"].clone();
    let (xmin, event_txid): (String, String) = sqlx::query_as(
        "select pg_snapshot_xmin(pg_current_snapshot())::text,
                (select max(transaction_id)::text from events)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    // (`<=`: on a shared server another application's transaction may be older still.)
    let [xmin, other_xid, event_xid] =
        [&xmin, &other_xid, &event_txid].map(|x| x.parse::<u64>().unwrap());
    assert!(
        xmin <= other_xid && other_xid < event_xid,
        "a transaction of another database holds the snapshot's xmin below the ticket's"
    );

    // The ticket is projected and listed while that transaction still runs; the visible head
    // (where rebuilds and catch-ups read to) includes it.
    wait_until("the ticket listed", 10, async || {
        let list = get_ok(&app, &agent, "/api/v1/tickets").await;
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == ticket)
    })
    .await;
    let mut conn = pool.acquire().await.unwrap();
    let visible = projections::log::visible_head(&mut conn).await.unwrap();
    assert_eq!(
        visible.map(|c| c.txid.to_string()),
        Some(event_txid),
        "the visible head stops at the other database's transaction"
    );
    other_tx.rollback().await.unwrap();

    // A transaction of this database, begun before a ticket and running after it, still holds
    // it back (as the late-commit test shows in full), although a younger one ran elsewhere.
    let mut mine = sqlx::PgConnection::connect(&url_of(&pool)).await.unwrap();
    let mut mine_tx = mine.begin().await.unwrap();
    sqlx::query("select pg_current_xact_id()")
        .execute(&mut *mine_tx)
        .await
        .unwrap();
    let mut other_tx = other.begin().await.unwrap();
    sqlx::query("select pg_current_xact_id()")
        .execute(&mut *other_tx)
        .await
        .unwrap();
    app.state
        .runtime
        .as_ref()
        .expect("the test app runs its projections")
        .shutdown()
        .await;
    let held_back = app.ticket(&agent, "held back by this database").await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        one_tickets_batch(&pool).await,
        0,
        "a pass went past an open transaction of this database"
    );
    mine_tx.rollback().await.unwrap();
    assert_eq!(one_tickets_batch(&pool).await, 1);
    other_tx.rollback().await.unwrap();
    let (listed,): (bool,) =
        sqlx::query_as("select exists (select 1 from rm_tickets where id = $1)")
            .bind(held_back)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(listed);
}

/// Where projection `name` of `rt` stands.
fn reached(rt: &projections::RuntimeHandle, name: &str) -> projections::Checkpoint {
    *rt.watch(name)
        .expect("a projection of this runtime")
        .borrow()
}

#[sqlx::test]
async fn a_command_wakes_only_the_projections_that_read_its_events_and_a_waiting_read_nudges_the_others(
    pool: PgPool,
) {
    // The server runs no projections; this runtime does, and polls the log only once a minute,
    // so a projection moves only when something wakes it.
    let app = TestApp::spawn_without_projections(pool.clone()).await;
    let agent = app.user("agent@example.com", "agent").await;
    let rt = Runtime::new(
        pool.clone(),
        ticketd::service::all_projections(&pool),
        RuntimeConfig {
            poll_interval: Duration::from_secs(60),
            ..RuntimeConfig::default()
        },
    )
    .start()
    .await
    .unwrap();
    app.ticket(&agent, "before").await;
    let head = || async {
        projections::log::newest_committed(&pool)
            .await
            .unwrap()
            .unwrap()
    };
    let before = head().await;
    // A batch reads only below the oldest transaction of this database still open (the
    // gap-free rule). Nothing else wakes these projections before their minute-long poll, so
    // each wait wakes them again, as the next command would in a running server.
    wait_until("every projection to reach the head", 10, async || {
        rt.wake();
        rt.statuses()
            .iter()
            .all(|(name, s)| s.leader && reached(&rt, name) >= before)
    })
    .await;
    // The last of those wakes may still be pending in some projection (its batch due after the
    // minimum interval between batches): let it run now, on a busy machine too, not after the
    // next command.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A ticket is opened, and the executor wakes whoever reads a ticket opening.
    app.ticket(&agent, "after").await;
    let after = head().await;
    wait_until(
        "the tickets read model and the notifications to apply the opening",
        10,
        async || {
            rt.wake_for("ticket", &["TicketOpened"]);
            reached(&rt, "tickets") >= after && reached(&rt, "notifications") >= after
        },
    )
    .await;
    // The comments read no openings: asleep until their poll, they have not moved.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        reached(&rt, "comments") < after,
        "the comments were woken by a ticket opening"
    );
    assert!(reached(&rt, "approval_saga") < after);

    // A read that waits for the comments nudges them, and they pass over the opening.
    wait_until("the nudged comments to pass the opening", 10, async || {
        rt.nudge("comments");
        reached(&rt, "comments") >= after
    })
    .await;
    assert!(
        reached(&rt, "approval_saga") < after,
        "a nudge wakes only its projection"
    );
    rt.shutdown().await;
}

#[sqlx::test]
async fn a_crash_between_the_read_model_write_and_the_commit_loses_and_doubles_nothing(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let runtime = app.state.runtime.as_ref().unwrap();
    assert!(runtime.fail_next_batch_after_apply("tickets"));
    let agent = app.user("agent@example.com", "agent").await;
    for i in 0..10 {
        let t = app.ticket(&agent, &format!("crash {i}")).await;
        app.patch(
            &format!("/api/v1/tickets/{}/assign", t["id"]),
            &agent.token,
            json!({"assignee_id": agent.id}),
        )
        .await;
    }
    app.settle().await;
    let statuses = app.state.runtime.as_ref().unwrap().statuses();
    let (_, tickets) = statuses.iter().find(|(n, _)| *n == "tickets").unwrap();
    assert!(
        tickets.transient_errors >= 1,
        "the injected failure happened"
    );
    assert_exactly_once(&pool).await;
    let (assigned,): (i64,) =
        sqlx::query_as("select count(*) from rm_tickets where assignee_id is not null")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(assigned, 10);
}

async fn leaders(pool: &PgPool) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "select count(*) from pg_locks where locktype = 'advisory' and granted
           and database = (select oid from pg_database where datname = current_database())",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    n
}

#[sqlx::test]
async fn two_runtimes_share_a_projection_and_the_standby_takes_over(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let agent = app.user("agent@example.com", "agent").await;
    app.ticket(&agent, "before the standby").await;
    app.settle().await;
    let config = RuntimeConfig {
        leader_check: Duration::from_millis(200),
        ..RuntimeConfig::default()
    };
    let standby = Runtime::new(
        pool.clone(),
        ticketd::service::all_projections(&pool),
        config,
    )
    .start()
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let primary = app.state.runtime.clone().unwrap();
    let is_leader = |rt: &projections::RuntimeHandle| {
        rt.statuses()
            .iter()
            .any(|(n, s)| *n == "tickets" && s.leader)
    };
    assert!(
        is_leader(&primary) && !is_leader(&standby),
        "exactly one leader"
    );
    for i in 0..5 {
        app.ticket(&agent, &format!("while primary leads {i}"))
            .await;
    }
    app.settle().await;
    assert_exactly_once(&pool).await;
    // The leader dies: its process stops working and its connections drop.
    primary.abort();
    let killed: Vec<(bool,)> = sqlx::query_as(
        "select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' and granted
           and database = (select oid from pg_database where datname = current_database())",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    // (Aborting may already have closed them.)
    let _ = killed;
    wait_until("the standby to take over", 10, async || is_leader(&standby)).await;
    // One leader per projection, whichever runtime holds it.
    let projections = ticketd::service::all_projections(&pool).len() as i64;
    wait_until("the standby to lead every projection", 10, async || {
        leaders(&pool).await == projections && standby.statuses().iter().all(|(_, s)| s.leader)
    })
    .await;
    for i in 0..5 {
        app.ticket(&agent, &format!("after takeover {i}")).await;
    }
    app.settle().await;
    assert_exactly_once(&pool).await;
    standby.shutdown().await;
}

/// Runs a few thousand mixed commands straight through the executor.
async fn mixed_history(app: &TestApp, requester: i64, agent: i64) {
    let exec = &app.state.tickets;
    let meta = || Actor::user(agent).metadata();
    let mut ids = Vec::new();
    for i in 0..600i64 {
        let (id,): (i64,) = sqlx::query_as("select nextval('ticket_id_seq')")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        let fields = TicketFields {
            title: format!("Mixed ticket {i} printer vpn"),
            description: format!("Description {i}"),
            priority: Priority::ALL[(i % 4) as usize],
            ticket_type: TicketType::ALL[(i % 5) as usize],
            tags: vec![format!("t{}", i % 3)],
            item_ids: vec![],
        };
        exec.execute(&id.to_string(), Some(0), meta(), |_| {
            TicketCommand::OpenTicket {
                id,
                requester_id: requester,
                fields: fields.clone(),
                at: Utc::now(),
            }
        })
        .await
        .unwrap();
        ids.push(id);
    }
    for (i, id) in ids.iter().enumerate() {
        let key = id.to_string();
        let _ = exec
            .execute(&key, None, meta(), |_| TicketCommand::AssignTicket {
                assignee_id: Some(agent),
                at: Utc::now(),
            })
            .await;
        let _ = exec
            .execute(&key, None, meta(), |_| TicketCommand::UpdateTicket {
                asked: TicketChanges {
                    title: Some(format!("Renamed {i}")),
                    priority: Some(Priority::ALL[i * 7 % 4]),
                    ..Default::default()
                },
                at: Utc::now(),
            })
            .await;
        let steps: &[TicketStatus] = match i % 5 {
            0 => &[
                TicketStatus::InProgress,
                TicketStatus::Resolved,
                TicketStatus::Closed,
            ],
            1 => &[
                TicketStatus::InProgress,
                TicketStatus::Pending,
                TicketStatus::InProgress,
            ],
            2 => &[TicketStatus::Cancelled],
            3 => &[
                TicketStatus::InProgress,
                TicketStatus::Resolved,
                TicketStatus::Open,
            ],
            _ => &[],
        };
        for s in steps {
            exec.execute(&key, None, meta(), |_| TicketCommand::ChangeStatus {
                status: *s,
                reason: None,
                at: Utc::now(),
            })
            .await
            .unwrap();
        }
        if i % 7 == 0 {
            exec.execute(&key, None, meta(), |_| TicketCommand::AddComment {
                comment_id: uuid::Uuid::new_v4(),
                author_id: agent,
                by_staff: true,
                content: format!("reply {i}"),
                is_internal: i % 2 == 0,
                parent_id: None,
                mentions: vec![],
                then_status: None,
                at: Utc::now(),
            })
            .await
            .unwrap();
        }
        if i % 11 == 0 {
            let _ = exec
                .execute(&key, None, meta(), |_| TicketCommand::DeleteTicket {
                    reason: None,
                    at: Utc::now(),
                })
                .await;
        }
    }
}

async fn snapshot(pool: &PgPool) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let rows: Vec<(Value,)> = sqlx::query_as(&format!(
        "select to_jsonb(r) from (select {} from rm_tickets order by id) r",
        projections::tickets::TICKET_COLUMNS
    ))
    .fetch_all(pool)
    .await
    .unwrap();
    let documents: Vec<(Value,)> = sqlx::query_as(
        "select to_jsonb(s) from (select ticket_id, opened_at, document::text as document
                                    from rm_ticket_search order by ticket_id) s",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let counts: Vec<(Value,)> = sqlx::query_as(
        "select to_jsonb(c) from (select * from rm_ticket_counts order by 1, 2, 3, 4) c
         union all
         select to_jsonb(c) from (select * from rm_ticket_tag_counts order by 1, 2, 3, 4, 5) c",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    (
        rows.into_iter().map(|r| r.0).collect(),
        counts.into_iter().map(|r| r.0).collect(),
        documents.into_iter().map(|r| r.0).collect(),
    )
}

#[sqlx::test]
async fn a_rebuilt_read_model_is_row_for_row_identical_to_the_incremental_one(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [requester, agent] = users(&app, [("req", "requester"), ("agent", "agent")]).await;
    mixed_history(&app, requester.id, agent.id).await;
    let (events,): (i64,) = sqlx::query_as("select count(*) from events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(events > 3000, "a few thousand commands ({events} events)");
    app.settle().await;
    let before = snapshot(&pool).await;
    let indexes = || async {
        let rows: Vec<(String,)> = sqlx::query_as(
            "select indexdef from pg_indexes where tablename in ('rm_tickets', 'rm_ticket_counts', 'rm_ticket_tag_counts', 'rm_ticket_search', 'rm_search_words') order by 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        rows
    };
    let indexes_before = indexes().await;
    let projection = Arc::new(projections::tickets::TicketsProjection);
    let report = projections::rebuild::rebuild(&pool, projection.as_ref(), 500)
        .await
        .unwrap();
    assert_eq!(report.events as i64, events);
    let after = snapshot(&pool).await;
    assert_eq!(before.0.len(), after.0.len());
    let live = before.0.iter().filter(|r| r["deleted"] == false).count();
    assert_eq!(before.2.len(), live, "one search document per live ticket");
    assert_eq!(before, after);
    assert_eq!(
        indexes_before,
        indexes().await,
        "the same indexes under the same names"
    );
    // A second rebuild works the same way.
    projections::rebuild::rebuild(&pool, projection.as_ref(), 500)
        .await
        .unwrap();
    assert_eq!(before, snapshot(&pool).await);
    // The API keeps serving from the swapped-in table, and the live worker continues.
    app.ticket(&agent, "after the rebuild").await;
    app.settle().await;
    assert_exactly_once(&pool).await;
}

async fn titles(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let page = json_of(
        app.get(&format!("/api/v1/tickets/search?{query}"), token)
            .await,
        StatusCode::OK,
    )
    .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_string())
        .collect()
}

#[sqlx::test]
async fn search_finds_by_word_by_prefix_and_despite_a_typo(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let agent = app.user("agent@example.com", "agent").await;
    for title in [
        "Printer jammed on floor three",
        "VPN keeps disconnecting",
        "Password reset for payroll",
        "Monitor flickers",
        "Fire alarm goes off !!!",
    ] {
        app.ticket(&agent, title).await;
    }
    app.settle().await;
    let no_match: &[&str] = &[];
    // Text without a letter or digit matches nothing, even in a title that has it: neither
    // the search documents nor trigrams hold punctuation. An empty page, not an error.
    for query in ["q=!!!", "q=%3F%20-%20%21", "q=!!!&page=2"] {
        for path in ["/api/v1/tickets/search", "/api/v1/tickets/"] {
            let page = json_of(
                app.get(&format!("{path}?{query}"), &agent.token).await,
                StatusCode::OK,
            )
            .await;
            assert_eq!(page["items"], json!([]), "{path}?{query}");
            assert_eq!(page["total"], 0, "{path}?{query}");
        }
    }
    for (query, found, how) in [
        (
            "q=printer",
            &["Printer jammed on floor three"][..],
            "a word",
        ),
        ("q=disconnect", &["VPN keeps disconnecting"], "a stem"),
        ("q=pass", &["Password reset for payroll"], "prefix"),
        (
            "q=payrol",
            &["Password reset for payroll"],
            "prefix of a later word",
        ),
        ("q=moniter", &["Monitor flickers"], "typo"),
        (
            "q=pritner",
            &["Printer jammed on floor three"],
            "transposed letters",
        ),
        ("q=elephant", no_match, "nothing like it"),
    ] {
        assert_eq!(titles(&app, &agent.token, query).await, found, "{how}");
    }
    // Ranking: the better match first.
    // A newer, weaker match follows it, so the order is by rank, not by age.
    app.ticket(&agent, "Printer printer toner printer").await;
    app.ticket(&agent, "Printer offline since the move").await;
    app.settle().await;
    let ranked = titles(&app, &agent.token, "q=printer").await;
    assert_eq!(ranked.len(), 3, "{ranked:?}");
    assert_eq!(ranked[0], "Printer printer toner printer", "{ranked:?}");
}

#[sqlx::test]
async fn filters_combine_totals_and_pages_are_right_and_requesters_see_only_their_own(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let [ann, bob, agent] = ann_bob_and_agent(&app).await;
    for i in 0..25 {
        let who = if i % 5 == 0 { &bob } else { &ann };
        let priority = if i % 2 == 0 { "high" } else { "low" };
        let tag = if i % 3 == 0 { "network" } else { "desk" };
        let body = json!({"title": format!("T{i:02}"), "priority": priority, "type": "incident", "tags": [tag]});
        let t = open_ticket_with(&app, who, body).await;
        if i % 4 == 0 {
            move_to(&app, &agent, t["id"].as_i64().unwrap(), "in_progress").await;
        }
    }
    app.settle().await;
    let page = |q: &str, token: &str| {
        let path = format!("/api/v1/tickets/?{q}");
        let token = token.to_string();
        let app = &app;
        async move { json_of(app.get(&path, &token).await, StatusCode::OK).await }
    };
    let all = page("size=10", &agent.token).await;
    assert_eq!(
        (
            all["total"].as_i64(),
            all["pages"].as_i64(),
            all["items"].as_array().unwrap().len()
        ),
        (Some(25), Some(3), 10)
    );
    let last = page("size=10&page=3", &agent.token).await;
    assert_eq!(last["items"].as_array().unwrap().len(), 5);
    assert_eq!(last["items"][4]["title"], "T00", "newest first");
    let asc = page("size=1&sort=created_at", &agent.token).await;
    assert_eq!(asc["items"][0]["title"], "T00");
    let high_ip = page("priority=high&status=in_progress", &agent.token).await;
    // i % 4 == 0 are in progress and all even, so high: 0, 4, 8, 12, 16, 20, 24.
    assert_eq!(high_ip["total"], 7);
    let net_high = page("priority=high&tag=network", &agent.token).await;
    // i % 6 == 0: 0, 6, 12, 18, 24.
    assert_eq!(net_high["total"], 5);
    let multi = page("status=open,in_progress", &agent.token).await;
    assert_eq!(multi["total"], 25);
    let sorted = page("sort=-priority&size=100", &agent.token).await;
    assert_eq!(sorted["items"][0]["priority"], "high");
    assert_eq!(sorted["items"][24]["priority"], "low");
    // Requesters only ever see their own, whatever they ask for.
    let mine = page("size=100", &bob.token).await;
    assert_eq!(mine["total"], 5);
    assert!(mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["requester_id"] == bob.id));
    let sneaky = page(&format!("requester_id={}", ann.id), &bob.token).await;
    assert_eq!(sneaky["total"], 0);
    let search = get_ok(&app, &bob, "/api/v1/tickets/search?q=T01").await;
    assert!(search["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["requester_id"] == bob.id));
    let by_requester = page(&format!("requester_id={}", bob.id), &agent.token).await;
    assert_eq!(by_requester["total"], 5);
    let unassigned = page("assignee_id=none", &agent.token).await;
    assert_eq!(unassigned["total"], 25);
}

#[sqlx::test]
async fn a_consistency_token_makes_a_read_wait_for_the_write(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let u = app.user("req@example.com", "requester").await;
    // Hold the projection back with an open transaction that has an xid.
    let mut held = sqlx::PgConnection::connect(&url_of(&pool)).await.unwrap();
    let mut tx = held.begin().await.unwrap();
    sqlx::query("select pg_current_xact_id()")
        .execute(&mut *tx)
        .await
        .unwrap();
    let r = try_open_ticket_with(&app, &u, json!({"title": "read my write"})).await;
    let token = token_of(&r);
    let started = Instant::now();
    let r = try_get_with_token(&app, &u, "/api/v1/tickets/", &token).await;
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "it waited"
    );
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(
        json_of(r, StatusCode::SERVICE_UNAVAILABLE).await["code"],
        "SERVER_ERROR"
    );
    tx.commit().await.unwrap();
    // Once the writer is visible, the same read answers with the change.
    let r = try_get_with_token(&app, &u, "/api/v1/tickets/", &token).await;
    let page = json_of(r, StatusCode::OK).await;
    assert_eq!(page["items"][0]["title"], "read my write");
    // And straight after each kind of command too.
    let id = page["items"][0]["id"].as_i64().unwrap();
    let r = app
        .patch(
            &format!("/api/v1/tickets/{id}"),
            &u.token,
            json!({"title": "renamed at once"}),
        )
        .await;
    let token = token_of(&r);
    let r = try_get_with_token(&app, &u, "/api/v1/tickets/search?q=renamed", &token).await;
    assert_eq!(
        json_of(r, StatusCode::OK).await["items"][0]["title"],
        "renamed at once"
    );
}

#[sqlx::test]
async fn an_event_that_cannot_be_applied_stops_the_projection_and_readyz_says_so(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let agent = app.user("agent@example.com", "agent").await;
    app.ticket(&agent, "before the poison").await;
    app.settle().await;
    let ready = app
        .request(Method::GET, "/readyz", None)
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         values ('ticket', '424242', 1, 'TicketOpened', '1.0', '{\"NoSuchEvent\": {}}', '{}')",
    )
    .execute(&pool)
    .await
    .unwrap();
    app.ticket(&agent, "after the poison").await;
    wait_until("the projection to stop", 10, async || {
        let (status,): (String,) = sqlx::query_as(
            "select status from projection_checkpoints where projection = 'tickets'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        status == "stopped"
    })
    .await;
    // Not skipped: the event after it is not applied either.
    let (n,): (i64,) = sqlx::query_as("select count(*) from rm_tickets")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let ready = app
        .request(Method::GET, "/readyz", None)
        .send()
        .await
        .unwrap();
    let body = json_of(ready, StatusCode::SERVICE_UNAVAILABLE).await;
    let tickets = body["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "tickets")
        .unwrap();
    assert_eq!(tickets["status"], "stopped");
    assert!(
        !body.to_string().contains("NoSuchEvent"),
        "no internals in the probe"
    );
}

/// The page a ranked search must answer: the newest 200 matches, best first (computed
/// straight from the read model through the full-text index).
async fn expected_ranked_page(pool: &PgPool, tsquery: &str, size: i64) -> Vec<i64> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "select id from (
             select t.id, t.created_at, ts_rank_cd(s.document, ticketd_tsquery($1)) as rank
               from rm_tickets t join rm_ticket_search s on s.ticket_id = t.id
              where not t.deleted and s.document @@ ticketd_tsquery($1)
              order by s.opened_at desc, s.ticket_id desc limit 200) w
          order by rank desc, created_at desc, id desc limit $2",
    )
    .bind(tsquery)
    .bind(size)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter().map(|(id,)| id).collect()
}

#[sqlx::test]
async fn searching_a_common_word_walks_the_newest_tickets_and_ranks_the_same(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [agent, requester] = users(&app, [("agent", "agent"), ("req", "requester")]).await;
    // Thousands of matches for the seed's common words, so that search walks the newest
    // documents instead of fetching every match through the index.
    ticketd::cli::seed::seed(&pool, 12_000, true).await.unwrap();
    let newest = open_ticket(&app, &requester, "Colleagues cannot print either").await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let reports = projections::runtime::report(&pool).await.unwrap();
        if reports
            .iter()
            .any(|r| r.name == "tickets" && r.lag_events == 0)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tickets projection caught up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sqlx::query("analyze rm_ticket_search")
        .execute(&pool)
        .await
        .unwrap();
    let (matches,): (i64,) = sqlx::query_as(
        "select count(*) from rm_ticket_search where document @@ to_tsquery('english', 'colleagu:*')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(matches > 2_000, "a common word ({matches} matches)");

    for (q, tsquery) in [
        ("colleagues", "colleagu:*"),
        ("restart", "restart:*"),
        ("colleagues report", "colleagu:* & report:*"),
    ] {
        let page = get_ok(
            &app,
            &agent,
            &format!("/api/v1/tickets/search?q={q}&size=50"),
        )
        .await;
        let ids: Vec<i64> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, expected_ranked_page(&pool, tsquery, 50).await, "q={q}");
        // An estimate, within a quarter of the true count, also for words that come
        // together (where the planner, taking words as independent, guesses far too low).
        assert_eq!(page["total_exact"], false, "q={q}: {}", page["total"]);
        let total = page["total"].as_i64().unwrap();
        let (actual,): (i64,) = sqlx::query_as(
            "select count(*) from rm_ticket_search where document @@ ticketd_tsquery($1)",
        )
        .bind(tsquery)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(
            (total - actual).abs() * 4 <= actual,
            "q={q}: estimated {total}, in fact {actual}"
        );
        assert_eq!(page["pages"], (page["total"].as_i64().unwrap() + 49) / 50);
    }
    // The newest match is in the ranked window, and a requester's search stays scoped.
    let mine = get_ok(&app, &requester, "/api/v1/tickets/search?q=colleagues").await;
    assert_eq!(mine["total"], 1);
    assert_eq!(mine["items"][0]["id"], newest);
}

/// Every API test that holds a transaction open (`begin()`) and every test of the 2-second
/// read-your-writes promise runs alone (`.config/nextest.toml` says why); this fails when one
/// is missing.
#[test]
fn every_test_that_holds_a_transaction_open_runs_alone() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = std::fs::read_to_string(root.join(".config/nextest.toml")).expect("config");
    let needle = concat!(".begin", "().await");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root.join("tests/api")).expect("tests/api") {
        let path = entry.expect("entry").path();
        let module = path.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).expect("source");
        let mut test = None;
        for line in text.lines() {
            if let Some(rest) = line.trim_start().strip_prefix("async fn ") {
                test = rest.split('(').next().map(str::to_string);
            }
            // Tests of the read-your-writes promise must not share the cluster with others.
            if line.contains(needle) || line.contains(concat!("get_consis", "tent(&app")) {
                if let Some(name) = &test {
                    let filter = format!("test(={module}::{name})");
                    if !config.contains(&filter) && !missing.contains(&filter) {
                        missing.push(filter);
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "add to .config/nextest.toml: {missing:?}"
    );
}

#[sqlx::test]
async fn a_rebuild_keeps_tabs_newlines_backslashes_quotes_and_braces_exactly(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let [_, agent] = users(&app, [("req", "requester"), ("agent", "agent")]).await;
    // What a text-format COPY must escape, in every kind of column the rebuild writes.
    let awkward = "C:\\temp\\new\tcol \"quoted\" {braced, listed}\r\nsecond line \\N";
    let ticket = open_ticket_with(
        &app,
        &agent,
        json!({"title": "Path C:\\temp \"x\" {y}", "description": awkward,
               "priority": "high", "type": "issue", "tags": ["a\"b", "c\\d", "e,f", "{g}"]}),
    )
    .await;
    let id = ticket["id"].as_i64().unwrap();
    let comment = app
        .post(
            "/api/v1/comments/",
            &agent.token,
            json!({"ticket_id": id, "content": awkward, "is_internal": false}),
        )
        .await;
    assert_eq!(comment.status(), StatusCode::CREATED);
    app.settle().await;
    let before = snapshot(&pool).await;
    let projection = projections::tickets::TicketsProjection;
    projections::rebuild::rebuild(&pool, &projection, 500)
        .await
        .unwrap();
    assert_eq!(before, snapshot(&pool).await);
    let (description, tags, comments): (String, Vec<String>, String) =
        sqlx::query_as("select description, tags, public_comments from rm_tickets where id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(description, awkward);
    assert_eq!(comments, awkward);
    let mut sent = vec!["a\"b", "c\\d", "e,f", "{g}"];
    sent.sort_unstable();
    let mut got: Vec<&str> = tags.iter().map(String::as_str).collect();
    got.sort_unstable();
    assert_eq!(got, sent);
}

#[sqlx::test]
async fn the_newest_event_is_found_by_transaction_order_across_a_digit_boundary(pool: PgPool) {
    // Two events whose transaction ids differ in their number of digits: as text, "99" would
    // sort after "100".
    for (txid, id) in [("99", "a"), ("100", "b")] {
        sqlx::query(
            "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                                 payload, metadata, transaction_id)
             values ('probe', $2, 1, 'Probed', '1.0', '{}', '{}', $1::text::xid8)",
        )
        .bind(txid)
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    }
    let mut conn = pool.acquire().await.unwrap();
    let newest = projections::log::newest_committed(&mut *conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(newest.txid, 100);
    let visible = projections::log::visible_head(&mut conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(visible.txid, 100);
}
