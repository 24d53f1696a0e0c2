//! `agentbus chat`: stream one answer from a provider.
//!
//! Default output is for people: the answer's text on stdout as it streams (reasoning and
//! tool calls on stderr), then one summary line on stderr (model, TTFT, total time,
//! tokens in/out, tokens/s, cost). `--events jsonl` writes every event published on the
//! bus during the call to stdout, wire-format JSON one per line, and nothing else.
//! The exit status is non-zero when the stream ended in an error.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentbus::EventManager;
use agentbus_events::DynEvent;
use agentbus_llm::{ChatModel, ChatRequest, InstrumentedModel, Message, StreamEvent};
use futures::StreamExt;

use super::provider::ProviderArgs;
use crate::broken_pipe;
use crate::terminal::{Sanitizer, sanitize};
use crate::userinfo::mask_userinfo;

/// Arguments of `agentbus chat`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus chat \"Tell me a joke\"             the embedded local model
  agentbus chat --system \"Answer in French\" \"Hello\"
  agentbus chat --provider anthropic --max-tokens 200 \"Explain SSE\"
  agentbus chat --events jsonl \"Hi\" | jq -c .type")]
pub struct Args {
    /// Provider, endpoint, model and key.
    #[command(flatten)]
    pub provider: ProviderArgs,
    /// A system prompt.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Write the bus events instead of the text: `jsonl`, one wire-format event per line.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub events: Option<EventsFormat>,
    /// Maximum tokens to generate.
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Metrics: `--metrics-addr HOST:PORT`, `--otlp-endpoint URL`, `--metrics-json`.
    #[command(flatten)]
    pub telemetry: super::telemetry_args::TelemetryArgs,

    /// Where the call's events are stored (`--store URL`, `--no-store`).
    #[command(flatten)]
    pub store: super::store_args::StoreArgs,
    /// NATS JetStream: `--nats URL` sends the call's events there too.
    #[command(flatten)]
    pub nats: super::nats_args::NatsArgs,
    /// The prompt (several words are joined with spaces).
    #[arg(required = true, num_args = 1..)]
    pub prompt: Vec<String>,
}

/// How `--events` writes events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EventsFormat {
    /// One wire-format JSON event per line.
    Jsonl,
}

/// Runs `agentbus chat`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(chat(args))
}

/// What the call produced, for the summary line.
#[derive(Default)]
struct Outcome {
    ttft: Option<Duration>,
    finish: Option<agentbus_llm::Finish>,
    error: Option<agentbus_llm::StreamError>,
}

