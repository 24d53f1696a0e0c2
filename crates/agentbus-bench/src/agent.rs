//! `agentbus bench agent`: one ReAct agent turn with a scripted model and no model time.
//!
//! The scenario: LLM call 1 streams 500 text chunks, then two parallel tool calls
//! (`add(a, b)`, `mul(a, b)`) whose argument fragments interleave by index (4 fragments
//! each), finish `tool_calls` with usage; the tools return at once; LLM call 2 streams 20
//! text chunks, finish `stop` with usage. Per configuration: time per turn (median and
//! p90 over `--turns` turns after `--warmup` turns), events per second through the
//! stream, and the process's peak RSS (`VmHWM`) after the run.
//!
//! Beside it in the same run:
//! - the floor: the same two scripted model streams consumed with no agent (what the
//!   model double itself costs);
//! - the agent attached to a bus with one wildcard subscriber (what publishing costs);
//! - SimpleLLMFunc's `llm_chat` on the same scenario with a fake provider
//!   (`bench/simplellmfunc_agent.py`), when `import SimpleLLMFunc` works in `--python`
//!   (default `python3.12`), and our ratio to it.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::python::peer_command;
use crate::stats::percentile;
use agentbus::{EventManager, Overflow, SubscribeOptions};
use agentbus_agent::testing::{ScriptedCall, ScriptedTurns, Turn, finish, text, tool_calls};
use agentbus_agent::{Agent, FunctionTool};
use agentbus_events::DynEvent;
use agentbus_llm::{ChatModel, ChatRequest};
use anyhow::Context;
use futures::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

/// Arguments of `agentbus bench agent`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus bench agent
  agentbus bench agent --turns 20 --json --no-python")]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Measured turns per configuration.
    #[arg(long, default_value_t = 50)]
    pub turns: usize,
    /// Turns run before measuring.
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// Text chunks of the first LLM call.
    #[arg(long, default_value_t = 500)]
    pub chunks: usize,
    /// Do not run the SimpleLLMFunc peer even if it is importable.
    #[arg(long)]
    pub no_python: bool,
    /// The Python interpreter for the SimpleLLMFunc peer (SimpleLLMFunc 0.8 needs ≥ 3.12).
    #[arg(long, default_value = "python3.12")]
    pub python: PathBuf,
    /// The SimpleLLMFunc peer script (default: the copy of `bench/simplellmfunc_agent.py`
    /// built into this binary, so it runs from any directory).
    #[arg(long)]
    pub script: Option<PathBuf>,
}

/// `bench/simplellmfunc_agent.py`, built in.
const SIMPLELLMFUNC_SCRIPT: &str = include_str!("../../../bench/simplellmfunc_agent.py");

/// The measured figures of one configuration.
#[derive(Clone, Debug)]
struct Figures {
    name: String,
    median_ms: f64,
    p90_ms: f64,
    events_per_turn: u64,
    events_per_s: f64,
    peak_rss_mb: Option<f64>,
}

impl Figures {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "per_turn_ms": {"median": self.median_ms, "p90": self.p90_ms},
            "events_per_turn": self.events_per_turn,
            "events_per_s": self.events_per_s,
            "peak_rss_mb": self.peak_rss_mb,
        })
    }
}

#[derive(Deserialize, JsonSchema)]
struct Pair {
    /// First operand.
    a: i64,
    /// Second operand.
    b: i64,
}

