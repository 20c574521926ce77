//! `GET /api/v1/live` (one Server-Sent Events connection per tab: `ticket`, `queue`,
//! `notification`, `presence` and `reset` events from the process's live hub) and
//! `PUT /tickets/{id}/presence`; also the SSE body both streams share.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiError, AppJson, AppPath, FieldError};
use crate::http::responses::{ReadErrors, WriteErrors};
use crate::http::state::AppState;
use crate::service::auth::AuthUser;
use crate::service::live::presence::{self, PresenceUpdate};
use crate::service::live::resume::{self, ResumeFrom};
use crate::service::live::{Interest, Item, Subscription};
use crate::service::tickets::load_visible;

/// How often an idle stream sends a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// At most this many tickets per connection.
pub const MAX_TICKETS: usize = 50;

/// The routes of this area (`/live` and the presence of a ticket), under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(set_presence))
}

/// Query of `GET /live` (`ticket` may repeat).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct LiveQuery {
    /// A ticket to watch (repeat for more, at most 50): `ticket` and `presence` events.
    ticket: Option<Vec<i64>>,
    /// Staff: a `queue` event whenever any ticket changes (coalesced, at most 4 a second).
    queue: Option<bool>,
}

/// One connection for everything live. Events: `ticket`
/// (`{ticket_id, version, actor_id, actor_name, event_types, summary}`, id `<txid>.<position>`),
/// `queue` (`{ticket_id, version}`, id `<txid>.<position>`), `notification` (a Notification,
/// id its id), `presence` (`{ticket_id, users: [{id, full_name, state}]}`, no id), `reset` (the
/// client reloads: what it missed is older than the retention window). Send `Last-Event-ID` to
/// resume without losing or repeating anything. Requesters may watch only their own tickets
/// (404 otherwise) and never get internal notes; `queue=true` is for staff (403). The stream
/// ends when the access token expires or its session ends; reconnect with `Last-Event-ID`.
#[utoipa::path(get, path = "/live", tag = "live", security(("bearer" = [])),
    params(LiveQuery, ("Last-Event-ID" = Option<String>, Header, description = "`<txid>.<position>` or a notification id")),
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream"), ReadErrors))]
async fn live(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let expires = token_expiry(&state, &headers)?;
    let (tickets, queue) = parse_query(uri.query().unwrap_or_default())?;
    if queue && !user.is_staff() {
        return Err(ApiError::Forbidden("The queue is for staff".into()));
    }
    for id in &tickets {
        load_visible(&state, &user, *id).await?;
    }
    let from = last_event_id(&headers, ResumeFrom::parse)?;
    let interest = Interest {
        user_id: user.id,
        session: user.session,
        staff: user.is_staff(),
        tickets: tickets.clone(),
        queue,
        live: true,
    };
    let sub = state.live.subscribe(interest.clone());
    let mut backlog: VecDeque<Item> = VecDeque::new();
    if !tickets.is_empty() {
        let rows = presence::read(&state.pool, &tickets).await?;
        for t in &tickets {
            backlog.push_back(Item::Presence(presence::as_seen(
                t.to_owned(),
                &rows,
                interest.staff,
            )));
        }
    }
    if let Some(from) = from {
        let missed = resume::catch_up(
            (&state.pool, &state.names),
            &interest,
            from,
            sub.head,
            state.live.retention,
        )
        .await?;
        backlog.extend(missed);
    }
    Ok(stream(&state, sub, backlog, expires, Format::Live))
}

/// Parses `ticket=<id>` (repeated) and `queue=<bool>`; other keys are ignored.
fn parse_query(query: &str) -> Result<(Vec<i64>, bool), ApiError> {
    let mut tickets = Vec::new();
    let mut queue = false;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "ticket" => match value.trim().parse::<i64>() {
                Ok(id) if id > 0 => {
                    if !tickets.contains(&id) {
                        tickets.push(id);
                    }
                }
                _ => return Err(query_error("ticket", "ticket must be a ticket number")),
            },
            "queue" => match value.as_ref() {
                "true" => queue = true,
                "false" => queue = false,
                _ => return Err(query_error("queue", "queue must be true or false")),
            },
            _ => {}
        }
    }
    if tickets.len() > MAX_TICKETS {
        return Err(query_error(
            "ticket",
            format!("at most {MAX_TICKETS} tickets per connection"),
        ));
    }
    Ok((tickets, queue))
}

fn query_error(field: &str, msg: impl Into<String>) -> ApiError {
    ApiError::Validation(vec![FieldError::query(field, msg)])
}

