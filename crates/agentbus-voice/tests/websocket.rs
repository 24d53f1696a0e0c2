//! The WebSocket engines against loopback servers speaking their protocols.
//!
//! - OpenAI Realtime: the server checks the handshake (path, model, bearer key) and every
//!   client frame (`session.update`, base64 24 kHz `input_audio_buffer.append`,
//!   `response.cancel`), and answers with the GA and beta event names, an `error`, a
//!   frame that is not JSON, and finally a cut connection. The wrapper publishes each as
//!   its catalogue event.
//! - Deepgram live STT: binary 16 kHz audio in, interim and final results out as partial
//!   transcripts, `Finalize` at the end of the turn, `KeepAlive` between turns, and a
//!   connection the server closes is opened again for the next turn.
// tungstenite's handshake callback has its own (large) error type.
#![allow(clippy::result_large_err)]

mod common;

use std::time::Duration;

use agentbus::EventManager;
use agentbus_llm::ApiKey;
use agentbus_voice::AudioFrame;
use agentbus_voice::publish::Emitter;
use agentbus_voice::realtime::openai::{OpenAiRealtime, REALTIME_RATE};
use agentbus_voice::realtime::{InstrumentedRealtime, RealtimeUpdate};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{Recorder, assert_in_order};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

const KEY: &str = "sk-realtime-test-0123456789";

/// What the fake server saw.
#[derive(Debug, Default)]
struct Seen {
    path: String,
    authorization: String,
    frames: Vec<Value>,
    appended_samples: usize,
}

fn audio_delta(response_id: &str, samples: usize, beta: bool) -> Value {
    let pcm: Vec<u8> = (0..samples)
        .flat_map(|i| (((i as f32 * 0.05).sin() * 8000.0) as i16).to_le_bytes())
        .collect();
    let kind = if beta {
        "response.audio.delta"
    } else {
        "response.output_audio.delta"
    };
    json!({"type": kind, "response_id": response_id, "item_id": "item_2", "output_index": 0,
           "content_index": 0, "delta": BASE64.encode(pcm)})
}

