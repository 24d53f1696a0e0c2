//! [`Server`]: the routes, their shared state and their guards (bearer token, CORS,
//! body size limit).

use std::sync::Arc;

use agentbus::EventManager;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use std::sync::atomic::AtomicU64;

use agentbus_store::{EventStore, StoreError};

use crate::error::RequestError;
use crate::feed::{EventFeed, LagPolicy};
use crate::run::AgentTemplate;

/// The default largest request body: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;
/// The default number of events the `/events` ring holds.
pub const DEFAULT_RING_CAPACITY: usize = 4096;

/// Counters of the agent endpoints, for `/metrics`.
#[derive(Debug, Default)]
pub struct RunCounters {
    /// Runs started.
    pub started: AtomicU64,
    /// Runs in progress.
    pub active: AtomicU64,
    /// Requests refused (4xx).
    pub refused: AtomicU64,
}

/// How a [`Server`] guards its routes.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The bearer token every API request must carry (`Authorization: Bearer <token>`,
    /// or `?access_token=` for `GET` requests, which `EventSource` cannot give headers).
    /// `None`: no authentication (the server should then listen on loopback only).
    pub token: Option<String>,
    /// Origins allowed by CORS; empty: no CORS headers at all (same-origin only).
    pub cors_origins: Vec<String>,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// What `/events` does with a client that falls behind.
    pub lag_policy: LagPolicy,
    /// How many events the `/events` ring holds for clients that read slowly.
    pub ring_capacity: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            token: None,
            cors_origins: Vec::new(),
            max_body_bytes: DEFAULT_BODY_LIMIT,
            lag_policy: LagPolicy::default(),
            ring_capacity: DEFAULT_RING_CAPACITY,
        }
    }
}

pub(crate) struct ServerInner {
    pub(crate) bus: EventManager,
    pub(crate) template: AgentTemplate,
    pub(crate) options: ServeOptions,
    pub(crate) feed: Option<Arc<EventFeed>>,
    pub(crate) runs: Arc<RunCounters>,
}

