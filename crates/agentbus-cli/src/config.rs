//! Configuration: command-line flags, then `AGENTBUS_*` environment variables, then the
//! config files, in that order of precedence — and which config files may say what.
//!
//! Flags and environment variables are clap's (`#[arg(long, env = "AGENTBUS_...")]`: a
//! flag beats its variable). The files are the lowest layers: before the command line is
//! parsed, each key of a file is exported as its `AGENTBUS_*` variable unless that
//! variable is already set, so clap sees it as the last fallback.
//!
//! The files, highest precedence first:
//! 1. the file named by `--config PATH`, else by `$AGENTBUS_CONFIG`, else
//!    `./agentbus.toml` when the working directory has one;
//! 2. `$AGENTBUS_HOME/agentbus.toml` (default home: the user's data directory, e.g.
//!    `~/.local/share/agentbus`).
//!
//! **Trust.** A file found in the working directory comes with whatever repository the
//! user cloned, so it is untrusted: it may set the harmless keys (`model`,
//! `max-iterations`), but the keys that decide which secret is read or where data goes
//! ([`Key::needs_trust`]: `provider`, `base-url`, `api-key-env`, `store`,
//! `metrics-addr`, `otlp-endpoint`, `nats`) are ignored and named in one warning on stderr —
//! unless the user trusts the file with `agentbus config trust`, which records its
//! canonical path and SHA-256 under `$AGENTBUS_HOME` ([`crate::trust`]); a file changed
//! since is untrusted again. A file the user names (`--config`, `$AGENTBUS_CONFIG`) and
//! the user's own `$AGENTBUS_HOME/agentbus.toml` are trusted.
//!
//! A missing file is fine; an unreadable one, a syntax error or an unknown key is an
//! error that names the file.
//!
//! ```toml
//! provider = "local"          # AGENTBUS_PROVIDER: local, openai, anthropic
//! model = "gpt-4o-mini"       # AGENTBUS_MODEL
//! base-url = "http://127.0.0.1:8080/v1"  # AGENTBUS_BASE_URL
//! api-key-env = "OPENAI_API_KEY"         # AGENTBUS_API_KEY_ENV
//! store = "sqlite://agentbus.db"         # AGENTBUS_STORE
//! max-iterations = 6          # AGENTBUS_MAX_ITERATIONS
//! metrics-addr = "127.0.0.1:9464"        # AGENTBUS_METRICS_ADDR
//! otlp-endpoint = "http://localhost:4318" # AGENTBUS_OTLP_ENDPOINT
//! nats = "nats://127.0.0.1:4222"          # AGENTBUS_NATS
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::trust::{TrustList, Verdict, sha256_hex};

/// The rule, as `--help` and `agentbus config --help` state it.
pub const TRUST_HELP: &str = "\
Configuration, highest precedence first: flags; AGENTBUS_* environment variables; the
config file named by --config PATH or $AGENTBUS_CONFIG, else ./agentbus.toml; then
$AGENTBUS_HOME/agentbus.toml (your own file).

An agentbus.toml found in the working directory is UNTRUSTED (it came with the
repository): it may set model and max-iterations, but the keys that choose which
secret is read or where data is sent (provider, base-url, api-key-env, store,
metrics-addr, otlp-endpoint, nats) are ignored, with one warning naming them, until you
trust it: `agentbus config trust` records its path and SHA-256 in
$AGENTBUS_HOME/trusted-configs.json (a changed file must be trusted again;
`agentbus config untrust` forgets it; `agentbus config show` lists every setting and
where it comes from). A file you name with --config or $AGENTBUS_CONFIG, and
$AGENTBUS_HOME/agentbus.toml, are trusted.";

/// A key `agentbus.toml` may set.
#[derive(Debug, PartialEq, Eq)]
pub struct Key {
    /// The key in the file (`base-url`; `base_url` is accepted too).
    pub name: &'static str,
    /// The environment variable it fills.
    pub variable: &'static str,
    /// Whether only a trusted file may set it: it chooses which secret is read or where
    /// data is sent.
    pub needs_trust: bool,
}

const fn key(name: &'static str, variable: &'static str, needs_trust: bool) -> Key {
    Key {
        name,
        variable,
        needs_trust,
    }
}

