//! A reader for CTranslate2's `model.bin`, the format faster-whisper and CTranslate2
//! models ship in. Written from CTranslate2's own source (`src/models/model.cc`,
//! `python/ctranslate2/specs/model_spec.py`): no crate reads this format.
//!
//! Layout (little-endian), binary version 6:
//!
//! ```text
//! u32 binary_version
//! str spec_name                   (u16 length including a trailing NUL, then the bytes)
//! u32 spec_revision
//! u32 variable_count
//! variable_count × {
//!     str  name                   (e.g. `encoder/layer_0/self_attention/linear_0/weight`)
//!     u8   rank
//!     u32  dims[rank]
//!     u8   dtype                  (0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16)
//!     u32  byte_count
//!     u8   data[byte_count]
//! }
//! u32 alias_count
//! alias_count × { str alias, str variable }
//! ```
//!
//! Scalars (rank 0) hold model options (`decoder/num_heads`, `encoder/...`).

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{Result, VoiceError};

/// The element type of a variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ct2Type {
    /// 32-bit float.
    F32,
    /// 8-bit signed integer.
    I8,
    /// 16-bit signed integer.
    I16,
    /// 32-bit signed integer.
    I32,
    /// 16-bit float.
    F16,
    /// bfloat16.
    Bf16,
}

impl Ct2Type {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Ct2Type::F32,
            1 => Ct2Type::I8,
            2 => Ct2Type::I16,
            3 => Ct2Type::I32,
            4 => Ct2Type::F16,
            5 => Ct2Type::Bf16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Ct2Type::I8 => 1,
            Ct2Type::I16 | Ct2Type::F16 | Ct2Type::Bf16 => 2,
            Ct2Type::F32 | Ct2Type::I32 => 4,
        }
    }
}

/// One variable's shape, type and place in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ct2Variable {
    /// The dimensions (empty for a scalar).
    pub shape: Vec<usize>,
    /// The element type.
    pub dtype: Ct2Type,
    range: Range<usize>,
}

/// A parsed `model.bin`: the spec's name and revision and every variable.
pub struct Ct2Model {
    path: PathBuf,
    bytes: Vec<u8>,
    /// The binary format version.
    pub binary_version: u32,
    /// The spec (`WhisperSpec`, `TransformerSpec`, ...).
    pub spec: String,
    /// The spec's revision.
    pub revision: u32,
    variables: HashMap<String, Ct2Variable>,
    aliases: HashMap<String, String>,
}

impl std::fmt::Debug for Ct2Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ct2Model")
            .field("path", &self.path)
            .field("spec", &self.spec)
            .field("revision", &self.revision)
            .field("variables", &self.variables.len())
            .finish_non_exhaustive()
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize, what: &str) -> std::result::Result<Range<usize>, String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "truncated: {what} needs {n} bytes at offset {}, the file has {}",
                    self.at,
                    self.bytes.len()
                )
            })?;
        let range = self.at..end;
        self.at = end;
        Ok(range)
    }

    fn u8(&mut self, what: &str) -> std::result::Result<u8, String> {
        let r = self.take(1, what)?;
        Ok(self.bytes[r.start])
    }

    fn u16(&mut self, what: &str) -> std::result::Result<u16, String> {
        let r = self.take(2, what)?;
        Ok(u16::from_le_bytes([
            self.bytes[r.start],
            self.bytes[r.start + 1],
        ]))
    }

    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        let r = self.take(4, what)?;
        let b = &self.bytes[r];
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self, what: &str) -> std::result::Result<String, String> {
        let len = usize::from(self.u16(what)?);
        let r = self.take(len, what)?;
        let raw = &self.bytes[r];
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        String::from_utf8(raw.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }
}

