//! [`RunRequest`]: one run of an agent — the user's message, the history, the
//! cancellation token, the session, and the parent when the run is a fork.

use agentbus_events::react::EventOrigin;
use agentbus_llm::Message;
use tokio_util::sync::CancellationToken;

use crate::publish::Publisher;
use crate::tool::ToolContext;
use crate::tool_choice::ToolChoicePolicy;

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
    pub(crate) tool_choice: Option<ToolChoicePolicy>,
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
            tool_choice: None,
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

    /// The tool choice of each iteration of this run, instead of the agent's
    /// ([`AgentBuilder::tool_choice`](crate::AgentBuilder::tool_choice)).
    pub fn tool_choice(mut self, policy: ToolChoicePolicy) -> Self {
        self.tool_choice = Some(policy);
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
