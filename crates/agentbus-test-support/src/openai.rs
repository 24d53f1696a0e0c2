//! OpenAI-compatible Chat Completions stream pieces: the JSON chunks, and replies that
//! stream them as SSE (`data: {chunk}\n\n` … `data: [DONE]\n\n`).
//!
//! # Examples
//!
//! ```
//! use agentbus_test_support::openai::{chunk, sse_body, usage};
//! use serde_json::json;
//!
//! let body = sse_body(
//!     &[
//!         chunk(json!({"role": "assistant", "content": "hi"}), None),
//!         chunk(json!({}), Some("stop")),
//!         usage(42, 2),
//!     ],
//!     true,
//! );
//! let text = String::from_utf8(body).unwrap();
//! assert!(text.starts_with("data: {"));
//! assert!(text.ends_with("data: [DONE]\n\n"));
//! ```

use std::time::Duration;

use serde_json::{Value, json};

use crate::server::{Framing, Reply};

/// A `chat.completion.chunk` of model `fake-model` with one choice: `delta`, and
/// `finish_reason` (`null` when `None`). Its id is `c1`; see [`chunk_with_id`].
pub fn chunk(delta: Value, finish: Option<&str>) -> Value {
    chunk_with_id("c1", delta, finish)
}

/// [`chunk`] with the given response id.
pub fn chunk_with_id(id: &str, delta: Value, finish: Option<&str>) -> Value {
    json!({"id": id, "object": "chat.completion.chunk", "model": "fake-model",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

/// The final usage chunk (no choices): `prompt` input and `completion` output tokens.
/// Its id is `c1`; see [`usage_with_id`].
pub fn usage(prompt: u64, completion: u64) -> Value {
    usage_with_id("c1", prompt, completion)
}

/// [`usage`] with the given response id.
pub fn usage_with_id(id: &str, prompt: u64, completion: u64) -> Value {
    json!({"id": id, "object": "chat.completion.chunk", "model": "fake-model", "choices": [],
           "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                     "total_tokens": prompt + completion}})
}

/// One SSE frame: `data: {value}\n\n`.
pub fn frame(value: &Value) -> String {
    format!("data: {value}\n\n")
}

/// The SSE body of `chunks`, ended by `data: [DONE]` when `done`.
pub fn sse_body(chunks: &[Value], done: bool) -> Vec<u8> {
    let mut out: String = chunks.iter().map(frame).collect();
    if done {
        out.push_str("data: [DONE]\n\n");
    }
    out.into_bytes()
}

/// A reply streaming `chunks` then `[DONE]` in one write, the connection closed after.
pub fn reply(chunks: &[Value]) -> Reply {
    stream(vec![sse_body(chunks, true)])
}

/// A reply streaming `chunks` without `[DONE]`, then closing the connection: a stream
/// cut mid-way.
pub fn reply_cut(chunks: &[Value]) -> Reply {
    stream(vec![sse_body(chunks, false)])
}

/// Like [`reply`] (`done`) or [`reply_cut`] (not `done`), but each frame is written in
/// two halves, flushed separately, to exercise a client's buffering across reads.
pub fn reply_split(chunks: &[Value], done: bool) -> Reply {
    let mut pieces = Vec::new();
    for chunk in chunks {
        let frame = frame(chunk);
        let (a, b) = frame.as_bytes().split_at(frame.len() / 2);
        pieces.push(a.to_vec());
        pieces.push(b.to_vec());
    }
    if done {
        pieces.push(b"data: [DONE]\n\n".to_vec());
    }
    stream(pieces)
}

/// A reply streaming `chunks` (no `[DONE]`), then holding the connection open without
/// ever ending the body: a model that stalls mid-answer.
pub fn reply_then_stall(chunks: &[Value]) -> Reply {
    Reply::Stream {
        pieces: vec![(Duration::ZERO, sse_body(chunks, false))],
        framing: Framing::Open,
    }
}

fn stream(pieces: Vec<Vec<u8>>) -> Reply {
    Reply::Stream {
        pieces: pieces.into_iter().map(|p| (Duration::ZERO, p)).collect(),
        framing: Framing::Close,
    }
}
