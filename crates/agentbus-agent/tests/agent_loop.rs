//! The agent loop against the scripted model: every case of the agent contract.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentbus_agent::react::{AbortReason, ChunkChannel, ReactEvent, ReactEventKind};
use agentbus_agent::testing::{ScriptedCall, ScriptedTurns, Turn, error, finish, text, tool_calls};
use agentbus_agent::tools::calculator;
use agentbus_agent::{
    Agent, AgentOutput, CancellationToken, FunctionTool, Publisher, ReactStreamExt, RunRequest,
    SubAgentTool, ToolContext,
};
use agentbus_events::DynEvent;
use agentbus_events::stream::StreamErrorKind;
use agentbus_llm::Role;
use futures::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;

fn turn(parts: Vec<Vec<agentbus_events::stream::StreamEvent>>) -> Turn {
    Turn::new(parts.into_iter().flatten().collect())
}

fn calc_turns() -> Vec<Turn> {
    vec![
        turn(vec![
            text(&["Let me ", "compute."]),
            tool_calls(
                &[ScriptedCall::new(
                    "call_1",
                    "calculator",
                    r#"{"expression":"17 * 23"}"#,
                )],
                2,
            ),
            vec![finish("tool_calls", 10, 5)],
        ]),
        turn(vec![
            text(&["17 * 23 = ", "391"]),
            vec![finish("stop", 20, 6)],
        ]),
    ]
}

async fn collect(stream: impl futures::Stream<Item = AgentOutput>) -> Vec<AgentOutput> {
    stream.collect().await
}

fn events(outputs: &[AgentOutput]) -> Vec<&ReactEvent> {
    outputs
        .iter()
        .filter_map(|o| o.as_event().map(|e| &e.event))
        .collect()
}

fn kinds(outputs: &[AgentOutput]) -> Vec<ReactEventKind> {
    events(outputs).iter().map(|e| e.kind()).collect()
}

fn react_end(outputs: &[AgentOutput]) -> &agentbus_agent::react::ReactEndEvent {
    match outputs.last().and_then(|o| o.as_event()).map(|e| &e.event) {
        Some(ReactEvent::ReactEnd(end)) => end,
        other => panic!("the last output is not ReactEnd: {other:?}"),
    }
}

/// Checks the invariants every run must keep: ReactEnd last and only once, event_seq
/// 0, 1, 2, ... per agent call, origin inside the event equal to the yielded origin.
fn check_invariants(outputs: &[AgentOutput]) {
    use std::collections::HashMap;
    react_end(outputs);
    let mut next: HashMap<String, u64> = HashMap::new();
    let mut ended: Vec<String> = Vec::new();
    for output in outputs {
        let Some(event) = output.as_event() else {
            continue;
        };
        let id = event.origin().agent_call_id.clone();
        assert!(
            !ended.contains(&id),
            "event after ReactEnd of {id}: {:?}",
            event.event.kind()
        );
        let expected = next.entry(id.clone()).or_insert(0);
        assert_eq!(
            event.origin().event_seq,
            *expected,
            "event_seq of {:?}",
            event.event.kind()
        );
        *expected += 1;
        assert_eq!(
            event.event.meta().session_id.as_deref(),
            Some(event.origin().session_id.as_str())
        );
        if matches!(event.event, ReactEvent::ReactEnd(_)) {
            ended.push(id);
        }
    }
}

#[tokio::test]
async fn two_turn_tool_call_has_the_exact_event_order() {
    let model = Arc::new(ScriptedTurns::new("scripted", calc_turns()));
    let agent = Agent::builder(model.clone())
        .system_prompt("You are a calculator.")
        .tool(calculator())
        .build();
    let outputs = collect(agent.run("What is 17 * 23?")).await;
    check_invariants(&outputs);
    use ReactEventKind::*;
    assert_eq!(
        kinds(&outputs),
        vec![
            ReactStart,
            ReactIterationStart,
            LlmCallStart,
            LlmChunkArrive,
            LlmChunkArrive,
            ToolCallArgumentsDelta,
            ToolCallArgumentsDelta,
            LlmCallEnd,
            ToolCallsBatchStart,
            ToolCallStart,
            ToolCallEnd,
            ToolCallsBatchEnd,
            ReactIterationEnd,
            ReactIterationStart,
            LlmCallStart,
            LlmChunkArrive,
            LlmChunkArrive,
            LlmCallEnd,
            ReactIterationEnd,
            ReactEnd,
        ]
    );
    // The response comes right before ReactEnd.
    let response = outputs[outputs.len() - 2]
        .as_response()
        .expect("response before ReactEnd");
    assert_eq!(response.response, "17 * 23 = 391");
    let roles: Vec<Role> = response.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::System,
            Role::User,
            Role::Assistant,
            Role::Tool,
            Role::Assistant
        ]
    );
    assert_eq!(response.messages[3].content, "391");

    let evs = events(&outputs);
    match evs[3] {
        ReactEvent::LlmChunkArrive(c) => {
            assert_eq!(
                (c.delta.as_str(), c.accumulated_length, c.chunk_index),
                ("Let me ", 7, 0)
            );
            assert_eq!(c.channel, ChunkChannel::Text);
        }
        other => panic!("{other:?}"),
    }
    match evs[4] {
        ReactEvent::LlmChunkArrive(c) => assert_eq!((c.accumulated_length, c.chunk_index), (15, 1)),
        other => panic!("{other:?}"),
    }
    match evs[10] {
        ReactEvent::ToolCallEnd(end) => {
            assert!(end.success);
            assert_eq!(end.result, serde_json::json!(391));
            assert_eq!(end.tool_call_id, "call_1");
        }
        other => panic!("{other:?}"),
    }
    match evs[1] {
        ReactEvent::ReactIterationStart(s) => assert_eq!(s.iteration, 1),
        other => panic!("{other:?}"),
    }
    match evs[13] {
        ReactEvent::ReactIterationStart(s) => assert_eq!(s.iteration, 2),
        other => panic!("{other:?}"),
    }

    // Usage summed across both calls.
    let end = react_end(&outputs);
    assert!(!end.aborted);
    assert_eq!(end.response, "17 * 23 = 391");
    assert_eq!(
        (end.iterations, end.total_llm_calls, end.total_tool_calls),
        (2, 2, 1)
    );
    assert_eq!((end.usage.input_tokens, end.usage.output_tokens), (30, 11));
    assert_eq!(end.final_messages.len(), 5);

    // The model saw the tool's result on the second call.
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    let tool_message = requests[1]
        .messages
        .iter()
        .find(|m| m.role == Role::Tool)
        .unwrap();
    assert_eq!(tool_message.content, "391");
    assert_eq!(tool_message.tool_call_id.as_deref(), Some("call_1"));
    assert_eq!(requests[0].tools.len(), 1);
}

