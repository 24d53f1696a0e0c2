//! The `local` provider: [`LocalChatModel`] implements [`ChatModel`] with the embedded
//! model.
//!
//! Inference is CPU-bound, so each request runs on its own OS thread and streams its
//! events back through a channel; dropping the stream closes the channel, and generation
//! stops at the next token. One model serves one request at a time (a second request
//! waits for the first). Every request is a new conversation for the model: its KV cache
//! is cleared.
//!
//! What the stream carries: [`StreamEvent::TextDelta`]s as tokens are decoded, tool calls
//! (the model's `<tool_call>[...]</tool_call>` format, see [`crate::tool_calls`]) as one
//! [`StreamEvent::ToolCallDelta`] and one [`StreamEvent::ToolCall`] each, then
//! [`StreamEvent::TextEnd`] and a [`StreamEvent::Finish`] with the real prompt and
//! completion token counts and `cost_usd: Some(0.0)` — a local model costs nothing, which
//! is known, unlike an unknown price (`None`).
//!
//! A 135M-parameter model follows tool instructions unreliably: expect answers in prose
//! where a call was wanted, and the odd malformed call (given back as text).

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use agentbus_events::stream::{
    Finish, StreamError, StreamErrorKind, StreamEvent, TextDelta, TextEnd, TextSnapshot, ToolCall,
    ToolCallDelta,
};
use agentbus_llm::{ChatModel, ChatRequest, ChatStream, Message, Role, ToolChoice, ToolDefinition};
use futures::channel::mpsc;

use crate::constraint::ToolCallConstraint;
use crate::engine::{GenerationParams, LocalModel, StopReason};
use crate::error::{LocalError, Result};
use crate::home::ModelDir;
use crate::spec::ModelSpec;
use crate::template::{DEFAULT_SYSTEM_PROMPT, Turn, TurnRole};
use crate::tool_calls::{CLOSE_TAG, OPEN_TAG, ParsedToolCall, Segment, ToolCallParser};

/// The provider's name.
pub const PROVIDER: &str = "local";

/// Tokens generated when the request sets no `max_tokens`.
pub const DEFAULT_MAX_TOKENS: usize = 512;

/// The embedded model as a [`ChatModel`]. Cheap to clone (the model is shared).
#[derive(Clone, Debug)]
pub struct LocalChatModel {
    model: Arc<Mutex<LocalModel>>,
    name: String,
}

impl LocalChatModel {
    /// Serves `model`.
    pub fn new(model: LocalModel) -> Self {
        let name = model.name().to_owned();
        Self {
            model: Arc::new(Mutex::new(model)),
            name,
        }
    }

    /// Serves a model shared with other users of the same `Arc` (each generation takes
    /// the lock for its duration).
    pub fn shared(model: Arc<Mutex<LocalModel>>) -> Self {
        let name = model
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .name()
            .to_owned();
        Self { model, name }
    }

    /// Loads `spec` from `dir` (see [`LocalModel::load`]); the model must have been
    /// pulled.
    pub fn load(dir: &ModelDir, spec: &ModelSpec) -> Result<Self> {
        Ok(Self::new(LocalModel::load(dir, spec)?))
    }
}

