//! The two instrument sets the collector records: Vision Agents' own names (`llm.latency.ms`,
//! `stt.errors`, ...) and the OpenTelemetry GenAI semantic conventions
//! (`gen_ai.client.token.usage`, ...), with their units, descriptions and bucket boundaries.
//!
//! [`InstrumentSpec`] is the static definition (one constant per instrument, listed in
//! [`ALL`]); [`Instruments`] is the live set created on an OpenTelemetry
//! [`Meter`](opentelemetry::metrics::Meter).

use opentelemetry::metrics::{Counter, Histogram, Meter};

/// The kind of an instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstrumentKind {
    /// A monotonic sum of non-negative integers.
    CounterU64,
    /// A monotonic sum of non-negative fractional values (durations in ms).
    CounterF64,
    /// A histogram of integer values (token counts).
    HistogramU64,
    /// A histogram of fractional values (durations).
    HistogramF64,
}

/// The static definition of one instrument.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InstrumentSpec {
    /// The OpenTelemetry instrument name.
    pub name: &'static str,
    /// The UCUM unit (`ms`, `s`, `By`, `{token}`), empty for plain counts.
    pub unit: &'static str,
    /// What the instrument measures.
    pub description: &'static str,
    /// Counter or histogram, integer or fractional.
    pub kind: InstrumentKind,
    /// Explicit bucket boundaries (histograms only).
    pub boundaries: &'static [f64],
}

/// The OpenTelemetry SDK's default explicit bucket boundaries. Vision Agents creates its
/// millisecond histograms without boundaries, so they get these; agentbus states them.
pub const SDK_DEFAULT_BOUNDARIES: &[f64] = &[
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// GenAI semantic conventions: boundaries of `gen_ai.client.token.usage` (powers of 4).
pub const GEN_AI_TOKEN_BOUNDARIES: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// GenAI semantic conventions: boundaries of `gen_ai.client.operation.duration` (seconds,
/// doubling from 10 ms). agentbus also uses them for `gen_ai.execute_tool.duration`, for
/// which the conventions name no boundaries.
pub const GEN_AI_DURATION_BOUNDARIES: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// GenAI semantic conventions: boundaries of `gen_ai.server.time_to_first_token` (seconds).
pub const GEN_AI_TTFT_BOUNDARIES: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// GenAI semantic conventions: boundaries of `gen_ai.server.time_per_output_token`
/// (seconds).
pub const GEN_AI_TPOT_BOUNDARIES: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
];

const fn counter(
    name: &'static str,
    unit: &'static str,
    description: &'static str,
) -> InstrumentSpec {
    InstrumentSpec {
        name,
        unit,
        description,
        kind: InstrumentKind::CounterU64,
        boundaries: &[],
    }
}

const fn counter_f64(
    name: &'static str,
    unit: &'static str,
    description: &'static str,
) -> InstrumentSpec {
    InstrumentSpec {
        name,
        unit,
        description,
        kind: InstrumentKind::CounterF64,
        boundaries: &[],
    }
}

const fn millis(name: &'static str, description: &'static str) -> InstrumentSpec {
    InstrumentSpec {
        name,
        unit: "ms",
        description,
        kind: InstrumentKind::HistogramF64,
        boundaries: SDK_DEFAULT_BOUNDARIES,
    }
}

const fn seconds(
    name: &'static str,
    description: &'static str,
    boundaries: &'static [f64],
) -> InstrumentSpec {
    InstrumentSpec {
        name,
        unit: "s",
        description,
        kind: InstrumentKind::HistogramF64,
        boundaries,
    }
}

// ---- Vision Agents: LLM -------------------------------------------------------------

/// `llm.latency.ms`: request to complete response.
pub const LLM_LATENCY: InstrumentSpec = millis(
    "llm.latency.ms",
    "LLM response latency (request to complete response)",
);
/// `llm.time_to_first_token.ms`.
pub const LLM_TTFT: InstrumentSpec = millis(
    "llm.time_to_first_token.ms",
    "LLM time to first token (streaming)",
);
/// `llm.tokens.input`.
pub const LLM_TOKENS_INPUT: InstrumentSpec =
    counter("llm.tokens.input", "", "LLM input/prompt tokens consumed");
