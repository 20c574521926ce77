//! Projection lag under a steady command rate, against a running `ticketd serve`.
//!
//! `BENCH_BASE=http://127.0.0.1:18080 BENCH_TOKEN=... DATABASE_URL=... BENCH_RATE=500 BENCH_SECONDS=15 \
//!  cargo bench --bench projection_lag`
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
    let rate: u64 = std::env::var("BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let pool = sqlx::PgPool::connect(&db).await.expect("database");
    let client = reqwest::Client::new();
    let pending: Arc<Mutex<VecDeque<(Checkpoint, Instant)>>> = Arc::default();
    let lags: Arc<Mutex<Vec<f64>>> = Arc::default();

    // The watcher: polls the checkpoint and settles every pending command it has passed.
    let watcher = {
        let pending = pending.clone();
        let lags = lags.clone();
        let pool = pool.clone();
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
    };

    let mut interval = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut sent = 0u64;
    let mut tasks = Vec::new();
    while Instant::now() < end {
        interval.tick().await;
        sent += 1;
        let client = client.clone();
        let url = format!("{base}/api/v1/tickets/");
        let token = token.clone();
        let pending = pending.clone();
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&serde_json::json!({"title": format!("lag probe {sent}"), "priority": "low", "type": "question"}))
                .send()
                .await;
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
        }));
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
