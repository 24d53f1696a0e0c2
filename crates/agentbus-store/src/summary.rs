//! Session summaries (from the call totals the store keeps, `totals.rs`) and per-model /
//! per-tool statistics (computed from the stored call and tool events).
//!
//! **Where the numbers come from.** One LLM call can show up in several layers at once (the
//! provider stream, the Vision Agents LLM events, the agent loop). To count each call once,
//! every session is read from the most detailed layer it has:
//! 1. the provider stream (`stream.finish` / `stream.error`, one per call, keyed by
//!    `request_id`): tokens, cost and model from `stream.finish` (the model of the
//!    request's `plugin.llm_request_started` when the finish names none); latency from the
//!    request's start to its end, TTFT from its start to its first `stream.*` output event;
//! 2. else the agent loop (`react.llm_call_end` / `react.llm_call_error`);
//! 3. else the Vision Agents LLM events (`plugin.llm_response_completed` / `plugin.llm_error`).
//!
//! Tools likewise: `plugin.llm.tool.end` when the session has it, else `react.tool_call_end`.
//! Tokens per second is output tokens divided by generation time (latency minus TTFT when
//! both are known, else latency), over the calls where it is known.
//!
//! **Typed, streamed.** For statistics, the events are decoded into their catalogue types through the
//! [`Registry`] (a field renamed in the catalogue is a compile error here, not a silent
//! zero), one at a time from a scan: only the call and tool events are read, never the
//! text; the first output time of each request comes from one aggregate query over the
//! indexed columns. Memory grows with the number of sessions and calls, not with the
//! number of events or the size of their text.

use std::collections::{BTreeMap, HashMap};

use agentbus_events::llm::{LLMErrorEvent, LLMRequestStartedEvent, LLMResponseCompletedEvent};
use agentbus_events::react::{LLMCallEndEvent, LLMCallErrorEvent, ToolCallEndEvent};
use agentbus_events::stream::{
    StreamErrorEvent, StreamFinishEvent, StreamReasoningDeltaEvent, StreamTextDeltaEvent,
    StreamToolCallDeltaEvent, StreamToolCallEvent,
};
use agentbus_events::tool::ToolEndEvent;
use agentbus_events::{DynEvent, Event, Registry};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::backend::SessionCounts;
use crate::error::Result;
use crate::row::{StoredEvent, micros_to_datetime};
use crate::status::SessionStatus;
use crate::totals::{LayerTotals, SessionTotals, non_empty};

/// The event types a summary reads (LLM calls and tool calls).
pub(crate) const CALL_TYPES: &[&str] = &[
    StreamFinishEvent::TYPE,
    StreamErrorEvent::TYPE,
    LLMRequestStartedEvent::TYPE,
    LLMResponseCompletedEvent::TYPE,
    LLMErrorEvent::TYPE,
    LLMCallEndEvent::TYPE,
    LLMCallErrorEvent::TYPE,
    ToolEndEvent::TYPE,
    ToolCallEndEvent::TYPE,
];

/// The provider-stream output events whose first one per request gives the TTFT.
pub(crate) const OUTPUT_TYPES: &[&str] = &[
    StreamTextDeltaEvent::TYPE,
    StreamReasoningDeltaEvent::TYPE,
    StreamToolCallDeltaEvent::TYPE,
    StreamToolCallEvent::TYPE,
];

/// One session at a glance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionSummary {
    /// The session id.
    pub session_id: String,
    /// Time of its first event.
    pub first_event: DateTime<Utc>,
    /// Time of its last event.
    pub last_event: DateTime<Utc>,
    /// How many events it has.
    pub events: u64,
    /// The models its LLM calls used, in order of first use.
    pub models: Vec<String>,
    /// How many LLM calls it made.
    pub llm_calls: u64,
    /// Prompt tokens over all calls.
    pub input_tokens: u64,
    /// Output tokens over all calls.
    pub output_tokens: u64,
    /// Input plus output tokens.
    pub total_tokens: u64,
    /// Cost in USD over the calls whose cost is known; absent when none is.
    pub cost_usd: Option<f64>,
    /// Whether the session is whole or may be missing events (see [`SessionStatus`]).
    pub status: SessionStatus,
    /// The store `seq` of its last stored event.
    pub last_seq: u64,
}

