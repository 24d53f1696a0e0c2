//! [`NatsError`]: what can go wrong talking to NATS. Messages never contain a credential:
//! URLs are shown with their user information masked, and the server's own error text is
//! passed through [`redact`] before it is kept.

use thiserror::Error;

/// An error of the NATS bridge.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NatsError {
    /// The URL or an option is unusable.
    #[error("invalid NATS option: {0}")]
    Config(String),
    /// The server could not be reached or refused the connection (wrong credentials, TLS).
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The server URL, user information masked.
        url: String,
        /// What failed (credentials removed).
        reason: String,
    },
    /// The server answers but has no JetStream (started without `-js`, or the account has
    /// no JetStream).
    #[error(
        "the NATS server at {url} has no JetStream ({reason}); start it with `nats-server -js` or enable JetStream for this account"
    )]
    NoJetStream {
        /// The server URL, user information masked.
        url: String,
        /// What the server answered.
        reason: String,
    },
    /// The stream exists with a configuration agentbus cannot use.
    #[error("stream `{stream}` exists with an incompatible configuration: {problem}")]
    IncompatibleStream {
        /// The stream's name.
        stream: String,
        /// Which setting differs and how.
        problem: String,
    },
    /// A JetStream request (stream, consumer, fetch, ack) failed.
    #[error("JetStream {operation} failed: {reason}")]
    JetStream {
        /// What was being done.
        operation: &'static str,
        /// What failed.
        reason: String,
    },
    /// Waiting for the export to be acknowledged took too long.
    #[error("timed out after {waited:?} with {pending} events not yet acknowledged by JetStream")]
    FlushTimeout {
        /// How long was waited.
        waited: std::time::Duration,
        /// Events still waiting for an acknowledgement.
        pending: u64,
    },
    /// The local bus refused a subscription.
    #[error("bus: {0}")]
    Bus(String),
}

impl NatsError {
    pub(crate) fn jetstream(operation: &'static str, error: impl std::fmt::Display) -> Self {
        NatsError::JetStream {
            operation,
            reason: redact(&error.to_string()),
        }
    }
}

/// Masks the user information of every URL in `text` (`nats://user:secret@host` becomes
/// `nats://***@host`), so a message can be logged or shown.
///
/// ```
/// use agentbus_nats::redact;
/// assert_eq!(redact("nats://bob:s3cret@10.0.0.1:4222"), "nats://***@10.0.0.1:4222");
/// assert_eq!(redact("tls://tok@h:1, nats://h2"), "tls://***@h:1, nats://h2");
/// assert_eq!(redact("no url here"), "no url here");
/// ```
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == ',' || c == '/' || c == '"' || c == '\'')
            .unwrap_or(rest.len());
        let authority = &rest[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}
