//! The JSON API over the store (`/api/sessions`, `/api/sessions/{id}/events`,
//! `/api/stats`) and `/metrics` (Prometheus text: the server's runs and SSE clients and
//! the bus's subscribers).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use agentbus_store::{EventQuery, EventStore, StoreError};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::RequestError;
use crate::feed::PAGE;
use crate::server::Server;

fn store(server: &Server) -> Result<Arc<EventStore>, RequestError> {
    server
        .feed()
        .map(|f| f.store().clone())
        .ok_or_else(|| RequestError::Store("this server has no store".into()))
}

fn store_error(error: StoreError) -> RequestError {
    match error {
        StoreError::UnknownSession(id) => RequestError::NotFound(format!("no session `{id}`")),
        other => RequestError::Store(other.to_string()),
    }
}

async fn blocking<T: Send + 'static>(
    store: Arc<EventStore>,
    f: impl FnOnce(&EventStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, RequestError> {
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| RequestError::Store(format!("the store reader stopped: {e}")))?
        .map_err(store_error)
}

/// `GET /api/sessions`: every session's summary, newest first.
pub(crate) async fn sessions(State(server): State<Server>) -> Result<Response, RequestError> {
    let mut sessions = blocking(store(&server)?, |s| s.sessions()).await?;
    sessions.reverse();
    Ok(Json(sessions).into_response())
}

/// The query of `GET /api/sessions/{id}/events`.
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    after: Option<u64>,
    limit: Option<u64>,
}

/// `GET /api/sessions/{id}/events`: a page of a session's stored events, in order,
/// each `{"seq": n, "event": <wire JSON>}`, and `next_after` to page on.
pub(crate) async fn session_events(
    State(server): State<Server>,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Response, RequestError> {
    let limit = page.limit.unwrap_or(PAGE).clamp(1, 10 * PAGE);
    let query = EventQuery {
        session_id: Some(id.clone()),
        after_seq: page.after,
        limit: Some(limit),
        ..EventQuery::default()
    };
    let store = store(&server)?;
    let (exists, rows) = blocking(store, move |s| {
        let rows = s.events(&query)?;
        let exists = !rows.is_empty() || s.session(&id).is_ok();
        Ok((exists, rows))
    })
    .await?;
    if !exists {
        return Err(RequestError::NotFound("no such session".into()));
    }
    let next_after = rows.last().map(|r| r.seq);
    let mut body =
        String::with_capacity(rows.iter().map(|r| r.row.body.len() + 24).sum::<usize>() + 64);
    body.push_str("{\"events\":[");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        // The stored body is already the wire JSON: splice it in without re-encoding.
        let _ = write!(body, "{{\"seq\":{},\"event\":{}}}", row.seq, row.row.body);
    }
    let _ = write!(
        body,
        "],\"next_after\":{}}}",
        next_after.map_or_else(|| "null".to_owned(), |n| n.to_string())
    );
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The query of `GET /api/stats`.
#[derive(Debug, Deserialize)]
pub(crate) struct StatsQuery {
    session: Option<String>,
}

/// `GET /api/stats[?session=ID]`: per-model and per-tool statistics.
pub(crate) async fn stats(
    State(server): State<Server>,
    Query(query): Query<StatsQuery>,
) -> Result<Response, RequestError> {
    let stats = blocking(store(&server)?, move |s| s.stats(query.session.as_deref())).await?;
    Ok(Json(stats).into_response())
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(server): State<Server>) -> Response {
    let mut out = String::with_capacity(2048);
    let runs = server.run_counters();
    gauge(
        &mut out,
        "agentbus_serve_runs_started_total",
        "counter",
        "Agent runs started over HTTP.",
        runs.started.load(Ordering::Relaxed),
    );
    gauge(
        &mut out,
        "agentbus_serve_runs_active",
        "gauge",
        "Agent runs in progress.",
        runs.active.load(Ordering::Relaxed),
    );
    gauge(
        &mut out,
        "agentbus_serve_requests_refused_total",
        "counter",
        "Requests refused with a 4xx.",
        runs.refused.load(Ordering::Relaxed),
    );
    if let Some(feed) = server.feed() {
        let c = feed.counters();
        gauge(
            &mut out,
            "agentbus_serve_sse_clients",
            "gauge",
            "Clients connected to /events.",
            c.clients.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "agentbus_serve_sse_events_sent_total",
            "counter",
            "Events sent to /events clients.",
            c.sent.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "agentbus_serve_sse_lagged_total",
            "counter",
            "Times a /events client fell behind the ring.",
            c.lagged.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "agentbus_serve_sse_dropped_total",
            "counter",
            "/events clients disconnected for lagging.",
            c.dropped.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "agentbus_serve_store_position",
            "gauge",
            "The last store position broadcast.",
            feed.position(),
        );
    }
    let bus = server.bus().stats();
    gauge(
        &mut out,
        "agentbus_bus_events_total",
        "counter",
        "Events accepted by the bus.",
        bus.next_seq.saturating_sub(1),
    );
    let _ = writeln!(
        out,
        "# HELP agentbus_bus_subscriber_queued Deliveries waiting in a subscriber's queue."
    );
    let _ = writeln!(out, "# TYPE agentbus_bus_subscriber_queued gauge");
    for s in &bus.subscribers {
        let _ = writeln!(
            out,
            "agentbus_bus_subscriber_queued{{subscriber=\"{}\"}} {}",
            label(&s.name),
            s.queue_depth
        );
    }
    let _ = writeln!(
        out,
        "# HELP agentbus_bus_subscriber_dropped_total Deliveries a subscriber lost to its overflow policy."
    );
    let _ = writeln!(out, "# TYPE agentbus_bus_subscriber_dropped_total counter");
    for s in &bus.subscribers {
        let _ = writeln!(
            out,
            "agentbus_bus_subscriber_dropped_total{{subscriber=\"{}\"}} {}",
            label(&s.name),
            s.dropped
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

fn gauge(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// A Prometheus label value, escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