/// Figures for one model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelStats {
    /// The model (`unknown` when the events did not say).
    pub model: String,
    /// LLM calls made.
    pub calls: u64,
    /// Calls that ended in an error.
    pub failures: u64,
    /// Time to first token, median, in ms.
    pub ttft_p50_ms: Option<f64>,
    /// Time to first token, 95th percentile, in ms.
    pub ttft_p95_ms: Option<f64>,
    /// Call latency, median, in ms.
    pub latency_p50_ms: Option<f64>,
    /// Call latency, 95th percentile, in ms.
    pub latency_p95_ms: Option<f64>,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Output tokens per second of generation (see the module documentation).
    pub tokens_per_s: Option<f64>,
    /// Cost in USD over calls whose cost is known; absent when none is.
    pub cost_usd: Option<f64>,
}

/// Figures for one tool.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolStats {
    /// The tool's name.
    pub tool: String,
    /// Calls made.
    pub calls: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Execution time, median, in ms.
    pub time_p50_ms: Option<f64>,
    /// Execution time, 95th percentile, in ms.
    pub time_p95_ms: Option<f64>,
}

/// Statistics over one session or the whole store.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    /// The session, or `None` for the whole store.
    pub session_id: Option<String>,
    /// Per model, by model name.
    pub models: Vec<ModelStats>,
    /// Per tool, by tool name.
    pub tools: Vec<ToolStats>,
    /// The sessions covered that may be missing events (interrupted or incomplete), with a
    /// sentence each saying what is missing.
    pub gaps: Vec<String>,
}

/// One LLM call as reconstructed from events.
#[derive(Clone, Debug, Default, PartialEq)]
struct LlmCall {
    model: Option<String>,
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: Option<f64>,
    latency_ms: Option<f64>,
    ttft_ms: Option<f64>,
    failed: bool,
}

/// One tool call as reconstructed from events.
#[derive(Clone, Debug, Default, PartialEq)]
struct ToolCall {
    tool: String,
    success: bool,
    time_ms: Option<f64>,
}

/// A request of the provider-stream layer, between its start and its end.
#[derive(Default)]
struct Request {
    started_us: Option<i64>,
    model: Option<String>,
}

/// The calls of one session, per layer, gathered event by event.
#[derive(Default)]
pub(crate) struct SessionCalls {
    stream: Vec<LlmCall>,
    react: Vec<LlmCall>,
    plugin: Vec<LlmCall>,
    plugin_tools: Vec<ToolCall>,
    react_tools: Vec<ToolCall>,
    /// Stream requests started and not ended yet.
    open: HashMap<String, Request>,
}

fn ms_between(from: Option<i64>, to: Option<i64>) -> Option<f64> {
    let (from, to) = (from?, to?);
    (to >= from).then(|| (to - from) as f64 / 1000.0)
}

