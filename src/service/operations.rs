//! Operations for admins (API.md additions, "Profile, preferences, operations"): every
//! projection's position, lag, leader and rebuild, and rebuilds started from the API (the same
//! shadow-table rebuild as `ticketd projections rebuild`, run by this process in the
//! background; progress is read from the shadow checkpoint, so any process can show it, and
//! during a first pass that moves it only at its end, from the pass's own count in the process
//! that runs it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::service::error::Error;
use crate::service::Services;

/// A rebuild as the API shows it.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct RebuildState {
    /// True while a rebuild of this projection runs (in any process).
    pub running: bool,
    /// How far the rebuild has read the log (a log position, which counts events).
    pub done_events: i64,
    /// Where the log ends now (the position the rebuild works towards).
    pub total_events: i64,
    /// When this process started it (`null` when another process did, or none ran).
    pub started_at: Option<DateTime<Utc>>,
    /// When the last rebuild started by this process finished, and how.
    pub finished_at: Option<DateTime<Utc>>,
    /// Why the last rebuild started by this process failed.
    pub error: Option<String>,
}

/// One projection as admins see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProjectionState {
    pub name: String,
    /// The log position it has applied up to.
    pub position: i64,
    /// Events committed after its checkpoint (capped at 1,000,000).
    pub lag_events: i64,
    /// Age of the oldest event not yet applied, in seconds.
    pub lag_seconds: f64,
    /// `running`, `paused` or `failed`.
    pub status: String,
    /// Why it stopped, when it failed.
    pub error: Option<String>,
    /// The database session that runs it (`pid … from …`), `null` when none does.
    pub leader: Option<String>,
    /// False for delivery channels (webhooks, NATS): they are never rebuilt.
    pub rebuildable: bool,
    pub rebuild: RebuildState,
}

/// The rebuilds this process started: their state, and the events each one's first pass
/// ([`projections::Projection::bulk_load`]) has folded.
#[derive(Default)]
pub struct Rebuilds(Mutex<HashMap<String, (RebuildState, Arc<AtomicU64>)>>);

impl Rebuilds {
    fn get(&self, name: &str) -> Option<(RebuildState, u64)> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|(state, folded)| (state.clone(), folded.load(Ordering::Relaxed)))
    }

    /// Records a rebuild that starts now; returns its fold counter, from zero.
    fn start(&self, name: &str, state: RebuildState) -> Arc<AtomicU64> {
        let folded = Arc::new(AtomicU64::new(0));
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), (state, folded.clone()));
        folded
    }

    /// Records how a started rebuild ended (its fold counter stays).
    fn finish(&self, name: &str, state: RebuildState) {
        if let Some(entry) = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(name)
        {
            entry.0 = state;
        }
    }
}

/// Every projection this build runs, with its rebuild.
pub async fn projections(services: &Services) -> Result<Vec<ProjectionState>, Error> {
    let reports = projections::runtime::report(&services.pool).await?;
    let head: i64 = sqlx::query_scalar("select coalesce(max(global_position), 0) from events")
        .fetch_one(&services.pool)
        .await?;
    let by_name: HashMap<&str, &projections::runtime::ProjectionReport> =
        reports.iter().map(|r| (r.name.as_str(), r)).collect();
    let mut out = Vec::new();
    for p in crate::service::all_projections(&services.pool) {
        let name = p.name();
        let live = by_name.get(name);
        let shadow = by_name
            .get(format!("{name}__rebuild").as_str())
            .filter(|s| s.leader.is_some());
        let (mut rebuild, folded) = services.rebuilds.get(name).unwrap_or_default();
        let folded = i64::try_from(folded).unwrap_or(i64::MAX).min(head);
        rebuild.running =
            shadow.is_some() || (rebuild.started_at.is_some() && rebuild.finished_at.is_none());
        rebuild.total_events = head;
        rebuild.done_events = match (shadow, rebuild.running) {
            (Some(s), _) => s.position.max(folded),
            (None, true) => folded,
            (None, false) => rebuild.done_events,
        };
        out.push(ProjectionState {
            name: name.to_string(),
            position: live.map_or(0, |r| r.position),
            lag_events: live.map_or(0, |r| r.lag_events),
            lag_seconds: live.map_or(0.0, |r| r.lag_seconds),
            status: live.map_or_else(|| "running".into(), |r| r.status.clone()),
            error: live.and_then(|r| r.error.clone()),
            leader: live.and_then(|r| r.leader.clone()),
            rebuildable: p.rebuildable(),
            rebuild,
        });
    }
    Ok(out)
}

/// Starts a rebuild of projection `name` in the background: 404 for an unknown name, 409
/// while one runs.
pub async fn start_rebuild(services: &Services, name: &str) -> Result<ProjectionState, Error> {
    let projection = crate::service::all_projections(&services.pool)
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| Error::not_found("Projection"))?;
    if !projection.rebuildable() {
        return Err(Error::conflict(format!(
            "{name} is a delivery channel: it is not rebuilt (its messages went out already)"
        )));
    }
    let running = projections(services)
        .await?
        .into_iter()
        .any(|p| p.name == name && p.rebuild.running);
    if running {
        return Err(Error::conflict(format!(
            "A rebuild of {name} is already running"
        )));
    }
    projections::runtime::ensure_checkpoint(&services.pool, name).await?;
    let started = RebuildState {
        running: true,
        started_at: Some(Utc::now()),
        ..RebuildState::default()
    };
    let folded = services.rebuilds.start(name, started.clone());
    let pool = services.pool.clone();
    let rebuilds = services.rebuilds.clone();
    let key = name.to_string();
    tokio::spawn(async move {
        let result =
            projections::rebuild::rebuild_exclusive(&pool, projection.as_ref(), 5000, &folded)
                .await;
        let mut state = started;
        state.running = false;
        state.finished_at = Some(Utc::now());
        match result {
            Ok(Some(report)) => {
                state.done_events = report.checkpoint.position;
                tracing::info!(projection = %key, events = report.events, seconds = report.seconds, "rebuilt");
            }
            Ok(None) => state.error = Some("another rebuild of it was running".into()),
            Err(e) => {
                tracing::error!(projection = %key, error = %e, "rebuild failed");
                state.error = Some("the rebuild failed; see the server log".into());
            }
        }
        rebuilds.finish(&key, state);
    });
    projections(services)
        .await?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| Error::not_found("Projection"))
}
