//! A scripted multi-turn model for testing agents (and for `agentbus bench agent`):
//! [`ScriptedTurns`] answers its n-th request with the n-th script, and the helpers in
//! this module build scripts the way providers stream (text chunks with snapshots, tool
//! calls whose argument fragments interleave by index, a usage-carrying finish).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agentbus_events::stream::{
    Finish, StreamError, StreamErrorKind, StreamEvent, TextEnd, ToolCall, ToolCallDelta,
};
use agentbus_llm::{ChatModel, ChatRequest, ChatStream};
use futures::StreamExt;

/// What one request to a [`ScriptedTurns`] model streams.
#[derive(Clone, Debug, Default)]
pub struct Turn {
    events: Arc<[StreamEvent]>,
    hang: bool,
    delay: Option<Duration>,
}

impl Turn {
    /// Streams `events`, as given.
    pub fn new(events: Vec<StreamEvent>) -> Self {
        Self {
            events: events.into(),
            hang: false,
            delay: None,
        }
    }

    /// The same turn, but after its events the stream never ends (until dropped): a model
    /// stuck mid-answer, for cancellation tests.
    pub fn then_hang(mut self) -> Self {
        self.hang = true;
        self
    }

    /// The same turn, sleeping `delay` before each event (needs a tokio runtime).
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

/// A model that answers its n-th request with its n-th [`Turn`], and records every
/// request it received. A request beyond the script gets a protocol error stream.
#[derive(Debug)]
pub struct ScriptedTurns {
    name: String,
    turns: Vec<Turn>,
    next: AtomicUsize,
    requests: Mutex<Vec<ChatRequest>>,
    record: bool,
}

impl ScriptedTurns {
    /// A model named `name` playing `turns` in order.
    pub fn new(name: impl Into<String>, turns: Vec<Turn>) -> Self {
        Self {
            name: name.into(),
            turns,
            next: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            record: true,
        }
    }

    /// A model that plays `turns` in a cycle, forever, without recording requests (for
    /// benchmarks: turn `i` gets script `i % turns.len()`).
    pub fn cycling(name: impl Into<String>, turns: Vec<Turn>) -> Self {
        Self {
            record: false,
            ..Self::new(name, turns)
        }
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many requests were received.
    pub fn calls(&self) -> usize {
        self.next.load(Ordering::SeqCst)
    }
}

impl ChatModel for ScriptedTurns {
    fn stream(&self, request: ChatRequest) -> ChatStream {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        if self.record {
            self.requests
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(request);
        }
        let turn = if self.record {
            self.turns.get(n).cloned()
        } else if self.turns.is_empty() {
            None
        } else {
            Some(self.turns[n % self.turns.len()].clone())
        };
        let Some(turn) = turn else {
            let error = StreamError::new(
                StreamErrorKind::Protocol,
                format!(
                    "scripted model has no turn {} (script has {})",
                    n + 1,
                    self.turns.len()
                ),
            );
            return futures::stream::iter([StreamEvent::Error(error)]).boxed();
        };
        let events = turn.events.clone();
        let count = events.len();
        let replay = futures::stream::iter(0..count).map(move |i| events[i].clone());
        let replay = match turn.delay {
            None => replay.boxed(),
            Some(delay) => replay
                .then(move |event| async move {
                    tokio::time::sleep(delay).await;
                    event
                })
                .boxed(),
        };
        if turn.hang {
            replay.chain(futures::stream::pending()).boxed()
        } else {
            replay
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn provider(&self) -> &str {
        "scripted"
    }
}

/// Text deltas for `chunks` (each with the snapshot so far), then `TextEnd`.
pub fn text(chunks: &[&str]) -> Vec<StreamEvent> {
    let mut events = Vec::with_capacity(chunks.len() + 1);
    let mut snapshot = String::new();
    for chunk in chunks {
        snapshot.push_str(chunk);
        events.push(StreamEvent::text_delta(*chunk, snapshot.clone()));
    }
    if !chunks.is_empty() {
        events.push(StreamEvent::TextEnd(TextEnd {
            full_text: snapshot,
        }));
    }
    events
}

/// One tool call of a script: id, tool name, arguments JSON text.
#[derive(Clone, Debug)]
pub struct ScriptedCall {
    /// The call id.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as the model writes them (JSON text).
    pub arguments: String,
}

impl ScriptedCall {
    /// A call `id` of `name` with `arguments` JSON text.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }
}

/// Tool calls as a provider streams parallel calls: each call's arguments split into
/// `fragments` pieces, the pieces of the calls interleaved by index (call 0 piece 0,
/// call 1 piece 0, call 0 piece 1, ...), id and name on each call's first fragment only;
/// then each call complete, in index order.
pub fn tool_calls(calls: &[ScriptedCall], fragments: usize) -> Vec<StreamEvent> {
    let fragments = fragments.max(1);
    let pieces: Vec<Vec<String>> = calls
        .iter()
        .map(|call| split_chars(&call.arguments, fragments))
        .collect();
    let mut events = Vec::new();
    for piece in 0..fragments {
        for (index, (call, parts)) in calls.iter().zip(&pieces).enumerate() {
            let first = piece == 0;
            events.push(StreamEvent::ToolCallDelta(ToolCallDelta {
                index: index as u32,
                id: first.then(|| call.id.clone()),
                name: first.then(|| call.name.clone()),
                arguments_delta: parts[piece].clone(),
            }));
        }
    }
    for call in calls {
        let (input, raw) = match serde_json::from_str::<serde_json::Value>(&call.arguments) {
            Ok(value) => (value, None),
            Err(_) => (serde_json::Value::Null, Some(call.arguments.clone())),
        };
        events.push(StreamEvent::ToolCall(ToolCall {
            tool_use_id: call.id.clone(),
            tool_name: call.name.clone(),
            tool_input: input,
            arguments_raw: raw,
        }));
    }
    events
}

/// `text` split into `parts` pieces of about equal length (on character boundaries;
/// some may be empty when the text is short).
fn split_chars(text: &str, parts: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(parts);
    (0..parts)
        .map(|i| {
            let start = (i * size).min(chars.len());
            let end = ((i + 1) * size).min(chars.len());
            chars[start..end].iter().collect()
        })
        .collect()
}

/// The terminal `Finish` with a stop reason and token counts.
pub fn finish(stop_reason: &str, input_tokens: u64, output_tokens: u64) -> StreamEvent {
    StreamEvent::Finish(Finish {
        stop_reason: stop_reason.into(),
        input_tokens,
        output_tokens,
        model: "scripted".into(),
        ..Finish::default()
    })
}

/// A terminal stream error.
pub fn error(kind: StreamErrorKind, message: &str) -> StreamEvent {
    StreamEvent::Error(StreamError::new(kind, message))
}
