//! [`Agent`]: a ReAct agent over any [`ChatModel`], its configuration, and how a run is
//! started, cancelled and interrupted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agentbus_events::EventMeta;
use agentbus_events::agent::AgentFinishEvent;
use agentbus_events::react::{EventOrigin, ReactOutput};
use agentbus_llm::{ChatModel, Message, ToolDefinition};
use futures::Stream;
use tokio_util::sync::CancellationToken;

use crate::generator::Generator;
use crate::publish::Publisher;
use crate::run_loop;
use crate::tool::{Tool, ToolContext};

/// What an agent run yields: events, then the response (unless the run was aborted),
/// then the closing `ReactEndEvent`; the history is in the LLM crate's [`Message`] type.
pub type AgentOutput = ReactOutput<Message>;

/// The default iteration limit.
pub const DEFAULT_MAX_ITERATIONS: u32 = 10;
/// The default number of tool calls of one batch that run at the same time.
pub const DEFAULT_TOOL_CONCURRENCY: usize = 8;
/// The default time one tool call may run.
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// How an agent behaves; set through [`AgentBuilder`].
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
        }
    }
}

/// Builds an [`Agent`].
pub struct AgentBuilder {
    model: Arc<dyn ChatModel>,
    tools: Vec<Arc<dyn Tool>>,
    config: AgentConfig,
    publisher: Option<Publisher>,
}