/// `llm.tokens.output`.
pub const LLM_TOKENS_OUTPUT: InstrumentSpec = counter(
    "llm.tokens.output",
    "",
    "LLM output/completion tokens generated",
);
/// `llm.errors`.
pub const LLM_ERRORS: InstrumentSpec = counter("llm.errors", "", "LLM errors");
/// `llm.tool_calls`.
pub const LLM_TOOL_CALLS: InstrumentSpec =
    counter("llm.tool_calls", "", "LLM tool/function calls executed");
/// `llm.tool_latency.ms`.
pub const LLM_TOOL_LATENCY: InstrumentSpec =
    millis("llm.tool_latency.ms", "LLM tool execution latency");

// ---- Vision Agents: STT, TTS, turns ---------------------------------------------------

/// `stt.latency.ms`.
pub const STT_LATENCY: InstrumentSpec = millis("stt.latency.ms", "STT processing latency");
/// `stt.audio_duration.ms`.
pub const STT_AUDIO_DURATION: InstrumentSpec = millis(
    "stt.audio_duration.ms",
    "Duration of audio processed by STT",
);
/// `stt.errors`.
pub const STT_ERRORS: InstrumentSpec = counter("stt.errors", "", "STT errors");
/// `tts.latency.ms`.
pub const TTS_LATENCY: InstrumentSpec = millis("tts.latency.ms", "TTS synthesis latency");
/// `tts.audio_duration.ms`.
pub const TTS_AUDIO_DURATION: InstrumentSpec =
    millis("tts.audio_duration.ms", "Duration of synthesized audio");
/// `tts.characters`.
pub const TTS_CHARACTERS: InstrumentSpec =
    counter("tts.characters", "", "Characters synthesized by TTS");
/// `tts.errors`.
pub const TTS_ERRORS: InstrumentSpec = counter("tts.errors", "", "TTS errors");
/// `tts.time_to_first_byte.ms` (agentbus: Vision Agents measures TTS only as a whole).
pub const TTS_TIME_TO_FIRST_BYTE: InstrumentSpec = millis(
    "tts.time_to_first_byte.ms",
    "TTS time from the start of synthesis to its first audio",
);
/// `voice.voice_to_voice.ms` (agentbus): end of user speech to the first reply audio.
pub const VOICE_TO_VOICE: InstrumentSpec = millis(
    "voice.voice_to_voice.ms",
    "Voice-to-voice latency: end of user speech to the first reply audio",
);
/// `turn.duration.ms`.
pub const TURN_DURATION: InstrumentSpec = millis("turn.duration.ms", "Duration of detected turns");
/// `turn.trailing_silence.ms`.
pub const TURN_TRAILING_SILENCE: InstrumentSpec = millis(
    "turn.trailing_silence.ms",
    "Trailing silence duration before turn end",
);

// ---- Vision Agents: realtime ----------------------------------------------------------

/// `realtime.sessions`.
pub const REALTIME_SESSIONS: InstrumentSpec =
    counter("realtime.sessions", "", "Realtime LLM sessions started");
/// `realtime.session_duration.ms` (from the connected and disconnected events' timestamps).
pub const REALTIME_SESSION_DURATION: InstrumentSpec = millis(
    "realtime.session_duration.ms",
    "Duration of realtime sessions",
);
/// `realtime.audio.input.bytes`.
pub const REALTIME_AUDIO_INPUT_BYTES: InstrumentSpec = counter(
    "realtime.audio.input.bytes",
    "By",
    "Audio bytes sent to realtime LLM",
);
/// `realtime.audio.output.bytes`.
pub const REALTIME_AUDIO_OUTPUT_BYTES: InstrumentSpec = counter(
    "realtime.audio.output.bytes",
    "By",
    "Audio bytes received from realtime LLM",
);
/// `realtime.audio.input.duration.ms` (a fractional sum: Vision Agents truncates each
/// addition to whole milliseconds, agentbus keeps the fraction).
pub const REALTIME_AUDIO_INPUT_DURATION: InstrumentSpec = counter_f64(
    "realtime.audio.input.duration.ms",
    "ms",
    "Audio duration sent to realtime LLM",
);
/// `realtime.audio.output.duration.ms`.
pub const REALTIME_AUDIO_OUTPUT_DURATION: InstrumentSpec = counter_f64(
    "realtime.audio.output.duration.ms",
    "ms",
    "Audio duration received from realtime LLM",
);
/// `realtime.responses`.
pub const REALTIME_RESPONSES: InstrumentSpec =
    counter("realtime.responses", "", "Realtime LLM responses received");
