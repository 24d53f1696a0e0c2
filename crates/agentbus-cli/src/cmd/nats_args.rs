//! `--nats URL` and its credential/TLS flags, shared by `run`, `chat`, `store-writer`,
//! `tail` and `replay` (flatten [`NatsArgs`]). Secrets are read from environment variables
//! named by flags, never from the command line, and never printed.

use std::path::PathBuf;
use std::time::Duration;

use agentbus::EventManager;
use agentbus_nats::{Auth, Bridge, ExportOptions, Exporter, NatsOptions, Secret, TlsOptions};
use anyhow::Context;

/// How long a command waits at its end for JetStream to acknowledge what it exported.
const FLUSH: Duration = Duration::from_secs(30);

/// Where the NATS server is, and how to log in.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct NatsArgs {
    /// The NATS server (JetStream enabled): `nats://HOST:4222`, `tls://…`; several
    /// comma-separated for a cluster.
    #[arg(
        long,
        value_name = "URL",
        env = "AGENTBUS_NATS",
        hide_env_values = true
    )]
    pub nats: Option<String>,
    /// Environment variable holding a NATS token.
    #[arg(long, value_name = "VAR")]
    pub nats_token_env: Option<String>,
    /// NATS user name (the password comes from `--nats-password-env`).
    #[arg(long, value_name = "USER", requires = "nats_password_env")]
    pub nats_user: Option<String>,
    /// Environment variable holding the NATS password.
    #[arg(long, value_name = "VAR", requires = "nats_user")]
    pub nats_password_env: Option<String>,
    /// Environment variable holding an NKey seed (`SU…`).
    #[arg(long, value_name = "VAR")]
    pub nats_nkey_env: Option<String>,
    /// A NATS `.creds` file (JWT + NKey seed).
    #[arg(long, value_name = "FILE")]
    pub nats_creds: Option<PathBuf>,
    /// Require TLS.
    #[arg(long)]
    pub nats_tls: bool,
    /// PEM file of the CA that signed the server's certificate.
    #[arg(long, value_name = "FILE")]
    pub nats_ca: Option<PathBuf>,
    /// PEM client certificate and key for mutual TLS (`--nats-cert C --nats-key K`).
    #[arg(long, value_name = "FILE", requires = "nats_key")]
    pub nats_cert: Option<PathBuf>,
    /// The client certificate's key.
    #[arg(long, value_name = "FILE", requires = "nats_cert")]
    pub nats_key: Option<PathBuf>,
}

fn secret_from(var: &str) -> anyhow::Result<Secret> {
    std::env::var(var)
        .map(Secret::new)
        .with_context(|| format!("reading the NATS credential from ${var}"))
}

impl NatsArgs {
    /// The client options, or `None` without `--nats`.
    pub fn options(&self) -> anyhow::Result<Option<NatsOptions>> {
        let Some(url) = &self.nats else {
            return Ok(None);
        };
        let auth = if let Some(var) = &self.nats_token_env {
            Auth::Token(secret_from(var)?)
        } else if let (Some(user), Some(var)) = (&self.nats_user, &self.nats_password_env) {
            Auth::UserPassword {
                user: user.clone(),
                password: secret_from(var)?,
            }
        } else if let Some(var) = &self.nats_nkey_env {
            Auth::NKey(secret_from(var)?)
        } else if let Some(path) = &self.nats_creds {
            Auth::CredsFile(path.clone())
        } else {
            Auth::None
        };
        let tls = TlsOptions {
            require: self.nats_tls,
            ca_file: self.nats_ca.clone(),
            client_cert: self.nats_cert.clone().zip(self.nats_key.clone()),
        };
        Ok(Some(NatsOptions::new(url.clone()).auth(auth).tls(tls)))
    }

    /// Connects (and creates or checks the stream); `None` without `--nats`.
    pub async fn connect(&self) -> anyhow::Result<Option<Bridge>> {
        match self.options()? {
            None => Ok(None),
            Some(options) => Ok(Some(Bridge::connect(&options).await?)),
        }
    }

    /// With `--nats`, exports every event of `bus` to JetStream from now on; finish with
    /// [`NatsExport::finish`].
    pub async fn export(&self, bus: &EventManager) -> anyhow::Result<Option<NatsExport>> {
        let Some(bridge) = self.connect().await? else {
            return Ok(None);
        };
        let exporter = bridge.export(bus, ExportOptions::default())?;
        Ok(Some(NatsExport {
            exporter,
            url: agentbus_nats::redact(self.nats.as_deref().unwrap_or_default()),
        }))
    }
}

/// A command's events going to JetStream.
#[derive(Debug)]
pub struct NatsExport {
    exporter: Exporter,
    url: String,
}

impl NatsExport {
    /// Waits until JetStream acknowledged every event and says so on stderr.
    pub async fn finish(self) -> anyhow::Result<()> {
        let stats = self
            .exporter
            .close(FLUSH)
            .await
            .with_context(|| format!("exporting to NATS at {}", self.url))?;
        let mut problems = Vec::new();
        if stats.rejected > 0 {
            problems.push(format!("{} refused by the server", stats.rejected));
        }
        if stats.dropped > 0 {
            problems.push(format!("{} dropped from a full queue", stats.dropped));
        }
        if stats.lost > 0 {
            problems.push(format!("{} lost", stats.lost));
        }
        let problems = if problems.is_empty() {
            String::new()
        } else {
            format!(" ({}; see the log)", problems.join(", "))
        };
        eprintln!(
            "nats: {} events exported to {}{problems}",
            stats.acked, self.url
        );
        Ok(())
    }
}

/// The session's events as the NATS stream holds them, ready to replay (`replay --nats`).
pub fn load_session(
    args: &NatsArgs,
    session: &str,
    registry: &agentbus_events::Registry,
) -> anyhow::Result<Vec<(i64, Box<dyn agentbus_events::DynEvent>)>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (events, stats) = runtime.block_on(async {
        let bridge = args.connect().await?.context("--nats is required")?;
        anyhow::Ok(bridge.read_session(session, registry).await?)
    })?;
    let skipped = stats.unknown_type + stats.newer_schema + stats.malformed;
    if skipped > 0 {
        eprintln!(
            "replay: {skipped} messages of the session could not be decoded and are left out"
        );
    }
    if events.is_empty() {
        anyhow::bail!("session {session} has no events in the NATS stream");
    }
    Ok(events
        .into_iter()
        .map(|e| (e.meta().timestamp.timestamp_micros(), e))
        .collect())
}
