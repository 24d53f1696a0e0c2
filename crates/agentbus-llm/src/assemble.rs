//! [`ResponseAssembler`]: the state every protocol decoder shares. It turns text,
//! reasoning and tool-call fragments into [`StreamEvent`]s, keeps the usage, and enforces
//! the contract: exactly one terminal event, nothing after it.

use std::sync::Arc;

use agentbus_events::stream::{
    Finish, ReasoningDelta, StreamError, StreamErrorKind, StreamEvent, TextDelta, TextEnd,
    TextSnapshot, ToolCall, ToolCallDelta,
};

use crate::limits::{StreamLimits, limit_error};
use crate::pricing::{InputCounting, PricingTable, TokenCounts};

/// A tool call being streamed.
#[derive(Debug, Default)]
struct PendingToolCall {
    index: u32,
    id: String,
    name: String,
    arguments: String,
    delivered: bool,
}

/// Usage as the provider reported it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    pub cache_creation_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
}

/// The shared decoding state of one response.
pub(crate) struct ResponseAssembler {
    text: TextSnapshot,
    reasoning_open: bool,
    tools: Vec<PendingToolCall>,
    pub usage: Usage,
    pub stop_reason: Option<String>,
    pub model: String,
    pub refusal: String,
    pub incomplete_reason: Option<String>,
    /// Provider-reported cost (OpenRouter's `usage.cost`), preferred to the table.
    pub reported_cost: Option<f64>,
    pricing: Option<Arc<PricingTable>>,
    counting: InputCounting,
    terminated: bool,
    produced_output: bool,
    limits: StreamLimits,
    /// Output bytes received so far (text, reasoning, refusal, tool calls).
    held_bytes: usize,
}