/// `realtime.transcriptions.user`.
pub const REALTIME_TRANSCRIPTIONS_USER: InstrumentSpec = counter(
    "realtime.transcriptions.user",
    "",
    "User speech transcriptions from realtime LLM",
);
/// `realtime.transcriptions.agent`.
pub const REALTIME_TRANSCRIPTIONS_AGENT: InstrumentSpec = counter(
    "realtime.transcriptions.agent",
    "",
    "Agent speech transcriptions from realtime LLM",
);
/// `realtime.errors`.
pub const REALTIME_ERRORS: InstrumentSpec = counter("realtime.errors", "", "Realtime LLM errors");

// ---- Vision Agents: vision ------------------------------------------------------------

/// `vlm.inferences`.
pub const VLM_INFERENCES: InstrumentSpec = counter("vlm.inferences", "", "VLM inference requests");
/// `vlm.inference.latency.ms`.
pub const VLM_LATENCY: InstrumentSpec = millis("vlm.inference.latency.ms", "VLM inference latency");
/// `vlm.tokens.input`.
pub const VLM_TOKENS_INPUT: InstrumentSpec =
    counter("vlm.tokens.input", "", "VLM input tokens (text + image)");
/// `vlm.tokens.output`.
pub const VLM_TOKENS_OUTPUT: InstrumentSpec = counter("vlm.tokens.output", "", "VLM output tokens");
/// `vlm.errors`.
pub const VLM_ERRORS: InstrumentSpec = counter("vlm.errors", "", "VLM errors");
/// `video.frames.processed`.
pub const VIDEO_FRAMES: InstrumentSpec =
    counter("video.frames.processed", "", "Video frames processed");
/// `video.detections`.
pub const VIDEO_DETECTIONS: InstrumentSpec =
    counter("video.detections", "", "Objects/items detected in video");
/// `video.processing.latency.ms`.
pub const VIDEO_LATENCY: InstrumentSpec = millis(
    "video.processing.latency.ms",
    "Video frame processing latency",
);

// ---- OpenTelemetry GenAI semantic conventions -----------------------------------------

/// `gen_ai.client.token.usage`: one measurement per token type per operation.
pub const GEN_AI_TOKEN_USAGE: InstrumentSpec = InstrumentSpec {
    name: "gen_ai.client.token.usage",
    unit: "{token}",
    description: "Measures number of input and output tokens used",
    kind: InstrumentKind::HistogramU64,
    boundaries: GEN_AI_TOKEN_BOUNDARIES,
};
/// `gen_ai.client.operation.duration`.
pub const GEN_AI_OPERATION_DURATION: InstrumentSpec = seconds(
    "gen_ai.client.operation.duration",
    "GenAI operation duration",
    GEN_AI_DURATION_BOUNDARIES,
);
/// `gen_ai.server.time_to_first_token`.
pub const GEN_AI_TTFT: InstrumentSpec = seconds(
    "gen_ai.server.time_to_first_token",
    "Time to generate first token for successful responses",
    GEN_AI_TTFT_BOUNDARIES,
);
/// `gen_ai.server.time_per_output_token`.
pub const GEN_AI_TPOT: InstrumentSpec = seconds(
    "gen_ai.server.time_per_output_token",
    "Time per output token generated after the first token for successful responses",
    GEN_AI_TPOT_BOUNDARIES,
);
/// `gen_ai.execute_tool.duration`.
pub const GEN_AI_EXECUTE_TOOL_DURATION: InstrumentSpec = seconds(
    "gen_ai.execute_tool.duration",
    "Duration of tool executions",
    GEN_AI_DURATION_BOUNDARIES,
);

