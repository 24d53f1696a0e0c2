//! Configuration: command-line flags, then `AGENTBUS_*` environment variables, then an
//! optional `agentbus.toml`, in that order of precedence.
//!
//! Flags and environment variables are clap's (`#[arg(long, env = "AGENTBUS_...")]`:
//! a flag beats its variable). The file is the lowest layer: before the command line is
//! parsed, each key of `agentbus.toml` is exported as its `AGENTBUS_*` variable unless
//! that variable is already set, so clap sees it as the last fallback.
//!
//! The file is `$AGENTBUS_CONFIG` when set, else `./agentbus.toml`, else
//! `$AGENTBUS_HOME/agentbus.toml` (default home: the user's data directory, e.g.
//! `~/.local/share/agentbus`). A missing file is fine; an unreadable one, a syntax error
//! or an unknown key is an error that names the file.
//!
//! ```toml
//! provider = "local"          # AGENTBUS_PROVIDER: local, openai, anthropic
//! model = "gpt-4o-mini"       # AGENTBUS_MODEL
//! base-url = "http://127.0.0.1:8080/v1"  # AGENTBUS_BASE_URL
//! store = "sqlite://agentbus.db"         # AGENTBUS_STORE
//! max-iterations = 6          # AGENTBUS_MAX_ITERATIONS
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The keys `agentbus.toml` may set, and the variable each becomes.
pub const KEYS: &[(&str, &str)] = &[
    ("provider", "AGENTBUS_PROVIDER"),
    ("model", "AGENTBUS_MODEL"),
    ("base-url", "AGENTBUS_BASE_URL"),
    ("api-key-env", "AGENTBUS_API_KEY_ENV"),
    ("store", "AGENTBUS_STORE"),
    ("max-iterations", "AGENTBUS_MAX_ITERATIONS"),
    ("request-timeout", "AGENTBUS_REQUEST_TIMEOUT"),
    ("first-byte-timeout", "AGENTBUS_FIRST_BYTE_TIMEOUT"),
    ("idle-timeout", "AGENTBUS_IDLE_TIMEOUT"),
    ("max-event-bytes", "AGENTBUS_MAX_EVENT_BYTES"),
    ("max-response-bytes", "AGENTBUS_MAX_RESPONSE_BYTES"),
];

/// The file to read, if any: `$AGENTBUS_CONFIG` (which must exist), else the first of
/// `./agentbus.toml` and `$AGENTBUS_HOME/agentbus.toml` that exists.
fn config_path() -> anyhow::Result<Option<PathBuf>> {
    if let Some(path) = std::env::var_os("AGENTBUS_CONFIG").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!(
                "AGENTBUS_CONFIG names {}, which is not a file",
                path.display()
            );
        }
        return Ok(Some(path));
    }
    let local = PathBuf::from("agentbus.toml");
    if local.is_file() {
        return Ok(Some(local));
    }
    let home = agentbus_local::home::agentbus_home()
        .ok()
        .map(|home| home.join("agentbus.toml"));
    Ok(home.filter(|path| path.is_file()))
}

/// The `(variable, value)` pairs that `text` (the content of `path`) sets.
fn parse(path: &Path, text: &str) -> anyhow::Result<Vec<(&'static str, String)>> {
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("reading {}", path.display()))?;
    let mut pairs = Vec::new();
    for (key, value) in table {
        let Some((_, variable)) = KEYS.iter().find(|(name, _)| *name == key.replace('_', "-"))
        else {
            let known: Vec<&str> = KEYS.iter().map(|(name, _)| *name).collect();
            bail!(
                "{}: unknown key `{key}` (known: {})",
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
                "{}: `{key}` must be a string, number or boolean, not {}",
                path.display(),
                other.type_str()
            ),
        };
        pairs.push((*variable, value));
    }
    Ok(pairs)
}

/// Exports the settings of `agentbus.toml` as `AGENTBUS_*` variables where the
/// environment does not set them already.
///
/// # Safety
///
/// Call it before any other thread exists (first thing in `main`): it writes the process
/// environment, which other threads may be reading.
pub unsafe fn load_file_into_env() -> anyhow::Result<()> {
    let Some(path) = config_path()? else {
        return Ok(());
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    for (variable, value) in parse(&path, &text)? {
        if std::env::var_os(variable).is_none() {
            // SAFETY: the caller guarantees no other thread exists yet.
            unsafe { std::env::set_var(variable, value) };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_variables_and_unknown_keys_are_errors() {
        let path = Path::new("agentbus.toml");
        let pairs = parse(path, "provider = \"openai\"\nmax_iterations = 4\n").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("AGENTBUS_MAX_ITERATIONS", "4".to_owned()),
                ("AGENTBUS_PROVIDER", "openai".to_owned())
            ]
        );
        let error = parse(path, "provder = \"x\"").unwrap_err().to_string();
        assert!(error.contains("unknown key `provder`"), "{error}");
        let error = parse(path, "model = [1]").unwrap_err().to_string();
        assert!(error.contains("must be a string"), "{error}");
        assert!(parse(path, "model = ").is_err());
    }
}