impl ResponseAssembler {
    pub fn new(
        pricing: Option<Arc<PricingTable>>,
        counting: InputCounting,
        limits: StreamLimits,
    ) -> Self {
        Self {
            text: TextSnapshot::new(),
            reasoning_open: false,
            tools: Vec::new(),
            usage: Usage::default(),
            stop_reason: None,
            model: String::new(),
            refusal: String::new(),
            incomplete_reason: None,
            reported_cost: None,
            pricing,
            counting,
            terminated: false,
            produced_output: false,
            limits,
            held_bytes: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> StreamLimits {
        self.limits
    }

    /// Counts `bytes` more output against [`StreamLimits::max_response_bytes`]; past it,
    /// ends the stream with a limit error, frees what was held and returns `false`.
    fn admit(&mut self, bytes: usize, out: &mut Vec<StreamEvent>) -> bool {
        self.held_bytes = self.held_bytes.saturating_add(bytes);
        if self.held_bytes <= self.limits.max_response_bytes {
            return true;
        }
        let limit = self.limits.max_response_bytes;
        self.fail(
            limit_error(format!(
                "the response is larger than {limit} bytes (the limit, max_response_bytes)"
            )),
            out,
        );
        self.text = TextSnapshot::new();
        self.tools = Vec::new();
        self.refusal = String::new();
        false
    }

    /// Whether the terminal event was emitted.
    pub fn is_terminated(&self) -> bool {
        self.terminated
    }

    /// Whether any content (text, reasoning, tool fragment) was emitted.
    pub fn produced_output(&self) -> bool {
        self.produced_output
    }

    /// Sets the model name if none was seen yet.
    pub fn set_model(&mut self, model: &str) {
        if self.model.is_empty() && !model.is_empty() {
            self.model.push_str(model);
        }
    }

    pub fn text(&mut self, content: &str, out: &mut Vec<StreamEvent>) {
        if content.is_empty() || self.terminated || !self.admit(content.len(), out) {
            return;
        }
        self.reasoning_open = false;
        self.produced_output = true;
        out.push(StreamEvent::TextDelta(TextDelta {
            content: content.to_owned(),
            snapshot: self.text.push(content),
        }));
    }

    /// A reasoning fragment; opens a reasoning block first if none is open.
    pub fn reasoning(&mut self, content: &str, out: &mut Vec<StreamEvent>) {
        if content.is_empty() || self.terminated || !self.admit(content.len(), out) {
            return;
        }
        self.produced_output = true;
        if !self.reasoning_open {
            self.reasoning_open = true;
            out.push(StreamEvent::ReasoningStart);
        }
        out.push(StreamEvent::ReasoningDelta(ReasoningDelta {
            content: content.to_owned(),
            signature: None,
        }));
    }

    /// The signature of the current reasoning block (Anthropic `signature_delta`).
    pub fn reasoning_signature(&mut self, signature: &str, out: &mut Vec<StreamEvent>) {
        if signature.is_empty() || self.terminated || !self.admit(signature.len(), out) {
            return;
        }
        out.push(StreamEvent::ReasoningDelta(ReasoningDelta {
            content: String::new(),
            signature: Some(signature.to_owned()),
        }));
    }

    /// Starts a new reasoning block (Anthropic `thinking` block start).
    pub fn start_reasoning_block(&mut self, out: &mut Vec<StreamEvent>) {
        if self.terminated {
            return;
        }
        self.produced_output = true;
        self.reasoning_open = true;
        out.push(StreamEvent::ReasoningStart);
    }

    /// Ends the current reasoning block, if any.
    pub fn end_reasoning_block(&mut self) {
        self.reasoning_open = false;
    }

    pub fn refusal(&mut self, content: &str, out: &mut Vec<StreamEvent>) {
        if self.terminated || !self.admit(content.len(), out) {
            return;
        }
        self.produced_output = true;
        self.refusal.push_str(content);
    }

    /// The slot of call `index`, opening it if new; `None` (and the stream ended) when
    /// that would open more than [`StreamLimits::max_tool_calls`].
    fn tool_slot(&mut self, index: u32, out: &mut Vec<StreamEvent>) -> Option<usize> {
        // Few calls per response: a linear scan beats hashing.
        if let Some(slot) = self.tools.iter().position(|t| t.index == index) {
            return Some(slot);
        }
        if self.tools.len() >= self.limits.max_tool_calls {
            let limit = self.limits.max_tool_calls;
            self.fail(
                limit_error(format!(
                    "the response opens more than {limit} tool calls (the limit, max_tool_calls)"
                )),
                out,
            );
            self.tools = Vec::new();
            return None;
        }
        self.tools.push(PendingToolCall {
            index,
            ..PendingToolCall::default()
        });
        Some(self.tools.len() - 1)
    }

    /// The index of a known call with this id.
    pub fn tool_index_by_id(&self, id: &str) -> Option<u32> {
        self.tools.iter().find(|t| t.id == id).map(|t| t.index)
    }

    /// The index of the most recently started call.
    pub fn last_tool_index(&self) -> Option<u32> {
        self.tools.last().map(|t| t.index)
    }

    /// A fresh index past every known one (saturating: a server that used index
    /// `u32::MAX` gets its last call continued, never an overflow).
    pub fn next_tool_index(&self) -> u32 {
        self.tools
            .iter()
            .map(|t| t.index.saturating_add(1))
            .max()
            .unwrap_or(0)
    }

    /// A tool-call fragment: `id`/`name` when this fragment carries them.
    pub fn tool_fragment(
        &mut self,
        index: u32,
        id: Option<&str>,
        name: Option<&str>,
        arguments: &str,
        out: &mut Vec<StreamEvent>,
    ) {
        if self.terminated {
            return;
        }
        let id = id.filter(|s| !s.is_empty());
        let name = name.filter(|s| !s.is_empty());
        let size = arguments.len() + id.map_or(0, str::len) + name.map_or(0, str::len);
        if !self.admit(size, out) {
            return;
        }
        let Some(slot) = self.tool_slot(index, out) else {
            return;
        };
        self.reasoning_open = false;
        self.produced_output = true;
        let call = &mut self.tools[slot];
        if let Some(id) = id
            && call.id.is_empty()
        {
            call.id.push_str(id);
        }
        if let Some(name) = name
            && call.name.is_empty()
        {
            call.name.push_str(name);
        }
        call.arguments.push_str(arguments);
        if id.is_none() && name.is_none() && arguments.is_empty() {
            return;
        }
        out.push(StreamEvent::ToolCallDelta(ToolCallDelta {
            index,
            id: id.map(str::to_owned),
            name: name.map(str::to_owned),
            arguments_delta: arguments.to_owned(),
        }));
    }

    /// Replaces the arguments of call `index` with the provider's final string (the
    /// Responses API's `arguments.done`), when the deltas were incomplete.
    pub fn tool_arguments_final(
        &mut self,
        index: u32,
        arguments: &str,
        out: &mut Vec<StreamEvent>,
    ) {
        if self.terminated {
            return;
        }
        let Some(slot) = self.tool_slot(index, out) else {
            return;
        };
        if self.tools[slot].arguments != arguments {
            let grown = arguments
                .len()
                .saturating_sub(self.tools[slot].arguments.len());
            if !self.admit(grown, out) {
                return;
            }
            self.tools[slot].arguments.clear();
            self.tools[slot].arguments.push_str(arguments);
        }
    }

    /// Delivers call `index` as a complete [`ToolCall`] (once).
    pub fn complete_tool(&mut self, index: u32, out: &mut Vec<StreamEvent>) {
        if self.terminated {
            return;
        }
        if let Some(call) = self
            .tools
            .iter_mut()
            .find(|t| t.index == index && !t.delivered)
        {
            call.delivered = true;
            out.push(StreamEvent::ToolCall(finished_call(call)));
        }
    }

    /// Delivers every call not yet delivered, by index.
    fn complete_all_tools(&mut self, out: &mut Vec<StreamEvent>) {
        let mut pending: Vec<&mut PendingToolCall> =
            self.tools.iter_mut().filter(|t| !t.delivered).collect();
        pending.sort_by_key(|t| t.index);
        for call in pending {
            call.delivered = true;
            out.push(StreamEvent::ToolCall(finished_call(call)));
        }
    }

    /// Ends the stream normally: `TextEnd` (when there was text), the pending tool calls,
    /// then `Finish`.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if self.terminated {
            return;
        }
        if !self.text.is_empty() {
            out.push(StreamEvent::TextEnd(TextEnd {
                full_text: std::mem::take(&mut self.text).to_string(),
            }));
        }
        self.complete_all_tools(out);
        let input = self.usage.input_tokens.unwrap_or(0);
        let output = self.usage.output_tokens.unwrap_or(0);
        let cost_usd = self.reported_cost.or_else(|| {
            let pricing = self.pricing.as_ref()?;
            // No usage reported: the cost is unknown, not zero.
            self.usage.input_tokens.or(self.usage.output_tokens)?;
            pricing.cost(
                &self.model,
                TokenCounts {
                    input,
                    output,
                    cached: self.usage.cached_tokens.unwrap_or(0),
                    cache_creation: self.usage.cache_creation_tokens.unwrap_or(0),
                },
                self.counting,
            )
        });
        out.push(StreamEvent::Finish(Finish {
            stop_reason: self.stop_reason.take().unwrap_or_default(),
            input_tokens: input,
            output_tokens: output,
            cached_tokens: self.usage.cached_tokens,
            cache_creation_tokens: self.usage.cache_creation_tokens,
            reasoning_tokens: self.usage.reasoning_tokens,
            cost_usd,
            model: self.model.clone(),
            refusal: (!self.refusal.is_empty()).then(|| self.refusal.clone()),
            incomplete_reason: self.incomplete_reason.take(),
        }));
        self.terminated = true;
    }

