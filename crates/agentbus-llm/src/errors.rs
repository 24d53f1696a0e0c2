//! Mapping provider failures (HTTP statuses, in-band error types) to
//! [`StreamErrorKind`]s.
//!
//! Server text is untrusted: every message and code taken from a server here is cut to
//! [`MAX_SERVER_MESSAGE_CHARS`] and passed through [`redact_secrets`] (an echoed
//! `Bearer …`, `sk-…` or `x-api-key` value never reaches an error). [`HttpModel`]
//! additionally removes the exact key it sent.
//!
//! [`HttpModel`]: crate::HttpModel

use agentbus_events::stream::{StreamError, StreamErrorKind};

use crate::redact::redact_secrets;

/// The longest server message kept in an error, in characters (the rest is cut, marked
/// with `…`).
pub const MAX_SERVER_MESSAGE_CHARS: usize = 2000;

/// A server's message made safe to show: cut to [`MAX_SERVER_MESSAGE_CHARS`], credentials
/// redacted.
///
/// ```
/// use agentbus_llm::errors::server_text;
/// assert_eq!(
///     server_text("Incorrect API key provided: Bearer sk-abcdefgh12345678"),
///     "Incorrect API key provided: Bearer [REDACTED]"
/// );
/// ```
pub fn server_text(text: &str) -> String {
    let cut = match text.char_indices().nth(MAX_SERVER_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    };
    redact_secrets(&cut).into_owned()
}

/// The kind of error an HTTP status means.
pub fn kind_for_status(status: u16) -> StreamErrorKind {
    match status {
        429 => StreamErrorKind::RateLimit,
        503 | 529 => StreamErrorKind::Overloaded,
        401 | 403 => StreamErrorKind::Auth,
        408 | 504 => StreamErrorKind::Timeout,
        400..=499 => StreamErrorKind::BadRequest,
        _ => StreamErrorKind::Server,
    }
}

/// The kind of error a provider's error `type`/`code` string means (OpenAI
/// `rate_limit_exceeded`, `server_error`, `invalid_request_error`; Anthropic
/// `overloaded_error`, `authentication_error`, ...). Unknown strings are server errors.
pub fn kind_for_error_type(error_type: &str) -> StreamErrorKind {
    let t = error_type.to_ascii_lowercase();
    if t.contains("rate_limit") || t.contains("quota") || t.contains("too_many") {
        StreamErrorKind::RateLimit
    } else if t.contains("overloaded") || t.contains("unavailable") || t.contains("capacity") {
        StreamErrorKind::Overloaded
    } else if t.contains("auth") || t.contains("permission") || t.contains("api_key") {
        StreamErrorKind::Auth
    } else if t.contains("timeout") {
        StreamErrorKind::Timeout
    } else if t.contains("invalid")
        || t.contains("not_found")
        || t.contains("context_length")
        || t.contains("too_large")
        || t.contains("bad_request")
    {
        StreamErrorKind::BadRequest
    } else {
        StreamErrorKind::Server
    }
}

/// A [`StreamError`] from a provider's in-band error object. `insufficient_quota` is a
/// rate-limit kind that retrying does not cure.
pub fn in_band_error(error_type: &str, code: Option<&str>, message: &str) -> StreamError {
    let key = if error_type.is_empty() {
        code.unwrap_or("")
    } else {
        error_type
    };
    let mut kind = kind_for_error_type(key);
    if kind == StreamErrorKind::Server
        && let Some(code) = code
    {
        kind = kind_for_error_type(code);
    }
    let message = if message.is_empty() {
        "the provider reported an error".to_owned()
    } else {
        server_text(message)
    };
    let mut error = StreamError::new(kind, message);
    let code = code.filter(|c| !c.is_empty()).unwrap_or(error_type);
    if !code.is_empty() {
        error = error.with_code(server_text(code));
    }
    if code.contains("insufficient_quota") {
        error.recoverable = false;
    }
    error
}

