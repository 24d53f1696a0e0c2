//! The ReAct loop of one run: what is emitted, when, and with which origin.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use agentbus_events::agent::{AgentTurnEndedEvent, AgentTurnStartedEvent};
use agentbus_events::react::{
    AbortReason, ChunkChannel, EventOrigin, EventYield, LLMCallEndEvent, LLMCallErrorEvent,
    LLMCallStartEvent, LLMChunkArriveEvent, ReactEndEvent, ReactEvent, ReactIterationEndEvent,
    ReactIterationStartEvent, ReactOutput, ReactStartEvent, ResponseYield, TokenUsage,
    ToolCallArgumentsDeltaEvent, ToolCallInfo,
};
use agentbus_events::stream::{StreamErrorKind, StreamEvent};
use agentbus_events::{ErrorInfo, EventMeta};
use agentbus_llm::{ChatRequest, Message, ToolCallRequest};
use futures::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::agent::{AgentInner, AgentOutput, RunRequest};
use crate::batch::{self, BatchOutcome};
use crate::generator::Yielder;
use crate::publish::Publisher;

/// Milliseconds since `start`, as a float.
pub(crate) fn elapsed_ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// Why the run is stopping early, as seen at an await point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    Cancelled,
    Interrupted,
}

impl Stop {
    fn reason(self) -> AbortReason {
        match self {
            Stop::Cancelled => AbortReason::Cancelled,
            Stop::Interrupted => AbortReason::Interrupted,
        }
    }

    fn error(self) -> ErrorInfo {
        match self {
            Stop::Cancelled => ErrorInfo::new("cancelled", "the run was cancelled"),
            Stop::Interrupted => ErrorInfo::new("interrupted", "the agent was interrupted"),
        }
    }
}

/// The two tokens that stop a run: the caller's cancellation and the agent's interrupt.
#[derive(Clone, Debug)]
pub(crate) struct StopTokens {
    pub(crate) cancel: CancellationToken,
    pub(crate) interrupt: CancellationToken,
}

impl StopTokens {
    /// Whether (and why) the run must stop now.
    /// The interrupt token is a child of the cancellation token, so a cancellation also
    /// fires it: the cancellation is checked first.
    pub(crate) fn check(&self) -> Option<Stop> {
        if self.cancel.is_cancelled() {
            Some(Stop::Cancelled)
        } else if self.interrupt.is_cancelled() {
            Some(Stop::Interrupted)
        } else {
            None
        }
    }

    /// Resolves when either token fires, with the reason.
    pub(crate) async fn stopped(&self) -> Stop {
        self.interrupt.cancelled().await;
        self.check().unwrap_or(Stop::Interrupted)
    }

    /// A token cancelled when either fires: what tools watch.
    pub(crate) fn combined(&self) -> CancellationToken {
        // The interrupt token is a child of the cancellation token (see `run`).
        self.interrupt.clone()
    }
}

/// Per-run state: identity, counters, and the way out to the stream and the bus.
pub(crate) struct Emitter {
    yielder: Yielder<AgentOutput>,
    pub(crate) origin: EventOrigin,
    next_seq: u64,
    pub(crate) publisher: Option<Publisher>,
    pub(crate) session_id: String,
    pub(crate) plugin_name: String,
    pub(crate) iteration: u32,
}

impl Emitter {
    /// Stamps `event` with this run's origin, the next `event_seq` and the session, hands
    /// it to the bus, and yields it.
    pub(crate) async fn emit(&mut self, event: impl Into<ReactEvent>) {
        let mut event = event.into();
        let mut origin = self.origin.clone();
        origin.event_seq = self.next_seq;
        self.next_seq += 1;
        event.meta_mut().session_id = Some(self.session_id.clone());
        *event.origin_mut() = origin.clone();
        if let Some(publisher) = &self.publisher {
            publisher.publish_async(event.clone().into_dyn()).await;
        }
        self.yielder
            .put(ReactOutput::Event(EventYield { event, origin }))
            .await;
    }

