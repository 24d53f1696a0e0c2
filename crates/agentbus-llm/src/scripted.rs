//! [`ScriptedModel`]: a [`ChatModel`] that replays a script, for users' own tests.

use std::time::Duration;

use agentbus_events::stream::{Finish, StreamEvent, TextEnd};
use futures::StreamExt;

use crate::model::{ChatModel, ChatStream};
use crate::protocol::{Api, StreamDecoder};
use crate::request::ChatRequest;

/// What a [`ScriptedModel`] replays on each call.
#[derive(Clone, Debug)]
enum Script {
    /// These events, as given.
    Events(Vec<StreamEvent>),
    /// A recorded SSE body, decoded on every call.
    Sse { api: Api, body: Vec<u8> },
}

/// A model that answers every request by replaying the same script: a list of
/// [`StreamEvent`]s (taken as given, so a script may even break the contract to test a
/// consumer), or a recorded SSE body decoded by the real provider decoder.
///
/// An optional delay is slept before each event (needs a tokio runtime when set).
#[derive(Clone, Debug)]
pub struct ScriptedModel {
    name: String,
    script: Script,
    delay: Option<Duration>,
}

impl ScriptedModel {
    /// Replays `events` on every call.
    pub fn from_events(name: impl Into<String>, events: Vec<StreamEvent>) -> Self {
        Self {
            name: name.into(),
            script: Script::Events(events),
            delay: None,
        }
    }

    /// Replays a recorded SSE response body of protocol `api`, decoded by the real
    /// decoder on every call (so a truncated recording ends in a `StreamError`). Costs are
    /// computed with the built-in pricing table.
    pub fn from_sse(name: impl Into<String>, api: Api, body: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            script: Script::Sse {
                api,
                body: body.into(),
            },
            delay: None,
        }
    }

    /// Replays the recorded SSE file at `path` (see [`ScriptedModel::from_sse`]).
    pub fn from_sse_file(
        name: impl Into<String>,
        api: Api,
        path: impl AsRef<std::path::Path>,
    ) -> std::io::Result<Self> {
        Ok(Self::from_sse(name, api, std::fs::read(path)?))
    }

    /// Answers every call with `text` in one delta, then `TextEnd` and a `stop` finish.
    pub fn text(name: impl Into<String>, text: impl Into<String>) -> Self {
        let name = name.into();
        let text = text.into();
        let events = vec![
            StreamEvent::text_delta(text.clone(), text.clone()),
            StreamEvent::TextEnd(TextEnd { full_text: text }),
            StreamEvent::Finish(Finish {
                stop_reason: "stop".into(),
                model: name.clone(),
                ..Finish::default()
            }),
        ];
        Self::from_events(name, events)
    }

    /// The same model, sleeping `delay` before each event.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// The events one call yields.
    pub fn events(&self) -> Vec<StreamEvent> {
        match &self.script {
            Script::Events(events) => events.clone(),
            Script::Sse { api, body } => StreamDecoder::decode_body(
                *api,
                body,
                Some(std::sync::Arc::new(crate::pricing::PricingTable::builtin())),
            ),
        }
    }
}

impl ChatModel for ScriptedModel {
    fn stream(&self, _request: ChatRequest) -> ChatStream {
        let events = self.events();
        match self.delay {
            None => futures::stream::iter(events).boxed(),
            Some(delay) => futures::stream::iter(events)
                .then(move |event| async move {
                    tokio::time::sleep(delay).await;
                    event
                })
                .boxed(),
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn provider(&self) -> &str {
        "scripted"
    }
}
