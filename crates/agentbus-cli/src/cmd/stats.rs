//! `agentbus stats [SESSION]`: per-model and per-tool figures of a session or the store.

use std::process::ExitCode;

use super::store_args::StoreArgs;

/// Arguments of `agentbus stats`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus stats                             the whole store
  agentbus stats 3f2c...                     one session
  agentbus stats --json")]
pub struct Args {
    /// The session (default: every session in the store).
    pub session: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

fn ms(value: Option<f64>) -> String {
    value
        .map(|v| format!("{v:.1}"))
        .unwrap_or_else(|| "-".into())
}

/// Runs `agentbus stats`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = args.store.open_read_only()?;
    let stats = store.stats(args.session.as_deref())?;
    // Figures over a session that may be missing events are said to be so, in every format.
    for gap in &stats.gaps {
        eprintln!("warning: {gap}; the figures cover the stored events only");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &stats.session_id {
        Some(id) => println!("session {id}"),
        None => println!("all sessions in {}", store.location()),
    }
    println!();
    if stats.models.is_empty() {
        println!("no LLM calls");
    } else {
        println!(
            "{:<28} {:>6} {:>5} {:>9} {:>9} {:>10} {:>10} {:>9} {:>9} {:>8} {:>10}",
            "model",
            "calls",
            "fail",
            "ttft p50",
            "ttft p95",
            "lat p50",
            "lat p95",
            "tok in",
            "tok out",
            "tok/s",
            "cost"
        );
        for m in &stats.models {
            println!(
                "{:<28} {:>6} {:>5} {:>9} {:>9} {:>10} {:>10} {:>9} {:>9} {:>8} {:>10}",
                m.model,
                m.calls,
                m.failures,
                ms(m.ttft_p50_ms),
                ms(m.ttft_p95_ms),
                ms(m.latency_p50_ms),
                ms(m.latency_p95_ms),
                m.input_tokens,
                m.output_tokens,
                m.tokens_per_s
                    .map(|t| format!("{t:.1}"))
                    .unwrap_or_else(|| "-".into()),
                m.cost_usd
                    .map(|c| format!("${c:.4}"))
                    .unwrap_or_else(|| "-".into()),
            );
        }
        println!("(times in ms)");
    }
    println!();
    if stats.tools.is_empty() {
        println!("no tool calls");
    } else {
        println!(
            "{:<28} {:>6} {:>8} {:>10} {:>10}",
            "tool", "calls", "failures", "p50 ms", "p95 ms"
        );
        for t in &stats.tools {
            println!(
                "{:<28} {:>6} {:>8} {:>10} {:>10}",
                t.tool,
                t.calls,
                t.failures,
                ms(t.time_p50_ms),
                ms(t.time_p95_ms)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
