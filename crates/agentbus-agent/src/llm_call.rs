//! One streaming LLM call of a run: its start event, a chunk event per text or reasoning
//! delta, an argument-delta event per tool-call fragment, and its end (or error) event
//! with the content, the tool calls, the usage and the time to first token.

use std::time::Instant;

use agentbus_events::react::{
    ChunkChannel, EventOrigin, LLMCallEndEvent, LLMCallErrorEvent, LLMCallStartEvent,
    LLMChunkArriveEvent, TokenUsage, ToolCallArgumentsDeltaEvent, ToolCallInfo,
};
use agentbus_events::stream::{
    Finish, ReasoningDelta, StreamErrorKind, StreamEvent, TextDelta, ToolCallDelta,
};
use agentbus_events::{ErrorInfo, EventMeta};
use agentbus_llm::{ChatRequest, ChatStream, Message};
use futures::{FutureExt, StreamExt};

use crate::context::{RunContext, Totals};
use crate::elapsed_ms;
use crate::emitter::Emitter;
use crate::stop::{Stop, StopTokens};

/// The result of one LLM call.
pub(crate) enum LlmOutcome {
    /// The model finished: its text and the tools it called.
    Done {
        content: String,
        tool_calls: Vec<ToolCallInfo>,
    },
    /// The model's stream failed.
    Failed(ErrorInfo),
    /// The run was cancelled or interrupted during the call.
    Stopped(Stop),
}

/// One streaming LLM call: emits its start, chunks, argument deltas and end (or error).
pub(crate) async fn llm_call(ctx: &mut RunContext, messages: &[Message]) -> LlmOutcome {
    announce(ctx, messages).await;
    let tool_choice = if ctx.inner.definitions.is_empty() {
        None
    } else {
        ctx.tool_choice.for_iteration(ctx.out.iteration)
    };
    let request = ChatRequest {
        messages: messages.to_vec(),
        tools: ctx.inner.definitions.clone(),
        tool_choice,
        model: ctx.inner.config.model.clone(),
        temperature: ctx.inner.config.temperature,
        max_tokens: ctx.inner.config.max_tokens,
        session_id: Some(ctx.out.session_id.clone()),
        ..ChatRequest::default()
    };
    let mut call = Call::new(ctx.out.iteration);
    ctx.totals.llm_calls += 1;
    let mut stream = ctx.inner.model.stream(request);
    loop {
        let next = match ready_event(&mut stream, &ctx.stops) {
            Some(next) => next,
            None => next_event(&mut stream, &ctx.stops).await,
        };
        let event = match next {
            Ok(Some(event)) => event,
            Ok(None) => {
                let error = ErrorInfo::new(
                    StreamErrorKind::Protocol.as_str(),
                    "the model's stream ended without a finish or error event",
                );
                return call.failed(&mut ctx.out, error, true).await;
            }
            Err(stop) => return call.stopped(&mut ctx.out, stop).await,
        };
        match call.take(event) {
            Step::Chunk(chunk) => ctx.out.emit(chunk).await,
            Step::ArgumentsDelta(delta) => ctx.out.emit(delta).await,
            Step::Continue => {}
            Step::Finish(finish) => {
                return call.finish(&mut ctx.out, &mut ctx.totals, finish).await;
            }
            Step::Failed(error, recoverable) => {
                return call.failed(&mut ctx.out, error, recoverable).await;
            }
        }
    }
}

/// What one model event leads to. Taking an event in is synchronous; the loop awaits
/// the one emit it implies, so the per-event path has no nested futures.
enum Step {
    /// Emit a text or reasoning chunk.
    Chunk(LLMChunkArriveEvent),
    /// Emit a tool-call argument fragment.
    ArgumentsDelta(ToolCallArgumentsDeltaEvent),
    /// Nothing to emit (a whole tool call is kept for the end event, a text end is
    /// implied by the chunks).
    Continue,
    /// The model finished.
    Finish(Finish),
    /// The model's stream failed (`recoverable` as the provider said).
    Failed(ErrorInfo, bool),
}

