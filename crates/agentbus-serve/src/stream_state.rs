//! What both protocol mappings track while a run streams: which text or reasoning
//! message is open, and which tool calls have been announced (arguments arrive by
//! index, and the id may come after the first fragment).

use agentbus_agent::react::{ToolCallArgumentsDeltaEvent, ToolCallInfo};

/// One streamed message (text or reasoning): open or not, and its id.
#[derive(Debug, Default)]
pub(crate) struct MessageState {
    current: Option<String>,
    last: Option<String>,
}

impl MessageState {
    /// Opens a message if none is open; returns the new id when one was opened.
    pub(crate) fn open(&mut self) -> Option<String> {
        if self.current.is_some() {
            return None;
        }
        let id = uuid::Uuid::new_v4().to_string();
        self.current = Some(id.clone());
        self.last = Some(id.clone());
        Some(id)
    }

    /// The open message's id (empty when none is open).
    pub(crate) fn id(&self) -> &str {
        self.current.as_deref().unwrap_or_default()
    }

    /// Closes the open message; returns its id when one was open.
    pub(crate) fn close(&mut self) -> Option<String> {
        self.current.take()
    }

    /// The last message opened in this LLM call (what tool calls hang from).
    pub(crate) fn last_id(&self) -> Option<&str> {
        self.last.as_deref()
    }

    /// Forgets the last message (a new LLM call starts a new assistant message).
    pub(crate) fn forget(&mut self) {
        self.last = None;
    }
}

/// What to announce about a tool call.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ToolStep {
    /// The call starts.
    Start { id: String, name: String },
    /// A fragment of its arguments.
    Args { id: String, delta: String },
}

#[derive(Debug, Default)]
struct ToolStream {
    index: u32,
    id: Option<String>,
    name: Option<String>,
    started: bool,
    /// Argument text received before the call could be announced.
    buffered: String,
    /// Whether any argument text was announced.
    streamed: bool,
}

/// The tool calls of one LLM call, by index.
#[derive(Debug, Default)]
pub(crate) struct ToolStreams {
    calls: Vec<ToolStream>,
}

impl ToolStreams {
    fn slot(&mut self, index: u32) -> &mut ToolStream {
        let position = match self.calls.iter().position(|c| c.index == index) {
            Some(position) => position,
            None => {
                self.calls.push(ToolStream {
                    index,
                    ..ToolStream::default()
                });
                self.calls.len() - 1
            }
        };
        &mut self.calls[position]
    }

    /// The steps one argument fragment adds.
    pub(crate) fn delta(&mut self, delta: &ToolCallArgumentsDeltaEvent) -> Vec<ToolStep> {
        let call = self.slot(delta.index);
        if call.id.is_none() {
            call.id.clone_from(&delta.tool_call_id);
        }
        if call.name.is_none() {
            call.name.clone_from(&delta.tool_name);
        }
        call.buffered.push_str(&delta.delta);
        let mut steps = Vec::new();
        if let (false, Some(id), Some(name)) = (call.started, &call.id, &call.name) {
            call.started = true;
            steps.push(ToolStep::Start {
                id: id.clone(),
                name: name.clone(),
            });
        }
        if call.started && !call.buffered.is_empty() {
            call.streamed = true;
            steps.push(ToolStep::Args {
                id: call.id.clone().unwrap_or_default(),
                delta: std::mem::take(&mut call.buffered),
            });
        }
        steps
    }

    /// The steps that announce, in full, the calls of `calls` that did not stream.
    pub(crate) fn complete(&mut self, calls: &[ToolCallInfo]) -> Vec<ToolStep> {
        let mut steps = Vec::new();
        for call in calls {
            let streamed = self
                .calls
                .iter()
                .find(|c| c.id.as_deref() == Some(call.id.as_str()));
            match streamed {
                Some(c) if c.started && c.streamed => continue,
                Some(c) if c.started => {}
                _ => steps.push(ToolStep::Start {
                    id: call.id.clone(),
                    name: call.name.clone(),
                }),
            }
            let text = arguments_text(call);
            if !text.is_empty() {
                steps.push(ToolStep::Args {
                    id: call.id.clone(),
                    delta: text,
                });
            }
        }
        steps
    }

    /// Forgets the calls (the LLM call ended).
    pub(crate) fn reset(&mut self) {
        self.calls.clear();
    }
}

/// A call's arguments as JSON text (what the model wrote when it was not JSON).
pub(crate) fn arguments_text(call: &ToolCallInfo) -> String {
    match (&call.arguments_raw, &call.arguments) {
        (Some(raw), _) => raw.clone(),
        (None, serde_json::Value::Null) => String::new(),
        (None, value) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(
        index: u32,
        id: Option<&str>,
        name: Option<&str>,
        text: &str,
    ) -> ToolCallArgumentsDeltaEvent {
        ToolCallArgumentsDeltaEvent {
            index,
            tool_call_id: id.map(str::to_owned),
            tool_name: name.map(str::to_owned),
            delta: text.into(),
            ..ToolCallArgumentsDeltaEvent::default()
        }
    }

    #[test]
    fn buffers_arguments_until_the_id_is_known() {
        let mut tools = ToolStreams::default();
        assert!(
            tools
                .delta(&delta(0, None, Some("calc"), "{\"a\""))
                .is_empty()
        );
        let steps = tools.delta(&delta(0, Some("t1"), None, ":1}"));
        assert_eq!(
            steps,
            vec![
                ToolStep::Start {
                    id: "t1".into(),
                    name: "calc".into()
                },
                ToolStep::Args {
                    id: "t1".into(),
                    delta: "{\"a\":1}".into()
                },
            ]
        );
        let info = ToolCallInfo {
            id: "t1".into(),
            name: "calc".into(),
            arguments: serde_json::json!({"a": 1}),
            arguments_raw: None,
        };
        assert!(
            tools.complete(&[info]).is_empty(),
            "already streamed in full"
        );
    }

    #[test]
    fn announces_calls_that_never_streamed() {
        let mut tools = ToolStreams::default();
        let info = ToolCallInfo {
            id: "t2".into(),
            name: "now".into(),
            arguments: serde_json::json!({}),
            arguments_raw: None,
        };
        assert_eq!(
            tools.complete(&[info]),
            vec![
                ToolStep::Start {
                    id: "t2".into(),
                    name: "now".into()
                },
                ToolStep::Args {
                    id: "t2".into(),
                    delta: "{}".into()
                },
            ]
        );
    }
}
