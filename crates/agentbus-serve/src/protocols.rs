//! The two agent endpoints: `POST /ag-ui` (AG-UI 1.0) and `POST /api/chat` (AI SDK UI
//! message stream v1). Each decodes the body (a clear 400 naming the field on bad
//! input, before anything runs), builds the run and streams the mapped events as SSE.

use std::convert::Infallible;

use agentbus_agent::AgentOutput;
use agentbus_llm::ToolDefinition;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::agui::{AgUiEvent, RunAgentInput};
use crate::convert;
use crate::error::RequestError;
use crate::run::{self, FrameMapper, is_batch_end};
use crate::server::Server;
use crate::to_agui::AgUiMapper;
use crate::to_ui_stream::UiStreamMapper;
use crate::ui_stream::{self, ChatRequest, UiChunk};

/// Decodes a JSON body, naming the offending field.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, RequestError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            RequestError::invalid(format!("invalid body: {inner}"))
        } else {
            RequestError::invalid(format!("invalid body at `{path}`: {inner}"))
        }
    })
}

fn json_line<T: serde::Serialize>(value: &T) -> String {
    // The protocol types hold only strings, numbers and JSON values: encoding cannot fail.
    serde_json::to_string(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode a protocol event");
        String::from("{}")
    })
}

/// Frames as an SSE response (`data: <frame>\n\n`), with keep-alive comments.
fn sse(rx: mpsc::Receiver<String>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let frame = rx.recv().await?;
        Some((Ok(Event::default().data(frame)), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

struct AgUiFrames(AgUiMapper);

impl FrameMapper for AgUiFrames {
    fn opening(&mut self) -> Vec<String> {
        vec![json_line(&self.0.run_started())]
    }

    fn map(&mut self, output: &AgentOutput) -> Vec<String> {
        let mut events = Vec::new();
        self.0.push(output, &mut events);
        events.iter().map(json_line).collect()
    }

    fn should_stop(&self, output: &AgentOutput) -> bool {
        is_batch_end(output) && !self.0.pending_client_calls().is_empty()
    }

    fn closing(&mut self) -> Vec<String> {
        if self.0.is_finished() {
            Vec::new()
        } else {
            let error: AgUiEvent = self
                .0
                .error("the agent stopped without ending its run", "internal");
            vec![json_line(&error)]
        }
    }
}

/// `POST /ag-ui`.
pub(crate) async fn ag_ui(
    State(server): State<Server>,
    body: Bytes,
) -> Result<Response, RequestError> {
    let input: RunAgentInput = decode(&body)?;
    let conversation = convert::from_run_input(&input)?;
    let mut client_tools = Vec::with_capacity(input.tools.len());
    for tool in &input.tools {
        if tool.name.trim().is_empty() {
            return Err(RequestError::invalid("a client tool has an empty name"));
        }
        if server.template().has_tool(&tool.name) {
            return Err(RequestError::invalid(format!(
                "client tool `{}` has the name of a server tool",
                tool.name
            )));
        }
        client_tools.push(ToolDefinition {
            name: tool.name.clone(),
            description: tool.description.clone(),
            parameters: tool
                .parameters
                .clone()
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        });
    }
    let names = client_tools
        .iter()
        .map(|t| t.name.clone())
        .collect::<Vec<_>>();
    let agent = server
        .template()
        .agent(server.bus(), &input.thread_id, client_tools);
    tracing::info!(thread = %input.thread_id, run = %input.run_id, "AG-UI run");
    let mapper = AgUiMapper::new(&input.thread_id, &input.run_id, names);
    let request = conversation.request.session_id(input.thread_id.clone());
    let rx = run::start(
        agent,
        request,
        AgUiFrames(mapper),
        server.run_counters().clone(),
    );
    Ok(sse(rx).into_response())
}

struct UiFrames(UiStreamMapper);

impl FrameMapper for UiFrames {
    fn opening(&mut self) -> Vec<String> {
        vec![json_line(&self.0.start())]
    }

    fn map(&mut self, output: &AgentOutput) -> Vec<String> {
        let mut chunks = Vec::new();
        self.0.push(output, &mut chunks);
        chunks.iter().map(json_line).collect()
    }

    fn should_stop(&self, _output: &AgentOutput) -> bool {
        false
    }

    fn closing(&mut self) -> Vec<String> {
        let mut frames = Vec::new();
        if !self.0.is_finished() {
            let chunks: Vec<UiChunk> = self.0.error("the agent stopped without ending its run");
            frames.extend(chunks.iter().map(json_line));
        }
        frames.push(ui_stream::DONE.to_owned());
        frames
    }
}

/// `POST /api/chat`.
pub(crate) async fn chat(
    State(server): State<Server>,
    body: Bytes,
) -> Result<Response, RequestError> {
    let chat: ChatRequest = decode(&body)?;
    let conversation = convert::from_chat_request(&chat)?;
    let agent = server.template().agent(server.bus(), &chat.id, Vec::new());
    tracing::info!(chat = %chat.id, "AI SDK chat run");
    let request = conversation.request.session_id(chat.id.clone());
    let rx = run::start(
        agent,
        request,
        UiFrames(UiStreamMapper::new()),
        server.run_counters().clone(),
    );
    let (name, value) = ui_stream::STREAM_HEADER;
    Ok(([(name, value)], sse(rx)).into_response())
}