/// Serves one session; returns what it saw once the client has sent `response.cancel`
/// and the server has cut the connection.
async fn serve(listener: TcpListener) -> Seen {
    let (tcp, _) = listener.accept().await.unwrap();
    let mut seen = Seen::default();
    let (mut path, mut auth) = (String::new(), String::new());
    let mut ws =
        tokio_tungstenite::accept_hdr_async(tcp, |request: &Request, response: Response| {
            path = request.uri().to_string();
            auth = request
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            Ok(response)
        })
        .await
        .unwrap();
    seen.path = path;
    seen.authorization = auth;
    let next =
        |frame: Message| -> Value { serde_json::from_str(frame.to_text().unwrap()).unwrap() };

    // The session's configuration comes first.
    let update = next(ws.next().await.unwrap().unwrap());
    assert_eq!(update["type"], "session.update");
    seen.frames.push(update.clone());
    ws.send(Message::text(
        json!({"type": "session.created", "event_id": "e1",
        "session": {"id": "sess_1", "model": "gpt-realtime"}})
        .to_string(),
    ))
    .await
    .unwrap();
    ws.send(Message::text(
        json!({"type": "session.updated", "session": update["session"]}).to_string(),
    ))
    .await
    .unwrap();

    // Audio until 1 s of 24 kHz samples has arrived.
    while seen.appended_samples < REALTIME_RATE as usize * 9 / 10 {
        let frame = next(ws.next().await.unwrap().unwrap());
        assert_eq!(frame["type"], "input_audio_buffer.append", "{frame}");
        let bytes = BASE64.decode(frame["audio"].as_str().unwrap()).unwrap();
        assert_eq!(bytes.len() % 2, 0);
        seen.appended_samples += bytes.len() / 2;
        seen.frames
            .push(json!({"type": "input_audio_buffer.append"}));
    }
    // The turn as the server sees it, and its answer: GA names, then a beta delta.
    for event in [
        json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 100, "item_id": "item_1"}),
        json!({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900, "item_id": "item_1"}),
        json!({"type": "conversation.item.added", "item": {"id": "item_1", "type": "message",
               "status": "completed", "role": "user", "content": [{"type": "input_audio"}]}}),
        json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": "item_1",
               "content_index": 0, "transcript": "What is the capital of France?"}),
        json!({"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}}),
        json!({"type": "rate_limits.updated", "rate_limits": []}),
        audio_delta("resp_1", 2400, false),
        audio_delta("resp_1", 1200, true),
        json!({"type": "response.output_audio_transcript.delta", "response_id": "resp_1", "delta": "Paris"}),
        json!({"type": "response.output_audio.done", "response_id": "resp_1"}),
        json!({"type": "response.output_audio_transcript.done", "response_id": "resp_1",
               "transcript": "Paris is the capital of France."}),
        json!({"type": "response.output_text.done", "response_id": "resp_1", "text": "Paris."}),
        json!({"type": "response.done", "response": {"id": "resp_1", "status": "completed"}}),
        json!({"type": "response.created", "response": {"id": "resp_2", "status": "in_progress"}}),
        audio_delta("resp_2", 2400, false),
    ] {
        ws.send(Message::text(event.to_string())).await.unwrap();
    }
    // The client interrupts the second response.
    loop {
        let frame = next(ws.next().await.unwrap().unwrap());
        if frame["type"] == "response.cancel" {
            seen.frames.push(frame);
            break;
        }
    }
    for event in [
        json!({"type": "response.done", "response": {"id": "resp_2", "status": "cancelled"}}).to_string(),
        json!({"type": "error", "error": {"type": "invalid_request_error", "code": "unknown_parameter",
               "message": "Unknown parameter: 'session.foo'."}}).to_string(),
        "{not json".to_owned(),
    ] {
        ws.send(Message::text(event)).await.unwrap();
    }
    // Gone without a close frame.
    drop(ws);
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_realtime_session_publishes_the_realtime_events_and_survives_bad_frames() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/realtime", listener.local_addr().unwrap());
    let server = tokio::spawn(serve(listener));

    let bus = EventManager::new();
    let recorder = Recorder::attach(&bus);
    let mut engine = OpenAiRealtime::new(url, "gpt-realtime", Some(ApiKey::new(KEY)));
    engine.instructions = Some("Answer briefly.".into());
    let mut session =
        InstrumentedRealtime::new(Box::new(engine), Emitter::new(bus.clone(), "voice"));
    session.connect().await.unwrap();
    let connected = session.next_update().await.unwrap();
    assert!(
        matches!(connected, RealtimeUpdate::Connected { .. }),
        "{connected:?}"
    );

    // One second of 16 kHz speech-like audio in 20 ms frames: sent as 24 kHz.
    let clip: Vec<i16> = (0..16_000)
        .map(|i| ((i as f32 * 0.03).sin() * 6000.0) as i16)
        .collect();
    for frame in AudioFrame::new(clip, 16_000, 1, Duration::ZERO).split(Duration::from_millis(20)) {
        session.send_audio(&frame).await.unwrap();
    }

    let mut audio_samples = 0;
    let mut user = Vec::new();
    let mut agent = Vec::new();
    let mut errors = Vec::new();
    let mut interrupted = false;
    let mut disconnected = None;
    while let Some(update) = tokio::time::timeout(Duration::from_secs(10), session.next_update())
        .await
        .expect("the session went quiet")
    {
        match update {
            RealtimeUpdate::Audio { audio, response_id } => {
                assert_eq!(audio.sample_rate, REALTIME_RATE);
                audio_samples += audio.samples.len();
                if response_id.as_deref() == Some("resp_2") && !interrupted {
                    interrupted = true;
                    session.interrupt().await.unwrap();
                }
            }
            RealtimeUpdate::UserTranscript { text, .. } => user.push(text),
            RealtimeUpdate::AgentTranscript { text, .. } => agent.push(text),
            RealtimeUpdate::Error(error) => errors.push(error.to_string()),
            RealtimeUpdate::Disconnected { clean, reason } => disconnected = Some((clean, reason)),
            _ => {}
        }
    }
    let seen = server.await.unwrap();
    bus.wait(Duration::from_secs(5)).await.unwrap();

    // The handshake and the frames.
    assert_eq!(seen.path, "/v1/realtime?model=gpt-realtime");
    assert_eq!(seen.authorization, format!("Bearer {KEY}"));
    let session_config = &seen.frames[0]["session"];
    assert_eq!(session_config["instructions"], "Answer briefly.");
    assert_eq!(
        session_config["audio"]["input"]["format"]["rate"],
        REALTIME_RATE
    );
    assert_eq!(
        session_config["audio"]["input"]["turn_detection"]["type"],
        "server_vad"
    );
    assert_eq!(session_config["audio"]["output"]["voice"], "alloy");
    let cancel = seen.frames.last().unwrap();
    assert_eq!(cancel["type"], "response.cancel");
    assert_eq!(cancel["response_id"], "resp_2");
    // 1 s at 16 kHz is about 1 s at 24 kHz (the resampler holds back less than a block).
    assert!(seen.appended_samples >= 21_600, "{}", seen.appended_samples);

    // What the client made of the replies.
    assert_eq!(audio_samples, 2400 + 1200 + 2400);
    assert_eq!(user, ["What is the capital of France?"]);
    assert_eq!(agent, ["Paris is the capital of France."]);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("unknown_parameter"), "{errors:?}");
    assert!(errors[1].contains("not JSON"), "{errors:?}");
    assert!(errors.iter().all(|e| !e.contains(KEY)));
    let (clean, _reason) = disconnected.expect("the cut connection is reported");
    assert!(!clean, "no close frame: not a clean close");

    // And the events, in order.
    let types = recorder.types();
    assert_in_order(
        &types,
        &[
            "plugin.realtime_connected",
            "plugin.realtime_audio_input",
            "plugin.realtime_conversation_item",
            "plugin.realtime_user_speech_transcription",
            "plugin.realtime_audio_output",
            "plugin.realtime_audio_output_done",
            "plugin.realtime_agent_speech_transcription",
            "plugin.realtime_response",
            "plugin.realtime_audio_output",
            "plugin.realtime_audio_output_done",
            "plugin.realtime_error",
            "plugin.realtime_error",
            "plugin.realtime_disconnected",
        ],
    );
    let done = recorder.of("plugin.realtime_audio_output_done");
    assert_eq!(done.last().unwrap()["interrupted"], true);
    let outputs = recorder.of("plugin.realtime_audio_output");
    assert_eq!(outputs.len(), 3);
    assert_eq!(outputs[0]["response_id"], "resp_1");
    for event in recorder.events() {
        assert!(
            !event.to_string().contains(KEY),
            "the key leaked into {event}"
        );
    }
}

