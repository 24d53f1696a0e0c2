//! The browser edge: a page that sends the microphone over a WebSocket and plays the
//! reply, and the axum [`router`] that serves it — `GET /voice` (the page) and
//! `GET /voice/ws` (the call) — for `agentbus voice --listen` and for any server that
//! mounts it (`Router::merge`).
//!
//! Each page that connects is one call: the router publishes the call session
//! ([`CallSession`]: created, started, joined, counts, transcription, closed captions,
//! left, ended), hands a [`BrowserCall`] to the application's handler (which runs a
//! [`VoicePipeline`](crate::pipeline::VoicePipeline) over its transport, so the edge
//! events come from [`InstrumentedTransport`](crate::transport::InstrumentedTransport)),
//! and shows the call's events on the page as they happen. With
//! [`BrowserConfig::record`], each call is also recorded (two WAV files per call:
//! what the user said and what the agent said) between `call.recording_started` and
//! `call.recording_stopped`.
//!
//! # Protocol (one WebSocket per call)
//! - page → server, first: `{"type":"hello","sample_rate":48000,"name":"Ada"}` (within
//!   [`BrowserLimits::hello_timeout`]); then binary messages of mono s16le samples at that
//!   rate (converted to 16 kHz on arrival); `{"type":"bye"}` ends the input.
//! - server → page: `{"type":"ready","session_id":…}`; binary reply audio, each message a
//!   little-endian `u32` sample rate then mono s16le samples; `{"type":"clear"}` when the
//!   user interrupts (drop what is scheduled); `{"type":"event","event":<wire JSON>}` for
//!   the call's events (best effort: a full queue drops them, audio samples are left
//!   out); `{"type":"done"}` and a close frame at the end.
//!
//! A connection whose `Origin` is another site is refused (403): a page elsewhere must
//! not reach a local agent through the user's browser.

mod transport;

use std::sync::Arc;

use agentbus::{EventManager, Overflow, SubscribeOptions};
use agentbus_events::DynEvent;
use agentbus_events::agent::UserTranscriptEvent;
use agentbus_events::tts::TTSSynthesisStartEvent;
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::sync::Semaphore;

pub use transport::{BrowserLimits, BrowserTransport, Hello, PageSender};

use crate::call::CallSession;
use crate::error::Result;
use crate::publish::Emitter;
use crate::transport::{RecordingTransport, Transport};

/// How calls are recorded: one file per side.
const RECORDING_TYPE: &str = "individual";

/// The page (HTML, CSS and script in one file, served from the binary).
pub const PAGE: &str = include_str!("page.html");

/// Event types not shown on the page: they carry audio samples, many times a second.
const NOT_ON_PAGE: &[&str] = &["plugin.edge.audio_received", "plugin.tts_audio"];

/// How the browser edge serves calls.
#[derive(Clone, Debug)]
pub struct BrowserConfig {
    /// What one page may send, and how long it may wait.
    pub limits: BrowserLimits,
    /// The most calls at once; more are refused with 503.
    pub max_calls: usize,
    /// Record each call into this directory (`{session}.user.wav`, `{session}.agent.wav`).
    pub record: Option<std::path::PathBuf>,
}

impl Default for BrowserConfig {
    fn default() -> Self {
        Self {
            limits: BrowserLimits::default(),
            max_calls: 2,
            record: None,
        }
    }
}

/// What the router hands to the application for each page that connects.
pub struct BrowserCall {
    /// The page's audio (recorded when the edge records calls).
    pub transport: Box<dyn Transport>,
    /// The page's hello.
    pub hello: Hello,
    /// Publishes on the router's bus, stamped with the call's session id (which is also
    /// the call id).
    pub emitter: Emitter,
}

impl std::fmt::Debug for BrowserCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserCall")
            .field("session_id", &self.session_id())
            .finish_non_exhaustive()
    }
}

impl BrowserCall {
    /// The call's session id.
    pub fn session_id(&self) -> &str {
        self.emitter.session_id().unwrap_or_default()
    }
}

type Handler = dyn Fn(BrowserCall) -> BoxFuture<'static, Result<()>> + Send + Sync;

#[derive(Clone)]
struct Edge {
    bus: EventManager,
    limits: BrowserLimits,
    record: Option<std::path::PathBuf>,
    calls: Arc<Semaphore>,
    handler: Arc<Handler>,
}

