//! The Q4_1 → Q8_0 conversion, cached beside the original.
//!
//! candle 0.11.1 has no SIMD kernel for Q4_1 matrix products on x86, so the shipped
//! weights run at about 28 tokens/s here. Dequantising each Q4_1 tensor and re-quantising
//! it as Q8_0 (which has fast kernels) is near-lossless — Q8_0 holds every Q4_1 value to
//! within its own rounding — and more than doubles the speed. The converted file is
//! written once, atomically (a temporary file renamed into place), and reused; its name
//! embeds the hash of the file it came from ([`crate::spec::ModelSpec::q8_file_name`]).
//!
//! The copy is never trusted blindly: when it is written, its size and SHA-256 (and the
//! hash of the file it came from) are recorded beside it in a small JSON file
//! ([`ModelDir::q8_record_path`]). [`q8_status`] checks the copy against that record, and
//! [`ensure_q8`] rebuilds a copy that is missing, has no record, or does not match it (a
//! truncated or otherwise damaged file), so `run` never loads a broken copy and `model
//! list` never calls one ready.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};

use serde::{Deserialize, Serialize};

use crate::error::{LocalError, Result};
use crate::home::ModelDir;
use crate::pull::{persist, sha256_file, verify};
use crate::spec::ModelSpec;

/// `general.file_type` of a GGUF file whose weights are mostly Q8_0 (llama.cpp's
/// `LLAMA_FTYPE_MOSTLY_Q8_0`).
const FILE_TYPE_MOSTLY_Q8_0: u32 = 7;

/// The version of the record's layout; a record of another version is not trusted.
const RECORD_FORMAT: u32 = 1;

/// What was recorded about a Q8_0 copy when it was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Q8Record {
    /// The layout version ([`RECORD_FORMAT`]).
    pub format: u32,
    /// The SHA-256 of the file the copy was made from.
    pub source_sha256: String,
    /// The copy's size in bytes.
    pub size: u64,
    /// The copy's SHA-256, lowercase hex.
    pub sha256: String,
}

/// Whether the Q8_0 copy of a model can be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Q8Status {
    /// The copy is there and matches the size and SHA-256 recorded when it was written.
    Ready,
    /// There is no copy.
    Missing,
    /// There is a copy but it cannot be trusted (why: `its size is 12 bytes, recorded
    /// 135013504 bytes`, `no record of its hash`, ...). [`ensure_q8`] rebuilds it.
    Mismatch {
        /// What does not match.
        reason: String,
    },
}

/// Checks the Q8_0 copy of `spec` in `dir` against the record written with it: the record
/// must be there, be for this source file, and give the copy's exact size and SHA-256.
pub fn q8_status(dir: &ModelDir, spec: &ModelSpec) -> Result<Q8Status> {
    let path = dir.q8_path(spec);
    let metadata = match std::fs::metadata(&path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Q8Status::Missing);
        }
        Err(error) => {
            return Err(LocalError::Io {
                context: format!("reading {}", path.display()),
                source: error,
            });
        }
    };
    let mismatch = |reason: String| Ok(Q8Status::Mismatch { reason });
    let record_path = dir.q8_record_path(spec);
    let record: Q8Record = match std::fs::read(&record_path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(record) => record,
            Err(error) => return mismatch(format!("its record is unreadable ({error})")),
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return mismatch("no record of its size and hash".to_owned());
        }
        Err(error) => {
            return Err(LocalError::Io {
                context: format!("reading {}", record_path.display()),
                source: error,
            });
        }
    };
    if record.format != RECORD_FORMAT {
        return mismatch(format!(
            "its record has format {}, expected {RECORD_FORMAT}",
            record.format
        ));
    }
    if record.source_sha256 != spec.sha256 {
        return mismatch(format!(
            "it was made from another file (SHA-256 {})",
            record.source_sha256
        ));
    }
    if metadata.len() != record.size {
        return mismatch(format!(
            "its size is {} bytes, recorded {} bytes",
            metadata.len(),
            record.size
        ));
    }
    let actual = sha256_file(&path)?;
    if actual != record.sha256 {
        return mismatch(format!(
            "its SHA-256 is {actual}, recorded {}",
            record.sha256
        ));
    }
    Ok(Q8Status::Ready)
}