/// `LLMCallStartEvent`: the messages sent, the tools offered, the model asked.
async fn announce(ctx: &mut RunContext, messages: &[Message]) {
    let event = LLMCallStartEvent {
        meta: EventMeta::new(),
        origin: EventOrigin::default(),
        iteration: ctx.out.iteration,
        messages: messages
            .iter()
            .map(|m| serde_json::to_value(m).unwrap_or(serde_json::Value::Null))
            .collect(),
        tools: ctx.tool_names.clone(),
        model: Some(ctx.model_name()),
    };
    ctx.out.emit(event).await;
}

/// The model's next event if it is ready (`Err` when the run must stop first), without
/// registering for cancellation: the fast path, a plain function so that it creates no
/// future per event; the stop tokens are checked (one lock) between events.
fn ready_event(
    stream: &mut ChatStream,
    stops: &StopTokens,
) -> Option<Result<Option<StreamEvent>, Stop>> {
    let next = stream.next().now_or_never()?;
    Some(match stops.check() {
        Some(stop) => Err(stop),
        None => Ok(next),
    })
}

/// Waits for the model's next event, or for the run to be stopped.
async fn next_event(
    stream: &mut ChatStream,
    stops: &StopTokens,
) -> Result<Option<StreamEvent>, Stop> {
    tokio::select! {
        biased;
        stop = stops.stopped() => Err(stop),
        next = stream.next() => Ok(next),
    }
}

/// Argument-streaming state of one tool call, by index.
struct ArgState {
    index: u32,
    id: Option<String>,
    name: Option<String>,
    length: u64,
}

/// What one call has received so far.
struct Call {
    iteration: u32,
    started: Instant,
    content: String,
    reasoning: String,
    text_chunks: u64,
    reasoning_chunks: u64,
    /// Milliseconds to the first output of any kind (text, reasoning or a tool call).
    first_output: Option<f64>,
    args: Vec<ArgState>,
    tool_calls: Vec<ToolCallInfo>,
}

impl Call {
    fn new(iteration: u32) -> Self {
        Self {
            iteration,
            started: Instant::now(),
            content: String::new(),
            reasoning: String::new(),
            text_chunks: 0,
            reasoning_chunks: 0,
            first_output: None,
            args: Vec::new(),
            tool_calls: Vec::new(),
        }
    }

    /// Takes in one model event: what the call accumulates, and what to emit.
    fn take(&mut self, event: StreamEvent) -> Step {
        if self.first_output.is_none() && event.is_output() {
            self.first_output = Some(elapsed_ms(self.started));
        }
        match event {
            StreamEvent::TextDelta(delta) => Step::Chunk(self.text(delta)),
            StreamEvent::ReasoningDelta(delta) => Step::Chunk(self.reasoning(delta)),
            StreamEvent::ToolCallDelta(delta) => Step::ArgumentsDelta(self.tool_call_delta(delta)),
            StreamEvent::ToolCall(call) => {
                self.tool_calls.push(ToolCallInfo {
                    id: call.tool_use_id,
                    name: call.tool_name,
                    arguments: call.tool_input,
                    arguments_raw: call.arguments_raw,
                });
                Step::Continue
            }
            StreamEvent::Finish(finish) => Step::Finish(finish),
            StreamEvent::Error(error) => Step::Failed(error.to_error_info(), error.recoverable),
            StreamEvent::TextEnd(_) | StreamEvent::ReasoningStart | StreamEvent::ToolResult(_) => {
                Step::Continue
            }
        }
    }

    /// A text delta: accumulated; its `LLMChunkArriveEvent` on the text channel.
    fn text(&mut self, delta: TextDelta) -> LLMChunkArriveEvent {
        self.content.push_str(&delta.content);
        let chunk_index = self.text_chunks;
        self.text_chunks += 1;
        LLMChunkArriveEvent {
            meta: EventMeta::new(),
            origin: EventOrigin::default(),
            iteration: self.iteration,
            delta: delta.content,
            accumulated_length: self.content.len() as u64,
            channel: ChunkChannel::Text,
            chunk_index,
        }
    }

