//! Seals as stored in `audit_seals` and printed as JSON, and the targets the scan checks them with.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::hash::LogPosition;
use super::scan::{Role, Target};
use super::ALGORITHM;
use crate::service::error::any::Result;

/// A seal as printed by `audit seal` and read back by `audit verify --seal FILE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealRecord {
    /// The seal's id in `audit_seals`.
    pub id: i64,
    /// How `root` is computed ([`ALGORITHM`]).
    pub algorithm: String,
    /// The last covered event's transaction id (xid8, as text).
    pub upto_txid: String,
    /// The last covered event's global position.
    pub upto_position: i64,
    /// Transactions below `upto_txid` that were still running: their events are not covered.
    #[serde(default)]
    pub excluded_txids: Vec<String>,
    /// Streams with at least one covered event.
    pub streams: i64,
    /// Covered events.
    pub events: i64,
    /// The digest over every stream's head, hex.
    pub root: String,
    /// When the seal was recorded.
    pub sealed_at: DateTime<Utc>,
}

impl SealRecord {
    pub(super) fn excluded(&self) -> Result<Vec<u64>> {
        let mut out = Vec::with_capacity(self.excluded_txids.len());
        for x in &self.excluded_txids {
            out.push(x.parse().map_err(|_| {
                format!(
                    "seal {}: excluded_txids holds {x:?}, not a transaction id",
                    self.id
                )
            })?);
        }
        out.sort_unstable();
        Ok(out)
    }

    pub(super) fn upto(&self) -> Result<LogPosition> {
        Ok(LogPosition {
            txid: self
                .upto_txid
                .parse()
                .map_err(|_| format!("seal {}: upto_txid is not a transaction id", self.id))?,
            position: self.upto_position,
        })
    }
}

pub(super) async fn stored_seals(pool: &PgPool) -> Result<Vec<SealRecord>> {
    type SealRow = (
        i64,
        String,
        i64,
        Vec<String>,
        i64,
        i64,
        Vec<u8>,
        String,
        DateTime<Utc>,
    );
    let rows: Vec<SealRow> = sqlx::query_as(
        "select id, upto_txid::text, upto_position, excluded_txids::text[], streams, events,
                root, algorithm, sealed_at
           from audit_seals order by id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                upto_txid,
                upto_position,
                excluded_txids,
                streams,
                events,
                root,
                algorithm,
                sealed_at,
            )| {
                SealRecord {
                    id,
                    algorithm,
                    upto_txid,
                    upto_position,
                    excluded_txids,
                    streams,
                    events,
                    root: hex::encode(root),
                    sealed_at,
                }
            },
        )
        .collect())
}

pub(super) fn target(record: &SealRecord, role: Role) -> Result<Target> {
    if record.algorithm != ALGORITHM {
        return Err(format!(
            "seal {} uses algorithm {:?}; this build knows {ALGORITHM:?}",
            record.id, record.algorithm
        )
        .into());
    }
    let root: [u8; 32] = hex::decode(&record.root)
        .ok()
        .and_then(|r| r.try_into().ok())
        .ok_or_else(|| format!("seal {}: root is not a sha256 digest", record.id))?;
    Ok(Target {
        expected_streams: record.streams.max(0) as u64,
        expected_events: record.events.max(0) as u64,
        expected_root: root,
        ..Target::new(record.id, record.upto()?, record.excluded()?, role)
    })
}
