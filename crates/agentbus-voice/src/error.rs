//! [`VoiceError`]: everything that can go wrong in a voice stage, with a message that
//! says what to do.

use std::path::PathBuf;

/// The errors of the voice stages. Bad input (a WAV that is not PCM, a wrong sample
/// rate, an empty file) is an error value, never a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VoiceError {
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A WAV file could not be read or written, or holds audio agentbus cannot use.
    #[error("{path}: {reason}")]
    Wav {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (`not PCM (IEEE float)`, `empty: no samples`, ...).
        reason: String,
    },
    /// Audio arrived in a format the stage does not take.
    #[error("unsupported audio: {0}")]
    Format(String),
    /// Resampling failed.
    #[error("resampling from {from} Hz to {to} Hz: {reason}")]
    Resample {
        /// The input rate.
        from: u32,
        /// The output rate.
        to: u32,
        /// What the resampler said.
        reason: String,
    },
    /// A model is missing, corrupted or could not be fetched (the message says which
    /// `agentbus model pull` to run).
    #[error(transparent)]
    Model(Box<agentbus_local::LocalError>),
    /// A voice model has not been pulled.
    #[error(
        "the model {name} is not present (expected at {path}): run `agentbus model pull {name}`"
    )]
    ModelMissing {
        /// The model's name.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A model file is malformed.
    #[error("{path}: {reason}")]
    BadModel {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor computation failed.
    #[error("{context}: {source}")]
    Candle {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: Box<candle_core::Error>,
    },
    /// An external program (espeak-ng) is missing or failed.
    #[error("{program}: {reason}")]
    Program {
        /// The program.
        program: String,
        /// What went wrong, and how to fix it.
        reason: String,
    },
    /// A network engine's server answered with an error or could not be reached.
    #[error("{engine}: {reason}")]
    Remote {
        /// The engine.
        engine: String,
        /// What happened.
        reason: String,
        /// Whether trying again could work.
        recoverable: bool,
    },
    /// The operation was stopped (barge-in, shutdown).
    #[error("cancelled")]
    Cancelled,
}

impl VoiceError {
    /// A [`VoiceError::Io`] with `context`.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| VoiceError::Io { context, source }
    }

    /// A [`VoiceError::Candle`] with `context`.
    pub(crate) fn candle(context: impl Into<String>) -> impl FnOnce(candle_core::Error) -> Self {
        let context = context.into();
        move |source| VoiceError::Candle {
            context,
            source: Box::new(source),
        }
    }

    /// A short machine-readable kind, for the `code` of error events.
    pub fn code(&self) -> &'static str {
        match self {
            VoiceError::Io { .. } => "io",
            VoiceError::Wav { .. } => "wav",
            VoiceError::Format(_) => "format",
            VoiceError::Resample { .. } => "resample",
            VoiceError::Model(_) | VoiceError::ModelMissing { .. } => "model",
            VoiceError::BadModel { .. } => "bad_model",
            VoiceError::Candle { .. } => "compute",
            VoiceError::Program { .. } => "program",
            VoiceError::Remote { .. } => "remote",
            VoiceError::Cancelled => "cancelled",
        }
    }

    /// Whether the stage can carry on after this error (the next utterance may work).
    pub fn is_recoverable(&self) -> bool {
        match self {
            VoiceError::Remote { recoverable, .. } => *recoverable,
            VoiceError::Model(_)
            | VoiceError::ModelMissing { .. }
            | VoiceError::BadModel { .. }
            | VoiceError::Program { .. } => false,
            _ => true,
        }
    }
}

impl From<agentbus_local::LocalError> for VoiceError {
    fn from(error: agentbus_local::LocalError) -> Self {
        VoiceError::Model(Box::new(error))
    }
}

/// The result type of this crate.
pub type Result<T, E = VoiceError> = std::result::Result<T, E>;
