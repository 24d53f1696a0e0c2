//! [`TelemetryArgs`]: the metrics flags shared by `chat`, `run` and `replay`
//! (`#[command(flatten)]` them), and the end-of-run summary.

use std::net::{SocketAddr, ToSocketAddrs};

use agentbus_telemetry::{MetricsSummary, Telemetry, TelemetryConfig};
use anyhow::Context;

/// Where a command's metrics go. Nothing is exported unless asked; the summary is always
/// printed (to stderr) at the end.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TelemetryArgs {
    /// Serve Prometheus metrics at http://HOST:PORT/metrics while the command runs.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_addr, env = "AGENTBUS_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Export metrics and spans over OTLP/HTTP (protobuf) to this base URL, e.g.
    /// http://localhost:4318 (`/v1/metrics` and `/v1/traces` are appended).
    #[arg(long, value_name = "URL", env = "AGENTBUS_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Print the end-of-run metrics summary as JSON.
    #[arg(long)]
    pub metrics_json: bool,
}

/// `HOST:PORT`, with the host resolved (`localhost:9464` works).
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .map_err(|e| format!("not a HOST:PORT address: {e}"))?
        .next()
        .ok_or_else(|| format!("{text} resolves to no address"))
}

impl TelemetryArgs {
    /// The library configuration these flags describe.
    pub fn config(&self) -> TelemetryConfig {
        TelemetryConfig {
            metrics_addr: self.metrics_addr,
            otlp_endpoint: self.otlp_endpoint.clone(),
            ..TelemetryConfig::default()
        }
    }

    /// Starts the collector and the exporters asked for (inside a tokio runtime); attach
    /// the result to the command's bus with [`Telemetry::attach`].
    pub async fn start(&self) -> anyhow::Result<Telemetry> {
        let telemetry = Telemetry::start(self.config())
            .await
            .context("starting telemetry")?;
        if let Some(addr) = telemetry.metrics_addr() {
            eprintln!("metrics: http://{addr}/metrics");
        }
        Ok(telemetry)
    }

    /// Whether any telemetry flag was given.
    pub fn requested(&self) -> bool {
        self.metrics_addr.is_some() || self.otlp_endpoint.is_some() || self.metrics_json
    }

    /// [`TelemetryArgs::finish`] when a flag asked for telemetry, else a silent shutdown
    /// (for commands whose default output has no metrics summary, like `replay`).
    pub async fn finish_if_requested(&self, telemetry: Telemetry) -> anyhow::Result<()> {
        if self.requested() {
            self.finish(telemetry).await?;
        } else {
            telemetry.shutdown().await.context("stopping telemetry")?;
        }
        Ok(())
    }

    /// Flushes the exporters and prints the summary to stderr (text, or JSON with
    /// `--metrics-json`); returns it.
    pub async fn finish(&self, telemetry: Telemetry) -> anyhow::Result<MetricsSummary> {
        let summary = telemetry.shutdown().await.context("stopping telemetry")?;
        if self.metrics_json {
            eprintln!("{}", serde_json::to_string(&summary)?);
        } else {
            eprint!("{summary}");
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        telemetry: TelemetryArgs,
    }

    #[test]
    fn parses_the_flags() {
        let cli = Cli::try_parse_from([
            "x",
            "--metrics-addr",
            "127.0.0.1:9464",
            "--otlp-endpoint",
            "http://localhost:4318",
        ])
        .unwrap();
        assert_eq!(
            cli.telemetry.metrics_addr,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        let config = cli.telemetry.config();
        assert_eq!(
            config.otlp_endpoint.as_deref(),
            Some("http://localhost:4318")
        );
        let none = Cli::try_parse_from(["x"]).unwrap();
        assert!(none.telemetry.config().metrics_addr.is_none());
        assert!(Cli::try_parse_from(["x", "--metrics-addr", "nonsense"]).is_err());
        let resolved = Cli::try_parse_from(["x", "--metrics-addr", "localhost:0"]).unwrap();
        assert!(resolved.telemetry.metrics_addr.unwrap().ip().is_loopback());
    }
}
