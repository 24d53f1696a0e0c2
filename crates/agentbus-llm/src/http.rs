//! [`HttpModel`]: a [`ChatModel`] that talks to an LLM server over streaming HTTP, in one
//! of the three protocols ([`Api`]), with retries and timeouts.
//!
//! # Failure handling
//!
//! - Non-2xx statuses, in-band errors, invalid chunks, cut connections and timeouts all
//!   end the stream with one [`StreamEvent::Error`] (kind, `recoverable`, upstream status).
//! - Rate limits (429), overload (503/529), server errors (5xx), network errors and
//!   timeouts are retried with exponential backoff (with jitter), or after the server's
//!   `Retry-After`/`retry-after-ms` when it sends one, up to
//!   [`RetryPolicy::max_retries`] times, **only while no output has been streamed**:
//!   once a token went out, a retry would duplicate it, so the error is reported instead.
//! - A Chat Completions server that rejects `stream_options` is asked again without it; one
//!   that wants `max_completion_tokens` instead of `max_tokens` gets that. These
//!   corrections do not count against the retry budget.
//! - Timeouts ([`Timeouts`]): connect, time to the first body byte of each attempt
//!   (response headers included, so a server that sends headers and then nothing is
//!   bounded by it), silence between two chunks, and a total deadline for the whole call,
//!   retries and their waits included (keep-alive comments reset the idle timer but
//!   never extend the total). No network read waits without a bound.
//! - Server input is untrusted: `Retry-After` / `retry-after-ms` values that are not
//!   finite, negative or absurd are ignored or capped (and logged), never trusted to
//!   build a `Duration` that could panic; stream sizes are bounded ([`StreamLimits`]);
//!   every server message is redacted ([`Redactor`]: the key in use, `Bearer …`,
//!   `x-api-key` values) and every URL logged or reported has its userinfo masked
//!   ([`mask_url`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use agentbus_events::stream::{StreamError, StreamErrorKind, StreamEvent};
use futures::StreamExt;
use thiserror::Error;
use tokio::time::Instant;

use crate::encode::{self, ChatBodyOptions};
use crate::errors::{http_error, server_text};
use crate::limits::StreamLimits;
use crate::model::{ChatModel, ChatStream};
use crate::pricing::PricingTable;
use crate::protocol::{Api, StreamDecoder};
use crate::redact::{Redactor, mask_url, mask_urls_in};
use crate::request::ChatRequest;

/// An API key. Its `Debug` form is redacted so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// Reads the key from the environment variable `var`; `None` when unset or empty.
    pub fn from_env(var: &str) -> Option<Self> {
        std::env::var(var)
            .ok()
            .filter(|k| !k.trim().is_empty())
            .map(|k| Self(k.trim().to_owned()))
    }

    /// The key itself, to put in a request header. Never log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The timeouts of a streaming call. Every wait on the network is bounded by one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the connection (DNS, TCP, TLS).
    pub connect: Duration,
    /// From sending a request to the first byte of the response body (the headers
    /// included): bounds a server that accepts and says nothing, and one that sends its
    /// headers and then nothing. Each attempt gets its own.
    pub first_byte: Duration,
    /// Silence allowed between two body chunks once the body started. SSE keep-alive
    /// comments count as data, so they reset it; [`Timeouts::total`] still bounds them.
    pub idle: Duration,
    /// The whole call: every attempt, retry wait and body read. Past it the stream ends
    /// with a [`StreamErrorKind::Timeout`] error and is not retried.
    pub total: Duration,
}

impl Default for Timeouts {
    /// 10 s to connect, 120 s to the first byte (reasoning models think first), 120 s
    /// between chunks, 30 min for the whole call (a long generation at 20 tokens/s
    /// writes 36,000 tokens in that time).
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(120),
            idle: Duration::from_secs(120),
            total: Duration::from_secs(30 * 60),
        }
    }
}