/// The keys config files may set.
pub const KEYS: &[Key] = &[
    // Whether prompts leave the machine at all (local model or a remote provider).
    key("provider", "AGENTBUS_PROVIDER", true),
    key("model", "AGENTBUS_MODEL", false),
    // Where the prompt and the API key are sent.
    key("base-url", "AGENTBUS_BASE_URL", true),
    // Which environment variable is sent as the API key.
    key("api-key-env", "AGENTBUS_API_KEY_ENV", true),
    // Where every event (prompts, answers, tool output) is written.
    key("store", "AGENTBUS_STORE", true),
    key("max-iterations", "AGENTBUS_MAX_ITERATIONS", false),
    // Who may read the metrics, and where they are pushed.
    key("metrics-addr", "AGENTBUS_METRICS_ADDR", true),
    key("otlp-endpoint", "AGENTBUS_OTLP_ENDPOINT", true),
    // The NATS server every event is published to (`--nats`).
    key("nats", "AGENTBUS_NATS", true),
    // Timeouts and size limits of the HTTP providers: they bound waits and buffers and
    // send nothing anywhere.
    key("request-timeout", "AGENTBUS_REQUEST_TIMEOUT", false),
    key("first-byte-timeout", "AGENTBUS_FIRST_BYTE_TIMEOUT", false),
    key("idle-timeout", "AGENTBUS_IDLE_TIMEOUT", false),
    key("max-event-bytes", "AGENTBUS_MAX_EVENT_BYTES", false),
    key("max-response-bytes", "AGENTBUS_MAX_RESPONSE_BYTES", false),
];

/// How a config file was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Named with `--config PATH`.
    Flag,
    /// Named by `$AGENTBUS_CONFIG`.
    Variable,
    /// `./agentbus.toml`.
    WorkingDir,
    /// `$AGENTBUS_HOME/agentbus.toml`.
    Home,
}

impl Origin {
    /// How the file was found, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Origin::Flag => "named by --config",
            Origin::Variable => "named by $AGENTBUS_CONFIG",
            Origin::WorkingDir => "found in the working directory",
            Origin::Home => "$AGENTBUS_HOME/agentbus.toml",
        }
    }
}

/// One config file that was read.
#[derive(Debug)]
pub struct ConfigFile {
    /// Its canonical path.
    pub path: PathBuf,
    /// How it was found.
    pub origin: Origin,
    /// The SHA-256 of the content read.
    pub sha256: String,
    /// Whether it may set the keys that need trust.
    pub trusted: bool,
    /// For an untrusted file: whether it was trusted once with other content.
    pub changed_since_trusted: bool,
    /// What it sets, in file order.
    pub settings: Vec<(&'static Key, String)>,
}

/// Where an effective setting comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The environment variable was set before agentbus started.
    Environment,
    /// A config file (its canonical path).
    File(PathBuf),
}

/// The config files read and what they did to the environment.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The files read, highest precedence first.
    pub files: Vec<ConfigFile>,
    /// The settings in effect (before flags), with where each comes from.
    pub effective: Vec<(&'static Key, String, Source)>,
    /// The settings an untrusted file asked for and did not get.
    pub ignored: Vec<(&'static Key, PathBuf)>,
    /// The trust list's path (when `$AGENTBUS_HOME` is known).
    pub trust_list: Option<PathBuf>,
}

/// The value of `--config PATH` / `--config=PATH` among the raw arguments, read before
/// clap parses them (the file must be loaded first, to fill clap's env fallbacks).
pub fn config_flag(args: impl IntoIterator<Item = OsString>) -> Option<PathBuf> {
    let mut args = args.into_iter().skip(1);
    let mut found = None;
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else { continue };
        if text == "--" {
            break;
        }
        if text == "--config" {
            found = args.next().map(PathBuf::from);
        } else if let Some(path) = text.strip_prefix("--config=") {
            found = Some(PathBuf::from(path));
        }
    }
    found
}