impl ChatModel for LocalChatModel {
    fn stream(&self, request: ChatRequest) -> ChatStream {
        let (sender, receiver) = mpsc::unbounded();
        let model = Arc::clone(&self.model);
        let name = self.name.clone();
        let spawned = std::thread::Builder::new()
            .name("agentbus-local".into())
            .spawn(move || {
                let emit = |event: StreamEvent| sender.unbounded_send(event).is_ok();
                // A poisoned lock means an earlier generation panicked part-way; the
                // model's state is reset (KV cache cleared) at the start of each one.
                let mut model = model
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Err(error) = answer(&mut model, &name, &request, &emit) {
                    emit(StreamEvent::Error(stream_error(error)));
                }
            });
        if let Err(error) = spawned {
            let event = StreamEvent::Error(
                StreamError::new(
                    StreamErrorKind::Server,
                    format!("cannot start the local model's thread: {error}"),
                )
                .with_recoverable(false),
            );
            return Box::pin(futures::stream::iter([event]));
        }
        Box::pin(receiver)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn provider(&self) -> &str {
        PROVIDER
    }
}

fn stream_error(error: LocalError) -> StreamError {
    match error {
        LocalError::ContextTooLong { .. } => {
            StreamError::new(StreamErrorKind::BadRequest, error.to_string())
                .with_code("context_length_exceeded")
                .with_recoverable(false)
        }
        LocalError::Tokenizer(_) => {
            StreamError::new(StreamErrorKind::BadRequest, error.to_string()).with_recoverable(false)
        }
        other => StreamError::new(StreamErrorKind::Server, other.to_string())
            .with_code("local_model_error")
            .with_recoverable(false),
    }
}

/// Runs one request, sending its events through `emit` (which returns `false` once the
/// stream was dropped). Errors are returned for the caller to send as the terminal event.
fn answer(
    model: &mut LocalModel,
    name: &str,
    request: &ChatRequest,
    emit: &dyn Fn(StreamEvent) -> bool,
) -> Result<()> {
    if let Some(requested) = request.model.as_deref()
        && requested != name
        && !requested.eq_ignore_ascii_case(PROVIDER)
    {
        emit(StreamEvent::Error(
            StreamError::new(
                StreamErrorKind::BadRequest,
                format!("the local provider runs `{name}`, not `{requested}`"),
            )
            .with_code("model_not_found")
            .with_recoverable(false),
        ));
        return Ok(());
    }
    let choice = request.tool_choice.clone().unwrap_or_default();
    if let Err(problem) = choice.check(&request.tools) {
        emit(StreamEvent::Error(
            StreamError::new(StreamErrorKind::BadRequest, problem)
                .with_code("invalid_tool_choice")
                .with_recoverable(false),
        ));
        return Ok(());
    }
    let turns = turns(request);
    let prompt = model.render_prompt(&turns)?;
    let params = GenerationParams {
        max_tokens: request
            .max_tokens
            .map_or(DEFAULT_MAX_TOKENS, |max| max as usize),
        temperature: request.temperature.map(f64::from),
        top_p: request.top_p.map(f64::from),
        seed: request.seed,
        ..GenerationParams::default()
    };
    // With tools offered, every token is checked against the grammar of the choice:
    // text or a valid call (`auto`), a valid call (`required`, a named tool), text that
    // does not begin like a call (`none`, whose text is never parsed for calls).
    let parse_calls = !request.tools.is_empty() && choice != ToolChoice::None;
    let mut constraint = if !request.tools.is_empty() {
        let parallel = request.parallel_tool_calls.unwrap_or(true);
        Some(ToolCallConstraint::new(
            model.constraint_env()?,
            &request.tools,
            &choice,
            parallel,
        )?)
    } else {
        None
    };

    let mut output = Output::new(emit, &request.stop, parse_calls);
    let generation = model.generate_with(
        &prompt,
        &params,
        constraint
            .as_mut()
            .map(|constraint| constraint as &mut dyn crate::TokenConstraint),
        &mut |piece| output.push(piece),
    )?;
    if generation.stop == StopReason::Cancelled && !output.stopped_by_sequence {
        // The stream was dropped: nobody is listening.
        return Ok(());
    }
    output.finish();
    let stop_reason = if output.tool_calls > 0 {
        "tool_calls"
    } else if output.stopped_by_sequence {
        "stop"
    } else {
        generation.stop.as_str()
    };
    emit(StreamEvent::Finish(Finish {
        stop_reason: stop_reason.to_owned(),
        input_tokens: generation.prompt_tokens as u64,
        output_tokens: generation.completion_tokens as u64,
        cached_tokens: Some(generation.cached_prompt_tokens as u64),
        cost_usd: Some(0.0),
        model: name.to_owned(),
        ..Finish::default()
    }));
    Ok(())
}

/// Turns text pieces into stream events: tool calls parsed out, stop sequences applied.
struct Output<'a> {
    emit: &'a dyn Fn(StreamEvent) -> bool,
    parser: ToolCallParser,
    stop: &'a [String],
    /// Text that may be the start of a stop sequence, not yet sent.
    held: String,
    snapshot: TextSnapshot,
    tool_calls: u32,
    stopped_by_sequence: bool,
    open: bool,
}