/// How failed attempts are retried (before any output was streamed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// Backoff before the first retry; doubled for each later one.
    pub initial_backoff: Duration,
    /// Upper bound of the exponential backoff.
    pub max_backoff: Duration,
    /// Upper bound of a server-requested `Retry-After` wait.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 2 retries, 500 ms doubling up to 8 s, `Retry-After` honoured up to 60 s.
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// Configuration of an [`HttpModel`].
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// The API root, e.g. `https://api.openai.com/v1`; the protocol's path
    /// (`/chat/completions`, `/responses`, `/messages`) is appended.
    pub base_url: String,
    /// The model used when a request names none.
    pub model: String,
    /// The provider's name (`openai`, `anthropic`, `groq`, ...), for events and logs.
    pub provider: String,
    /// The key; `None` sends no authentication (local servers).
    pub api_key: Option<ApiKey>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Retries.
    pub retry: RetryPolicy,
    /// The pricing table for `cost_usd`; `None` leaves the cost absent.
    pub pricing: Option<Arc<PricingTable>>,
    /// Ask a Chat Completions server for usage (`stream_options.include_usage`).
    pub include_usage: bool,
    /// Extra HTTP headers sent with every request.
    pub extra_headers: Vec<(String, String)>,
    /// Bounds on what one response may make the decoder hold.
    pub limits: StreamLimits,
}

impl HttpConfig {
    /// A configuration for `base_url` and `model` with default timeouts and retries, the
    /// built-in pricing table, and no key.
    pub fn new(
        provider: impl Into<String>,
        base_url: impl Into<String>,
        model: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            provider: provider.into(),
            api_key: None,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            pricing: Some(Arc::new(PricingTable::builtin())),
            include_usage: true,
            extra_headers: Vec::new(),
            limits: StreamLimits::default(),
        }
    }

    /// The same configuration with `limits`.
    pub fn with_limits(mut self, limits: StreamLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The same configuration with `key`.
    pub fn with_api_key(mut self, key: Option<ApiKey>) -> Self {
        self.api_key = key;
        self
    }

    /// The same configuration with `timeouts`.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The same configuration with `retry`.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// Building an [`HttpModel`] failed.
#[derive(Debug, Error)]
pub enum HttpModelError {
    /// The HTTP client could not be built (TLS initialisation).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// The base URL is not an `http(s)://` URL (its userinfo masked).
    #[error("invalid base URL `{0}`: expected http:// or https://")]
    BaseUrl(String),
}

/// The Anthropic API version header value sent with every Anthropic request.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

struct Inner {
    api: Api,
    config: HttpConfig,
    client: reqwest::Client,
    url: String,
    /// `url` with its userinfo masked: what logs and errors show.
    shown_url: String,
    /// Removes the key (and anything shaped like a credential) from server text.
    redactor: Redactor,
}

/// A [`ChatModel`] over streaming HTTP: OpenAI-compatible Chat Completions, OpenAI
/// Responses or Anthropic Messages. Cheap to clone (shared client and configuration).
#[derive(Clone)]
pub struct HttpModel {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HttpModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpModel")
            .field("api", &self.inner.api)
            .field("url", &self.inner.shown_url)
            .field("model", &self.inner.config.model)
            .finish()
    }
}

impl HttpModel {
    /// A model speaking `api` with `config`.
    pub fn new(api: Api, config: HttpConfig) -> Result<Self, HttpModelError> {
        let base = config.base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(HttpModelError::BaseUrl(
                mask_url(&config.base_url).into_owned(),
            ));
        }
        let path = match api {
            Api::OpenAiChat => "/chat/completions",
            Api::OpenAiResponses => "/responses",
            Api::AnthropicMessages => "/messages",
        };
        let url = format!("{base}{path}");
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeouts.connect)
            .build()
            .map_err(|e| HttpModelError::Client(mask_urls_in(&e.to_string()).into_owned()))?;
        let redactor = match &config.api_key {
            Some(key) => Redactor::with_key(key.expose()),
            None => Redactor::new(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                api,
                shown_url: mask_url(&url).into_owned(),
                config,
                client,
                url,
                redactor,
            }),
        })
    }

    /// OpenAI-compatible Chat Completions.
    pub fn openai_chat(config: HttpConfig) -> Result<Self, HttpModelError> {
        Self::new(Api::OpenAiChat, config)
    }

    /// OpenAI Responses.
    pub fn openai_responses(config: HttpConfig) -> Result<Self, HttpModelError> {
        Self::new(Api::OpenAiResponses, config)
    }

    /// Anthropic Messages.
    pub fn anthropic(config: HttpConfig) -> Result<Self, HttpModelError> {
        Self::new(Api::AnthropicMessages, config)
    }

    /// The protocol.
    pub fn api(&self) -> Api {
        self.inner.api
    }

    /// The full endpoint URL, as configured (userinfo included: do not log it; see
    /// [`HttpModel::shown_url`]).
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The endpoint URL with its userinfo masked, for logs and messages.
    pub fn shown_url(&self) -> &str {
        &self.inner.shown_url
    }
}

