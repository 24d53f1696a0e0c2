//! Server-Sent Events decoding (the WHATWG `text/event-stream` rules), incremental and
//! linear-time.
//!
//! [`SseDecoder`] takes the response body in chunks split anywhere (inside a line, inside
//! a CRLF pair, inside a UTF-8 character) and hands out complete events:
//!
//! - lines end with LF, CR or CRLF (a CR at the end of a chunk waits for the next chunk to
//!   see whether an LF follows);
//! - lines starting with `:` are comments;
//! - `field:value` with one optional space after the colon stripped; a line with no colon
//!   is a field with an empty value;
//! - `data` lines accumulate, joined with `\n`; `event` sets the type; `id` sets the last
//!   event id (ignored when it contains NUL); `retry` sets the reconnection time when it is
//!   all digits; other fields are ignored;
//! - a blank line dispatches the event, unless no `data` line was seen;
//! - bytes are only interpreted once a whole line is in, so a UTF-8 character split
//!   across chunks is reassembled; invalid UTF-8 is replaced with U+FFFD.
//!
//! Every input byte is scanned once: a partial line is kept and scanning resumes where it
//! stopped. A leading UTF-8 byte order mark is skipped.
//!
//! # Limits
//!
//! A server controls what the decoder buffers, so both buffers are bounded
//! ([`SseLimits`]): a line (terminator excluded) may hold at most
//! [`SseLimits::max_line_bytes`] (default 16 MiB) and an event's joined data at most
//! [`SseLimits::max_event_bytes`] (default 16 MiB), so the decoder never holds much more
//! than the two together. Past either, [`SseDecoder::feed`] returns an [`SseError`], drops
//! what it buffered, and refuses further input.
//!
//! Written here rather than taken from a crate: it is on the hot path of every token, and
//! the crates available either allocate an owned `String` per field or do not handle a CR
//! split from its LF across chunks.

use std::borrow::Cow;

use thiserror::Error;

/// The default of [`SseLimits::max_line_bytes`]: 16 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// The default of [`SseLimits::max_event_bytes`]: 16 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// How much an [`SseDecoder`] may buffer. The defaults are far above what a provider
/// sends (the largest legitimate events, the Responses API's final `response.completed`
/// echoing the whole response, are a few MB) and far below what hurts a machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SseLimits {
    /// The longest line, in bytes, its terminator excluded.
    pub max_line_bytes: usize,
    /// The largest event: the bytes of its `data` lines, newlines included.
    pub max_event_bytes: usize,
}

impl Default for SseLimits {
    /// [`DEFAULT_MAX_LINE_BYTES`] and [`DEFAULT_MAX_EVENT_BYTES`].
    fn default() -> Self {
        Self {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
        }
    }
}

/// The stream broke a limit of [`SseLimits`]. The decoder is then unusable: the stream
/// must be abandoned (retrying the same request would get the same stream).
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SseError {
    /// A line grew past [`SseLimits::max_line_bytes`] (a server sending data without line
    /// ends).
    #[error("an event-stream line is longer than {limit} bytes (the limit)")]
    LineTooLong {
        /// The limit.
        limit: usize,
    },
    /// An event's data grew past [`SseLimits::max_event_bytes`] (`data:` lines without the
    /// blank line that ends an event).
    #[error("an event-stream event holds more than {limit} bytes of data (the limit)")]
    EventTooLarge {
        /// The limit.
        limit: usize,
    },
}

/// One dispatched event, borrowing the decoder's buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field; empty when the event had none (the spec's default `message`).
    pub event: &'a str,
    /// The data lines joined with `\n`.
    pub data: &'a str,
    /// The last event id seen so far in the stream (empty when none).
    pub id: &'a str,
}

impl SseEvent<'_> {
    /// The event type, with the spec's default `message` when none was given.
    pub fn event_type(&self) -> &str {
        if self.event.is_empty() {
            "message"
        } else {
            self.event
        }
    }

    /// An owned copy.
    pub fn to_owned_event(&self) -> OwnedSseEvent {
        OwnedSseEvent {
            event: self.event.to_owned(),
            data: self.data.to_owned(),
            id: self.id.to_owned(),
        }
    }
}

/// An owned [`SseEvent`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedSseEvent {
    /// The `event:` field (empty when none).
    pub event: String,
    /// The data.
    pub data: String,
    /// The last event id.
    pub id: String,
}

impl OwnedSseEvent {
    /// The event type, with the spec's default `message` when none was given.
    pub fn event_type(&self) -> &str {
        if self.event.is_empty() {
            "message"
        } else {
            &self.event
        }
    }
}