async fn chat(args: Args) -> anyhow::Result<ExitCode> {
    let model = args.provider.build()?;
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(Message::system(system.clone()));
    }
    messages.push(Message::user(args.prompt.join(" ")));
    let request = ChatRequest {
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        ..ChatRequest::new(messages)
    };
    let jsonl = args.events == Some(EventsFormat::Jsonl);

    let bus = EventManager::new();
    let recorder = args.store.record(&bus)?;
    let nats = args.nats.export(&bus).await?;
    let telemetry = args.telemetry.start().await?;
    telemetry.attach(&bus)?;
    if jsonl {
        bus.subscribe("chat-jsonl", |event: Arc<dyn DynEvent>| async move {
            match event.to_wire_string() {
                Ok(line) => {
                    let mut stdout = std::io::stdout().lock();
                    let _ = writeln!(stdout, "{line}");
                }
                Err(error) => tracing::error!(%error, "cannot encode an event"),
            }
        })?;
    }
    let session_id = format!(
        "chat-{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let model_name = model.name().to_owned();
    let instrumented = InstrumentedModel::new(model, bus.clone()).with_session(&session_id);

    let started = Instant::now();
    let mut outcome = Outcome::default();
    let mut stream = instrumented.stream(request);
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let mut in_reasoning = false;
    // Model text without terminal control sequences, cleaned across deltas.
    let (mut text, mut reasoning) = (Sanitizer::default(), Sanitizer::default());
    // Whether the reader of stdout went away (`| head`): the call stops, quietly.
    let mut reader_gone = false;
    while let Some(event) = stream.next().await {
        let is_content = matches!(
            event,
            StreamEvent::TextDelta(_)
                | StreamEvent::ReasoningDelta(_)
                | StreamEvent::ToolCallDelta(_)
        );
        if is_content && outcome.ttft.is_none() {
            outcome.ttft = Some(started.elapsed());
        }
        match event {
            StreamEvent::TextDelta(delta) if !jsonl => {
                if in_reasoning {
                    in_reasoning = false;
                    let _ = writeln!(stderr);
                }
                let written = stdout
                    .write_all(text.clean(&delta.content).as_bytes())
                    .and_then(|()| stdout.flush());
                if let Err(error) = written
                    && broken_pipe::is_broken_pipe_io(&error)
                {
                    reader_gone = true;
                    break;
                }
            }
            StreamEvent::ReasoningDelta(delta) if !jsonl && !delta.content.is_empty() => {
                if !in_reasoning {
                    in_reasoning = true;
                    let _ = write!(stderr, "[reasoning] ");
                }
                let _ = stderr.write_all(reasoning.clean(&delta.content).as_bytes());
            }
            StreamEvent::ToolCall(call) if !jsonl => {
                let _ = writeln!(
                    stderr,
                    "\n[tool call {} {}({})]",
                    sanitize(&call.tool_use_id),
                    sanitize(&call.tool_name),
                    sanitize(&call.tool_input.to_string())
                );
            }
            StreamEvent::Finish(finish) => outcome.finish = Some(finish),
            StreamEvent::Error(error) => outcome.error = Some(error),
            _ => {}
        }
    }
    drop(stream);
    let total = started.elapsed();
    if let Err(error) = bus.wait(Duration::from_secs(10)).await {
        tracing::warn!(%error, "not every event was delivered");
    }
    if let Some(nats) = nats {
        nats.finish().await?;
    }
    if let Some(recorder) = recorder {
        let location = mask_userinfo(recorder.location()).into_owned();
        let stored = recorder.finish().await?;
        eprintln!(
            "session {session_id}: {} events stored in {location} \
             (replay: agentbus replay {session_id} --store {location})",
            stored.written
        );
    }
    let _report = bus.shutdown(Duration::from_secs(5)).await;
    args.telemetry.finish_if_requested(telemetry).await?;

    if reader_gone {
        return Ok(ExitCode::SUCCESS);
    }
    if !jsonl {
        let _ = writeln!(stdout);
        let _ = stdout.flush();
        if let Some(finish) = &outcome.finish {
            if let Some(refusal) = &finish.refusal {
                let _ = writeln!(stderr, "[refusal] {}", sanitize(refusal));
            }
            let _ = writeln!(
                stderr,
                "{}",
                sanitize(&summary_line(&model_name, finish, outcome.ttft, total))
            );
        }
    }
    match outcome.error {
        Some(error) => {
            let message = mask_userinfo(&error.to_string()).into_owned();
            eprintln!("error: {}", sanitize(&message));
            Ok(ExitCode::FAILURE)
        }
        None if outcome.finish.is_some() => Ok(ExitCode::SUCCESS),
        None => {
            eprintln!("error: the stream ended without a finish event");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `model · TTFT · total · tokens in/out · tokens/s · cost`.
fn summary_line(
    model: &str,
    finish: &agentbus_llm::Finish,
    ttft: Option<Duration>,
    total: Duration,
) -> String {
    let model = if finish.model.is_empty() {
        model
    } else {
        &finish.model
    };
    let ttft_text = ttft.map_or_else(|| "-".to_owned(), |t| format!("{} ms", t.as_millis()));
    // Generation speed: output tokens over the time after the first token.
    let generating = total.saturating_sub(ttft.unwrap_or_default()).as_secs_f64();
    let rate = if finish.output_tokens > 0 && generating > 0.0 {
        format!("{:.1} tok/s", finish.output_tokens as f64 / generating)
    } else {
        "- tok/s".to_owned()
    };
    let cost = finish
        .cost_usd
        .map_or_else(|| "cost unknown".to_owned(), |c| format!("${c:.6}"));
    format!(
        "{model} · TTFT {ttft_text} · total {:.2} s · {} in / {} out tokens · {rate} · {cost} · {}",
        total.as_secs_f64(),
        finish.input_tokens,
        finish.output_tokens,
        finish.stop_reason
    )
}