/// Every instrument the collector records, Vision Agents' set first.
pub const ALL: &[InstrumentSpec] = &[
    LLM_LATENCY,
    LLM_TTFT,
    LLM_TOKENS_INPUT,
    LLM_TOKENS_OUTPUT,
    LLM_ERRORS,
    LLM_TOOL_CALLS,
    LLM_TOOL_LATENCY,
    STT_LATENCY,
    STT_AUDIO_DURATION,
    STT_ERRORS,
    TTS_LATENCY,
    TTS_AUDIO_DURATION,
    TTS_CHARACTERS,
    TTS_ERRORS,
    TTS_TIME_TO_FIRST_BYTE,
    VOICE_TO_VOICE,
    TURN_DURATION,
    TURN_TRAILING_SILENCE,
    REALTIME_SESSIONS,
    REALTIME_SESSION_DURATION,
    REALTIME_AUDIO_INPUT_BYTES,
    REALTIME_AUDIO_OUTPUT_BYTES,
    REALTIME_AUDIO_INPUT_DURATION,
    REALTIME_AUDIO_OUTPUT_DURATION,
    REALTIME_RESPONSES,
    REALTIME_TRANSCRIPTIONS_USER,
    REALTIME_TRANSCRIPTIONS_AGENT,
    REALTIME_ERRORS,
    VLM_INFERENCES,
    VLM_LATENCY,
    VLM_TOKENS_INPUT,
    VLM_TOKENS_OUTPUT,
    VLM_ERRORS,
    VIDEO_FRAMES,
    VIDEO_DETECTIONS,
    VIDEO_LATENCY,
    GEN_AI_TOKEN_USAGE,
    GEN_AI_OPERATION_DURATION,
    GEN_AI_TTFT,
    GEN_AI_TPOT,
    GEN_AI_EXECUTE_TOOL_DURATION,
];

/// Attribute keys the collector puts on measurements.
pub mod attr {
    /// Vision Agents: the plugin that emitted the event (`plugin_name`).
    pub const PROVIDER: &str = "provider";
    /// Vision Agents: the model identifier.
    pub const MODEL: &str = "model";
    /// Vision Agents: the tool's name.
    pub const TOOL_NAME: &str = "tool_name";
    /// Vision Agents: whether a tool call succeeded (`true`/`false`).
    pub const SUCCESS: &str = "success";
    /// Vision Agents: the error's kind.
    pub const ERROR_TYPE: &str = "error_type";
    /// Vision Agents: the provider's error code.
    pub const ERROR_CODE: &str = "error_code";
    /// Vision Agents: STT language.
    pub const LANGUAGE: &str = "language";
    /// Vision Agents: whether a realtime disconnect was clean.
    pub const WAS_CLEAN: &str = "was_clean";
    /// Vision Agents: whether a realtime error is recoverable.
    pub const IS_RECOVERABLE: &str = "is_recoverable";
    /// GenAI: `chat`, `execute_tool`, ...
    pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
    /// GenAI: the provider (`openai`, `anthropic`, ...).
    pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
    /// GenAI: the model asked for.
    pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
    /// GenAI: the model that answered.
    pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
    /// GenAI: `input` or `output` on `gen_ai.client.token.usage`.
    pub const GEN_AI_TOKEN_TYPE: &str = "gen_ai.token.type";
    /// GenAI: the tool's name on `gen_ai.execute_tool.duration`.
    pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
    /// The error class, present only on failed operations.
    pub const ERROR_TYPE_SEMCONV: &str = "error.type";
}

