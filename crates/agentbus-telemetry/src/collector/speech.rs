//! Speech: STT transcripts and errors, TTS syntheses and errors, turns.

use agentbus_events::EventMeta;
use agentbus_events::tts::{TIME_TO_FIRST_BYTE_MS, VOICE_TO_VOICE_MS};

use super::*;

/// Whether an audio chunk carries no measurement: every chunk of a reply but the first.
/// Such chunks are neither recorded nor counted as recorded events.
pub(super) fn measures_nothing(audio: &TTSAudioEvent) -> bool {
    metadata_ms(&audio.meta, VOICE_TO_VOICE_MS).is_none()
}

/// A non-negative number of milliseconds stored under `key` in the event's
/// `user_metadata`.
fn metadata_ms(meta: &EventMeta, key: &str) -> Option<f64> {
    meta.user_metadata
        .as_deref()
        .and_then(|m| m.get(key))
        .and_then(serde_json::Value::as_f64)
        .filter(|v| v.is_finite() && *v >= 0.0)
}

impl State {
    // ---- STT, TTS, turns ----------------------------------------------------------

    pub(super) fn stt_transcript(&mut self, i: Option<&Instruments>, e: &STTTranscriptEvent) {
        let s = &mut self.summary;
        s.stt_transcripts += 1;
        if let Some(v) = e.processing_time_ms {
            s.stt_latency.record(v);
        }
        if let Some(v) = e.audio_duration_ms {
            add_opt(&mut s.stt_audio_ms, v);
        }
        let Some(i) = i else { return };
        let a = self.simple(
            Set::Stt,
            plugin(&e.plugin),
            e.model_name.as_deref(),
            e.language.as_deref().map(|l| (attr::LANGUAGE, l)),
        );
        if let Some(v) = e.processing_time_ms {
            i.stt_latency.record(v, a);
        }
        if let Some(v) = e.audio_duration_ms {
            i.stt_audio_duration.record(v, a);
        }
    }

    pub(super) fn stt_error(&mut self, i: Option<&Instruments>, e: &STTErrorEvent) {
        self.summary.stt_errors += 1;
        if let Some(i) = i {
            self.count_error(
                Set::SttError,
                &i.stt_errors,
                plugin(&e.plugin),
                e.failure.error.as_ref(),
                e.failure.error_code.as_deref(),
                None,
            );
        }
    }

    pub(super) fn tts_complete(&mut self, i: Option<&Instruments>, e: &TTSSynthesisCompleteEvent) {
        let characters = e.text.as_deref().map(|t| t.chars().count() as u64);
        let ttfb = metadata_ms(&e.meta, TIME_TO_FIRST_BYTE_MS);
        let s = &mut self.summary;
        if let Some(v) = ttfb {
            s.tts_ttfb.record(v);
        }
        s.tts_syntheses += 1;
        s.tts_latency.record(e.synthesis_time_ms);
        if let Some(v) = e.audio_duration_ms {
            add_opt(&mut s.tts_audio_ms, v);
        }
        s.tts_characters += characters.unwrap_or(0);
        let Some(i) = i else { return };
        let a = self.simple(Set::Tts, plugin(&e.plugin), None, None);
        i.tts_latency.record(e.synthesis_time_ms, a);
        if let Some(v) = e.audio_duration_ms {
            i.tts_audio_duration.record(v, a);
        }
        if let Some(n) = characters.filter(|n| *n > 0) {
            i.tts_characters.add(n, a);
        }
        if let Some(v) = ttfb {
            i.tts_time_to_first_byte.record(v, a);
        }
    }

    /// The first audio of a reply, which carries voice-to-voice latency (the collector
    /// skips the others: [`measures_nothing`]).
    pub(super) fn tts_audio(&mut self, i: Option<&Instruments>, e: &TTSAudioEvent) {
        let Some(v) = metadata_ms(&e.meta, VOICE_TO_VOICE_MS) else {
            return;
        };
        self.summary.voice_to_voice.record(v);
        let Some(i) = i else { return };
        let a = self.simple(Set::Tts, plugin(&e.plugin), None, None);
        i.voice_to_voice.record(v, a);
    }

    pub(super) fn tts_error(&mut self, i: Option<&Instruments>, e: &TTSErrorEvent) {
        self.summary.tts_errors += 1;
        if let Some(i) = i {
            self.count_error(
                Set::TtsError,
                &i.tts_errors,
                plugin(&e.plugin),
                e.failure.error.as_ref(),
                e.failure.error_code.as_deref(),
                None,
            );
        }
    }

    pub(super) fn turn_ended(&mut self, i: Option<&Instruments>, e: &TurnEndedEvent) {
        let s = &mut self.summary;
        s.turns += 1;
        if let Some(v) = e.duration_ms {
            s.turn_duration.record(v);
        }
        if let Some(v) = e.trailing_silence_ms {
            s.turn_silence.record(v);
        }
        let Some(i) = i else { return };
        let a = self.simple(Set::Turn, plugin(&e.plugin), None, None);
        if let Some(v) = e.duration_ms {
            i.turn_duration.record(v, a);
        }
        if let Some(v) = e.trailing_silence_ms {
            i.turn_trailing_silence.record(v, a);
        }
    }
}
