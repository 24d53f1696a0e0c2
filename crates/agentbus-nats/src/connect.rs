//! Connecting: the server URL, credentials and TLS ([`NatsOptions`]).
//!
//! A credential (token, password, NKey seed, creds file contents) is held in a [`Secret`],
//! whose `Debug` prints `***`; errors mask URL user information ([`redact`]). So neither a
//! log line, an error nor an event carries one.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{NatsError, redact};

/// A credential. Its `Debug` and `Display` print `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself, for handing to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// How the client proves who it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// No credentials (or credentials in the URL's user information).
    #[default]
    None,
    /// A token (`nats-server --auth`).
    Token(Secret),
    /// A user name and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: Secret,
    },
    /// An NKey seed (`SU…`); the server is configured with the public key.
    NKey(Secret),
    /// A `.creds` file (JWT and NKey seed, from `nsc`).
    CredsFile(PathBuf),
}

/// TLS settings. TLS is used when the URL says `tls://` or `require` is set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Refuse a connection without TLS.
    pub require: bool,
    /// PEM file of the CA that signed the server certificate (else the system roots).
    pub ca_file: Option<PathBuf>,
    /// PEM files of a client certificate and its key, for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// Where the NATS server is and how to talk to it.
///
/// ```
/// use agentbus_nats::{Auth, NatsOptions, Secret};
/// let options = NatsOptions::new("nats://127.0.0.1:4222")
///     .auth(Auth::Token(Secret::new("s3cret")));
/// assert!(!format!("{options:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct NatsOptions {
    /// Server URL(s), comma-separated (`nats://host:4222`, `tls://…`).
    pub url: String,
    /// Credentials.
    pub auth: Auth,
    /// TLS.
    pub tls: TlsOptions,
    /// The connection's name, shown by the server's monitoring (default `agentbus`).
    pub name: String,
    /// How long one connection attempt may take (default 5 s).
    pub connect_timeout: Duration,
    /// How long a JetStream request (publish ack, stream info) may take (default 5 s).
    pub request_timeout: Duration,
    /// How often the client pings the server; two unanswered pings end the connection and
    /// start a reconnect (default 5 s, so a silently dead link is noticed in seconds).
    pub ping_interval: Duration,
}

impl std::fmt::Debug for NatsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsOptions")
            .field("url", &redact(&self.url))
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl NatsOptions {
    /// Options for the server(s) at `url`, no credentials, no TLS requirement.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            auth: Auth::None,
            tls: TlsOptions::default(),
            name: "agentbus".into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(5),
        }
    }

    /// Sets the credentials.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Sets the TLS options.
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }

    /// Sets the connection name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The URL with user information masked, for messages.
    pub fn display_url(&self) -> String {
        redact(&self.url)
    }

    /// Connects. The client reconnects by itself for ever after a first success; the
    /// first attempt failing is an error naming the (masked) URL and the reason.
    pub async fn connect(&self) -> Result<async_nats::Client, NatsError> {
        let url = self.display_url();
        let connect_error = |reason: String| NatsError::Connect {
            url: url.clone(),
            reason: redact(&reason),
        };
        let mut options = match &self.auth {
            Auth::None => async_nats::ConnectOptions::new(),
            Auth::Token(token) => async_nats::ConnectOptions::with_token(token.expose().to_owned()),
            Auth::UserPassword { user, password } => {
                async_nats::ConnectOptions::with_user_and_password(
                    user.clone(),
                    password.expose().to_owned(),
                )
            }
            Auth::NKey(seed) => async_nats::ConnectOptions::with_nkey(seed.expose().to_owned()),
            Auth::CredsFile(path) => {
                async_nats::ConnectOptions::with_credentials_file(path.clone())
                    .await
                    .map_err(|e| {
                        connect_error(format!("reading credentials file {}: {e}", path.display()))
                    })?
            }
        };
        options = options
            .name(self.name.clone())
            .connection_timeout(self.connect_timeout)
            .ping_interval(self.ping_interval)
            .request_timeout(Some(self.request_timeout))
            .max_reconnects(None)
            .reconnect_delay_callback(|attempt| {
                Duration::from_millis((50u64 << attempt.min(5) as u32).min(1000))
            })
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Disconnected => {
                        tracing::warn!("NATS connection lost; reconnecting")
                    }
                    async_nats::Event::Connected => tracing::info!("NATS connected"),
                    other => tracing::debug!(event = %other, "NATS client event"),
                }
            });
        if self.tls.require {
            options = options.require_tls(true);
        }
        if let Some(ca) = &self.tls.ca_file {
            options = options.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.tls.client_cert {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        // Several servers (a cluster) are comma-separated; async-nats takes them as a list.
        let servers = self
            .url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<async_nats::ServerAddr>()
                    .map_err(|e| connect_error(redact(&e.to_string())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if servers.is_empty() {
            return Err(NatsError::Config("no NATS server URL given".into()));
        }
        options
            .connect(servers)
            .await
            .map_err(|e| connect_error(redact(&e.to_string())))
    }
}