impl ChatModel for HttpModel {
    fn stream(&self, request: ChatRequest) -> ChatStream {
        let call = Call {
            inner: Arc::clone(&self.inner),
            model: request
                .model
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| self.inner.config.model.clone()),
            request,
            options: ChatBodyOptions {
                include_usage: self.inner.config.include_usage,
                max_completion_tokens: false,
            },
            retries: 0,
            pending: VecDeque::new(),
            phase: Phase::Connect,
            deadline: None,
        };
        futures::stream::unfold(call, |mut call| async move {
            let event = call.next_event().await?;
            Some((event, call))
        })
        .boxed()
    }

    fn name(&self) -> &str {
        &self.inner.config.model
    }

    fn provider(&self) -> &str {
        &self.inner.config.provider
    }
}

enum Phase {
    Connect,
    Streaming(Box<Streaming>),
    Done,
}

/// An open response being decoded.
struct Streaming {
    response: reqwest::Response,
    decoder: StreamDecoder,
    got_bytes: bool,
    /// When the first body byte is due (the attempt's first-byte limit).
    first_byte_due: Instant,
}

/// When the whole call must be over: `None` until the stream is first polled, then
/// `Some(None)` for a total so large it has no representable end.
type Deadline = Option<Option<Instant>>;

/// One streaming call: a small state machine driven by polling the stream.
struct Call {
    inner: Arc<Inner>,
    model: String,
    request: ChatRequest,
    options: ChatBodyOptions,
    retries: u32,
    pending: VecDeque<StreamEvent>,
    phase: Phase,
    deadline: Deadline,
}

/// What one attempt to get a response produced.
enum Attempt {
    Stream(reqwest::Response, Instant),
    Failed(StreamError, Option<Duration>),
    /// Ask again at once with corrected options.
    Adjusted,
}