impl SessionCalls {
    /// Takes in one stored event of [`CALL_TYPES`], decoded with `registry`.
    /// `first_output` gives a request's first output time (`None` when not wanted).
    pub(crate) fn push(
        &mut self,
        stored: &StoredEvent,
        registry: &Registry,
        first_output: &dyn Fn(&str) -> Option<i64>,
    ) -> Result<()> {
        let event: Box<dyn DynEvent> = stored.decode(registry)?;
        let ts = stored.row.timestamp_us;
        let any = event.as_any();
        if let Some(e) = any.downcast_ref::<LLMRequestStartedEvent>() {
            let request = self.open.entry(e.request_id.clone()).or_default();
            request.started_us.get_or_insert(ts);
            if request.model.is_none() {
                request.model = e.model.clone();
            }
        } else if let Some(e) = any.downcast_ref::<StreamFinishEvent>() {
            let request = self.open.remove(&e.request_id).unwrap_or_default();
            self.stream.push(LlmCall {
                model: non_empty(&e.model).or(request.model),
                input_tokens: e.input_tokens,
                output_tokens: e.output_tokens,
                cost_usd: e.cost_usd,
                latency_ms: ms_between(request.started_us, Some(ts)),
                ttft_ms: ms_between(request.started_us, first_output(&e.request_id)),
                failed: false,
            });
        } else if let Some(e) = any.downcast_ref::<StreamErrorEvent>() {
            let request = self.open.remove(&e.request_id).unwrap_or_default();
            self.stream.push(LlmCall {
                model: request.model,
                latency_ms: ms_between(request.started_us, Some(ts)),
                ttft_ms: ms_between(request.started_us, first_output(&e.request_id)),
                failed: true,
                ..LlmCall::default()
            });
        } else if let Some(e) = any.downcast_ref::<LLMCallEndEvent>() {
            self.react.push(LlmCall {
                model: e.model.clone(),
                input_tokens: e.usage.input_tokens,
                output_tokens: e.usage.output_tokens,
                cost_usd: e.cost_usd,
                latency_ms: Some(e.execution_time_ms),
                ttft_ms: e.time_to_first_token_ms,
                failed: false,
            });
        } else if let Some(e) = any.downcast_ref::<LLMCallErrorEvent>() {
            self.react.push(LlmCall {
                latency_ms: Some(e.execution_time_ms),
                failed: true,
                ..LlmCall::default()
            });
        } else if let Some(e) = any.downcast_ref::<LLMResponseCompletedEvent>() {
            self.plugin.push(LlmCall {
                model: e.model.clone(),
                input_tokens: e.input_tokens.unwrap_or(0),
                output_tokens: e.output_tokens.unwrap_or(0),
                cost_usd: None,
                latency_ms: e.latency_ms,
                ttft_ms: e.time_to_first_token_ms,
                failed: false,
            });
        } else if any.downcast_ref::<LLMErrorEvent>().is_some() {
            self.plugin.push(LlmCall {
                failed: true,
                ..LlmCall::default()
            });
        } else if let Some(e) = any.downcast_ref::<ToolEndEvent>() {
            self.plugin_tools.push(ToolCall {
                tool: non_empty(&e.tool_name).unwrap_or_else(|| "unknown".into()),
                success: e.success,
                time_ms: e.execution_time_ms,
            });
        } else if let Some(e) = any.downcast_ref::<ToolCallEndEvent>() {
            self.react_tools.push(ToolCall {
                tool: non_empty(&e.tool_name).unwrap_or_else(|| "unknown".into()),
                success: e.success,
                time_ms: Some(e.execution_time_ms),
            });
        }
        Ok(())
    }

    /// The session's LLM calls, from its most detailed layer.
    fn llm_calls(&self) -> &[LlmCall] {
        if !self.stream.is_empty() {
            &self.stream
        } else if !self.react.is_empty() {
            &self.react
        } else {
            &self.plugin
        }
    }

    /// The session's tool calls, from its most detailed layer.
    fn tool_calls(&self) -> &[ToolCall] {
        if !self.plugin_tools.is_empty() {
            &self.plugin_tools
        } else {
            &self.react_tools
        }
    }
}

/// The `p`-th percentile (0–100) by nearest rank; `None` for no values.
pub fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

fn sum_cost<'a>(calls: impl Iterator<Item = &'a LlmCall>) -> Option<f64> {
    calls
        .filter_map(|c| c.cost_usd)
        .fold(None, |acc, c| Some(acc.unwrap_or(0.0) + c))
}