#[tokio::test]
async fn a_refused_handshake_and_a_wrong_url_are_clear_errors() {
    // A server that answers the upgrade with 401.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut buffer = [0u8; 4096];
        let _ = tcp.read(&mut buffer).await;
        let body = format!(r#"{{"error":{{"message":"Incorrect API key provided: {KEY}"}}}}"#);
        let reply = format!(
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(reply.as_bytes()).await.unwrap();
    });
    let mut engine = OpenAiRealtime::new(
        format!("ws://{address}/v1/realtime"),
        "gpt-realtime",
        Some(ApiKey::new(KEY)),
    );
    let error = agentbus_voice::realtime::Realtime::connect(&mut engine)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("401"), "{text}");
    assert!(!text.contains(KEY), "{text}");
    assert!(
        !error.is_recoverable(),
        "a refused key does not get better by retrying"
    );

    let mut engine =
        OpenAiRealtime::new("https://api.openai.com/v1/realtime", "gpt-realtime", None);
    let error = agentbus_voice::realtime::Realtime::connect(&mut engine)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("not a ws:// or wss:// URL"),
        "{error}"
    );

    // Nothing listening: a connection error within the connect timeout.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let mut engine =
        OpenAiRealtime::new(format!("ws://{address}/v1/realtime"), "gpt-realtime", None);
    let error = agentbus_voice::realtime::Realtime::connect(&mut engine)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("connecting to"), "{error}");
}