    /// Emits a tool's custom event with this run's origin plus the tool's name and id.
    pub(crate) async fn emit_with_tool(
        &mut self,
        mut event: ReactEvent,
        tool_name: &str,
        tool_call_id: &str,
    ) {
        let mut origin = self.origin.clone();
        origin.event_seq = self.next_seq;
        self.next_seq += 1;
        origin.tool_name = Some(tool_name.to_owned());
        origin.tool_call_id = Some(tool_call_id.to_owned());
        event.meta_mut().session_id = Some(self.session_id.clone());
        *event.origin_mut() = origin.clone();
        if let Some(publisher) = &self.publisher {
            publisher.publish_async(event.clone().into_dyn()).await;
        }
        self.yielder
            .put(ReactOutput::Event(EventYield { event, origin }))
            .await;
    }

    /// Yields a sub-agent's event unchanged (its origin is its own). It was published by
    /// the sub-agent's run.
    pub(crate) async fn forward(&mut self, event: EventYield) {
        self.yielder.put(ReactOutput::Event(event)).await;
    }

    /// Publishes a bus-only event (Vision Agents' lifecycle and tool events).
    pub(crate) async fn publish_only(&self, event: Box<dyn agentbus_events::DynEvent>) {
        if let Some(publisher) = &self.publisher {
            publisher.publish_async(event).await;
        }
    }

    /// Fresh base fields for this run's session.
    pub(crate) fn meta(&self) -> EventMeta {
        EventMeta::for_session(self.session_id.clone())
    }
}

/// Totals over the run, for `ReactEndEvent`.
#[derive(Default)]
struct Totals {
    iterations: u32,
    tool_calls: u32,
    llm_calls: u32,
    usage: TokenUsage,
    cost_usd: Option<f64>,
}

/// The result of one LLM call.
enum LlmOutcome {
    Done {
        content: String,
        tool_calls: Vec<ToolCallInfo>,
    },
    Failed(ErrorInfo),
    Stopped(Stop),
}

/// How the run ended, for the closing events.
struct Ending {
    response: String,
    aborted: Option<(AbortReason, Option<ErrorInfo>)>,
}

