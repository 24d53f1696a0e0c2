//! The config files the user trusts: `$AGENTBUS_HOME/trusted-configs.json`, a list of
//! canonical paths, each with the SHA-256 of the content that was trusted.
//!
//! A record matches a file only while the file still has that content: a changed file
//! must be trusted again (`agentbus config trust`). The list is rewritten atomically (a
//! temporary file renamed over it), so a crash never leaves half a list.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The trust list's file name inside `$AGENTBUS_HOME`.
pub const TRUST_FILE: &str = "trusted-configs.json";

/// One trusted file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustRecord {
    /// The file's canonical path.
    pub path: PathBuf,
    /// The SHA-256 of the content that was trusted, lowercase hex.
    pub sha256: String,
}

/// The trust list, as read from (and written back to) `$AGENTBUS_HOME`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustList {
    /// The trusted files.
    pub trusted: Vec<TrustRecord>,
}

/// What the trust list says about one file's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Trusted, with exactly this content.
    Trusted,
    /// Trusted once, but the content changed since.
    Changed,
    /// Never trusted.
    Unknown,
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl TrustList {
    /// The list's path under `home`.
    pub fn path_in(home: &Path) -> PathBuf {
        home.join(TRUST_FILE)
    }

    /// Reads the list from `home` (an absent file is an empty list; a corrupt one is an
    /// error naming it, so a damaged list never silently trusts or forgets anything).
    pub fn load(home: &Path) -> anyhow::Result<Self> {
        let path = Self::path_in(home);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "reading the config trust list {} (fix or delete it)",
                    path.display()
                )
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes the list to `home` atomically (creating `home` if needed).
    pub fn save(&self, home: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
        let path = Self::path_in(home);
        let temporary = home.join(format!(".{TRUST_FILE}.{}.tmp", std::process::id()));
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        std::fs::write(&temporary, text)
            .with_context(|| format!("writing {}", temporary.display()))?;
        std::fs::rename(&temporary, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// What the list says about the file at canonical path `path` with content hash
    /// `sha256`.
    pub fn verdict(&self, path: &Path, sha256: &str) -> Verdict {
        match self.trusted.iter().find(|record| record.path == path) {
            Some(record) if record.sha256 == sha256 => Verdict::Trusted,
            Some(_) => Verdict::Changed,
            None => Verdict::Unknown,
        }
    }

    /// Trusts `path` with content hash `sha256`, replacing an older record of it.
    pub fn trust(&mut self, path: &Path, sha256: &str) {
        self.trusted.retain(|record| record.path != path);
        self.trusted.push(TrustRecord {
            path: path.to_owned(),
            sha256: sha256.to_owned(),
        });
    }

    /// Forgets `path`; whether it was there.
    pub fn untrust(&mut self, path: &Path) -> bool {
        let before = self.trusted.len();
        self.trusted.retain(|record| record.path != path);
        self.trusted.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_matches_only_its_content_and_survives_a_round_trip() {
        let home = tempfile::tempdir().unwrap();
        let mut list = TrustList::load(home.path()).unwrap();
        assert!(list.trusted.is_empty());
        let file = Path::new("/repo/agentbus.toml");
        let hash = sha256_hex(b"model = \"x\"\n");
        assert_eq!(list.verdict(file, &hash), Verdict::Unknown);
        list.trust(file, &hash);
        list.trust(file, &hash);
        assert_eq!(list.trusted.len(), 1);
        list.save(home.path()).unwrap();
        let list = TrustList::load(home.path()).unwrap();
        assert_eq!(list.verdict(file, &hash), Verdict::Trusted);
        assert_eq!(
            list.verdict(file, &sha256_hex(b"model = \"y\"\n")),
            Verdict::Changed
        );
        let mut list = list;
        assert!(list.untrust(file));
        assert!(!list.untrust(file));
        assert_eq!(list.verdict(file, &hash), Verdict::Unknown);
    }

    #[test]
    fn a_corrupt_list_is_an_error_naming_it() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(TRUST_FILE), "{not json").unwrap();
        let error = format!("{:#}", TrustList::load(home.path()).unwrap_err());
        assert!(error.contains(TRUST_FILE), "{error}");
    }

    #[test]
    fn sha256_is_the_standard_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
