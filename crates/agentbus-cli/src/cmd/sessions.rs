//! `agentbus sessions`: the sessions in the store, one line each.

use std::process::ExitCode;

use super::store_args::StoreArgs;

/// Arguments of `agentbus sessions`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus sessions
  agentbus sessions --json
  agentbus sessions --store postgres://localhost/test")]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `agentbus sessions`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = args.store.open_read_only()?;
    let sessions = store.sessions()?;
    if args.json {
        // `status` says, per session, whether it may be missing events.
        println!("{}", serde_json::to_string_pretty(&sessions)?);
        return Ok(ExitCode::SUCCESS);
    }
    if sessions.is_empty() {
        println!("no sessions in {}", store.location());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<38} {:<19} {:>9} {:>7} {:>6} {:>9} {:>10} {:<11}  models",
        "session", "started (UTC)", "duration", "events", "calls", "tokens", "cost", "status"
    );
    for s in &sessions {
        let duration = (s.last_event - s.first_event).num_milliseconds() as f64 / 1000.0;
        let cost = s
            .cost_usd
            .map(|c| format!("${c:.4}"))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<38} {:<19} {:>8.1}s {:>7} {:>6} {:>9} {:>10} {:<11}  {}",
            s.session_id,
            s.first_event.format("%Y-%m-%d %H:%M:%S"),
            duration,
            s.events,
            s.llm_calls,
            s.total_tokens,
            cost,
            s.status.label(),
            s.models.join(", ")
        );
    }
    // A session that may be missing events says so, under the table and on stderr.
    for s in &sessions {
        if let Some(warning) = s.status.gap_warning(&s.session_id, s.last_seq) {
            eprintln!("warning: {warning}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
