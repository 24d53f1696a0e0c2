//! The JetStream stream that holds every exported event: create it, or check that the one
//! already there is usable ([`StreamSettings::ensure`]).

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::error::NatsError;
use crate::subject::ROOT;

/// The stream agentbus uses by default.
pub const DEFAULT_STREAM: &str = "AGENTBUS";

/// How the stream is configured when agentbus creates it, and what it requires of one that
/// exists.
///
/// ```
/// use std::time::Duration;
/// use agentbus_nats::StreamSettings;
/// let settings = StreamSettings::default().max_age(Duration::from_secs(7 * 86_400));
/// assert_eq!(settings.name, "AGENTBUS");
/// assert_eq!(settings.subjects(), vec!["agentbus.>".to_string()]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSettings {
    /// The stream's name (default `AGENTBUS`).
    pub name: String,
    /// How long the server remembers message ids to drop a re-published event
    /// (default 2 minutes; a publisher that re-publishes after an outage longer than
    /// this could store an event twice, which the store writer still ignores).
    pub duplicate_window: Duration,
    /// Events older than this are removed (zero: kept for ever; default zero).
    pub max_age: Duration,
    /// The stream's size bound in bytes; the oldest events go first (-1: unbounded).
    pub max_bytes: i64,
    /// Copies kept in a cluster (default 1).
    pub replicas: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            name: DEFAULT_STREAM.into(),
            duplicate_window: Duration::from_secs(120),
            max_age: Duration::ZERO,
            max_bytes: -1,
            replicas: 1,
        }
    }
}

impl StreamSettings {
    /// Sets the age limit.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// Sets the size limit.
    pub fn max_bytes(mut self, bytes: i64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Sets the number of replicas.
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// The stream's subjects: `agentbus.>`.
    pub fn subjects(&self) -> Vec<String> {
        vec![format!("{ROOT}.>")]
    }

    fn config(&self) -> stream::Config {
        stream::Config {
            name: self.name.clone(),
            subjects: self.subjects(),
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            duplicate_window: self.duplicate_window,
            max_age: self.max_age,
            max_bytes: self.max_bytes,
            num_replicas: self.replicas,
            ..Default::default()
        }
    }

    /// Creates the stream, or checks the existing one: it must take `agentbus.>`, store on
    /// file, keep a duplicate window and keep messages by limits (not a work queue, which
    /// would delete an event once one consumer has it). Limits (age, bytes) of an existing
    /// stream are left as the operator set them.
    ///
    /// Errors: [`NatsError::NoJetStream`] when the server has no JetStream,
    /// [`NatsError::IncompatibleStream`] naming the setting that differs.
    pub async fn ensure(
        &self,
        js: &jetstream::Context,
        server: &str,
    ) -> Result<stream::Info, NatsError> {
        check_jetstream(js, server).await?;
        match js.get_stream(&self.name).await {
            Ok(existing) => self.checked(existing).await,
            Err(error)
                if matches!(
                    error.kind(),
                    jetstream::context::GetStreamErrorKind::JetStream(e)
                        if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                ) =>
            {
                let stream = match js.create_stream(self.config()).await {
                    Ok(created) => {
                        tracing::info!(stream = %self.name, "created the JetStream stream");
                        created
                    }
                    // Another process may have created it meanwhile: then its settings
                    // are checked like any existing stream's.
                    Err(error) => js
                        .get_stream(&self.name)
                        .await
                        .map_err(|_| NatsError::jetstream("creating the stream", error))?,
                };
                self.checked(stream).await
            }
            Err(error) => Err(NatsError::jetstream("looking up the stream", error)),
        }
    }

    /// The info of an existing stream, once its settings are checked.
    async fn checked(&self, mut existing: stream::Stream) -> Result<stream::Info, NatsError> {
        let info = existing
            .info()
            .await
            .map_err(|e| NatsError::jetstream("reading the stream's info", e))?
            .clone();
        self.check(&info.config)?;
        Ok(info)
    }

    pub(crate) fn check(&self, found: &stream::Config) -> Result<(), NatsError> {
        let problem = |p: String| NatsError::IncompatibleStream {
            stream: self.name.clone(),
            problem: p,
        };
        let wanted = format!("{ROOT}.>");
        if !found.subjects.iter().any(|s| s == &wanted || s == ">") {
            return Err(problem(format!(
                "subjects are {:?}, which do not take `{wanted}`",
                found.subjects
            )));
        }
        if found.storage != stream::StorageType::File {
            return Err(problem(format!(
                "storage is {:?}, not file (events would not survive a server restart)",
                found.storage
            )));
        }
        if found.retention != stream::RetentionPolicy::Limits {
            return Err(problem(format!(
                "retention is {:?}, not limits (events would be removed once one consumer took them)",
                found.retention
            )));
        }
        if found.no_ack {
            return Err(problem(
                "no_ack is set (publishes are never acknowledged, so nothing is known stored)"
                    .into(),
            ));
        }
        if found.sealed {
            return Err(problem(
                "the stream is sealed (it takes no new messages)".into(),
            ));
        }
        if found.duplicate_window.is_zero() {
            return Err(problem(
                "the duplicate window is zero (a re-published event would be stored twice)".into(),
            ));
        }
        Ok(())
    }
}

/// Asks the server's JetStream API for its account info (`$JS.API.INFO`): no responder, or
/// an error answer, means no JetStream for this connection. (Read as plain JSON: the
/// answer's shape differs between server versions.)
async fn check_jetstream(js: &jetstream::Context, server: &str) -> Result<(), NatsError> {
    let no_jetstream = |reason: String| NatsError::NoJetStream {
        url: crate::redact(server),
        reason: crate::redact(&reason),
    };
    let answer = js
        .client()
        .request("$JS.API.INFO", bytes::Bytes::new())
        .await
        .map_err(|e| match e.kind() {
            async_nats::RequestErrorKind::NoResponders => {
                no_jetstream("no JetStream API answers".into())
            }
            _ => NatsError::jetstream("asking for the JetStream account info", e),
        })?;
    let value: serde_json::Value = serde_json::from_slice(&answer.payload)
        .map_err(|e| no_jetstream(format!("unreadable answer: {e}")))?;
    if let Some(error) = value.get("error") {
        return Err(no_jetstream(
            error
                .get("description")
                .and_then(|d| d.as_str())
                .unwrap_or("the JetStream API answered with an error")
                .to_owned(),
        ));
    }
    Ok(())
}
