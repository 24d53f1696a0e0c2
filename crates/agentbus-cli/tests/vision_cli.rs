//! `agentbus vision`: motion detection on a video ffmpeg makes, and the question about
//! it answered by a fake OpenAI-compatible VLM server; bad sources are clear errors.

use std::path::Path;
use std::process::{Command, Output};

use agentbus_test_support::{FakeServer, Reply};
use serde_json::Value;

fn agentbus(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(args)
        .current_dir(dir)
        .env_remove("AGENTBUS_BASE_URL")
        .env_remove("AGENTBUS_MODEL")
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_video_is_watched_and_the_vlm_answers_about_it() {
    let work = tempfile::tempdir().unwrap();
    let made = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=2:size=160x120:rate=10",
            "-pix_fmt",
            "yuv420p",
            "clip.mp4",
        ])
        .current_dir(work.path())
        .status()
        .expect("ffmpeg is installed (apt-get install ffmpeg)");
    assert!(made.success());
    let server = FakeServer::start_blocking(vec![Reply::status(
        200,
        r#"{"choices":[{"message":{"role":"assistant","content":"A test pattern with a moving square."}}],"usage":{"prompt_tokens":900,"completion_tokens":8}}"#,
    )]);
    let out = agentbus(
        work.path(),
        &[
            "vision",
            "--video",
            "clip.mp4",
            "--rate",
            "5",
            "--prompt",
            "What is this?",
            "--base-url",
            &server.base_url,
            "--model",
            "test-vlm",
            "--events",
            "jsonl",
            "--no-store",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    assert!(
        count("plugin.video_processor.detection") >= 5,
        "{events:#?}"
    );
    assert_eq!(count("plugin.vlm_inference_start"), 1);
    let done = events
        .iter()
        .find(|e| e["type"] == "plugin.vlm_inference_completed")
        .expect("the inference completed");
    assert_eq!(done["text"], "A test pattern with a moving square.");
    assert_eq!(done["frames_processed"], 4);
    assert_eq!(done["model"], "test-vlm");
    let request = &server.requests()[0];
    assert_eq!(request.path(), "/v1/chat/completions");
    let content = request.body["messages"][0]["content"].as_array().unwrap();
    assert_eq!(content.len(), 5, "the prompt and four images");

    // The human output.
    let out = agentbus(
        work.path(),
        &["vision", "--video", "clip.mp4", "--rate", "5", "--no-store"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("motion"), "{shown}");
    assert!(shown.contains("10 frames"), "{shown}");
}

#[test]
fn bad_sources_are_clear_errors() {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("empty")).unwrap();
    std::fs::write(work.path().join("bogus.mp4"), "not a video").unwrap();
    for (args, says) in [
        (vec!["vision", "--frames", "empty"], "no PNG or JPEG"),
        (vec!["vision", "--frames", "nowhere"], "nowhere"),
        (vec!["vision", "--video", "bogus.mp4"], "bogus.mp4"),
        (
            vec!["vision", "--video", "bogus.mp4", "--rate", "0"],
            "--rate",
        ),
    ] {
        let out = agentbus(work.path(), &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let out = agentbus(work.path(), &["vision"]);
    assert_eq!(out.status.code(), Some(2), "clap refuses a missing source");
}
