//! `GET /events`: the bus as SSE, from the store (see [`crate::feed`]).
//!
//! - `id:` is the event's store position; `data:` its wire JSON.
//! - Where to start: `Last-Event-ID` (a reconnecting `EventSource` sends it), else
//!   `?after=N`, else the current end (only new events).
//! - Filters: `?session=ID`, `?type=PATTERN[,PATTERN…]` where a pattern is a `type`
//!   string with `*` wildcards (`react.*`, `plugin.llm_*`).
//! - Keep-alive comments every 15 s.
//! - A client that falls behind gets `event: lagged` (`{"missed_after": seq}`) and, by
//!   the server's [`LagPolicy`], catches up from the store or is disconnected.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use agentbus_store::EventQuery;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::error::RequestError;
use crate::feed::{EventFeed, FeedCounters, FeedItem, LagPolicy, PAGE, read};
use crate::server::Server;

/// The query of `GET /events`.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct EventsQuery {
    session: Option<String>,
    #[serde(rename = "type")]
    types: Option<String>,
    after: Option<u64>,
}

/// Which events a client wants.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    session: Option<String>,
    patterns: Vec<String>,
}

impl Filter {
    fn new(query: &EventsQuery) -> Result<Self, RequestError> {
        let patterns: Vec<String> = query
            .types
            .as_deref()
            .map(|t| {
                t.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(bad) = patterns.iter().find(|p| {
            !p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-*".contains(c))
        }) {
            return Err(RequestError::invalid(format!(
                "`type` pattern `{bad}` may hold letters, digits, `.`, `_`, `-` and `*` only"
            )));
        }
        Ok(Self {
            session: query.session.clone().filter(|s| !s.is_empty()),
            patterns,
        })
    }

    fn matches(&self, item: &FeedItem) -> bool {
        if let Some(session) = &self.session
            && item.session_id.as_deref() != Some(session.as_str())
        {
            return false;
        }
        self.patterns.is_empty() || self.patterns.iter().any(|p| glob(p, &item.event_type))
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    if parts.is_empty() {
        return rest.is_empty();
    }
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

fn frame(item: &FeedItem) -> Event {
    Event::default().id(item.seq.to_string()).data(&item.body)
}

/// Where a client starts: after `Last-Event-ID`, `?after=`, or the feed's end.
fn start_after(
    headers: &HeaderMap,
    query: &EventsQuery,
    feed: &EventFeed,
) -> Result<u64, RequestError> {
    if let Some(value) = headers.get("last-event-id") {
        let text = value
            .to_str()
            .map_err(|_| RequestError::invalid("`Last-Event-ID` is not text"))?;
        return text.trim().parse::<u64>().map_err(|_| {
            RequestError::invalid(format!("`Last-Event-ID` `{text}` is not a store position"))
        });
    }
    Ok(query.after.unwrap_or_else(|| feed.position()))
}

/// Decrements the connected-clients gauge when the stream ends.
struct ClientGuard(Arc<FeedCounters>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::Relaxed);
    }
}

enum Phase {
    /// Reading the store after this position.
    CatchUp(u64),
    /// Following the ring; the last position sent.
    Live(u64),
    Done,
}

/// `GET /events`.
pub(crate) async fn events(
    State(server): State<Server>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Result<Response, RequestError> {
    let feed = server
        .feed()
        .ok_or_else(|| RequestError::Store("this server has no store: /events needs one".into()))?
        .clone();
    let filter = Filter::new(&query)?;
    let after = start_after(&headers, &query, &feed)?;
    let policy = server.lag_policy();
    // Subscribe before reading the store: whatever is broadcast from now on is in the
    // receiver, whatever was broadcast before is in the store.
    let receiver = feed.subscribe();
    let counters = feed.counters().clone();
    counters.clients.fetch_add(1, Ordering::Relaxed);
    let guard = ClientGuard(counters.clone());
    let state = (Phase::CatchUp(after), receiver, Vec::<Event>::new(), guard);
    let stream =
        futures::stream::unfold(state, move |(mut phase, mut receiver, mut ready, guard)| {
            let feed = feed.clone();
            let filter = filter.clone();
            let counters = counters.clone();
            async move {
                loop {
                    if let Some(event) = ready.pop() {
                        counters.sent.fetch_add(1, Ordering::Relaxed);
                        return Some((Ok::<_, Infallible>(event), (phase, receiver, ready, guard)));
                    }
                    match phase {
                        Phase::Done => return None,
                        Phase::CatchUp(after) => {
                            let query = EventQuery {
                                after_seq: Some(after),
                                session_id: filter.session.clone(),
                                limit: Some(PAGE),
                                ..EventQuery::default()
                            };
                            match read(feed.store(), query).await {
                                Ok(rows) => {
                                    let full = rows.len() as u64 == PAGE;
                                    let last = rows.last().map_or(after, |r| r.seq);
                                    let mut events: Vec<Event> = rows
                                        .into_iter()
                                        .map(FeedItem::from)
                                        .filter(|item| filter.matches(item))
                                        .map(|item| frame(&item))
                                        .collect();
                                    events.reverse();
                                    ready = events;
                                    phase = if full {
                                        Phase::CatchUp(last)
                                    } else {
                                        Phase::Live(last)
                                    };
                                }
                                Err(error) => {
                                    tracing::warn!(%error, "reading the store for an SSE client");
                                    ready =
                                        vec![Event::default().event("error").data(
                                            serde_json::json!({ "error": error }).to_string(),
                                        )];
                                    phase = Phase::Done;
                                }
                            }
                        }
                        Phase::Live(last) => match receiver.recv().await {
                            Ok(item) if item.seq <= last => {}
                            Ok(item) => {
                                let seq = item.seq;
                                if filter.matches(&item) {
                                    ready = vec![frame(&item)];
                                }
                                phase = Phase::Live(seq);
                            }
                            Err(RecvError::Lagged(missed)) => {
                                counters.lagged.fetch_add(1, Ordering::Relaxed);
                                let notice = Event::default().event("lagged").data(
                                    serde_json::json!({ "missed_after": last, "missed": missed })
                                        .to_string(),
                                );
                                ready = vec![notice];
                                phase = match policy {
                                    LagPolicy::CatchUp => Phase::CatchUp(last),
                                    LagPolicy::Disconnect => {
                                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                                        Phase::Done
                                    }
                                };
                            }
                            Err(RecvError::Closed) => phase = Phase::Done,
                        },
                    }
                }
            }
        });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob("react.*", "react.llm_chunk_arrive"));
        assert!(glob("*", "anything"));
        assert!(glob("plugin.llm_*", "plugin.llm_response_chunk"));
        assert!(!glob("plugin.llm_*", "plugin.stt_transcript"));
        assert!(glob("react.tool_call_end", "react.tool_call_end"));
        assert!(!glob("react.tool_call", "react.tool_call_end"));
        assert!(glob("*.tool*end", "react.tool_call_end"));
        assert!(!glob("*.tool*start", "react.tool_call_end"));
    }
}
