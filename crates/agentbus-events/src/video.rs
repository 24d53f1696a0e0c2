//! Video processor events: detection models (Roboflow, Ultralytics, ...) reporting on
//! frames.
//!
//! Provenance: in Vision Agents, [`VideoProcessorDetectionEvent`] is the base class that
//! detection plugins subclass with their own fields; here it is one event with the
//! shared fields.

use crate::define_event;

define_event! {
    /// A video processor has finished processing a frame and reports what it detected.
    ///
    /// Carries the fields every detection processor shares, which the metrics collector
    /// reads.
    #[event(type = "plugin.video_processor.detection", domain = Video, base = plugin)]
    pub struct VideoProcessorDetectionEvent {
        /// The model used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub model_id: Option<String>,
        /// How long inference took, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub inference_time_ms: Option<f64>,
        /// How many objects were detected.
        #[serde(default)]
        pub detection_count: u64,
    }
}

/// Every video processor event type, for [`catalogue::all`](crate::catalogue::all).
pub fn event_infos() -> Vec<crate::EventInfo> {
    vec![crate::EventInfo::of::<VideoProcessorDetectionEvent>()]
}
