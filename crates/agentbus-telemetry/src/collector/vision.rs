//! Vision: VLM inferences and errors, video processor detections.

use super::*;

impl State {
    // ---- Vision ---------------------------------------------------------------------

    pub(super) fn vlm_completed(
        &mut self,
        i: Option<&Instruments>,
        e: &VLMInferenceCompletedEvent,
    ) {
        let s = &mut self.summary;
        s.vlm_inferences += 1;
        if let Some(v) = e.latency_ms {
            s.vlm_latency.record(v);
        }
        if let Some(v) = e.input_tokens {
            add_opt(&mut s.vlm_input_tokens, v);
        }
        if let Some(v) = e.output_tokens {
            add_opt(&mut s.vlm_output_tokens, v);
        }
        s.video_frames += e.frames_processed;
        s.video_detections += e.detections;
        let Some(i) = i else { return };
        let provider = plugin(&e.plugin);
        let model = e.model.as_deref();
        let a = self.simple(Set::Vlm, provider, model, None);
        i.vlm_inferences.add(1, a);
        if let Some(v) = e.latency_ms {
            i.vlm_latency.record(v, a);
        }
        if let Some(v) = e.input_tokens {
            i.vlm_tokens_input.add(v, a);
        }
        if let Some(v) = e.output_tokens {
            i.vlm_tokens_output.add(v, a);
        }
        if e.frames_processed > 0 {
            i.video_frames.add(e.frames_processed, a);
        }
        if e.detections > 0 {
            i.video_detections.add(e.detections, a);
        }
        // A VLM inference is a GenAI chat operation with image input.
        let key = [provider, model, None, None];
        let chat = || {
            Builder::new()
                .with(attr::GEN_AI_OPERATION_NAME, "chat")
                .with_opt(attr::GEN_AI_PROVIDER_NAME, provider)
                .with_opt(attr::GEN_AI_RESPONSE_MODEL, model)
        };
        if let Some(v) = e.latency_ms {
            let a = self.attributes.get(Set::VlmChat, key, || chat().build());
            i.gen_ai_operation_duration.record(v / 1000.0, a);
        }
        if let Some(v) = e.input_tokens {
            let a = self.attributes.get(Set::VlmTokensInput, key, || {
                chat().with(attr::GEN_AI_TOKEN_TYPE, "input").build()
            });
            i.gen_ai_token_usage.record(v, a);
        }
        if let Some(v) = e.output_tokens {
            let a = self.attributes.get(Set::VlmTokensOutput, key, || {
                chat().with(attr::GEN_AI_TOKEN_TYPE, "output").build()
            });
            i.gen_ai_token_usage.record(v, a);
        }
    }

    pub(super) fn vlm_error(&mut self, i: Option<&Instruments>, e: &VLMErrorEvent) {
        self.summary.vlm_errors += 1;
        if let Some(i) = i {
            self.count_error(
                Set::VlmError,
                &i.vlm_errors,
                plugin(&e.plugin),
                e.failure.error.as_ref(),
                e.failure.error_code.as_deref(),
                None,
            );
        }
    }

    pub(super) fn video_detection(
        &mut self,
        i: Option<&Instruments>,
        e: &VideoProcessorDetectionEvent,
    ) {
        let s = &mut self.summary;
        s.video_frames += 1;
        s.video_detections += e.detection_count;
        if let Some(v) = e.inference_time_ms {
            s.video_latency.record(v);
        }
        let Some(i) = i else { return };
        let a = self.simple(Set::Video, plugin(&e.plugin), e.model_id.as_deref(), None);
        i.video_frames.add(1, a);
        if e.detection_count > 0 {
            i.video_detections.add(e.detection_count, a);
        }
        if let Some(v) = e.inference_time_ms {
            i.video_latency.record(v, a);
        }
    }
}
