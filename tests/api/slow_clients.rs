//! Slow and idle clients cannot hold connections: header, keep-alive, body and whole-request
//! deadlines, and a cap on connections; the notification stream outlives the request deadline.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{test_config, TestApp};
use crate::notifications::SseClient;
use crate::steps::users;

/// A server whose deadlines are all one second, with at most `connections` clients at once.
async fn impatient(pool: PgPool, connections: usize) -> TestApp {
    let mut config = test_config(&pool);
    config.limits.header_timeout_secs = 1;
    config.limits.body_timeout_secs = 1;
    config.limits.request_timeout_secs = 1;
    config.limits.max_connections = connections;
    TestApp::spawn_with(pool, config).await
}

async fn raw(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection; returns what it sent and when it closed.
async fn until_closed(stream: &mut TcpStream, started: Instant) -> (String, Duration) {
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server kept the connection open for 10 s");
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

async fn healthy(app: &TestApp) -> Duration {
    let started = Instant::now();
    let r = app
        .request(Method::GET, "/healthz", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    started.elapsed()
}

#[sqlx::test]
async fn a_client_sending_half_its_headers_is_disconnected_while_others_are_served(pool: PgPool) {
    let app = impatient(pool, 1024).await;
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut s = raw(&app).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: ticketd\r\nX-Slow:")
            .await
            .unwrap();
        slow.push(s);
    }
    // Meanwhile everybody else is answered at once.
    for _ in 0..5 {
        assert!(healthy(&app).await < Duration::from_millis(500));
    }
    for s in &mut slow {
        let (_, closed_after) = until_closed(s, started).await;
        assert!(
            closed_after < Duration::from_secs(3),
            "closed after {closed_after:?}"
        );
    }
}

#[sqlx::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_deadline(pool: PgPool) {
    let app = impatient(pool, 1024).await;
    let mut s = raw(&app).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: ticketd\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (answer, closed_after) = until_closed(&mut s, started).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(3),
        "closed after {closed_after:?}"
    );
}

#[sqlx::test]
async fn a_body_that_stops_arriving_is_answered_and_closed(pool: PgPool) {
    let app = impatient(pool, 1024).await;
    let mut s = raw(&app).await;
    s.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: ticketd\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"email\":",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let (answer, closed_after) = until_closed(&mut s, started).await;
    assert!(
        answer.starts_with("HTTP/1.1 4") || answer.starts_with("HTTP/1.1 503"),
        "{answer}"
    );
    assert!(
        closed_after < Duration::from_secs(3),
        "closed after {closed_after:?}"
    );
}

#[sqlx::test]
async fn connections_beyond_the_cap_wait_for_a_free_one(pool: PgPool) {
    let app = impatient(pool, 2).await;
    // Two idle clients take both places until the header deadline frees them.
    let _idle = [raw(&app).await, raw(&app).await];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waited = healthy(&app).await;
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(3),
        "answered after {waited:?}"
    );
}

#[sqlx::test]
async fn the_notification_stream_outlives_the_request_deadline(pool: PgPool) {
    let app = impatient(pool, 1024).await;
    let [agent] = users(&app, [("ag", "agent")]).await;
    let mut stream = SseClient::connect(&app, &agent, None).await;
    // Still open (nothing arrived, and it did not end) after 2.5 request deadlines.
    assert!(stream.next(Duration::from_millis(2500)).await.is_none());
}