/// Incremental SSE decoder. Feed it body chunks with [`SseDecoder::feed`]; call
/// [`SseDecoder::finish`] at the end of the body.
///
/// `feed` takes arbitrary bytes in chunks split anywhere, so it is also the entry point
/// for fuzzing the framing.
///
/// ```
/// use agentbus_llm::sse::{SseDecoder, SseError, SseLimits};
///
/// let mut decoder = SseDecoder::new();
/// let mut data = Vec::new();
/// decoder.feed(b"data: hel", &mut |e| data.push(e.data.to_owned())).unwrap();
/// decoder.feed(b"lo\n\n", &mut |e| data.push(e.data.to_owned())).unwrap();
/// assert_eq!(data, ["hello"]);
///
/// let limits = SseLimits { max_line_bytes: 8, ..SseLimits::default() };
/// let mut decoder = SseDecoder::with_limits(limits);
/// let error = decoder.feed(b"data: no line end in sight", &mut |_| {}).unwrap_err();
/// assert_eq!(error, SseError::LineTooLong { limit: 8 });
/// ```
#[derive(Debug, Default)]
pub struct SseDecoder {
    limits: SseLimits,
    /// Set once a limit was broken: every later call returns it.
    failed: Option<SseError>,
    /// The unterminated tail of the input (a partial line).
    partial: Vec<u8>,
    /// How many bytes of `partial` are known to hold no line terminator.
    scanned: usize,
    /// The previous chunk ended with CR: an LF at the start of the next one belongs to it.
    skip_lf: bool,
    /// Whether the start of the stream (a possible BOM) has been handled.
    started: bool,
    /// The data buffer (lines joined with `\n`, with a trailing `\n`).
    data: Vec<u8>,
    /// Whether any `data` field was seen since the last dispatch.
    has_data: bool,
    /// The event type buffer.
    event: Vec<u8>,
    /// The last event id.
    last_id: String,
    /// The reconnection time the server asked for, in milliseconds.
    retry_ms: Option<u64>,
}

