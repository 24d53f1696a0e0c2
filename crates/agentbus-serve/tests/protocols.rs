//! `POST /ag-ui` and `POST /api/chat` against a scripted model, over real HTTP on
//! loopback: the event sequences, client-side tools, failures, cancellation and bad input.

use std::sync::Arc;
use std::time::Duration;

use agentbus::EventManager;
use agentbus_agent::react::ReactEndEvent;
use agentbus_agent::testing::{ScriptedCall, ScriptedTurns, Turn, error, finish, text, tool_calls};
use agentbus_agent::tools::calculator;
use agentbus_events::stream::{StreamErrorKind, StreamEvent};
use agentbus_serve::{AgentTemplate, ServeOptions, Server};
use serde_json::{Value, json};

struct Running {
    base: String,
    model: Arc<ScriptedTurns>,
    bus: EventManager,
}

async fn serve(turns: Vec<Turn>, options: ServeOptions) -> Running {
    let bus = EventManager::new();
    let model = Arc::new(ScriptedTurns::new("scripted", turns));
    let mut template = AgentTemplate::new(model.clone());
    template.tools.push(Arc::new(calculator()));
    let server = Server::new(bus.clone(), template, options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, server.router()).await });
    Running {
        base: format!("http://{addr}"),
        model,
        bus,
    }
}