/// The scenario's two scripted LLM calls.
fn scenario(chunks: usize) -> Vec<Turn> {
    let words: Vec<String> = (0..chunks).map(|i| format!("w{} ", i % 10)).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let mut first = text(&words);
    first.extend(tool_calls(
        &[
            ScriptedCall::new("call_add", "add", r#"{"a": 1234, "b": 5678}"#),
            ScriptedCall::new("call_mul", "mul", r#"{"a": 1234, "b": 5678}"#),
        ],
        4,
    ));
    first.push(finish("tool_calls", 120, 530));
    let tail: Vec<String> = (0..20).map(|i| format!("t{i} ")).collect();
    let tail: Vec<&str> = tail.iter().map(String::as_str).collect();
    let mut second = text(&tail);
    second.push(finish("stop", 700, 20));
    vec![Turn::new(first), Turn::new(second)]
}

fn agent(chunks: usize, bus: Option<&EventManager>) -> Agent {
    let model = ScriptedTurns::cycling("bench", scenario(chunks));
    let add = FunctionTool::new("add", "Adds two integers.", |p: Pair| async move {
        Ok::<_, String>(p.a + p.b)
    });
    let mul = FunctionTool::new("mul", "Multiplies two integers.", |p: Pair| async move {
        Ok::<_, String>(p.a * p.b)
    });
    let builder = Agent::builder(model)
        .tool(add)
        .tool(mul)
        .session_id("bench");
    match bus {
        Some(bus) => builder.bus(bus).build(),
        None => builder.build(),
    }
}

/// The peak resident set size of this process so far, in MiB (Linux `VmHWM`).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs `turn` `warmup + turns` times; each returns how many items it streamed.
async fn measure<F, Fut>(
    name: &str,
    warmup: usize,
    turns: usize,
    mut turn: F,
) -> anyhow::Result<Figures>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u64>>,
{
    for _ in 0..warmup {
        turn().await?;
    }
    let mut times = Vec::with_capacity(turns);
    let mut events = 0u64;
    for _ in 0..turns {
        let start = Instant::now();
        events = turn().await?;
        times.push(start.elapsed());
    }
    let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let total: Duration = times.iter().sum();
    Ok(Figures {
        name: name.to_owned(),
        median_ms: percentile(&ms, 0.5),
        p90_ms: percentile(&ms, 0.9),
        events_per_turn: events,
        events_per_s: (events as f64 * turns as f64) / total.as_secs_f64().max(f64::EPSILON),
        peak_rss_mb: peak_rss_mb(),
    })
}

/// One agent turn, consumed to the end; the number of events it yielded.
async fn agent_turn(agent: &Agent) -> anyhow::Result<u64> {
    let mut stream = agent.run("Compute 1234 + 5678 and 1234 * 5678.");
    let mut events = 0u64;
    let mut answered = false;
    while let Some(output) = stream.next().await {
        match output {
            agentbus_agent::react::ReactOutput::Event(_) => events += 1,
            agentbus_agent::react::ReactOutput::Response(_) => answered = true,
        }
    }
    anyhow::ensure!(answered, "the benchmark turn ended without a response");
    Ok(events)
}

/// The floor: the two model streams consumed with no agent.
async fn model_only(model: &ScriptedTurns) -> anyhow::Result<u64> {
    let mut events = 0u64;
    for _ in 0..2 {
        let mut stream = model.stream(ChatRequest::from_prompt("x"));
        while let Some(event) = stream.next().await {
            std::hint::black_box(&event);
            events += 1;
        }
    }
    Ok(events)
}

/// Runs the SimpleLLMFunc peer if it is importable; `None` when it is not installed.
fn python_peer(args: &Args) -> anyhow::Result<Option<Figures>> {
    if args.no_python {
        return Ok(None);
    }
    let importable = Command::new(&args.python)
        .args(["-c", "import SimpleLLMFunc"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !importable {
        return Ok(None);
    }
    let script_name = args.script.as_ref().map_or_else(
        || "the built-in SimpleLLMFunc peer".to_owned(),
        |s| s.display().to_string(),
    );
    let output = peer_command(&args.python, args.script.as_deref(), SIMPLELLMFUNC_SCRIPT)
        .args([
            "--turns",
            &args.turns.to_string(),
            "--warmup",
            &args.warmup.to_string(),
        ])
        .args(["--chunks", &args.chunks.to_string()])
        .output()
        .with_context(|| format!("running {script_name}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{script_name} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The peer prints one JSON line last (its libraries may log above it).
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let value: Value = serde_json::from_str(last).context("reading the peer's JSON")?;
    let number = |key: &str| {
        value[key]
            .as_f64()
            .with_context(|| format!("peer JSON lacks `{key}`"))
    };
    Ok(Some(Figures {
        name: "SimpleLLMFunc llm_chat (Python)".into(),
        median_ms: number("per_turn_ms_median")?,
        p90_ms: number("per_turn_ms_p90")?,
        events_per_turn: value["events_per_turn"].as_u64().unwrap_or(0),
        events_per_s: number("events_per_s")?,
        peak_rss_mb: value["peak_rss_mb"].as_f64(),
    }))
}

/// The most a turn with one wildcard bus subscriber may cost, as a multiple of the bare
/// turn.
const TARGET_BUS_RATIO: f64 = 1.5;
/// How many times faster than SimpleLLMFunc's turn ours should be (same run).
const TARGET_SPEEDUP: f64 = 100.0;

/// Runs `agentbus bench agent`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.turns > 0, "--turns must be at least 1");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let (floor, plain, with_bus) = runtime.block_on(async {
        let model = ScriptedTurns::cycling("bench", scenario(args.chunks));
        let floor = measure(
            "scripted model streams only (floor)",
            args.warmup,
            args.turns,
            || model_only(&model),
        )
        .await?;
        let plain_agent = agent(args.chunks, None);
        let plain = measure("agentbus agent", args.warmup, args.turns, || {
            agent_turn(&plain_agent)
        })
        .await?;

        let bus = EventManager::new();
        let delivered = Arc::new(AtomicU64::new(0));
        let counter = delivered.clone();
        bus.subscribe_with(
            "bench-wildcard",
            SubscribeOptions::new()
                .capacity(65_536)
                .overflow(Overflow::DropOldest),
            move |event: Arc<dyn DynEvent>| {
                let counter = counter.clone();
                async move {
                    std::hint::black_box(event.event_type());
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            },
        )
        .context("subscribing to the bus")?;
        let bus_agent = agent(args.chunks, Some(&bus));
        let with_bus = measure(
            "agentbus agent + bus (1 wildcard subscriber)",
            args.warmup,
            args.turns,
            || agent_turn(&bus_agent),
        )
        .await?;
        bus.wait(Duration::from_secs(30))
            .await
            .context("draining the bus")?;
        let _report = bus.shutdown(Duration::from_secs(5)).await;
        tracing::debug!(
            delivered = delivered.load(Ordering::Relaxed),
            "bus deliveries"
        );
        anyhow::Ok((floor, plain, with_bus))
    })?;
    let peer = python_peer(&args)?;

    let target_ms = 0.34;
    let target_events = 1_000_000.0;
    if args.json {
        let mut rows = vec![floor.to_json(), plain.to_json(), with_bus.to_json()];
        if let Some(peer) = &peer {
            rows.push(peer.to_json());
        }
        let out = json!({
            "scenario": {
                "chunks_call_1": args.chunks, "parallel_tool_calls": 2, "fragments_per_call": 4,
                "chunks_call_2": 20, "turns": args.turns, "warmup": args.warmup,
            },
            "results": rows,
            "speedup_vs_simplellmfunc": peer.as_ref().map(|p| p.median_ms / plain.median_ms),
            "bus_wildcard_over_bare": with_bus.median_ms / plain.median_ms,
            "targets": {
                "per_turn_ms": target_ms, "events_per_s": target_events,
                "bus_wildcard_over_bare": TARGET_BUS_RATIO,
                "speedup_vs_simplellmfunc": TARGET_SPEEDUP,
            },
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }

    println!(
        "agent turn: {} text chunks, 2 parallel tool calls (4 interleaved fragments each), then {} chunks; {} turns after {} warm-up",
        args.chunks, 20, args.turns, args.warmup
    );
    println!(
        "{:<46} {:>12} {:>10} {:>12} {:>14} {:>10}",
        "configuration", "median ms", "p90 ms", "events/turn", "events/s", "peak RSS"
    );
    let mut rows = vec![&floor, &plain, &with_bus];
    if let Some(peer) = &peer {
        rows.push(peer);
    }
    for row in rows {
        println!(
            "{:<46} {:>12.4} {:>10.4} {:>12} {:>14.0} {:>10}",
            row.name,
            row.median_ms,
            row.p90_ms,
            row.events_per_turn,
            row.events_per_s,
            row.peak_rss_mb
                .map(|m| format!("{m:.1} MB"))
                .unwrap_or_else(|| "-".into()),
        );
    }
    let bus_ratio = with_bus.median_ms / plain.median_ms;
    println!(
        "bus with 1 wildcard subscriber: {bus_ratio:.2}x the bare turn (median; target <= {TARGET_BUS_RATIO}x: {})",
        if bus_ratio <= TARGET_BUS_RATIO {
            "met"
        } else {
            "NOT met"
        }
    );
    match &peer {
        Some(peer) => {
            let speedup = peer.median_ms / plain.median_ms;
            println!(
                "vs SimpleLLMFunc: {speedup:.1}x faster per turn (median; target >= {TARGET_SPEEDUP}x: {}), {:.1}x events/s",
                if speedup >= TARGET_SPEEDUP {
                    "met"
                } else {
                    "NOT met"
                },
                plain.events_per_s / peer.events_per_s
            )
        }
        None => println!(
            "SimpleLLMFunc peer not run (`{} -c 'import SimpleLLMFunc'` failed, or --no-python): \
             no figure for it in this run",
            args.python.display()
        ),
    }
    println!(
        "targets: <= {target_ms} ms per turn ({}), >= {:.0} events/s ({}); agent overhead over the floor: {:.4} ms per turn",
        if plain.median_ms <= target_ms {
            "met"
        } else {
            "NOT met"
        },
        target_events,
        if plain.events_per_s >= target_events {
            "met"
        } else {
            "NOT met"
        },
        plain.median_ms - floor.median_ms
    );
    Ok(ExitCode::SUCCESS)
}