impl SseDecoder {
    /// A fresh decoder with the default [`SseLimits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh decoder with `limits`.
    pub fn with_limits(limits: SseLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> SseLimits {
        self.limits
    }

    /// Records `error`, frees the buffers and returns it.
    fn fail(&mut self, error: SseError) -> SseError {
        self.failed = Some(error);
        self.partial = Vec::new();
        self.data = Vec::new();
        self.event = Vec::new();
        self.scanned = 0;
        self.has_data = false;
        error
    }

    /// Checks the length of an unterminated tail.
    fn check_tail(&mut self, tail: usize) -> Result<(), SseError> {
        if tail > self.limits.max_line_bytes {
            return Err(self.fail(SseError::LineTooLong {
                limit: self.limits.max_line_bytes,
            }));
        }
        Ok(())
    }

    /// The last `retry:` value the stream sent, in milliseconds.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Decodes `chunk`, calling `on_event` for every event it completes.
    ///
    /// # Errors
    ///
    /// [`SseError`] when the stream breaks a limit (this call or an earlier one); the
    /// events completed before the violation were handed out.
    pub fn feed<F: FnMut(SseEvent<'_>)>(
        &mut self,
        mut chunk: &[u8],
        on_event: &mut F,
    ) -> Result<(), SseError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if !self.started {
            // Skip a UTF-8 BOM; wait for more bytes while the chunk could still be one.
            let bom = b"\xEF\xBB\xBF";
            let mut head = std::mem::take(&mut self.partial);
            head.extend_from_slice(chunk);
            if head.len() < bom.len() && bom.starts_with(&head) {
                self.partial = head;
                return Ok(());
            }
            self.started = true;
            let start = if head.starts_with(bom) { bom.len() } else { 0 };
            let head = head.split_off(start);
            self.scanned = 0;
            return self.process_owned(head, on_event);
        }
        if self.skip_lf && !chunk.is_empty() {
            self.skip_lf = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        if self.partial.is_empty() {
            // Fast path: lines straight from the chunk, only the tail is copied.
            let consumed = self.process_lines(chunk, 0, on_event)?;
            self.check_tail(chunk.len() - consumed)?;
            self.partial.extend_from_slice(&chunk[consumed..]);
            self.scanned = self.partial.len();
            Ok(())
        } else {
            let mut buf = std::mem::take(&mut self.partial);
            buf.extend_from_slice(chunk);
            self.process_owned(buf, on_event)
        }
    }

    /// Processes `buf` (which starts at a line start); keeps the unterminated tail.
    fn process_owned<F: FnMut(SseEvent<'_>)>(
        &mut self,
        mut buf: Vec<u8>,
        on_event: &mut F,
    ) -> Result<(), SseError> {
        let from = self.scanned;
        let consumed = self.process_lines(&buf, from, on_event)?;
        self.check_tail(buf.len() - consumed)?;
        buf.drain(..consumed);
        self.scanned = buf.len();
        self.partial = buf;
        Ok(())
    }

    /// Handles every complete line of `buf`; `scan_from` bytes of the first line are
    /// known to hold no terminator. Returns how many bytes were consumed.
    fn process_lines<F: FnMut(SseEvent<'_>)>(
        &mut self,
        buf: &[u8],
        scan_from: usize,
        on_event: &mut F,
    ) -> Result<usize, SseError> {
        let mut line_start = 0;
        let mut search = scan_from;
        loop {
            let Some(offset) = find_line_end(&buf[search..]) else {
                return Ok(line_start);
            };
            let end = search + offset;
            let line = &buf[line_start..end];
            let next = if buf[end] == b'\r' {
                match buf.get(end + 1) {
                    Some(b'\n') => end + 2,
                    Some(_) => end + 1,
                    None => {
                        // A CR ending the chunk: an LF may start the next one.
                        self.skip_lf = true;
                        end + 1
                    }
                }
            } else {
                end + 1
            };
            if line.len() > self.limits.max_line_bytes {
                return Err(self.fail(SseError::LineTooLong {
                    limit: self.limits.max_line_bytes,
                }));
            }
            self.process_line(line, on_event)?;
            line_start = next;
            search = next;
        }
    }

    fn process_line<F: FnMut(SseEvent<'_>)>(
        &mut self,
        line: &[u8],
        on_event: &mut F,
    ) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(on_event);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                let value = value.strip_prefix(b" ").unwrap_or(value);
                (&line[..colon], value)
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.data.len() + value.len() >= self.limits.max_event_bytes {
                    return Err(self.fail(SseError::EventTooLarge {
                        limit: self.limits.max_event_bytes,
                    }));
                }
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            b"id" if !value.contains(&0) => {
                self.last_id = String::from_utf8_lossy(value).into_owned();
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // All digits; only an absurdly long value fails to parse.
                self.retry_ms = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch<F: FnMut(SseEvent<'_>)>(&mut self, on_event: &mut F) {
        if !self.has_data {
            self.event.clear();
            return;
        }
        if self.data.last() == Some(&b'\n') {
            self.data.pop();
        }
        {
            let data = utf8(&self.data);
            let event = utf8(&self.event);
            on_event(SseEvent {
                event: &event,
                data: &data,
                id: &self.last_id,
            });
        }
        self.data.clear();
        self.event.clear();
        self.has_data = false;
    }

    /// Ends the body. A final event whose lines were all terminated but which lacks the
    /// closing blank line is dispatched (several servers omit it); an unterminated last
    /// line is dropped, since the body may have been cut inside it. Returns whether such a
    /// cut line was dropped.
    /// After a limit error it does nothing and returns `false`.
    pub fn finish<F: FnMut(SseEvent<'_>)>(&mut self, on_event: &mut F) -> bool {
        if self.failed.is_some() {
            return false;
        }
        let dropped = !self.partial.is_empty();
        self.partial.clear();
        self.scanned = 0;
        self.dispatch(on_event);
        dropped
    }

    /// Decodes a whole body at once into owned events (tests, recorded files), with the
    /// default limits.
    ///
    /// # Errors
    ///
    /// [`SseError`] when the body breaks a limit.
    pub fn decode_all(body: &[u8]) -> Result<Vec<OwnedSseEvent>, SseError> {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        let mut push = |event: SseEvent<'_>| events.push(event.to_owned_event());
        decoder.feed(body, &mut push)?;
        decoder.finish(&mut push);
        Ok(events)
    }
}

/// The bytes as text: borrowed when valid UTF-8 (the common case, checked by the fast
/// validator), else with U+FFFD replacements.
fn utf8(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The offset of the first CR or LF in `bytes`.
fn find_line_end(bytes: &[u8]) -> Option<usize> {
    memchr::memchr2(b'\n', b'\r', bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_split(body: &[u8], split: usize) -> Vec<OwnedSseEvent> {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        let mut push = |event: SseEvent<'_>| events.push(event.to_owned_event());
        for chunk in body.chunks(split.max(1)) {
            decoder.feed(chunk, &mut push).unwrap();
        }
        decoder.finish(&mut push);
        events
    }

    fn data_of(events: &[OwnedSseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn lf_crlf_and_cr_line_endings() {
        for body in [
            &b"data: a\n\ndata: b\n\n"[..],
            b"data: a\r\n\r\ndata: b\r\n\r\n",
            b"data: a\r\rdata: b\r\r",
        ] {
            for split in 1..body.len() {
                assert_eq!(
                    data_of(&decode_split(body, split)),
                    ["a", "b"],
                    "{body:?} split {split}"
                );
            }
        }
    }

    #[test]
    fn comments_fields_and_colon_without_space() {
        let body = b": keep-alive\nevent: delta\nid: 7\nretry: 1500\ndata:{\"x\":1}\n\n";
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        decoder
            .feed(body, &mut |e: SseEvent<'_>| events.push(e.to_owned_event()))
            .unwrap();
        assert_eq!(
            events,
            [OwnedSseEvent {
                event: "delta".into(),
                data: "{\"x\":1}".into(),
                id: "7".into()
            }]
        );
        assert_eq!(decoder.retry_ms(), Some(1500));
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let events = SseDecoder::decode_all(b"data: one\ndata:two\ndata\n\n").unwrap();
        assert_eq!(data_of(&events), ["one\ntwo\n"]);
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        let events = SseDecoder::decode_all(b"event: ping\n\ndata: x\n\n").unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, "");
        assert_eq!(events[0].event_type(), "message");
    }

    #[test]
    fn utf8_split_inside_a_character() {
        let body = "data: héllo ☃ 🎉\n\n".as_bytes();
        for split in 1..body.len() {
            assert_eq!(data_of(&decode_split(body, split)), ["héllo ☃ 🎉"]);
        }
    }

    #[test]
    fn bom_is_skipped_and_final_event_without_blank_line_is_kept() {
        let events = decode_split(b"\xEF\xBB\xBFdata: a\n\ndata: [DONE]\n", 1);
        assert_eq!(data_of(&events), ["a", "[DONE]"]);
    }

    #[test]
    fn unterminated_last_line_is_dropped() {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        let mut push = |e: SseEvent<'_>| events.push(e.to_owned_event());
        decoder.feed(b"data: a\n\ndata: {\"cut", &mut push).unwrap();
        assert!(decoder.finish(&mut push));
        assert_eq!(data_of(&events), ["a"]);
    }

    #[test]
    fn a_line_without_an_end_is_refused_at_the_limit() {
        let limits = SseLimits {
            max_line_bytes: 64,
            max_event_bytes: 1024,
        };
        for piece in [1usize, 7, 64, 1000] {
            let mut decoder = SseDecoder::with_limits(limits);
            let mut events = Vec::new();
            let mut push = |e: SseEvent<'_>| events.push(e.to_owned_event());
            decoder.feed(b"data: ok\n\n", &mut push).unwrap();
            let long = vec![b'x'; 2000];
            let mut result = Ok(());
            for chunk in long.chunks(piece) {
                result = decoder.feed(chunk, &mut push);
                if result.is_err() {
                    break;
                }
            }
            assert_eq!(result, Err(SseError::LineTooLong { limit: 64 }), "{piece}");
            assert!(decoder.partial.capacity() == 0, "buffers freed");
            // Refused for good; what came before was handed out.
            assert!(decoder.feed(b"\n\ndata: b\n\n", &mut push).is_err());
            assert!(!decoder.finish(&mut push));
            assert_eq!(data_of(&events), ["ok"]);
        }
        // A long line inside one chunk, terminated, is refused too.
        let mut decoder = SseDecoder::with_limits(limits);
        let body = format!("data: {}\n\n", "y".repeat(100));
        assert!(decoder.feed(body.as_bytes(), &mut |_| {}).is_err());
    }

    #[test]
    fn data_lines_without_a_blank_line_are_refused_at_the_event_limit() {
        let limits = SseLimits {
            max_line_bytes: 64,
            max_event_bytes: 200,
        };
        let mut decoder = SseDecoder::with_limits(limits);
        let mut result = Ok(());
        for _ in 0..100 {
            result = decoder.feed(b"data: 0123456789\n", &mut |_| {});
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseError::EventTooLarge { limit: 200 }));
        assert!(decoder.data.capacity() == 0, "buffers freed");
        // Just under the limit is fine.
        let mut decoder = SseDecoder::with_limits(limits);
        let mut n = 0;
        for _ in 0..10 {
            decoder.feed(b"data: 0123456789\n", &mut |_| {}).unwrap();
        }
        decoder.feed(b"\n", &mut |_| n += 1).unwrap();
        assert_eq!(n, 1);
    }
}
