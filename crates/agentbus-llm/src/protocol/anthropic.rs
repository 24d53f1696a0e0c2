//! Anthropic Messages streaming.
//!
//! - `message_start`: the model and the first usage (input, cache read/creation).
//! - Content blocks keyed by `index`: `text` (`text_delta`), `thinking`
//!   (`thinking_delta`, `signature_delta`), `tool_use` (id and name at the start, the
//!   arguments through `input_json_delta`); `redacted_thinking` and `citations_delta`
//!   carry no text. A tool call is delivered at its `content_block_stop`.
//! - `message_delta`: the stop reason and cumulative usage (each count it carries
//!   replaces the earlier one; `output_tokens_details.thinking_tokens` when present).
//! - `message_stop` ends the stream; `ping` is ignored; `error` is an in-band error.
//!
//! The event kind is read from the payload's `type` (the `event:` line says the same;
//! gateways have been seen to send `event: data` for a trailing `[DONE]`).

use std::borrow::Cow;
use std::sync::Arc;

use agentbus_events::stream::StreamEvent;
use serde::Deserialize;

use super::{ProtocolDecoder, json_payload, parse_json};
use crate::assemble::ResponseAssembler;
use crate::errors::in_band_error;
use crate::limits::{StreamLimits, limit_error};
use crate::pricing::{InputCounting, PricingTable};
use crate::sse::SseEvent;

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default)]
    message: Option<MessageStart<'a>>,
    #[serde(borrow, default)]
    content_block: Option<ContentBlock<'a>>,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(borrow, default)]
    error: Option<ErrorObject<'a>>,
}

#[derive(Deserialize)]
struct MessageStart<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct ContentBlock<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize)]
struct OutputDetails {
    #[serde(default)]
    thinking_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorObject<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Thinking,
    ToolUse,
    Other,
}

/// Decoder state of one Anthropic Messages stream.
pub(crate) struct AnthropicDecoder {
    response: ResponseAssembler,
    blocks: Vec<(u32, BlockKind)>,
}

impl AnthropicDecoder {
    pub fn new(pricing: Option<Arc<PricingTable>>, limits: StreamLimits) -> Self {
        Self {
            response: ResponseAssembler::new(pricing, InputCounting::ExcludesCached, limits),
            blocks: Vec::new(),
        }
    }

    fn block_kind(&self, index: u32) -> BlockKind {
        self.blocks
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map_or(BlockKind::Other, |(_, kind)| *kind)
    }

    fn apply_usage(&mut self, usage: Usage) {
        let u = &mut self.response.usage;
        if usage.input_tokens.is_some() {
            u.input_tokens = usage.input_tokens;
        }
        if usage.output_tokens.is_some() {
            u.output_tokens = usage.output_tokens;
        }
        if usage.cache_read_input_tokens.is_some() {
            u.cached_tokens = usage.cache_read_input_tokens;
        }
        if usage.cache_creation_input_tokens.is_some() {
            u.cache_creation_tokens = usage.cache_creation_input_tokens;
        }
        if let Some(thinking) = usage.output_tokens_details.and_then(|d| d.thinking_tokens) {
            u.reasoning_tokens = Some(thinking);
        }
    }

    fn on_payload(&mut self, event: Event<'_>, out: &mut Vec<StreamEvent>) {
        let index = event.index.unwrap_or(0);
        match event.kind.as_ref() {
            "message_start" => {
                if let Some(message) = event.message {
                    if let Some(model) = &message.model {
                        self.response.set_model(model);
                    }
                    if let Some(usage) = message.usage {
                        self.apply_usage(usage);
                    }
                }
            }
            "content_block_start" => {
                let Some(block) = event.content_block else {
                    return;
                };
                let kind = match block.kind.as_ref() {
                    "text" => BlockKind::Text,
                    "thinking" => BlockKind::Thinking,
                    "tool_use" | "server_tool_use" => BlockKind::ToolUse,
                    _ => BlockKind::Other,
                };
                let limit = self.response.limits().max_content_blocks;
                if self.blocks.len() >= limit {
                    self.response.fail(
                        limit_error(format!(
                            "the response opens more than {limit} content blocks (the limit, max_content_blocks)"
                        )),
                        out,
                    );
                    self.blocks = Vec::new();
                    return;
                }
                self.blocks.push((index, kind));
                match kind {
                    BlockKind::Text => {
                        self.response.end_reasoning_block();
                        if let Some(text) = &block.text {
                            self.response.text(text, out);
                        }
                    }
                    BlockKind::Thinking => {
                        self.response.start_reasoning_block(out);
                        if let Some(thinking) = &block.thinking {
                            self.response.reasoning(thinking, out);
                        }
                    }
                    BlockKind::ToolUse => self.response.tool_fragment(
                        index,
                        block.id.as_deref(),
                        block.name.as_deref(),
                        "",
                        out,
                    ),
                    BlockKind::Other => self.response.end_reasoning_block(),
                }
            }
            "content_block_delta" => {
                let Some(delta) = event.delta else { return };
                match delta.kind.as_deref().unwrap_or("") {
                    "text_delta" => {
                        if let Some(text) = &delta.text {
                            self.response.text(text, out);
                        }
                    }
                    "thinking_delta" => {
                        if let Some(thinking) = &delta.thinking {
                            self.response.reasoning(thinking, out);
                        }
                    }
                    "signature_delta" => {
                        if let Some(signature) = &delta.signature {
                            self.response.reasoning_signature(signature, out);
                        }
                    }
                    "input_json_delta" => {
                        if let Some(json) = &delta.partial_json {
                            self.response.tool_fragment(index, None, None, json, out);
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => match self.block_kind(index) {
                BlockKind::ToolUse => self.response.complete_tool(index, out),
                BlockKind::Thinking => self.response.end_reasoning_block(),
                BlockKind::Text | BlockKind::Other => {}
            },
            "message_delta" => {
                if let Some(reason) = event.delta.and_then(|d| d.stop_reason) {
                    self.response.stop_reason = Some(reason.into_owned());
                }
                if let Some(usage) = event.usage {
                    self.apply_usage(usage);
                }
            }
            "message_stop" => self.response.finish(out),
            "error" => {
                let error = event.error;
                let kind = error.as_ref().and_then(|e| e.kind.as_deref()).unwrap_or("");
                let message = error
                    .as_ref()
                    .and_then(|e| e.message.as_deref())
                    .unwrap_or("");
                self.response.fail(in_band_error(kind, None, message), out);
            }
            // `ping` and event kinds added later.
            _ => {}
        }
    }
}

impl ProtocolDecoder for AnthropicDecoder {
    fn on_event(&mut self, event: SseEvent<'_>, out: &mut Vec<StreamEvent>) {
        if self.response.is_terminated() {
            return;
        }
        let Some(data) = json_payload(&event) else {
            return;
        };
        match parse_json::<Event<'_>>(data) {
            Ok(payload) => self.on_payload(payload, out),
            Err(error) => self.response.fail(error, out),
        }
    }

    fn on_end(&mut self, out: &mut Vec<StreamEvent>) {
        // Without `message_stop` the message is incomplete, even after a stop reason.
        self.response.fail_truncated(out);
    }

    fn assembler(&self) -> &ResponseAssembler {
        &self.response
    }

    fn assembler_mut(&mut self) -> &mut ResponseAssembler {
        &mut self.response
    }
}
