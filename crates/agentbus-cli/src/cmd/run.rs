//! `agentbus run PROMPT`: runs the ReAct agent with the built-in tools (`calculator`,
//! `current_time`, `read_file`/`list_dir` confined to the current directory) on one
//! prompt, every step published on a bus.
//!
//! The command is three parts, each a small function: the model (from the provider
//! flags), the bus and what listens to it (the `--events jsonl` writer; a store or a
//! metrics endpoint attach here the same way), and the output (human or JSON lines).

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use agentbus::{EventManager, Overflow, SubscribeOptions};
use agentbus_agent::AgentOutput;
use agentbus_agent::ToolChoicePolicy;
use agentbus_agent::react::{ChunkChannel, ReactEndEvent, ReactEvent, ReactOutput};
use agentbus_agent::tools::Sandbox;
use agentbus_events::DynEvent;
use agentbus_llm::{ChatModel, InstrumentedModel};
use anyhow::Context;
use futures::StreamExt;

use super::provider::ProviderArgs;
use crate::broken_pipe;
use crate::terminal::{Sanitizer, sanitize};
use crate::userinfo::mask_userinfo;

/// How long the bus may take to deliver the last events after the run.
const DRAIN: Duration = Duration::from_secs(10);
/// Queue capacity of the `--events jsonl` writer (bounded; the agent never waits on it).
const JSONL_CAPACITY: usize = 1 << 16;

/// Output formats of `--events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EventsFormat {
    /// One wire-format JSON object per line, for every event published on the bus.
    Jsonl,
}

/// Arguments of `agentbus run`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus run \"What is 17 * 23?\"          the embedded local model (pulled on first use)
  agentbus run --events jsonl \"What time is it?\" | jq -c .type
  agentbus run --provider openai --model gpt-4o-mini \"List the files here\"
  agentbus run --no-store --max-iterations 3 \"Read README.md and summarise it\"

Ctrl-C cancels the run cleanly (exit status 130); the session stays replayable.")]
pub struct Args {
    /// The model to use.
    #[command(flatten)]
    pub provider: ProviderArgs,
    /// The most iterations (LLM call + tool batch) the agent may take.
    #[arg(long, default_value_t = 10, env = "AGENTBUS_MAX_ITERATIONS")]
    pub max_iterations: u32,
    /// Whether the model must call a tool: `auto`, `none`, `required`, a tool's name, or
    /// `FIRST,THEN` for the first iteration and the ones after it (`required` alone means
    /// `required,auto`; `default` sends nothing). Default: the provider's own
    /// (`auto`), except the embedded model's defaults (see the README).
    #[arg(long, value_name = "CHOICE", env = "AGENTBUS_TOOL_CHOICE")]
    pub tool_choice: Option<ToolChoicePolicy>,
    /// Write every bus event to stdout in this format instead of the human output.
    #[arg(long, value_enum)]
    pub events: Option<EventsFormat>,
    /// Where the session's events are stored (`--store URL`, `--no-store`).
    #[command(flatten)]
    pub store: super::store_args::StoreArgs,
    /// Metrics: `--metrics-addr HOST:PORT`, `--otlp-endpoint URL`, `--metrics-json`.
    #[command(flatten)]
    pub telemetry: super::telemetry_args::TelemetryArgs,
    /// NATS JetStream: `--nats URL` sends the run's events there too.
    #[command(flatten)]
    pub nats: super::nats_args::NatsArgs,
    /// The prompt.
    pub prompt: String,
}

/// Runs `agentbus run`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run_agent(args))
}