/// The live instruments, created on one [`Meter`].
#[derive(Clone, Debug)]
#[allow(missing_docs)] // one field per constant above, named after it
pub struct Instruments {
    pub llm_latency: Histogram<f64>,
    pub llm_ttft: Histogram<f64>,
    pub llm_tokens_input: Counter<u64>,
    pub llm_tokens_output: Counter<u64>,
    pub llm_errors: Counter<u64>,
    pub llm_tool_calls: Counter<u64>,
    pub llm_tool_latency: Histogram<f64>,
    pub stt_latency: Histogram<f64>,
    pub stt_audio_duration: Histogram<f64>,
    pub stt_errors: Counter<u64>,
    pub tts_latency: Histogram<f64>,
    pub tts_audio_duration: Histogram<f64>,
    pub tts_characters: Counter<u64>,
    pub tts_errors: Counter<u64>,
    pub tts_time_to_first_byte: Histogram<f64>,
    pub voice_to_voice: Histogram<f64>,
    pub turn_duration: Histogram<f64>,
    pub turn_trailing_silence: Histogram<f64>,
    pub realtime_sessions: Counter<u64>,
    pub realtime_session_duration: Histogram<f64>,
    pub realtime_audio_input_bytes: Counter<u64>,
    pub realtime_audio_output_bytes: Counter<u64>,
    pub realtime_audio_input_duration: Counter<f64>,
    pub realtime_audio_output_duration: Counter<f64>,
    pub realtime_responses: Counter<u64>,
    pub realtime_transcriptions_user: Counter<u64>,
    pub realtime_transcriptions_agent: Counter<u64>,
    pub realtime_errors: Counter<u64>,
    pub vlm_inferences: Counter<u64>,
    pub vlm_latency: Histogram<f64>,
    pub vlm_tokens_input: Counter<u64>,
    pub vlm_tokens_output: Counter<u64>,
    pub vlm_errors: Counter<u64>,
    pub video_frames: Counter<u64>,
    pub video_detections: Counter<u64>,
    pub video_latency: Histogram<f64>,
    pub gen_ai_token_usage: Histogram<u64>,
    pub gen_ai_operation_duration: Histogram<f64>,
    pub gen_ai_ttft: Histogram<f64>,
    pub gen_ai_tpot: Histogram<f64>,
    pub gen_ai_execute_tool_duration: Histogram<f64>,
}

fn hist_f64(meter: &Meter, spec: InstrumentSpec) -> Histogram<f64> {
    meter
        .f64_histogram(spec.name)
        .with_unit(spec.unit)
        .with_description(spec.description)
        .with_boundaries(spec.boundaries.to_vec())
        .build()
}

fn hist_u64(meter: &Meter, spec: InstrumentSpec) -> Histogram<u64> {
    meter
        .u64_histogram(spec.name)
        .with_unit(spec.unit)
        .with_description(spec.description)
        .with_boundaries(spec.boundaries.to_vec())
        .build()
}

fn count_u64(meter: &Meter, spec: InstrumentSpec) -> Counter<u64> {
    meter
        .u64_counter(spec.name)
        .with_unit(spec.unit)
        .with_description(spec.description)
        .build()
}

fn count_f64(meter: &Meter, spec: InstrumentSpec) -> Counter<f64> {
    meter
        .f64_counter(spec.name)
        .with_unit(spec.unit)
        .with_description(spec.description)
        .build()
}