impl Call {
    async fn next_event(&mut self) -> Option<StreamEvent> {
        if self.deadline.is_none() {
            self.deadline = Some(Instant::now().checked_add(self.inner.config.timeouts.total));
        }
        loop {
            if let Some(mut event) = self.pending.pop_front() {
                if let StreamEvent::Error(error) = &mut event {
                    // The one place server text leaves this model: no key gets through.
                    self.inner.redactor.redact_in_place(&mut error.message);
                    if let Some(code) = &mut error.code {
                        self.inner.redactor.redact_in_place(code);
                    }
                }
                return Some(event);
            }
            match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Done => return None,
                Phase::Connect => self.connect().await,
                Phase::Streaming(streaming) => self.read(*streaming).await,
            }
        }
    }

    fn body(&self) -> Vec<u8> {
        let body = match self.inner.api {
            Api::OpenAiChat => encode::openai_chat_body(&self.request, &self.model, self.options),
            Api::OpenAiResponses => encode::openai_responses_body(&self.request, &self.model),
            Api::AnthropicMessages => encode::anthropic_body(&self.request, &self.model),
        };
        // Serialising a `Value` cannot fail.
        serde_json::to_vec(&body).unwrap_or_default()
    }

    fn http_request(&self) -> reqwest::RequestBuilder {
        let config = &self.inner.config;
        let mut builder = self
            .inner
            .client
            .post(&self.inner.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .body(self.body());
        match self.inner.api {
            Api::AnthropicMessages => {
                builder = builder.header("anthropic-version", ANTHROPIC_VERSION);
                if let Some(key) = &config.api_key {
                    builder = builder.header("x-api-key", key.expose());
                }
            }
            Api::OpenAiChat | Api::OpenAiResponses => {
                if let Some(key) = &config.api_key {
                    builder = builder.bearer_auth(key.expose());
                }
            }
        }
        for (name, value) in &config.extra_headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
    }

    /// The call's total deadline (`None`: unbounded).
    fn total_deadline(&self) -> Option<Instant> {
        self.deadline.flatten()
    }

    /// The earlier of `now + wait` and the total deadline, and whether the total
    /// deadline is the one that binds.
    fn bound(&self, wait: Duration) -> (Instant, bool) {
        let now = Instant::now();
        let own = now.checked_add(wait);
        match (own, self.total_deadline()) {
            (Some(own), Some(total)) if total <= own => (total, true),
            (Some(own), _) => (own, false),
            (None, Some(total)) => (total, true),
            // Neither is representable: a year is "forever" here.
            (None, None) => (now + Duration::from_secs(365 * 24 * 3600), false),
        }
    }

    /// The error for the total deadline.
    fn total_timeout(&self) -> StreamError {
        StreamError::new(
            StreamErrorKind::Timeout,
            format!(
                "the request took longer than its total deadline of {:?}",
                self.inner.config.timeouts.total
            ),
        )
        .with_code("request_deadline_exceeded")
    }

    async fn attempt(&mut self) -> Attempt {
        let timeouts = self.inner.config.timeouts;
        let (first_byte_due, total_binds) = self.bound(timeouts.first_byte);
        let response =
            match tokio::time::timeout_at(first_byte_due, self.http_request().send()).await {
                Err(_) if total_binds => return Attempt::Failed(self.total_timeout(), None),
                Err(_) => {
                    return Attempt::Failed(
                        StreamError::new(
                            StreamErrorKind::Timeout,
                            format!("no response headers within {:?}", timeouts.first_byte),
                        ),
                        None,
                    );
                }
                Ok(Err(error)) => return Attempt::Failed(transport_error(&error), None),
                Ok(Ok(response)) => response,
            };
        let status = response.status();
        let (body_due, _) = self.bound(timeouts.idle);
        if status.is_success() {
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            if content_type.starts_with("application/json") {
                let body = read_body(response, body_due).await;
                let preview: String = body.chars().take(200).collect();
                return Attempt::Failed(
                    StreamError::new(
                        StreamErrorKind::Protocol,
                        format!(
                            "the server answered with JSON instead of an event stream: {}",
                            server_text(&preview)
                        ),
                    )
                    .with_status(status.as_u16()),
                    None,
                );
            }
            return Attempt::Stream(response, first_byte_due);
        }
        let retry_after = retry_after(response.headers(), SystemTime::now());
        let body = read_body(response, body_due).await;
        if status.as_u16() == 400 && self.inner.api == Api::OpenAiChat {
            let lower = body.to_ascii_lowercase();
            if self.options.include_usage
                && (lower.contains("stream_options") || lower.contains("include_usage"))
            {
                tracing::info!(url = %self.inner.shown_url, "server rejected stream_options; asking again without it");
                self.options.include_usage = false;
                return Attempt::Adjusted;
            }
            if !self.options.max_completion_tokens
                && self.request.max_tokens.is_some()
                && lower.contains("max_completion_tokens")
            {
                tracing::info!(url = %self.inner.shown_url, "server wants max_completion_tokens; asking again");
                self.options.max_completion_tokens = true;
                return Attempt::Adjusted;
            }
        }
        Attempt::Failed(http_error(status.as_u16(), &body), retry_after)
    }

    /// Gets a streaming response, retrying what may be retried.
    async fn connect(&mut self) {
        loop {
            match self.attempt().await {
                Attempt::Adjusted => continue,
                Attempt::Stream(response, first_byte_due) => {
                    self.phase = Phase::Streaming(Box::new(Streaming {
                        response,
                        decoder: StreamDecoder::with_limits(
                            self.inner.api,
                            self.inner.config.pricing.clone(),
                            self.inner.config.limits,
                        ),
                        got_bytes: false,
                        first_byte_due,
                    }));
                    return;
                }
                Attempt::Failed(error, retry_after) => {
                    if self.backoff_for_retry(&error, retry_after).await {
                        continue;
                    }
                    self.pending.push_back(StreamEvent::Error(error));
                    self.phase = Phase::Done;
                    return;
                }
            }
        }
    }

    /// Sleeps and returns `true` when `error` may be retried, budget is left and the
    /// wait ends before the total deadline.
    async fn backoff_for_retry(
        &mut self,
        error: &StreamError,
        retry_after: Option<Duration>,
    ) -> bool {
        let policy = self.inner.config.retry;
        if !(error.recoverable && error.kind.is_retryable()) || self.retries >= policy.max_retries {
            return false;
        }
        let delay = match retry_after {
            Some(wait) if wait > policy.max_retry_after => {
                tracing::warn!(
                    url = %self.inner.shown_url,
                    asked_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    cap_ms = u64::try_from(policy.max_retry_after.as_millis()).unwrap_or(u64::MAX),
                    "the server asked to wait longer than max_retry_after; waiting the cap"
                );
                policy.max_retry_after
            }
            Some(wait) => wait,
            None => backoff(policy, self.retries.saturating_add(1)),
        };
        if let Some(deadline) = self.total_deadline()
            && Instant::now()
                .checked_add(delay)
                .is_none_or(|end| end >= deadline)
        {
            tracing::warn!(
                url = %self.inner.shown_url,
                kind = %error.kind,
                status = ?error.status,
                "LLM request failed; no retry: the wait would pass the total deadline"
            );
            return false;
        }
        self.retries += 1;
        tracing::warn!(
            url = %self.inner.shown_url,
            kind = %error.kind,
            status = ?error.status,
            retry = self.retries,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "LLM request failed before any output; retrying"
        );
        tokio::time::sleep(delay).await;
        true
    }

    async fn read(&mut self, streaming: Streaming) {
        let Streaming {
            mut response,
            mut decoder,
            mut got_bytes,
            first_byte_due,
        } = streaming;
        let timeouts = self.inner.config.timeouts;
        let (due, total_binds) = if got_bytes {
            self.bound(timeouts.idle)
        } else {
            match self.total_deadline() {
                Some(total) if total <= first_byte_due => (total, true),
                _ => (first_byte_due, false),
            }
        };
        let mut out = Vec::new();
        match tokio::time::timeout_at(due, response.chunk()).await {
            Err(_) if total_binds => decoder.fail(self.total_timeout(), &mut out),
            Err(_) => decoder.fail(
                StreamError::new(
                    StreamErrorKind::Timeout,
                    if got_bytes {
                        format!("no data from the server for {:?}", timeouts.idle)
                    } else {
                        format!(
                            "response headers arrived but no body bytes within {:?} of the request",
                            timeouts.first_byte
                        )
                    },
                ),
                &mut out,
            ),
            Ok(Err(error)) => decoder.fail(transport_error(&error), &mut out),
            Ok(Ok(None)) => decoder.end(&mut out),
            Ok(Ok(Some(bytes))) => {
                got_bytes = true;
                decoder.feed(&bytes, &mut out);
            }
        }
        if let Some(StreamEvent::Error(error)) = out.last()
            && !decoder.produced_output()
        {
            // The stream is over (an error is terminal): free the connection first.
            let error = error.clone();
            drop(response);
            if !self.backoff_for_retry(&error, None).await {
                self.pending.extend(out);
                self.phase = Phase::Done;
                return;
            }
            self.phase = Phase::Connect;
            return;
        }
        let terminated = decoder.is_terminated();
        self.pending.extend(out);
        self.phase = if terminated {
            Phase::Done
        } else {
            Phase::Streaming(Box::new(Streaming {
                response,
                decoder,
                got_bytes,
                first_byte_due,
            }))
        };
    }
}

