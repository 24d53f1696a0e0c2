//! LLM calls and tool calls: the Vision Agents LLM events and the ReAct loop's.

use super::*;

/// What one completed LLM call reported.
struct LlmCall<'a> {
    provider: Option<&'a str>,
    request_model: Option<&'a str>,
    response_model: Option<&'a str>,
    latency_ms: Option<f64>,
    ttft_ms: Option<f64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

/// The instruments an LLM call records, bound to the attribute sets of one provider and
/// model pair (kept per pair in `State::llm_calls`): every event of the metrics-only
/// stream records nine values, and a bound record skips the SDK's per-call attribute
/// lookup (hashing every attribute, then comparing), which was most of the cost
/// (`bench telemetry`). Each is bound on its first value, so an instrument that never
/// got one exports no series.
pub(super) struct LlmCallInstruments {
    /// Provider and model (the Vision Agents names).
    va: Vec<KeyValue>,
    /// Operation, provider and models (the GenAI names).
    chat: Vec<KeyValue>,
    /// `chat` and the token type, for token usage.
    input: Vec<KeyValue>,
    output: Vec<KeyValue>,
    latency: OnceCell<BoundHistogram<f64>>,
    ttft: OnceCell<BoundHistogram<f64>>,
    tokens_input: OnceCell<BoundCounter<u64>>,
    tokens_output: OnceCell<BoundCounter<u64>>,
    operation_duration: OnceCell<BoundHistogram<f64>>,
    gen_ai_ttft: OnceCell<BoundHistogram<f64>>,
    tpot: OnceCell<BoundHistogram<f64>>,
    token_usage_input: OnceCell<BoundHistogram<u64>>,
    token_usage_output: OnceCell<BoundHistogram<u64>>,
}

impl LlmCallInstruments {
    /// The attribute sets of `call`'s provider and models; nothing bound yet.
    fn new(call: &LlmCall<'_>) -> Self {
        let chat = || {
            Builder::new()
                .with(attr::GEN_AI_OPERATION_NAME, "chat")
                .with_opt(attr::GEN_AI_PROVIDER_NAME, call.provider)
                .with_opt(attr::GEN_AI_REQUEST_MODEL, call.request_model)
                .with_opt(attr::GEN_AI_RESPONSE_MODEL, call.response_model)
        };
        Self {
            va: Builder::new()
                .with_opt(attr::PROVIDER, call.provider)
                .with_opt(attr::MODEL, call.response_model)
                .build(),
            chat: chat().build(),
            input: chat().with(attr::GEN_AI_TOKEN_TYPE, "input").build(),
            output: chat().with(attr::GEN_AI_TOKEN_TYPE, "output").build(),
            latency: OnceCell::new(),
            ttft: OnceCell::new(),
            tokens_input: OnceCell::new(),
            tokens_output: OnceCell::new(),
            operation_duration: OnceCell::new(),
            gen_ai_ttft: OnceCell::new(),
            tpot: OnceCell::new(),
            token_usage_input: OnceCell::new(),
            token_usage_output: OnceCell::new(),
        }
    }

    /// Records what `call` reported.
    fn record(&self, i: &Instruments, call: &LlmCall<'_>) {
        if let Some(v) = call.latency_ms {
            let bound = self.latency.get_or_init(|| i.llm_latency.bind(&self.va));
            bound.record(v);
            let bound = (self.operation_duration)
                .get_or_init(|| i.gen_ai_operation_duration.bind(&self.chat));
            bound.record(v / 1000.0);
        }
        if let Some(v) = call.ttft_ms {
            self.ttft
                .get_or_init(|| i.llm_ttft.bind(&self.va))
                .record(v);
            self.gen_ai_ttft
                .get_or_init(|| i.gen_ai_ttft.bind(&self.chat))
                .record(v / 1000.0);
        }
        if let Some(v) = time_per_output_token(call.latency_ms, call.ttft_ms, call.output_tokens) {
            self.tpot
                .get_or_init(|| i.gen_ai_tpot.bind(&self.chat))
                .record(v);
        }
        if let Some(v) = call.input_tokens {
            self.tokens_input
                .get_or_init(|| i.llm_tokens_input.bind(&self.va))
                .add(v);
            self.token_usage_input
                .get_or_init(|| i.gen_ai_token_usage.bind(&self.input))
                .record(v);
        }
        if let Some(v) = call.output_tokens {
            self.tokens_output
                .get_or_init(|| i.llm_tokens_output.bind(&self.va))
                .add(v);
            self.token_usage_output
                .get_or_init(|| i.gen_ai_token_usage.bind(&self.output))
                .record(v);
        }
    }
}

/// What one failed LLM call reported.
struct LlmFailure<'a> {
    provider: Option<&'a str>,
    request_model: Option<&'a str>,
    error: Option<&'a ErrorInfo>,
    error_code: Option<&'a str>,
    duration_ms: Option<f64>,
}

