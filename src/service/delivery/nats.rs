//! The event feed on NATS JetStream (`async-nats`): the NATS channel's sender (the relay).
//!
//! Every event of the log goes to `<prefix>.<aggregate>.<event_type>` in one stream (created if
//! missing, with a deduplication window) as it is stored — personal fields sealed, as the log
//! holds them — with `Nats-Msg-Id` = installation id + log position, so a re-send after a crash
//! is dropped by JetStream and two installations never collide. A round publishes its rows in
//! log order, then awaits the acknowledgements in order; the first one missing stops the round
//! there, and the rest are sent again (never out of order past a gap). It never gives up.

use std::time::Duration;

use async_nats::jetstream::context::PublishAckFuture;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::json;

use super::{Channel, Claimed, Outcome};

/// How long JetStream remembers message ids (a re-send within it is dropped).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(2 * 60 * 60);

/// The NATS channel's sender.
pub struct NatsSender {
    pool: sqlx::PgPool,
    jetstream: async_nats::jetstream::Context,
    prefix: String,
    installation: uuid::Uuid,
}

/// The subject of an event.
pub fn subject(prefix: &str, aggregate_type: &str, event_type: &str) -> String {
    format!("{prefix}.{aggregate_type}.{event_type}")
}

/// The `Nats-Msg-Id` of the event at `position`.
pub fn message_id(installation: uuid::Uuid, position: i64) -> String {
    format!("{}:{position}", installation.simple())
}

impl NatsSender {
    /// Connects and makes sure the stream exists.
    pub async fn connect(
        pool: sqlx::PgPool,
        url: &str,
        config: &super::config::DeliveryConfig,
        installation: uuid::Uuid,
    ) -> Result<Self, String> {
        let client = async_nats::ConnectOptions::new()
            .name("ticketd")
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(|e| format!("TICKETD_NATS_URL: {e}"))?;
        let jetstream = async_nats::jetstream::new(client);
        let prefix = config.nats_prefix.trim().to_string();
        let stream = config.nats_stream.trim().to_string();
        if prefix.is_empty() || prefix.contains(['*', '>', ' ']) {
            return Err("TICKETD_NATS_PREFIX must be a plain subject prefix".into());
        }
        let stream_config = async_nats::jetstream::stream::Config {
            name: stream.clone(),
            subjects: vec![format!("{prefix}.>")],
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        // Creating it may race with another process or the server starting: retry a while.
        let mut tries = 0;
        loop {
            match jetstream.get_or_create_stream(stream_config.clone()).await {
                Ok(_) => break,
                Err(e) if tries < 10 => {
                    tracing::warn!(error = %e, "NATS: creating the stream, retrying");
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(format!("NATS stream {stream}: {e}")),
            }
        }
        Ok(NatsSender {
            pool,
            jetstream,
            prefix,
            installation,
        })
    }

    /// Publishes `rows` in log order; an acknowledgement to await per row (`None`: the event is
    /// not in the log). Stops at the first publish that fails: the rows after it get nothing.
    async fn publish(
        &self,
        rows: &[Claimed],
        events: &std::collections::HashMap<i64, projections::StoredEvent>,
    ) -> Vec<Option<PublishAckFuture>> {
        let mut acks = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(e) = events.get(&row.event_position) else {
                acks.push(None);
                continue;
            };
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                "Nats-Msg-Id",
                message_id(self.installation, e.global_position).as_str(),
            );
            let body = json!({
                "position": e.global_position,
                "transaction_id": e.txid,
                "aggregate_type": e.aggregate_type,
                "aggregate_id": e.aggregate_id,
                "sequence": e.sequence,
                "event_type": e.event_type,
                "event_version": e.event_version,
                "payload": e.payload,
                "metadata": e.metadata,
                "recorded_at": e.recorded_at,
            });
            let published = self
                .jetstream
                .publish_with_headers(
                    subject(&self.prefix, &e.aggregate_type, &e.event_type),
                    headers,
                    body.to_string().into(),
                )
                .await;
            match published {
                Ok(ack) => acks.push(Some(ack)),
                Err(_) => break,
            }
        }
        acks
    }
}

/// The outcome of each of `rows` from its acknowledgement, awaited in order: past the first
/// one missing, every row is sent again.
async fn acknowledged(rows: &[Claimed], acks: Vec<Option<PublishAckFuture>>) -> Vec<Outcome> {
    let mut acks = acks.into_iter();
    let mut out = Vec::with_capacity(rows.len());
    let mut broken = false;
    for _ in rows {
        if broken {
            out.push(retry("an earlier message was not acknowledged"));
            continue;
        }
        match acks.next() {
            Some(None) => out.push(Outcome::Skipped("the event is not in the log".into())),
            Some(Some(ack)) => match ack.await {
                Ok(_) => out.push(Outcome::Delivered(None)),
                Err(_) => {
                    broken = true;
                    out.push(retry("NATS did not acknowledge the message"));
                }
            },
            None => {
                broken = true;
                out.push(retry("NATS could not be reached"));
            }
        }
    }
    out
}

fn retry(error: &str) -> Outcome {
    Outcome::Retry {
        status: None,
        error: error.to_string(),
    }
}

impl Channel for NatsSender {
    fn name(&self) -> &'static str {
        projections::delivery::NATS
    }

    fn batch(&self) -> i64 {
        500
    }

    /// Never gives up: 100 ms doubling up to 30 s.
    fn backoff(&self, attempts: i32, _created_at: DateTime<Utc>) -> Option<Duration> {
        let exp = u32::try_from(attempts.clamp(1, 10) - 1).unwrap_or(0);
        Some(Duration::from_millis(100 * 2u64.pow(exp)).min(Duration::from_secs(30)))
    }

    fn send<'a>(&'a self, rows: &'a [Claimed]) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let positions: Vec<i64> = rows.iter().map(|r| r.event_position).collect();
            match super::load_stored_events(&self.pool, &positions).await {
                Ok(events) => acknowledged(rows, self.publish(rows, &events).await).await,
                Err(e) => {
                    tracing::warn!(error = %e, "NATS relay");
                    rows.iter()
                        .map(|_| retry("reading the log failed"))
                        .collect()
                }
            }
        })
    }
}
