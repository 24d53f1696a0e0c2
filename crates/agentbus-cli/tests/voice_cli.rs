//! `agentbus voice`: one spoken exchange on the embedded model, offline, end to end — a
//! question spoken by espeak-ng goes in as a WAV file, the spoken answer comes out as one,
//! and every stage's events are on stdout in order; bad input files are clear errors.
//!
//! The voice models (Silero VAD, Whisper tiny.en) and the chat model are pulled into the
//! default home on first use by the command itself, as for a newcomer.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn agentbus(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(args)
        .current_dir(dir)
        .env_remove("AGENTBUS_PROVIDER")
        .env_remove("AGENTBUS_TOOL_CHOICE")
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn espeak(text: &str, path: &Path) {
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(path)
        .arg(text)
        .status()
        .expect("espeak-ng is installed (apt-get install espeak-ng)");
    assert!(status.success());
}

/// The first position of each type, asserting they come in this order.
fn assert_in_order(types: &[&str], expected: &[&str]) {
    let mut from = 0;
    for want in expected {
        let at = types[from..]
            .iter()
            .position(|t| t == want)
            .unwrap_or_else(|| panic!("no {want} after position {from} in {types:#?}"));
        from += at + 1;
    }
}

/// The README's voice demo: "Hello. What is the capital of France?" in, a spoken answer
/// naming Paris out, heard back by the same speech-to-text engine.
#[test]
fn a_spoken_question_gets_a_spoken_answer() {
    let work = tempfile::tempdir().unwrap();
    espeak(
        "Hello. What is the capital of France?",
        &work.path().join("q.wav"),
    );
    let out = agentbus(
        work.path(),
        &[
            "voice",
            "--input",
            "q.wav",
            "--output",
            "reply.wav",
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
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_in_order(
        &types,
        &[
            "plugin.edge.participant_joined",
            "plugin.edge.track_added",
            "plugin.vad_speech_start",
            "plugin.turn_detection.turn_started",
            "agent.user_turn_started",
            "plugin.vad_speech_end",
            "plugin.turn_detection.turn_ended",
            "agent.user_turn_ended",
            "plugin.stt_transcript",
            "agent.user_transcript",
            "plugin.llm_request_started",
            "plugin.tts_synthesis_start",
            "plugin.tts_audio",
            "plugin.tts_synthesis_complete",
            "plugin.edge.call_ended",
        ],
    );
    let heard = events
        .iter()
        .find(|e| e["type"] == "agent.user_transcript")
        .unwrap()["text"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(heard.contains("capital of france"), "{heard}");
    let answer = events
        .iter()
        .find(|e| e["type"] == "react.react_end")
        .unwrap()["response"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(answer.contains("Paris"), "{answer}");
    // One session across the stages and the agent.
    let session = events
        .iter()
        .find(|e| e["type"] == "agent.user_transcript")
        .unwrap()["session_id"]
        .clone();
    for kind in [
        "plugin.stt_transcript",
        "plugin.tts_audio",
        "react.react_end",
    ] {
        let event = events.iter().find(|e| e["type"] == kind).unwrap();
        let id = if event["session_id"].is_null() {
            &event["origin"]["session_id"]
        } else {
            &event["session_id"]
        };
        assert_eq!(id, &session, "{kind}");
    }

    // The reply is real speech: Whisper hears "Paris" in it.
    let reply = agentbus_voice::wav::read_wav(&work.path().join("reply.wav")).unwrap();
    assert!(
        reply.duration().as_secs_f64() > 0.5,
        "{:?}",
        reply.duration()
    );
    let dir = agentbus_local::ModelDir::from_env().unwrap();
    let whisper = agentbus_voice::stt::WhisperStt::load(
        &agentbus_voice::models::whisper_files(&dir).unwrap(),
    )
    .unwrap();
    let spoken = whisper.transcribe_blocking(&reply).unwrap().text;
    assert!(spoken.to_lowercase().contains("paris"), "{spoken}");
}

/// A 44-byte WAV header for `data_len` bytes of `format` (1 = PCM, 3 = IEEE float).
fn wav_header(format: u16, bits: u16, data_len: u32) -> Vec<u8> {
    let (channels, rate) = (1u16, 16_000u32);
    let block = channels * bits / 8;
    let mut header = Vec::new();
    header.extend_from_slice(b"RIFF");
    header.extend_from_slice(&(36 + data_len).to_le_bytes());
    header.extend_from_slice(b"WAVEfmt ");
    header.extend_from_slice(&16u32.to_le_bytes());
    header.extend_from_slice(&format.to_le_bytes());
    header.extend_from_slice(&channels.to_le_bytes());
    header.extend_from_slice(&rate.to_le_bytes());
    header.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    header.extend_from_slice(&block.to_le_bytes());
    header.extend_from_slice(&bits.to_le_bytes());
    header.extend_from_slice(b"data");
    header.extend_from_slice(&data_len.to_le_bytes());
    header
}

/// A missing file, an empty one, text named `.wav`, float samples and a header with no
/// samples: each is one clear error line naming the file, never a panic, and nothing is
/// loaded or written.
#[test]
fn bad_input_files_are_clear_errors() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::write(dir.join("empty.wav"), b"").unwrap();
    std::fs::write(dir.join("text.wav"), b"this is not audio at all").unwrap();
    let mut float = wav_header(3, 32, 64);
    float.extend_from_slice(&[0u8; 64]);
    std::fs::write(dir.join("float.wav"), float).unwrap();
    std::fs::write(dir.join("silent.wav"), wav_header(1, 16, 0)).unwrap();
    for (file, says) in [
        ("missing.wav", "missing.wav"),
        ("empty.wav", "empty.wav"),
        ("text.wav", "text.wav"),
        ("float.wav", "not PCM"),
        ("silent.wav", "no samples"),
    ] {
        let out = agentbus(
            dir,
            &[
                "voice",
                "--input",
                file,
                "--output",
                "out.wav",
                "--no-store",
                "--vad",
                "energy",
            ],
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
        assert!(stderr.starts_with("error: "), "{file}: {stderr}");
        assert!(stderr.contains(says), "{file}: {stderr}");
        assert!(!stderr.contains("panicked"), "{file}: {stderr}");
        assert!(!dir.join("out.wav").exists(), "{file}");
    }
}

/// `--stt openai --tts openai`: the turn is uploaded to the transcription endpoint and
/// each reply sentence fetched from the speech endpoint of `--audio-base-url`, with the
/// key from the environment; the reply audio the server streamed is in the output WAV.
#[test]
fn network_speech_engines_are_picked_by_flag() {
    use agentbus_test_support::{FakeServer, Reply};
    const KEY: &str = "sk-voice-cli-0123456789";
    let work = tempfile::tempdir().unwrap();
    espeak(
        "Hello. What is the capital of France?",
        &work.path().join("q.wav"),
    );
    // 0.2 s of a tone at the API's 24 kHz, as raw PCM.
    let pcm: Vec<u8> = (0..4_800)
        .flat_map(|i| ((((i as f32) * 0.05).sin() * 8_000.0) as i16).to_le_bytes())
        .collect();
    let server = FakeServer::builder(vec![
        Reply::status(200, r#"{"text":"What is the capital of France?"}"#),
        Reply::body(200, "application/octet-stream", pcm),
    ])
    .repeat_last()
    .start_blocking();
    let out = Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args([
            "voice",
            "--input",
            "q.wav",
            "--output",
            "reply.wav",
            "--stt",
            "openai",
            "--tts",
            "openai",
            "--audio-base-url",
            &server.base_url,
            "--audio-key-env",
            "AGENTBUS_TEST_AUDIO_KEY",
            "--events",
            "jsonl",
            "--no-store",
        ])
        .current_dir(work.path())
        .env_remove("AGENTBUS_PROVIDER")
        .env("AGENTBUS_TEST_AUDIO_KEY", KEY)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let requests = server.requests();
    assert!(requests.len() >= 2, "{} requests", requests.len());
    assert_eq!(requests[0].path(), "/v1/audio/transcriptions");
    assert!(
        requests[0]
            .head
            .to_lowercase()
            .contains(&format!("authorization: bearer {}", KEY.to_lowercase())),
        "{}",
        requests[0].head
    );
    for speech in &requests[1..] {
        assert_eq!(speech.path(), "/v1/audio/speech");
        assert_eq!(speech.body["model"], "gpt-4o-mini-tts");
        assert_eq!(speech.body["voice"], "alloy");
    }
    let events = text(&out.stdout);
    assert!(events.contains(r#""type":"agent.user_transcript""#));
    assert!(!events.contains(KEY) && !text(&out.stderr).contains(KEY));
    let reply = hound::WavReader::open(work.path().join("reply.wav")).unwrap();
    assert_eq!(reply.spec().sample_rate, 24_000);
    assert!(
        reply.duration() >= 4_800,
        "the streamed audio is in the reply"
    );
}
