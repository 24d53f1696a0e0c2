//! The agent against a fake OpenAI-compatible server over real HTTP on loopback.

use agentbus_agent::react::{AbortReason, ReactEvent, ReactEventKind};
use agentbus_agent::tools::calculator;
use agentbus_agent::{Agent, AgentOutput, FunctionTool};
use agentbus_llm::{HttpConfig, HttpModel};
use agentbus_test_support::{FakeServer, Reply, openai};
use futures::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

/// Streams these SSE events, each frame in two writes, then `[DONE]`.
fn sse(events: Vec<Value>) -> Reply {
    openai::reply_split(&events, true)
}

/// Streams these, then closes the connection mid-stream.
fn cut(events: Vec<Value>) -> Reply {
    openai::reply_split(&events, false)
}

/// The request bodies the server received.
fn bodies(server: &FakeServer) -> Vec<Value> {
    server.requests().into_iter().map(|r| r.body).collect()
}

fn delta(delta: Value) -> Value {
    openai::chunk_with_id("chatcmpl-1", delta, None)
}

fn finish_chunk(reason: &str) -> Value {
    openai::chunk_with_id("chatcmpl-1", json!({}), Some(reason))
}

fn usage_chunk(prompt: u64, completion: u64) -> Value {
    openai::usage_with_id("chatcmpl-1", prompt, completion)
}

fn tool_fragment(index: u32, id: Option<&str>, name: Option<&str>, arguments: &str) -> Value {
    let mut call = json!({"index": index, "function": {"arguments": arguments}});
    if let Some(id) = id {
        call["id"] = json!(id);
        call["type"] = json!("function");
    }
    if let Some(name) = name {
        call["function"]["name"] = json!(name);
    }
    delta(json!({"tool_calls": [call]}))
}

fn model(server: &FakeServer) -> HttpModel {
    HttpModel::openai_chat(HttpConfig::new(
        "openai",
        server.base_url.clone(),
        "fake-model",
    ))
    .unwrap()
}

fn events(outputs: &[AgentOutput]) -> Vec<&ReactEvent> {
    outputs
        .iter()
        .filter_map(|o| o.as_event().map(|e| &e.event))
        .collect()
}

fn react_end(outputs: &[AgentOutput]) -> agentbus_agent::react::ReactEndEvent {
    match outputs.last().and_then(|o| o.as_event()).map(|e| &e.event) {
        Some(ReactEvent::ReactEnd(end)) => end.clone(),
        other => panic!("last output is not ReactEnd: {other:?}"),
    }
}

