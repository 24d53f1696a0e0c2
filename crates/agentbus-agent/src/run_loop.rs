//! The ReAct loop of one run: what is emitted, when, and with which origin.
//!
//! A run is: [`open`] (the run's origin and [`Emitter`]), [`announce`] (the turn's and
//! the loop's start events), the conversation's first messages, then [`iterate`] (per
//! iteration: an LLM call, then either the answer or a tool batch), and [`close`] (the
//! loop's and the turn's end events).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use agentbus_events::ErrorInfo;
use agentbus_events::EventMeta;
use agentbus_events::agent::{AgentTurnEndedEvent, AgentTurnStartedEvent};
use agentbus_events::react::{
    AbortReason, EventOrigin, ReactEndEvent, ReactIterationEndEvent, ReactIterationStartEvent,
    ReactStartEvent, ResponseYield, ToolCallInfo,
};
use agentbus_llm::{Message, Role, ToolCallRequest};

use crate::batch::{self, BatchOutcome};
use crate::context::RunContext;
use crate::elapsed_ms;
use crate::emitter::Emitter;
use crate::generator::Yielder;
use crate::inner::{AgentInner, AgentOutput};
use crate::llm_call::{self, LlmOutcome};
use crate::request::RunRequest;
use crate::stop::{Stop, StopTokens};

/// How the run ended, for the closing events.
struct Ending {
    response: String,
    aborted: Option<(AbortReason, ErrorInfo)>,
}

impl Ending {
    /// The model answered.
    fn answered(response: String) -> Self {
        Self {
            response,
            aborted: None,
        }
    }

    /// Aborted for `reason`; `response` is the last content the model produced.
    fn aborted(response: String, reason: AbortReason, error: ErrorInfo) -> Self {
        Self {
            response,
            aborted: Some((reason, error)),
        }
    }

    /// Cancelled or interrupted.
    fn stopped(response: String, stop: Stop) -> Self {
        Self::aborted(response, stop.reason(), stop.error())
    }
}

/// The conversation as the run builds it: what the next request sends, and the content
/// of the last LLM call (the response of a run that ends without an answer).
struct Conversation {
    messages: Vec<Message>,
    last_content: String,
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
    let out = open(&inner, &request, yielder);
    let tool_choice =
        (request.tool_choice.clone()).unwrap_or_else(|| inner.config.tool_choice.clone());
    let mut ctx = RunContext::new(inner, out, stops, tool_choice);
    announce(&mut ctx, &request).await;
    let mut conversation = Conversation {
        messages: first_messages(&ctx.inner, &request),
        last_content: String::new(),
    };
    let ending = iterate(&mut ctx, &mut conversation).await;
    close(&mut ctx, &conversation.messages, ending, started).await;
}