impl State {
    fn record_llm_call(&mut self, i: Option<&Instruments>, call: LlmCall<'_>) {
        let s = &mut self.summary;
        s.llm_responses += 1;
        if let Some(v) = call.latency_ms {
            s.llm_latency.record(v);
        }
        if let Some(v) = call.ttft_ms {
            s.llm_ttft.record(v);
        }
        if let Some(v) = call.input_tokens {
            add_opt(&mut s.llm_input_tokens, v);
        }
        if let Some(v) = call.output_tokens {
            add_opt(&mut s.llm_output_tokens, v);
        }
        if let Some(model) = call.response_model {
            match s.llm_models.get_mut(model) {
                Some(n) => *n += 1,
                None => {
                    s.llm_models.insert(model.to_owned(), 1);
                }
            }
        }
        let Some(i) = i else { return };
        let key = [call.provider, call.request_model, call.response_model, None];
        self.llm_calls
            .get(Set::LlmVa, key, || LlmCallInstruments::new(&call))
            .record(i, &call);
    }

    fn record_llm_failure(&mut self, i: Option<&Instruments>, failure: LlmFailure<'_>) {
        self.summary.llm_errors += 1;
        let Some(i) = i else { return };
        let kind = failure.error.map(|e| e.kind.as_str());
        let code = failure
            .error_code
            .or(failure.error.and_then(|e| e.code.as_deref()));
        let key = [failure.provider, kind, code, failure.request_model];
        let va = self.attributes.get(Set::LlmErrorVa, key, || {
            Builder::new()
                .with_opt(attr::PROVIDER, failure.provider)
                .with_opt(attr::ERROR_TYPE, kind)
                .with_opt(attr::ERROR_CODE, code)
                .build()
        });
        i.llm_errors.add(1, va);
        if let Some(ms) = failure.duration_ms {
            let a = self.attributes.get(Set::LlmChatError, key, || {
                Builder::new()
                    .with(attr::GEN_AI_OPERATION_NAME, "chat")
                    .with_opt(attr::GEN_AI_PROVIDER_NAME, failure.provider)
                    .with_opt(attr::GEN_AI_REQUEST_MODEL, failure.request_model)
                    .with(attr::ERROR_TYPE_SEMCONV, kind.unwrap_or(ERROR_TYPE_OTHER))
                    .build()
            });
            i.gen_ai_operation_duration.record(ms / 1000.0, a);
        }
    }

    // ---- Vision Agents LLM and tools ------------------------------------------------

    pub(super) fn llm_request_started(
        &mut self,
        _: Option<&Instruments>,
        e: &LLMRequestStartedEvent,
    ) {
        if let Some(session) = &e.meta.session_id {
            self.instrumented_sessions.insert(session, ());
        }
        self.llm_requests
            .insert(&e.request_id, (e.meta.timestamp, e.model.clone()));
    }

    pub(super) fn llm_response_completed(
        &mut self,
        i: Option<&Instruments>,
        e: &LLMResponseCompletedEvent,
    ) {
        self.record_llm_call(
            i,
            LlmCall {
                provider: plugin(&e.plugin),
                // The completed event names no request, so the requested model is unknown.
                request_model: None,
                response_model: e.model.as_deref(),
                latency_ms: e.latency_ms,
                ttft_ms: e.time_to_first_token_ms,
                input_tokens: e.input_tokens,
                output_tokens: e.output_tokens,
            },
        );
    }

    pub(super) fn llm_error(&mut self, i: Option<&Instruments>, e: &LLMErrorEvent) {
        let started = e
            .request_id
            .as_deref()
            .and_then(|id| self.llm_requests.take(id));
        let (duration_ms, model) = match &started {
            Some((at, model)) => (Some(ms_between(*at, e.meta.timestamp)), model.as_deref()),
            None => (None, None),
        };
        self.record_llm_failure(
            i,
            LlmFailure {
                provider: plugin(&e.plugin),
                request_model: model,
                error: e.failure.error.as_ref(),
                error_code: e.failure.error_code.as_deref(),
                duration_ms,
            },
        );
    }