/// An agentbus HTTP server: cheap to clone, every clone shares the bus and the agent
/// template. [`Server::router`] gives the axum routes, to serve or to merge into an app.
///
/// ```no_run
/// use std::sync::Arc;
/// use agentbus::EventManager;
/// use agentbus_agent::testing::{ScriptedTurns, Turn, text, finish};
/// use agentbus_serve::{AgentTemplate, ServeOptions, Server};
///
/// # async fn demo() -> std::io::Result<()> {
/// let bus = EventManager::new();
/// let mut events = text(&["Hello"]);
/// events.push(finish("stop", 3, 1));
/// let model = Arc::new(ScriptedTurns::cycling("demo", vec![Turn::new(events)]));
/// let server = Server::new(bus, AgentTemplate::new(model), ServeOptions::default());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:7700").await?;
/// axum::serve(listener, server.router()).await
/// # }
/// ```
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerInner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("template", &self.inner.template)
            .field("authenticated", &self.inner.options.token.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server whose runs publish on `bus`, built from `template`, without a store:
    /// the agent endpoints only (`/events` and `/api/*` answer 503).
    pub fn new(bus: EventManager, template: AgentTemplate, options: ServeOptions) -> Self {
        Self::with_feed(bus, template, options, None)
    }

    /// A server that also serves `store` (which a store sink on `bus` should be
    /// writing): `/events`, `/api/sessions`, `/api/stats`. Call inside a tokio runtime.
    pub fn with_store(
        bus: EventManager,
        template: AgentTemplate,
        options: ServeOptions,
        store: Arc<EventStore>,
    ) -> Result<Self, StoreError> {
        let feed = EventFeed::start(&bus, store, options.ring_capacity)?;
        Ok(Self::with_feed(
            bus,
            template,
            options,
            Some(Arc::new(feed)),
        ))
    }

    fn with_feed(
        bus: EventManager,
        template: AgentTemplate,
        options: ServeOptions,
        feed: Option<Arc<EventFeed>>,
    ) -> Self {
        Self {
            inner: Arc::new(ServerInner {
                bus,
                template,
                options,
                feed,
                runs: Arc::default(),
            }),
        }
    }

    /// The store feed behind `/events`, when the server has a store.
    pub fn feed(&self) -> Option<&Arc<EventFeed>> {
        self.inner.feed.as_ref()
    }

    /// The agent endpoints' counters.
    pub fn run_counters(&self) -> &Arc<RunCounters> {
        &self.inner.runs
    }

    /// What `/events` does with a slow client.
    pub fn lag_policy(&self) -> LagPolicy {
        self.inner.options.lag_policy
    }

    /// The bus runs publish on.
    pub fn bus(&self) -> &EventManager {
        &self.inner.bus
    }

    /// What runs are built from.
    pub fn template(&self) -> &AgentTemplate {
        &self.inner.template
    }

    /// The routes: `POST /ag-ui`, `POST /api/chat`, `GET /events`, `GET /api/sessions`,
    /// `GET /api/sessions/{id}/events`, `GET /api/stats`, `GET /metrics`, behind the
    /// token, body limit and CORS of the options; `GET /healthz` is open.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/ag-ui", post(crate::protocols::ag_ui))
            .route("/api/chat", post(crate::protocols::chat))
            .route("/events", get(crate::events::events))
            .route("/api/sessions", get(crate::api::sessions))
            .route("/api/sessions/{id}/events", get(crate::api::session_events))
            .route("/api/stats", get(crate::api::stats))
            .route("/metrics", get(crate::api::metrics))
            .route_layer(middleware::from_fn_with_state(self.clone(), authenticate))
            .layer(DefaultBodyLimit::max(self.inner.options.max_body_bytes))
            .layer(middleware::from_fn_with_state(self.clone(), limit_body))
            .with_state(self.clone());
        let router = Router::new()
            .route("/", get(crate::dashboard::page))
            .route("/healthz", get(|| async { "ok" }))
            .merge(api);
        match cors(&self.inner.options.cors_origins) {
            Some(layer) => router.layer(layer),
            None => router,
        }
    }
}

/// CORS for the configured origins (none configured: no layer).
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| match HeaderValue::from_str(o) {
            Ok(v) => Some(v),
            Err(_) => {
                tracing::warn!(origin = %o, "ignoring a CORS origin that is not a header value");
                None
            }
        })
        .collect();
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
            .expose_headers([header::HeaderName::from_static(
                "x-vercel-ai-ui-message-stream",
            )]),
    )
}

/// Compares in time independent of where the first difference is.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token a request carries: the bearer header, or `access_token` in a GET's query.
fn presented_token(request: &Request) -> Option<String> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        return value.strip_prefix("Bearer ").map(|t| t.trim().to_owned());
    }
    if request.method() == Method::GET {
        let query = request.uri().query()?;
        for pair in query.split('&') {
            if let Some(token) = pair.strip_prefix("access_token=") {
                return Some(token.to_owned());
            }
        }
    }
    None
}

/// Refuses requests without the server's token (when it has one).
async fn authenticate(State(server): State<Server>, request: Request, next: Next) -> Response {
    if let Some(expected) = &server.inner.options.token {
        let ok = presented_token(&request)
            .is_some_and(|t| same_secret(t.as_bytes(), expected.as_bytes()));
        if !ok {
            return RequestError::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

/// Refuses bodies over the limit with a 413 before they are read, caps the rest, and
/// counts refused requests.
async fn limit_body(State(server): State<Server>, request: Request, next: Next) -> Response {
    let limit = server.inner.options.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let response = if declared.is_some_and(|n| n > limit as u64) {
        RequestError::TooLarge { limit }.into_response()
    } else {
        let response = next.run(request).await;
        // A chunked body over the limit is stopped by `DefaultBodyLimit` with axum's own
        // 413; answer it in our JSON shape.
        if response.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            RequestError::TooLarge { limit }.into_response()
        } else {
            response
        }
    };
    if response.status().is_client_error() {
        server
            .inner
            .runs
            .refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    response
}
