//! The KV cache of a prompt's fixed prefix (system prompt and tool schemas), kept on disk
//! so that a new process does not process it again.
//!
//! One file per prefix under `$AGENTBUS_HOME/cache/prefix`, named by a SHA-256 over the
//! format version, the model, its weights and the prefix's token ids. A file holds a
//! header (JSON: what it was made from, its shape, the SHA-256 of its data) and the keys,
//! values and next-token logits as little-endian f32. Nothing in a file is trusted: a
//! file whose header does not match the model, the weights, the prefix or the shape, whose
//! length is wrong (a truncated write) or whose data does not hash to the recorded value
//! is reported, deleted and rebuilt. Files are written to a temporary name and renamed, so
//! a killed process leaves no half-written file under the real name; the oldest files
//! beyond [`MAX_FILES`] are removed.
//!
//! The format is written here rather than with `safetensors` because the check that
//! matters, a hash over the data tied to the weights and the prefix, is not part of
//! that format, and the layout is three arrays.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{LocalError, Result};
use crate::llama::{KvCache, Shape};
use crate::pull::hex;

/// The file layout version; part of every key.
const FORMAT: u32 = 1;
/// The first bytes of every file.
const MAGIC: &[u8; 12] = b"AGENTBUS-KV\n";
/// How many prefix files are kept (the newest).
pub const MAX_FILES: usize = 8;
/// The longest header accepted, in bytes.
const MAX_HEADER: u32 = 64 * 1024;

/// What a cache file was made from and holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Header {
    format: u32,
    model: String,
    weights: String,
    prefix_sha256: String,
    tokens: usize,
    layers: usize,
    kv_heads: usize,
    head_dim: usize,
    vocab: usize,
    data_sha256: String,
}

/// Where the prefix caches of one model (with its weights) are kept.
#[derive(Clone, Debug)]
pub struct PrefixCacheDir {
    path: PathBuf,
    model: String,
    weights: String,
}

/// Why a cache file was not used (it is then rebuilt).
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    /// There is no file for this prefix.
    Absent,
    /// There is a file but it cannot be trusted; it was deleted.
    Rejected(String),
}