/// One session's summary from its counts and its call totals (`None`: no calls).
pub(crate) fn summarize(counts: &SessionCounts, totals: Option<&SessionTotals>) -> SessionSummary {
    let empty = LayerTotals::default();
    let calls = totals.map_or(&empty, SessionTotals::calls);
    SessionSummary {
        session_id: counts.session_id.clone(),
        first_event: micros_to_datetime(counts.first_us),
        last_event: micros_to_datetime(counts.last_us),
        events: counts.events,
        models: calls.models.clone(),
        llm_calls: calls.calls,
        input_tokens: calls.input_tokens,
        output_tokens: calls.output_tokens,
        total_tokens: calls.input_tokens.saturating_add(calls.output_tokens),
        cost_usd: calls.cost_usd,
        status: counts.status.clone(),
        last_seq: counts.last_seq,
    }
}

/// Per-model and per-tool figures, gathered session by session.
#[derive(Default)]
pub(crate) struct StatsBuilder {
    by_model: BTreeMap<String, Vec<LlmCall>>,
    by_tool: BTreeMap<String, Vec<ToolCall>>,
}

impl StatsBuilder {
    /// Adds one session's calls (from its most detailed layers).
    pub(crate) fn add(&mut self, session: &SessionCalls) {
        for call in session.llm_calls() {
            let model = call.model.clone().unwrap_or_else(|| "unknown".into());
            self.by_model.entry(model).or_default().push(call.clone());
        }
        for call in session.tool_calls() {
            self.by_tool
                .entry(call.tool.clone())
                .or_default()
                .push(call.clone());
        }
    }

    pub(crate) fn finish(self, session_id: Option<String>, gaps: Vec<String>) -> Stats {
        let models = self
            .by_model
            .into_iter()
            .map(|(model, calls)| {
                let mut ttft: Vec<f64> = calls.iter().filter_map(|c| c.ttft_ms).collect();
                let mut latency: Vec<f64> = calls.iter().filter_map(|c| c.latency_ms).collect();
                let (mut out_tokens, mut gen_ms) = (0u64, 0.0f64);
                for c in calls.iter().filter(|c| !c.failed) {
                    if let Some(latency) = c.latency_ms {
                        let generation = match c.ttft_ms {
                            Some(ttft) if latency > ttft => latency - ttft,
                            _ => latency,
                        };
                        out_tokens = out_tokens.saturating_add(c.output_tokens);
                        gen_ms += generation;
                    }
                }
                ModelStats {
                    model,
                    calls: calls.len() as u64,
                    failures: calls.iter().filter(|c| c.failed).count() as u64,
                    ttft_p50_ms: percentile(&mut ttft, 50.0),
                    ttft_p95_ms: percentile(&mut ttft, 95.0),
                    latency_p50_ms: percentile(&mut latency, 50.0),
                    latency_p95_ms: percentile(&mut latency, 95.0),
                    input_tokens: calls
                        .iter()
                        .fold(0u64, |s, c| s.saturating_add(c.input_tokens)),
                    output_tokens: calls
                        .iter()
                        .fold(0u64, |s, c| s.saturating_add(c.output_tokens)),
                    tokens_per_s: (gen_ms > 0.0).then(|| out_tokens as f64 * 1000.0 / gen_ms),
                    cost_usd: sum_cost(calls.iter()),
                }
            })
            .collect();
        let tools = self
            .by_tool
            .into_iter()
            .map(|(tool, calls)| {
                let mut times: Vec<f64> = calls.iter().filter_map(|c| c.time_ms).collect();
                ToolStats {
                    tool,
                    calls: calls.len() as u64,
                    failures: calls.iter().filter(|c| !c.success).count() as u64,
                    time_p50_ms: percentile(&mut times, 50.0),
                    time_p95_ms: percentile(&mut times, 95.0),
                }
            })
            .collect();
        Stats {
            session_id,
            models,
            tools,
            gaps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v = vec![5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(percentile(&mut v, 50.0), Some(3.0));
        assert_eq!(percentile(&mut v, 95.0), Some(5.0));
        assert_eq!(percentile(&mut v, 0.0), Some(1.0));
        assert_eq!(percentile(&mut [], 50.0), None);
    }
}