/// A failed `send`/`chunk` as a stream error (URLs in the message with their userinfo
/// masked).
fn transport_error(error: &reqwest::Error) -> StreamError {
    // reqwest's messages name the URL but never the headers.
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    let kind = if error.is_timeout() {
        StreamErrorKind::Timeout
    } else {
        StreamErrorKind::Network
    };
    StreamError::new(kind, mask_urls_in(&message).into_owned())
}

/// Reads an error body (at most 64 KiB, until `due`).
async fn read_body(mut response: reqwest::Response, due: Instant) -> String {
    const LIMIT: usize = 64 * 1024;
    let mut body = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
            if body.len() >= LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout_at(due, read).await;
    body.truncate(LIMIT);
    String::from_utf8_lossy(&body).into_owned()
}

/// The longest wait a header may ask for before it is capped (a day); the retry policy
/// caps it further ([`RetryPolicy::max_retry_after`]).
const MAX_HEADER_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The server's requested wait: `retry-after-ms` (OpenAI, milliseconds, may be
/// fractional) or `Retry-After` (delay-seconds, or an HTTP-date compared with `now`).
///
/// Server input, so parsed defensively: a value that is not a number or date, not
/// finite, or negative is ignored (logged); one above a day is capped to a day (logged);
/// a date in the past means "now". Never panics.
fn retry_after(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
    };
    if let Some(raw) = value("retry-after-ms")
        && let Some(wait) = header_seconds("retry-after-ms", &raw, 1000.0)
    {
        return Some(wait);
    }
    let raw = value("retry-after")?;
    if let Some(wait) = header_seconds("retry-after", &raw, 1.0) {
        return Some(wait);
    }
    if raw.parse::<f64>().is_ok() {
        return None; // a number, already judged (and logged) invalid
    }
    match httpdate::parse_http_date(&raw) {
        Ok(when) => {
            let wait = when.duration_since(now).unwrap_or(Duration::ZERO);
            Some(cap_header_wait("retry-after", &raw, wait))
        }
        Err(_) => {
            tracing::warn!(header = "retry-after", value = %shown(&raw), "ignoring a Retry-After that is neither seconds nor an HTTP date");
            None
        }
    }
}