/// The `Last-Event-ID` header parsed with `parse` (422 when it does not parse).
pub fn last_event_id<T>(
    headers: &HeaderMap,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    let Some(raw) = headers.get("last-event-id") else {
        return Ok(None);
    };
    raw.to_str().ok().and_then(parse).map(Some).ok_or_else(|| {
        ApiError::Validation(vec![FieldError {
            loc: vec![
                serde_json::json!("header"),
                serde_json::json!("Last-Event-ID"),
            ],
            msg: "Last-Event-ID must be an event id this stream sent".into(),
            kind: "value_error".into(),
        }])
    })
}

/// Say what you are doing on a ticket: `viewing` (renew at least every 30 s), `typing`
/// (`internal: true` for an internal note, staff only) or `left`. Watchers of the ticket get
/// a `presence` event; a presence not renewed for 30 s ends.
#[utoipa::path(put, path = "/tickets/{id}/presence", tag = "live", security(("bearer" = [])),
    request_body = PresenceUpdate,
    params(("id" = i64, Path, description = "Ticket number")),
    responses((status = 204), WriteErrors))]
async fn set_presence(
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    State(state): State<AppState>,
    AppJson(body): AppJson<PresenceUpdate>,
) -> Result<StatusCode, ApiError> {
    presence::set(&state, &user, id, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How a stream writes its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `/live`: named events.
    Live,
    /// `/notifications/stream`: unnamed events of notifications only.
    Notifications,
}

struct StreamState {
    hello: bool,
    backlog: VecDeque<Item>,
    sub: Subscription,
    shutdown: tokio::sync::watch::Receiver<bool>,
    ends_at: tokio::time::Instant,
    format: Format,
}

impl StreamState {
    async fn next(&mut self) -> Option<Event> {
        if self.hello {
            self.hello = false;
            return Some(
                Event::default()
                    .retry(Duration::from_secs(5))
                    .comment("connected"),
            );
        }
        loop {
            let item = match self.backlog.pop_front() {
                Some(item) => item,
                None => {
                    if *self.shutdown.borrow() {
                        return None;
                    }
                    tokio::select! {
                        item = self.sub.items.recv() => item?,
                        _ = self.shutdown.changed() => return None,
                        _ = tokio::time::sleep_until(self.ends_at) => return None,
                    }
                }
            };
            if let Some(event) = render(&item, self.format) {
                return Some(event);
            }
        }
    }
}

fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn render(item: &Item, format: Format) -> Option<Event> {
    let event = match (item, format) {
        (Item::Notification(n), Format::Notifications) => {
            Event::default().id(n.id.to_string()).data(json(n))
        }
        (_, Format::Notifications) => return None,
        (Item::Notification(n), Format::Live) => Event::default()
            .event("notification")
            .id(n.id.to_string())
            .data(json(n)),
        (Item::Ticket(at, change), _) => Event::default()
            .event("ticket")
            .id(at.to_string())
            .data(json(change)),
        (Item::Queue(at, change), _) => Event::default()
            .event("queue")
            .id(at.to_string())
            .data(json(change)),
        (Item::Presence(p), _) => Event::default().event("presence").data(json(p)),
        (Item::Reset, _) => Event::default().event("reset").data("{}"),
    };
    Some(event)
}

/// The SSE response of a subscription: `backlog` first, then live items until the token
/// expires, the server shuts down or the hub closes the connection.
pub fn stream(
    state: &AppState,
    sub: Subscription,
    backlog: VecDeque<Item>,
    expires: DateTime<Utc>,
    format: Format,
) -> Response {
    let remaining = (expires - Utc::now()).to_std().unwrap_or_default();
    let stream_state = StreamState {
        hello: true,
        backlog,
        sub,
        shutdown: state.shutdown.subscribe(),
        ends_at: tokio::time::Instant::now() + remaining,
        format,
    };
    let events = futures::stream::unfold(stream_state, |mut s| async move {
        s.next().await.map(|e| (Ok::<_, Infallible>(e), s))
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response();
    // Ask proxies (nginx) not to buffer the stream.
    response.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    response
}

/// When the caller's access token expires (the stream ends then; the client reconnects
/// with a fresh token and `Last-Event-ID`).
pub fn token_expiry(state: &AppState, headers: &HeaderMap) -> Result<DateTime<Utc>, ApiError> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .ok_or_else(|| ApiError::Unauthorized("Not authenticated".into()))?;
    let claims = state.jwt.verify(token.trim())?;
    DateTime::from_timestamp(claims.exp, 0)
        .ok_or_else(|| ApiError::Unauthorized("Invalid or expired token".into()))
}
