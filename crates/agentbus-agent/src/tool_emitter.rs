//! [`ToolEventEmitter`]: how a running tool puts live events into its agent's stream
//! (SimpleLLMFunc's `ToolEventEmitter`).

use agentbus_events::react::EventYield;
use tokio::sync::mpsc;

/// How many emissions of one tool call may wait for the loop before `emit` waits.
pub(crate) const EMISSION_CAPACITY: usize = 64;

/// What a tool sends to the loop while it runs.
#[derive(Debug)]
pub(crate) enum Emission {
    /// A [`CustomEvent`](agentbus_events::react::CustomEvent) to stamp with the calling
    /// agent call's origin.
    Custom {
        event_name: String,
        data: serde_json::Value,
    },
    /// An event of a sub-agent, forwarded with its own origin.
    Forward(Box<EventYield>),
}

/// The run this emitter belonged to has ended; the event was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the agent run this tool belongs to has ended; event not delivered")]
pub struct EmitError;

/// Emits events from inside a running tool into the calling agent's stream, live and in
/// the order they are emitted; they arrive before the tool's `ToolCallEndEvent`.
///
/// The channel to the loop is bounded: when the consumer of the stream is slower than
/// the tool, [`emit`](Self::emit) waits for room (backpressure), so a chatty tool cannot
/// grow memory without bound.
#[derive(Clone, Debug)]
pub struct ToolEventEmitter {
    sender: Option<mpsc::Sender<Emission>>,
}

impl ToolEventEmitter {
    pub(crate) fn channel() -> (Self, mpsc::Receiver<Emission>) {
        let (sender, receiver) = mpsc::channel(EMISSION_CAPACITY);
        (
            Self {
                sender: Some(sender),
            },
            receiver,
        )
    }

    /// An emitter connected to nothing, for calling a tool outside an agent (tests):
    /// every emit fails with [`EmitError`].
    pub fn detached() -> Self {
        Self { sender: None }
    }

    /// Emits a `CustomEvent` named `event_name` carrying `data`; waits while the loop's
    /// queue for this tool call is full.
    pub async fn emit(
        &self,
        event_name: impl Into<String>,
        data: serde_json::Value,
    ) -> Result<(), EmitError> {
        self.send(Emission::Custom {
            event_name: event_name.into(),
            data,
        })
        .await
    }

    /// Forwards an event of a sub-agent into the calling agent's stream, keeping the
    /// event's own origin (the sub-agent's agent call id, parent, fork id and depth).
    pub async fn forward(&self, event: EventYield) -> Result<(), EmitError> {
        self.send(Emission::Forward(Box::new(event))).await
    }

    async fn send(&self, emission: Emission) -> Result<(), EmitError> {
        match &self.sender {
            Some(sender) => sender.send(emission).await.map_err(|_| EmitError),
            None => Err(EmitError),
        }
    }
}
