//! `agentbus events`: the catalogue as a table, as JSON, and as a JSON Schema.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use agentbus_events::{EventInfo, Registry, schema};
use anyhow::Context;
use serde_json::{Value, json};

/// Arguments of `agentbus events`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus events list
  agentbus events list --json | jq '.[].type'
  agentbus events schema > agentbus.schema.json")]
pub struct Args {
    #[command(subcommand)]
    command: EventsCommand,
}

/// What `agentbus events` shows.
#[derive(Debug, clap::Subcommand)]
enum EventsCommand {
    /// List every event type: `type` string, Rust name, domain and field count, grouped
    /// by domain.
    List {
        /// Print a JSON array instead: per type its `type`, `name`, `domain`, `fields`
        /// (name, JSON type, required) and an `example` in the wire format.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema (draft 2020-12) of the whole wire format, generated from the
    /// types.
    Schema,
}

/// Runs `agentbus events`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let registry = Registry::catalogue();
    tracing::debug!(types = registry.len(), "catalogue loaded");
    let mut out = BufWriter::new(io::stdout().lock());
    let written = match args.command {
        EventsCommand::List { json: false } => write_table(&mut out, &registry),
        EventsCommand::List { json: true } => write_json(&mut out, &registry),
        EventsCommand::Schema => write_schema(&mut out, &registry),
    }
    .and_then(|()| out.flush().context("writing to stdout"));
    match written {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // `agentbus events list | head`: the reader left, which is not an error.
        Err(error) if is_broken_pipe(&error) => Ok(ExitCode::SUCCESS),
        Err(error) => Err(error),
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(io::ErrorKind::BrokenPipe)
    })
}

/// The registry's types grouped by domain (in domain order), keeping catalogue order
/// within a domain.
fn by_domain(registry: &Registry) -> Vec<&EventInfo> {
    let mut infos: Vec<&EventInfo> = registry.iter().collect();
    infos.sort_by_key(|info| info.domain);
    infos
}

fn write_table(out: &mut impl Write, registry: &Registry) -> anyhow::Result<()> {
    let rows: Vec<(&EventInfo, usize)> = by_domain(registry)
        .into_iter()
        .map(|info| (info, schema::fields(info).len()))
        .collect();
    let headers = ("TYPE", "RUST NAME", "DOMAIN", "FIELDS");
    let type_width = rows
        .iter()
        .map(|(info, _)| info.event_type.len())
        .chain([headers.0.len()])
        .max()
        .unwrap_or_default();
    let name_width = rows
        .iter()
        .map(|(info, _)| info.name.len())
        .chain([headers.1.len()])
        .max()
        .unwrap_or_default();
    let domain_width = rows
        .iter()
        .map(|(info, _)| info.domain.as_str().len())
        .chain([headers.2.len()])
        .max()
        .unwrap_or_default();

    writeln!(
        out,
        "{:type_width$}  {:name_width$}  {:domain_width$}  {}",
        headers.0, headers.1, headers.2, headers.3
    )?;
    let mut domains = 0;
    let mut previous = None;
    for (info, field_count) in &rows {
        if previous != Some(info.domain) {
            if previous.is_some() {
                writeln!(out)?;
            }
            previous = Some(info.domain);
            domains += 1;
        }
        writeln!(
            out,
            "{:type_width$}  {:name_width$}  {:domain_width$}  {field_count:>6}",
            info.event_type,
            info.name,
            info.domain.as_str(),
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{} event types in {domains} domains; fields counts every wire field (type, schema_version and base fields included).",
        rows.len()
    )?;
    Ok(())
}

/// One entry of `agentbus events list --json`.
fn entry(info: &EventInfo) -> anyhow::Result<Value> {
    let example = info
        .example()
        .to_wire_value()
        .with_context(|| format!("encoding the example of {}", info.name))?;
    Ok(json!({
        "type": info.event_type,
        "name": info.name,
        "domain": info.domain.as_str(),
        "fields": schema::fields(info),
        "example": example,
    }))
}

fn write_json(out: &mut impl Write, registry: &Registry) -> anyhow::Result<()> {
    let entries = by_domain(registry)
        .into_iter()
        .map(entry)
        .collect::<anyhow::Result<Vec<Value>>>()?;
    serde_json::to_writer_pretty(&mut *out, &entries).context("writing the catalogue")?;
    writeln!(out)?;
    Ok(())
}

fn write_schema(out: &mut impl Write, registry: &Registry) -> anyhow::Result<()> {
    let wire_schema = schema::wire_schema(registry.iter());
    serde_json::to_writer_pretty(&mut *out, &wire_schema).context("writing the schema")?;
    writeln!(out)?;
    Ok(())
}
