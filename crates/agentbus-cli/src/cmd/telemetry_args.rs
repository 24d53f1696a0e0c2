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
    /// With --metrics-addr: after the run, keep serving /metrics until it has been scraped
    /// once more, for at most this long (e.g. 15s, 2m; 0 exits at once), so that a scraper
    /// sees the run's last calls.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_linger, env = "AGENTBUS_METRICS_LINGER")]
    pub metrics_linger: std::time::Duration,
    /// Export metrics and spans over OTLP/HTTP (protobuf) to this base URL, e.g.
    /// http://localhost:4318 (`/v1/metrics` and `/v1/traces` are appended).
    #[arg(long, value_name = "URL", env = "AGENTBUS_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Print the end-of-run metrics summary as JSON.
    #[arg(long)]
    pub metrics_json: bool,
}

/// A linger: a duration as the timeouts take it, or zero (no linger).
fn parse_linger(text: &str) -> Result<std::time::Duration, String> {
    super::provider::parse_duration_or_zero(text)?
        .ok_or_else(|| format!("`{}` is not a duration a clock can hold", text.trim()))
}

/// A duration as the flags take it (`15s`, `1.5s`).
fn humanize(d: std::time::Duration) -> String {
    format!("{}s", d.as_secs_f64())
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
        if let Some(addr) = telemetry.metrics_addr()
            && !self.metrics_linger.is_zero()
        {
            // Counting scrapes starts before the line that invites one is printed.
            let lingering = telemetry.linger(self.metrics_linger);
            eprintln!(
                "metrics: run finished; serving http://{addr}/metrics until its next scrape, \
                 at most {} (--metrics-linger)",
                humanize(self.metrics_linger)
            );
            lingering.await;
        }
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

    #[test]
    fn the_linger_defaults_to_15_seconds_and_may_be_zero() {
        let linger = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
                .map(|cli| cli.telemetry.metrics_linger)
        };
        assert_eq!(linger(&[]).unwrap(), std::time::Duration::from_secs(15));
        for zero in ["0", "0s", "0ms"] {
            assert_eq!(
                linger(&["--metrics-linger", zero]).unwrap(),
                std::time::Duration::ZERO
            );
        }
        assert_eq!(
            linger(&["--metrics-linger", "2m"]).unwrap(),
            std::time::Duration::from_secs(120)
        );
        assert!(linger(&["--metrics-linger", "soon"]).is_err());
        assert!(linger(&["--metrics-linger", "-1s"]).is_err());
        assert!(linger(&["--metrics-linger", "0fortnights"]).is_err());
    }
}