/// The `data:` payloads of an SSE body.
fn frames(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|block| {
            let data: Vec<&str> = block
                .lines()
                .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
                .collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

fn parse_events(body: &str) -> Vec<Value> {
    frames(body)
        .iter()
        .filter(|f| f.as_str() != "[DONE]")
        .map(|f| serde_json::from_str(f).unwrap())
        .collect()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn reasoning_tool_then_answer() -> Vec<Turn> {
    let mut first = vec![
        StreamEvent::ReasoningStart,
        StreamEvent::reasoning_delta("I should "),
        StreamEvent::reasoning_delta("compute."),
    ];
    first.extend(text(&["Let me ", "compute."]));
    first.extend(tool_calls(
        &[ScriptedCall::new(
            "call-1",
            "calculator",
            r#"{"expression":"17 * 23"}"#,
        )],
        3,
    ));
    first.push(finish("tool_calls", 20, 10));
    let mut second = text(&["It is ", "391."]);
    second.push(finish("stop", 40, 5));
    vec![Turn::new(first), Turn::new(second)]
}

fn run_input(messages: Value, tools: Value) -> Value {
    json!({
        "threadId": "thread-1",
        "runId": "run-1",
        "state": {},
        "messages": messages,
        "tools": tools,
        "context": [],
        "forwardedProps": {}
    })
}

async fn post(url: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ag_ui_streams_reasoning_text_tool_calls_results_and_usage() {
    let server = serve(reasoning_tool_then_answer(), ServeOptions::default()).await;
    let input = run_input(
        json!([{"id": "u1", "role": "user", "content": "What is 17 * 23?"}]),
        json!([]),
    );
    let response = post(&format!("{}/ag-ui", server.base), &input).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = parse_events(&response.text().await.unwrap());
    assert_eq!(
        types(&events),
        vec![
            "RUN_STARTED",
            "STEP_STARTED",
            "REASONING_START",
            "REASONING_MESSAGE_START",
            "REASONING_MESSAGE_CONTENT",
            "REASONING_MESSAGE_CONTENT",
            "REASONING_MESSAGE_END",
            "REASONING_END",
            "TEXT_MESSAGE_START",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_END",
            "TOOL_CALL_START",
            "TOOL_CALL_ARGS",
            "TOOL_CALL_ARGS",
            "TOOL_CALL_ARGS",
            "TOOL_CALL_END",
            "TOOL_CALL_RESULT",
            "STEP_FINISHED",
            "STEP_STARTED",
            "TEXT_MESSAGE_START",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_END",
            "STEP_FINISHED",
            "RUN_FINISHED",
        ]
    );
    assert_eq!(events[0]["threadId"], "thread-1");
    let args: String = events
        .iter()
        .filter(|e| e["type"] == "TOOL_CALL_ARGS")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(args, r#"{"expression":"17 * 23"}"#);
    let start = events
        .iter()
        .find(|e| e["type"] == "TOOL_CALL_START")
        .unwrap();
    assert_eq!(start["toolCallName"], "calculator");
    assert_eq!(start["toolCallId"], "call-1");
    let text_start = &events[8];
    assert_eq!(start["parentMessageId"], text_start["messageId"]);
    let result = events
        .iter()
        .find(|e| e["type"] == "TOOL_CALL_RESULT")
        .unwrap();
    assert_eq!(result["content"], "391");
    assert_eq!(result["toolCallId"], "call-1");
    let finished = events.last().unwrap();
    assert_eq!(finished["outcome"], json!({"type": "success"}));
    assert_eq!(finished["usage"][0]["inputTokens"], 60);
    assert_eq!(finished["usage"][0]["outputTokens"], 15);
    assert_eq!(finished["usage"][0]["totalTokens"], 75);
    // The thread is the session of every event the run published.
    let requests = server.model.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].messages.last().unwrap().content,
        "What is 17 * 23?"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_tool_ends_the_run_and_its_result_resumes_it() {
    let mut first = text(&["Asking you."]);
    first.extend(tool_calls(
        &[ScriptedCall::new(
            "call-c",
            "pick_colour",
            r#"{"options":["red","blue"]}"#,
        )],
        1,
    ));
    first.push(finish("tool_calls", 10, 4));
    let mut second = text(&["You picked blue."]);
    second.push(finish("stop", 30, 4));
    let server = serve(
        vec![Turn::new(first), Turn::new(second)],
        ServeOptions::default(),
    )
    .await;
    let tools = json!([{
        "name": "pick_colour",
        "description": "Asks the user to pick a colour.",
        "parameters": {"type": "object", "properties": {"options": {"type": "array"}}}
    }]);
    let input = run_input(
        json!([{"id": "u1", "role": "user", "content": "Pick a colour"}]),
        tools.clone(),
    );
    let body = post(&format!("{}/ag-ui", server.base), &input)
        .await
        .text()
        .await
        .unwrap();
    let events = parse_events(&body);
    let kinds = types(&events);
    assert!(!kinds.contains(&"TOOL_CALL_RESULT"), "{kinds:?}");
    assert!(kinds.contains(&"TOOL_CALL_END"));
    let finished = events.last().unwrap();
    assert_eq!(finished["type"], "RUN_FINISHED");
    assert_eq!(
        finished["outcome"],
        json!({"type": "success", "pendingToolCallIds": ["call-c"]})
    );
    assert_eq!(
        server.model.calls(),
        1,
        "the run ended after the client tool call"
    );

    // The client answers in its next run.
    let input = json!({
        "threadId": "thread-1",
        "runId": "run-2",
        "messages": [
            {"id": "u1", "role": "user", "content": "Pick a colour"},
            {"id": "a1", "role": "assistant", "content": "Asking you.", "toolCalls": [
                {"id": "call-c", "type": "function",
                 "function": {"name": "pick_colour", "arguments": "{\"options\":[\"red\",\"blue\"]}"}}
            ]},
            {"id": "t1", "role": "tool", "toolCallId": "call-c", "content": "blue"}
        ],
        "tools": tools,
        "context": []
    });
    let body = post(&format!("{}/ag-ui", server.base), &input)
        .await
        .text()
        .await
        .unwrap();
    let events = parse_events(&body);
    assert_eq!(events.last().unwrap()["type"], "RUN_FINISHED");
    let requests = server.model.requests();
    let last = requests[1].messages.last().unwrap();
    assert_eq!(last.role, agentbus_llm::Role::Tool);
    assert_eq!(last.content, "blue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_provider_ends_in_run_error() {
    let server = serve(
        vec![Turn::new(vec![error(
            StreamErrorKind::Auth,
            "invalid api key",
        )])],
        ServeOptions::default(),
    )
    .await;
    let input = run_input(
        json!([{"id": "u1", "role": "user", "content": "Hi"}]),
        json!([]),
    );
    let body = post(&format!("{}/ag-ui", server.base), &input)
        .await
        .text()
        .await
        .unwrap();
    let events = parse_events(&body);
    let last = events.last().unwrap();
    assert_eq!(last["type"], "RUN_ERROR");
    assert_eq!(last["code"], "llm_error");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("invalid api key")
    );
    assert!(!types(&events).contains(&"RUN_FINISHED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_cancels_the_run() {
    let server = serve(
        vec![Turn::new(text(&["Thinking"])).then_hang()],
        ServeOptions::default(),
    )
    .await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    server
        .bus
        .subscribe("test-end", move |e: Arc<ReactEndEvent>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(e);
            }
        })
        .unwrap();
    let input = run_input(
        json!([{"id": "u1", "role": "user", "content": "Hi"}]),
        json!([]),
    );
    let mut response = post(&format!("{}/ag-ui", server.base), &input).await;
    let mut seen = String::new();
    while !seen.contains("TEXT_MESSAGE_CONTENT") {
        let chunk = response.chunk().await.unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(response);
    let end = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the run ended")
        .unwrap();
    assert!(end.aborted);
    assert_eq!(
        end.abort_reason,
        Some(agentbus_agent::react::AbortReason::Cancelled)
    );
    assert_eq!(end.origin.session_id, "thread-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_nothing_runs() {
    let options = ServeOptions {
        token: Some("s3cret".into()),
        max_body_bytes: 4096,
        ..ServeOptions::default()
    };
    let server = serve(vec![], options).await;
    let client = reqwest::Client::new();
    let url = format!("{}/ag-ui", server.base);
    let good = run_input(
        json!([{"id": "u1", "role": "user", "content": "Hi"}]),
        json!([]),
    );
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> =
        vec![
        (client.post(&url).json(&good), 401, "bearer token"),
        (
            client.post(&url).bearer_auth("wrong").json(&good),
            401,
            "bearer token",
        ),
        (
            client
                .post(&url)
                .bearer_auth("s3cret")
                .header("content-type", "application/json")
                .body("{not json"),
            400,
            "invalid body",
        ),
        (
            client.post(&url).bearer_auth("s3cret").json(&json!({"threadId": "t", "runId": "r"})),
            400,
            "messages",
        ),
        (
            client.post(&url).bearer_auth("s3cret").json(&run_input(
                json!([{"id": "u1", "role": "wizard", "content": "Hi"}]),
                json!([]),
            )),
            400,
            "messages[0]",
        ),
        (
            client.post(&url).bearer_auth("s3cret").json(&run_input(
                json!([{"id": "a1", "role": "assistant", "content": "Hi"}]),
                json!([]),
            )),
            400,
            "last message",
        ),
        (
            client.post(&url).bearer_auth("s3cret").json(&run_input(
                json!([{"id": "u1", "role": "user", "content": "x".repeat(10_000)}]),
                json!([]),
            )),
            413,
            "larger than 4096",
        ),
        (
            client
                .post(format!("{}/api/chat", server.base))
                .bearer_auth("s3cret")
                .json(&json!({"id": "c", "messages": [{"id": "m", "role": "robot", "parts": []}]})),
            400,
            "messages[0].role",
        ),
    ];
    for (request, status, needle) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status);
        let body: Value = response.json().await.unwrap();
        let message = body["error"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}"
        );
    }
    assert_eq!(server.model.calls(), 0, "nothing ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_chat_streams_ui_message_chunks() {
    let server = serve(reasoning_tool_then_answer(), ServeOptions::default()).await;
    let body = json!({
        "id": "chat-1",
        "trigger": "submit-message",
        "messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": "What is 17 * 23?"}]}]
    });
    let response = post(&format!("{}/api/chat", server.base), &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-vercel-ai-ui-message-stream"], "v1");
    let text = response.text().await.unwrap();
    assert_eq!(frames(&text).last().unwrap(), "[DONE]");
    let chunks = parse_events(&text);
    assert_eq!(
        types(&chunks),
        vec![
            "start",
            "start-step",
            "reasoning-start",
            "reasoning-delta",
            "reasoning-delta",
            "reasoning-end",
            "text-start",
            "text-delta",
            "text-delta",
            "text-end",
            "tool-input-start",
            "tool-input-delta",
            "tool-input-delta",
            "tool-input-delta",
            "tool-input-available",
            "tool-output-available",
            "finish-step",
            "start-step",
            "text-start",
            "text-delta",
            "text-delta",
            "text-end",
            "finish-step",
            "finish",
        ]
    );
    let available = chunks
        .iter()
        .find(|c| c["type"] == "tool-input-available")
        .unwrap();
    assert_eq!(available["input"], json!({"expression": "17 * 23"}));
    let output = chunks
        .iter()
        .find(|c| c["type"] == "tool-output-available")
        .unwrap();
    assert_eq!(output["output"], json!(391));
    let finish = chunks.last().unwrap();
    assert_eq!(finish["finishReason"], "stop");
    assert_eq!(finish["messageMetadata"]["usage"]["totalTokens"], 75);
}
