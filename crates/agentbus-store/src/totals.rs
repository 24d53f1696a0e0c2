//! Per-session call totals (LLM calls, tokens, cost, models), kept in the store's session
//! index so that listing sessions reads one row per session, never their events.
//!
//! A session's totals are folded from its call events in store order
//! ([`SessionTotals::absorb`]). The append that stores those events updates the totals in
//! the same transaction (schema version [`TOTALS_VERSION`]); the migration to that version
//! fills them in for the sessions already stored. The same fold over a scan of the events
//! ([`Gather`]) serves stores opened read-only at an older version, and rebuilds a total
//! that does not decode.
//!
//! The figures are those of the session's most detailed layer, by the rule the
//! statistics follow too (see `summary.rs`): the provider stream, else the agent loop,
//! else the Vision Agents LLM events.

use std::collections::HashMap;
use std::sync::LazyLock;

use agentbus_events::llm::{LLMErrorEvent, LLMRequestStartedEvent, LLMResponseCompletedEvent};
use agentbus_events::react::{LLMCallEndEvent, LLMCallErrorEvent};
use agentbus_events::stream::{StreamErrorEvent, StreamFinishEvent};
use agentbus_events::{DynEvent, Event, Registry};
use serde::{Deserialize, Serialize};

use crate::row::EventRow;

/// The first schema version whose session index keeps call totals.
pub(crate) const TOTALS_VERSION: i64 = 4;

/// The event types the totals are folded from.
pub(crate) const TOTALS_TYPES: &[&str] = &[
    LLMRequestStartedEvent::TYPE,
    StreamFinishEvent::TYPE,
    StreamErrorEvent::TYPE,
    LLMCallEndEvent::TYPE,
    LLMCallErrorEvent::TYPE,
    LLMResponseCompletedEvent::TYPE,
    LLMErrorEvent::TYPE,
];

/// How many started-but-unfinished provider requests a session remembers (for the model
/// of their finish). A request that never finishes is forgotten oldest first, so the
/// stored totals stay small whatever the session does.
const MAX_OPEN_REQUESTS: usize = 256;

/// The catalogue, built once: call events are decoded with it on append and on reading.
static CATALOGUE: LazyLock<Registry> = LazyLock::new(Registry::catalogue);

/// The totals of one layer of LLM calls.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LayerTotals {
    /// Calls ended (successfully or not).
    pub calls: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost over the calls whose cost is known; `None` when none is.
    pub cost_usd: Option<f64>,
    /// Models, in order of first use.
    pub models: Vec<String>,
}

impl LayerTotals {
    fn add(&mut self, model: Option<String>, input: u64, output: u64, cost: Option<f64>) {
        self.calls += 1;
        self.input_tokens = self.input_tokens.saturating_add(input);
        self.output_tokens = self.output_tokens.saturating_add(output);
        if let Some(cost) = cost {
            self.cost_usd = Some(self.cost_usd.unwrap_or(0.0) + cost);
        }
        if let Some(model) = model
            && !self.models.contains(&model)
        {
            self.models.push(model);
        }
    }
}

/// A provider request started and not finished yet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct OpenRequest {
    request_id: String,
    model: Option<String>,
}

/// One session's call totals, per layer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct SessionTotals {
    stream: LayerTotals,
    react: LayerTotals,
    plugin: LayerTotals,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    open: Vec<OpenRequest>,
}

/// `s` unless it is empty.
pub(crate) fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