/// Returns the cached Q8_0 copy of `spec`, verified against its record ([`q8_status`]).
/// A copy that is missing or does not match is (re)built from the verified original,
/// and its size and hash recorded.
pub fn ensure_q8(dir: &ModelDir, spec: &ModelSpec) -> Result<PathBuf> {
    let target = dir.q8_path(spec);
    match q8_status(dir, spec)? {
        Q8Status::Ready => return Ok(target),
        Q8Status::Missing => {}
        Q8Status::Mismatch { reason } => {
            tracing::warn!(path = %target.display(), %reason, "the Q8_0 copy does not match its record; rebuilding it");
        }
    }
    let source = dir.model_path(spec);
    verify(&source, spec)?;
    tracing::info!(source = %source.display(), target = %target.display(), "converting the model to Q8_0 (once)");
    let partial = temporary_file(dir)?;
    convert_to_q8(&source, partial.path())?;
    let record = Q8Record {
        format: RECORD_FORMAT,
        source_sha256: spec.sha256.to_owned(),
        size: std::fs::metadata(partial.path())
            .map_err(LocalError::io(format!(
                "reading {}",
                partial.path().display()
            )))?
            .len(),
        sha256: sha256_file(partial.path())?,
    };
    // The copy first, then its record: a copy without a record (a crash in between) is
    // rebuilt next time, never trusted.
    persist(partial, &target)?;
    let mut record_file = temporary_file(dir)?;
    serde_json::to_writer_pretty(&mut record_file, &record).map_err(|error| LocalError::Io {
        context: format!("writing the record of {}", target.display()),
        source: error.into(),
    })?;
    persist(record_file, &dir.q8_record_path(spec))?;
    Ok(target)
}

fn temporary_file(dir: &ModelDir) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".partial-")
        .tempfile_in(dir.path())
        .map_err(LocalError::io(format!(
            "creating a temporary file in {}",
            dir.path().display()
        )))
}

/// Writes to `target` a copy of the GGUF file `source` whose quantised weight tensors are
/// all Q8_0 (F32, F16 and Q8_0 tensors are copied as they are). The metadata is copied,
/// with `general.file_type` updated.
pub fn convert_to_q8(source: &Path, target: &Path) -> Result<()> {
    let device = Device::Cpu;
    let mut reader =
        File::open(source).map_err(LocalError::io(format!("opening {}", source.display())))?;
    let content = gguf_file::Content::read(&mut reader)
        .map_err(|error| error.with_path(source))
        .map_err(LocalError::candle("reading the GGUF header"))?;

    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(&str, QTensor)> = Vec::with_capacity(names.len());
    for name in names {
        let tensor = content
            .tensor(&mut reader, name, &device)
            .map_err(LocalError::candle(format!("reading tensor {name}")))?;
        let tensor = match tensor.dtype() {
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::Q8_0 => tensor,
            _ => {
                let values = tensor
                    .dequantize(&device)
                    .map_err(LocalError::candle(format!("dequantising {name}")))?;
                QTensor::quantize(&values, GgmlDType::Q8_0)
                    .map_err(LocalError::candle(format!("quantising {name} as Q8_0")))?
            }
        };
        tensors.push((name.as_str(), tensor));
    }

    let file_type = gguf_file::Value::U32(FILE_TYPE_MOSTLY_Q8_0);
    let mut keys: Vec<&String> = content.metadata.keys().collect();
    keys.sort();
    let metadata: Vec<(&str, &gguf_file::Value)> = keys
        .into_iter()
        .map(|key| {
            let value = if key == "general.file_type" {
                &file_type
            } else {
                &content.metadata[key]
            };
            (key.as_str(), value)
        })
        .collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors
        .iter()
        .map(|(name, tensor)| (*name, tensor))
        .collect();

    let file =
        File::create(target).map_err(LocalError::io(format!("creating {}", target.display())))?;
    let mut writer = BufWriter::new(file);
    gguf_file::write(&mut writer, &metadata, &tensor_refs)
        .map_err(LocalError::candle(format!("writing {}", target.display())))?;
    writer
        .into_inner()
        .map_err(|error| LocalError::Io {
            context: format!("writing {}", target.display()),
            source: error.into_error(),
        })?
        .sync_all()
        .map_err(LocalError::io(format!("flushing {}", target.display())))?;
    Ok(())
}