/// Runs one agent call, yielding its outputs. The last item is always `ReactEndEvent`.
pub(crate) async fn run(
    inner: Arc<AgentInner>,
    request: RunRequest,
    yielder: Yielder<AgentOutput>,
) {
    let started = Instant::now();
    let interrupt = request.cancel.child_token();
    let _registration = inner.register_run(interrupt.clone());
    let stops = StopTokens {
        cancel: request.cancel.clone(),
        interrupt,
    };
    let session_id = request
        .session_id
        .clone()
        .or_else(|| inner.config.session_id.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let agent_call_id = uuid::Uuid::new_v4().to_string();
    let (origin, publisher) = match &request.parent {
        None => (
            EventOrigin {
                session_id: session_id.clone(),
                agent_call_id,
                epoch: inner.epoch.load(Ordering::SeqCst),
                ..EventOrigin::default()
            },
            inner.publisher.clone(),
        ),
        Some(parent) => (
            EventOrigin {
                session_id: session_id.clone(),
                agent_call_id,
                parent_agent_call_id: Some(parent.origin.agent_call_id.clone()),
                fork_id: Some(uuid::Uuid::new_v4().to_string()),
                fork_depth: parent.origin.fork_depth + 1,
                fork_seq: Some(parent.fork_seq),
                tool_name: parent.origin.tool_name.clone(),
                tool_call_id: parent.origin.tool_call_id.clone(),
                epoch: parent.origin.epoch,
                ..EventOrigin::default()
            },
            inner.publisher.clone().or_else(|| parent.publisher.clone()),
        ),
    };
    let mut out = Emitter {
        yielder,
        origin,
        next_seq: 0,
        publisher,
        session_id,
        plugin_name: inner.model.provider().to_owned(),
        iteration: 0,
    };

    let tool_names: Vec<String> = inner.definitions.iter().map(|d| d.name.clone()).collect();
    out.publish_only(Box::new(AgentTurnStartedEvent { meta: out.meta() }))
        .await;
    out.emit(ReactStartEvent {
        meta: EventMeta::new(),
        origin: EventOrigin::default(),
        user_message: request.message.clone(),
        tools: tool_names.clone(),
        max_iterations: inner.config.max_iterations,
        model: Some(model_name(&inner)),
    })
    .await;

    let mut messages: Vec<Message> = Vec::with_capacity(request.history.len() + 4);
    if let Some(system) = &inner.config.system_prompt {
        let has_system =
            matches!(request.history.first(), Some(m) if m.role == agentbus_llm::Role::System);
        if !has_system {
            messages.push(Message::system(system.clone()));
        }
    }
    messages.extend(request.history.iter().cloned());
    if request.user_turn {
        messages.push(Message::user(request.message.clone()));
    }

    let fork_counter = Arc::new(AtomicU64::new(0));
    let mut totals = Totals::default();
    let mut last_content = String::new();
    let mut ending: Option<Ending> = None;

    for iteration in 1..=inner.config.max_iterations {
        if let Some(stop) = stops.check() {
            ending = Some(Ending {
                response: last_content.clone(),
                aborted: Some((stop.reason(), Some(stop.error()))),
            });
            break;
        }
        out.iteration = iteration;
        totals.iterations = iteration;
        out.emit(ReactIterationStartEvent {
            meta: EventMeta::new(),
            origin: EventOrigin::default(),
            iteration,
        })
        .await;

        let outcome = llm_call(
            &inner,
            &mut out,
            &messages,
            &tool_names,
            &stops,
            &mut totals,
        )
        .await;
        let (content, tool_calls) = match outcome {
            LlmOutcome::Done {
                content,
                tool_calls,
            } => (content, tool_calls),
            LlmOutcome::Failed(error) => {
                close_iteration(&mut out, iteration, 0, false).await;
                ending = Some(Ending {
                    response: last_content.clone(),
                    aborted: Some((AbortReason::LlmError, Some(error))),
                });
                break;
            }
            LlmOutcome::Stopped(stop) => {
                close_iteration(&mut out, iteration, 0, false).await;
                ending = Some(Ending {
                    response: last_content.clone(),
                    aborted: Some((stop.reason(), Some(stop.error()))),
                });
                break;
            }
        };
        last_content.clone_from(&content);

        if tool_calls.is_empty() {
            messages.push(Message::assistant(content.clone()));
            close_iteration(&mut out, iteration, 0, true).await;
            out.yielder_put_response(ResponseYield {
                response: content.clone(),
                messages: messages.clone(),
            })
            .await;
            ending = Some(Ending {
                response: content,
                aborted: None,
            });
            break;
        }

        messages.push(Message::assistant_with_tool_calls(
            content,
            tool_calls
                .iter()
                .map(|call| ToolCallRequest {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                })
                .collect(),
        ));
        let calls = tool_calls.len() as u32;
        totals.tool_calls += calls;
        let batch = batch::run_batch(&inner, &mut out, tool_calls, &stops, &fork_counter).await;
        match batch {
            BatchOutcome::Done(results) => {
                for result in results {
                    messages.push(Message::tool_result(
                        result.tool_call_id,
                        result.content,
                        result.is_error,
                    ));
                }
                close_iteration(&mut out, iteration, calls, false).await;
            }
            BatchOutcome::Stopped(stop) => {
                close_iteration(&mut out, iteration, calls, false).await;
                ending = Some(Ending {
                    response: last_content.clone(),
                    aborted: Some((stop.reason(), Some(stop.error()))),
                });
                break;
            }
        }
    }

    let ending = ending.unwrap_or_else(|| Ending {
        response: last_content,
        aborted: Some((
            AbortReason::MaxIterations,
            Some(ErrorInfo::new(
                "max_iterations",
                format!(
                    "stopped after {} iterations without a final answer",
                    inner.config.max_iterations
                ),
            )),
        )),
    });
    let interrupted = matches!(ending.aborted, Some((AbortReason::Interrupted, _)));
    let (abort_reason, error) = match ending.aborted {
        Some((reason, error)) => (Some(reason), error),
        None => (None, None),
    };
    let final_messages = messages
        .iter()
        .map(|m| serde_json::to_value(m).unwrap_or(serde_json::Value::Null))
        .collect();
    out.emit(ReactEndEvent {
        meta: EventMeta::new(),
        origin: EventOrigin::default(),
        response: ending.response,
        final_messages,
        iterations: totals.iterations,
        total_tool_calls: totals.tool_calls,
        total_llm_calls: totals.llm_calls,
        usage: totals.usage,
        cost_usd: totals.cost_usd,
        aborted: abort_reason.is_some(),
        abort_reason,
        error,
        execution_time_ms: elapsed_ms(started),
    })
    .await;
    out.publish_only(Box::new(AgentTurnEndedEvent {
        meta: out.meta(),
        interrupted,
    }))
    .await;
}

impl Emitter {
    /// Yields the run's response.
    async fn yielder_put_response(&mut self, response: ResponseYield<Message>) {
        self.yielder.put(ReactOutput::Response(response)).await;
    }
}

/// The model name the run's requests use.
fn model_name(inner: &AgentInner) -> String {
    inner
        .config
        .model
        .clone()
        .unwrap_or_else(|| inner.model.name().to_owned())
}

async fn close_iteration(out: &mut Emitter, iteration: u32, tool_calls: u32, final_answer: bool) {
    out.emit(ReactIterationEndEvent {
        meta: EventMeta::new(),
        origin: EventOrigin::default(),
        iteration,
        tool_calls,
        final_answer,
    })
    .await;
}

/// Argument-streaming state of one tool call, by index.
struct ArgState {
    index: u32,
    id: Option<String>,
    name: Option<String>,
    length: u64,
}

/// One streaming LLM call: emits its start, chunks, argument deltas and end (or error).
async fn llm_call(
    inner: &AgentInner,
    out: &mut Emitter,
    messages: &[Message],
    tool_names: &[String],
    stops: &StopTokens,
    totals: &mut Totals,
) -> LlmOutcome {
    let iteration = out.iteration;
    let model = model_name(inner);
    out.emit(LLMCallStartEvent {
        meta: EventMeta::new(),
        origin: EventOrigin::default(),
        iteration,
        messages: messages
            .iter()
            .map(|m| serde_json::to_value(m).unwrap_or(serde_json::Value::Null))
            .collect(),
        tools: tool_names.to_vec(),
        model: Some(model.clone()),
    })
    .await;

    let request = ChatRequest {
        messages: messages.to_vec(),
        tools: inner.definitions.clone(),
        model: inner.config.model.clone(),
        temperature: inner.config.temperature,
        max_tokens: inner.config.max_tokens,
        session_id: Some(out.session_id.clone()),
        ..ChatRequest::default()
    };
    let started = Instant::now();
    totals.llm_calls += 1;
    let mut stream = inner.model.stream(request);
    let mut content = String::new();
    let mut reasoning = String::new();
    let mut text_chunks: u64 = 0;
    let mut reasoning_chunks: u64 = 0;
    let mut first_output: Option<f64> = None;
    let mut args: Vec<ArgState> = Vec::new();
    let mut tool_calls: Vec<ToolCallInfo> = Vec::new();

    loop {
        // Fast path: take an event that is ready without registering for cancellation;
        // check the tokens (two atomic loads) between events.
        let next = match stream.next().now_or_never() {
            Some(next) => {
                if let Some(stop) = stops.check() {
                    return llm_stopped(out, iteration, stop, started).await;
                }
                next
            }
            None => {
                tokio::select! {
                    biased;
                    stop = stops.stopped() => return llm_stopped(out, iteration, stop, started).await,
                    next = stream.next() => next,
                }
            }
        };
        let Some(event) = next else {
            let error = ErrorInfo::new(
                StreamErrorKind::Protocol.as_str(),
                "the model's stream ended without a finish or error event",
            );
            return llm_failed(out, iteration, error, true, started).await;
        };
        match event {
            StreamEvent::TextDelta(delta) => {
                first_output.get_or_insert_with(|| elapsed_ms(started));
                content.push_str(&delta.content);
                let chunk_index = text_chunks;
                text_chunks += 1;
                out.emit(LLMChunkArriveEvent {
                    meta: EventMeta::new(),
                    origin: EventOrigin::default(),
                    iteration,
                    delta: delta.content,
                    accumulated_length: content.len() as u64,
                    channel: ChunkChannel::Text,
                    chunk_index,
                })
                .await;
            }
            StreamEvent::ReasoningDelta(delta) => {
                first_output.get_or_insert_with(|| elapsed_ms(started));
                reasoning.push_str(&delta.content);
                let chunk_index = reasoning_chunks;
                reasoning_chunks += 1;
                out.emit(LLMChunkArriveEvent {
                    meta: EventMeta::new(),
                    origin: EventOrigin::default(),
                    iteration,
                    delta: delta.content,
                    accumulated_length: reasoning.len() as u64,
                    channel: ChunkChannel::Reasoning,
                    chunk_index,
                })
                .await;
            }
            StreamEvent::ToolCallDelta(delta) => {
                first_output.get_or_insert_with(|| elapsed_ms(started));
                let state = match args.iter_mut().position(|s| s.index == delta.index) {
                    Some(i) => &mut args[i],
                    None => {
                        args.push(ArgState {
                            index: delta.index,
                            id: None,
                            name: None,
                            length: 0,
                        });
                        let last = args.len() - 1;
                        &mut args[last]
                    }
                };
                if delta.id.is_some() {
                    state.id = delta.id;
                }
                if delta.name.is_some() {
                    state.name = delta.name;
                }
                state.length += delta.arguments_delta.len() as u64;
                let event = ToolCallArgumentsDeltaEvent {
                    meta: EventMeta::new(),
                    origin: EventOrigin::default(),
                    iteration,
                    index: delta.index,
                    tool_call_id: state.id.clone(),
                    tool_name: state.name.clone(),
                    delta: delta.arguments_delta,
                    accumulated_length: state.length,
                };
                out.emit(event).await;
            }
            StreamEvent::ToolCall(call) => {
                tool_calls.push(ToolCallInfo {
                    id: call.tool_use_id,
                    name: call.tool_name,
                    arguments: call.tool_input,
                    arguments_raw: call.arguments_raw,
                });
            }
            StreamEvent::Finish(finish) => {
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
                    iteration,
                    content: content.clone(),
                    reasoning: (!reasoning.is_empty()).then(|| reasoning.clone()),
                    tool_calls: tool_calls.clone(),
                    finish_reason: finish.stop_reason,
                    usage,
                    cost_usd: finish.cost_usd,
                    model: (!finish.model.is_empty()).then_some(finish.model),
                    time_to_first_token_ms: first_output,
                    execution_time_ms: elapsed_ms(started),
                })
                .await;
                return LlmOutcome::Done {
                    content,
                    tool_calls,
                };
            }
            StreamEvent::Error(error) => {
                let recoverable = error.recoverable;
                return llm_failed(out, iteration, error.to_error_info(), recoverable, started)
                    .await;
            }
            StreamEvent::TextEnd(_) | StreamEvent::ReasoningStart | StreamEvent::ToolResult(_) => {}
        }
    }
}

async fn llm_failed(
    out: &mut Emitter,
    iteration: u32,
    error: ErrorInfo,
    recoverable: bool,
    started: Instant,
) -> LlmOutcome {
    out.emit(LLMCallErrorEvent {
        meta: EventMeta::new(),
        origin: EventOrigin::default(),
        iteration,
        error: error.clone(),
        recoverable,
        execution_time_ms: elapsed_ms(started),
    })
    .await;
    LlmOutcome::Failed(error)
}

async fn llm_stopped(
    out: &mut Emitter,
    iteration: u32,
    stop: Stop,
    started: Instant,
) -> LlmOutcome {
    out.emit(LLMCallErrorEvent {
        meta: EventMeta::new(),
        origin: EventOrigin::default(),
        iteration,
        error: stop.error(),
        recoverable: true,
        execution_time_ms: elapsed_ms(started),
    })
    .await;
    LlmOutcome::Stopped(stop)
}