/// A fake Deepgram: per connection, checks the query and the `Token` key, reads audio
/// until `Finalize`, answering with an interim result after the first audio and a final
/// segment after 0.5 s of it, then a frame that is not JSON (skipped) and the rest
/// `from_finalize`. The first connection then
/// waits for a KeepAlive and closes with NET-0001, as Deepgram does after 10 s of nothing.
async fn fake_deepgram(listener: TcpListener, seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    for connection in 0..2 {
        let (tcp, _) = listener.accept().await.unwrap();
        let log = seen.clone();
        let mut ws = tokio_tungstenite::accept_hdr_async(
            tcp,
            move |request: &Request, response: Response| {
                let mut log = log.lock().unwrap();
                log.push(format!("connect {}", request.uri()));
                log.push(format!(
                    "auth {}",
                    request
                        .headers()
                        .get("authorization")
                        .map(|v| v.to_str().unwrap())
                        .unwrap_or("")
                ));
                Ok(response)
            },
        )
        .await
        .unwrap();
        let result = |text: &str, is_final: bool, from_finalize: bool| {
            Message::text(
                json!({"type": "Results", "is_final": is_final, "speech_final": is_final,
                       "from_finalize": from_finalize, "start": 0.0, "duration": 1.0,
                       "channel": {"alternatives": [{"transcript": text, "confidence": 0.9}]}})
                .to_string(),
            )
        };
        let mut bytes = 0usize;
        let mut interim_sent = false;
        let mut final_sent = false;
        while let Some(Ok(message)) = ws.next().await {
            match message {
                Message::Binary(audio) => {
                    assert_eq!(audio.len() % 2, 0);
                    bytes += audio.len();
                    if !interim_sent {
                        interim_sent = true;
                        ws.send(Message::text(r#"{"type":"SpeechStarted","timestamp":0.0}"#))
                            .await
                            .unwrap();
                        ws.send(result("what is", false, false)).await.unwrap();
                    }
                    if bytes >= 16_000 && !final_sent {
                        final_sent = true;
                        ws.send(result("What is the capital", true, false))
                            .await
                            .unwrap();
                    }
                }
                Message::Text(text) if text.as_str().contains("Finalize") => {
                    seen.lock()
                        .unwrap()
                        .push(format!("finalize after {bytes} bytes"));
                    ws.send(Message::text("{not json")).await.unwrap();
                    ws.send(result("of France?", true, true)).await.unwrap();
                    break;
                }
                Message::Text(text) => seen.lock().unwrap().push(format!("text {text}")),
                _ => {}
            }
        }
        if connection == 0 {
            while let Some(Ok(message)) = ws.next().await {
                if message.to_text().unwrap_or_default().contains("KeepAlive") {
                    seen.lock().unwrap().push("keepalive".into());
                    break;
                }
            }
            ws.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: 1011.into(),
                reason: "NET-0001".into(),
            }))
            .await
            .unwrap();
        } else {
            // The client's CloseStream when it is dropped.
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message {
                    seen.lock().unwrap().push(format!("text {text}"));
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deepgram_streams_partials_and_reconnects_for_the_next_turn() {
    use agentbus_voice::clock::SystemClock;
    use agentbus_voice::stt::{DeepgramStt, InstrumentedStt};
    const DG_KEY: &str = "dg-test-key-0123456789";

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/listen", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let server = tokio::spawn(fake_deepgram(listener, seen.clone()));

    let bus = EventManager::new();
    let recorder = Recorder::attach(&bus);
    let mut engine = DeepgramStt::new(url, "nova-3", Some(ApiKey::new(DG_KEY)));
    engine.keepalive = Duration::from_millis(100);
    let mut stt = InstrumentedStt::new(
        Box::new(engine),
        Emitter::new(bus.clone(), "voice"),
        std::sync::Arc::new(SystemClock::new()),
    );
    // 22.05 kHz input: sent as 16 kHz.
    let turn = |seconds: f32| {
        let samples = (0..(22_050.0 * seconds) as usize)
            .map(|i| ((i as f32 * 0.04).sin() * 7000.0) as i16)
            .collect();
        AudioFrame::new(samples, 22_050, 1, Duration::ZERO).split(Duration::from_millis(20))
    };
    let mut partials = Vec::new();
    for frame in turn(1.0) {
        partials.extend(stt.push(&frame).await.unwrap());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (first, _) = stt.finish().await.unwrap();
    assert_eq!(first.text, "What is the capital of France?");
    assert!(
        partials.iter().any(|p| p.text == "what is"),
        "interim results are partial transcripts: {partials:?}"
    );
    // Between turns the client keeps the connection alive; the server closes it anyway.
    tokio::time::sleep(Duration::from_millis(600)).await;
    // The next turn finds the connection closed, reports it, and the one after reconnects.
    let mut second_turn = turn(1.0).into_iter();
    let mut failed = None;
    for frame in second_turn.by_ref() {
        match stt.push(&frame).await {
            Ok(_) => {}
            Err(error) => {
                failed = Some(error.to_string());
                break;
            }
        }
    }
    let failed = failed.expect("the closed connection is an error of the turn");
    assert!(failed.contains("NET-0001"), "{failed}");
    stt.discard();
    for frame in second_turn {
        stt.push(&frame).await.unwrap();
    }
    let (second, _) = stt.finish().await.unwrap();
    assert!(second.text.ends_with("of France?"), "{second:?}");
    stt.close().await;
    drop(stt);
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    bus.wait(Duration::from_secs(5)).await.unwrap();

    let seen = seen.lock().unwrap().clone();
    assert!(seen[0].starts_with("connect /v1/listen?model=nova-3&encoding=linear16&sample_rate=16000&channels=1&interim_results=true"), "{seen:?}");
    assert_eq!(seen[1], format!("auth Token {DG_KEY}"));
    assert!(seen.contains(&"keepalive".to_owned()), "{seen:?}");
    assert_eq!(
        seen.iter().filter(|s| s.starts_with("connect")).count(),
        2,
        "{seen:?}"
    );
    let finalized: Vec<_> = seen.iter().filter(|s| s.starts_with("finalize")).collect();
    // About 1 s of 16 kHz audio in the first turn (the resampler holds back less than a
    // block of it).
    let bytes: usize = finalized[0]
        .trim_start_matches("finalize after ")
        .trim_end_matches(" bytes")
        .parse()
        .unwrap();
    assert!((24_000..=32_100).contains(&bytes), "{finalized:?}");

    let types = recorder.types();
    assert_in_order(
        &types,
        &[
            "plugin.stt_connection",
            "plugin.stt_connected",
            "plugin.stt_partial_transcript",
            "plugin.stt_transcript",
            "plugin.stt_error",
            "plugin.stt_transcript",
        ],
    );
    let errors = recorder.of("plugin.stt_error");
    assert_eq!(errors.len(), 1, "only the closed connection: {errors:?}");
    assert!(errors[0].to_string().contains("NET-0001"), "{errors:?}");
    for event in recorder.events() {
        assert!(
            !event.to_string().contains(DG_KEY),
            "the key leaked into {event}"
        );
    }
}