#[tokio::test]
async fn answers_17_times_23_by_calling_the_calculator() {
    let server = FakeServer::start(vec![
        sse(vec![
            delta(json!({"role": "assistant", "content": null})),
            tool_fragment(0, Some("call_calc"), Some("calculator"), ""),
            tool_fragment(0, None, None, "{\"expre"),
            tool_fragment(0, None, None, "ssion\": \"17 "),
            tool_fragment(0, None, None, "* 23\"}"),
            finish_chunk("tool_calls"),
            usage_chunk(80, 20),
        ]),
        sse(vec![
            delta(json!({"role": "assistant", "content": ""})),
            delta(json!({"content": "17 * 23 "})),
            delta(json!({"content": "= 391"})),
            finish_chunk("stop"),
            usage_chunk(120, 8),
        ]),
    ])
    .await;
    let agent = Agent::builder(model(&server)).tool(calculator()).build();
    let outputs: Vec<AgentOutput> = agent.run("What is 17 * 23?").collect().await;

    let end = react_end(&outputs);
    assert!(!end.aborted, "{:?}", end.error);
    assert_eq!(end.response, "17 * 23 = 391");
    assert_eq!((end.usage.input_tokens, end.usage.output_tokens), (200, 28));
    assert_eq!((end.total_llm_calls, end.total_tool_calls), (2, 1));
    let tool_end = events(&outputs)
        .into_iter()
        .find_map(|e| match e {
            ReactEvent::ToolCallEnd(t) => Some(t.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(tool_end.tool_name, "calculator");
    assert_eq!(tool_end.arguments, json!({"expression": "17 * 23"}));
    assert_eq!(tool_end.result, json!(391));
    let deltas: String = events(&outputs)
        .into_iter()
        .filter_map(|e| match e {
            ReactEvent::ToolCallArgumentsDelta(d) => Some(d.delta.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, "{\"expression\": \"17 * 23\"}");

    // What the server received: the tools on the first call, the tool result on the second.
    let requests = bodies(&server);
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["stream"], json!(true));
    assert_eq!(requests[0]["tools"][0]["function"]["name"], "calculator");
    let messages = requests[1]["messages"].as_array().unwrap();
    let tool_message = messages
        .iter()
        .find(|m| m["role"] == "tool")
        .expect("tool message");
    assert_eq!(tool_message["tool_call_id"], "call_calc");
    assert_eq!(tool_message["content"], "391");
    let assistant = messages.iter().find(|m| m["role"] == "assistant").unwrap();
    assert_eq!(assistant["tool_calls"][0]["id"], "call_calc");
}

#[derive(Deserialize, JsonSchema)]
struct Pair {
    a: i64,
    b: i64,
}

#[tokio::test]
async fn parallel_interleaved_tool_calls_over_http() {
    let server = FakeServer::start(vec![
        sse(vec![
            tool_fragment(0, Some("call_add"), Some("add"), ""),
            tool_fragment(1, Some("call_mul"), Some("mul"), ""),
            tool_fragment(0, None, None, "{\"a\": 2,"),
            tool_fragment(1, None, None, "{\"a\": 4,"),
            tool_fragment(0, None, None, " \"b\": 3}"),
            tool_fragment(1, None, None, " \"b\": 5}"),
            finish_chunk("tool_calls"),
            usage_chunk(10, 10),
        ]),
        sse(vec![
            delta(json!({"content": "5 and 20"})),
            finish_chunk("stop"),
            usage_chunk(20, 3),
        ]),
    ])
    .await;
    let add = FunctionTool::new("add", "Adds.", |p: Pair| async move {
        Ok::<_, String>(p.a + p.b)
    });
    let mul = FunctionTool::new("mul", "Multiplies.", |p: Pair| async move {
        Ok::<_, String>(p.a * p.b)
    });
    let agent = Agent::builder(model(&server)).tool(add).tool(mul).build();
    let outputs: Vec<AgentOutput> = agent.run("go").collect().await;
    let end = react_end(&outputs);
    assert!(!end.aborted, "{:?}", end.error);
    let ends: Vec<(String, Value)> = events(&outputs)
        .into_iter()
        .filter_map(|e| match e {
            ReactEvent::ToolCallEnd(t) => Some((t.tool_call_id.clone(), t.result.clone())),
            _ => None,
        })
        .collect();
    let mut ends = ends;
    ends.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        ends,
        [
            ("call_add".into(), json!(5)),
            ("call_mul".into(), json!(20))
        ]
    );
    let requests = bodies(&server);
    let tool_messages: Vec<(String, String)> = requests[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        tool_messages,
        [
            ("call_add".into(), "5".into()),
            ("call_mul".into(), "20".into())
        ]
    );
}

#[tokio::test]
async fn a_connection_cut_mid_stream_ends_with_llm_call_error() {
    let server = FakeServer::start(vec![cut(vec![
        delta(json!({"role": "assistant", "content": "Hello"})),
        delta(json!({"content": " wor"})),
    ])])
    .await;
    let agent = Agent::builder(model(&server)).build();
    let outputs: Vec<AgentOutput> = agent.run("hi").collect().await;
    let kinds: Vec<ReactEventKind> = events(&outputs).iter().map(|e| e.kind()).collect();
    use ReactEventKind::*;
    assert_eq!(
        kinds,
        [
            ReactStart,
            ReactIterationStart,
            LlmCallStart,
            LlmChunkArrive,
            LlmChunkArrive,
            LlmCallError,
            ReactIterationEnd,
            ReactEnd
        ]
    );
    let end = react_end(&outputs);
    assert_eq!(end.abort_reason, Some(AbortReason::LlmError));
    assert_eq!(end.response, "");
    assert!(outputs.iter().all(|o| !o.is_response()));
}
