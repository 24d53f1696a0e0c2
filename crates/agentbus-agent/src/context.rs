//! [`RunContext`]: what every step of one run works with — the agent, the run's
//! [`Emitter`], its stop tokens, its fork counter and its running totals.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use agentbus_events::react::TokenUsage;

use crate::emitter::Emitter;
use crate::inner::AgentInner;
use crate::stop::StopTokens;
use crate::tool_choice::ToolChoicePolicy;

/// Totals over the run, for `ReactEndEvent`.
#[derive(Default)]
pub(crate) struct Totals {
    pub(crate) iterations: u32,
    pub(crate) tool_calls: u32,
    pub(crate) llm_calls: u32,
    pub(crate) usage: TokenUsage,
    pub(crate) cost_usd: Option<f64>,
}

/// The state one run's steps (LLM calls, tool batches) share.
pub(crate) struct RunContext {
    /// The agent: model, tools, configuration.
    pub(crate) inner: Arc<AgentInner>,
    /// The way out to the stream and the bus.
    pub(crate) out: Emitter,
    /// The caller's cancellation and the agent's interrupt.
    pub(crate) stops: StopTokens,
    /// Numbers the forks (sub-agents) the run's tools start.
    pub(crate) fork_counter: Arc<AtomicU64>,
    /// The names of the agent's tools, as the start events list them.
    pub(crate) tool_names: Vec<String>,
    /// Counts and usage so far.
    pub(crate) totals: Totals,
    /// The tool choice of each iteration: the run's, else the agent's.
    pub(crate) tool_choice: ToolChoicePolicy,
}

impl RunContext {
    /// The context of a run of `inner` leaving through `out`, stopped by `stops`, with the
    /// tool-choice policy `tool_choice`.
    pub(crate) fn new(
        inner: Arc<AgentInner>,
        out: Emitter,
        stops: StopTokens,
        tool_choice: ToolChoicePolicy,
    ) -> Self {
        let tool_names = inner.definitions.iter().map(|d| d.name.clone()).collect();
        Self {
            inner,
            out,
            stops,
            fork_counter: Arc::new(AtomicU64::new(0)),
            tool_names,
            totals: Totals::default(),
            tool_choice,
        }
    }

    /// The model name the run's requests use.
    pub(crate) fn model_name(&self) -> String {
        self.inner
            .config
            .model
            .clone()
            .unwrap_or_else(|| self.inner.model.name().to_owned())
    }
}