/// A [`StreamError`] for a non-2xx HTTP response: the kind from the status, refined by
/// the error object in the body when there is one (OpenAI and Anthropic both send
/// `{"error": {"type", "message", "code"?}}`).
pub fn http_error(status: u16, body: &str) -> StreamError {
    #[derive(serde::Deserialize)]
    struct Body {
        error: Option<ErrorObject>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorObject {
        #[serde(default, rename = "type")]
        kind: Option<String>,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        code: Option<serde_json::Value>,
    }
    let kind = kind_for_status(status);
    let parsed = serde_json::from_str::<Body>(body)
        .ok()
        .and_then(|b| b.error);
    let (message, code) = match parsed {
        Some(error) => {
            let code = match error.code {
                Some(serde_json::Value::String(s)) => Some(s),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => error.kind,
            };
            (error.message.unwrap_or_default(), code)
        }
        None => (body.chars().take(300).collect::<String>(), None),
    };
    let message = if message.trim().is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", server_text(message.trim()))
    };
    let mut error = StreamError::new(kind, message).with_status(status);
    if let Some(code) = code {
        if code.contains("insufficient_quota") {
            error.recoverable = false;
        }
        error = error.with_code(server_text(&code));
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(kind_for_status(429), StreamErrorKind::RateLimit);
        assert_eq!(kind_for_status(529), StreamErrorKind::Overloaded);
        assert_eq!(kind_for_status(401), StreamErrorKind::Auth);
        assert_eq!(kind_for_status(404), StreamErrorKind::BadRequest);
        assert_eq!(kind_for_status(500), StreamErrorKind::Server);
    }

    #[test]
    fn http_error_reads_the_body() {
        let e = http_error(
            400,
            r#"{"error":{"message":"bad model","type":"invalid_request_error","code":"model_not_found"}}"#,
        );
        assert_eq!(e.kind, StreamErrorKind::BadRequest);
        assert_eq!(e.status, Some(400));
        assert_eq!(e.code.as_deref(), Some("model_not_found"));
        assert!(!e.recoverable);
        let e = http_error(
            429,
            r#"{"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
        );
        assert_eq!(e.kind, StreamErrorKind::RateLimit);
        assert!(!e.recoverable);
        let e = http_error(503, "upstream down");
        assert!(e.recoverable);
        assert!(e.message.contains("upstream down"));
    }

    #[test]
    fn echoed_keys_never_reach_the_error() {
        let body = r#"{"error":{"message":"Incorrect API key provided: Bearer sk-proj-SECRETSECRET1234. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","code":"invalid_api_key"}}"#;
        let e = http_error(401, body);
        assert!(!e.message.contains("SECRETSECRET"), "{}", e.message);
        assert_eq!(e.code.as_deref(), Some("invalid_api_key"));
        let e = http_error(401, "x-api-key: sk-ant-api03-SECRETSECRET rejected");
        assert!(!e.message.contains("SECRETSECRET"), "{}", e.message);
        let e = in_band_error("authentication_error", None, "bad key sk-ant-SECRETSECRET");
        assert!(!e.message.contains("SECRETSECRET"), "{}", e.message);
        let long = "x".repeat(10_000);
        assert!(http_error(500, &long).message.chars().count() < 400);
        let e = in_band_error("server_error", None, &long);
        assert!(e.message.chars().count() <= MAX_SERVER_MESSAGE_CHARS + 1);
    }

    #[test]
    fn in_band_types_map_to_kinds() {
        assert_eq!(
            in_band_error("overloaded_error", None, "x").kind,
            StreamErrorKind::Overloaded
        );
        assert_eq!(
            in_band_error("", Some("rate_limit_exceeded"), "x").kind,
            StreamErrorKind::RateLimit
        );
        assert_eq!(
            in_band_error("authentication_error", None, "x").kind,
            StreamErrorKind::Auth
        );
        assert_eq!(
            in_band_error("server_error", None, "x").kind,
            StreamErrorKind::Server
        );
    }
}
