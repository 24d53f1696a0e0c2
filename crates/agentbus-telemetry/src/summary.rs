//! The in-memory summary of a run (Vision Agents' `AgentMetrics`): counts, sums and
//! latency distributions (p50/p95), serialisable to JSON and printable at the end of a run.
//!
//! Totals that come from optional event fields (token counts, audio durations) are
//! `None` until some event reports them: a run whose provider never reported usage shows
//! no token totals, not zero.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::quantiles::{LatencyStats, Samples};

/// Everything the collector has recorded so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSummary {
    /// Events the collector recorded something from.
    pub events: u64,
    /// Agent runs (ReAct loops) started and finished.
    pub agent: AgentSummary,
    /// LLM calls.
    pub llm: LlmSummary,
    /// Tool calls.
    pub tools: ToolSummary,
    /// Speech to text.
    pub stt: SttSummary,
    /// Text to speech.
    pub tts: TtsSummary,
    /// Turn detection.
    pub turns: TurnSummary,
    /// Vision-language model inferences.
    pub vlm: VlmSummary,
    /// Video processors.
    pub video: VideoSummary,
    /// Realtime (speech-to-speech) sessions.
    pub realtime: RealtimeSummary,
}

/// Agent runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentSummary {
    /// Runs started.
    pub runs_started: u64,
    /// Runs finished (including aborted ones).
    pub runs_finished: u64,
    /// Runs that ended aborted or with an error.
    pub runs_failed: u64,
    /// Run duration, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<LatencyStats>,
}

/// LLM calls.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmSummary {
    /// Responses completed.
    pub responses: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Request to complete response, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<LatencyStats>,
    /// Time to first token, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_first_token_ms: Option<LatencyStats>,
    /// Input tokens, summed over the responses that reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Output tokens, summed over the responses that reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Responses per model (responses without a model are not listed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, u64>,
}

/// Tool calls.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolSummary {
    /// Calls finished.
    pub calls: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Execution time, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<LatencyStats>,
    /// The same, per tool.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_tool: BTreeMap<String, ToolStats>,
}

/// One tool's calls.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolStats {
    /// Calls finished.
    pub calls: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Execution time, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<LatencyStats>,
}

/// Speech to text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SttSummary {
    /// Final transcripts.
    pub transcripts: u64,
    /// Errors.
    pub errors: u64,
    /// Processing time, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<LatencyStats>,
    /// Audio transcribed, ms (sum over the transcripts that reported it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_duration_ms: Option<f64>,
}

/// Text to speech.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TtsSummary {
    /// Syntheses completed.
    pub syntheses: u64,
    /// Errors.
    pub errors: u64,
    /// Synthesis time, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<LatencyStats>,
    /// Audio synthesised, ms (sum over the syntheses that reported it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_duration_ms: Option<f64>,
    /// Characters synthesised.
    pub characters: u64,
    /// Start of synthesis to its first audio, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_first_byte_ms: Option<LatencyStats>,
    /// End of user speech to the first reply audio, ms (one per spoken reply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_to_voice_ms: Option<LatencyStats>,
}

/// Turn detection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TurnSummary {
    /// Turns ended.
    pub turns: u64,
    /// Turn duration, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<LatencyStats>,
    /// Trailing silence before the turn ended, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trailing_silence_ms: Option<LatencyStats>,
}

/// Vision-language model inferences.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VlmSummary {
    /// Inferences completed.
    pub inferences: u64,
    /// Errors.
    pub errors: u64,
    /// Inference latency, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<LatencyStats>,
    /// Input tokens (text + image), summed over the inferences that reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Output tokens, summed over the inferences that reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
}

/// Video processing (detection processors and VLM frames).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoSummary {
    /// Frames processed.
    pub frames_processed: u64,
    /// Objects detected.
    pub detections: u64,
    /// Processing latency per frame, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_latency_ms: Option<LatencyStats>,
}

/// Realtime sessions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RealtimeSummary {
    /// Sessions connected.
    pub sessions: u64,
    /// Session duration, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_duration_ms: Option<LatencyStats>,
    /// Complete responses.
    pub responses: u64,
    /// User speech transcriptions.
    pub user_transcriptions: u64,
    /// Agent speech transcriptions.
    pub agent_transcriptions: u64,
    /// Errors.
    pub errors: u64,
    /// Audio bytes sent.
    pub audio_input_bytes: u64,
    /// Audio bytes received.
    pub audio_output_bytes: u64,
    /// Audio sent, ms.
    pub audio_input_duration_ms: f64,
    /// Audio received, ms.
    pub audio_output_duration_ms: f64,
}