impl AgentBuilder {
    /// The system prompt.
    pub fn system_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.config.system_prompt = Some(prompt.into());
        self
    }

    /// Adds a tool.
    pub fn tool(mut self, tool: impl Tool) -> Self {
        self.tools.push(Arc::new(tool));
        self
    }

    /// Adds an already shared tool.
    pub fn shared_tool(mut self, tool: Arc<dyn Tool>) -> Self {
        self.tools.push(tool);
        self
    }

    /// Adds several shared tools.
    pub fn tools(mut self, tools: impl IntoIterator<Item = Arc<dyn Tool>>) -> Self {
        self.tools.extend(tools);
        self
    }

    /// The iteration limit (at least 1).
    pub fn max_iterations(mut self, max: u32) -> Self {
        self.config.max_iterations = max.max(1);
        self
    }

    /// How many tool calls of a batch run at once (at least 1).
    pub fn tool_concurrency(mut self, limit: usize) -> Self {
        self.config.tool_concurrency = limit.max(1);
        self
    }

    /// The timeout of tool calls whose tool has none of its own.
    pub fn tool_timeout(mut self, timeout: Duration) -> Self {
        self.config.tool_timeout = timeout;
        self
    }

    /// The model name to request.
    pub fn model_name(mut self, model: impl Into<String>) -> Self {
        self.config.model = Some(model.into());
        self
    }

    /// Sampling temperature.
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.config.temperature = Some(temperature);
        self
    }

    /// Maximum tokens per LLM call.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.config.max_tokens = Some(max_tokens);
        self
    }

    /// The default session id of runs.
    pub fn session_id(mut self, session_id: impl Into<String>) -> Self {
        self.config.session_id = Some(session_id.into());
        self
    }

    /// Publishes every event of the agent's runs through `publisher` (see
    /// [`Publisher`]). Attach the LLM crate's instrumentation to the model yourself to get
    /// the provider-level LLM events too (the CLI does).
    pub fn publisher(mut self, publisher: Publisher) -> Self {
        self.publisher = Some(publisher);
        self
    }

    /// Publishes every event of the agent's runs on `bus` (see [`Publisher::bus`]).
    pub fn bus(self, bus: &agentbus::EventManager) -> Self {
        self.publisher(Publisher::bus(bus.clone()))
    }

    /// The whole configuration at once.
    pub fn config(mut self, config: AgentConfig) -> Self {
        self.config = config;
        self
    }

    /// The agent. A later tool with the same name as an earlier one replaces it.
    pub fn build(self) -> Agent {
        let mut tools: Vec<Arc<dyn Tool>> = Vec::with_capacity(self.tools.len());
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for tool in self.tools {
            let name = tool.name().to_owned();
            match by_name.get(&name) {
                Some(&i) => tools[i] = tool,
                None => {
                    by_name.insert(name, tools.len());
                    tools.push(tool);
                }
            }
        }
        let definitions = tools.iter().map(|t| t.definition().clone()).collect();
        Agent {
            inner: Arc::new(AgentInner {
                model: self.model,
                tools,
                by_name,
                definitions,
                config: self.config,
                publisher: self.publisher,
                epoch: AtomicU64::new(0),
                running: Mutex::new(Vec::new()),
                next_run: AtomicU64::new(0),
                finished: AtomicBool::new(false),
            }),
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
    /// Incremented by every [`Agent::interrupt`].
    pub(crate) epoch: AtomicU64,
    /// The interruption tokens of the runs in progress, by run number.
    running: Mutex<Vec<(u64, CancellationToken)>>,
    next_run: AtomicU64,
    finished: AtomicBool,
}

impl AgentInner {
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

/// A ReAct agent: system prompt + history + user message → streaming LLM call → tool
/// calls run as a parallel batch → results appended → next iteration, until a final
/// answer, the iteration limit, cancellation or interruption.
///
/// Cloning is cheap and shares the agent (its tools, its epoch, its running runs).
#[derive(Clone)]
pub struct Agent {
    pub(crate) inner: Arc<AgentInner>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("model", &self.inner.model.name())
            .field("tools", &self.inner.by_name.keys().collect::<Vec<_>>())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// Starts building an agent over `model`.
    pub fn builder(model: impl ChatModel + 'static) -> AgentBuilder {
        Self::builder_shared(Arc::new(model))
    }

    /// Starts building an agent over a shared model.
    pub fn builder_shared(model: Arc<dyn ChatModel>) -> AgentBuilder {
        AgentBuilder {
            model,
            tools: Vec::new(),
            config: AgentConfig::default(),
            publisher: None,
        }
    }

    /// The agent's configuration.
    pub fn config(&self) -> &AgentConfig {
        &self.inner.config
    }

    /// The tools' definitions, as given to the model.
    pub fn tool_definitions(&self) -> &[ToolDefinition] {
        &self.inner.definitions
    }

    /// The barge-in epoch: how many times the agent was interrupted.
    pub fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::SeqCst)
    }

    /// Runs the agent on `message` with no prior history.
    pub fn run(&self, message: impl Into<String>) -> AgentStream {
        self.run_request(RunRequest::new(message))
    }

    /// Runs the agent as `request` says.
    pub fn run_request(&self, request: RunRequest) -> AgentStream {
        let inner = self.inner.clone();
        AgentStream {
            generator: Generator::new(move |yielder| run_loop::run(inner, request, yielder)),
        }
    }

    /// Barge-in: stops every run in progress at once, as a cancellation would (streaming
    /// and tools stop; each run ends with an aborted `ReactEndEvent`, reason
    /// `interrupted`, and on the bus an `AgentTurnEndedEvent { interrupted: true }`), and
    /// increments the epoch that every event of later responses carries. The agent stays
    /// usable: the next run starts normally. Returns the new epoch.
    pub fn interrupt(&self) -> u64 {
        let epoch = self.inner.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let running = self
            .inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for (_, token) in running {
            token.cancel();
        }
        epoch
    }

    /// Whether a run is in progress.
    pub fn is_running(&self) -> bool {
        !self
            .inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Declares the agent finished: publishes `AgentFinishEvent` on the bus (once, however
    /// often it is called). Runs in progress are not stopped.
    pub fn finish(&self) {
        if self.inner.finished.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(publisher) = &self.inner.publisher {
            let meta = match &self.inner.config.session_id {
                Some(session) => EventMeta::for_session(session.clone()),
                None => EventMeta::new(),
            };
            publisher.publish(Box::new(AgentFinishEvent { meta }));
        }
    }
}

/// The parent of a fork: which agent call started it, through which tool call.
#[derive(Clone, Debug)]
pub(crate) struct ForkParent {
    pub(crate) origin: EventOrigin,
    pub(crate) fork_seq: u64,
    pub(crate) publisher: Option<Publisher>,
}

/// One run of an agent: the user's message and what surrounds it.
#[derive(Clone, Debug)]
pub struct RunRequest {
    pub(crate) message: String,
    /// Whether `message` is sent as a new user message (false for [`RunRequest::resume`]).
    pub(crate) user_turn: bool,
    pub(crate) history: Vec<Message>,
    pub(crate) cancel: CancellationToken,
    pub(crate) session_id: Option<String>,
    pub(crate) parent: Option<ForkParent>,
}

impl RunRequest {
    /// A run on `message` with no history, not cancellable from outside.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            user_turn: true,
            history: Vec::new(),
            cancel: CancellationToken::new(),
            session_id: None,
            parent: None,
        }
    }

    /// A run that continues `history` without a new user message: the history ends with
    /// tool results the caller produced (a client-side tool answered, as AG-UI clients
    /// do), and the model's next turn answers them. `ReactStartEvent::user_message` is
    /// empty.
    ///
    /// ```
    /// use agentbus_agent::RunRequest;
    /// use agentbus_llm::{Message, ToolCallRequest};
    ///
    /// let call = ToolCallRequest { id: "t1".into(), name: "pick".into(), arguments: serde_json::json!({}) };
    /// let request = RunRequest::resume(vec![
    ///     Message::user("Pick a colour"),
    ///     Message::assistant_with_tool_calls("", vec![call]),
    ///     Message::tool_result("t1", "blue", false),
    /// ]);
    /// # let _ = request;
    /// ```
    pub fn resume(history: Vec<Message>) -> Self {
        Self {
            user_turn: false,
            history,
            ..Self::new(String::new())
        }
    }

    /// The conversation so far (without the system prompt, which the agent adds): what a
    /// previous run's `ResponseYield::messages` returned.
    pub fn history(mut self, history: Vec<Message>) -> Self {
        self.history = history;
        self
    }

    /// Stops the run when `token` is cancelled.
    pub fn cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// The session the run's events belong to (default: the agent's, else a new id).
    pub fn session_id(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Runs as a fork (sub-agent) of the agent call that owns `context`: the run's
    /// events carry it as parent, one level deeper, and publish to the parent's bus when
    /// this agent has none of its own. Its cancellation follows the parent's.
    pub fn fork_of(mut self, context: &ToolContext) -> Self {
        self.cancel = context.cancellation().child_token();
        self.session_id = Some(context.origin().session_id.clone());
        self.parent = Some(ForkParent {
            origin: context.origin().clone(),
            fork_seq: context.next_fork_seq(),
            publisher: context.publisher().cloned(),
        });
        self
    }
}

/// The stream of one agent run. Dropping it stops the run (the LLM stream and running
/// tools are dropped and aborted).
pub struct AgentStream {
    generator: Generator<AgentOutput>,
}

impl std::fmt::Debug for AgentStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentStream").finish_non_exhaustive()
    }
}

impl Stream for AgentStream {
    type Item = AgentOutput;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<AgentOutput>> {
        std::pin::Pin::new(&mut self.generator).poll_next(cx)
    }
}
