//! Tool (function-calling) execution events of the LLM layer: a tool call starting and
//! finishing.
//!
//! Provenance: these are the tool events of Vision Agents' LLM layer.

use crate::define_event;

define_event! {
    /// A tool call requested by the LLM has started executing.
    #[event(type = "plugin.llm.tool.start", domain = Tool, base = plugin)]
    pub struct ToolStartEvent {
        /// Name of the tool being run.
        #[serde(default)]
        pub tool_name: String,
        /// The arguments the tool was called with (a JSON object).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub arguments: Option<serde_json::Value>,
        /// Identifies this call; the matching [`ToolEndEvent`] carries the same id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tool_call_id: Option<String>,
    }
}

define_event! {
    /// A tool call has finished, successfully or not, with its result or error and how
    /// long it took.
    #[event(type = "plugin.llm.tool.end", domain = Tool, base = plugin)]
    pub struct ToolEndEvent {
        /// Name of the tool that ran.
        #[serde(default)]
        pub tool_name: String,
        /// Whether the tool succeeded (true when absent on the wire; `Default::default()`
        /// gives `false`).
        #[serde(default = "crate::llm::default_true")]
        pub success: bool,
        /// What the tool returned, when it succeeded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub result: Option<serde_json::Value>,
        /// The error message, when it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<String>,
        /// Identifies the call; matches the [`ToolStartEvent`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tool_call_id: Option<String>,
        /// How long the tool ran, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub execution_time_ms: Option<f64>,
    }
}

/// Every tool event type, for [`catalogue::all`](crate::catalogue::all).
pub fn event_infos() -> Vec<crate::EventInfo> {
    vec![
        crate::EventInfo::of::<ToolStartEvent>(),
        crate::EventInfo::of::<ToolEndEvent>(),
    ]
}
