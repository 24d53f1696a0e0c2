//! Two buses in two "processes" joined by NATS JetStream: agent events sent on one bus show
//! up, typed, on the other; the stream keeps them for a store writer.
//!
//! Needs a NATS server with JetStream (`nats-server -js`); by default this example starts
//! its own in a temporary directory (Debian: `apt-get install nats-server`), or give one:
//! `NATS_URL=nats://127.0.0.1:4222 cargo run -p agentbus-examples --example nats_bridge`.
//!
//! The same with the CLI, in four terminals:
//!
//! ```sh
//! agentbus store-writer --nats nats://127.0.0.1:4222 --store sqlite://agentbus.db
//! agentbus tail --nats nats://127.0.0.1:4222
//! agentbus run --nats nats://127.0.0.1:4222 "What is 17 * 23?"
//! agentbus run --nats nats://127.0.0.1:4222 "What time is it?"
//! ```

use std::sync::Arc;
use std::time::Duration;

use agentbus::EventManager;
use agentbus_events::EventMeta;
use agentbus_events::llm::LLMResponseChunkEvent;
use agentbus_nats::server::LocalServer;
use agentbus_nats::{Bridge, ExportOptions, NatsOptions, StartAt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("agentbus-example-{}", std::process::id()));
    let (url, _server) = match std::env::var("NATS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let server = LocalServer::start(&dir)?;
            (server.url(), Some(server))
        }
    };
    let options = NatsOptions::new(&url);

    // The "agent process": its bus, exported.
    let agent_bus = EventManager::new();
    let agent = Bridge::connect(&options).await?;
    let exporter = agent.export(&agent_bus, ExportOptions::default())?;

    // The "dashboard process": its bus, fed live from the stream.
    let dashboard_bus = EventManager::new();
    dashboard_bus.subscribe("print", |e: Arc<LLMResponseChunkEvent>| async move {
        println!(
            "dashboard got {:?} of session {:?}",
            e.delta.as_deref().unwrap_or(""),
            e.meta.session_id.as_deref().unwrap_or("-")
        );
    })?;
    let dashboard = Bridge::connect(&options).await?;
    let import = dashboard
        .import_live(&dashboard_bus, None, None, StartAt::New)
        .await?;

    for word in ["Hello", " from", " another", " process"] {
        agent_bus.try_send(LLMResponseChunkEvent {
            meta: EventMeta::for_session("demo-session"),
            delta: Some(word.into()),
            ..Default::default()
        })?;
    }
    let exported = exporter.close(Duration::from_secs(10)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    dashboard_bus.wait(Duration::from_secs(5)).await?;
    println!(
        "exported {} events (acknowledged by JetStream); the dashboard imported {}",
        exported.acked,
        import.stats().imported
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
