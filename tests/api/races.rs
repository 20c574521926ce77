//! Lost optimistic-concurrency races: a command whose append loses to another writer is
//! reloaded and retried a bounded number of times, and answers 409 when every try lost.
//!
//! The race is lost on purpose and deterministically: a trigger on `events` answers the
//! ticket's append with the unique violation a competing writer's event would cause, for as
//! many attempts as the test says. A sequence (not rolled back with the failed append)
//! counts the attempts.

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{json_of, TestApp, TestUser};

/// How many attempts the executor makes before answering 409 (`executor::MAX_ATTEMPTS`).
const ATTEMPTS: i64 = 4;

/// Makes the next `losses` appends to ticket `id` lose their race.
async fn lose_races(pool: &PgPool, id: i64, losses: i64) {
    sqlx::query("create sequence race_attempts")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(&format!(
        "create function lose_race() returns trigger language plpgsql as $$
         begin
           if new.aggregate_type = 'ticket' and new.aggregate_id = '{id}'
              and nextval('race_attempts') <= {losses} then
             raise exception using errcode = 'unique_violation',
                                   message = 'another writer appended first';
           end if;
           return new;
         end $$"
    ))
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "create trigger lose_race before insert on events
           for each row execute function lose_race()",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// How many appends to the ticket were attempted since `lose_races`.
async fn attempts(pool: &PgPool) -> i64 {
    let (n, called): (i64, bool) =
        sqlx::query_as("select last_value, is_called from race_attempts")
            .fetch_one(pool)
            .await
            .unwrap();
    if called {
        n
    } else {
        0
    }
}

async fn status_changes(pool: &PgPool, id: i64) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "select count(*) from events where aggregate_type = 'ticket' and aggregate_id = $1
            and event_type = 'TicketStatusChanged'",
    )
    .bind(id.to_string())
    .fetch_one(pool)
    .await
    .unwrap();
    n
}

async fn start_work(app: &TestApp, agent: &TestUser, id: i64) -> reqwest::Response {
    app.patch(
        &format!("/api/v1/tickets/{id}/status"),
        &agent.token,
        json!({"status": "in_progress"}),
    )
    .await
}

async fn setup(pool: &PgPool) -> (TestApp, TestUser, i64) {
    let app = TestApp::spawn(pool.clone()).await;
    let agent = app.user("agent@example.com", "agent").await;
    let id = app.ticket(&agent, "Contended").await["id"]
        .as_i64()
        .unwrap();
    (app, agent, id)
}

#[sqlx::test]
async fn a_lost_race_is_retried_until_the_append_wins(pool: PgPool) {
    let (app, agent, id) = setup(&pool).await;
    lose_races(&pool, id, ATTEMPTS - 1).await;
    let t = json_of(start_work(&app, &agent, id).await, StatusCode::OK).await;
    assert_eq!(t["status"], "in_progress");
    assert_eq!(t["version"], 2, "one event appended on top of the opening");
    assert_eq!(
        attempts(&pool).await,
        ATTEMPTS,
        "three lost appends, one that won"
    );
    assert_eq!(status_changes(&pool, id).await, 1, "stored exactly once");
}

#[sqlx::test]
async fn when_every_retry_loses_the_answer_is_409_and_nothing_is_stored(pool: PgPool) {
    let (app, agent, id) = setup(&pool).await;
    lose_races(&pool, id, 1_000).await;
    let body: Value = json_of(start_work(&app, &agent, id).await, StatusCode::CONFLICT).await;
    assert_eq!(body["code"], "CONFLICT", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("being changed by someone else")),
        "{body}"
    );
    assert_eq!(attempts(&pool).await, ATTEMPTS, "bounded: no fifth try");
    assert_eq!(status_changes(&pool, id).await, 0);
    let now = json_of(
        app.get(&format!("/api/v1/tickets/{id}"), &agent.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(now["status"], "open");
}

/// The backend serving a connection of `appends`.
async fn backend_of(appends: &ticketd::service::append_connections::AppendConnections) -> i32 {
    appends
        .run(async |c: &mut sqlx::PgConnection| {
            sqlx::query_as::<_, (i32,)>("select pg_backend_pid()")
                .fetch_one(c)
                .await
        })
        .await
        .unwrap()
        .0
}

#[sqlx::test]
async fn an_append_connection_goes_back_after_its_statement_and_is_dropped_when_cancelled(
    pool: PgPool,
) {
    use ticketd::service::append_connections::AppendConnections;
    let appends = AppendConnections::like(&pool);
    let first = backend_of(&appends).await;
    assert_eq!(
        backend_of(&appends).await,
        first,
        "a completed statement gives its connection back"
    );
    // A lost race (a database error) leaves the connection ready for the next append.
    let refused = appends
        .run(async |c: &mut sqlx::PgConnection| sqlx::query("select 1/0").execute(c).await)
        .await;
    assert!(matches!(refused, Err(sqlx::Error::Database(_))));
    assert_eq!(backend_of(&appends).await, first);
    // A request cancelled mid-statement (the client went away): its connection still owes
    // the statement's answer, so it must never serve the next append.
    let cancelled = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        appends.run(async |c: &mut sqlx::PgConnection| {
            sqlx::query("select pg_sleep(3)").execute(c).await
        }),
    )
    .await;
    assert!(cancelled.is_err(), "the statement was still running");
    assert_ne!(
        backend_of(&appends).await,
        first,
        "a cancelled statement's connection was handed out again"
    );
}
