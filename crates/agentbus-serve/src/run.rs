//! Running the agent for one HTTP request: the agent is built per run (the server's
//! tools plus the client's), its outputs are mapped to a protocol on a task of their own,
//! and the encoded frames go to the response through a bounded channel.
//!
//! When the client goes away (the response body is dropped), the run's cancellation
//! token is cancelled — the agent ends aborted with `ReactEnd` on the bus, as Ctrl-C
//! does — and the task drains the run so every event reaches the bus and the store.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use agentbus::EventManager;
use agentbus_agent::react::{ReactEvent, ReactOutput};
use agentbus_agent::{
    Agent, AgentOutput, CancellationToken, RunRequest, Tool, ToolContext, ToolFuture,
};
use agentbus_llm::{ChatModel, InstrumentedModel, ToolDefinition};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::server::RunCounters;

/// How many encoded frames may wait for a slow client before the run waits for it.
const FRAMES_IN_FLIGHT: usize = 256;

/// What every run of a server starts from: the model, the server-side tools and the
/// agent's settings.
#[derive(Clone)]
pub struct AgentTemplate {
    /// The model (the server wraps it to publish LLM events on its bus).
    pub model: Arc<dyn ChatModel>,
    /// Tools that run on the server.
    pub tools: Vec<Arc<dyn Tool>>,
    /// The system prompt.
    pub system_prompt: Option<String>,
    /// The iteration limit of a run.
    pub max_iterations: u32,
}

impl std::fmt::Debug for AgentTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentTemplate")
            .field("model", &self.model.name())
            .field(
                "tools",
                &self.tools.iter().map(|t| t.name()).collect::<Vec<_>>(),
            )
            .field("max_iterations", &self.max_iterations)
            .finish_non_exhaustive()
    }
}

impl AgentTemplate {
    /// A template over `model` with no tools, no system prompt and 10 iterations.
    pub fn new(model: Arc<dyn ChatModel>) -> Self {
        Self {
            model,
            tools: Vec::new(),
            system_prompt: None,
            max_iterations: agentbus_agent::DEFAULT_MAX_ITERATIONS,
        }
    }

    /// Whether a server-side tool is called `name`.
    pub fn has_tool(&self, name: &str) -> bool {
        self.tools.iter().any(|t| t.name() == name)
    }

    /// The agent of one run in `session`, publishing on `bus`, with `client_tools` added.
    pub fn agent(
        &self,
        bus: &EventManager,
        session: &str,
        client_tools: Vec<ToolDefinition>,
    ) -> Agent {
        let model = InstrumentedModel::new(self.model.clone(), bus.clone()).with_session(session);
        let mut builder = Agent::builder(model)
            .session_id(session)
            .tools(self.tools.iter().cloned())
            .max_iterations(self.max_iterations)
            .bus(bus);
        if let Some(prompt) = &self.system_prompt {
            builder = builder.system_prompt(prompt.clone());
        }
        for definition in client_tools {
            builder = builder.tool(ClientSideTool { definition });
        }
        builder.build()
    }
}

/// A tool the client implements: calling it records the call and ends the run after
/// the tool batch, so the client can answer in its next run (the AG-UI convention).
struct ClientSideTool {
    definition: ToolDefinition,
}

impl Tool for ClientSideTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn call(&self, _arguments: serde_json::Value, _context: ToolContext) -> ToolFuture {
        Box::pin(async { Ok(serde_json::json!({ "status": "sent to the client" })) })
    }
}

/// Maps one run's outputs to protocol frames.
pub(crate) trait FrameMapper: Send + 'static {
    /// The frames before the agent's first output.
    fn opening(&mut self) -> Vec<String>;
    /// The frames `output` maps to.
    fn map(&mut self, output: &AgentOutput) -> Vec<String>;
    /// Whether the run must stop after this output (a client-side tool was called).
    fn should_stop(&self, output: &AgentOutput) -> bool;
    /// The frames after the agent's stream ended.
    fn closing(&mut self) -> Vec<String>;
}

/// Whether `output` is the end of a main-agent tool batch.
pub(crate) fn is_batch_end(output: &AgentOutput) -> bool {
    matches!(output, ReactOutput::Event(e)
        if !e.origin().is_fork() && matches!(e.event, ReactEvent::ToolCallsBatchEnd(_)))
}

/// Starts `request` on `agent`, mapped by `mapper`; returns the frames' receiver. The
/// run is cancelled when the receiver is dropped.
pub(crate) fn start<M: FrameMapper>(
    agent: Agent,
    request: RunRequest,
    mut mapper: M,
    counters: Arc<RunCounters>,
) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(FRAMES_IN_FLIGHT);
    counters.started.fetch_add(1, Ordering::Relaxed);
    counters.active.fetch_add(1, Ordering::Relaxed);
    let cancel = CancellationToken::new();
    let request = request.cancellation(cancel.clone());
    tokio::spawn(async move {
        let mut connected = true;
        for frame in mapper.opening() {
            connected = connected && tx.send(frame).await.is_ok();
        }
        let mut stream = agent.run_request(request);
        loop {
            let next = tokio::select! {
                biased;
                output = stream.next() => output,
                () = tx.closed(), if connected => {
                    tracing::debug!("client went away: cancelling the run");
                    connected = false;
                    cancel.cancel();
                    continue;
                }
            };
            let Some(output) = next else { break };
            if !connected {
                continue; // drain: the run ends and publishes its last events
            }
            if mapper.should_stop(&output) {
                cancel.cancel();
            }
            for frame in mapper.map(&output) {
                if tx.send(frame).await.is_err() {
                    connected = false;
                    cancel.cancel();
                    break;
                }
            }
        }
        if connected {
            for frame in mapper.closing() {
                if tx.send(frame).await.is_err() {
                    break;
                }
            }
        }
        counters.active.fetch_sub(1, Ordering::Relaxed);
    });
    rx
}
