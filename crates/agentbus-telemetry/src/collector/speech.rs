//! Speech: STT transcripts and errors, TTS syntheses and errors, turns.

use super::*;

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
        let s = &mut self.summary;
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
