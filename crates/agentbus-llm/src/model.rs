//! The [`ChatModel`] trait every provider implements, and [`ChatResponse`], a stream
//! collected into one value.

use std::sync::Arc;

use agentbus_events::stream::{Finish, StreamError, StreamErrorKind, StreamEvent, ToolCall};
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::request::ChatRequest;

/// What [`ChatModel::stream`] returns: the provider's answer as [`StreamEvent`]s.
///
/// The stream ends with exactly one [`StreamEvent::Finish`] or [`StreamEvent::Error`] and
/// yields nothing after it. It owns everything it needs (`'static`), so it can be moved to
/// another task; dropping it cancels the HTTP request.
pub type ChatStream = BoxStream<'static, StreamEvent>;

/// A language model that answers a [`ChatRequest`] with a stream of [`StreamEvent`]s.
///
/// Implemented by the HTTP providers of this crate ([`HttpModel`](crate::HttpModel) for
/// OpenAI Chat Completions, OpenAI Responses and Anthropic Messages), by
/// [`ScriptedModel`](crate::ScriptedModel)
/// for tests, by the local model of `agentbus-local`, and by wrappers such as
/// [`InstrumentedModel`](crate::InstrumentedModel). The trait is object safe: agents hold
/// an `Arc<dyn ChatModel>`.
///
/// # Contract for implementors
///
/// - `stream` never fails up front: every failure (bad configuration, HTTP error,
///   network cut, invalid data) is reported in-band as the stream's one terminal
///   [`StreamEvent::Error`], with a [`StreamErrorKind`] and `recoverable`.
/// - Text comes as [`StreamEvent::TextDelta`]s with a growing `snapshot`, then one
///   [`StreamEvent::TextEnd`] if any text was produced; reasoning as
///   [`StreamEvent::ReasoningStart`] + [`StreamEvent::ReasoningDelta`]s; tool calls as
///   [`StreamEvent::ToolCallDelta`]s while they stream, then one complete
///   [`StreamEvent::ToolCall`] each, before the terminal event.
/// - Exactly one terminal event ([`StreamEvent::Finish`] or [`StreamEvent::Error`]), last.
///
/// ```
/// use agentbus_llm::{ChatModel, ChatRequest, ScriptedModel};
/// use agentbus_events::stream::StreamEvent;
///
/// # futures::executor::block_on(async {
/// let model = ScriptedModel::text("scripted", "Hello!");
/// let response = model.complete(ChatRequest::from_prompt("Hi")).await;
/// assert_eq!(response.text, "Hello!");
/// assert!(response.error.is_none());
/// # });
/// ```
pub trait ChatModel: Send + Sync {
    /// Streams the answer to `request`.
    fn stream(&self, request: ChatRequest) -> ChatStream;

    /// The model name used when the request does not name one (e.g. `gpt-4o-mini`).
    fn name(&self) -> &str;

    /// The provider's name (`openai`, `anthropic`, `local`, `scripted`, ...).
    fn provider(&self) -> &str;

    /// Streams the answer and collects it into a [`ChatResponse`].
    fn complete(&self, request: ChatRequest) -> futures::future::BoxFuture<'static, ChatResponse> {
        let stream = self.stream(request);
        Box::pin(ChatResponse::collect(stream))
    }
}

impl<M: ChatModel + ?Sized> ChatModel for Arc<M> {
    fn stream(&self, request: ChatRequest) -> ChatStream {
        (**self).stream(request)
    }
    fn name(&self) -> &str {
        (**self).name()
    }
    fn provider(&self) -> &str {
        (**self).provider()
    }
}

impl<M: ChatModel + ?Sized> ChatModel for Box<M> {
    fn stream(&self, request: ChatRequest) -> ChatStream {
        (**self).stream(request)
    }
    fn name(&self) -> &str {
        (**self).name()
    }
    fn provider(&self) -> &str {
        (**self).provider()
    }
}

/// A whole answer: a [`ChatStream`] collected.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatResponse {
    /// All text, concatenated.
    pub text: String,
    /// All reasoning text, concatenated.
    pub reasoning: String,
    /// The complete tool calls, in the order they were delivered.
    pub tool_calls: Vec<ToolCall>,
    /// The finish event, when the stream finished normally.
    pub finish: Option<Finish>,
    /// The error, when the stream failed.
    pub error: Option<StreamError>,
    /// How many events the stream yielded (terminal included).
    pub events: usize,
}

impl ChatResponse {
    /// Collects `stream` until its terminal event (or its end).
    ///
    /// A stream that ends without a terminal event (a broken implementation) is recorded
    /// as a protocol error, so `finish.is_some() != error.is_some()` always holds.
    pub async fn collect(mut stream: ChatStream) -> ChatResponse {
        let mut response = ChatResponse::default();
        while let Some(event) = stream.next().await {
            if response.push(event) {
                return response;
            }
        }
        response.error = Some(StreamError::new(
            StreamErrorKind::Protocol,
            "the model's stream ended without a finish or error event",
        ));
        response
    }

    /// Adds one event; returns `true` when it was terminal.
    pub fn push(&mut self, event: StreamEvent) -> bool {
        self.events += 1;
        match event {
            StreamEvent::TextDelta(delta) => self.text.push_str(&delta.content),
            StreamEvent::ReasoningDelta(delta) => self.reasoning.push_str(&delta.content),
            StreamEvent::ToolCall(call) => self.tool_calls.push(call),
            StreamEvent::Finish(finish) => {
                self.finish = Some(finish);
                return true;
            }
            StreamEvent::Error(error) => {
                self.error = Some(error);
                return true;
            }
            StreamEvent::TextEnd(_)
            | StreamEvent::ToolCallDelta(_)
            | StreamEvent::ToolResult(_)
            | StreamEvent::ReasoningStart => {}
        }
        false
    }
}