impl Instruments {
    /// Creates every instrument of [`ALL`] on `meter`.
    pub fn new(meter: &Meter) -> Self {
        Self {
            llm_latency: hist_f64(meter, LLM_LATENCY),
            llm_ttft: hist_f64(meter, LLM_TTFT),
            llm_tokens_input: count_u64(meter, LLM_TOKENS_INPUT),
            llm_tokens_output: count_u64(meter, LLM_TOKENS_OUTPUT),
            llm_errors: count_u64(meter, LLM_ERRORS),
            llm_tool_calls: count_u64(meter, LLM_TOOL_CALLS),
            llm_tool_latency: hist_f64(meter, LLM_TOOL_LATENCY),
            stt_latency: hist_f64(meter, STT_LATENCY),
            stt_audio_duration: hist_f64(meter, STT_AUDIO_DURATION),
            stt_errors: count_u64(meter, STT_ERRORS),
            tts_latency: hist_f64(meter, TTS_LATENCY),
            tts_audio_duration: hist_f64(meter, TTS_AUDIO_DURATION),
            tts_characters: count_u64(meter, TTS_CHARACTERS),
            tts_errors: count_u64(meter, TTS_ERRORS),
            tts_time_to_first_byte: hist_f64(meter, TTS_TIME_TO_FIRST_BYTE),
            voice_to_voice: hist_f64(meter, VOICE_TO_VOICE),
            turn_duration: hist_f64(meter, TURN_DURATION),
            turn_trailing_silence: hist_f64(meter, TURN_TRAILING_SILENCE),
            realtime_sessions: count_u64(meter, REALTIME_SESSIONS),
            realtime_session_duration: hist_f64(meter, REALTIME_SESSION_DURATION),
            realtime_audio_input_bytes: count_u64(meter, REALTIME_AUDIO_INPUT_BYTES),
            realtime_audio_output_bytes: count_u64(meter, REALTIME_AUDIO_OUTPUT_BYTES),
            realtime_audio_input_duration: count_f64(meter, REALTIME_AUDIO_INPUT_DURATION),
            realtime_audio_output_duration: count_f64(meter, REALTIME_AUDIO_OUTPUT_DURATION),
            realtime_responses: count_u64(meter, REALTIME_RESPONSES),
            realtime_transcriptions_user: count_u64(meter, REALTIME_TRANSCRIPTIONS_USER),
            realtime_transcriptions_agent: count_u64(meter, REALTIME_TRANSCRIPTIONS_AGENT),
            realtime_errors: count_u64(meter, REALTIME_ERRORS),
            vlm_inferences: count_u64(meter, VLM_INFERENCES),
            vlm_latency: hist_f64(meter, VLM_LATENCY),
            vlm_tokens_input: count_u64(meter, VLM_TOKENS_INPUT),
            vlm_tokens_output: count_u64(meter, VLM_TOKENS_OUTPUT),
            vlm_errors: count_u64(meter, VLM_ERRORS),
            video_frames: count_u64(meter, VIDEO_FRAMES),
            video_detections: count_u64(meter, VIDEO_DETECTIONS),
            video_latency: hist_f64(meter, VIDEO_LATENCY),
            gen_ai_token_usage: hist_u64(meter, GEN_AI_TOKEN_USAGE),
            gen_ai_operation_duration: hist_f64(meter, GEN_AI_OPERATION_DURATION),
            gen_ai_ttft: hist_f64(meter, GEN_AI_TTFT),
            gen_ai_tpot: hist_f64(meter, GEN_AI_TPOT),
            gen_ai_execute_tool_duration: hist_f64(meter, GEN_AI_EXECUTE_TOOL_DURATION),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_boundaries_increase() {
        let mut names: Vec<_> = ALL.iter().map(|s| s.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate instrument name");
        for spec in ALL {
            let histogram = matches!(
                spec.kind,
                InstrumentKind::HistogramF64 | InstrumentKind::HistogramU64
            );
            assert_eq!(histogram, !spec.boundaries.is_empty(), "{}", spec.name);
            assert!(
                spec.boundaries.windows(2).all(|w| w[0] < w[1]),
                "{} boundaries not increasing",
                spec.name
            );
        }
    }

    #[test]
    fn semconv_boundaries_follow_their_progressions() {
        // Token usage: powers of four from 4^0 to 4^13.
        for (i, b) in GEN_AI_TOKEN_BOUNDARIES.iter().enumerate() {
            assert_eq!(*b, 4f64.powi(i as i32));
        }
        // Operation duration: 0.01 s doubling thirteen times.
        for (i, b) in GEN_AI_DURATION_BOUNDARIES.iter().enumerate() {
            assert!((b - 0.01 * 2f64.powi(i as i32)).abs() < 1e-9);
        }
        assert_eq!(GEN_AI_TTFT_BOUNDARIES.len(), 16);
        assert_eq!(GEN_AI_TPOT_BOUNDARIES.len(), 13);
    }
}
