//! [`MetricsReader`]: a shareable handle on the SDK's pull reader, from which the
//! Prometheus endpoint and tests read the current metric values.

use std::sync::{Arc, Weak};
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, ManualReader, Pipeline, Temporality};

use crate::error::TelemetryError;
use crate::prometheus;
use crate::snapshot::MetricsSnapshot;

/// A pull reader (cumulative temporality) registered on a meter provider; clones share it.
#[derive(Clone, Debug)]
pub struct MetricsReader {
    inner: Arc<ManualReader>,
}

impl Default for MetricsReader {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsReader {
    /// A new reader; register a clone with
    /// `SdkMeterProvider::builder().with_reader(reader.clone())`.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(
                ManualReader::builder()
                    .with_temporality(Temporality::Cumulative)
                    .build(),
            ),
        }
    }

    /// Collects the current values of every instrument.
    pub fn snapshot(&self) -> Result<MetricsSnapshot, TelemetryError> {
        let mut rm = ResourceMetrics::default();
        self.inner
            .collect(&mut rm)
            .map_err(|e| TelemetryError::Sdk(e.to_string()))?;
        Ok(MetricsSnapshot::from_resource_metrics(&rm))
    }

    /// The current values in the Prometheus text exposition format.
    pub fn render_prometheus(&self) -> Result<String, TelemetryError> {
        Ok(prometheus::render(&self.snapshot()?))
    }
}

impl MetricReader for MetricsReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.inner.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.inner.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.inner.temporality(kind)
    }
}
