//! [`StreamLimits`]: how much of a server's stream the decoders hold before they refuse
//! it. See the crate docs' "Limits" section for every limit and timeout in one place.

use agentbus_events::stream::{StreamError, StreamErrorKind};

use crate::sse::{DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_LINE_BYTES, SseError, SseLimits};

/// The default of [`StreamLimits::max_response_bytes`]: 64 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// The default of [`StreamLimits::max_tool_calls`]: 1,024.
pub const DEFAULT_MAX_TOOL_CALLS: usize = 1024;
/// The default of [`StreamLimits::max_content_blocks`]: 4,096.
pub const DEFAULT_MAX_CONTENT_BLOCKS: usize = 4096;

/// Bounds on what one streamed response may make a decoder hold. A stream that breaks
/// one ends with a [`StreamErrorKind::Protocol`] error that is not recoverable (asking
/// again would get the same stream), and what was buffered is freed.
///
/// The defaults are far above anything a provider sends for a legitimate response and
/// far below what hurts a machine.
///
/// ```
/// use agentbus_llm::{Api, StreamDecoder, StreamEvent, StreamLimits};
///
/// let limits = StreamLimits { max_response_bytes: 4, ..StreamLimits::default() };
/// let body = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"too long\"}}]}\n\n";
/// let mut decoder = StreamDecoder::with_limits(Api::OpenAiChat, None, limits);
/// let mut out = Vec::new();
/// decoder.feed(body, &mut out);
/// let Some(StreamEvent::Error(error)) = out.last() else { panic!("{out:?}") };
/// assert!(!error.recoverable);
/// assert!(error.message.contains("4 bytes"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    /// The longest SSE line, in bytes (default 16 MiB).
    pub max_line_bytes: usize,
    /// The largest SSE event: its joined `data` lines, in bytes (default 16 MiB).
    pub max_event_bytes: usize,
    /// The most output one response may accumulate: text, reasoning, refusal and tool
    /// calls (ids, names, arguments), in bytes (default 64 MiB).
    pub max_response_bytes: usize,
    /// The most tool calls one response may open (default 1,024).
    pub max_tool_calls: usize,
    /// The most content blocks (Anthropic) one response may open (default 4,096).
    pub max_content_blocks: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_tool_calls: DEFAULT_MAX_TOOL_CALLS,
            max_content_blocks: DEFAULT_MAX_CONTENT_BLOCKS,
        }
    }
}

impl StreamLimits {
    /// The SSE part of these limits.
    pub fn sse(&self) -> SseLimits {
        SseLimits {
            max_line_bytes: self.max_line_bytes,
            max_event_bytes: self.max_event_bytes,
        }
    }
}

/// The terminal error for a broken limit: a protocol error, not recoverable.
pub(crate) fn limit_error(what: impl std::fmt::Display) -> StreamError {
    StreamError::new(
        StreamErrorKind::Protocol,
        format!("the server's stream was refused: {what}"),
    )
    .with_code("stream_limit_exceeded")
    .with_recoverable(false)
}

/// The terminal error for an SSE framing limit.
pub(crate) fn sse_limit_error(error: SseError) -> StreamError {
    limit_error(error)
}
