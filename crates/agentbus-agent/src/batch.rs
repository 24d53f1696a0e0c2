//! One tool batch: the tool calls of a model response, run in parallel with a
//! concurrency limit, each on its own task with its timeout, their live events merged
//! into the run's stream.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use agentbus_events::react::{
    CustomEvent, EventOrigin, ReactEvent, ToolCallEndEvent, ToolCallErrorEvent, ToolCallInfo,
    ToolCallResult, ToolCallStartEvent, ToolCallsBatchEndEvent, ToolCallsBatchStartEvent,
};
use agentbus_events::tool::{ToolEndEvent, ToolStartEvent};
use agentbus_events::{EventMeta, PluginInfo};
use futures::stream::SelectAll;
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::context::RunContext;
use crate::elapsed_ms;
use crate::emitter::Emitter;
use crate::stop::{Stop, StopTokens};
use crate::tool::{Tool, ToolContext, ToolError, ToolResult, result_text};
use crate::tool_emitter::{Emission, ToolEventEmitter};

/// A tool result as it goes back into the conversation.
pub(crate) struct ToolMessage {
    pub(crate) tool_call_id: String,
    pub(crate) content: String,
    pub(crate) is_error: bool,
}

/// How a batch ended.
pub(crate) enum BatchOutcome {
    /// Every call finished; the results in the order the model asked for them.
    Done(Vec<ToolMessage>),
    /// The run was cancelled or interrupted; running calls were aborted.
    Stopped(Stop),
}

/// Aborts the task when dropped: a cancelled batch stops its tools at once.
struct AbortOnDrop(JoinHandle<ToolResult>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a running call reports.
enum Progress {
    Emission(Emission),
    Done(ToolResult),
}

/// One running tool call as a stream: its emissions, in order, then its result.
struct RunningCall {
    position: usize,
    emissions: mpsc::Receiver<Emission>,
    task: Option<AbortOnDrop>,
    drained: VecDeque<Emission>,
    result: Option<ToolResult>,
}

impl Stream for RunningCall {
    type Item = (usize, Progress);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let position = self.position;
        if let Some(emission) = self.drained.pop_front() {
            return Poll::Ready(Some((position, Progress::Emission(emission))));
        }
        if let Some(result) = self.result.take() {
            return Poll::Ready(Some((position, Progress::Done(result))));
        }
        if self.task.is_none() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(Some(emission)) = self.emissions.poll_recv(cx) {
            return Poll::Ready(Some((position, Progress::Emission(emission))));
        }
        let Some(task) = self.task.as_mut() else {
            return Poll::Ready(None);
        };
        let joined = match Pin::new(&mut task.0).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(joined) => joined,
        };
        self.task = None;
        let result = match joined {
            Ok(result) => result,
            Err(error) if error.is_panic() => Err(ToolError::Panicked {
                tool: String::new(),
                message: "the tool's task panicked".into(),
            }),
            Err(_) => Err(ToolError::Cancelled),
        };
        // The task has finished, so every emission it sent is in the channel: deliver
        // them before the result.
        while let Ok(emission) = self.emissions.try_recv() {
            self.drained.push_back(emission);
        }
        match self.drained.pop_front() {
            Some(emission) => {
                self.result = Some(result);
                Poll::Ready(Some((position, Progress::Emission(emission))))
            }
            None => Poll::Ready(Some((position, Progress::Done(result)))),
        }
    }
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Runs `tool` with its timeout, catching a panic.
async fn execute(
    tool: Arc<dyn Tool>,
    arguments: serde_json::Value,
    context: ToolContext,
    timeout: std::time::Duration,
) -> ToolResult {
    let name = tool.name().to_owned();
    let call = AssertUnwindSafe(tool.call(arguments, context)).catch_unwind();
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(result)) => result,
        Ok(Err(payload)) => Err(ToolError::Panicked {
            tool: name,
            message: panic_message(payload.as_ref()),
        }),
        Err(_) => Err(ToolError::Timeout {
            tool: name,
            timeout,
        }),
    }
}

/// Per call, what the batch remembers.
struct CallRecord {
    call: ToolCallInfo,
    started: Option<Instant>,
    result: Option<ToolCallResult>,
    message: Option<ToolMessage>,
}

/// One batch in progress: every call's record, the calls not started yet, the running
/// ones.
struct Batch {
    iteration: u32,
    started: Instant,
    records: Vec<CallRecord>,
    pending: VecDeque<usize>,
    running: SelectAll<RunningCall>,
    limit: usize,
}

