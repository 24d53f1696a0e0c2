//! [`Telemetry`]: everything a command turns on from its flags — the collector, the
//! Prometheus endpoint (`--metrics-addr`) and OTLP export of metrics and spans
//! (`--otlp-endpoint`). Nothing is exported unless asked; the in-memory summary is always
//! kept.

use std::net::SocketAddr;
use std::time::Duration;

use agentbus::{EventManager, SubscribeError, SubscriptionHandle};
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
#[cfg(feature = "otlp")]
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
#[cfg(feature = "otlp")]
use opentelemetry_sdk::metrics::PeriodicReader;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::collector::MetricsCollector;
use crate::error::TelemetryError;
use crate::reader::MetricsReader;
#[cfg(feature = "prometheus")]
use crate::server::MetricsServer;
use crate::snapshot::MetricsSnapshot;
#[cfg(feature = "otlp")]
use crate::spans::EventIdGenerator;
use crate::spans::SpanRecorder;
use crate::summary::MetricsSummary;

pub use crate::consts::SCOPE;

/// What to export.
#[derive(Clone, Debug)]
pub struct TelemetryConfig {
    /// Serve Prometheus metrics at `http://ADDR/metrics`.
    pub metrics_addr: Option<SocketAddr>,
    /// Export metrics and spans over OTLP/HTTP (protobuf) to this base URL
    /// (`http://localhost:4318`); `/v1/metrics` and `/v1/traces` are appended.
    pub otlp_endpoint: Option<String>,
    /// How often OTLP metrics are pushed (also pushed once at shutdown).
    pub otlp_interval: Duration,
    /// The `service.name` resource attribute.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            metrics_addr: None,
            otlp_endpoint: None,
            otlp_interval: Duration::from_secs(10),
            service_name: "agentbus".to_owned(),
        }
    }
}

/// The running telemetry of one process.
#[derive(Debug)]
pub struct Telemetry {
    collector: MetricsCollector,
    reader: Option<MetricsReader>,
    meter_provider: Option<SdkMeterProvider>,
    tracer_provider: Option<SdkTracerProvider>,
    #[cfg(feature = "prometheus")]
    server: Option<MetricsServer>,
}

