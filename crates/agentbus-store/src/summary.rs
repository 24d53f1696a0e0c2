//! Session summaries and per-model / per-tool statistics, computed from stored events.
//!
//! **Where the numbers come from.** One LLM call can show up in several layers at once (the
//! provider stream, the Vision Agents LLM events, the agent loop). To count each call once,
//! every session is read from the most detailed layer it has:
//! 1. the provider stream (`stream.finish` / `stream.error`, one per call, keyed by
//!    `request_id`): tokens, cost and model from `stream.finish`; TTFT and latency from the
//!    matching `plugin.llm_response_completed` when it carries them, else from timestamps
//!    (`plugin.llm_request_started` → first `stream.*_delta` → `stream.finish`);
//! 2. else the agent loop (`react.llm_call_end` / `react.llm_call_error`);
//! 3. else the Vision Agents LLM events (`plugin.llm_response_completed` / `plugin.llm_error`).
//!
//! Tools likewise: `plugin.llm.tool.end` when the session has it, else `react.tool_call_end`.
//! Tokens per second is output tokens divided by generation time (latency minus TTFT when
//! both are known, else latency), over the calls where it is known.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::backend::SessionCounts;
use crate::row::{StoredEvent, micros_to_datetime};

/// The event types the summaries read.
pub(crate) const SOURCE_TYPES: &[&str] = &[
    STREAM_FINISH,
    STREAM_ERROR,
    REQUEST_STARTED,
    RESPONSE_COMPLETED,
    LLM_ERROR,
    REACT_CALL_END,
    REACT_CALL_ERROR,
    TOOL_END,
    REACT_TOOL_END,
    "stream.text_delta",
    "stream.reasoning_delta",
    "stream.tool_call_delta",
    "stream.tool_call",
];

const STREAM_FINISH: &str = "stream.finish";
const STREAM_ERROR: &str = "stream.error";
const REQUEST_STARTED: &str = "plugin.llm_request_started";
const RESPONSE_COMPLETED: &str = "plugin.llm_response_completed";
const LLM_ERROR: &str = "plugin.llm_error";
const REACT_CALL_END: &str = "react.llm_call_end";
const REACT_CALL_ERROR: &str = "react.llm_call_error";
const TOOL_END: &str = "plugin.llm.tool.end";
const REACT_TOOL_END: &str = "react.tool_call_end";

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
}

/// One LLM call as reconstructed from events.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LlmCall {
    pub model: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: Option<f64>,
    pub latency_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub failed: bool,
}

/// One tool call as reconstructed from events.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ToolCall {
    pub tool: String,
    pub success: bool,
    pub time_ms: Option<f64>,
}

/// The source events of one session, parsed.
#[derive(Default)]
pub(crate) struct SessionEvents {
    events: Vec<(String, i64, Value)>,
}

impl SessionEvents {
    pub(crate) fn push(&mut self, event: &StoredEvent) {
        // Rows the store wrote are JSON; a row that is not (hand-edited) is skipped.
        if let Ok(value) = serde_json::from_str::<Value>(&event.row.body) {
            self.events
                .push((event.row.event_type.clone(), event.row.timestamp_us, value));
        }
    }

    fn has(&self, types: &[&str]) -> bool {
        self.events
            .iter()
            .any(|(t, _, _)| types.contains(&t.as_str()))
    }

