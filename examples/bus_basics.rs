//! The bus in one screen: typed, union and wildcard subscribers, a failing handler turned
//! into an `ExceptionEvent`, `wait`, and a draining `shutdown`.
//!
//! Run: `cargo run -p agentbus-examples --example bus_basics`

use std::sync::Arc;
use std::time::Duration;

use agentbus::{EventManager, event_union};
use agentbus_events::DynEvent;
use agentbus_events::base::ExceptionEvent;
use agentbus_events::llm::{LLMRequestStartedEvent, LLMResponseChunkEvent};

event_union! {
    /// The LLM events this example follows with one handler.
    enum LlmActivity {
        Started(LLMRequestStartedEvent),
        Chunk(LLMResponseChunkEvent),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bus = EventManager::new();

    // One type.
    bus.subscribe("request-log", |e: Arc<LLMRequestStartedEvent>| async move {
        println!("request {} on {:?}", e.request_id, e.model);
    })?;

    // A union of types, one handler.
    bus.subscribe("llm-activity", |e: LlmActivity| async move {
        match e {
            LlmActivity::Started(s) => println!("  started (streaming: {})", s.streaming),
            LlmActivity::Chunk(c) => println!("  chunk {:?}", c.delta),
        }
    })?;

    // A handler that fails: the bus publishes an ExceptionEvent and keeps going.
    bus.subscribe("flaky", |e: Arc<LLMResponseChunkEvent>| async move {
        if e.delta.as_deref() == Some("boom") {
            Err("the flaky handler gave up")
        } else {
            Ok(())
        }
    })?;
    bus.subscribe("failures", |e: Arc<ExceptionEvent>| async move {
        println!(
            "handler {} failed on {:?}: {}",
            e.handler, e.failed_event_type, e.exc
        );
    })?;

    // Every event, type-erased: what sinks are built on.
    bus.subscribe("jsonl", |e: Arc<dyn DynEvent>| async move {
        if let Ok(line) = e.to_wire_string() {
            println!("{line}");
        }
    })?;

    bus.send(LLMRequestStartedEvent {
        request_id: "req-1".into(),
        model: Some("gpt-4o-mini".into()),
        streaming: true,
        ..Default::default()
    })
    .await?;
    for delta in ["Hello", "boom", "!"] {
        bus.send(LLMResponseChunkEvent {
            delta: Some(delta.into()),
            ..Default::default()
        })
        .await?;
    }

    bus.wait(Duration::from_secs(2)).await?;
    let report = bus.shutdown(Duration::from_secs(2)).await;
    println!("shutdown: {report:?}");
    Ok(())
}
