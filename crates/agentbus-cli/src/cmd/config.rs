//! `agentbus config trust|untrust|show`: which config files may choose where data goes,
//! and what is in effect.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;

use crate::config::{KEYS, Loaded, Source};
use crate::trust::{TrustList, sha256_hex};
use crate::userinfo::mask_userinfo;

/// Arguments of `agentbus config`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::config::TRUST_HELP)]
pub struct Args {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ConfigCommand {
    /// Trust a config file (default ./agentbus.toml): record its canonical path and
    /// SHA-256 so it may set every key. Read it first: it may choose where your prompts
    /// and API key are sent.
    #[command(after_help = "Examples:
  agentbus config trust                  trust ./agentbus.toml as it is now
  agentbus config trust ../other/agentbus.toml

A changed file is untrusted again until you trust it again.")]
    Trust {
        /// The file.
        #[arg(default_value = "agentbus.toml")]
        path: PathBuf,
    },
    /// Forget a trusted config file (default ./agentbus.toml).
    Untrust {
        /// The file.
        #[arg(default_value = "agentbus.toml")]
        path: PathBuf,
    },
    /// List the config files read, whether each is trusted, and every setting in effect
    /// with where it comes from (flags given to other commands win over all of these).
    #[command(after_help = "Examples:
  agentbus config show
  agentbus config show --json | jq '.settings'")]
    Show {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `agentbus config`; `loaded` is what `main` read before parsing the command line.
pub fn run(args: Args, loaded: &Loaded) -> anyhow::Result<ExitCode> {
    let home = crate::config::agentbus_home()?;
    let mut out = std::io::stdout().lock();
    match args.command {
        ConfigCommand::Trust { path } => {
            let canonical = std::fs::canonicalize(&path)
                .with_context(|| format!("cannot trust {}", path.display()))?;
            let bytes = std::fs::read(&canonical)
                .with_context(|| format!("reading {}", canonical.display()))?;
            let text = std::str::from_utf8(&bytes)
                .with_context(|| format!("{} is not UTF-8 text", canonical.display()))?;
            // Trust only a file that would load: a broken one is an error now, not later.
            let table: toml::Table = text
                .parse()
                .with_context(|| format!("reading {}", canonical.display()))?;
            let sha256 = sha256_hex(&bytes);
            let mut list = TrustList::load(&home)?;
            list.trust(&canonical, &sha256);
            list.save(&home)?;
            writeln!(
                out,
                "trusted {} (sha256 {})",
                canonical.display(),
                &sha256[..16]
            )?;
            for (name, value) in &table {
                let needs_trust = KEYS
                    .iter()
                    .any(|key| key.needs_trust && key.name == name.replace('_', "-"));
                if needs_trust {
                    let value = match value {
                        toml::Value::String(text) => text.clone(),
                        toml::Value::Integer(number) => number.to_string(),
                        other => format!("{other:?}"),
                    };
                    writeln!(
                        out,
                        "  it may now set {name} = {}",
                        crate::terminal::sanitize(&mask_userinfo(&value))
                    )?;
                }
            }
        }
        ConfigCommand::Untrust { path } => {
            let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| absolute(&path));
            let mut list = TrustList::load(&home)?;
            if list.untrust(&canonical) {
                list.save(&home)?;
                writeln!(out, "untrusted {}", canonical.display())?;
            } else {
                writeln!(out, "{} was not trusted", canonical.display())?;
            }
        }
        ConfigCommand::Show { json } => show(&mut out, loaded, json)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `path` made absolute without touching the file system (for a file that is gone).
fn absolute(path: &Path) -> PathBuf {
    std::env::current_dir()
        .map(|dir| dir.join(path))
        .unwrap_or_else(|_| path.to_owned())
}

fn source_text(source: &Source) -> String {
    match source {
        Source::Environment => "environment".to_owned(),
        Source::File(path) => path.display().to_string(),
    }
}

fn show(out: &mut impl Write, loaded: &Loaded, json: bool) -> anyhow::Result<()> {
    let shown = |value: &str| crate::terminal::sanitize(&mask_userinfo(value)).into_owned();
    if json {
        let files: Vec<_> = loaded
            .files
            .iter()
            .map(|file| {
                json!({
                    "path": file.path,
                    "origin": format!("{:?}", file.origin).to_lowercase(),
                    "trusted": file.trusted,
                    "changed_since_trusted": file.changed_since_trusted,
                    "sha256": file.sha256,
                })
            })
            .collect();
        let settings: Vec<_> = KEYS
            .iter()
            .map(|key| {
                let found = loaded.effective.iter().find(|(k, _, _)| *k == key);
                json!({
                    "key": key.name,
                    "variable": key.variable,
                    "needs_trust": key.needs_trust,
                    "value": found.map(|(_, value, _)| shown(value)),
                    "source": found.map_or_else(|| "default".to_owned(), |(_, _, s)| source_text(s)),
                })
            })
            .collect();
        let ignored: Vec<_> = loaded
            .ignored
            .iter()
            .map(|(key, path)| json!({"key": key.name, "file": path}))
            .collect();
        let report = json!({
            "files": files,
            "settings": settings,
            "ignored": ignored,
            "trust_list": loaded.trust_list,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    if loaded.files.is_empty() {
        writeln!(out, "config files: none")?;
    } else {
        writeln!(out, "config files (highest precedence first):")?;
        for file in &loaded.files {
            let trust = match (file.trusted, file.changed_since_trusted) {
                (true, _) => "trusted",
                (false, true) => "NOT trusted (changed since you trusted it)",
                (false, false) => "NOT trusted",
            };
            writeln!(
                out,
                "  {}  ({}; {trust})",
                file.path.display(),
                file.origin.describe()
            )?;
        }
    }
    writeln!(
        out,
        "\nsettings (a flag on the command line wins over all of these):"
    )?;
    for key in KEYS {
        let (value, source) = match loaded.effective.iter().find(|(k, _, _)| *k == key) {
            Some((_, value, source)) => (shown(value), source_text(source)),
            None => ("-".to_owned(), "default".to_owned()),
        };
        let source = match source.as_str() {
            "environment" => format!("environment ({})", key.variable),
            _ => source,
        };
        writeln!(out, "  {:<15} {value:<40} {source}", key.name)?;
    }
    for (key, path) in &loaded.ignored {
        writeln!(
            out,
            "  ignored: {} from {} (the file is not trusted)",
            key.name,
            path.display()
        )?;
    }
    if let Some(list) = &loaded.trust_list {
        writeln!(out, "\ntrust list: {}", list.display())?;
    }
    Ok(())
}
