//! The API key, as a suite: every failure the CLI can be driven into (an auth error that
//! echoes the key, rate limits and server errors that echo it while the call retries, a
//! stream cut mid-answer, a store that is not there), with the key named each way a user
//! can name it (the provider's default variable, `--api-key-env`, a trusted config
//! file), and everything the run leaves behind searched for the key afterwards: stdout
//! (the bus events as JSON lines), stderr (the log at `trace`), the store's files, what
//! the OTLP exporter sent, and the metrics summary. The key must reach the model server's
//! `Authorization` header, and nothing else.
//!
//! The built `agentbus` binary, loopback fake servers, real files.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use agentbus_test_support::openai::{self, chunk};
use agentbus_test_support::{FakeServer, Reply, closed_port};
use serde_json::{Value, json};

/// The key: distinctive enough that any copy of it, anywhere, is found by a plain search.
const KEY: &str = "sk-canary-7Qx9-agentbus-secrets-suite-Zp41";

/// An error body the way providers write them: the key, echoed.
fn echoing(message: &str) -> String {
    json!({"error": {"message": format!("{message}: {KEY}"), "type": "invalid_request_error",
                     "code": "invalid_api_key"}})
    .to_string()
}

/// `status` with a body echoing the key and a short `retry-after-ms`, so retries are quick.
fn echoing_status(status: u16, message: &str) -> Reply {
    Reply::Status {
        status,
        headers: vec![("retry-after-ms".to_owned(), "10".to_owned())],
        body: echoing(message).into_bytes(),
    }
}

/// A plain text answer.
fn answer(text: &str) -> Reply {
    openai::reply(&[
        chunk(json!({"role": "assistant", "content": text}), None),
        chunk(json!({}), Some("stop")),
    ])
}

/// An answer cut mid-way: no finish reason, no `[DONE]`, the connection closed.
fn cut_answer() -> Reply {
    openai::reply_cut(&[chunk(
        json!({"role": "assistant", "content": "The answer is"}),
        None,
    )])
}

/// Where the key is named.
#[derive(Clone, Copy, Debug)]
enum KeySource {
    /// `OPENAI_API_KEY`, the provider's default variable.
    DefaultVariable,
    /// A variable named with `--api-key-env`.
    Flag,
    /// A variable named by `api-key-env` in a config file given with `--config`.
    TrustedConfig,
}

/// `agentbus run` against `model` with the key named by `source`, everything logged, the
/// bus events on stdout, metrics to `otlp` and as JSON; `store` is the `--store` URL.
fn run(
    dir: &Path,
    source: KeySource,
    model: &FakeServer,
    otlp: &FakeServer,
    store: &str,
) -> Output {
    let mut command = common::isolated(dir, &dir.join("home"));
    command
        .env("RUST_LOG", "trace")
        .args(["run", "--provider", "openai", "--base-url", &model.base_url])
        .args(["--events", "jsonl", "--metrics-json", "--store", store])
        .args(["--otlp-endpoint", &format!("http://{}", otlp.addr)])
        .args(["--request-timeout", "20s", "--max-iterations", "2"]);
    match source {
        KeySource::DefaultVariable => {
            command.env("OPENAI_API_KEY", KEY);
        }
        KeySource::Flag => {
            command
                .env("SECRETS_SUITE_KEY", KEY)
                .args(["--api-key-env", "SECRETS_SUITE_KEY"]);
        }
        KeySource::TrustedConfig => {
            let config = dir.join("trusted.toml");
            std::fs::write(&config, "api-key-env = \"SECRETS_SUITE_CONFIG_KEY\"\n").unwrap();
            command
                .env("SECRETS_SUITE_CONFIG_KEY", KEY)
                .arg("--config")
                .arg(&config);
        }
    }
    command.arg("What is the answer?").output().unwrap()
}

/// Every file under `dir`, as bytes, with its path.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                found.push((path, bytes));
            }
        }
    }
    found
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Asserts the key is nowhere but in the `Authorization` headers the model server got,
/// and that it did get it there (so the run used the key at all).
fn assert_key_only_sent_to_the_model(
    case: &str,
    dir: &Path,
    output: &Output,
    model: &FakeServer,
    otlp: &FakeServer,
) {
    let requests = model.requests();
    assert!(
        !requests.is_empty(),
        "{case}: the model server got no request"
    );
    for request in &requests {
        let authorization = request
            .head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
            .unwrap_or_default();
        assert!(
            authorization.ends_with(&format!("Bearer {KEY}")),
            "{case}: the key did not reach the model server: {authorization:?}"
        );
        let elsewhere = request.head.replace(authorization, "");
        assert!(
            !elsewhere.contains(KEY) && !contains(&request.raw_body, KEY.as_bytes()),
            "{case}: the key is in the request outside its Authorization header"
        );
    }
    assert_key_left_nowhere(case, dir, output, otlp);
}