async fn run_agent(args: Args) -> anyhow::Result<ExitCode> {
    let bus = EventManager::new();
    // Cancels the run: Ctrl-C, or the reader of stdout going away (`| head`).
    let cancel = agentbus_agent::CancellationToken::new();
    let jsonl = match args.events {
        Some(EventsFormat::Jsonl) => Some(JsonlWriter::attach(&bus, cancel.clone())?),
        None => None,
    };
    let recorder = args.store.record(&bus)?;
    let nats = args.nats.export(&bus).await?;
    let telemetry = args.telemetry.start().await?;
    telemetry.attach(&bus)?;
    // One session id for the agent's events and the model's LLM events, so stores,
    // metrics and replays see one session.
    let session_id = uuid::Uuid::new_v4().to_string();
    let model: Arc<dyn ChatModel> = Arc::new(
        InstrumentedModel::new(args.provider.build()?, bus.clone()).with_session(&session_id),
    );
    let root = std::env::current_dir().context("reading the current directory")?;
    let agent = super::agent_setup::AgentSetup {
        model,
        provider: args.provider.provider,
        sandbox: file_sandbox(&root, &args.store)?,
        tool_choice: args.tool_choice.clone(),
        max_iterations: args.max_iterations,
        session_id: &session_id,
    }
    .build(&bus);

    let started = Instant::now();
    let mut human = jsonl.is_none().then(HumanOutput::default);
    let mut end: Option<ReactEndEvent> = None;
    // Ctrl-C cancels the run cleanly (it ends aborted, the store is flushed) and the
    // command exits with 130; a second Ctrl-C quits at once.
    let interrupted = Arc::new(AtomicBool::new(false));
    let ctrl_c = tokio::spawn({
        let (cancel, interrupted) = (cancel.clone(), interrupted.clone());
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::SeqCst);
                eprintln!("\ninterrupted: cancelling the run (Ctrl-C again to quit at once)");
                cancel.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        }
    });
    let mut stream = agent
        .run_request(agentbus_agent::RunRequest::new(args.prompt).cancellation(cancel.clone()));
    // Whether the reader of stdout went away: the run is cancelled (the store still gets
    // every event) and the command ends quietly with status 0.
    let mut reader_gone = false;
    while let Some(output) = stream.next().await {
        if let ReactOutput::Event(event) = &output
            && let ReactEvent::ReactEnd(react_end) = &event.event
            && event.origin().fork_depth == 0
        {
            end = Some(react_end.clone());
        }
        if let Some(shown) = human.as_mut().map(|human| human.show(&output)) {
            match shown {
                Ok(()) => {}
                Err(error) if broken_pipe::is_broken_pipe_io(&error) => {
                    reader_gone = true;
                    human = None;
                    cancel.cancel();
                }
                Err(error) => return Err(error).context("writing to stdout"),
            }
        }
    }
    let ended = human
        .as_mut()
        .map(|human| human.end_line(&mut std::io::stdout().lock()));
    if let Some(Err(error)) = ended {
        if !broken_pipe::is_broken_pipe_io(&error) {
            return Err(error).context("writing to stdout");
        }
        reader_gone = true;
        human = None;
    }
    agent.finish();
    if let Err(error) = bus.wait(DRAIN).await {
        tracing::warn!(%error, "the bus did not drain");
    }
    if let Some(nats) = nats {
        nats.finish().await?;
    }
    if let Some(recorder) = recorder {
        let location = recorder.location().to_owned();
        let stored = recorder.finish().await?;
        let session = end
            .as_ref()
            .map(|e| e.origin.session_id.as_str())
            .unwrap_or("?");
        let location = mask_userinfo(&location);
        eprintln!(
            "session {session}: {} events stored in {location} \
             (replay: agentbus replay {session} --store {location})",
            stored.written
        );
    }
    let report = bus.shutdown(DRAIN).await;
    tracing::debug!(?report, "bus shut down");
    args.telemetry.finish(telemetry).await?;
    if let Some(jsonl) = jsonl {
        jsonl.finish()?;
    }
    let end = end.context("the agent stopped without a ReactEnd event")?;
    if let Some(human) = human.as_mut() {
        human.summary(&end, started.elapsed())?;
    }
    ctrl_c.abort();
    Ok(if interrupted.load(Ordering::SeqCst) {
        ExitCode::from(130)
    } else if reader_gone {
        ExitCode::SUCCESS
    } else if end.aborted {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `--events jsonl`: a wildcard subscriber writing each event's wire JSON as a line.
///
/// The first failed write stops the output; when the reader went away (`| head`) it also
/// cancels the run, and `main` ends quietly.
pub(crate) struct JsonlWriter {
    out: Arc<Mutex<std::io::BufWriter<std::io::Stdout>>>,
    failed: Arc<Mutex<Option<anyhow::Error>>>,
}

impl JsonlWriter {
    pub(crate) fn attach(
        bus: &EventManager,
        cancel: agentbus_agent::CancellationToken,
    ) -> anyhow::Result<Self> {
        let out = Arc::new(Mutex::new(std::io::BufWriter::new(std::io::stdout())));
        let failed: Arc<Mutex<Option<anyhow::Error>>> = Arc::default();
        let (writer, error) = (out.clone(), failed.clone());
        bus.subscribe_with(
            "agentbus-run-jsonl",
            SubscribeOptions::new()
                .capacity(JSONL_CAPACITY)
                .overflow(Overflow::Block),
            move |event: Arc<dyn DynEvent>| {
                let (writer, error, cancel) = (writer.clone(), error.clone(), cancel.clone());
                async move {
                    let mut failed = error.lock().unwrap_or_else(PoisonError::into_inner);
                    if failed.is_some() {
                        return;
                    }
                    let mut line = Vec::with_capacity(512);
                    let written = event
                        .write_wire(&mut line)
                        .map_err(anyhow::Error::from)
                        .and_then(|()| {
                            line.push(b'\n');
                            let mut out = writer.lock().unwrap_or_else(PoisonError::into_inner);
                            out.write_all(&line).map_err(|e| {
                                if broken_pipe::is_broken_pipe_io(&e) {
                                    cancel.cancel();
                                }
                                anyhow::Error::from(e)
                            })
                        });
                    if let Err(written) = written {
                        *failed = Some(written);
                    }
                }
            },
        )
        .context("subscribing the JSON lines writer")?;
        Ok(Self { out, failed })
    }

    pub(crate) fn finish(self) -> anyhow::Result<()> {
        if let Some(error) = self
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            return Err(error.context("writing events"));
        }
        self.out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
            .context("writing events to stdout")
    }
}

/// The human output: streaming text, each tool call with its arguments, result and
/// duration, and a summary line. Text from the model, the tools and servers is printed
/// without terminal control sequences ([`crate::terminal`]).
#[derive(Default)]
struct HumanOutput {
    /// Whether the cursor is in the middle of a line of streamed text.
    mid_line: bool,
    /// The model's text stream, cleaned across deltas.
    text: Sanitizer,
}

impl HumanOutput {
    fn show(&mut self, output: &AgentOutput) -> std::io::Result<()> {
        let ReactOutput::Event(event) = output else {
            return Ok(());
        };
        let indent = "  ".repeat(event.origin().fork_depth as usize);
        let mut out = std::io::stdout().lock();
        match &event.event {
            ReactEvent::LlmChunkArrive(chunk) if chunk.channel == ChunkChannel::Text => {
                let delta = self.text.clean(&chunk.delta);
                if delta.is_empty() {
                    return Ok(());
                }
                if !self.mid_line {
                    write!(out, "{indent}")?;
                }
                write!(out, "{delta}")?;
                self.mid_line = !delta.ends_with('\n');
                out.flush()?;
            }
            ReactEvent::ToolCallStart(start) => {
                self.end_line(&mut out)?;
                writeln!(
                    out,
                    "{indent}→ {}({})",
                    sanitize(&start.tool_name),
                    sanitize(&start.arguments.to_string())
                )?;
            }
            ReactEvent::ToolCallEnd(end) => {
                self.end_line(&mut out)?;
                let outcome = match &end.error {
                    None => format!("✓ {}", shorten(&agentbus_agent::result_text(&end.result))),
                    Some(error) => format!("✗ {}", shorten(&error.message)),
                };
                writeln!(
                    out,
                    "{indent}  {}  ({} {:.1} ms)",
                    sanitize(&outcome),
                    sanitize(&end.tool_name),
                    end.execution_time_ms
                )?;
            }
            ReactEvent::LlmCallError(error) => {
                self.end_line(&mut out)?;
                let message = mask_userinfo(&error.error.to_string()).into_owned();
                writeln!(out, "{indent}LLM error: {}", sanitize(&message))?;
            }
            _ => {}
        }
        Ok(())
    }

    fn end_line(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        if self.mid_line {
            writeln!(out)?;
            self.mid_line = false;
        }
        Ok(())
    }

    fn summary(&mut self, end: &ReactEndEvent, elapsed: Duration) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        self.end_line(&mut out)?;
        let cost = end
            .cost_usd
            .map(|c| format!("${c:.6}"))
            .unwrap_or_else(|| "cost unknown".into());
        let status = match (&end.abort_reason, &end.error) {
            (None, _) => "done".to_owned(),
            (Some(reason), Some(error)) => format!(
                "aborted ({reason}: {})",
                sanitize(&mask_userinfo(&error.message))
            ),
            (Some(reason), None) => format!("aborted ({reason})"),
        };
        writeln!(
            out,
            "— {status} · {} iteration{} · {} LLM call{} · {} tool call{} · {} in / {} out tokens ({:.1} out tok/s) · {cost} · {:.2} s",
            end.iterations,
            plural(end.iterations),
            end.total_llm_calls,
            plural(end.total_llm_calls),
            end.total_tool_calls,
            plural(end.total_tool_calls),
            end.usage.input_tokens,
            end.usage.output_tokens,
            end.usage.output_tokens as f64 / elapsed.as_secs_f64().max(1e-9),
            elapsed.as_secs_f64()
        )
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A tool result cut to one readable line.
fn shorten(text: &str) -> String {
    const MAX: usize = 200;
    let one_line = text.replace('\n', "⏎");
    if one_line.chars().count() <= MAX {
        one_line
    } else {
        let cut: String = one_line.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// The file tools' sandbox: the working directory, without the store's files when the
/// store is an SQLite file (earlier sessions must not go to the provider).
pub(crate) fn file_sandbox(
    root: &std::path::Path,
    store: &super::store_args::StoreArgs,
) -> anyhow::Result<Sandbox> {
    let mut sandbox = Sandbox::new(root).context("setting up the file tools")?;
    if let Ok(agentbus_store::StoreLocation::Sqlite { path }) =
        agentbus_store::StoreLocation::parse(&store.store)
    {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            sandbox = sandbox.deny_file(path.with_file_name(format!("{name}{suffix}")));
        }
    }
    Ok(sandbox)
}
