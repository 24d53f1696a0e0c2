//! Where models live: `$AGENTBUS_HOME/models`, by default under the user's data directory.

use std::path::{Path, PathBuf};

use crate::error::{LocalError, Result};
use crate::spec::ModelSpec;

/// The environment variable naming agentbus's home directory.
pub const HOME_ENV: &str = "AGENTBUS_HOME";

/// agentbus's home directory: `$AGENTBUS_HOME` when set and not empty, else `agentbus`
/// under the user's data directory (`~/.local/share/agentbus` on Linux).
pub fn agentbus_home() -> Result<PathBuf> {
    match std::env::var_os(HOME_ENV) {
        Some(home) if !home.is_empty() => Ok(PathBuf::from(home)),
        _ => dirs::data_dir()
            .map(|dir| dir.join("agentbus"))
            .ok_or(LocalError::NoHome),
    }
}

/// The directory that holds the model files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelDir {
    path: PathBuf,
}

impl ModelDir {
    /// The model directory of the agentbus home ([`agentbus_home`]`/models`).
    pub fn from_env() -> Result<Self> {
        Ok(Self::new(agentbus_home()?.join("models")))
    }

    /// A model directory at `path` (it need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where `spec`'s file is (or will be).
    pub fn model_path(&self, spec: &ModelSpec) -> PathBuf {
        self.path.join(spec.file_name)
    }

    /// Where the Q8_0 copy of `spec` is (or will be) cached.
    pub fn q8_path(&self, spec: &ModelSpec) -> PathBuf {
        self.path.join(spec.q8_file_name())
    }

    /// Where the size and SHA-256 of the Q8_0 copy of `spec` are recorded when it is
    /// written (see [`crate::convert::q8_status`]).
    pub fn q8_record_path(&self, spec: &ModelSpec) -> PathBuf {
        self.path
            .join(format!("{}.record.json", spec.q8_file_name()))
    }

    /// Where the KV caches of prompt prefixes are kept ([`crate::prefix_cache`]).
    pub fn prefix_cache_path(&self) -> PathBuf {
        self.path.join("prefix-cache")
    }

    /// Creates the directory if needed.
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.path).map_err(LocalError::io(format!(
            "creating the model directory {}",
            self.path.display()
        )))
    }
}
