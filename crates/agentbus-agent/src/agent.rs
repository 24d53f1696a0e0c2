//! [`Agent`]: a ReAct agent over any [`ChatModel`], how it is built, and how a run is
//! started, cancelled and interrupted.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use agentbus_events::EventMeta;
use agentbus_events::agent::AgentFinishEvent;
use agentbus_llm::{ChatModel, ToolDefinition};
use futures::Stream;

use crate::generator::Generator;
use crate::inner::{AgentConfig, AgentInner, AgentOutput};
use crate::publish::Publisher;
use crate::request::RunRequest;
use crate::run_loop;
use crate::tool::Tool;
use crate::tool_choice::ToolChoicePolicy;

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

    /// The tool choice of each iteration of every run (a run may set its own with
    /// [`RunRequest::tool_choice`]). Default: nothing sent, so the provider's default
    /// (`auto` when tools are offered).
    ///
    /// ```
    /// use agentbus_agent::{Agent, ToolChoicePolicy};
    /// use agentbus_llm::{ScriptedModel, ToolChoice};
    ///
    /// let agent = Agent::builder(ScriptedModel::text("m", "hi"))
    ///     .tool_choice(ToolChoicePolicy::first_then(ToolChoice::Required, ToolChoice::Auto))
    ///     .build();
    /// # let _ = agent;
    /// ```
    pub fn tool_choice(mut self, policy: ToolChoicePolicy) -> Self {
        self.config.tool_choice = policy;
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
        Agent {
            inner: Arc::new(AgentInner::new(
                self.model,
                tools,
                self.config,
                self.publisher,
            )),
        }
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
        self.inner.interrupt_runs();
        epoch
    }

    /// Whether a run is in progress.
    pub fn is_running(&self) -> bool {
        self.inner.is_running()
    }

    /// Declares the agent finished: publishes `AgentFinishEvent` on the bus (once, however
    /// often it is called). Runs in progress are not stopped.
    pub fn finish(&self) {
        if !self.inner.mark_finished() {
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
