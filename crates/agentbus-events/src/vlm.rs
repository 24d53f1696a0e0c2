//! Vision-language model (VLM) inference events.
//!
//! Provenance: these are Vision Agents' VLM events. Vision Agents generates
//! [`VLMInferenceStartEvent`]'s `inference_id` when not given, where the wire requires it.

use crate::{ErrorFields, define_event};

define_event! {
    /// A vision-language model inference over video frames has started.
    ///
    /// `inference_id` is required on the wire: producers assign one before sending.
    #[event(type = "plugin.vlm_inference_start", domain = Vlm, base = plugin)]
    pub struct VLMInferenceStartEvent {
        /// Identifies this inference.
        pub inference_id: String,
        /// The model used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub model: Option<String>,
        /// How many video frames will be processed.
        #[serde(default)]
        pub frames_count: u64,
    }
}

define_event! {
    /// A vision-language model inference has finished, with its text, timing, token usage
    /// and detection count.
    #[event(type = "plugin.vlm_inference_completed", domain = Vlm, base = plugin)]
    pub struct VLMInferenceCompletedEvent {
        /// The inference that finished.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub inference_id: Option<String>,
        /// The model used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub model: Option<String>,
        /// The model's text output.
        #[serde(default)]
        pub text: String,
        /// Milliseconds from the request to the complete response.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub latency_ms: Option<f64>,
        /// Input tokens (text and image).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub input_tokens: Option<u64>,
        /// Output tokens generated.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub output_tokens: Option<u64>,
        /// How many video frames were processed.
        #[serde(default)]
        pub frames_processed: u64,
        /// How many objects or items were detected (detection models).
        #[serde(default)]
        pub detections: u64,
    }
}

define_event! {
    /// A vision-language model inference failed.
    ///
    /// The exception is carried as data ([`ErrorFields`]); a human-readable message is
    /// [`VLMErrorEvent::error_message`].
    #[event(type = "plugin.vlm_error", domain = Vlm, base = plugin)]
    pub struct VLMErrorEvent {
        /// The error, its code and where it happened.
        #[serde(flatten)]
        pub failure: ErrorFields,
        /// The inference that failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub inference_id: Option<String>,
        /// Whether inference can carry on (true when absent on the wire; `Default::default()`
        /// gives `false`).
        #[serde(default = "crate::llm::default_true")]
        pub is_recoverable: bool,
    }
}

impl VLMErrorEvent {
    /// A human-readable message for the error (`"Unknown error"` when none is carried).
    pub fn error_message(&self) -> String {
        self.failure.error_message()
    }
}

/// Every VLM event type, for [`catalogue::all`](crate::catalogue::all).
pub fn event_infos() -> Vec<crate::EventInfo> {
    vec![
        crate::EventInfo::of::<VLMInferenceStartEvent>(),
        crate::EventInfo::of::<VLMInferenceCompletedEvent>(),
        crate::EventInfo::of::<VLMErrorEvent>(),
    ]
}
