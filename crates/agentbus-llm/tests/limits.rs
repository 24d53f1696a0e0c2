//! The decoders' limits and arithmetic on server numbers, through the public entry points
//! a fuzz target uses (`StreamDecoder::feed` / `end`): arbitrary bytes never panic and
//! always end in exactly one terminal event; every limit ends the stream with a clear,
//! non-recoverable error.

mod common;

use agentbus_llm::{Api, StreamDecoder, StreamErrorKind, StreamEvent, StreamLimits};
use common::assert_one_terminal_last;
use proptest::prelude::*;
use serde_json::json;

fn decode(api: Api, limits: StreamLimits, body: &[u8], piece: usize) -> Vec<StreamEvent> {
    let mut decoder = StreamDecoder::with_limits(api, None, limits);
    let mut out = Vec::new();
    for chunk in body.chunks(piece.max(1)) {
        decoder.feed(chunk, &mut out);
    }
    decoder.end(&mut out);
    assert_one_terminal_last(api.as_str(), &out);
    out
}

fn limit_error(events: &[StreamEvent]) -> String {
    match events.last() {
        Some(StreamEvent::Error(e)) => {
            assert_eq!(e.kind, StreamErrorKind::Protocol, "{e:?}");
            assert!(!e.recoverable);
            assert_eq!(e.code.as_deref(), Some("stream_limit_exceeded"));
            e.message.clone()
        }
        other => panic!("expected a limit error, got {other:?}"),
    }
}