impl<'a> Output<'a> {
    fn new(emit: &'a dyn Fn(StreamEvent) -> bool, stop: &'a [String], parse_calls: bool) -> Self {
        Self {
            emit,
            parser: if parse_calls {
                ToolCallParser::new()
            } else {
                ToolCallParser::text_only()
            },
            stop,
            held: String::new(),
            snapshot: TextSnapshot::new(),
            tool_calls: 0,
            stopped_by_sequence: false,
            open: true,
        }
    }

    fn push(&mut self, piece: &str) -> ControlFlow<()> {
        let segments = self.parser.push(piece);
        self.send(segments);
        if self.open && !self.stopped_by_sequence {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    }

    fn finish(&mut self) {
        if !self.stopped_by_sequence {
            let segments = self.parser.finish();
            self.send(segments);
            let held = std::mem::take(&mut self.held);
            self.text(&held);
        }
        if !self.snapshot.is_empty() {
            self.open &= (self.emit)(StreamEvent::TextEnd(TextEnd {
                full_text: self.snapshot.to_string(),
            }));
        }
    }

    fn send(&mut self, segments: Vec<Segment>) {
        for segment in segments {
            if self.stopped_by_sequence {
                return;
            }
            match segment {
                Segment::Text(text) => self.stoppable_text(&text),
                Segment::ToolCall(call) => {
                    let held = std::mem::take(&mut self.held);
                    self.text(&held);
                    self.tool_call(call);
                }
            }
        }
    }

    /// Sends `text` up to the first stop sequence, holding back a possible beginning of
    /// one.
    fn stoppable_text(&mut self, text: &str) {
        self.held.push_str(text);
        if let Some(at) = self
            .stop
            .iter()
            .filter(|stop| !stop.is_empty())
            .filter_map(|stop| self.held.find(stop.as_str()))
            .min()
        {
            let before = self.held[..at].to_owned();
            self.held.clear();
            self.text(&before);
            self.stopped_by_sequence = true;
            return;
        }
        let keep = self
            .stop
            .iter()
            .filter_map(|stop| {
                (1..stop.len()).rev().find(|&len| {
                    self.held.len() >= len
                        && self.held.is_char_boundary(self.held.len() - len)
                        && stop.starts_with(&self.held[self.held.len() - len..])
                })
            })
            .max()
            .unwrap_or(0);
        let split = self.held.len() - keep;
        let ready = self.held[..split].to_owned();
        self.held.drain(..split);
        self.text(&ready);
    }

    fn text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.open &= (self.emit)(StreamEvent::TextDelta(TextDelta {
            content: text.to_owned(),
            snapshot: self.snapshot.push(text),
        }));
    }

    fn tool_call(&mut self, call: ParsedToolCall) {
        let id = format!("call_{}", &uuid::Uuid::new_v4().simple().to_string()[..24]);
        let arguments = call.arguments.to_string();
        self.open &= (self.emit)(StreamEvent::ToolCallDelta(ToolCallDelta {
            index: self.tool_calls,
            id: Some(id.clone()),
            name: Some(call.name.clone()),
            arguments_delta: arguments,
        }));
        self.open &= (self.emit)(StreamEvent::ToolCall(ToolCall {
            tool_use_id: id,
            tool_name: call.name,
            tool_input: call.arguments,
            arguments_raw: None,
        }));
        self.tool_calls += 1;
    }
}

