//! OpenAI Chat Completions streaming (`chat.completion.chunk`), as OpenAI and the
//! servers that copy it send it.
//!
//! - `choices[0].delta.content` → text; `delta.reasoning_content`, or else
//!   `delta.reasoning` → reasoning; `delta.refusal` → the refusal.
//! - `delta.tool_calls[]` are assembled by `index` (fragments of parallel calls may
//!   interleave; later fragments carry no id). A server that omits `index` gets one per
//!   new id, and id-less fragments go to the latest call.
//! - `finish_reason`: the last non-null one. `usage`: the last non-null one, whether it
//!   rides on the finish chunk or on a later chunk with `choices: []`/`null`.
//! - `data: [DONE]` ends the stream. A body that ends without `[DONE]` after a
//!   `finish_reason` is accepted; without a `finish_reason` it is a truncated stream.
//! - `{"error": {...}}` in a chunk is an in-band error.

use std::borrow::Cow;
use std::sync::Arc;

use agentbus_events::stream::{StreamError, StreamEvent};
use serde::Deserialize;

use super::{ProtocolDecoder, parse_json};
use crate::assemble::ResponseAssembler;
use crate::errors::in_band_error;
use crate::limits::StreamLimits;
use crate::pricing::{InputCounting, PricingTable};
use crate::sse::SseEvent;

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(borrow, default)]
    error: Option<ErrorObject<'a>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: u32,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCallFragment<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallFragment<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<FunctionFragment<'a>>,
}

#[derive(Deserialize)]
struct FunctionFragment<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
    /// OpenRouter reports the cost of the call, in USD.
    #[serde(default)]
    cost: Option<f64>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

#[derive(Deserialize)]
pub(crate) struct ErrorObject<'a> {
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type")]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default)]
    pub code: Option<serde_json::Value>,
}

impl ErrorObject<'_> {
    pub fn to_stream_error(&self) -> StreamError {
        let code = match &self.code {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        in_band_error(
            self.kind.as_deref().unwrap_or(""),
            code.as_deref(),
            self.message.as_deref().unwrap_or(""),
        )
    }
}

/// Decoder state of one Chat Completions stream.
pub(crate) struct ChatCompletionsDecoder {
    response: ResponseAssembler,
}

impl ChatCompletionsDecoder {
    pub fn new(pricing: Option<Arc<PricingTable>>, limits: StreamLimits) -> Self {
        Self {
            response: ResponseAssembler::new(pricing, InputCounting::IncludesCached, limits),
        }
    }

    fn on_chunk(&mut self, chunk: Chunk<'_>, out: &mut Vec<StreamEvent>) {
        let response = &mut self.response;
        if let Some(error) = chunk.error {
            response.fail(error.to_stream_error(), out);
            return;
        }
        if let Some(model) = &chunk.model {
            response.set_model(model);
        }
        for choice in chunk.choices.into_iter().flatten() {
            if choice.index != 0 {
                continue;
            }
            if let Some(delta) = choice.delta {
                if let Some(reasoning) = delta
                    .reasoning_content
                    .as_deref()
                    .or(delta.reasoning.as_deref())
                {
                    response.reasoning(reasoning, out);
                }
                if let Some(content) = &delta.content {
                    response.text(content, out);
                }
                if let Some(refusal) = &delta.refusal {
                    response.refusal(refusal, out);
                }
                for (position, fragment) in delta.tool_calls.into_iter().flatten().enumerate() {
                    let id = fragment.id.as_deref();
                    let index = match fragment.index {
                        Some(index) => index,
                        // No index: a known id continues its call, a new id starts one,
                        // no id continues the latest call.
                        None => match id.filter(|s| !s.is_empty()) {
                            Some(id) => response
                                .tool_index_by_id(id)
                                .unwrap_or_else(|| response.next_tool_index()),
                            None => response
                                .last_tool_index()
                                .unwrap_or(u32::try_from(position).unwrap_or(u32::MAX)),
                        },
                    };
                    let (name, arguments) = match &fragment.function {
                        Some(f) => (f.name.as_deref(), f.arguments.as_deref().unwrap_or("")),
                        None => (None, ""),
                    };
                    response.tool_fragment(index, id, name, arguments, out);
                }
            }
            if let Some(reason) = choice.finish_reason {
                response.stop_reason = Some(reason.into_owned());
            }
        }
        if let Some(usage) = chunk.usage {
            // The last usage wins: servers that send it twice send the same counts.
            response.usage.input_tokens = usage.prompt_tokens;
            response.usage.output_tokens = usage.completion_tokens;
            response.usage.cached_tokens =
                usage.prompt_tokens_details.and_then(|d| d.cached_tokens);
            response.usage.reasoning_tokens = usage
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens);
            // A cost must be a finite, non-negative amount; anything else is ignored.
            if let Some(cost) = usage.cost.filter(|c| c.is_finite() && *c >= 0.0) {
                response.reported_cost = Some(cost);
            }
        }
    }
}

impl ProtocolDecoder for ChatCompletionsDecoder {
    fn on_event(&mut self, event: SseEvent<'_>, out: &mut Vec<StreamEvent>) {
        if self.response.is_terminated() {
            return;
        }
        let data = event.data.trim_ascii();
        if data == "[DONE]" {
            self.response.finish(out);
            return;
        }
        if data.is_empty() {
            return;
        }
        match parse_json::<Chunk<'_>>(data) {
            Ok(chunk) => self.on_chunk(chunk, out),
            Err(error) => self.response.fail(error, out),
        }
    }

    fn on_end(&mut self, out: &mut Vec<StreamEvent>) {
        if self.response.stop_reason.is_some() {
            self.response.finish(out);
        } else {
            self.response.fail_truncated(out);
        }
    }

    fn assembler(&self) -> &ResponseAssembler {
        &self.response
    }

    fn assembler_mut(&mut self) -> &mut ResponseAssembler {
        &mut self.response
    }
}
