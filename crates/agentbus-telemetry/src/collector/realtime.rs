//! Realtime (speech-to-speech) sessions: connections, audio, responses, transcripts, errors.

use super::*;

impl State {
    // ---- Realtime -------------------------------------------------------------------

    pub(super) fn realtime_connected(
        &mut self,
        i: Option<&Instruments>,
        e: &RealtimeConnectedEvent,
    ) {
        self.summary.rt_sessions += 1;
        if let Some(session) = &e.meta.session_id {
            self.realtime_sessions.insert(session, e.meta.timestamp);
        }
        if let Some(i) = i {
            let provider = plugin(&e.plugin).or(e.provider.as_deref());
            let a = self.simple(Set::Realtime, provider, None, None);
            i.realtime_sessions.add(1, a);
        }
    }

    pub(super) fn realtime_disconnected(
        &mut self,
        i: Option<&Instruments>,
        e: &RealtimeDisconnectedEvent,
    ) {
        let started = e
            .meta
            .session_id
            .as_deref()
            .and_then(|s| self.realtime_sessions.take(s));
        let duration = started.map(|at| ms_between(at, e.meta.timestamp));
        if let Some(v) = duration {
            self.summary.rt_session_duration.record(v);
        }
        if let (Some(i), Some(v)) = (i, duration) {
            let provider = plugin(&e.plugin).or(e.provider.as_deref());
            let clean = if e.was_clean { "true" } else { "false" };
            let a = self.simple(
                Set::RealtimeDisconnect,
                provider,
                None,
                Some((attr::WAS_CLEAN, clean)),
            );
            i.realtime_session_duration.record(v, a);
        }
    }

    pub(super) fn realtime_audio_input(
        &mut self,
        i: Option<&Instruments>,
        e: &RealtimeAudioInputEvent,
    ) {
        let Some(data) = &e.data else { return };
        let (bytes, ms) = (data.byte_len() as u64, data.duration_ms());
        self.summary.rt_in_bytes += bytes;
        self.summary.rt_in_ms += ms;
        if let Some(i) = i {
            let a = self.simple(Set::Realtime, plugin(&e.plugin), None, None);
            i.realtime_audio_input_bytes.add(bytes, a);
            if ms > 0.0 {
                i.realtime_audio_input_duration.add(ms, a);
            }
        }
    }

    pub(super) fn realtime_audio_output(
        &mut self,
        i: Option<&Instruments>,
        e: &RealtimeAudioOutputEvent,
    ) {
        let Some(data) = &e.data else { return };
        let (bytes, ms) = (data.byte_len() as u64, data.duration_ms());
        self.summary.rt_out_bytes += bytes;
        self.summary.rt_out_ms += ms;
        if let Some(i) = i {
            let a = self.simple(Set::Realtime, plugin(&e.plugin), None, None);
            i.realtime_audio_output_bytes.add(bytes, a);
            if ms > 0.0 {
                i.realtime_audio_output_duration.add(ms, a);
            }
        }
    }

    pub(super) fn realtime_response(&mut self, i: Option<&Instruments>, e: &RealtimeResponseEvent) {
        if !e.is_complete {
            return;
        }
        self.summary.rt_responses += 1;
        if let Some(i) = i {
            let a = self.simple(Set::Realtime, plugin(&e.plugin), None, None);
            i.realtime_responses.add(1, a);
        }
    }

    pub(super) fn realtime_user(
        &mut self,
        i: Option<&Instruments>,
        e: &RealtimeUserSpeechTranscriptionEvent,
    ) {
        self.summary.rt_user += 1;
        if let Some(i) = i {
            let a = self.simple(Set::Realtime, plugin(&e.plugin), None, None);
            i.realtime_transcriptions_user.add(1, a);
        }
    }

    pub(super) fn realtime_agent(
        &mut self,
        i: Option<&Instruments>,
        e: &RealtimeAgentSpeechTranscriptionEvent,
    ) {
        self.summary.rt_agent += 1;
        if let Some(i) = i {
            let a = self.simple(Set::Realtime, plugin(&e.plugin), None, None);
            i.realtime_transcriptions_agent.add(1, a);
        }
    }

    pub(super) fn realtime_error(&mut self, i: Option<&Instruments>, e: &RealtimeErrorEvent) {
        self.summary.rt_errors += 1;
        if let Some(i) = i {
            let recoverable = if e.is_recoverable { "true" } else { "false" };
            self.count_error(
                Set::RealtimeError,
                &i.realtime_errors,
                plugin(&e.plugin),
                e.failure.error.as_ref(),
                e.failure.error_code.as_deref(),
                Some((attr::IS_RECOVERABLE, recoverable)),
            );
        }
    }
}
