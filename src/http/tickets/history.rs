//! `GET /api/v1/tickets/{id}/history`: a ticket's events, as the log holds them, with the
//! ticket's own access rules. Requesters never see internal notes.

use aggregates::ticket::TicketEvent;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiError, AppPath, AppQuery};
use crate::http::responses::ReadErrors;
use crate::http::state::AppState;
use crate::service::auth::AuthUser;
use crate::service::history::{Bound, FieldChange};
use crate::service::names::{NameMap, Named};
use crate::service::tickets::load_visible;

/// The routes of this area (nested under `/api/v1/tickets`).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ticket_history))
}

/// One event of a ticket's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEvent {
    /// The event's position in the ticket's stream (1, 2, 3...).
    pub sequence: i64,
    /// What happened (`TicketOpened`, `TicketUpdated`, `CommentAdded`...).
    pub event_type: String,
    /// The event's fields.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// Who caused it.
    pub actor_id: Option<i64>,
    /// Their display name.
    pub actor_name: Option<String>,
    /// The same for every event one request recorded (one command, one transaction).
    pub request_id: String,
    /// The ticket fields this event changed (none for the opening event, whose `data` holds
    /// the first values); user ids come with `from_name`/`to_name`.
    pub changes: Vec<FieldChange>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

impl Named for HistoryEvent {
    fn people(&self, ids: &mut Vec<i64>) {
        ids.extend(self.actor_id);
        for c in self.changes.iter().filter(|c| c.field.ends_with("_id")) {
            ids.extend(c.from.as_i64());
            ids.extend(c.to.as_i64());
        }
    }
    fn take_names(&mut self, names: &NameMap) {
        self.actor_name = names.of(self.actor_id);
        for c in self.changes.iter_mut().filter(|c| c.field.ends_with("_id")) {
            c.from_name = names.of(c.from.as_i64());
            c.to_name = names.of(c.to.as_i64());
        }
    }
}

/// Query of `GET /tickets/{id}` and `GET /tickets/{id}/history`: a time to look back to.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The ticket as it was, or the events recorded, by this time (RFC 3339, e.g.
    /// `2026-11-26T10:00:00Z`); absent or empty: now.
    #[serde(default, deserialize_with = "crate::service::history::de_as_of")]
    #[param(value_type = Option<String>)]
    pub as_of: Option<DateTime<Utc>>,
}

/// A ticket's events in order, optionally only those recorded by `as_of`. Requesters see
/// their own tickets only, and never internal notes.
#[utoipa::path(get, path = "/{id}/history", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Ticket number"), HistoryQuery),
    responses((status = 200, body = Vec<HistoryEvent>), ReadErrors))]
#[tracing::instrument(skip_all, fields(ticket_id = %id))]
async fn ticket_history(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    AppQuery(query): AppQuery<HistoryQuery>,
) -> Result<axum::Json<Vec<HistoryEvent>>, ApiError> {
    load_visible(&state, &user, id).await?;
    let bound = query.as_of.map_or(Bound::All, Bound::AsOf);
    let entries =
        crate::service::history::load(&state.pool, "ticket", &id.to_string(), bound).await?;
    let staff = user.is_staff();
    let changes = crate::service::history::ticket_changes(&entries);
    let mut out = Vec::with_capacity(entries.len());
    for (e, changes) in entries.into_iter().zip(changes) {
        if !staff {
            let event = TicketEvent::deserialize(&e.payload).map_err(ApiError::internal)?;
            if event.is_internal() {
                continue;
            }
        }
        out.push(HistoryEvent {
            sequence: e.sequence,
            actor_id: e.actor_id(),
            actor_name: None,
            request_id: e.transaction_id.clone(),
            changes,
            data: e.data(),
            event_type: e.event_type,
            recorded_at: e.recorded_at,
        });
    }
    state.names.fill(&state.pool, &mut out).await?;
    Ok(axum::Json(out))
}