/// Runs the batch, emitting its events; returns the results in the model's order.
pub(crate) async fn run_batch(ctx: &mut RunContext, calls: Vec<ToolCallInfo>) -> BatchOutcome {
    let mut batch = Batch::open(ctx, calls).await;
    let stop = loop {
        batch.start_ready(ctx).await;
        if batch.running.is_empty() {
            if batch.pending.is_empty() {
                break None;
            }
            continue;
        }
        match batch.next_progress(&ctx.stops).await {
            Err(stop) => break Some(stop),
            Ok(None) => {}
            Ok(Some((position, progress))) => batch.take(&mut ctx.out, position, progress).await,
        }
    };
    if let Some(stop) = stop {
        batch.stop(&mut ctx.out).await;
        batch.close(&mut ctx.out).await;
        return BatchOutcome::Stopped(stop);
    }
    batch.close(&mut ctx.out).await;
    BatchOutcome::Done(batch.into_messages())
}

impl Batch {
    /// Emits `ToolCallsBatchStartEvent`; every call is pending.
    async fn open(ctx: &mut RunContext, calls: Vec<ToolCallInfo>) -> Self {
        let iteration = ctx.out.iteration;
        let started = Instant::now();
        ctx.out
            .emit(ToolCallsBatchStartEvent {
                meta: EventMeta::new(),
                origin: EventOrigin::default(),
                iteration,
                tool_calls: calls.clone(),
            })
            .await;
        let records: Vec<CallRecord> = calls
            .into_iter()
            .map(|call| CallRecord {
                call,
                started: None,
                result: None,
                message: None,
            })
            .collect();
        Self {
            iteration,
            started,
            pending: (0..records.len()).collect(),
            records,
            running: SelectAll::new(),
            limit: ctx.inner.config.tool_concurrency.max(1),
        }
    }

    /// Starts pending calls while fewer than the concurrency limit run.
    async fn start_ready(&mut self, ctx: &mut RunContext) {
        while self.running.len() < self.limit {
            let Some(position) = self.pending.pop_front() else {
                break;
            };
            // `None`: refused before running (unknown tool), already finished.
            if let Some(call) = start_call(ctx, &mut self.records[position], position).await {
                self.running.push(call);
            }
        }
    }

    /// The next emission or result of a running call; `Err` when the run must stop first.
    async fn next_progress(
        &mut self,
        stops: &StopTokens,
    ) -> Result<Option<(usize, Progress)>, Stop> {
        match self.running.next().now_or_never() {
            Some(next) => match stops.check() {
                Some(stop) => Err(stop),
                None => Ok(next),
            },
            None => tokio::select! {
                biased;
                stop = stops.stopped() => Err(stop),
                next = self.running.next() => Ok(next),
            },
        }
    }

    /// A running call's custom event, forwarded sub-agent event, or result.
    async fn take(&mut self, out: &mut Emitter, position: usize, progress: Progress) {
        let record = &mut self.records[position];
        match progress {
            Progress::Emission(Emission::Custom { event_name, data }) => {
                let event = CustomEvent {
                    meta: EventMeta::new(),
                    origin: EventOrigin::default(),
                    event_name,
                    data,
                    tool_call_id: Some(record.call.id.clone()),
                    tool_name: Some(record.call.name.clone()),
                };
                out.emit_with_tool(
                    ReactEvent::Custom(event),
                    &record.call.name,
                    &record.call.id,
                )
                .await;
            }
            Progress::Emission(Emission::Forward(event)) => out.forward(*event).await,
            Progress::Done(mut result) => {
                if let Err(ToolError::Panicked { tool, .. }) = &mut result
                    && tool.is_empty()
                {
                    tool.clone_from(&record.call.name);
                }
                finish_call(out, record, result).await;
            }
        }
    }

    /// The run stopped: aborts the running tools, then closes every call that had
    /// started as cancelled.
    async fn stop(&mut self, out: &mut Emitter) {
        self.running = SelectAll::new();
        for record in self.records.iter_mut() {
            if record.started.is_some() && record.result.is_none() {
                finish_call(out, record, Err(ToolError::Cancelled)).await;
            }
        }
    }

    /// `ToolCallsBatchEndEvent` with every call's result (a call that never ran counts
    /// as cancelled).
    async fn close(&self, out: &mut Emitter) {
        let results: Vec<ToolCallResult> = self
            .records
            .iter()
            .map(|record| {
                record.result.clone().unwrap_or_else(|| ToolCallResult {
                    tool_call_id: record.call.id.clone(),
                    tool_name: record.call.name.clone(),
                    success: false,
                    result: serde_json::Value::Null,
                    error: Some(ToolError::Cancelled.to_error_info()),
                    execution_time_ms: 0.0,
                })
            })
            .collect();
        let success_count = results.iter().filter(|r| r.success).count() as u32;
        let error_count = results.len() as u32 - success_count;
        out.emit(ToolCallsBatchEndEvent {
            meta: EventMeta::new(),
            origin: EventOrigin::default(),
            iteration: self.iteration,
            results,
            success_count,
            error_count,
            execution_time_ms: elapsed_ms(self.started),
        })
        .await;
    }