/// The browser edge's routes: `GET /voice` and `GET /voice/ws`. `handler` runs each call
/// (typically a [`VoicePipeline`](crate::pipeline::VoicePipeline) over
/// [`BrowserCall::transport`]) and returns when it is over; at most
/// [`BrowserConfig::max_calls`] run at once (more are refused with 503).
///
/// ```no_run
/// use agentbus_voice::browser::{router, BrowserCall, BrowserConfig};
///
/// # async fn serve() -> std::io::Result<()> {
/// let bus = agentbus::EventManager::new();
/// let app = router(bus, BrowserConfig::default(), |call: BrowserCall| async move {
///     // Build the stages and run `VoicePipeline::new(stages, call.transport,
///     // call.emitter, config)` here.
///     Ok(())
/// });
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:7701").await?;
/// axum::serve(listener, app).await
/// # }
/// ```
pub fn router<F, Fut>(bus: EventManager, config: BrowserConfig, handler: F) -> Router
where
    F: Fn(BrowserCall) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let handler: Arc<Handler> = Arc::new(move |call| Box::pin(handler(call)));
    let edge = Edge {
        bus,
        limits: config.limits,
        record: config.record,
        calls: Arc::new(Semaphore::new(config.max_calls.max(1))),
        handler,
    };
    Router::new()
        .route("/voice", get(page))
        .route("/voice/ws", get(connect))
        .with_state(edge)
}

async fn page() -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Html(PAGE)).into_response()
}

/// Whether the request's `Origin` (when a browser sent one) is the server's own.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://").map(|(_, rest)| rest));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

async fn connect(
    State(edge): State<Edge>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "cross-origin voice connections are refused\n",
        )
            .into_response();
    }
    let Ok(permit) = edge.calls.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many calls at once; try again later\n",
        )
            .into_response();
    };
    let max = edge.limits.max_message;
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            run_call(edge, socket).await;
            drop(permit);
        })
}

async fn run_call(edge: Edge, socket: WebSocket) {
    let (transport, hello) = match BrowserTransport::accept(socket, &edge.limits).await {
        Ok(accepted) => accepted,
        Err(error) => {
            tracing::warn!(%error, "a page connected but did not start a call");
            return;
        }
    };
    let session_id = uuid::Uuid::new_v4().to_string();
    let emitter = Emitter::new(edge.bus.clone(), "browser").with_session(Some(session_id.clone()));
    let page = transport.page();
    page.try_send(serde_json::json!({"type": "ready", "session_id": session_id}).to_string());
    let call = Arc::new(CallSession::new(
        emitter.clone(),
        session_id.clone(),
        transport.participant(),
    ));
    let view = match edge.bus.stream::<Arc<dyn DynEvent>>(
        format!("browser-page-{session_id}"),
        SubscribeOptions::new()
            .capacity(1024)
            .overflow(Overflow::DropOldest),
    ) {
        Ok(events) => Some(tokio::spawn(show_events(
            events,
            session_id.clone(),
            page,
            call.clone(),
        ))),
        Err(error) => {
            tracing::warn!(%error, "the page will not show the call's events");
            None
        }
    };
    call.start().await;
    tracing::info!(session_id, "browser call started");
    let transport: Box<dyn Transport> = match &edge.record {
        Some(dir) => {
            call.recording_started(RECORDING_TYPE, &session_id).await;
            Box::new(RecordingTransport::new(
                Box::new(transport),
                dir,
                &session_id,
            ))
        }
        None => Box::new(transport),
    };
    let outcome = (edge.handler)(BrowserCall {
        transport,
        hello,
        emitter,
    })
    .await;
    if edge.record.is_some() {
        call.recording_stopped(RECORDING_TYPE, &session_id).await;
    }
    let reason = match &outcome {
        Ok(()) => "the page hung up".to_owned(),
        Err(error) => {
            tracing::warn!(%error, session_id, "the browser call failed");
            format!("failed: {error}")
        }
    };
    call.end(Some(&reason)).await;
    if let Some(view) = view {
        view.abort();
    }
    tracing::info!(session_id, "browser call ended");
}

/// Shows the call's events on the page and turns what was said into closed captions.
async fn show_events(
    mut events: agentbus::EventStream<Arc<dyn DynEvent>>,
    session_id: String,
    page: PageSender,
    call: Arc<CallSession>,
) {
    let mut dropped: u64 = 0;
    while let Some(event) = events.next().await {
        if event.meta().session_id.as_deref() != Some(session_id.as_str()) {
            continue;
        }
        if let Some(said) = event.downcast_ref::<UserTranscriptEvent>() {
            call.caption_user(&said.text).await;
        } else if let Some(spoken) = event.downcast_ref::<TTSSynthesisStartEvent>()
            && let Some(text) = &spoken.text
        {
            call.caption_agent(text).await;
        }
        if NOT_ON_PAGE.contains(&event.event_type()) {
            continue;
        }
        match event.to_wire_string() {
            Ok(wire) => {
                if !page.try_send(format!(r#"{{"type":"event","event":{wire}}}"#)) {
                    dropped += 1;
                }
            }
            Err(error) => tracing::debug!(%error, "an event the page cannot be shown"),
        }
    }
    if dropped > 0 {
        tracing::debug!(dropped, "events not shown on a page that did not keep up");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_the_servers_own_origin_may_connect() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7701"));
        assert!(same_origin(&headers), "no Origin: not a browser page");
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:7701"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&headers));
    }
}
