//! Provider-specific plugin events: raw streaming chunks of the OpenAI and xAI plugins,
//! and the Qwen plugin's errors.
//!
//! Provenance: these are Vision Agents' provider plugin events. The seed gives no `type`
//! string for [`QwenLLMErrorEvent`]; `plugin.qwen.llm_error` follows the other plugins'
//! pattern (`plugin.<provider>.<event>`).

use crate::{ErrorFields, define_event};

define_event! {
    /// The OpenAI plugin received a streaming chunk; the chunk is kept as the provider
    /// sent it.
    #[event(type = "plugin.openai.stream", domain = Plugin, base = plugin)]
    pub struct OpenAIStreamEvent {
        /// The raw streaming chunk.
        pub chunk: serde_json::Value,
    }
}

define_event! {
    /// The xAI plugin received a streaming response chunk; the chunk is kept as the
    /// provider sent it.
    #[event(type = "plugin.xai.chunk", domain = Plugin, base = plugin)]
    pub struct XAIChunkEvent {
        /// The raw streaming chunk.
        pub chunk: serde_json::Value,
    }
}

define_event! {
    /// The Qwen LLM plugin hit an error.
    ///
    /// The exception is carried as data ([`ErrorFields`]); a human-readable message is
    /// [`QwenLLMErrorEvent::error_message`].
    #[event(type = "plugin.qwen.llm_error", domain = Plugin, base = plugin)]
    pub struct QwenLLMErrorEvent {
        /// The error, its code and where it happened.
        #[serde(flatten)]
        pub failure: ErrorFields,
    }
}

impl QwenLLMErrorEvent {
    /// A human-readable message for the error (`"Unknown error"` when none is carried).
    pub fn error_message(&self) -> String {
        self.failure.error_message()
    }
}

/// Every provider plugin event type, for [`catalogue::all`](crate::catalogue::all).
pub fn event_infos() -> Vec<crate::EventInfo> {
    vec![
        crate::EventInfo::of::<OpenAIStreamEvent>(),
        crate::EventInfo::of::<XAIChunkEvent>(),
        crate::EventInfo::of::<QwenLLMErrorEvent>(),
    ]
}