    /// The tool messages for the conversation, in the model's order.
    fn into_messages(self) -> Vec<ToolMessage> {
        self.records
            .into_iter()
            .map(|record| {
                record.message.unwrap_or_else(|| ToolMessage {
                    tool_call_id: record.call.id,
                    content: "error: the tool call did not run".into(),
                    is_error: true,
                })
            })
            .collect()
    }
}

/// Emits the call's start and spawns it; an unknown tool finishes at once (`None`).
async fn start_call(
    ctx: &mut RunContext,
    record: &mut CallRecord,
    position: usize,
) -> Option<RunningCall> {
    let RunContext {
        inner,
        out,
        stops,
        fork_counter,
        ..
    } = ctx;
    let iteration = out.iteration;
    record.started = Some(Instant::now());
    out.emit(ToolCallStartEvent {
        meta: EventMeta::new(),
        origin: EventOrigin::default(),
        iteration,
        tool_name: record.call.name.clone(),
        tool_call_id: record.call.id.clone(),
        arguments: record.call.arguments.clone(),
    })
    .await;
    out.publish_only(Box::new(ToolStartEvent {
        meta: out.meta(),
        plugin: PluginInfo::named(out.plugin_name.clone()),
        tool_name: record.call.name.clone(),
        arguments: Some(record.call.arguments.clone()),
        tool_call_id: Some(record.call.id.clone()),
    }))
    .await;

    let Some(tool) = inner.tool(&record.call.name).cloned() else {
        let mut available: Vec<&str> = inner.tools.iter().map(|t| t.name()).collect();
        available.sort_unstable();
        let error = ToolError::UnknownTool {
            name: record.call.name.clone(),
            available: available.join(", "),
        };
        finish_call(out, record, Err(error)).await;
        return None;
    };
    let arguments = match (&record.call.arguments, &record.call.arguments_raw) {
        (serde_json::Value::Null, None) => serde_json::Value::Object(serde_json::Map::new()),
        (value, _) => value.clone(),
    };
    let (emitter, emissions) = ToolEventEmitter::channel();
    let mut origin = out.origin.clone();
    origin.tool_name = Some(record.call.name.clone());
    origin.tool_call_id = Some(record.call.id.clone());
    let context = ToolContext {
        tool_name: record.call.name.clone(),
        tool_call_id: record.call.id.clone(),
        origin,
        emitter,
        cancel: stops.combined(),
        publisher: out.publisher.clone(),
        fork_counter: fork_counter.clone(),
    };
    let timeout = tool.timeout().unwrap_or(inner.config.tool_timeout);
    let task = tokio::spawn(execute(tool, arguments, context, timeout));
    Some(RunningCall {
        position,
        emissions,
        task: Some(AbortOnDrop(task)),
        drained: VecDeque::new(),
        result: None,
    })
}

/// Emits the call's error (if it failed) and end, and records its result.
async fn finish_call(out: &mut Emitter, record: &mut CallRecord, result: ToolResult) {
    let iteration = out.iteration;
    let execution_time_ms = record.started.map(elapsed_ms).unwrap_or(0.0);
    let (value, error) = match result {
        Ok(value) => (value, None),
        Err(error) => (serde_json::Value::Null, Some(error)),
    };
    let error_info = error.as_ref().map(ToolError::to_error_info);
    if let Some(info) = &error_info {
        out.emit(ToolCallErrorEvent {
            meta: EventMeta::new(),
            origin: EventOrigin::default(),
            iteration,
            tool_name: record.call.name.clone(),
            tool_call_id: record.call.id.clone(),
            arguments: record.call.arguments.clone(),
            error: info.clone(),
            execution_time_ms,
        })
        .await;
    }
    let success = error.is_none();
    out.emit(ToolCallEndEvent {
        meta: EventMeta::new(),
        origin: EventOrigin::default(),
        iteration,
        tool_name: record.call.name.clone(),
        tool_call_id: record.call.id.clone(),
        arguments: record.call.arguments.clone(),
        result: value.clone(),
        success,
        error: error_info.clone(),
        execution_time_ms,
    })
    .await;
    out.publish_only(Box::new(ToolEndEvent {
        meta: out.meta(),
        plugin: PluginInfo::named(out.plugin_name.clone()),
        tool_name: record.call.name.clone(),
        success,
        result: success.then(|| value.clone()),
        error: error.as_ref().map(ToString::to_string),
        tool_call_id: Some(record.call.id.clone()),
        execution_time_ms: Some(execution_time_ms),
    }))
    .await;
    let content = match &error {
        None => result_text(&value),
        Some(error) => format!("error: {error}"),
    };
    record.message = Some(ToolMessage {
        tool_call_id: record.call.id.clone(),
        content,
        is_error: !success,
    });
    record.result = Some(ToolCallResult {
        tool_call_id: record.call.id.clone(),
        tool_name: record.call.name.clone(),
        success,
        result: value,
        error: error_info,
        execution_time_ms,
    });
}