/// A header value in `unit`s per second (1 for seconds, 1000 for milliseconds) as a wait;
/// `None` when it is not a number, or (logged) not finite or negative.
fn header_seconds(name: &str, raw: &str, per_second: f64) -> Option<Duration> {
    let number = raw.parse::<f64>().ok()?;
    if !number.is_finite() || number < 0.0 {
        tracing::warn!(header = name, value = %shown(raw), "ignoring a retry wait that is not a finite, non-negative number");
        return None;
    }
    let seconds = number / per_second;
    let wait = if seconds > MAX_HEADER_WAIT.as_secs_f64() {
        MAX_HEADER_WAIT.saturating_add(Duration::from_secs(1))
    } else {
        // Finite, non-negative and at most a day: cannot fail.
        Duration::try_from_secs_f64(seconds).unwrap_or(MAX_HEADER_WAIT)
    };
    Some(cap_header_wait(name, raw, wait))
}

fn cap_header_wait(name: &str, raw: &str, wait: Duration) -> Duration {
    if wait > MAX_HEADER_WAIT {
        tracing::warn!(header = name, value = %shown(raw), "capping a retry wait of more than a day");
        return MAX_HEADER_WAIT;
    }
    wait
}

/// A header value as logged: at most 64 characters.
fn shown(raw: &str) -> String {
    raw.chars().take(64).collect()
}