/// The run's origin (a fork's names its parent) and its way out.
fn open(inner: &AgentInner, request: &RunRequest, yielder: Yielder<AgentOutput>) -> Emitter {
    let session_id = request
        .session_id
        .clone()
        .or_else(|| inner.config.session_id.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let agent_call_id = uuid::Uuid::new_v4().to_string();
    let (origin, publisher) = match &request.parent {
        None => (
            EventOrigin {
                session_id,
                agent_call_id,
                epoch: inner.epoch.load(Ordering::SeqCst),
                ..EventOrigin::default()
            },
            inner.publisher.clone(),
        ),
        Some(parent) => (
            EventOrigin {
                session_id,
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
    Emitter::new(
        yielder,
        origin,
        publisher,
        inner.model.provider().to_owned(),
    )
}

/// The turn's start on the bus, then `ReactStartEvent`.
async fn announce(ctx: &mut RunContext, request: &RunRequest) {
    ctx.out
        .publish_only(Box::new(AgentTurnStartedEvent {
            meta: ctx.out.meta(),
        }))
        .await;
    let event = ReactStartEvent {
        meta: EventMeta::new(),
        origin: EventOrigin::default(),
        user_message: request.message.clone(),
        tools: ctx.tool_names.clone(),
        max_iterations: ctx.inner.config.max_iterations,
        model: Some(ctx.model_name()),
    };
    ctx.out.emit(event).await;
}

/// The system prompt (unless the history brings its own), the history, and the user's
/// message (unless the run resumes after tool results).
fn first_messages(inner: &AgentInner, request: &RunRequest) -> Vec<Message> {
    let mut messages: Vec<Message> = Vec::with_capacity(request.history.len() + 4);
    if let Some(system) = &inner.config.system_prompt {
        let has_system = matches!(request.history.first(), Some(m) if m.role == Role::System);
        if !has_system {
            messages.push(Message::system(system.clone()));
        }
    }
    messages.extend(request.history.iter().cloned());
    if request.user_turn {
        messages.push(Message::user(request.message.clone()));
    }
    messages
}

/// Iterations until an answer, an abort, or the iteration limit.
async fn iterate(ctx: &mut RunContext, conversation: &mut Conversation) -> Ending {
    let max_iterations = ctx.inner.config.max_iterations;
    for iteration in 1..=max_iterations {
        if let Some(stop) = ctx.stops.check() {
            return Ending::stopped(conversation.last_content.clone(), stop);
        }
        if let Some(ending) = one_iteration(ctx, conversation, iteration).await {
            return ending;
        }
    }
    Ending::aborted(
        std::mem::take(&mut conversation.last_content),
        AbortReason::MaxIterations,
        ErrorInfo::new(
            "max_iterations",
            format!("stopped after {max_iterations} iterations without a final answer"),
        ),
    )
}

/// One iteration: an LLM call, then the answer or a tool batch. `Some` when the run ends.
async fn one_iteration(
    ctx: &mut RunContext,
    conversation: &mut Conversation,
    iteration: u32,
) -> Option<Ending> {
    ctx.out.iteration = iteration;
    ctx.totals.iterations = iteration;
    ctx.out
        .emit(ReactIterationStartEvent {
            meta: EventMeta::new(),
            origin: EventOrigin::default(),
            iteration,
        })
        .await;

    let (content, tool_calls) = match llm_call::llm_call(ctx, &conversation.messages).await {
        LlmOutcome::Done {
            content,
            tool_calls,
        } => (content, tool_calls),
        LlmOutcome::Failed(error) => {
            close_iteration(&mut ctx.out, 0, false).await;
            let response = conversation.last_content.clone();
            return Some(Ending::aborted(response, AbortReason::LlmError, error));
        }
        LlmOutcome::Stopped(stop) => {
            close_iteration(&mut ctx.out, 0, false).await;
            return Some(Ending::stopped(conversation.last_content.clone(), stop));
        }
    };
    conversation.last_content.clone_from(&content);
    if tool_calls.is_empty() {
        Some(answer(ctx, conversation, content).await)
    } else {
        run_tools(ctx, conversation, content, tool_calls).await
    }
}

/// The model answered: the iteration ends and the response is yielded.
async fn answer(ctx: &mut RunContext, conversation: &mut Conversation, content: String) -> Ending {
    conversation
        .messages
        .push(Message::assistant(content.clone()));
    close_iteration(&mut ctx.out, 0, true).await;
    ctx.out
        .respond(ResponseYield {
            response: content.clone(),
            messages: conversation.messages.clone(),
        })
        .await;
    Ending::answered(content)
}

/// The model called tools: they run as a batch and their results join the conversation.
/// `Some` when the run was stopped during the batch.
async fn run_tools(
    ctx: &mut RunContext,
    conversation: &mut Conversation,
    content: String,
    tool_calls: Vec<ToolCallInfo>,
) -> Option<Ending> {
    conversation
        .messages
        .push(Message::assistant_with_tool_calls(
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
    ctx.totals.tool_calls += calls;
    match batch::run_batch(ctx, tool_calls).await {
        BatchOutcome::Done(results) => {
            for result in results {
                conversation.messages.push(Message::tool_result(
                    result.tool_call_id,
                    result.content,
                    result.is_error,
                ));
            }
            close_iteration(&mut ctx.out, calls, false).await;
            None
        }
        BatchOutcome::Stopped(stop) => {
            close_iteration(&mut ctx.out, calls, false).await;
            Some(Ending::stopped(conversation.last_content.clone(), stop))
        }
    }
}

/// `ReactIterationEndEvent` for the iteration in progress.
async fn close_iteration(out: &mut Emitter, tool_calls: u32, final_answer: bool) {
    let iteration = out.iteration;
    out.emit(ReactIterationEndEvent {
        meta: EventMeta::new(),
        origin: EventOrigin::default(),
        iteration,
        tool_calls,
        final_answer,
    })
    .await;
}

/// `ReactEndEvent` with the run's totals, then the turn's end on the bus.
async fn close(ctx: &mut RunContext, messages: &[Message], ending: Ending, started: Instant) {
    let interrupted = matches!(ending.aborted, Some((AbortReason::Interrupted, _)));
    let (abort_reason, error) = match ending.aborted {
        Some((reason, error)) => (Some(reason), Some(error)),
        None => (None, None),
    };
    let final_messages = messages
        .iter()
        .map(|m| serde_json::to_value(m).unwrap_or(serde_json::Value::Null))
        .collect();
    let totals = std::mem::take(&mut ctx.totals);
    ctx.out
        .emit(ReactEndEvent {
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
    ctx.out
        .publish_only(Box::new(AgentTurnEndedEvent {
            meta: ctx.out.meta(),
            interrupted,
        }))
        .await;
}
