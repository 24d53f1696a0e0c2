//! [`Emitter`]: the way out of one run. Every event of the run leaves through it,
//! stamped with the run's origin, the next `event_seq` and the session, handed to the
//! bus (when the agent has a publisher) and yielded to the run's stream.

use agentbus_events::react::{EventOrigin, EventYield, ReactEvent, ReactOutput, ResponseYield};
use agentbus_events::{DynEvent, EventMeta};
use agentbus_llm::Message;

use crate::generator::Yielder;
use crate::inner::AgentOutput;
use crate::publish::Publisher;

/// The identity of one run and its way out to the stream and the bus.
pub(crate) struct Emitter {
    yielder: Yielder<AgentOutput>,
    /// The origin every event of the run carries (its `event_seq` is set per event).
    pub(crate) origin: EventOrigin,
    next_seq: u64,
    pub(crate) publisher: Option<Publisher>,
    pub(crate) session_id: String,
    /// The plugin name of the Vision Agents tool events (the model's provider).
    pub(crate) plugin_name: String,
    /// The iteration in progress (1-based; 0 before the first).
    pub(crate) iteration: u32,
}

impl Emitter {
    /// The way out of a run with `origin`, yielding through `yielder`.
    pub(crate) fn new(
        yielder: Yielder<AgentOutput>,
        origin: EventOrigin,
        publisher: Option<Publisher>,
        plugin_name: String,
    ) -> Self {
        Self {
            yielder,
            session_id: origin.session_id.clone(),
            origin,
            next_seq: 0,
            publisher,
            plugin_name,
            iteration: 0,
        }
    }

    /// Stamps `event` with this run's origin, the next `event_seq` and the session, hands
    /// it to the bus, and yields it.
    pub(crate) async fn emit(&mut self, event: impl Into<ReactEvent>) {
        let mut event = event.into();
        self.stamp(&mut event);
        self.send(event).await;
    }

    /// Emits a tool's custom event with this run's origin plus the tool's name and id.
    pub(crate) async fn emit_with_tool(
        &mut self,
        mut event: ReactEvent,
        tool_name: &str,
        tool_call_id: &str,
    ) {
        let origin = self.stamp(&mut event);
        origin.tool_name = Some(tool_name.to_owned());
        origin.tool_call_id = Some(tool_call_id.to_owned());
        self.send(event).await;
    }

    /// Gives `event` the session, this run's origin and the next `event_seq`; returns the
    /// origin for the caller to add to.
    fn stamp<'e>(&mut self, event: &'e mut ReactEvent) -> &'e mut EventOrigin {
        event.meta_mut().session_id = Some(self.session_id.clone());
        let origin = event.origin_mut();
        origin.clone_from(&self.origin);
        origin.event_seq = self.next_seq;
        self.next_seq += 1;
        origin
    }

    /// Hands a stamped event to the bus, then yields it.
    async fn send(&mut self, event: ReactEvent) {
        if let Some(publisher) = &self.publisher {
            publisher.publish_react(&event).await;
        }
        self.yielder
            .put(ReactOutput::Event(EventYield { event }))
            .await;
    }

    /// Yields a sub-agent's event unchanged (its origin is its own). It was published by
    /// the sub-agent's run.
    pub(crate) async fn forward(&mut self, event: EventYield) {
        self.yielder.put(ReactOutput::Event(event)).await;
    }

    /// Yields the run's response.
    pub(crate) async fn respond(&mut self, response: ResponseYield<Message>) {
        self.yielder.put(ReactOutput::Response(response)).await;
    }

    /// Publishes a bus-only event (Vision Agents' lifecycle and tool events).
    pub(crate) async fn publish_only(&self, event: Box<dyn DynEvent>) {
        if let Some(publisher) = &self.publisher {
            publisher.publish_async(event).await;
        }
    }

    /// Fresh base fields for this run's session.
    pub(crate) fn meta(&self) -> EventMeta {
        EventMeta::for_session(self.session_id.clone())
    }
}