    fn of<'a>(&'a self, event_type: &'a str) -> impl Iterator<Item = (i64, &'a Value)> + 'a {
        self.events
            .iter()
            .filter(move |(t, _, _)| t == event_type)
            .map(|(_, ts, v)| (*ts, v))
    }

    pub(crate) fn llm_calls(&self) -> Vec<LlmCall> {
        if self.has(&[STREAM_FINISH, STREAM_ERROR]) {
            self.stream_calls()
        } else if self.has(&[REACT_CALL_END, REACT_CALL_ERROR]) {
            let mut calls: Vec<LlmCall> = self
                .of(REACT_CALL_END)
                .map(|(_, v)| LlmCall {
                    model: string(v, "model"),
                    input_tokens: uint(&v["usage"], "input_tokens"),
                    output_tokens: uint(&v["usage"], "output_tokens"),
                    cost_usd: float(v, "cost_usd"),
                    latency_ms: float(v, "execution_time_ms"),
                    ttft_ms: float(v, "time_to_first_token_ms"),
                    failed: false,
                })
                .collect();
            calls.extend(self.of(REACT_CALL_ERROR).map(|(_, v)| LlmCall {
                model: string(v, "model"),
                latency_ms: float(v, "execution_time_ms"),
                failed: true,
                ..LlmCall::default()
            }));
            calls
        } else {
            let mut calls: Vec<LlmCall> = self
                .of(RESPONSE_COMPLETED)
                .map(|(_, v)| LlmCall {
                    model: string(v, "model"),
                    input_tokens: uint(v, "input_tokens"),
                    output_tokens: uint(v, "output_tokens"),
                    cost_usd: float(v, "cost_usd"),
                    latency_ms: float(v, "latency_ms"),
                    ttft_ms: float(v, "time_to_first_token_ms"),
                    failed: false,
                })
                .collect();
            calls.extend(self.of(LLM_ERROR).map(|(_, v)| LlmCall {
                model: string(v, "model"),
                failed: true,
                ..LlmCall::default()
            }));
            calls
        }
    }

    fn stream_calls(&self) -> Vec<LlmCall> {
        #[derive(Default)]
        struct Request<'a> {
            started_us: Option<i64>,
            first_output_us: Option<i64>,
            model: Option<String>,
            completed: Option<&'a Value>,
        }
        let mut requests: HashMap<String, Request<'_>> = HashMap::new();
        for (event_type, ts, value) in &self.events {
            let Some(id) = string(value, "request_id") else {
                continue;
            };
            let request = requests.entry(id).or_default();
            match event_type.as_str() {
                REQUEST_STARTED => {
                    request.started_us.get_or_insert(*ts);
                    request.model = request.model.take().or_else(|| string(value, "model"));
                }
                RESPONSE_COMPLETED => request.completed = Some(value),
                t if t.starts_with("stream.") && t != STREAM_FINISH && t != STREAM_ERROR => {
                    request.first_output_us.get_or_insert(*ts);
                }
                _ => {}
            }
        }
        let mut calls = Vec::new();
        for (event_type, ts, value) in &self.events {
            let finished = event_type == STREAM_FINISH;
            if !finished && event_type != STREAM_ERROR {
                continue;
            }
            let request = string(value, "request_id").and_then(|id| requests.get(&id));
            let completed = request.and_then(|r| r.completed);
            let from_start = |until: Option<i64>| {
                let started = request.and_then(|r| r.started_us)?;
                let until = until?;
                (until >= started).then(|| (until - started) as f64 / 1000.0)
            };
            let latency_ms = completed
                .and_then(|c| float(c, "latency_ms"))
                .or_else(|| from_start(Some(*ts)));
            let ttft_ms = completed
                .and_then(|c| float(c, "time_to_first_token_ms"))
                .or_else(|| from_start(request.and_then(|r| r.first_output_us)));
            let model = string(value, "model")
                .or_else(|| request.and_then(|r| r.model.clone()))
                .or_else(|| completed.and_then(|c| string(c, "model")));
            calls.push(LlmCall {
                model,
                input_tokens: uint(value, "input_tokens"),
                output_tokens: uint(value, "output_tokens"),
                cost_usd: float(value, "cost_usd"),
                latency_ms,
                ttft_ms,
                failed: !finished,
            });
        }
        calls
    }

    pub(crate) fn tool_calls(&self) -> Vec<ToolCall> {
        let source = if self.has(&[TOOL_END]) {
            TOOL_END
        } else {
            REACT_TOOL_END
        };
        self.of(source)
            .map(|(_, v)| ToolCall {
                tool: string(v, "tool_name").unwrap_or_else(|| "unknown".into()),
                success: v.get("success").and_then(Value::as_bool).unwrap_or(true),
                time_ms: float(v, "execution_time_ms"),
            })
            .collect()
    }
}

fn string(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn uint(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn float(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
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

fn sum_cost(costs: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    costs
        .flatten()
        .fold(None, |acc, c| Some(acc.unwrap_or(0.0) + c))
}

pub(crate) fn summarize(counts: &SessionCounts, events: Option<&SessionEvents>) -> SessionSummary {
    let calls = events.map(SessionEvents::llm_calls).unwrap_or_default();
    let mut models: Vec<String> = Vec::new();
    for model in calls.iter().filter_map(|c| c.model.as_ref()) {
        if !models.contains(model) {
            models.push(model.clone());
        }
    }
    let input_tokens = calls.iter().map(|c| c.input_tokens).sum();
    let output_tokens = calls.iter().map(|c| c.output_tokens).sum();
    SessionSummary {
        session_id: counts.session_id.clone(),
        first_event: micros_to_datetime(counts.first_us),
        last_event: micros_to_datetime(counts.last_us),
        events: counts.events,
        models,
        llm_calls: calls.len() as u64,
        input_tokens,
        output_tokens,
        total_tokens: input_tokens + output_tokens,
        cost_usd: sum_cost(calls.iter().map(|c| c.cost_usd)),
    }
}

pub(crate) fn stats<'a>(
    session_id: Option<String>,
    sessions: impl Iterator<Item = &'a SessionEvents>,
) -> Stats {
    let mut by_model: BTreeMap<String, Vec<LlmCall>> = BTreeMap::new();
    let mut by_tool: BTreeMap<String, Vec<ToolCall>> = BTreeMap::new();
    for events in sessions {
        for call in events.llm_calls() {
            let model = call.model.clone().unwrap_or_else(|| "unknown".into());
            by_model.entry(model).or_default().push(call);
        }
        for call in events.tool_calls() {
            by_tool.entry(call.tool.clone()).or_default().push(call);
        }
    }
    let models = by_model
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
                    out_tokens += c.output_tokens;
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
                input_tokens: calls.iter().map(|c| c.input_tokens).sum(),
                output_tokens: calls.iter().map(|c| c.output_tokens).sum(),
                tokens_per_s: (gen_ms > 0.0).then(|| out_tokens as f64 * 1000.0 / gen_ms),
                cost_usd: sum_cost(calls.iter().map(|c| c.cost_usd)),
            }
        })
        .collect();
    let tools = by_tool
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
