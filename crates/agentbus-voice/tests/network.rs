//! The network engines against loopback fake servers speaking the OpenAI audio API: the
//! requests are checked byte by byte (multipart upload, JSON body, bearer key), the replies
//! streamed in odd-sized pieces, and errors — a 500 that echoes the key, a 429, a cut
//! connection — become error values and error events, with the key never in either.

mod common;

use std::sync::Arc;
use std::time::Duration;

use agentbus::EventManager;
use agentbus_llm::ApiKey;
use agentbus_test_support::{FakeServer, Framing, Reply};
use agentbus_voice::clock::SystemClock;
use agentbus_voice::publish::Emitter;
use agentbus_voice::stt::{InstrumentedStt, OpenAiStt};
use agentbus_voice::tts::{InstrumentedTts, OPENAI_PCM_RATE, OpenAiTts, SynthesisItem};
use agentbus_voice::{AudioFrame, VoiceError};
use common::{Recorder, assert_in_order};
use futures::StreamExt;

const KEY: &str = "sk-test-0123456789abcdef";

fn tone(rate: u32, seconds: f32) -> AudioFrame {
    let samples = (0..(rate as f32 * seconds) as usize)
        .map(|i| ((i as f32 * 0.07).sin() * 9_000.0) as i16)
        .collect();
    AudioFrame::new(samples, rate, 1, Duration::ZERO)
}