/// Asserts the key is in none of what a run left: stdout, stderr (the log), the files
/// under `dir`, and what `otlp` received.
fn assert_key_left_nowhere(case: &str, dir: &Path, output: &Output, otlp: &FakeServer) {
    let key = KEY.as_bytes();
    assert!(
        !contains(&output.stdout, key),
        "{case}: the key is in stdout"
    );
    assert!(
        !contains(&output.stderr, key),
        "{case}: the key is in stderr (the log)"
    );
    for (path, bytes) in files(dir) {
        // The config file names the variable, never the key; it is searched like the rest.
        assert!(
            !contains(&bytes, key),
            "{case}: the key is in {}",
            path.display()
        );
    }
    for request in otlp.requests() {
        assert!(
            !contains(&request.raw_body, key) && !request.head.contains(KEY),
            "{case}: the key was exported over OTLP ({})",
            request.path()
        );
    }
}

/// The stdout lines that are bus events, as JSON.
fn events(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("type").is_some())
        .collect()
}

fn otlp_server() -> FakeServer {
    FakeServer::builder(vec![Reply::body(200, "application/x-protobuf", Vec::new())])
        .repeat_last()
        .start_blocking()
}

#[test]
fn the_key_reaches_the_model_server_and_nothing_else_whatever_fails() {
    for source in [
        KeySource::DefaultVariable,
        KeySource::Flag,
        KeySource::TrustedConfig,
    ] {
        let dir = common::scratch("secrets", "case");
        let store = format!("sqlite://{}", dir.join("store.db").display());

        // An auth error whose body echoes the key: the run fails, and says why.
        let model = FakeServer::start_blocking(vec![echoing_status(401, "Incorrect API key")]);
        let otlp = otlp_server();
        let output = run(&dir, source, &model, &otlp, &store);
        assert!(
            !output.status.success(),
            "{source:?}: a 401 must fail the run"
        );
        let case = format!("{source:?}, 401");
        assert_key_only_sent_to_the_model(&case, &dir, &output, &model, &otlp);
        assert!(
            events(&output)
                .iter()
                .any(|e| e["type"] == "react.llm_call_error"),
            "{case}: no llm_call_error event"
        );

        // Rate limited, then a server error, both echoing the key; then an answer.
        let model = FakeServer::start_blocking(vec![
            echoing_status(429, "Rate limit reached for key"),
            echoing_status(500, "Internal error for key"),
            answer("forty-two"),
        ]);
        let otlp = otlp_server();
        let output = run(&dir, source, &model, &otlp, &store);
        let case = format!("{source:?}, 429 and 500 then an answer");
        assert!(
            output.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(model.requests().len(), 3, "{case}: two retries");
        assert_key_only_sent_to_the_model(&case, &dir, &output, &model, &otlp);

        // A stream cut mid-answer (every attempt).
        let model = FakeServer::builder(vec![cut_answer()])
            .repeat_last()
            .start_blocking();
        let otlp = otlp_server();
        let output = run(&dir, source, &model, &otlp, &store);
        let case = format!("{source:?}, cut stream");
        assert!(
            !output.status.success(),
            "{case}: a cut stream must fail the run"
        );
        assert_key_only_sent_to_the_model(&case, &dir, &output, &model, &otlp);

        // A store that is not there (PostgreSQL on a closed port), with a password.
        let model = FakeServer::start_blocking(vec![answer("forty-two")]);
        let otlp = otlp_server();
        let absent = format!("postgres://app:pw@127.0.0.1:{}/db", closed_port().port());
        let output = run(&dir, source, &model, &otlp, &absent);
        let case = format!("{source:?}, absent store");
        assert!(
            !output.status.success(),
            "{case}: an absent store must fail the run"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains(":pw@"),
            "{case}: the store password is shown"
        );
        // The store is opened before the model is called: the key may not have been sent.
        assert_key_left_nowhere(&case, &dir, &output, &otlp);

        // The store kept the sessions of the runs above, and the key is in none of it
        // (searched as files above; here through the CLI too).
        let sessions = common::isolated(&dir, &dir.join("home"))
            .args(["sessions", "--json", "--store", &store])
            .output()
            .unwrap();
        assert!(sessions.status.success(), "{source:?}: sessions");
        assert!(
            !contains(&sessions.stdout, KEY.as_bytes()),
            "{source:?}: the key is in `sessions`"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
