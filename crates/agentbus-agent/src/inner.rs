//! The parts of an agent its runs share: [`AgentConfig`] and its defaults, the tools, the
//! publisher, the barge-in epoch, and the registry of runs in progress.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agentbus_events::react::ReactOutput;
use agentbus_llm::{ChatModel, Message, ToolDefinition};
use tokio_util::sync::CancellationToken;

use crate::publish::Publisher;
use crate::tool::Tool;
use crate::tool_choice::ToolChoicePolicy;

/// What an agent run yields: events, then the response (unless the run was aborted),
/// then the closing `ReactEndEvent`; the history is in the LLM crate's [`Message`] type.
pub type AgentOutput = ReactOutput<Message>;

/// The default iteration limit.
pub const DEFAULT_MAX_ITERATIONS: u32 = 10;
/// The default number of tool calls of one batch that run at the same time.
pub const DEFAULT_TOOL_CONCURRENCY: usize = 8;
/// The default time one tool call may run.
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// How an agent behaves; set through [`AgentBuilder`](crate::AgentBuilder).
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The system prompt, put first in every request.
    pub system_prompt: Option<String>,
    /// How many iterations (LLM call + tool batch) a run may take.
    pub max_iterations: u32,
    /// How many tool calls of one batch run at the same time.
    pub tool_concurrency: usize,
    /// How long a tool call may run when the tool has no timeout of its own.
    pub tool_timeout: Duration,
    /// The model to request (`None`: the model's own default).
    pub model: Option<String>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Maximum tokens per LLM call.
    pub max_tokens: Option<u32>,
    /// The session id events carry when a run does not name one.
    pub session_id: Option<String>,
    /// The tool choice of each iteration, unless a run sets its own
    /// ([`RunRequest::tool_choice`](crate::RunRequest::tool_choice)). Default: nothing
    /// sent (the provider's default).
    pub tool_choice: ToolChoicePolicy,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            system_prompt: None,
            max_iterations: DEFAULT_MAX_ITERATIONS,
            tool_concurrency: DEFAULT_TOOL_CONCURRENCY,
            tool_timeout: DEFAULT_TOOL_TIMEOUT,
            model: None,
            temperature: None,
            max_tokens: None,
            session_id: None,
            tool_choice: ToolChoicePolicy::default(),
        }
    }
}

/// The parts of an agent shared by its clones and its runs.
pub(crate) struct AgentInner {
    pub(crate) model: Arc<dyn ChatModel>,
    pub(crate) tools: Vec<Arc<dyn Tool>>,
    pub(crate) by_name: HashMap<String, usize>,
    pub(crate) definitions: Vec<ToolDefinition>,
    pub(crate) config: AgentConfig,
    pub(crate) publisher: Option<Publisher>,
    /// Incremented by every [`Agent::interrupt`](crate::Agent::interrupt).
    pub(crate) epoch: AtomicU64,
    /// The interruption tokens of the runs in progress, by run number.
    running: Mutex<Vec<(u64, CancellationToken)>>,
    next_run: AtomicU64,
    finished: AtomicBool,
}

impl AgentInner {
    /// The shared parts of an agent with `tools` (unique names, in order), before any run.
    pub(crate) fn new(
        model: Arc<dyn ChatModel>,
        tools: Vec<Arc<dyn Tool>>,
        config: AgentConfig,
        publisher: Option<Publisher>,
    ) -> Self {
        let by_name = tools
            .iter()
            .enumerate()
            .map(|(i, tool)| (tool.name().to_owned(), i))
            .collect();
        let definitions = tools.iter().map(|t| t.definition().clone()).collect();
        Self {
            model,
            tools,
            by_name,
            definitions,
            config,
            publisher,
            epoch: AtomicU64::new(0),
            running: Mutex::new(Vec::new()),
            next_run: AtomicU64::new(0),
            finished: AtomicBool::new(false),
        }
    }

    /// The tool called `name`.
    pub(crate) fn tool(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    /// Registers a run's interruption token; the guard removes it when the run ends.
    pub(crate) fn register_run(self: &Arc<Self>, token: CancellationToken) -> RunRegistration {
        let id = self.next_run.fetch_add(1, Ordering::Relaxed);
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, token));
        RunRegistration {
            inner: self.clone(),
            id,
        }
    }

    /// Cancels the interruption token of every run in progress.
    pub(crate) fn interrupt_runs(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for (_, token) in running {
            token.cancel();
        }
    }

    /// Whether a run is in progress.
    pub(crate) fn is_running(&self) -> bool {
        !self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Marks the agent finished; true the first time only.
    pub(crate) fn mark_finished(&self) -> bool {
        !self.finished.swap(true, Ordering::SeqCst)
    }
}

/// Removes a run from the agent's running list when dropped.
pub(crate) struct RunRegistration {
    inner: Arc<AgentInner>,
    id: u64,
}

impl Drop for RunRegistration {
    fn drop(&mut self) {
        self.inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(id, _)| *id != self.id);
    }
}
