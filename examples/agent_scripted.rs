//! A ReAct agent with the calculator tool, driven by a scripted model (no server, no key):
//! the model asks for `calculator`, the agent runs it, the model answers. Every step is an
//! event on the stream, and on the bus.
//!
//! Run: `cargo run -p agentbus-examples --example agent_scripted`

use std::sync::Arc;
use std::time::Duration;

use agentbus::EventManager;
use agentbus_agent::react::{ReactEvent, ReactOutput};
use agentbus_agent::testing::{ScriptedCall, ScriptedTurns, Turn, finish, text, tool_calls};
use agentbus_agent::tools::calculator;
use agentbus_agent::{Agent, ReactStreamExt};
use agentbus_events::DynEvent;
use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Turn 1: the model calls the calculator. Turn 2: it answers with the result.
    let mut first = tool_calls(
        &[ScriptedCall::new(
            "call_1",
            "calculator",
            r#"{"expression":"17 * 23"}"#,
        )],
        3,
    );
    first.push(finish("tool_calls", 40, 12));
    let mut second = text(&["17 * 23 ", "is ", "391."]);
    second.push(finish("stop", 60, 6));
    let model = ScriptedTurns::new("scripted", vec![Turn::new(first), Turn::new(second)]);

    // The bus sees the ReAct events and the Vision Agents events the run implies.
    let bus = EventManager::new();
    bus.subscribe("tool-log", |e: Arc<dyn DynEvent>| async move {
        if e.event_type() == "plugin.llm.tool.end" {
            println!("bus: {}", e.event_type());
        }
    })?;

    let agent = Agent::builder(model).tool(calculator()).bus(&bus).build();
    // An observer sees every event without consuming the stream; one that fails is counted,
    // and the stream goes on.
    let (stream, observer_failures) = agent.run("What is 17 * 23?").observe(|event, origin| {
        println!("  #{} {:?}", origin.event_seq, event.kind());
        Ok(())
    });
    let mut stream = Box::pin(stream);
    while let Some(output) = stream.next().await {
        match output {
            ReactOutput::Event(e) => match &e.event {
                ReactEvent::ToolCallEnd(end) => {
                    println!(
                        "tool {} -> {} ({:.2} ms)",
                        end.tool_name, end.result, end.execution_time_ms
                    )
                }
                ReactEvent::ReactEnd(end) => println!(
                    "done: {} LLM calls, {} tool calls, {} tokens",
                    end.total_llm_calls,
                    end.total_tool_calls,
                    end.usage.input_tokens + end.usage.output_tokens
                ),
                _ => {}
            },
            ReactOutput::Response(r) => println!("answer: {}", r.response),
        }
    }
    bus.wait(Duration::from_secs(2)).await?;
    let report = bus.shutdown(Duration::from_secs(2)).await;
    println!(
        "the bus delivered {} events; observer failures: {}",
        report.delivered,
        observer_failures.count()
    );
    Ok(())
}
