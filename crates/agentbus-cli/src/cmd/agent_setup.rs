//! The agent `run` and `eval` build: system prompt, built-in tools and tool choice,
//! with the defaults that suit each provider.
//!
//! The embedded model (SmolLM2-135M) gets a short system prompt (every token of it is
//! processed before the first answer token) and the tool-choice policy "required on the
//! first iteration, none after", under constrained decoding: its first answer is a tool
//! call whose name and arguments are valid ([`agentbus_local::constraint`]), and the
//! next one is the answer, in text. Left to `auto`, a 135M model answers arithmetic from
//! memory, wrongly ("17 * 23 = 349"); made to look something up first, it calls the
//! calculator and answers from the result; left to `auto` after a result, it keeps
//! calling tools until the iteration limit. The price is one tool call on questions that
//! need none (a greeting calls some tool before answering) and no second tool call
//! where one would help (`--tool-choice required,auto` allows it). Servers get the longer
//! prompt and their own default tool choice.

use std::sync::Arc;

use agentbus_agent::tools::{Sandbox, builtin_tools_in};
use agentbus_agent::{Agent, ToolChoicePolicy};
use agentbus_llm::{ChatModel, ToolChoice};

use super::provider::Provider;

/// The system prompt for servers.
pub const SYSTEM_PROMPT: &str = "You are a helpful assistant. Use the tools when they help: \
    `calculator` for arithmetic (never compute by hand), `current_time` for the date and \
    time, `read_file` and `list_dir` for files in the working directory. Answer briefly.";

/// The system prompt for the embedded model: short, one line per tool.
#[cfg(feature = "local")]
pub use agentbus_local::provider::AGENT_SYSTEM_PROMPT as LOCAL_SYSTEM_PROMPT;
/// Without the embedded model `--provider local` is an error; nothing uses this.
#[cfg(not(feature = "local"))]
pub const LOCAL_SYSTEM_PROMPT: &str = SYSTEM_PROMPT;

/// The system prompt and tool-choice policy `provider` gets by default.
pub fn defaults(provider: Provider) -> (&'static str, ToolChoicePolicy) {
    match provider {
        Provider::Local => (
            LOCAL_SYSTEM_PROMPT,
            ToolChoicePolicy::first_then(ToolChoice::Required, ToolChoice::None),
        ),
        _ => (SYSTEM_PROMPT, ToolChoicePolicy::default()),
    }
}

/// What the agent is built from.
pub struct AgentSetup<'a> {
    /// The (instrumented) model.
    pub model: Arc<dyn ChatModel>,
    /// Which provider it is (for the defaults).
    pub provider: Provider,
    /// What the file tools may read.
    pub sandbox: Sandbox,
    /// `--tool-choice`, overriding the provider's default.
    pub tool_choice: Option<ToolChoicePolicy>,
    /// `--max-iterations`.
    pub max_iterations: u32,
    /// The session the events belong to.
    pub session_id: &'a str,
}

impl AgentSetup<'_> {
    /// The agent, publishing on `bus`.
    pub fn build(self, bus: &agentbus::EventManager) -> Agent {
        let tools = builtin_tools_in(self.sandbox);
        let (system_prompt, default_choice) = defaults(self.provider);
        Agent::builder_shared(self.model)
            .session_id(self.session_id)
            .system_prompt(system_prompt)
            .tools(tools)
            .max_iterations(self.max_iterations)
            .tool_choice(self.tool_choice.unwrap_or(default_choice))
            .bus(bus)
            .build()
    }
}