impl SessionTotals {
    /// Folds in one event (events of other types than [`TOTALS_TYPES`] change nothing).
    pub(crate) fn absorb(&mut self, event: &dyn DynEvent) {
        let any = event.as_any();
        if let Some(e) = any.downcast_ref::<LLMRequestStartedEvent>() {
            match self.open.iter_mut().find(|r| r.request_id == e.request_id) {
                Some(open) => {
                    if open.model.is_none() {
                        open.model = e.model.clone();
                    }
                }
                None => {
                    if self.open.len() == MAX_OPEN_REQUESTS {
                        self.open.remove(0);
                    }
                    self.open.push(OpenRequest {
                        request_id: e.request_id.clone(),
                        model: e.model.clone(),
                    });
                }
            }
        } else if let Some(e) = any.downcast_ref::<StreamFinishEvent>() {
            let started = self.finish_request(&e.request_id);
            self.stream.add(
                non_empty(&e.model).or(started),
                e.input_tokens,
                e.output_tokens,
                e.cost_usd,
            );
        } else if let Some(e) = any.downcast_ref::<StreamErrorEvent>() {
            let started = self.finish_request(&e.request_id);
            self.stream.add(started, 0, 0, None);
        } else if let Some(e) = any.downcast_ref::<LLMCallEndEvent>() {
            self.react.add(
                e.model.clone(),
                e.usage.input_tokens,
                e.usage.output_tokens,
                e.cost_usd,
            );
        } else if any.downcast_ref::<LLMCallErrorEvent>().is_some() {
            self.react.add(None, 0, 0, None);
        } else if let Some(e) = any.downcast_ref::<LLMResponseCompletedEvent>() {
            self.plugin.add(
                e.model.clone(),
                e.input_tokens.unwrap_or(0),
                e.output_tokens.unwrap_or(0),
                None,
            );
        } else if any.downcast_ref::<LLMErrorEvent>().is_some() {
            self.plugin.add(None, 0, 0, None);
        }
    }

    /// Forgets an open request, returning the model it started with.
    fn finish_request(&mut self, request_id: &str) -> Option<String> {
        let index = self.open.iter().position(|r| r.request_id == request_id)?;
        self.open.remove(index).model
    }

    /// The totals of the session's most detailed layer that has calls.
    pub(crate) fn calls(&self) -> &LayerTotals {
        if self.stream.calls > 0 {
            &self.stream
        } else if self.react.calls > 0 {
            &self.react
        } else {
            &self.plugin
        }
    }

    /// The stored form.
    pub(crate) fn to_json(&self) -> String {
        // Plain numbers, strings and vectors: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the stored form; `None` (with a warning) when it does not decode.
    pub(crate) fn from_json(session_id: &str, json: &str) -> Option<Self> {
        match serde_json::from_str(json) {
            Ok(totals) => Some(totals),
            Err(error) => {
                tracing::warn!(
                    session_id,
                    %error,
                    "stored call totals do not decode; recomputing them from the events"
                );
                None
            }
        }
    }
}

/// Decodes a stored body with the catalogue; `None` (with a warning) when it does not.
fn decode(session_id: &str, body: &str) -> Option<Box<dyn DynEvent>> {
    match CATALOGUE.decode(body.as_bytes()) {
        Ok(event) => Some(event),
        Err(error) => {
            tracing::warn!(
                session_id,
                %error,
                "a stored call event does not decode; left out of the session's totals"
            );
            None
        }
    }
}

/// The call events of an appended batch, decoded and grouped by session in order of
/// first appearance; sessions without call events are left out.
pub(crate) fn batch_events(rows: &[EventRow]) -> Vec<(&str, Vec<Box<dyn DynEvent>>)> {
    let mut sessions: Vec<(&str, Vec<Box<dyn DynEvent>>)> = Vec::new();
    for row in rows {
        let Some(session_id) = row.session_id.as_deref() else {
            continue;
        };
        if !TOTALS_TYPES.contains(&row.event_type.as_str()) {
            continue;
        }
        let Some(event) = decode(session_id, &row.body) else {
            continue;
        };
        match sessions.iter_mut().find(|(id, _)| *id == session_id) {
            Some((_, events)) => events.push(event),
            None => sessions.push((session_id, vec![event])),
        }
    }
    sessions
}

/// The totals of `session_id` after an append: `current` (its stored totals, `None` when it
/// has none yet) with `events` (its call events in the batch) folded in. `None` when the
/// stored totals do not decode: the caller recomputes them from the session's events,
/// which by then include the batch.
pub(crate) fn updated(
    session_id: &str,
    current: Option<&str>,
    events: &[Box<dyn DynEvent>],
) -> Option<SessionTotals> {
    let mut totals = match current {
        None => SessionTotals::default(),
        Some(json) => SessionTotals::from_json(session_id, json)?,
    };
    for event in events {
        totals.absorb(event.as_ref());
    }
    Some(totals)
}

/// The query reading the call events the totals are folded from, in store order:
/// `(session_id, body)` rows, of one session (bound to `param`) when `one_session`.
pub(crate) fn call_events_sql(param: &str, one_session: bool) -> String {
    // The types are this crate's constants (letters, dots and underscores): inlined.
    let types: Vec<String> = TOTALS_TYPES.iter().map(|t| format!("'{t}'")).collect();
    let session = if one_session {
        format!("session_id = {param}")
    } else {
        "session_id IS NOT NULL".to_owned()
    };
    format!(
        "SELECT session_id, body FROM events WHERE {session} AND type IN ({}) ORDER BY seq",
        types.join(", ")
    )
}

/// Folds the call events of many sessions, read in store order, into their totals.
#[derive(Default)]
pub(crate) struct Gather {
    sessions: HashMap<String, SessionTotals>,
}

impl Gather {
    /// Takes in one stored call event of `session_id`.
    pub(crate) fn push(&mut self, session_id: &str, body: &str) {
        let Some(event) = decode(session_id, body) else {
            return;
        };
        match self.sessions.get_mut(session_id) {
            Some(totals) => totals.absorb(event.as_ref()),
            None => self
                .sessions
                .entry(session_id.to_owned())
                .or_default()
                .absorb(event.as_ref()),
        }
    }