impl PrefixCacheDir {
    /// The caches under `path` for `model` whose weights are identified by `weights`
    /// (e.g. their SHA-256): a cache made with other weights is never used.
    pub fn new(path: impl Into<PathBuf>, model: &str, weights: &str) -> Self {
        Self {
            path: path.into(),
            model: model.to_owned(),
            weights: weights.to_owned(),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file that holds the cache after `prefix`.
    pub fn file_for(&self, prefix: &[u32]) -> PathBuf {
        let mut hasher = Sha256::new();
        hasher.update(FORMAT.to_le_bytes());
        for part in [&self.model, &self.weights] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.update(prefix_sha256(prefix).as_bytes());
        let key = hex(&hasher.finalize());
        self.path.join(format!("{}.kv", &key[..32]))
    }

    /// The cache and next-token logits after `prefix` for a model of `shape`, if a
    /// trustworthy file holds them.
    pub fn load(
        &self,
        prefix: &[u32],
        shape: Shape,
        device: &Device,
    ) -> Result<std::result::Result<(KvCache, Vec<f32>), Miss>> {
        let path = self.file_for(prefix);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Err(Miss::Absent));
            }
            Err(error) => {
                return Err(LocalError::Io {
                    context: format!("reading {}", path.display()),
                    source: error,
                });
            }
        };
        match self.decode(&bytes, prefix, shape, device) {
            Ok(found) => {
                // Touch it: the newest files are the ones kept.
                let _ = std::fs::File::options()
                    .append(true)
                    .open(&path)
                    .and_then(|file| file.set_modified(std::time::SystemTime::now()));
                Ok(Ok(found))
            }
            Err(reason) => {
                tracing::warn!(
                    file = %path.display(),
                    reason,
                    "a prefix cache file cannot be trusted; it is deleted and rebuilt"
                );
                let _ = std::fs::remove_file(&path);
                Ok(Err(Miss::Rejected(reason)))
            }
        }
    }

    fn decode(
        &self,
        bytes: &[u8],
        prefix: &[u32],
        shape: Shape,
        device: &Device,
    ) -> std::result::Result<(KvCache, Vec<f32>), String> {
        let mut reader = bytes;
        let mut magic = [0u8; 12];
        reader
            .read_exact(&mut magic)
            .map_err(|_| "shorter than its header".to_owned())?;
        if &magic != MAGIC {
            return Err("not a prefix cache file".to_owned());
        }
        let mut length = [0u8; 4];
        reader
            .read_exact(&mut length)
            .map_err(|_| "shorter than its header".to_owned())?;
        let length = u32::from_le_bytes(length);
        if length > MAX_HEADER || length as usize > reader.len() {
            return Err(format!("a header of {length} bytes"));
        }
        let (header, data) = reader.split_at(length as usize);
        let header: Header =
            serde_json::from_slice(header).map_err(|error| format!("its header: {error}"))?;
        let expected = self.header(prefix, shape, header.vocab, header.data_sha256.clone());
        if header != expected {
            return Err(format!(
                "made for another model, weights, prefix or shape ({header:?})"
            ));
        }
        let per_layer = shape.kv_heads * prefix.len() * shape.head_dim;
        let floats = 2 * shape.layers * per_layer + header.vocab;
        if data.len() != floats * 4 {
            return Err(format!(
                "{} bytes of data, expected {} (truncated?)",
                data.len(),
                floats * 4
            ));
        }
        if hex(&Sha256::digest(data)) != header.data_sha256 {
            return Err("its data does not match its SHA-256".to_owned());
        }
        let values: Vec<f32> = data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let dims = (1, shape.kv_heads, prefix.len(), shape.head_dim);
        let tensor = |index: usize| {
            let start = index * per_layer;
            Tensor::from_slice(&values[start..start + per_layer], dims, device)
                .map_err(|error| format!("rebuilding its tensors: {error}"))
        };
        let mut layers = Vec::with_capacity(shape.layers);
        for layer in 0..shape.layers {
            layers.push(Some((tensor(2 * layer)?, tensor(2 * layer + 1)?)));
        }
        let logits = values[2 * shape.layers * per_layer..].to_vec();
        Ok((KvCache::from_layers(layers), logits))
    }

    /// Keeps `cache` (which holds exactly `prefix`) and the `logits` after it.
    pub fn save(
        &self,
        prefix: &[u32],
        shape: Shape,
        cache: &KvCache,
        logits: &[f32],
    ) -> Result<()> {
        if cache.len() != prefix.len() || cache.layers().len() != shape.layers {
            return Err(LocalError::PrefixCache(format!(
                "a cache of {} positions in {} layers does not hold a prefix of {} tokens",
                cache.len(),
                cache.layers().len(),
                prefix.len()
            )));
        }
        let mut data: Vec<u8> = Vec::new();
        for layer in cache.layers() {
            let Some((k, v)) = layer else {
                return Err(LocalError::PrefixCache("an empty cache layer".to_owned()));
            };
            for tensor in [k, v] {
                let values: Vec<f32> = tensor
                    .flatten_all()
                    .and_then(|t| t.to_vec1())
                    .map_err(LocalError::candle("reading the KV cache"))?;
                data.extend(values.iter().flat_map(|value| value.to_le_bytes()));
            }
        }
        data.extend(logits.iter().flat_map(|value| value.to_le_bytes()));
        let header = self.header(prefix, shape, logits.len(), hex(&Sha256::digest(&data)));
        let header = serde_json::to_vec(&header).expect("a header serialises");
        let io = |what: &str| LocalError::io(format!("{what} in {}", self.path.display()));
        std::fs::create_dir_all(&self.path).map_err(io("creating the prefix cache"))?;
        let mut file = tempfile::NamedTempFile::new_in(&self.path)
            .map_err(io("creating a prefix cache file"))?;
        file.write_all(MAGIC)
            .and_then(|()| file.write_all(&(header.len() as u32).to_le_bytes()))
            .and_then(|()| file.write_all(&header))
            .and_then(|()| file.write_all(&data))
            .map_err(io("writing a prefix cache file"))?;
        file.persist(self.file_for(prefix))
            .map_err(|error| error.error)
            .map_err(io("naming a prefix cache file"))?;
        self.evict();
        Ok(())
    }

    /// The header of the cache after `prefix` for this model and weights.
    fn header(&self, prefix: &[u32], shape: Shape, vocab: usize, data_sha256: String) -> Header {
        Header {
            format: FORMAT,
            model: self.model.clone(),
            weights: self.weights.clone(),
            prefix_sha256: prefix_sha256(prefix),
            tokens: prefix.len(),
            layers: shape.layers,
            kv_heads: shape.kv_heads,
            head_dim: shape.head_dim,
            vocab,
            data_sha256,
        }
    }

    /// Removes all but the newest [`MAX_FILES`] cache files.
    fn evict(&self) {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "kv"))
            .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
            .collect();
        files.sort_by_key(|file| std::cmp::Reverse(file.0));
        for (_, path) in files.into_iter().skip(MAX_FILES) {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn prefix_sha256(prefix: &[u32]) -> String {
    let mut hasher = Sha256::new();
    for token in prefix {
        hasher.update(token.to_le_bytes());
    }
    hex(&hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            layers: 2,
            heads: 2,
            kv_heads: 1,
            head_dim: 4,
            hidden: 8,
            context: 64,
        }
    }

    fn cache(tokens: usize) -> KvCache {
        let layer = |seed: f32| {
            let values: Vec<f32> = (0..tokens * 4).map(|i| seed + i as f32).collect();
            Tensor::from_vec(values, (1, 1, tokens, 4), &Device::Cpu).unwrap()
        };
        KvCache::from_layers(vec![
            Some((layer(0.0), layer(100.0))),
            Some((layer(200.0), layer(300.0))),
        ])
    }

    fn flat(cache: &KvCache) -> Vec<f32> {
        cache
            .layers()
            .iter()
            .flatten()
            .flat_map(|(k, v)| {
                let mut out: Vec<f32> = k.flatten_all().unwrap().to_vec1().unwrap();
                out.extend(v.flatten_all().unwrap().to_vec1::<f32>().unwrap());
                out
            })
            .collect()
    }

    #[test]
    fn a_saved_prefix_loads_back_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        let store = PrefixCacheDir::new(dir.path(), "m", "w1");
        let prefix = [5, 6, 7];
        store
            .save(&prefix, shape(), &cache(3), &[1.0, 2.0])
            .unwrap();

        let (loaded, logits) = store.load(&prefix, shape(), &Device::Cpu).unwrap().unwrap();
        assert_eq!(flat(&loaded), flat(&cache(3)));
        assert_eq!(logits, vec![1.0, 2.0]);
        assert_eq!(
            store
                .load(&[5, 6, 8], shape(), &Device::Cpu)
                .unwrap()
                .unwrap_err(),
            Miss::Absent
        );
        // Other weights, another model: another key, so nothing is found.
        let other = PrefixCacheDir::new(dir.path(), "m", "w2");
        assert_eq!(
            other
                .load(&prefix, shape(), &Device::Cpu)
                .unwrap()
                .unwrap_err(),
            Miss::Absent
        );
    }

    #[test]
    fn a_damaged_file_is_rejected_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = PrefixCacheDir::new(dir.path(), "m", "w1");
        let prefix = [1, 2];
        type Damage = fn(&mut Vec<u8>);
        let damages: [(&str, Damage); 4] = [
            ("truncated", |bytes| bytes.truncate(bytes.len() - 3)),
            ("a flipped data byte", |bytes| {
                let last = bytes.len() - 1;
                bytes[last] ^= 1;
            }),
            ("a bad magic", |bytes| bytes[0] = b'X'),
            ("empty", |bytes| bytes.clear()),
        ];
        for (what, damage) in damages {
            store.save(&prefix, shape(), &cache(2), &[0.5]).unwrap();
            let path = store.file_for(&prefix);
            let mut bytes = std::fs::read(&path).unwrap();
            damage(&mut bytes);
            std::fs::write(&path, bytes).unwrap();
            let miss = store
                .load(&prefix, shape(), &Device::Cpu)
                .unwrap()
                .unwrap_err();
            assert!(matches!(miss, Miss::Rejected(_)), "{what}: {miss:?}");
            assert!(!path.exists(), "{what}: the file is deleted");
        }
        // A shape the file was not made for.
        store.save(&prefix, shape(), &cache(2), &[0.5]).unwrap();
        let wider = Shape {
            head_dim: 8,
            ..shape()
        };
        let miss = store
            .load(&prefix, wider, &Device::Cpu)
            .unwrap()
            .unwrap_err();
        assert!(matches!(miss, Miss::Rejected(_)), "{miss:?}");
    }

    #[test]
    fn only_the_newest_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = PrefixCacheDir::new(dir.path(), "m", "w");
        for token in 0..(MAX_FILES as u32 + 3) {
            store.save(&[token], shape(), &cache(1), &[0.0]).unwrap();
        }
        let count = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(count, MAX_FILES);
    }
}