    /// Ends the stream with `error`. Pending tool calls are not delivered (they are
    /// incomplete); the message says how many were dropped.
    pub fn fail(&mut self, mut error: StreamError, out: &mut Vec<StreamEvent>) {
        if self.terminated {
            return;
        }
        let pending = self.tools.iter().filter(|t| !t.delivered).count();
        if pending > 0 {
            error.message.push_str(&format!(
                " ({pending} incomplete tool call(s) not delivered)"
            ));
        }
        out.push(StreamEvent::Error(error));
        self.terminated = true;
    }

    /// The body ended without the protocol's end marker: a cut stream, recoverable.
    pub fn fail_truncated(&mut self, out: &mut Vec<StreamEvent>) {
        self.fail(
            StreamError::new(
                StreamErrorKind::Network,
                "the stream ended before the response was complete",
            ),
            out,
        );
    }
}

fn finished_call(call: &PendingToolCall) -> ToolCall {
    let (tool_input, arguments_raw) = parse_arguments(&call.arguments);
    ToolCall {
        tool_use_id: call.id.clone(),
        tool_name: call.name.clone(),
        tool_input,
        arguments_raw,
    }
}

/// Parses a streamed argument string: empty → `{}`, valid JSON → the value, anything
/// else → `null` plus the raw string.
pub(crate) fn parse_arguments(raw: &str) -> (serde_json::Value, Option<String>) {
    if raw.trim().is_empty() {
        return (serde_json::Value::Object(serde_json::Map::new()), None);
    }
    match serde_json::from_str(raw) {
        Ok(value) => (value, None),
        Err(_) => (serde_json::Value::Null, Some(raw.to_owned())),
    }
}
