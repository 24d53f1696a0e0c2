//! OpenAI Responses streaming (`response.*` events).
//!
//! - `response.output_text.delta` → text; `response.refusal.delta` → the refusal;
//!   `response.reasoning_summary_text.delta` and `response.reasoning_text.delta` →
//!   reasoning (each summary part is its own reasoning block).
//! - Function calls start at `response.output_item.added` (`item.type ==
//!   "function_call"`; the tool-call id is the item's `call_id`, not its `fc_` id); their
//!   arguments stream as `response.function_call_arguments.delta` keyed by `item_id`; the
//!   call is delivered at `response.output_item.done`, with the final argument string the
//!   server sent.
//! - The terminal `response.completed` / `response.incomplete` carries the status (the
//!   stop reason), `incomplete_details.reason` and the usage; `response.failed` and the
//!   `error` event are in-band errors.

use std::borrow::Cow;
use std::sync::Arc;

use agentbus_events::stream::{StreamError, StreamErrorKind, StreamEvent};
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
    #[serde(borrow, default)]
    delta: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    item_id: Option<Cow<'a, str>>,
    #[serde(default)]
    output_index: Option<u32>,
    #[serde(borrow, default)]
    item: Option<Item<'a>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    response: Option<Response<'a>>,
    // The `error` event's fields.
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    call_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(borrow, default)]
    incomplete_details: Option<IncompleteDetails<'a>>,
    #[serde(borrow, default)]
    error: Option<ResponseError<'a>>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct OutputDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct IncompleteDetails<'a> {
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ResponseError<'a> {
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

/// Decoder state of one Responses stream.
pub(crate) struct ResponsesDecoder {
    response: ResponseAssembler,
    /// Function-call item id → the call's index (its `output_index`).
    items: Vec<(String, u32)>,
}

impl ResponsesDecoder {
    pub fn new(pricing: Option<Arc<PricingTable>>, limits: StreamLimits) -> Self {
        Self {
            response: ResponseAssembler::new(pricing, InputCounting::IncludesCached, limits),
            items: Vec::new(),
        }
    }

    fn index_of(&self, item_id: Option<&str>, output_index: Option<u32>) -> Option<u32> {
        item_id
            .and_then(|id| {
                self.items
                    .iter()
                    .find(|(i, _)| i == id)
                    .map(|(_, index)| *index)
            })
            .or(output_index)
    }

    fn on_terminal(
        &mut self,
        response: Option<Response<'_>>,
        failed: bool,
        out: &mut Vec<StreamEvent>,
    ) {
        let Some(response) = response else {
            self.response.fail(
                StreamError::new(
                    StreamErrorKind::Protocol,
                    "terminal event without a response object",
                ),
                out,
            );
            return;
        };
        if let Some(model) = &response.model {
            self.response.set_model(model);
        }
        if let Some(usage) = response.usage {
            let u = &mut self.response.usage;
            u.input_tokens = usage.input_tokens;
            u.output_tokens = usage.output_tokens;
            u.cached_tokens = usage.input_tokens_details.and_then(|d| d.cached_tokens);
            u.reasoning_tokens = usage.output_tokens_details.and_then(|d| d.reasoning_tokens);
        }
        if failed {
            let error = response.error;
            let code = error.as_ref().and_then(|e| e.code.as_deref());
            let message = error
                .as_ref()
                .and_then(|e| e.message.as_deref())
                .unwrap_or("the response failed");
            self.response.fail(in_band_error("", code, message), out);
            return;
        }
        self.response.incomplete_reason = response
            .incomplete_details
            .and_then(|d| d.reason)
            .map(Cow::into_owned);
        self.response.stop_reason = Some(
            response
                .status
                .map_or_else(|| "completed".to_owned(), Cow::into_owned),
        );
        self.response.finish(out);
    }

    fn on_payload(&mut self, event: Event<'_>, out: &mut Vec<StreamEvent>) {
        match event.kind.as_ref() {
            "response.created" | "response.in_progress" => {
                if let Some(model) = event.response.as_ref().and_then(|r| r.model.as_deref()) {
                    self.response.set_model(model);
                }
            }
            "response.output_text.delta" => {
                if let Some(delta) = &event.delta {
                    self.response.text(delta, out);
                }
            }
            "response.refusal.delta" => {
                if let Some(delta) = &event.delta {
                    self.response.refusal(delta, out);
                }
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                if let Some(delta) = &event.delta {
                    self.response.reasoning(delta, out);
                }
            }
            "response.reasoning_summary_part.done" => self.response.end_reasoning_block(),
            "response.output_item.added" => {
                let Some(item) = event.item else { return };
                if item.kind != "function_call" {
                    return;
                }
                let index = event
                    .output_index
                    .unwrap_or_else(|| self.response.next_tool_index());
                if let Some(id) = &item.id {
                    let limit = self.response.limits().max_tool_calls;
                    if self.items.len() >= limit {
                        self.response.fail(
                            limit_error(format!(
                                "the response opens more than {limit} tool calls (the limit, max_tool_calls)"
                            )),
                            out,
                        );
                        self.items = Vec::new();
                        return;
                    }
                    self.items.push((id.clone().into_owned(), index));
                }
                self.response.tool_fragment(
                    index,
                    item.call_id.as_deref().or(item.id.as_deref()),
                    item.name.as_deref(),
                    item.arguments.as_deref().unwrap_or(""),
                    out,
                );
            }
            "response.function_call_arguments.delta" => {
                let Some(index) = self.index_of(event.item_id.as_deref(), event.output_index)
                else {
                    return;
                };
                if let Some(delta) = &event.delta {
                    self.response.tool_fragment(index, None, None, delta, out);
                }
            }
            "response.function_call_arguments.done" => {
                if let (Some(index), Some(arguments)) = (
                    self.index_of(event.item_id.as_deref(), event.output_index),
                    &event.arguments,
                ) {
                    self.response.tool_arguments_final(index, arguments, out);
                }
            }
            "response.output_item.done" => {
                let Some(item) = event.item else { return };
                match item.kind.as_ref() {
                    "function_call" => {
                        let Some(index) = self.index_of(item.id.as_deref(), event.output_index)
                        else {
                            return;
                        };
                        if let Some(arguments) = &item.arguments {
                            self.response.tool_arguments_final(index, arguments, out);
                        }
                        self.response.complete_tool(index, out);
                    }
                    "reasoning" => self.response.end_reasoning_block(),
                    _ => {}
                }
            }
            "response.completed" | "response.incomplete" => {
                self.on_terminal(event.response, false, out)
            }
            "response.failed" => self.on_terminal(event.response, true, out),
            "error" => {
                let code = event.code.as_deref();
                let message = event.message.as_deref().unwrap_or("");
                self.response.fail(in_band_error("", code, message), out);
            }
            _ => {}
        }
    }
}

impl ProtocolDecoder for ResponsesDecoder {
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
        self.response.fail_truncated(out);
    }

    fn assembler(&self) -> &ResponseAssembler {
        &self.response
    }

    fn assembler_mut(&mut self) -> &mut ResponseAssembler {
        &mut self.response
    }
}