/// The mutable counterpart of [`MetricsSummary`] the collector updates.
#[derive(Debug, Default)]
pub(crate) struct SummaryState {
    pub events: u64,
    pub runs_started: u64,
    pub runs_finished: u64,
    pub runs_failed: u64,
    pub run_duration: Samples,
    pub llm_responses: u64,
    pub llm_errors: u64,
    pub llm_latency: Samples,
    pub llm_ttft: Samples,
    pub llm_input_tokens: Option<u64>,
    pub llm_output_tokens: Option<u64>,
    pub llm_models: BTreeMap<String, u64>,
    pub tool_calls: u64,
    pub tool_failures: u64,
    pub tool_latency: Samples,
    pub tools: BTreeMap<String, ToolState>,
    pub stt_transcripts: u64,
    pub stt_errors: u64,
    pub stt_latency: Samples,
    pub stt_audio_ms: Option<f64>,
    pub tts_syntheses: u64,
    pub tts_errors: u64,
    pub tts_latency: Samples,
    pub tts_audio_ms: Option<f64>,
    pub tts_characters: u64,
    pub tts_ttfb: Samples,
    pub voice_to_voice: Samples,
    pub turns: u64,
    pub turn_duration: Samples,
    pub turn_silence: Samples,
    pub vlm_inferences: u64,
    pub vlm_errors: u64,
    pub vlm_latency: Samples,
    pub vlm_input_tokens: Option<u64>,
    pub vlm_output_tokens: Option<u64>,
    pub video_frames: u64,
    pub video_detections: u64,
    pub video_latency: Samples,
    pub rt_sessions: u64,
    pub rt_session_duration: Samples,
    pub rt_responses: u64,
    pub rt_user: u64,
    pub rt_agent: u64,
    pub rt_errors: u64,
    pub rt_in_bytes: u64,
    pub rt_out_bytes: u64,
    pub rt_in_ms: f64,
    pub rt_out_ms: f64,
}

/// One tool's running counts.
#[derive(Debug, Default)]
pub(crate) struct ToolState {
    pub calls: u64,
    pub failures: u64,
    pub latency: Samples,
}

/// Adds `value` to an optional total (absent + value = value).
pub(crate) fn add_opt<T: std::ops::Add<Output = T> + Copy>(total: &mut Option<T>, value: T) {
    *total = Some(match *total {
        Some(t) => t + value,
        None => value,
    });
}

impl SummaryState {
    pub fn snapshot(&self) -> MetricsSummary {
        MetricsSummary {
            events: self.events,
            agent: AgentSummary {
                runs_started: self.runs_started,
                runs_finished: self.runs_finished,
                runs_failed: self.runs_failed,
                duration_ms: self.run_duration.stats(),
            },
            llm: LlmSummary {
                responses: self.llm_responses,
                errors: self.llm_errors,
                latency_ms: self.llm_latency.stats(),
                time_to_first_token_ms: self.llm_ttft.stats(),
                input_tokens: self.llm_input_tokens,
                output_tokens: self.llm_output_tokens,
                models: self.llm_models.clone(),
            },
            tools: ToolSummary {
                calls: self.tool_calls,
                failures: self.tool_failures,
                latency_ms: self.tool_latency.stats(),
                by_tool: self
                    .tools
                    .iter()
                    .map(|(name, t)| {
                        let stats = ToolStats {
                            calls: t.calls,
                            failures: t.failures,
                            latency_ms: t.latency.stats(),
                        };
                        (name.clone(), stats)
                    })
                    .collect(),
            },
            stt: SttSummary {
                transcripts: self.stt_transcripts,
                errors: self.stt_errors,
                latency_ms: self.stt_latency.stats(),
                audio_duration_ms: self.stt_audio_ms,
            },
            tts: TtsSummary {
                syntheses: self.tts_syntheses,
                errors: self.tts_errors,
                latency_ms: self.tts_latency.stats(),
                audio_duration_ms: self.tts_audio_ms,
                characters: self.tts_characters,
                time_to_first_byte_ms: self.tts_ttfb.stats(),
                voice_to_voice_ms: self.voice_to_voice.stats(),
            },
            turns: TurnSummary {
                turns: self.turns,
                duration_ms: self.turn_duration.stats(),
                trailing_silence_ms: self.turn_silence.stats(),
            },
            vlm: VlmSummary {
                inferences: self.vlm_inferences,
                errors: self.vlm_errors,
                latency_ms: self.vlm_latency.stats(),
                input_tokens: self.vlm_input_tokens,
                output_tokens: self.vlm_output_tokens,
            },
            video: VideoSummary {
                frames_processed: self.video_frames,
                detections: self.video_detections,
                processing_latency_ms: self.video_latency.stats(),
            },
            realtime: RealtimeSummary {
                sessions: self.rt_sessions,
                session_duration_ms: self.rt_session_duration.stats(),
                responses: self.rt_responses,
                user_transcriptions: self.rt_user,
                agent_transcriptions: self.rt_agent,
                errors: self.rt_errors,
                audio_input_bytes: self.rt_in_bytes,
                audio_output_bytes: self.rt_out_bytes,
                audio_input_duration_ms: self.rt_in_ms,
                audio_output_duration_ms: self.rt_out_ms,
            },
        }
    }
}