    /// The totals gathered, by session.
    pub(crate) fn finish(self) -> HashMap<String, SessionTotals> {
        self.sessions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentbus_events::EventMeta;

    fn finish(request: &str, model: &str, input: u64, cost: Option<f64>) -> StreamFinishEvent {
        StreamFinishEvent {
            meta: EventMeta::for_session("s"),
            request_id: request.into(),
            input_tokens: input,
            output_tokens: 1,
            cost_usd: cost,
            model: model.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_finish_without_a_model_takes_the_model_its_request_started_with() {
        let mut totals = SessionTotals::default();
        totals.absorb(&LLMRequestStartedEvent {
            meta: EventMeta::for_session("s"),
            request_id: "r1".into(),
            model: Some("m-start".into()),
            ..Default::default()
        });
        totals.absorb(&finish("r1", "", 10, None));
        totals.absorb(&finish("r2", "m2", 5, Some(0.5)));
        let calls = totals.calls();
        assert_eq!(calls.calls, 2);
        assert_eq!(calls.models, ["m-start", "m2"]);
        assert_eq!(calls.input_tokens, 15);
        assert_eq!(calls.cost_usd, Some(0.5));
        assert!(totals.open.is_empty());
    }

    #[test]
    fn unfinished_requests_are_forgotten_oldest_first() {
        let mut totals = SessionTotals::default();
        for i in 0..MAX_OPEN_REQUESTS + 10 {
            totals.absorb(&LLMRequestStartedEvent {
                meta: EventMeta::for_session("s"),
                request_id: format!("r{i}"),
                model: Some(format!("m{i}")),
                ..Default::default()
            });
        }
        assert_eq!(totals.open.len(), MAX_OPEN_REQUESTS);
        assert_eq!(totals.open[0].request_id, "r10");
    }

    #[test]
    fn the_stream_layer_wins_over_the_agent_loop() {
        let mut totals = SessionTotals::default();
        totals.absorb(&LLMCallErrorEvent::default());
        assert_eq!(totals.calls().calls, 1);
        totals.absorb(&finish("r", "m", 3, None));
        assert_eq!(totals.calls().models, ["m"]);
        assert_eq!(totals.calls().calls, 1);
    }

    #[test]
    fn the_stored_form_round_trips_and_garbage_is_refused() {
        let mut totals = SessionTotals::default();
        totals.absorb(&finish("r", "m", 3, Some(0.1 + 0.2)));
        let json = totals.to_json();
        assert_eq!(SessionTotals::from_json("s", &json), Some(totals));
        assert_eq!(SessionTotals::from_json("s", "{not json"), None);
    }
}