fn sse(chunks: impl IntoIterator<Item = serde_json::Value>) -> Vec<u8> {
    let mut body = String::new();
    for chunk in chunks {
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    body.into_bytes()
}

#[test]
fn too_many_tool_calls_are_refused() {
    let limits = StreamLimits {
        max_tool_calls: 16,
        ..StreamLimits::default()
    };
    let chat = sse((0..100).map(|i| {
        json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":i,"id":format!("c{i}"),"function":{"name":"f","arguments":"{}"}}]}}]})
    }));
    let events = decode(Api::OpenAiChat, limits, &chat, 97);
    assert!(limit_error(&events).contains("16 tool calls"));

    let responses = sse((0..100).map(|i| {
        json!({"type":"response.output_item.added","output_index":i,"item":{"type":"function_call","id":format!("fc_{i}"),"call_id":format!("c{i}"),"name":"f","arguments":""}})
    }));
    let events = decode(Api::OpenAiResponses, limits, &responses, 50);
    assert!(limit_error(&events).contains("16 tool calls"));
}

#[test]
fn too_many_content_blocks_are_refused() {
    let limits = StreamLimits {
        max_content_blocks: 32,
        ..StreamLimits::default()
    };
    let body = sse((0..100).flat_map(|i| {
        [
            json!({"type":"content_block_start","index":i,"content_block":{"type":"redacted_thinking"}}),
            json!({"type":"content_block_stop","index":i}),
        ]
    }));
    let events = decode(Api::AnthropicMessages, limits, &body, 64);
    assert!(limit_error(&events).contains("32 content blocks"));
}

#[test]
fn a_response_larger_than_the_limit_is_refused_whatever_it_holds() {
    let limits = StreamLimits {
        max_response_bytes: 1000,
        ..StreamLimits::default()
    };
    let piece = "x".repeat(100);
    let cases: [(Api, Vec<u8>); 4] = [
        (
            Api::OpenAiChat,
            sse((0..20).map(|_| json!({"choices":[{"index":0,"delta":{"content":piece}}]}))),
        ),
        (
            Api::OpenAiChat,
            sse((0..20).map(|_| json!({"choices":[{"index":0,"delta":{"reasoning_content":piece}}]}))),
        ),
        (
            Api::OpenAiChat,
            sse((0..20).map(|_| json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":piece}}]}}]}))),
        ),
        (
            Api::OpenAiResponses,
            sse((0..20).map(|_| json!({"type":"response.refusal.delta","delta":piece}))),
        ),
    ];
    for (api, body) in cases {
        let events = decode(api, limits, &body, 333);
        assert!(limit_error(&events).contains("1000 bytes"), "{api:?}");
        let output: usize = events
            .iter()
            .map(|e| match e {
                StreamEvent::TextDelta(d) => d.content.len(),
                StreamEvent::ReasoningDelta(d) => d.content.len(),
                StreamEvent::ToolCallDelta(d) => d.arguments_delta.len(),
                _ => 0,
            })
            .sum();
        assert!(output <= 1000, "{api:?}: {output}");
    }
}

#[test]
fn extreme_tool_call_indexes_do_not_overflow() {
    // Index u32::MAX, then fragments without an index: a new id asks for the next index.
    let body = sse([
        json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":u32::MAX,"id":"a","function":{"name":"f","arguments":"{}"}}]}}]}),
        json!({"choices":[{"index":0,"delta":{"tool_calls":[{"id":"b","function":{"name":"g","arguments":"{}"}}]}}]}),
        json!({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":u64::MAX,"completion_tokens":u64::MAX,"cost":-1.0}}),
    ]);
    let events = decode(Api::OpenAiChat, StreamLimits::default(), &body, 1000);
    let Some(StreamEvent::Finish(finish)) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(finish.input_tokens, u64::MAX);
    assert_eq!(finish.cost_usd, None, "a negative reported cost is ignored");
    // Responses: an item added without an output index after one at u32::MAX.
    let body = sse([
        json!({"type":"response.output_item.added","output_index":u32::MAX,"item":{"type":"function_call","id":"fc_1","call_id":"c1","name":"f","arguments":""}}),
        json!({"type":"response.output_item.added","item":{"type":"function_call","id":"fc_2","call_id":"c2","name":"g","arguments":""}}),
        json!({"type":"response.completed","response":{"status":"completed"}}),
    ]);
    let events = decode(Api::OpenAiResponses, StreamLimits::default(), &body, 1000);
    assert!(
        matches!(events.last(), Some(StreamEvent::Finish(_))),
        "{events:?}"
    );
}

#[test]
fn deeply_nested_json_is_a_protocol_error_not_a_stack_overflow() {
    let deep = format!("data: {}{}\n\n", "[".repeat(100_000), "]".repeat(100_000));
    for api in [
        Api::OpenAiChat,
        Api::OpenAiResponses,
        Api::AnthropicMessages,
    ] {
        let events = decode(api, StreamLimits::default(), deep.as_bytes(), 4096);
        let Some(StreamEvent::Error(e)) = events.last() else {
            panic!("{events:?}")
        };
        assert_eq!(e.kind, StreamErrorKind::Protocol);
    }
    // Tool arguments nested past serde_json's limit: kept raw, not parsed.
    let args = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let body = sse([
        json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":args}}]}}]}),
        json!({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}),
    ]);
    let events = decode(Api::OpenAiChat, StreamLimits::default(), &body, 4096);
    let call = events
        .iter()
        .find_map(|e| match e {
            StreamEvent::ToolCall(c) => Some(c),
            _ => None,
        })
        .expect("the call is delivered");
    assert!(call.tool_input.is_null() && call.arguments_raw.is_some());
}

fn fragments() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        &b"data: "[..],
        b"\n",
        b"\r\n",
        b"\r",
        b": keep\n",
        b"event: x\n",
        b"{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\",\"tool_calls\":[{\"index\":4294967295,\"id\":\"x\"}]}}]}",
        b"{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"n\"}}",
        b"{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}",
        b"{\"type\":\"message_stop\"}",
        b"{\"type\":\"response.output_item.added\",\"item\":{\"type\":\"function_call\",\"id\":\"i\"}}",
        b"{\"type\":\"response.completed\",\"response\":{}}",
        b"[DONE]",
        b"\xef\xbb\xbf",
        b"\xff",
        b"{",
    ]);
    prop::collection::vec(
        prop_oneof![
            pieces.prop_map(<[u8]>::to_vec),
            prop::collection::vec(any::<u8>(), 0..8)
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_and_end_in_one_terminal(
        body in fragments(),
        piece in 1usize..64,
        small in any::<bool>(),
    ) {
        let limits = if small {
            StreamLimits {
                max_line_bytes: 64,
                max_event_bytes: 128,
                max_response_bytes: 32,
                max_tool_calls: 2,
                max_content_blocks: 2,
            }
        } else {
            StreamLimits::default()
        };
        for api in [Api::OpenAiChat, Api::OpenAiResponses, Api::AnthropicMessages] {
            decode(api, limits, &body, piece);
        }
    }
}