/// The conversation of `request` as template turns, with the tools described in the
/// system message.
pub fn turns(request: &ChatRequest) -> Vec<Turn> {
    let mut turns: Vec<Turn> = Vec::with_capacity(request.messages.len() + 1);
    for (index, message) in request.messages.iter().enumerate() {
        let mut turn = turn(message);
        if message.role == Role::Tool {
            let call = request.messages[..index]
                .iter()
                .rev()
                .flat_map(|m| &m.tool_calls)
                .find(|call| Some(&call.id) == message.tool_call_id.as_ref());
            if let Some(call) = call {
                turn.content = tool_result_text(&call.name, &turn.content);
            }
        }
        turns.push(turn);
    }
    if !request.tools.is_empty() {
        let instructions = tool_instructions(&request.tools);
        match turns.first_mut() {
            Some(first) if first.role == TurnRole::System => {
                first.content = format!("{}\n\n{instructions}", first.content);
            }
            _ => turns.insert(
                0,
                Turn::new(
                    TurnRole::System,
                    format!("{DEFAULT_SYSTEM_PROMPT}\n\n{instructions}"),
                ),
            ),
        }
    }
    turns
}

fn turn(message: &Message) -> Turn {
    let role = match message.role {
        Role::System => TurnRole::System,
        Role::User => TurnRole::User,
        Role::Assistant => TurnRole::Assistant,
        Role::Tool => TurnRole::Tool,
    };
    let mut content = message.content.clone();
    if !message.tool_calls.is_empty() {
        let calls: Vec<serde_json::Value> = message
            .tool_calls
            .iter()
            .map(|call| serde_json::json!({"name": call.name, "arguments": call.arguments}))
            .collect();
        content.push_str(OPEN_TAG);
        content.push_str(&serde_json::Value::Array(calls).to_string());
        content.push_str(CLOSE_TAG);
    }
    if message.role == Role::Tool && message.is_error {
        content = format!("Error: {content}");
    }
    Turn::new(role, content)
}

/// How a tool's result reads to the model: `The calculator tool returned: 6912`. Given the
/// bare result ("6912"), the 135M model tends to repeat the call's arguments as its answer;
/// a sentence naming the tool leads it to the result.
fn tool_result_text(name: &str, result: &str) -> String {
    format!("The {name} tool returned: {result}")
}

/// The system prompt an agent on this model works best with (`agentbus run` and `bench
/// local` use it): short, since every token of it is processed before the first answer
/// token (once: then it is a cached prefix), with one line per built-in tool.
pub const AGENT_SYSTEM_PROMPT: &str = "You are a helpful assistant. For arithmetic or unit \
    conversion call calculator. For the date or time call current_time. For files call \
    read_file or list_dir. Otherwise answer briefly. After a tool result, answer with it.";

/// The system-message section that teaches the model the tools and the call format
/// (SmolLM2-Instruct's function-calling prompt, adapted so it may also answer in text).
pub fn tool_instructions(tools: &[ToolDefinition]) -> String {
    let tools: Vec<serde_json::Value> = tools
        .iter()
        .map(|tool| {
            serde_json::json!({
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            })
        })
        .collect();
    format!(
        "You are an expert in composing functions. You are given a question and a set of possible functions. \
Based on the question, you will need to make one or more function/tool calls to achieve the purpose. \
If none of the functions can be used, answer the question directly.\n\n\
You have access to the following tools:\n<tools>{}</tools>\n\n\
To call tools, reply with only a list of calls in this format:\n\
<tool_call>[\n{{\"name\": \"func_name1\", \"arguments\": {{\"argument1\": \"value1\", \"argument2\": \"value2\"}}}}\n]</tool_call>\n\
When a tool's result is given to you, use it to answer the user in plain text.",
        serde_json::Value::Array(tools)
    )
}
