//! Projection lag under a steady command rate, against a running `ticketd serve`.
//!
//! `BENCH_BASE=http://127.0.0.1:18080 BENCH_TOKEN=... DATABASE_URL=... BENCH_RATE=500 BENCH_SECONDS=15 \
//!  cargo bench --bench projection_lag`
//! `BENCH_COMMENT_ON=1,2,3` replies publicly on those tickets instead of opening new ones
//! (benches/delivery.sh: every reply is an e-mail, a webhook delivery and a NATS message).
//! Each command's `X-Consistency-Token` names its event; the lag is the time from the
//! command's response until the `tickets` checkpoint has passed that event (polled every 1 ms).
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use projections::Checkpoint;
use tokio::sync::Mutex;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

type Pending = Arc<Mutex<VecDeque<(Checkpoint, Instant)>>>;
type Lags = Arc<Mutex<Vec<f64>>>;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Polls the checkpoint and settles every pending command it has passed.
fn watch(pool: sqlx::PgPool, pending: Pending, lags: Lags) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let row: Option<(String, i64)> = sqlx::query_as(
                "select last_txid::text, last_position from projection_checkpoints where projection = 'tickets'",
            )
            .fetch_optional(&pool)
            .await
            .ok()
            .flatten();
            if let Some((t, p)) = row {
                let at = Checkpoint {
                    txid: t.parse().unwrap_or(0),
                    position: p,
                };
                let now = Instant::now();
                let mut q = pending.lock().await;
                let mut l = lags.lock().await;
                q.retain(|(token, sent)| {
                    if *token <= at {
                        l.push(now.duration_since(*sent).as_secs_f64() * 1000.0);
                        false
                    } else {
                        true
                    }
                });
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
}

/// Opens one ticket (or, with `comment_on`, replies publicly on one of those tickets, in
/// turn) and queues its consistency token with the time the answer came.
async fn probe(
    client: reqwest::Client,
    base: String,
    token: String,
    n: u64,
    pending: Pending,
    comment_on: Arc<Vec<i64>>,
) {
    let request = if comment_on.is_empty() {
        client
            .post(format!("{base}/api/v1/tickets/"))
            .json(&serde_json::json!({"title": format!("lag probe {n}"), "priority": "low", "type": "question"}))
    } else {
        let ticket = comment_on[usize::try_from(n).unwrap_or(0) % comment_on.len()];
        client
            .post(format!("{base}/api/v1/comments/"))
            .json(&serde_json::json!({
                "ticket_id": ticket, "content": format!("lag probe {n}"), "is_internal": false
            }))
    };
    let r = request.bearer_auth(token).send().await;
    if let Ok(r) = r {
        let done = Instant::now();
        if let Some(cp) = r
            .headers()
            .get("x-consistency-token")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse::<Checkpoint>().ok())
        {
            pending.lock().await.push_back((cp, done));
        }
    }
}

#[tokio::main]
async fn main() {
    let (Ok(base), Ok(token), Ok(db)) = (
        std::env::var("BENCH_BASE"),
        std::env::var("BENCH_TOKEN"),
        std::env::var("DATABASE_URL"),
    ) else {
        eprintln!("projection_lag: set BENCH_BASE, BENCH_TOKEN and DATABASE_URL (benches/load.sh does); skipping");
        return;
    };
    let rate = env_or("BENCH_RATE", 500);
    // BENCH_COMMENT_ON=1,2,3: public replies on these tickets instead of new tickets.
    let comment_on: Arc<Vec<i64>> = Arc::new(
        std::env::var("BENCH_COMMENT_ON")
            .unwrap_or_default()
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
    );
    let seconds = env_or("BENCH_SECONDS", 15);
    let pool = sqlx::PgPool::connect(&db).await.expect("database");
    let client = reqwest::Client::new();
    let pending: Pending = Arc::default();
    let lags: Lags = Arc::default();
    let watcher = watch(pool, pending.clone(), lags.clone());

    let mut interval = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut sent = 0u64;
    let mut tasks = Vec::new();
    while Instant::now() < end {
        interval.tick().await;
        sent += 1;
        let job = probe(
            client.clone(),
            base.clone(),
            token.clone(),
            sent,
            pending.clone(),
            comment_on.clone(),
        );
        tasks.push(tokio::spawn(job));
    }
    for t in tasks {
        let _ = t.await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    watcher.abort();
    let mut l = lags.lock().await.clone();
    l.sort_by(|a, b| a.total_cmp(b));
    println!(
        "projection_lag rate={rate}/s seconds={seconds} commands={sent} measured={} p50={:.1}ms p95={:.1}ms p99={:.1}ms max={:.1}ms",
        l.len(),
        percentile(&l, 0.50),
        percentile(&l, 0.95),
        percentile(&l, 0.99),
        l.last().copied().unwrap_or(f64::NAN)
    );
}
