//! Forks: an agent given to another agent as a tool (a sub-agent). The child's events
//! are forwarded into the parent's stream with the child's own origin.

use agentbus_events::react::{ReactEvent, ReactOutput};
use agentbus_llm::ToolDefinition;
use futures::{FutureExt, StreamExt};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::agent::Agent;
use crate::request::RunRequest;
use crate::tool::{Tool, ToolContext, ToolError, ToolFuture, parameters_schema, parse_arguments};

/// The arguments a sub-agent tool takes.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SubAgentArgs {
    /// The task for the sub-agent, written as a message to it.
    pub task: String,
}

/// An [`Agent`] as a tool of another agent.
///
/// When the parent's model calls it, the child agent runs on `task` as a fork of the
/// parent's agent call: every event of the child is forwarded into the parent's stream,
/// keeping the child's origin (its agent call id, its parent's, its fork id, depth and
/// sequence), and the child's response becomes the tool's result. A child that ends
/// without an answer (iteration limit, LLM error) makes the tool call fail. Forks nest:
/// the child may itself have sub-agent tools.
#[derive(Clone, Debug)]
pub struct SubAgentTool {
    agent: Agent,
    definition: ToolDefinition,
}

impl SubAgentTool {
    /// `agent` as a tool named `name`, described to the parent's model by `description`.
    pub fn new(agent: Agent, name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            agent,
            definition: ToolDefinition {
                name: name.into(),
                description: description.into(),
                parameters: parameters_schema::<SubAgentArgs>(),
            },
        }
    }
}

impl Tool for SubAgentTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn call(&self, arguments: serde_json::Value, context: ToolContext) -> ToolFuture {
        let args = match parse_arguments::<SubAgentArgs>(&self.definition.name, arguments) {
            Ok(args) => args,
            Err(error) => return futures::future::ready(Err(error)).boxed(),
        };
        let agent = self.agent.clone();
        async move {
            let mut stream = agent.run_request(RunRequest::new(args.task).fork_of(&context));
            let mut response = None;
            let mut failure = None;
            while let Some(output) = stream.next().await {
                match output {
                    ReactOutput::Response(answer) => response = Some(answer.response),
                    ReactOutput::Event(event) => {
                        if let ReactEvent::ReactEnd(end) = &event.event
                            && event.origin().agent_call_id == end.origin.agent_call_id
                            && end.aborted
                            && event.origin().fork_depth == context.origin().fork_depth + 1
                        {
                            failure = Some(match &end.error {
                                Some(error) => error.message.clone(),
                                None => "the sub-agent stopped without an answer".to_owned(),
                            });
                        }
                        // The parent's run is gone only when it is being torn down; the
                        // child then stops with it.
                        if context.emitter().forward(event).await.is_err() {
                            return Err(ToolError::Cancelled);
                        }
                    }
                }
            }
            match (response, failure) {
                (Some(response), _) => Ok(serde_json::Value::String(response)),
                (None, Some(message)) => Err(ToolError::failed("sub_agent", message)),
                (None, None) => Err(ToolError::failed(
                    "sub_agent",
                    "the sub-agent stopped without an answer",
                )),
            }
        }
        .boxed()
    }
}
