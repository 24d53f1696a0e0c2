//! What the network engines share: one HTTP client with bounded waits, and server error
//! messages made safe to publish.
//!
//! Timeouts: connecting takes at most [`CONNECT_TIMEOUT`]; each read of a response (the
//! headers, then every body chunk) at most [`READ_TIMEOUT`], so a server that accepts and
//! then says nothing fails the call instead of stalling the turn.

use std::time::Duration;

use agentbus_llm::ApiKey;
use agentbus_llm::redact::{Redactor, mask_urls_in};

use crate::error::VoiceError;

/// The longest wait for a connection (DNS, TCP, TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest silence while waiting for a response's headers or its next body chunk.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this much of an error body is kept in a message.
const MESSAGE_CHARS: usize = 300;

/// An HTTP client with [`CONNECT_TIMEOUT`] and [`READ_TIMEOUT`].
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
        // Only a TLS backend that cannot initialise fails here; the default client then
        // still works without the timeouts' builder options.
        .unwrap_or_default()
}

/// The error of `engine` for a failed request, a failed read or an error status, with
/// the key, bearer tokens and URL passwords taken out of the text.
pub(crate) fn remote_error(
    engine: &str,
    key: Option<&ApiKey>,
    reason: impl Into<String>,
    recoverable: bool,
) -> VoiceError {
    let reason = reason.into();
    let redactor = key.map_or_else(Redactor::new, |key| Redactor::with_key(key.expose()));
    VoiceError::Remote {
        engine: engine.to_owned(),
        reason: mask_urls_in(&redactor.redact(&reason)).into_owned(),
        recoverable,
    }
}

/// The error for an HTTP error `status` with response `body`: the server's own
/// `error.message` when it sends the OpenAI error shape, else the start of the body.
/// 429 and 5xx are recoverable (the next turn may work).
pub(crate) fn status_error(
    engine: &str,
    key: Option<&ApiKey>,
    status: reqwest::StatusCode,
    body: &[u8],
) -> VoiceError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| {
            String::from_utf8_lossy(body)
                .chars()
                .take(MESSAGE_CHARS)
                .collect()
        });
    let recoverable = status.as_u16() == 429 || status.is_server_error();
    remote_error(
        engine,
        key,
        format!("HTTP {status}: {message}"),
        recoverable,
    )
}

/// At most `limit` bytes of `response`'s body: the bytes and whether more were cut off.
/// A broken connection is an error.
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// The error for a response with an error status, its body read up to 64 KiB.
pub(crate) async fn failed_response(
    engine: &str,
    key: Option<&ApiKey>,
    response: reqwest::Response,
) -> VoiceError {
    let status = response.status();
    let body = read_bounded(response, 64 * 1024)
        .await
        .map(|(body, _)| body)
        .unwrap_or_default();
    status_error(engine, key, status, &body)
}
