//! The Prometheus endpoint: `GET /metrics` over HTTP/1, served while the process runs.

use std::net::SocketAddr;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::TelemetryError;
use crate::prometheus::CONTENT_TYPE;
use crate::reader::MetricsReader;

/// A running `/metrics` server. Stops when [`MetricsServer::stop`] is called or when
/// dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// How many scrapes have been answered.
    scrapes: watch::Receiver<u64>,
}

async fn metrics(reader: MetricsReader, scrapes: &watch::Sender<u64>) -> Response {
    match reader.render_prometheus() {
        Ok(body) => {
            scrapes.send_modify(|n| *n += 1);
            ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "collecting metrics for /metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
        }
    }
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port) and serves `reader` at `/metrics` on the
    /// current tokio runtime.
    pub async fn start(addr: SocketAddr, reader: MetricsReader) -> Result<Self, TelemetryError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| TelemetryError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| TelemetryError::Bind { addr, source })?;
        let (scraped, scrapes) = watch::channel(0u64);
        let scraped = std::sync::Arc::new(scraped);
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let (reader, scraped) = (reader.clone(), scraped.clone());
                async move { metrics(reader, &scraped).await }
            }),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "the /metrics server stopped");
            }
        });
        tracing::info!(addr = %local, "serving Prometheus metrics at /metrics");
        Ok(Self {
            addr: local,
            stop: Some(stop),
            task: Some(task),
            scrapes,
        })
    }

    /// Waits until `/metrics` has been answered once more after this call, or `at_most`
    /// has passed; resolves to whether it was. A process about to exit calls this so that a
    /// scraper sees its last figures (the CLI's `--metrics-linger`). The count is taken
    /// when this is called, not when the future is first polled: a scrape in between
    /// counts.
    ///
    /// # Cancel safety
    /// Cancel-safe: it only watches a counter.
    pub fn scraped_within(
        &self,
        at_most: Duration,
    ) -> impl std::future::Future<Output = bool> + Send + 'static {
        let mut scrapes = self.scrapes.clone();
        scrapes.mark_unchanged();
        async move {
            tokio::time::timeout(at_most, scrapes.changed())
                .await
                .is_ok_and(|changed| changed.is_ok())
        }
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections and waits for the server task to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