    pub(super) fn tool_end(&mut self, i: Option<&Instruments>, e: &ToolEndEvent) {
        let s = &mut self.summary;
        s.tool_calls += 1;
        if !e.success {
            s.tool_failures += 1;
        }
        if let Some(v) = e.execution_time_ms {
            s.tool_latency.record(v);
        }
        let tool = match s.tools.get_mut(e.tool_name.as_str()) {
            Some(t) => t,
            None => s.tools.entry(e.tool_name.clone()).or_default(),
        };
        tool.calls += 1;
        if !e.success {
            tool.failures += 1;
        }
        if let Some(v) = e.execution_time_ms {
            tool.latency.record(v);
        }
        let error_kind = e
            .tool_call_id
            .as_deref()
            .and_then(|id| self.tool_errors.take(id));
        let Some(i) = i else { return };
        let provider = plugin(&e.plugin);
        let success = if e.success { "true" } else { "false" };
        let key = [provider, Some(e.tool_name.as_str()), Some(success), None];
        let va = self.attributes.get(Set::ToolVa, key, || {
            Builder::new()
                .with_opt(attr::PROVIDER, provider)
                .with(attr::TOOL_NAME, &e.tool_name)
                .with(attr::SUCCESS, success)
                .build()
        });
        i.llm_tool_calls.add(1, va);
        if let Some(v) = e.execution_time_ms {
            i.llm_tool_latency.record(v, va);
            let error_type =
                (!e.success).then(|| error_kind.as_deref().unwrap_or(ERROR_TYPE_OTHER));
            let key = [Some(e.tool_name.as_str()), error_type, None, None];
            let a = self.attributes.get(Set::ToolGenAi, key, || {
                Builder::new()
                    .with(attr::GEN_AI_OPERATION_NAME, "execute_tool")
                    .with(attr::GEN_AI_TOOL_NAME, &e.tool_name)
                    .with_opt(attr::ERROR_TYPE_SEMCONV, error_type)
                    .build()
            });
            i.gen_ai_execute_tool_duration.record(v / 1000.0, a);
        }
    }

    // ---- The ReAct loop -----------------------------------------------------------

    pub(super) fn react_start(&mut self, _: Option<&Instruments>, e: &ReactStartEvent) {
        self.summary.runs_started += 1;
        if let Some(spans) = &mut self.spans {
            spans.agent_start(e);
        }
    }

    pub(super) fn react_end(&mut self, _: Option<&Instruments>, e: &ReactEndEvent) {
        let s = &mut self.summary;
        s.runs_finished += 1;
        if e.aborted || e.error.is_some() {
            s.runs_failed += 1;
        }
        s.run_duration.record(e.execution_time_ms);
        if let Some(spans) = &mut self.spans {
            spans.agent_end(e);
        }
    }

    pub(super) fn llm_call_start(&mut self, _: Option<&Instruments>, e: &LLMCallStartEvent) {
        self.llm_call_models
            .insert(&e.origin.agent_call_id, e.model.clone());
        if let Some(spans) = &mut self.spans {
            spans.chat_start(e);
        }
    }

    pub(super) fn llm_call_end(&mut self, i: Option<&Instruments>, e: &LLMCallEndEvent) {
        let requested = self.llm_call_models.take(&e.origin.agent_call_id).flatten();
        let instrumented = self
            .instrumented_sessions
            .get(&e.origin.session_id)
            .is_some();
        if !instrumented {
            self.record_llm_call(
                i,
                LlmCall {
                    provider: None,
                    request_model: requested.as_deref(),
                    response_model: e.model.as_deref(),
                    latency_ms: Some(e.execution_time_ms),
                    ttft_ms: e.time_to_first_token_ms,
                    input_tokens: Some(e.usage.input_tokens),
                    output_tokens: Some(e.usage.output_tokens),
                },
            );
        }
        if let Some(spans) = &mut self.spans {
            spans.chat_end(e, requested.as_deref());
        }
    }

    pub(super) fn llm_call_error(&mut self, i: Option<&Instruments>, e: &LLMCallErrorEvent) {
        let requested = self.llm_call_models.take(&e.origin.agent_call_id).flatten();
        let instrumented = self
            .instrumented_sessions
            .get(&e.origin.session_id)
            .is_some();
        if !instrumented {
            self.record_llm_failure(
                i,
                LlmFailure {
                    provider: None,
                    request_model: requested.as_deref(),
                    error: Some(&e.error),
                    error_code: None,
                    duration_ms: Some(e.execution_time_ms),
                },
            );
        }
        if let Some(spans) = &mut self.spans {
            spans.chat_error(e, requested.as_deref());
        }
    }

    pub(super) fn tool_call_start(&mut self, _: Option<&Instruments>, e: &ToolCallStartEvent) {
        if let Some(spans) = &mut self.spans {
            spans.tool_start(e);
        }
    }

    pub(super) fn tool_call_error(&mut self, _: Option<&Instruments>, e: &ToolCallErrorEvent) {
        self.tool_errors
            .insert(&e.tool_call_id, e.error.kind.clone());
    }

    pub(super) fn tool_call_end(&mut self, _: Option<&Instruments>, e: &ToolCallEndEvent) {
        if let Some(spans) = &mut self.spans {
            let error_kind = self.tool_errors.get(&e.tool_call_id).map(String::as_str);
            spans.tool_end(e, error_kind);
        }
    }
}