#[cfg(feature = "otlp")]
fn signal_url(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

#[cfg(feature = "otlp")]
fn otlp_error(endpoint: &str, error: impl std::fmt::Display) -> TelemetryError {
    TelemetryError::Otlp {
        endpoint: endpoint.to_owned(),
        message: error.to_string(),
    }
}

impl Telemetry {
    /// Starts what `config` asks for. Must be called inside a tokio runtime when
    /// `metrics_addr` is set (the server runs on it).
    ///
    /// # Errors
    ///
    /// [`TelemetryError::NotBuilt`] when `config` asks for the Prometheus endpoint or OTLP
    /// export and this build lacks the feature; otherwise what binding the endpoint or
    /// building the exporters reports.
    pub async fn start(config: TelemetryConfig) -> Result<Self, TelemetryError> {
        #[cfg(not(feature = "prometheus"))]
        if config.metrics_addr.is_some() {
            return Err(TelemetryError::NotBuilt {
                what: "the Prometheus /metrics endpoint",
                feature: "prometheus",
            });
        }
        #[cfg(not(feature = "otlp"))]
        if config.otlp_endpoint.is_some() {
            return Err(TelemetryError::NotBuilt {
                what: "OTLP export",
                feature: "otlp",
            });
        }
        let resource = Resource::builder()
            .with_attribute(KeyValue::new("service.name", config.service_name.clone()))
            .build();
        let reader = config.metrics_addr.map(|_| MetricsReader::new());
        let mut meter_provider = None;
        #[cfg_attr(not(feature = "otlp"), allow(unused_mut))]
        let mut tracer_provider: Option<SdkTracerProvider> = None;
        if reader.is_some() || config.otlp_endpoint.is_some() {
            let mut builder = SdkMeterProvider::builder().with_resource(resource.clone());
            if let Some(reader) = &reader {
                builder = builder.with_reader(reader.clone());
            }
            #[cfg(feature = "otlp")]
            if let Some(endpoint) = &config.otlp_endpoint {
                let url = signal_url(endpoint, "/v1/metrics");
                url.parse::<http::Uri>()
                    .map_err(|e| otlp_error(endpoint, e))?;
                let exporter = opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_endpoint(url)
                    .with_timeout(Duration::from_secs(5))
                    .build()
                    .map_err(|e| otlp_error(endpoint, e))?;
                builder = builder.with_reader(
                    PeriodicReader::builder(exporter)
                        .with_interval(config.otlp_interval)
                        .build(),
                );
                let span_exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_endpoint(signal_url(endpoint, "/v1/traces"))
                    .with_timeout(Duration::from_secs(5))
                    .with_headers(Default::default())
                    .build()
                    .map_err(|e| otlp_error(endpoint, e))?;
                tracer_provider = Some(
                    SdkTracerProvider::builder()
                        .with_resource(resource.clone())
                        .with_id_generator(EventIdGenerator::default())
                        .with_batch_exporter(span_exporter)
                        .build(),
                );
            }
            meter_provider = Some(builder.build());
        }
        let meter = meter_provider.as_ref().map(|p| p.meter(SCOPE));
        let spans = tracer_provider
            .as_ref()
            .map(|p| SpanRecorder::new(p.tracer(SCOPE)));
        let collector = MetricsCollector::with_parts(meter.as_ref(), spans);
        #[cfg(feature = "prometheus")]
        let server = match (config.metrics_addr, &reader) {
            (Some(addr), Some(reader)) => Some(MetricsServer::start(addr, reader.clone()).await?),
            _ => None,
        };
        Ok(Self {
            collector,
            reader,
            meter_provider,
            tracer_provider,
            #[cfg(feature = "prometheus")]
            server,
        })
    }

    /// The collector; attach it to a bus with [`Telemetry::attach`].
    pub fn collector(&self) -> &MetricsCollector {
        &self.collector
    }

    /// Subscribes the collector to `bus`.
    pub fn attach(&self, bus: &EventManager) -> Result<SubscriptionHandle, SubscribeError> {
        self.collector.attach(bus, "agentbus-telemetry")
    }

    /// Where `/metrics` is served, when it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        #[cfg(feature = "prometheus")]
        return self.server.as_ref().map(MetricsServer::local_addr);
        #[cfg(not(feature = "prometheus"))]
        None
    }

    /// Keeps `/metrics` served until it has been scraped once more after this call, at
    /// most `at_most`; resolves to whether it was scraped (`false` at once when no endpoint
    /// is served). Call it after the work is done and before [`shutdown`](Self::shutdown),
    /// so that a scraper sees a short run complete.
    pub fn linger(
        &self,
        at_most: Duration,
    ) -> impl std::future::Future<Output = bool> + Send + 'static {
        #[cfg(feature = "prometheus")]
        let scraped = self
            .server
            .as_ref()
            .map(|server| server.scraped_within(at_most));
        #[cfg(not(feature = "prometheus"))]
        let scraped: Option<std::future::Ready<bool>> = {
            let _ = at_most;
            None
        };
        async move {
            match scraped {
                Some(scraped) => scraped.await,
                None => false,
            }
        }
    }

    /// The current metric values, when the Prometheus reader is on.
    pub fn snapshot(&self) -> Option<Result<MetricsSnapshot, TelemetryError>> {
        self.reader.as_ref().map(MetricsReader::snapshot)
    }

    /// The in-memory summary.
    pub fn summary(&self) -> MetricsSummary {
        self.collector.summary()
    }

    /// Stops the endpoint and flushes and stops OTLP export; returns the final summary.
    pub async fn shutdown(mut self) -> Result<MetricsSummary, TelemetryError> {
        #[cfg(feature = "prometheus")]
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        let summary = self.collector.summary();
        let meter_provider = self.meter_provider.take();
        let tracer_provider = self.tracer_provider.take();
        // The SDK's shutdown blocks on its exporter threads: keep it off the runtime.
        let flushed = tokio::task::spawn_blocking(move || {
            let mut errors = Vec::new();
            if let Some(p) = tracer_provider
                && let Err(e) = p.shutdown()
            {
                errors.push(format!("spans: {e}"));
            }
            if let Some(p) = meter_provider
                && let Err(e) = p.shutdown()
            {
                errors.push(format!("metrics: {e}"));
            }
            errors
        })
        .await
        .map_err(|e| TelemetryError::Sdk(e.to_string()))?;
        if flushed.is_empty() {
            Ok(summary)
        } else {
            Err(TelemetryError::Sdk(flushed.join("; ")))
        }
    }
}