/// Exponential backoff with ±25% jitter for retry number `retry` (1-based).
fn backoff(policy: RetryPolicy, retry: u32) -> Duration {
    let exp = policy
        .initial_backoff
        .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
        .min(policy.max_backoff);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 0.75 + f64::from(nanos % 1000) / 2000.0;
    // `mul_f64` panics on overflow; a configured backoff near `Duration::MAX` must not.
    Duration::try_from_secs_f64(exp.as_secs_f64() * jitter).unwrap_or(exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_debug_is_redacted() {
        let key = ApiKey::new("sk-secret");
        assert!(!format!("{key:?}").contains("secret"));
        let config = HttpConfig::new("openai", "http://x", "m").with_api_key(Some(key));
        assert!(!format!("{config:?}").contains("secret"));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(1),
        };
        assert!(backoff(policy, 1) <= Duration::from_millis(125));
        assert!(backoff(policy, 1) >= Duration::from_millis(75));
        assert!(backoff(policy, 10) <= Duration::from_millis(375));
    }

    #[test]
    fn retry_after_headers() {
        let mut headers = reqwest::header::HeaderMap::new();
        let now = SystemTime::now();
        headers.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_millis(150)));
    }

    #[test]
    fn hostile_retry_headers_are_capped_or_ignored_never_a_panic() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let day = MAX_HEADER_WAIT;
        let cases: &[(&str, &str, Option<Duration>)] = &[
            ("retry-after", "1e20", Some(day)),
            ("retry-after", "1e308", Some(day)),
            ("retry-after", "18446744073709551616", Some(day)),
            ("retry-after", "-5", None),
            ("retry-after", "NaN", None),
            ("retry-after", "inf", None),
            ("retry-after", "-inf", None),
            ("retry-after", "soon", None),
            ("retry-after", "", None),
            ("retry-after", "0.25", Some(Duration::from_millis(250))),
            ("retry-after-ms", "1e300", Some(day)),
            ("retry-after-ms", "-1", None),
            ("retry-after-ms", "nan", None),
            ("retry-after-ms", "2.5", Some(Duration::from_micros(2500))),
        ];
        for (name, value, expected) in cases {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(*name, value.parse().unwrap());
            assert_eq!(retry_after(&headers, now), *expected, "{name}: {value}");
        }
        // An invalid retry-after-ms falls back to a valid Retry-After.
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after-ms", "nan".parse().unwrap());
        headers.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(3)));
        // Non-UTF-8 bytes are not a panic either.
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "retry-after",
            reqwest::header::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn retry_after_as_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        let at = |value: &str| {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert("retry-after", value.parse().unwrap());
            retry_after(&headers, now)
        };
        assert_eq!(
            at("Wed, 21 Oct 2015 07:28:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            at("Wed, 21 Oct 2015 07:27:00 GMT"),
            Some(Duration::ZERO),
            "past: now"
        );
        assert_eq!(at("Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_HEADER_WAIT));
        assert_eq!(at("Wed, 99 Oct 2015 07:28:30 GMT"), None);
    }

    #[test]
    fn backoff_never_overflows() {
        let policy = RetryPolicy {
            max_retries: u32::MAX,
            initial_backoff: Duration::MAX,
            max_backoff: Duration::MAX,
            max_retry_after: Duration::MAX,
        };
        for retry in [0, 1, 2, 40, u32::MAX] {
            let _ = backoff(policy, retry);
        }
    }

    #[test]
    fn urls_are_shown_without_userinfo() {
        let model = HttpModel::openai_chat(HttpConfig::new("openai", "http://u:hunter2@h/v1", "m"))
            .unwrap();
        assert_eq!(model.shown_url(), "http://u:***@h/v1/chat/completions");
        assert!(!format!("{model:?}").contains("hunter2"));
        let error = HttpModel::openai_chat(HttpConfig::new("openai", "ftp://u:hunter2@h", "m"))
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn base_url_must_be_http() {
        assert!(HttpModel::openai_chat(HttpConfig::new("openai", "ftp://x", "m")).is_err());
        let model =
            HttpModel::anthropic(HttpConfig::new("anthropic", "http://h/v1/", "m")).unwrap();
        assert_eq!(model.url(), "http://h/v1/messages");
    }
}