/// agentbus's home directory: `$AGENTBUS_HOME` when set and not empty, else `agentbus`
/// under the user's data directory (`~/.local/share/agentbus` on Linux). With the `local`
/// feature this is the embedded model's rule itself, so the models and the trust list
/// always share one home.
#[cfg(feature = "local")]
pub fn agentbus_home() -> anyhow::Result<PathBuf> {
    Ok(agentbus_local::home::agentbus_home()?)
}

/// agentbus's home directory: `$AGENTBUS_HOME` when set and not empty, else `agentbus`
/// under the user's data directory (`~/.local/share/agentbus` on Linux), the same rule as
/// `agentbus_local::home::agentbus_home`.
#[cfg(not(feature = "local"))]
pub fn agentbus_home() -> anyhow::Result<PathBuf> {
    match std::env::var_os("AGENTBUS_HOME") {
        Some(home) if !home.is_empty() => Ok(PathBuf::from(home)),
        _ => dirs::data_dir()
            .map(|dir| dir.join("agentbus"))
            .ok_or_else(|| anyhow::anyhow!("no home directory: set AGENTBUS_HOME")),
    }
}

/// Reads the config files (see the module documentation) and decides what each may set.
/// `flag` is the `--config` path, if given.
pub fn load(flag: Option<PathBuf>) -> anyhow::Result<Loaded> {
    let home = agentbus_home().ok();
    let mut candidates: Vec<(PathBuf, Origin)> = Vec::new();
    let named = flag.map(|path| (path, Origin::Flag)).or_else(|| {
        std::env::var_os("AGENTBUS_CONFIG")
            .filter(|path| !path.is_empty())
            .map(|path| (PathBuf::from(path), Origin::Variable))
    });
    if let Some((path, origin)) = named {
        if !path.is_file() {
            bail!(
                "the config file {} ({}) is not a file",
                path.display(),
                origin.describe()
            );
        }
        candidates.push((path, origin));
    } else if Path::new("agentbus.toml").is_file() {
        candidates.push((PathBuf::from("agentbus.toml"), Origin::WorkingDir));
    }
    if let Some(home) = &home {
        let path = home.join("agentbus.toml");
        if path.is_file() {
            candidates.push((path, Origin::Home));
        }
    }

    let mut trust_list: Option<TrustList> = None;
    let mut loaded = Loaded {
        trust_list: home.as_deref().map(TrustList::path_in),
        ..Loaded::default()
    };
    for (path, origin) in candidates {
        let canonical = std::fs::canonicalize(&path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        if loaded.files.iter().any(|file| file.path == canonical) {
            // `./agentbus.toml` in $AGENTBUS_HOME itself: the user's own file, read once.
            if let Some(file) = loaded.files.iter_mut().find(|f| f.path == canonical)
                && origin == Origin::Home
            {
                file.origin = Origin::Home;
                file.trusted = true;
            }
            continue;
        }
        // Hash and parse the same bytes: what is trusted is exactly what is used.
        let bytes = std::fs::read(&canonical)
            .with_context(|| format!("reading the config file {}", canonical.display()))?;
        let sha256 = sha256_hex(&bytes);
        let text = String::from_utf8(bytes)
            .with_context(|| format!("{} is not UTF-8 text", canonical.display()))?;
        let settings = parse(&canonical, &text)?;
        let (trusted, changed_since_trusted) = match origin {
            Origin::Flag | Origin::Variable | Origin::Home => (true, false),
            Origin::WorkingDir => {
                if trust_list.is_none()
                    && let Some(home) = &home
                {
                    trust_list = Some(TrustList::load(home)?);
                }
                let verdict = trust_list
                    .as_ref()
                    .map_or(Verdict::Unknown, |list| list.verdict(&canonical, &sha256));
                (verdict == Verdict::Trusted, verdict == Verdict::Changed)
            }
        };
        loaded.files.push(ConfigFile {
            path: canonical,
            origin,
            sha256,
            trusted,
            changed_since_trusted,
            settings,
        });
    }

    for key in KEYS {
        if let Some(value) = std::env::var_os(key.variable) {
            let value = value.to_string_lossy().into_owned();
            loaded.effective.push((key, value, Source::Environment));
        }
    }
    for file in &loaded.files {
        for (key, value) in &file.settings {
            if key.needs_trust && !file.trusted {
                loaded.ignored.push((*key, file.path.clone()));
            } else if !loaded.effective.iter().any(|(k, _, _)| k.name == key.name) {
                loaded
                    .effective
                    .push((*key, value.clone(), Source::File(file.path.clone())));
            }
        }
    }
    Ok(loaded)
}

impl Loaded {
    /// Exports the file settings in effect as their `AGENTBUS_*` variables.
    ///
    /// # Safety
    ///
    /// Call it before any other thread exists (first thing in `main`): it writes the
    /// process environment, which other threads may be reading.
    pub unsafe fn apply(&self) {
        for (key, value, source) in &self.effective {
            if matches!(source, Source::File(_)) {
                // SAFETY: the caller guarantees no other thread exists yet.
                unsafe { std::env::set_var(key.variable, value) };
            }
        }
    }

    /// The one warning naming the settings an untrusted file asked for, if any.
    pub fn warning(&self) -> Option<String> {
        let file = self.files.iter().find(|file| !file.trusted)?;
        let names: Vec<&str> = self
            .ignored
            .iter()
            .filter(|(_, path)| *path == file.path)
            .map(|(key, _)| key.name)
            .collect();
        if names.is_empty() {
            return None;
        }
        let why = if file.changed_since_trusted {
            "it changed since you trusted it"
        } else {
            "a config file found in the working directory is not trusted"
        };
        Some(format!(
            "warning: ignoring {} from {}: {why}, so it may not choose which secret is read \
             or where data is sent. Check it, then `agentbus config trust {}` (or name it \
             with --config) to use them.",
            names.join(", "),
            file.path.display(),
            file.path.display(),
        ))
    }
}

/// The `(key, value)` pairs that `text` (the content of `path`) sets.
fn parse(path: &Path, text: &str) -> anyhow::Result<Vec<(&'static Key, String)>> {
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("reading {}", path.display()))?;
    let mut pairs = Vec::new();
    for (name, value) in table {
        let Some(key) = KEYS.iter().find(|key| key.name == name.replace('_', "-")) else {
            let known: Vec<&str> = KEYS.iter().map(|key| key.name).collect();
            bail!(
                "{}: unknown key `{name}` (known: {})",
                path.display(),
                known.join(", ")
            );
        };
        let value = match value {
            toml::Value::String(text) => text,
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Float(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            other => bail!(
                "{}: `{name}` must be a string, number or boolean, not {}",
                path.display(),
                other.type_str()
            ),
        };
        pairs.push((key, value));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_variables_and_unknown_keys_are_errors() {
        let path = Path::new("agentbus.toml");
        let pairs = parse(path, "provider = \"openai\"\nmax_iterations = 4\n").unwrap();
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(key, value)| (key.variable, value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("AGENTBUS_MAX_ITERATIONS", "4"),
                ("AGENTBUS_PROVIDER", "openai")
            ]
        );
        let error = parse(path, "provder = \"x\"").unwrap_err().to_string();
        assert!(error.contains("unknown key `provder`"), "{error}");
        let error = parse(path, "model = [1]").unwrap_err().to_string();
        assert!(error.contains("must be a string"), "{error}");
        assert!(parse(path, "model = ").is_err());
    }

    #[test]
    fn every_key_that_can_leak_needs_trust() {
        for name in [
            "provider",
            "base-url",
            "api-key-env",
            "store",
            "metrics-addr",
            "otlp-endpoint",
        ] {
            let key = KEYS.iter().find(|key| key.name == name).unwrap();
            assert!(key.needs_trust, "{name}");
        }
        for name in ["model", "max-iterations"] {
            let key = KEYS.iter().find(|key| key.name == name).unwrap();
            assert!(!key.needs_trust, "{name}");
        }
    }

    #[test]
    fn the_config_flag_is_found_before_clap_parses() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            config_flag(args(&["agentbus", "run", "--config", "a.toml", "hi"])),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            config_flag(args(&["agentbus", "--config=b.toml", "run", "hi"])),
            Some(PathBuf::from("b.toml"))
        );
        assert_eq!(
            config_flag(args(&["agentbus", "run", "--", "--config", "c"])),
            None
        );
        assert_eq!(config_flag(args(&["agentbus", "run", "hi"])), None);
    }
}
