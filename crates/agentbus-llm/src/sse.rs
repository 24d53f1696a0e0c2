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
//! Written here rather than taken from a crate: it is on the hot path of every token, and
//! the crates available either allocate an owned `String` per field or do not handle a CR
//! split from its LF across chunks.

use std::borrow::Cow;

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
#[derive(Debug, Default)]
pub struct SseDecoder {
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
    /// A fresh decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last `retry:` value the stream sent, in milliseconds.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Decodes `chunk`, calling `on_event` for every event it completes.
    pub fn feed<F: FnMut(SseEvent<'_>)>(&mut self, mut chunk: &[u8], on_event: &mut F) {
        if !self.started {
            // Skip a UTF-8 BOM; wait for more bytes while the chunk could still be one.
            let bom = b"\xEF\xBB\xBF";
            let mut head = std::mem::take(&mut self.partial);
            head.extend_from_slice(chunk);
            if head.len() < bom.len() && bom.starts_with(&head) {
                self.partial = head;
                return;
            }
            self.started = true;
            let start = if head.starts_with(bom) { bom.len() } else { 0 };
            let head = head.split_off(start);
            self.scanned = 0;
            self.process_owned(head, on_event);
            return;
        }
        if self.skip_lf && !chunk.is_empty() {
            self.skip_lf = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        if self.partial.is_empty() {
            // Fast path: lines straight from the chunk, only the tail is copied.
            let consumed = self.process_lines(chunk, 0, on_event);
            self.partial.extend_from_slice(&chunk[consumed..]);
            self.scanned = self.partial.len();
        } else {
            let mut buf = std::mem::take(&mut self.partial);
            buf.extend_from_slice(chunk);
            self.process_owned(buf, on_event);
        }
    }

    /// Processes `buf` (which starts at a line start); keeps the unterminated tail.
    fn process_owned<F: FnMut(SseEvent<'_>)>(&mut self, mut buf: Vec<u8>, on_event: &mut F) {
        let from = self.scanned;
        let consumed = self.process_lines(&buf, from, on_event);
        buf.drain(..consumed);
        self.scanned = buf.len();
        self.partial = buf;
    }

    /// Handles every complete line of `buf`; `scan_from` bytes of the first line are
    /// known to hold no terminator. Returns how many bytes were consumed.
    fn process_lines<F: FnMut(SseEvent<'_>)>(
        &mut self,
        buf: &[u8],
        scan_from: usize,
        on_event: &mut F,
    ) -> usize {
        let mut line_start = 0;
        let mut search = scan_from;
        loop {
            let Some(offset) = find_line_end(&buf[search..]) else {
                return line_start;
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
            self.process_line(line, on_event);
            line_start = next;
            search = next;
        }
    }

    fn process_line<F: FnMut(SseEvent<'_>)>(&mut self, line: &[u8], on_event: &mut F) {
        if line.is_empty() {
            self.dispatch(on_event);
            return;
        }
        if line[0] == b':' {
            return;
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
    pub fn finish<F: FnMut(SseEvent<'_>)>(&mut self, on_event: &mut F) -> bool {
        let dropped = !self.partial.is_empty();
        self.partial.clear();
        self.scanned = 0;
        self.dispatch(on_event);
        dropped
    }

    /// Decodes a whole body at once into owned events (tests, recorded files).
    pub fn decode_all(body: &[u8]) -> Vec<OwnedSseEvent> {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        let mut push = |event: SseEvent<'_>| events.push(event.to_owned_event());
        decoder.feed(body, &mut push);
        decoder.finish(&mut push);
        events
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
            decoder.feed(chunk, &mut push);
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
        decoder.feed(body, &mut |e: SseEvent<'_>| events.push(e.to_owned_event()));
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
        let events = SseDecoder::decode_all(b"data: one\ndata:two\ndata\n\n");
        assert_eq!(data_of(&events), ["one\ntwo\n"]);
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        let events = SseDecoder::decode_all(b"event: ping\n\ndata: x\n\n");
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
        decoder.feed(b"data: a\n\ndata: {\"cut", &mut push);
        assert!(decoder.finish(&mut push));
        assert_eq!(data_of(&events), ["a"]);
    }
}