impl Ct2Model {
    /// Reads and parses the file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).map_err(VoiceError::io(format!("reading {}", path.display())))?;
        Self::parse(bytes, path)
    }

    /// Parses `bytes` (`path` names the file in errors).
    pub fn parse(bytes: Vec<u8>, path: &Path) -> Result<Self> {
        let bad = |reason: String| VoiceError::BadModel {
            path: path.to_owned(),
            reason: format!("not a CTranslate2 model.bin: {reason}"),
        };
        let mut c = Cursor {
            bytes: &bytes,
            at: 0,
        };
        let binary_version = c.u32("the binary version").map_err(bad)?;
        if !(3..=6).contains(&binary_version) {
            return Err(bad(format!(
                "binary version {binary_version} (versions 3 to 6 are read)"
            )));
        }
        let spec = c.string("the spec name").map_err(bad)?;
        let revision = c.u32("the spec revision").map_err(bad)?;
        let count = c.u32("the variable count").map_err(bad)? as usize;
        let mut variables = HashMap::with_capacity(count.min(4096));
        for index in 0..count {
            let name = c.string("a variable name").map_err(bad)?;
            let rank = usize::from(c.u8("a rank").map_err(bad)?);
            let mut shape = Vec::with_capacity(rank);
            for _ in 0..rank {
                shape.push(c.u32("a dimension").map_err(bad)? as usize);
            }
            let code = c.u8("a type").map_err(bad)?;
            let dtype = Ct2Type::from_code(code)
                .ok_or_else(|| bad(format!("variable {name} has unknown type {code}")))?;
            let byte_count = c.u32("a byte count").map_err(bad)? as usize;
            let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            if elements.and_then(|n| n.checked_mul(dtype.size())) != Some(byte_count) {
                return Err(bad(format!(
                    "variable {index} ({name}) has shape {shape:?} of {dtype:?} but {byte_count} bytes"
                )));
            }
            let range = c.take(byte_count, &name).map_err(bad)?;
            variables.insert(
                name,
                Ct2Variable {
                    shape,
                    dtype,
                    range,
                },
            );
        }
        let mut aliases = HashMap::new();
        if c.at < bytes.len() {
            let count = c.u32("the alias count").map_err(bad)?;
            for _ in 0..count {
                let alias = c.string("an alias").map_err(bad)?;
                let target = c.string("an alias target").map_err(bad)?;
                aliases.insert(alias, target);
            }
        }
        Ok(Self {
            path: path.to_owned(),
            bytes,
            binary_version,
            spec,
            revision,
            variables,
            aliases,
        })
    }

    /// The variable called `name` (aliases resolved).
    pub fn variable(&self, name: &str) -> Option<&Ct2Variable> {
        let name = self.aliases.get(name).map(String::as_str).unwrap_or(name);
        self.variables.get(name)
    }

    /// The names of all variables.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.variables.keys().map(String::as_str)
    }

    fn missing(&self, name: &str) -> VoiceError {
        VoiceError::BadModel {
            path: self.path.clone(),
            reason: format!("the {} model has no variable `{name}`", self.spec),
        }
    }

    /// The raw bytes of `name`.
    pub fn raw(&self, name: &str) -> Result<(&Ct2Variable, &[u8])> {
        let variable = self.variable(name).ok_or_else(|| self.missing(name))?;
        Ok((variable, &self.bytes[variable.range.clone()]))
    }

    /// A scalar integer option (`decoder/num_heads`).
    pub fn scalar(&self, name: &str) -> Result<i64> {
        let (variable, bytes) = self.raw(name)?;
        let value = match (variable.dtype, bytes) {
            (Ct2Type::I8, [b]) => i64::from(*b as i8),
            (Ct2Type::I16, [a, b]) => i64::from(i16::from_le_bytes([*a, *b])),
            (Ct2Type::I32, [a, b, c, d]) => i64::from(i32::from_le_bytes([*a, *b, *c, *d])),
            _ => {
                return Err(VoiceError::BadModel {
                    path: self.path.clone(),
                    reason: format!("`{name}` is not an integer scalar"),
                });
            }
        };
        Ok(value)
    }

    /// The variable `name` as an `f32` tensor on `device` (f16 and bf16 are widened).
    pub fn tensor(&self, name: &str, device: &Device) -> Result<Tensor> {
        let (variable, bytes) = self.raw(name)?;
        let dtype = match variable.dtype {
            Ct2Type::F32 => DType::F32,
            Ct2Type::F16 => DType::F16,
            Ct2Type::Bf16 => DType::BF16,
            other => {
                return Err(VoiceError::BadModel {
                    path: self.path.clone(),
                    reason: format!("`{name}` is {other:?}; only float weights are read"),
                });
            }
        };
        let context = format!("loading `{name}` from {}", self.path.display());
        Tensor::from_raw_buffer(bytes, dtype, &variable.shape, device)
            .and_then(|t| t.to_dtype(DType::F32))
            .map_err(VoiceError::candle(context))
    }
}

/// Writes a `model.bin` (for tests): `(name, shape, f32 data)` variables and aliases.
#[doc(hidden)]
pub fn write_for_tests(
    spec: &str,
    variables: &[(&str, Vec<usize>, Vec<f32>)],
    scalars: &[(&str, i16)],
    aliases: &[(&str, &str)],
) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&6u32.to_le_bytes());
    string(&mut out, spec);
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&((variables.len() + scalars.len()) as u32).to_le_bytes());
    for (name, shape, data) in variables {
        string(&mut out, name);
        out.push(shape.len() as u8);
        for d in shape {
            out.extend_from_slice(&(*d as u32).to_le_bytes());
        }
        out.push(0);
        out.extend_from_slice(&((data.len() * 4) as u32).to_le_bytes());
        for v in data {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    for (name, value) in scalars {
        string(&mut out, name);
        out.push(0);
        out.push(2);
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
    for (alias, target) in aliases {
        string(&mut out, alias);
        string(&mut out, target);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_variables_scalars_and_aliases() {
        let bytes = write_for_tests(
            "WhisperSpec",
            &[("a/weight", vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])],
            &[("a/num_heads", 6)],
            &[("b/weight", "a/weight")],
        );
        let model = Ct2Model::parse(bytes, Path::new("m.bin")).unwrap();
        assert_eq!(model.spec, "WhisperSpec");
        assert_eq!(model.scalar("a/num_heads").unwrap(), 6);
        let t = model.tensor("b/weight", &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[2, 3]);
        assert_eq!(t.to_vec2::<f32>().unwrap()[1], vec![4.0, 5.0, 6.0]);
        assert!(model.tensor("nope", &Device::Cpu).is_err());
    }

    #[test]
    fn truncated_or_garbage_files_are_errors_not_panics() {
        let bytes = write_for_tests("S", &[("w", vec![4], vec![0.5; 4])], &[], &[]);
        for cut in 0..bytes.len() - 4 {
            // Cutting inside the alias count is still an error; cutting right at the
            // end of the variables is a file without aliases (valid).
            let result = Ct2Model::parse(bytes[..cut].to_vec(), Path::new("t.bin"));
            if cut != bytes.len() - 4 {
                assert!(result.is_err(), "cut at {cut} parsed");
            }
        }
        let error = Ct2Model::parse(b"GGUF\x03\x00\x00\x00".to_vec(), Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a CTranslate2"), "{error}");
        let mut wrong = write_for_tests("S", &[("w", vec![4], vec![0.5; 4])], &[], &[]);
        // Claim a shape of 5 for 16 bytes.
        let at = 4 + 2 + 2 + 4 + 4 + 2 + 2 + 1;
        wrong[at] = 5;
        assert!(Ct2Model::parse(wrong, Path::new("w")).is_err());
    }
}