fn stt(server: &FakeServer, bus: &EventManager) -> InstrumentedStt {
    let engine = OpenAiStt::new(&server.base_url, "whisper-1", Some(ApiKey::new(KEY)));
    InstrumentedStt::new(
        Box::new(engine),
        Emitter::new(bus.clone(), "voice"),
        Arc::new(SystemClock::new()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_stt_uploads_the_turn_as_a_multipart_wav() {
    let server = FakeServer::start(vec![Reply::status(
        200,
        r#"{"text":"What is the capital of France?","language":"english"}"#,
    )])
    .await;
    let bus = EventManager::new();
    let recorder = Recorder::attach(&bus);
    let mut stt = stt(&server, &bus);
    // 22.05 kHz stereo-free audio in 20 ms frames: uploaded as 16 kHz mono.
    for frame in tone(22_050, 1.0).split(Duration::from_millis(20)) {
        stt.push(&frame).await.unwrap();
    }
    let (transcript, _latency) = stt.finish().await.unwrap();
    assert_eq!(transcript.text, "What is the capital of France?");
    bus.wait(Duration::from_secs(5)).await.unwrap();

    let request = &server.requests()[0];
    assert_eq!(request.path(), "/v1/audio/transcriptions");
    let head = request.head.to_lowercase();
    assert!(head.contains(&format!("authorization: bearer {}", KEY.to_lowercase())));
    let boundary = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: multipart/form-data; boundary="))
        .expect("a multipart content type")
        .trim()
        .to_owned();
    let body = &request.raw_body;
    let text = String::from_utf8_lossy(body);
    assert!(
        text.contains("name=\"model\"\r\n\r\nwhisper-1\r\n"),
        "{text:.300}"
    );
    assert!(text.contains("filename=\"audio.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF"));
    assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
    // The file part is a 16 kHz mono 16-bit WAV holding the whole second.
    let start = body.windows(4).position(|w| w == b"RIFF").unwrap();
    let end = body.len() - format!("\r\n--{boundary}--\r\n").len();
    let wav = &body[start..end];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upload.wav");
    std::fs::write(&path, wav).unwrap();
    let uploaded = agentbus_voice::wav::read_wav(&path).unwrap();
    assert_eq!((uploaded.sample_rate, uploaded.channels), (16_000, 1));
    assert_eq!(uploaded.samples.len(), 16_000);

    let types = recorder.types();
    assert_in_order(&types, &["plugin.stt_connection", "plugin.stt_transcript"]);
    let event = &recorder.of("plugin.stt_transcript")[0];
    assert_eq!(event["text"], "What is the capital of France?");
    assert_eq!(event["plugin_name"], "openai-stt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_stt_errors_are_events_without_the_key() {
    let server = FakeServer::start(vec![
        Reply::status(
            500,
            &format!(r#"{{"error":{{"message":"upstream failed for key {KEY}"}}}}"#),
        ),
        Reply::status(401, "Unauthorized"),
    ])
    .await;
    let bus = EventManager::new();
    let recorder = Recorder::attach(&bus);
    let mut stt = stt(&server, &bus);
    stt.push(&tone(16_000, 0.3)).await.unwrap();
    let error = stt.finish().await.unwrap_err();
    assert!(
        matches!(
            error,
            VoiceError::Remote {
                recoverable: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("HTTP 500"), "{error}");
    assert!(!error.to_string().contains(KEY), "{error}");
    // The engine is ready for the next turn; a 401 is not recoverable.
    stt.push(&tone(16_000, 0.3)).await.unwrap();
    let error = stt.finish().await.unwrap_err();
    assert!(
        matches!(
            error,
            VoiceError::Remote {
                recoverable: false,
                ..
            }
        ),
        "{error:?}"
    );
    bus.wait(Duration::from_secs(5)).await.unwrap();
    let errors = recorder.of("plugin.stt_error");
    assert_eq!(errors.len(), 2, "{errors:#?}");
    let all = serde_json::to_string(&recorder.events()).unwrap();
    assert!(!all.contains(KEY));
}

fn tts(server: &FakeServer, bus: &EventManager) -> InstrumentedTts {
    let engine = OpenAiTts::new(
        &server.base_url,
        "gpt-4o-mini-tts",
        "alloy",
        Some(ApiKey::new(KEY)),
    );
    InstrumentedTts::new(
        Arc::new(engine),
        Emitter::new(bus.clone(), "voice"),
        Arc::new(SystemClock::new()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_tts_streams_pcm_as_it_arrives() {
    // Half a second of 24 kHz PCM, in odd-sized pieces: samples split across pieces are
    // put back together.
    let audio = tone(OPENAI_PCM_RATE, 0.5);
    let server = FakeServer::start(vec![Reply::stream_split(
        &audio.to_le_bytes(),
        1_001,
        Duration::from_millis(2),
    )])
    .await;
    let bus = EventManager::new();
    let recorder = Recorder::attach(&bus);
    let tts = tts(&server, &bus);
    let mut stream = tts.synthesize("Paris is the capital of France.").await;
    let mut received = Vec::new();
    let mut chunks = 0;
    let mut report = None;
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            SynthesisItem::Audio(frame) => {
                assert_eq!(frame.sample_rate, OPENAI_PCM_RATE);
                received.extend(frame.samples);
                chunks += 1;
            }
            SynthesisItem::Done(done) => report = Some(done),
        }
    }
    assert_eq!(received, audio.samples);
    assert!(chunks > 5, "streamed, not buffered: {chunks} chunks");
    let report = report.expect("a report");
    assert!(report.time_to_first_byte.is_some());
    assert_eq!(report.chunks, chunks);

    let request = &server.requests()[0];
    assert_eq!(request.path(), "/v1/audio/speech");
    assert_eq!(request.body["model"], "gpt-4o-mini-tts");
    assert_eq!(request.body["voice"], "alloy");
    assert_eq!(request.body["input"], "Paris is the capital of France.");
    assert_eq!(request.body["response_format"], "pcm");

    bus.wait(Duration::from_secs(5)).await.unwrap();
    assert_in_order(
        &recorder.types(),
        &[
            "plugin.tts_synthesis_start",
            "plugin.tts_audio",
            "plugin.tts_synthesis_complete",
        ],
    );
    let audio_events = recorder.of("plugin.tts_audio");
    assert_eq!(audio_events.len() as u64, chunks);
    assert_eq!(audio_events.last().unwrap()["is_final_chunk"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_tts_cut_connections_and_rate_limits_are_errors() {
    let audio = tone(OPENAI_PCM_RATE, 0.2).to_le_bytes();
    let server = FakeServer::start(vec![
        Reply::Stream {
            pieces: vec![(Duration::ZERO, audio[..3_000].to_vec())],
            framing: Framing::Chunked { complete: false },
        },
        Reply::status(429, r#"{"error":{"message":"Rate limit reached"}}"#),
    ])
    .await;
    let bus = EventManager::new();
    let recorder = Recorder::attach(&bus);
    let tts = tts(&server, &bus);
    for expected in ["broke off", "HTTP 429"] {
        let mut stream = tts.synthesize("Hello.").await;
        let mut error = None;
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                error = Some(e);
            }
        }
        let error = error.expect("an error");
        assert!(error.to_string().contains(expected), "{error}");
        assert!(
            matches!(
                error,
                VoiceError::Remote {
                    recoverable: true,
                    ..
                }
            ),
            "{error:?}"
        );
    }
    bus.wait(Duration::from_secs(5)).await.unwrap();
    assert_eq!(recorder.of("plugin.tts_error").len(), 2);
}