#[derive(Debug, Deserialize, JsonSchema)]
struct Pair {
    a: i64,
    b: i64,
}

fn add_tool() -> FunctionTool {
    FunctionTool::new("add", "Adds.", |p: Pair| async move {
        Ok::<_, String>(p.a + p.b)
    })
}

fn mul_tool() -> FunctionTool {
    FunctionTool::new("mul", "Multiplies.", |p: Pair| async move {
        Ok::<_, String>(p.a * p.b)
    })
}

#[tokio::test]
async fn parallel_tool_calls_with_interleaved_argument_deltas() {
    let model = Arc::new(ScriptedTurns::new(
        "scripted",
        vec![
            turn(vec![
                tool_calls(
                    &[
                        ScriptedCall::new("call_a", "add", r#"{"a": 2, "b": 3}"#),
                        ScriptedCall::new("call_m", "mul", r#"{"a": 4, "b": 5}"#),
                    ],
                    4,
                ),
                vec![finish("tool_calls", 5, 5)],
            ]),
            turn(vec![text(&["5 and 20"]), vec![finish("stop", 5, 5)]]),
        ],
    ));
    let agent = Agent::builder(model.clone())
        .tool(add_tool())
        .tool(mul_tool())
        .build();
    let outputs = collect(agent.run("go")).await;
    check_invariants(&outputs);

    let deltas: Vec<_> = events(&outputs)
        .into_iter()
        .filter_map(|e| match e {
            ReactEvent::ToolCallArgumentsDelta(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas.len(), 8);
    let indexes: Vec<u32> = deltas.iter().map(|d| d.index).collect();
    assert_eq!(indexes, [0, 1, 0, 1, 0, 1, 0, 1]);
    for d in &deltas {
        let (id, name) = if d.index == 0 {
            ("call_a", "add")
        } else {
            ("call_m", "mul")
        };
        // Id and name are known on every delta once the first fragment gave them.
        assert_eq!(d.tool_call_id.as_deref(), Some(id));
        assert_eq!(d.tool_name.as_deref(), Some(name));
    }
    let rebuilt: String = deltas
        .iter()
        .filter(|d| d.index == 1)
        .map(|d| d.delta.as_str())
        .collect();
    assert_eq!(rebuilt, r#"{"a": 4, "b": 5}"#);
    assert_eq!(deltas[7].accumulated_length, rebuilt.len() as u64);

    let batch_end = events(&outputs)
        .into_iter()
        .find_map(|e| match e {
            ReactEvent::ToolCallsBatchEnd(b) => Some(b.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!((batch_end.success_count, batch_end.error_count), (2, 0));
    let results: Vec<_> = batch_end
        .results
        .iter()
        .map(|r| (r.tool_call_id.as_str(), r.result.clone()))
        .collect();
    assert_eq!(
        results,
        [
            ("call_a", serde_json::json!(5)),
            ("call_m", serde_json::json!(20))
        ]
    );

    // Tool results go back in the model's order.
    let second = &model.requests()[1];
    let tool_ids: Vec<_> = second
        .messages
        .iter()
        .filter(|m| m.role == Role::Tool)
        .map(|m| (m.tool_call_id.clone().unwrap(), m.content.clone()))
        .collect();
    assert_eq!(
        tool_ids,
        [
            ("call_a".to_owned(), "5".to_owned()),
            ("call_m".to_owned(), "20".to_owned())
        ]
    );
    let assistant = second
        .messages
        .iter()
        .find(|m| m.role == Role::Assistant)
        .unwrap();
    assert_eq!(assistant.tool_calls.len(), 2);
    assert_eq!(
        assistant.tool_calls[1].arguments,
        serde_json::json!({"a": 4, "b": 5})
    );
}

#[tokio::test]
async fn failing_tool_reports_error_and_the_model_sees_it() {
    let model = Arc::new(ScriptedTurns::new(
        "scripted",
        vec![
            turn(vec![
                tool_calls(
                    &[ScriptedCall::new(
                        "c1",
                        "calculator",
                        r#"{"expression":"1/0"}"#,
                    )],
                    1,
                ),
                vec![finish("tool_calls", 1, 1)],
            ]),
            turn(vec![
                tool_calls(
                    &[ScriptedCall::new("c2", "calculator", r#"{"expr":"1"}"#)],
                    1,
                ),
                vec![finish("tool_calls", 1, 1)],
            ]),
            turn(vec![
                tool_calls(&[ScriptedCall::new("c3", "nope", r#"{}"#)], 1),
                vec![finish("tool_calls", 1, 1)],
            ]),
            turn(vec![
                text(&["Division by zero is undefined."]),
                vec![finish("stop", 1, 1)],
            ]),
        ],
    ));
    let agent = Agent::builder(model.clone()).tool(calculator()).build();
    let outputs = collect(agent.run("1/0?")).await;
    check_invariants(&outputs);
    let evs = events(&outputs);
    let errors: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            ReactEvent::ToolCallError(err) => Some(err.error.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 3);
    assert_eq!(errors[0].kind, "math");
    assert!(errors[0].message.contains("division by zero"));
    assert_eq!(errors[1].kind, "invalid_arguments");
    assert!(
        errors[1].message.contains("missing field `expression`"),
        "{}",
        errors[1].message
    );
    assert_eq!(errors[2].kind, "unknown_tool");
    assert!(errors[2].message.contains("available tools: calculator"));
    // ToolCallError comes right before the failed call's ToolCallEnd, which says success: false.
    let positions: Vec<usize> = evs
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind() == ReactEventKind::ToolCallError)
        .map(|(i, _)| i)
        .collect();
    for p in positions {
        match evs[p + 1] {
            ReactEvent::ToolCallEnd(end) => {
                assert!(!end.success);
                assert!(end.error.is_some());
            }
            other => panic!("{other:?}"),
        }
    }
    let batch_end = evs.iter().find_map(|e| match e {
        ReactEvent::ToolCallsBatchEnd(b) => Some(b),
        _ => None,
    });
    assert_eq!(
        batch_end.map(|b| (b.success_count, b.error_count)),
        Some((0, 1))
    );
    // The model saw each error as a tool message marked as an error.
    let second = &model.requests()[1];
    let tool_message = second
        .messages
        .iter()
        .find(|m| m.role == Role::Tool)
        .unwrap();
    assert!(tool_message.is_error);
    assert!(tool_message.content.contains("division by zero"));
    assert_eq!(
        react_end(&outputs).response,
        "Division by zero is undefined."
    );
}

#[tokio::test]
async fn a_tool_that_times_out_fails_and_is_stopped() {
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
    let guard = Arc::new(Mutex::new(Some(dropped_tx)));
    let slow = FunctionTool::new(
        "slow",
        "Never answers.",
        move |_: serde_json::Map<String, serde_json::Value>| {
            let held = guard.lock().unwrap().take();
            async move {
                let _held = held;
                futures::future::pending::<()>().await;
                Ok::<_, String>(0)
            }
        },
    )
    .with_timeout(Duration::from_millis(20));
    let model = ScriptedTurns::new(
        "scripted",
        vec![
            turn(vec![
                tool_calls(&[ScriptedCall::new("c1", "slow", "{}")], 1),
                vec![finish("tool_calls", 1, 1)],
            ]),
            turn(vec![text(&["gave up"]), vec![finish("stop", 1, 1)]]),
        ],
    );
    let agent = Agent::builder(model).tool(slow).build();
    let outputs = collect(agent.run("go")).await;
    check_invariants(&outputs);
    let error = events(&outputs)
        .into_iter()
        .find_map(|e| match e {
            ReactEvent::ToolCallError(err) => Some(err.error.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(error.kind, "timeout");
    assert!(error.message.contains("timed out after 20 ms"));
    // The tool's future was dropped when it timed out.
    assert!(dropped_rx.await.is_err());
    assert!(!react_end(&outputs).aborted);
}

#[tokio::test]
async fn tool_custom_events_arrive_live_in_order() {
    let chatty = FunctionTool::with_context(
        "chatty",
        "Streams output.",
        |_: serde_json::Map<String, serde_json::Value>, ctx: ToolContext| async move {
            for i in 0..100 {
                ctx.emitter()
                    .emit("stdout", serde_json::json!({ "line": i }))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<_, String>("done")
        },
    );
    let model = ScriptedTurns::new(
        "scripted",
        vec![
            turn(vec![
                tool_calls(
                    &[
                        ScriptedCall::new("c1", "chatty", "{}"),
                        ScriptedCall::new("c2", "chatty", "{}"),
                    ],
                    1,
                ),
                vec![finish("tool_calls", 1, 1)],
            ]),
            turn(vec![text(&["ok"]), vec![finish("stop", 1, 1)]]),
        ],
    );
    let agent = Agent::builder(model).tool(chatty).build();
    let outputs = collect(agent.run("go")).await;
    check_invariants(&outputs);
    for call in ["c1", "c2"] {
        let mut lines = Vec::new();
        let mut seen_end = false;
        let mut seen_start = false;
        for event in events(&outputs) {
            match event {
                ReactEvent::ToolCallStart(s) if s.tool_call_id == call => seen_start = true,
                ReactEvent::Custom(c) if c.tool_call_id.as_deref() == Some(call) => {
                    assert!(seen_start && !seen_end, "custom event outside its call");
                    assert_eq!(c.event_name, "stdout");
                    assert_eq!(c.origin.tool_call_id.as_deref(), Some(call));
                    assert_eq!(c.origin.tool_name.as_deref(), Some("chatty"));
                    lines.push(c.data["line"].as_i64().unwrap());
                }
                ReactEvent::ToolCallEnd(e) if e.tool_call_id == call => seen_end = true,
                _ => {}
            }
        }
        assert_eq!(lines, (0..100).collect::<Vec<i64>>());
        assert!(seen_end);
    }
}

#[tokio::test]
async fn provider_error_mid_stream_ends_with_llm_call_error_and_react_end() {
    let model = ScriptedTurns::new(
        "scripted",
        vec![turn(vec![
            text(&["partial ", "answer"])[..2].to_vec(),
            vec![error(StreamErrorKind::Network, "connection reset")],
        ])],
    );
    let agent = Agent::builder(model).build();
    let outputs = collect(agent.run("go")).await;
    check_invariants(&outputs);
    use ReactEventKind::*;
    assert_eq!(
        kinds(&outputs),
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
    assert!(outputs.iter().all(|o| !o.is_response()));
    let err = events(&outputs).into_iter().find_map(|e| match e {
        ReactEvent::LlmCallError(e) => Some(e.clone()),
        _ => None,
    });
    let err = err.unwrap();
    assert_eq!(err.error.kind, "network");
    assert!(err.recoverable);
    let end = react_end(&outputs);
    assert!(end.aborted);
    assert_eq!(end.abort_reason, Some(AbortReason::LlmError));
    assert_eq!(
        end.error.as_ref().map(|e| e.message.as_str()),
        Some("connection reset")
    );
    assert_eq!(end.total_llm_calls, 1);
}

#[tokio::test]
async fn max_iterations_reached_aborts() {
    let looping = turn(vec![
        text(&["again"]),
        tool_calls(
            &[ScriptedCall::new(
                "c",
                "calculator",
                r#"{"expression":"1+1"}"#,
            )],
            1,
        ),
        vec![finish("tool_calls", 3, 2)],
    ]);
    let model = ScriptedTurns::new("scripted", vec![looping.clone(), looping.clone(), looping]);
    let agent = Agent::builder(model)
        .tool(calculator())
        .max_iterations(2)
        .build();
    let outputs = collect(agent.run("go")).await;
    check_invariants(&outputs);
    let end = react_end(&outputs);
    assert!(end.aborted);
    assert_eq!(end.abort_reason, Some(AbortReason::MaxIterations));
    assert_eq!(
        (end.iterations, end.total_llm_calls, end.total_tool_calls),
        (2, 2, 2)
    );
    assert_eq!((end.usage.input_tokens, end.usage.output_tokens), (6, 4));
    assert_eq!(end.response, "again");
    assert!(outputs.iter().all(|o| !o.is_response()));
    let starts = kinds(&outputs)
        .iter()
        .filter(|k| **k == ReactEventKind::ReactIterationStart)
        .count();
    assert_eq!(starts, 2);
}

/// A tool that signals when it starts and holds a sender it drops only when its future
/// is dropped.
fn blocking_tool(
    started: Arc<tokio::sync::Notify>,
    dropped: tokio::sync::oneshot::Sender<()>,
) -> FunctionTool {
    let dropped = Arc::new(Mutex::new(Some(dropped)));
    FunctionTool::new(
        "block",
        "Blocks forever.",
        move |_: serde_json::Map<String, serde_json::Value>| {
            let held = dropped.lock().unwrap().take();
            let started = started.clone();
            async move {
                let _held = held;
                started.notify_one();
                futures::future::pending::<()>().await;
                Ok::<_, String>(0)
            }
        },
    )
}

#[tokio::test]
async fn cancellation_during_a_tool_stops_it_at_once() {
    let started = Arc::new(tokio::sync::Notify::new());
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel();
    let model = ScriptedTurns::new(
        "scripted",
        vec![turn(vec![
            tool_calls(&[ScriptedCall::new("c1", "block", "{}")], 1),
            vec![finish("tool_calls", 1, 1)],
        ])],
    );
    let agent = Agent::builder(model)
        .tool(blocking_tool(started.clone(), dropped_tx))
        .build();
    let token = CancellationToken::new();
    let stream = agent.run_request(RunRequest::new("go").cancellation(token.clone()));
    let canceller = tokio::spawn(async move {
        started.notified().await;
        token.cancel();
    });
    let outputs = collect(stream).await;
    canceller.await.unwrap();
    check_invariants(&outputs);
    let end = react_end(&outputs);
    assert!(end.aborted);
    assert_eq!(end.abort_reason, Some(AbortReason::Cancelled));
    // The running tool was closed as failed, and its task aborted.
    let tool_end = events(&outputs).into_iter().find_map(|e| match e {
        ReactEvent::ToolCallEnd(t) => Some(t.clone()),
        _ => None,
    });
    assert_eq!(
        tool_end.map(|t| (t.success, t.error.map(|e| e.kind))),
        Some((false, Some("cancelled".to_owned())))
    );
    assert!(dropped_rx.await.is_err());
    use ReactEventKind::*;
    let tail: Vec<_> = kinds(&outputs).into_iter().rev().take(5).collect();
    assert_eq!(
        tail,
        [
            ReactEnd,
            ReactIterationEnd,
            ToolCallsBatchEnd,
            ToolCallEnd,
            ToolCallError
        ]
    );
}

#[tokio::test]
async fn cancellation_during_streaming_stops_the_model() {
    let model = ScriptedTurns::new(
        "scripted",
        vec![Turn::new(text(&["one ", "two "])[..2].to_vec()).then_hang()],
    );
    let agent = Agent::builder(model).build();
    let token = CancellationToken::new();
    let mut stream = agent.run_request(RunRequest::new("go").cancellation(token.clone()));
    let mut outputs = Vec::new();
    while let Some(output) = stream.next().await {
        if let Some(ReactEvent::LlmChunkArrive(c)) = output.as_event().map(|e| &e.event)
            && c.chunk_index == 1
        {
            token.cancel();
        }
        outputs.push(output);
    }
    check_invariants(&outputs);
    use ReactEventKind::*;
    assert_eq!(
        kinds(&outputs),
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
    assert_eq!(end.abort_reason, Some(AbortReason::Cancelled));
    assert_eq!(end.response, "");
}

/// Collects everything published.
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<Box<dyn DynEvent>>>>);

impl Collected {
    fn publisher(&self) -> Publisher {
        let inner = self.0.clone();
        Publisher::new(move |event: Box<dyn DynEvent>| inner.lock().unwrap().push(event))
    }
    fn types(&self) -> Vec<&'static str> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.event_type())
            .collect()
    }
}

#[tokio::test]
async fn interrupt_ends_the_turn_and_bumps_the_epoch() {
    let bus = Collected::default();
    let model = ScriptedTurns::new(
        "scripted",
        vec![
            Turn::new(text(&["talking ", "on"])[..1].to_vec()).then_hang(),
            turn(vec![text(&["fresh"]), vec![finish("stop", 1, 1)]]),
        ],
    );
    let agent = Agent::builder(model).publisher(bus.publisher()).build();
    assert_eq!(agent.epoch(), 0);
    let mut stream = agent.run("talk");
    let mut outputs = Vec::new();
    while let Some(output) = stream.next().await {
        if let Some(ReactEvent::LlmChunkArrive(_)) = output.as_event().map(|e| &e.event) {
            assert!(agent.is_running());
            assert_eq!(agent.interrupt(), 1);
        }
        outputs.push(output);
    }
    check_invariants(&outputs);
    let end = react_end(&outputs);
    assert_eq!(end.abort_reason, Some(AbortReason::Interrupted));
    assert!(
        outputs
            .iter()
            .filter_map(|o| o.as_event())
            .all(|e| e.origin().epoch == 0)
    );
    assert!(!agent.is_running());

    // The agent stays usable, and the next response carries the new epoch.
    let next = collect(agent.run("again")).await;
    check_invariants(&next);
    assert!(!react_end(&next).aborted);
    assert!(
        next.iter()
            .filter_map(|o| o.as_event())
            .all(|e| e.origin().epoch == 1)
    );

    let published = bus.0.lock().unwrap();
    let turn_ends: Vec<bool> = published
        .iter()
        .filter_map(|e| e.downcast_ref::<agentbus_events::agent::AgentTurnEndedEvent>())
        .map(|e| e.interrupted)
        .collect();
    assert_eq!(turn_ends, [true, false]);
}

#[tokio::test]
async fn sub_agents_two_levels_deep_keep_their_origins() {
    // grandchild: answers directly.
    let grandchild = Agent::builder(ScriptedTurns::new(
        "gc",
        vec![turn(vec![
            text(&["leaf answer"]),
            vec![finish("stop", 1, 1)],
        ])],
    ))
    .build();
    // child: calls the grandchild, then answers.
    let child = Agent::builder(ScriptedTurns::new(
        "child",
        vec![
            turn(vec![
                tool_calls(&[ScriptedCall::new("c-gc", "leaf", r#"{"task":"dig"}"#)], 1),
                vec![finish("tool_calls", 2, 2)],
            ]),
            turn(vec![text(&["child answer"]), vec![finish("stop", 2, 2)]]),
        ],
    ))
    .tool(SubAgentTool::new(grandchild, "leaf", "The leaf agent."))
    .build();
    let bus = Collected::default();
    let parent = Agent::builder(ScriptedTurns::new(
        "parent",
        vec![
            turn(vec![
                tool_calls(
                    &[ScriptedCall::new("p-c", "helper", r#"{"task":"research"}"#)],
                    1,
                ),
                vec![finish("tool_calls", 3, 3)],
            ]),
            turn(vec![text(&["parent answer"]), vec![finish("stop", 3, 3)]]),
        ],
    ))
    .tool(SubAgentTool::new(child, "helper", "The helper agent."))
    .session_id("s-fork")
    .publisher(bus.publisher())
    .build();

    let outputs = collect(parent.run("start")).await;
    check_invariants(&outputs);
    let origins: Vec<_> = outputs
        .iter()
        .filter_map(|o| o.as_event())
        .map(|e| e.origin().clone())
        .collect();
    let parent_id = origins[0].agent_call_id.clone();
    let child_origin = origins
        .iter()
        .find(|o| o.fork_depth == 1)
        .expect("child events")
        .clone();
    let gc_origin = origins
        .iter()
        .find(|o| o.fork_depth == 2)
        .expect("grandchild events")
        .clone();

    assert_eq!(origins[0].fork_depth, 0);
    assert_eq!(origins[0].parent_agent_call_id, None);
    assert_eq!(
        child_origin.parent_agent_call_id.as_deref(),
        Some(parent_id.as_str())
    );
    assert_eq!(child_origin.tool_name.as_deref(), Some("helper"));
    assert_eq!(child_origin.tool_call_id.as_deref(), Some("p-c"));
    assert_eq!(child_origin.fork_seq, Some(0));
    assert!(child_origin.fork_id.is_some());
    assert_eq!(
        gc_origin.parent_agent_call_id.as_deref(),
        Some(child_origin.agent_call_id.as_str())
    );
    assert_eq!(gc_origin.tool_name.as_deref(), Some("leaf"));
    assert_eq!(gc_origin.tool_call_id.as_deref(), Some("c-gc"));
    assert_ne!(gc_origin.fork_id, child_origin.fork_id);
    for origin in &origins {
        assert_eq!(origin.session_id, "s-fork");
    }
    // Every agent call's events are complete: one ReactStart and one ReactEnd each.
    for id in [
        &parent_id,
        &child_origin.agent_call_id,
        &gc_origin.agent_call_id,
    ] {
        let of_call: Vec<_> = outputs
            .iter()
            .filter_map(|o| o.as_event())
            .filter(|e| &e.origin().agent_call_id == id)
            .map(|e| e.event.kind())
            .collect();
        assert_eq!(of_call.first(), Some(&ReactEventKind::ReactStart));
        assert_eq!(of_call.last(), Some(&ReactEventKind::ReactEnd));
    }
    // Child events sit inside the parent's helper call, grandchild events inside the child's leaf call.
    let evs: Vec<_> = outputs.iter().filter_map(|o| o.as_event()).collect();
    let parent_tool_start = evs
        .iter()
        .position(|e| e.origin().fork_depth == 0 && e.event.kind() == ReactEventKind::ToolCallStart)
        .unwrap();
    let parent_tool_end = evs
        .iter()
        .position(|e| e.origin().fork_depth == 0 && e.event.kind() == ReactEventKind::ToolCallEnd)
        .unwrap();
    let child_positions: Vec<usize> = evs
        .iter()
        .enumerate()
        .filter(|(_, e)| e.origin().fork_depth >= 1)
        .map(|(i, _)| i)
        .collect();
    assert!(
        child_positions
            .iter()
            .all(|&i| parent_tool_start < i && i < parent_tool_end)
    );
    match &evs[parent_tool_end].event {
        ReactEvent::ToolCallEnd(end) => assert_eq!(end.result, serde_json::json!("child answer")),
        other => panic!("{other:?}"),
    }
    assert_eq!(react_end(&outputs).response, "parent answer");

    // Routing by origin works with plain filters.
    let leaf_texts: Vec<String> = outputs
        .iter()
        .filter_map(|o| o.as_event())
        .filter(|e| e.origin().fork_depth == 2)
        .filter_map(|e| match &e.event {
            ReactEvent::LlmChunkArrive(c) => Some(c.delta.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(leaf_texts, ["leaf answer"]);

    // Every ReAct event of all three agent calls reached the bus exactly once.
    let react_published = bus
        .types()
        .iter()
        .filter(|t| t.starts_with("react."))
        .count();
    assert_eq!(react_published, evs.len());
}

#[tokio::test]
async fn combinators_and_a_failing_observer() {
    let agent = Agent::builder(ScriptedTurns::new("scripted", calc_turns()))
        .tool(calculator())
        .build();
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let (stream, failures) = agent.run("go").observe(move |event, _origin| {
        counter.fetch_add(1, Ordering::Relaxed);
        match event.kind() {
            ReactEventKind::LlmChunkArrive => Err(Box::new("observer error")),
            ReactEventKind::ToolCallStart => panic!("observer panic"),
            _ => Ok(()),
        }
    });
    let outputs = collect(stream).await;
    check_invariants(&outputs);
    assert_eq!(outputs.len(), 21);
    assert_eq!(seen.load(Ordering::Relaxed), 20);
    assert_eq!(failures.count(), 5);

    let agent = Agent::builder(ScriptedTurns::new("scripted", calc_turns()))
        .tool(calculator())
        .build();
    let responses: Vec<_> = agent.run("go").responses_only().collect().await;
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].response, "17 * 23 = 391");

    let agent = Agent::builder(ScriptedTurns::new("scripted", calc_turns()))
        .tool(calculator())
        .build();
    let chunks: Vec<_> = agent
        .run("go")
        .filter_events(&[ReactEventKind::LlmChunkArrive, ReactEventKind::ToolCallEnd])
        .collect()
        .await;
    assert_eq!(chunks.len(), 5);

    let agent = Agent::builder(ScriptedTurns::new("scripted", calc_turns()))
        .tool(calculator())
        .build();
    let all_events: Vec<_> = agent.run("go").events_only().collect().await;
    assert_eq!(all_events.len(), 20);
}

#[tokio::test]
async fn bus_gets_react_events_in_wire_format_and_vision_agents_events() {
    let bus = Collected::default();
    let agent = Agent::builder(ScriptedTurns::new("scripted", calc_turns()))
        .tool(calculator())
        .session_id("s-bus")
        .publisher(bus.publisher())
        .build();
    let outputs = collect(agent.run("go")).await;
    agent.finish();
    agent.finish();
    let types = bus.types();
    assert_eq!(types.first(), Some(&"agent.agent_turn_started"));
    assert_eq!(
        &types[types.len() - 3..],
        ["react.react_end", "agent.agent_turn_ended", "agent.finish"]
    );
    let tool_start = types
        .iter()
        .position(|t| *t == "plugin.llm.tool.start")
        .unwrap();
    assert_eq!(types[tool_start - 1], "react.tool_call_start");
    let tool_end = types
        .iter()
        .position(|t| *t == "plugin.llm.tool.end")
        .unwrap();
    assert_eq!(types[tool_end - 1], "react.tool_call_end");

    let published = bus.0.lock().unwrap();
    let react: Vec<_> = published
        .iter()
        .filter(|e| e.event_type().starts_with("react."))
        .collect();
    let stream_events = events(&outputs);
    assert_eq!(react.len(), stream_events.len());
    let registry = agentbus_events::Registry::catalogue();
    for (published, streamed) in react.iter().zip(stream_events) {
        let wire = published.to_wire_string().unwrap();
        let value: serde_json::Value = serde_json::from_str(&wire).unwrap();
        assert_eq!(value["type"], streamed.event_type());
        assert_eq!(value["session_id"], "s-bus");
        assert_eq!(value["origin"]["event_seq"], streamed.origin().event_seq);
        let decoded = registry.decode(wire.as_bytes()).unwrap();
        assert_eq!(decoded.event_type(), published.event_type());
        assert_eq!(decoded.meta().event_id, published.meta().event_id);
    }
    let end = published
        .iter()
        .find_map(|e| e.downcast_ref::<agentbus_events::tool::ToolEndEvent>())
        .unwrap();
    assert!(end.success);
    assert_eq!(end.tool_call_id.as_deref(), Some("call_1"));
    assert!(end.execution_time_ms.is_some());
    assert!(
        published
            .iter()
            .all(|e| e.meta().session_id.as_deref() == Some("s-bus"))
    );
}

#[tokio::test]
async fn tool_concurrency_limit_is_respected() {
    let running = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let tool = FunctionTool::new(
        "work",
        "Works.",
        move |_: serde_json::Map<String, serde_json::Value>| {
            let (r, p) = (r.clone(), p.clone());
            async move {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
                r.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>("ok")
            }
        },
    );
    let calls: Vec<ScriptedCall> = (0..6)
        .map(|i| ScriptedCall::new(format!("c{i}"), "work", "{}"))
        .collect();
    let model = ScriptedTurns::new(
        "scripted",
        vec![
            turn(vec![
                tool_calls(&calls, 1),
                vec![finish("tool_calls", 1, 1)],
            ]),
            turn(vec![text(&["done"]), vec![finish("stop", 1, 1)]]),
        ],
    );
    let agent = Agent::builder(model).tool(tool).tool_concurrency(2).build();
    let outputs = collect(agent.run("go")).await;
    check_invariants(&outputs);
    assert!(peak.load(Ordering::SeqCst) <= 2);
    let ends = kinds(&outputs)
        .iter()
        .filter(|k| **k == ReactEventKind::ToolCallEnd)
        .count();
    assert_eq!(ends, 6);
}

#[tokio::test]
async fn history_continues_a_conversation() {
    let model = Arc::new(ScriptedTurns::new(
        "scripted",
        vec![
            turn(vec![text(&["Hi Ada"]), vec![finish("stop", 1, 1)]]),
            turn(vec![
                text(&["Your name is Ada"]),
                vec![finish("stop", 1, 1)],
            ]),
        ],
    ));
    let agent = Agent::builder(model.clone())
        .system_prompt("Be brief.")
        .build();
    let first: Vec<_> = agent.run("I am Ada").responses_only().collect().await;
    let history = first[0].messages.clone();
    let second: Vec<_> = agent
        .run_request(RunRequest::new("Who am I?").history(history))
        .responses_only()
        .collect()
        .await;
    let roles: Vec<Role> = second[0].messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::System,
            Role::User,
            Role::Assistant,
            Role::User,
            Role::Assistant
        ]
    );
    let seen = &model.requests()[1].messages;
    assert_eq!(seen.len(), 4);
    assert_eq!(seen.iter().filter(|m| m.role == Role::System).count(), 1);
}

/// A response that opens with a tool call sent whole (no argument fragments, no text)
/// has a time to first token: the call is the first output.
#[tokio::test]
async fn a_response_that_starts_with_a_whole_tool_call_has_a_time_to_first_token() {
    let call = agentbus_events::stream::StreamEvent::ToolCall(agentbus_events::stream::ToolCall {
        tool_use_id: "call_1".into(),
        tool_name: "add".into(),
        tool_input: serde_json::json!({"a": 2, "b": 3}),
        arguments_raw: None,
    });
    let delay = Duration::from_millis(5);
    let model = ScriptedTurns::new(
        "scripted",
        vec![
            Turn::new(vec![call, finish("tool_calls", 10, 5)]).with_delay(delay),
            turn(vec![text(&["5"]), vec![finish("stop", 20, 1)]]),
        ],
    );
    let agent = Agent::builder(model).tool(add_tool()).build();
    let outputs = collect(agent.run("2 + 3?")).await;
    check_invariants(&outputs);
    let ends: Vec<_> = events(&outputs)
        .into_iter()
        .filter_map(|e| match e {
            ReactEvent::LlmCallEnd(end) => Some(end),
            _ => None,
        })
        .collect();
    assert_eq!(ends.len(), 2);
    assert_eq!(ends[0].tool_calls.len(), 1);
    let ttft = ends[0]
        .time_to_first_token_ms
        .expect("a call that opens with a tool call has a TTFT");
    // The scripted stream sleeps `delay` before the call: the TTFT includes it, and it
    // is not later than the end of the call.
    assert!(
        ttft >= delay.as_secs_f64() * 1000.0 && ttft <= ends[0].execution_time_ms,
        "ttft {ttft} ms, call {} ms",
        ends[0].execution_time_ms
    );
    assert!(ends[1].time_to_first_token_ms.is_some());
}

/// An event's `type` and its origin's `event_seq` (absent for non-ReAct events).
type TypeAndSeq = (String, Option<u64>);

#[tokio::test]
async fn a_real_bus_receives_every_event_in_order() {
    let bus = agentbus::EventManager::new();
    let seen: Arc<Mutex<Vec<TypeAndSeq>>> = Arc::default();
    let sink = seen.clone();
    bus.subscribe("collector", move |event: Arc<dyn DynEvent>| {
        let sink = sink.clone();
        async move {
            let wire: serde_json::Value = event.to_wire_value().unwrap();
            let seq = wire["origin"]["event_seq"].as_u64();
            sink.lock()
                .unwrap()
                .push((event.event_type().to_owned(), seq));
        }
    })
    .unwrap();
    let agent = Agent::builder(ScriptedTurns::new("scripted", calc_turns()))
        .tool(calculator())
        .bus(&bus)
        .build();
    let outputs = collect(agent.run("go")).await;
    agent.finish();
    bus.wait(Duration::from_secs(5)).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let react: Vec<_> = seen
        .iter()
        .filter(|(t, _)| t.starts_with("react."))
        .collect();
    let streamed = events(&outputs);
    assert_eq!(react.len(), streamed.len());
    for ((t, seq), event) in react.iter().zip(streamed) {
        assert_eq!(t, event.event_type());
        assert_eq!(*seq, Some(event.origin().event_seq));
    }
    let others: Vec<&str> = seen
        .iter()
        .map(|(t, _)| t.as_str())
        .filter(|t| !t.starts_with("react."))
        .collect();
    assert_eq!(
        others,
        [
            "agent.agent_turn_started",
            "plugin.llm.tool.start",
            "plugin.llm.tool.end",
            "agent.agent_turn_ended",
            "agent.finish"
        ]
    );
    let _report = bus.shutdown(Duration::from_secs(1)).await;
}

/// A slow subscriber with the `Block` policy and a tiny queue (a store that fell behind)
/// slows the run down instead of losing its events: the run waits for room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_blocking_subscriber_gets_every_event_of_the_run() {
    let bus = agentbus::EventManager::new();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = seen.clone();
    bus.subscribe_with(
        "slow-store",
        agentbus::SubscribeOptions::new()
            .capacity(2)
            .overflow(agentbus::Overflow::Block),
        move |event: Arc<dyn DynEvent>| {
            let sink = sink.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                sink.lock().unwrap().push(event.event_type().to_owned());
            }
        },
    )
    .unwrap();
    let publisher = agentbus_agent::Publisher::bus(bus.clone());
    let agent = Agent::builder(ScriptedTurns::new("scripted", calc_turns()))
        .tool(calculator())
        .publisher(publisher.clone())
        .build();
    let outputs = collect(agent.run("go")).await;
    bus.wait(Duration::from_secs(5)).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(publisher.refused(), 0, "no event was refused");
    let react = seen.iter().filter(|t| t.starts_with("react.")).count();
    assert_eq!(react, events(&outputs).len());
    // Two lifecycle events and two tool events beside the ReAct ones.
    assert_eq!(seen.len(), react + 4);
    let _report = bus.shutdown(Duration::from_secs(1)).await;
}

/// The tool choice of each request `model` received, in order.
fn tool_choices(model: &ScriptedTurns) -> Vec<Option<agentbus_llm::ToolChoice>> {
    model
        .requests()
        .iter()
        .map(|request| request.tool_choice.clone())
        .collect()
}

#[tokio::test]
async fn the_tool_choice_policy_sets_each_iteration_and_a_run_can_override_it() {
    use agentbus_agent::ToolChoicePolicy;
    use agentbus_llm::ToolChoice;

    let model = Arc::new(ScriptedTurns::new("scripted", calc_turns()));
    let agent = Agent::builder(model.clone())
        .tool(calculator())
        .tool_choice(ToolChoicePolicy::first_then(
            ToolChoice::Required,
            ToolChoice::Auto,
        ))
        .build();
    let outputs = collect(agent.run("What is 17 * 23?")).await;
    check_invariants(&outputs);
    assert_eq!(
        tool_choices(&model),
        vec![Some(ToolChoice::Required), Some(ToolChoice::Auto)]
    );

    // A run's own policy wins over the agent's.
    let model = Arc::new(ScriptedTurns::new("scripted", calc_turns()));
    let agent = Agent::builder(model.clone())
        .tool(calculator())
        .tool_choice(ToolChoicePolicy::always(ToolChoice::None))
        .build();
    let policy = "calculator".parse::<ToolChoicePolicy>().unwrap();
    collect(agent.run_request(RunRequest::new("What is 17 * 23?").tool_choice(policy))).await;
    assert_eq!(
        tool_choices(&model),
        vec![
            Some(ToolChoice::Tool("calculator".into())),
            Some(ToolChoice::Auto)
        ]
    );

    // Without tools nothing is sent, whatever the policy.
    let model = Arc::new(ScriptedTurns::new(
        "scripted",
        vec![turn(vec![text(&["hi"]), vec![finish("stop", 1, 1)]])],
    ));
    let agent = Agent::builder(model.clone())
        .tool_choice(ToolChoicePolicy::always(ToolChoice::Required))
        .build();
    collect(agent.run("hello")).await;
    assert_eq!(tool_choices(&model), vec![None]);
}