    /// A reasoning delta: accumulated; its `LLMChunkArriveEvent` on the reasoning
    /// channel.
    fn reasoning(&mut self, delta: ReasoningDelta) -> LLMChunkArriveEvent {
        self.reasoning.push_str(&delta.content);
        let chunk_index = self.reasoning_chunks;
        self.reasoning_chunks += 1;
        LLMChunkArriveEvent {
            meta: EventMeta::new(),
            origin: EventOrigin::default(),
            iteration: self.iteration,
            delta: delta.content,
            accumulated_length: self.reasoning.len() as u64,
            channel: ChunkChannel::Reasoning,
            chunk_index,
        }
    }

    /// A tool-call argument fragment: its `ToolCallArgumentsDeltaEvent`, with the call's
    /// id and name as far as they are known.
    fn tool_call_delta(&mut self, delta: ToolCallDelta) -> ToolCallArgumentsDeltaEvent {
        let state = match self.args.iter().position(|s| s.index == delta.index) {
            Some(i) => &mut self.args[i],
            None => {
                self.args.push(ArgState {
                    index: delta.index,
                    id: None,
                    name: None,
                    length: 0,
                });
                let last = self.args.len() - 1;
                &mut self.args[last]
            }
        };
        if delta.id.is_some() {
            state.id = delta.id;
        }
        if delta.name.is_some() {
            state.name = delta.name;
        }
        state.length += delta.arguments_delta.len() as u64;
        ToolCallArgumentsDeltaEvent {
            meta: EventMeta::new(),
            origin: EventOrigin::default(),
            iteration: self.iteration,
            index: delta.index,
            tool_call_id: state.id.clone(),
            tool_name: state.name.clone(),
            delta: delta.arguments_delta,
            accumulated_length: state.length,
        }
    }

    /// The model finished: usage into the totals, and `LLMCallEndEvent`.
    async fn finish(
        &mut self,
        out: &mut Emitter,
        totals: &mut Totals,
        finish: Finish,
    ) -> LlmOutcome {
        let usage = TokenUsage {
            input_tokens: finish.input_tokens,
            output_tokens: finish.output_tokens,
            cached_tokens: finish.cached_tokens.unwrap_or(0),
            cache_creation_tokens: finish.cache_creation_tokens.unwrap_or(0),
            reasoning_tokens: finish.reasoning_tokens.unwrap_or(0),
        };
        totals.usage.add(&usage);
        if let Some(cost) = finish.cost_usd {
            totals.cost_usd = Some(totals.cost_usd.unwrap_or(0.0) + cost);
        }
        out.emit(LLMCallEndEvent {
            meta: EventMeta::new(),
            origin: EventOrigin::default(),
            iteration: self.iteration,
            content: self.content.clone(),
            reasoning: (!self.reasoning.is_empty()).then(|| self.reasoning.clone()),
            tool_calls: self.tool_calls.clone(),
            finish_reason: finish.stop_reason,
            usage,
            cost_usd: finish.cost_usd,
            model: (!finish.model.is_empty()).then_some(finish.model),
            time_to_first_token_ms: self.first_output,
            execution_time_ms: elapsed_ms(self.started),
        })
        .await;
        LlmOutcome::Done {
            content: std::mem::take(&mut self.content),
            tool_calls: std::mem::take(&mut self.tool_calls),
        }
    }

    /// The model's stream failed: `LLMCallErrorEvent`.
    async fn failed(&self, out: &mut Emitter, error: ErrorInfo, recoverable: bool) -> LlmOutcome {
        out.emit(LLMCallErrorEvent {
            meta: EventMeta::new(),
            origin: EventOrigin::default(),
            iteration: self.iteration,
            error: error.clone(),
            recoverable,
            execution_time_ms: elapsed_ms(self.started),
        })
        .await;
        LlmOutcome::Failed(error)
    }

    /// The run stopped during the call: a recoverable `LLMCallErrorEvent`.
    async fn stopped(&self, out: &mut Emitter, stop: Stop) -> LlmOutcome {
        out.emit(LLMCallErrorEvent {
            meta: EventMeta::new(),
            origin: EventOrigin::default(),
            iteration: self.iteration,
            error: stop.error(),
            recoverable: true,
            execution_time_ms: elapsed_ms(self.started),
        })
        .await;
        LlmOutcome::Stopped(stop)
    }
}
