//! The three streaming wire protocols, each decoded from SSE events into
//! [`StreamEvent`]s: [`Api::OpenAiChat`], [`Api::OpenAiResponses`],
//! [`Api::AnthropicMessages`].

mod anthropic;
mod openai_chat;
mod openai_responses;

use std::sync::Arc;

use agentbus_events::stream::{StreamError, StreamEvent};

use crate::assemble::ResponseAssembler;
use crate::limits::{StreamLimits, sse_limit_error};
use crate::pricing::PricingTable;
use crate::redact::redact_secrets;
use crate::sse::{SseDecoder, SseEvent};

pub(crate) use anthropic::AnthropicDecoder;
pub(crate) use openai_chat::ChatCompletionsDecoder;
pub(crate) use openai_responses::ResponsesDecoder;

/// A streaming wire protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Api {
    /// OpenAI Chat Completions (`POST /chat/completions`), and every server that copies
    /// it (vLLM, llama.cpp, Ollama, OpenRouter, DeepSeek, Groq, mistral.rs, ...).
    OpenAiChat,
    /// OpenAI Responses (`POST /responses`).
    OpenAiResponses,
    /// Anthropic Messages (`POST /messages`).
    AnthropicMessages,
}

impl Api {
    /// The protocol's name as the fixtures spell it (`openai-chat`, `openai-responses`,
    /// `anthropic-messages`).
    pub fn as_str(self) -> &'static str {
        match self {
            Api::OpenAiChat => "openai-chat",
            Api::OpenAiResponses => "openai-responses",
            Api::AnthropicMessages => "anthropic-messages",
        }
    }

    /// The protocol named `name` (see [`Api::as_str`]).
    pub fn from_name(name: &str) -> Option<Api> {
        match name {
            "openai-chat" => Some(Api::OpenAiChat),
            "openai-responses" => Some(Api::OpenAiResponses),
            "anthropic-messages" => Some(Api::AnthropicMessages),
            _ => None,
        }
    }

    fn protocol_decoder(
        self,
        pricing: Option<Arc<PricingTable>>,
        limits: StreamLimits,
    ) -> Box<dyn ProtocolDecoder> {
        match self {
            Api::OpenAiChat => Box::new(ChatCompletionsDecoder::new(pricing, limits)),
            Api::OpenAiResponses => Box::new(ResponsesDecoder::new(pricing, limits)),
            Api::AnthropicMessages => Box::new(AnthropicDecoder::new(pricing, limits)),
        }
    }
}

/// One protocol's decoding of SSE events.
pub(crate) trait ProtocolDecoder: Send {
    /// Handles one SSE event.
    fn on_event(&mut self, event: SseEvent<'_>, out: &mut Vec<StreamEvent>);
    /// The body ended cleanly: finish if the protocol's end was seen (or is implied),
    /// else report the truncation.
    fn on_end(&mut self, out: &mut Vec<StreamEvent>);
    /// The assembler that holds the response so far and emits the terminal event.
    fn assembler(&self) -> &ResponseAssembler;
    /// The same, mutably.
    fn assembler_mut(&mut self) -> &mut ResponseAssembler;

    /// Ends the stream with `error` (transport failure), unless already terminated.
    fn fail(&mut self, error: StreamError, out: &mut Vec<StreamEvent>) {
        self.assembler_mut().fail(error, out);
    }
    /// Whether the terminal event was emitted.
    fn is_terminated(&self) -> bool {
        self.assembler().is_terminated()
    }
    /// Whether any content was emitted.
    fn produced_output(&self) -> bool {
        self.assembler().produced_output()
    }
}

/// Bytes in, [`StreamEvent`]s out: an [`SseDecoder`] feeding a protocol decoder. The
/// output honours the contract: after [`StreamDecoder::end`] or
/// [`StreamDecoder::fail`], exactly one terminal event has been produced.
///
/// Every limit of [`StreamLimits`] applies; breaking one ends the output with a
/// non-recoverable [`StreamErrorKind::Protocol`](agentbus_events::stream::StreamErrorKind)
/// error.
///
/// # Fuzzing entry point
///
/// [`StreamDecoder::new`] + [`StreamDecoder::feed`] (arbitrary bytes, in chunks split
/// anywhere) + [`StreamDecoder::end`] is the whole decoding path of each protocol, with no
/// I/O: a fuzz target feeds it arbitrary input and checks that it neither panics nor
/// breaks the one-terminal-event contract.
///
/// ```
/// use agentbus_llm::{Api, StreamDecoder};
///
/// for api in [Api::OpenAiChat, Api::OpenAiResponses, Api::AnthropicMessages] {
///     let mut decoder = StreamDecoder::new(api, None);
///     let mut out = Vec::new();
///     for chunk in b"data: {\"garbage\n\n\xff\xfe".chunks(3) {
///         decoder.feed(chunk, &mut out);
///     }
///     decoder.end(&mut out);
///     assert_eq!(out.iter().filter(|e| e.is_terminal()).count(), 1);
/// }
/// ```
pub struct StreamDecoder {
    sse: SseDecoder,
    protocol: Box<dyn ProtocolDecoder>,
}

impl std::fmt::Debug for StreamDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamDecoder")
            .field("terminated", &self.protocol.is_terminated())
            .finish()
    }
}