struct Stat<'a>(&'a Option<LatencyStats>);

impl fmt::Display for Stat<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(
                f,
                "n={} p50={:.1} p95={:.1} mean={:.1} max={:.1}",
                s.count, s.p50, s.p95, s.mean, s.max
            ),
            None => f.write_str("-"),
        }
    }
}

struct Total(Option<u64>);

impl fmt::Display for Total {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("not reported"),
        }
    }
}

impl fmt::Display for MetricsSummary {
    /// A compact, human-readable report: only the sections that saw events.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "metrics ({} events recorded)", self.events)?;
        let a = &self.agent;
        if a.runs_started + a.runs_finished > 0 {
            writeln!(
                f,
                "  agent   runs {} finished {} failed {}  duration ms {}",
                a.runs_started,
                a.runs_finished,
                a.runs_failed,
                Stat(&a.duration_ms)
            )?;
        }
        let l = &self.llm;
        if l.responses + l.errors > 0 {
            writeln!(f, "  llm     responses {} errors {}", l.responses, l.errors)?;
            writeln!(f, "          latency ms {}", Stat(&l.latency_ms))?;
            writeln!(
                f,
                "          ttft ms    {}",
                Stat(&l.time_to_first_token_ms)
            )?;
            writeln!(
                f,
                "          tokens in {} out {}",
                Total(l.input_tokens),
                Total(l.output_tokens)
            )?;
        }
        let t = &self.tools;
        if t.calls > 0 {
            writeln!(
                f,
                "  tools   calls {} failures {}  ms {}",
                t.calls,
                t.failures,
                Stat(&t.latency_ms)
            )?;
            for (name, s) in &t.by_tool {
                writeln!(
                    f,
                    "          {name}: calls {} failures {}  ms {}",
                    s.calls,
                    s.failures,
                    Stat(&s.latency_ms)
                )?;
            }
        }
        let s = &self.stt;
        if s.transcripts + s.errors > 0 {
            writeln!(
                f,
                "  stt     transcripts {} errors {}  ms {}",
                s.transcripts,
                s.errors,
                Stat(&s.latency_ms)
            )?;
        }
        let s = &self.tts;
        if s.syntheses + s.errors > 0 {
            writeln!(
                f,
                "  tts     syntheses {} errors {} chars {}  ms {}",
                s.syntheses,
                s.errors,
                s.characters,
                Stat(&s.latency_ms)
            )?;
            if s.time_to_first_byte_ms.is_some() {
                writeln!(
                    f,
                    "          first byte ms {}",
                    Stat(&s.time_to_first_byte_ms)
                )?;
            }
            if s.voice_to_voice_ms.is_some() {
                writeln!(
                    f,
                    "          voice-to-voice ms {}",
                    Stat(&s.voice_to_voice_ms)
                )?;
            }
        }
        if self.turns.turns > 0 {
            writeln!(
                f,
                "  turns   {}  duration ms {}",
                self.turns.turns,
                Stat(&self.turns.duration_ms)
            )?;
        }
        let v = &self.vlm;
        if v.inferences + v.errors > 0 {
            writeln!(
                f,
                "  vlm     inferences {} errors {}  ms {}  tokens in {} out {}",
                v.inferences,
                v.errors,
                Stat(&v.latency_ms),
                Total(v.input_tokens),
                Total(v.output_tokens)
            )?;
        }
        let v = &self.video;
        if v.frames_processed > 0 {
            writeln!(
                f,
                "  video   frames {} detections {}  ms {}",
                v.frames_processed,
                v.detections,
                Stat(&v.processing_latency_ms)
            )?;
        }
        let r = &self.realtime;
        if r.sessions + r.responses + r.errors > 0 {
            writeln!(
                f,
                "  realtime sessions {} responses {} errors {} audio in {} B out {} B",
                r.sessions, r.responses, r.errors, r.audio_input_bytes, r.audio_output_bytes
            )?;
        }
        Ok(())
    }
}