impl StreamDecoder {
    /// A decoder for `api` with the default [`StreamLimits`]; `pricing` computes
    /// `cost_usd` (none: the cost is absent).
    pub fn new(api: Api, pricing: Option<Arc<PricingTable>>) -> Self {
        Self::with_limits(api, pricing, StreamLimits::default())
    }

    /// A decoder for `api` with `limits`.
    pub fn with_limits(api: Api, pricing: Option<Arc<PricingTable>>, limits: StreamLimits) -> Self {
        Self {
            sse: SseDecoder::with_limits(limits.sse()),
            protocol: api.protocol_decoder(pricing, limits),
        }
    }

    /// Decodes a chunk of the body, appending events to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) {
        let protocol = &mut self.protocol;
        if protocol.is_terminated() {
            return;
        }
        if let Err(error) = self
            .sse
            .feed(chunk, &mut |event| protocol.on_event(event, out))
        {
            protocol.fail(sse_limit_error(error), out);
        }
    }

    /// The body ended: appends the terminal event if it was not produced yet.
    pub fn end(&mut self, out: &mut Vec<StreamEvent>) {
        let protocol = &mut self.protocol;
        if !protocol.is_terminated() {
            self.sse.finish(&mut |event| protocol.on_event(event, out));
        }
        if !protocol.is_terminated() {
            protocol.on_end(out);
        }
    }

    /// The transport failed: appends `error` as the terminal event unless one was
    /// produced already.
    pub fn fail(&mut self, error: StreamError, out: &mut Vec<StreamEvent>) {
        self.protocol.fail(error, out);
    }

    /// Whether the terminal event was produced.
    pub fn is_terminated(&self) -> bool {
        self.protocol.is_terminated()
    }

    /// Whether any content (text, reasoning, tool fragments) was produced: after that a
    /// retry would duplicate output.
    pub fn produced_output(&self) -> bool {
        self.protocol.produced_output()
    }

    /// Decodes a whole recorded body (`.sse` file) at once.
    pub fn decode_body(
        api: Api,
        body: &[u8],
        pricing: Option<Arc<PricingTable>>,
    ) -> Vec<StreamEvent> {
        let mut decoder = StreamDecoder::new(api, pricing);
        let mut out = Vec::new();
        decoder.feed(body, &mut out);
        decoder.end(&mut out);
        out
    }
}

/// The JSON text of an SSE event; `None` for an empty keep-alive and for the `[DONE]`
/// sentinel (which only Chat Completions gives a meaning).
pub(crate) fn json_payload<'a>(event: &SseEvent<'a>) -> Option<&'a str> {
    let data = event.data.trim_ascii();
    (!data.is_empty() && data != "[DONE]").then_some(data)
}

/// Parses one `data:` payload, or reports it as a protocol error.
pub(crate) fn parse_json<'a, T: serde::Deserialize<'a>>(data: &'a str) -> Result<T, StreamError> {
    serde_json::from_str(data).map_err(|e| {
        let preview: String = data.chars().take(120).collect();
        StreamError::new(
            agentbus_events::stream::StreamErrorKind::Protocol,
            format!(
                "invalid JSON in stream chunk ({e}): {}",
                redact_secrets(&preview)
            ),
        )
    })
}
