//! The whole offline pipeline on espeak-ng speech: VAD → turn → Whisper → agent → espeak
//! → WAV, events in order; and barge-in, driven frame by frame on a manual clock.
//!
//! The agent's model is the project's scripted model (`agentbus_agent::testing`): the
//! answer must be known to assert on it, and its pace set to make the reply stream while
//! it is spoken. Every other stage is the real offline engine.

mod common;

use std::sync::Arc;
use std::time::Duration;

use agentbus::EventManager;
use agentbus_agent::Agent;
use agentbus_agent::testing::{ScriptedTurns, Turn, finish, text};
use agentbus_llm::InstrumentedModel;
use agentbus_voice::clock::ManualClock;
use agentbus_voice::pipeline::{PipelineConfig, ReplyProgress, Stages, VoicePipeline};
use agentbus_voice::publish::Emitter;
use agentbus_voice::stt::WhisperStt;
use agentbus_voice::transport::WavFileTransport;
use agentbus_voice::tts::EspeakTts;
use agentbus_voice::turn::{SilenceTurnDetector, TurnConfig};
use agentbus_voice::vad::EnergyVad;
use agentbus_voice::{AudioFrame, models};
use common::{Recorder, assert_in_order, concat, model_dir, silence, speak, speak_to};
use serde_json::Value;

fn answer(chunks: &[&str], delay: Duration) -> Turn {
    let mut events = text(chunks);
    events.push(finish("stop", 12, 20));
    Turn::new(events).with_delay(delay)
}

fn stages(model: Arc<ScriptedTurns>, bus: &EventManager) -> Stages {
    let agent = Agent::builder(InstrumentedModel::new(model, bus.clone()))
        .bus(bus)
        .session_id("voice-test")
        .build();
    Stages {
        vad: Box::new(EnergyVad::default()),
        turn: Box::new(SilenceTurnDetector::new(TurnConfig::default())),
        stt: Box::new(WhisperStt::load(&models::whisper_files(model_dir()).unwrap()).unwrap()),
        tts: Arc::new(EspeakTts::default()),
        agent,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_spoken_exchange_from_wav_to_wav() {
    let dir = tempfile::tempdir().unwrap();
    let question = dir.path().join("q.wav");
    speak_to("Hello. What is the capital of France?", &question);
    let reply_path = dir.path().join("reply.wav");

    let bus = EventManager::new();
    let recorder = Recorder::attach(&bus);
    let model = Arc::new(ScriptedTurns::new(
        "scripted",
        vec![answer(
            &[
                "The capital ",
                "of France ",
                "is Paris. ",
                "It lies on ",
                "the Seine.",
            ],
            Duration::from_millis(40),
        )],
    ));
    let transport = WavFileTransport::open(&question, Some(&reply_path)).unwrap();
    let emitter = Emitter::new(bus.clone(), "voice").with_session(Some("voice-test".into()));
    let pipeline = VoicePipeline::new(
        stages(model.clone(), &bus),
        Box::new(transport),
        emitter,
        PipelineConfig::default(),
    );
    let report = pipeline.run().await.unwrap();
    bus.wait(Duration::from_secs(10)).await.unwrap();

    // The transcript reached the model.
    let request = &model.requests()[0];
    let asked = serde_json::to_string(&request.messages)
        .unwrap()
        .to_lowercase();
    assert!(asked.contains("capital of france"), "{asked}");
    assert_eq!(report.exchanges.len(), 1, "{report:?}");
    let exchange = &report.exchanges[0];
    assert_eq!(
        exchange.reply,
        vec!["The capital of France is Paris.", "It lies on the Seine."]
    );
    assert!(!exchange.interrupted);
    let v2v = exchange.voice_to_voice.unwrap();
    assert!(v2v >= exchange.trailing_silence, "{v2v:?}");

    // The reply was spoken into the output file.
    let reply = agentbus_voice::wav::read_wav(&reply_path).unwrap();
    assert!(
        reply.duration() > Duration::from_secs(2),
        "{:?}",
        reply.duration()
    );
    // Every reply chunk was played: the file and the report agree (to rounding of the
    // chunks' durations, summed one by one).
    let played = reply.duration().abs_diff(exchange.reply_audio);
    assert!(played < Duration::from_millis(1), "{played:?}");

    let types = recorder.types();
    assert_in_order(
        &types,
        &[
            "plugin.edge.participant_joined",
            "plugin.edge.track_added",
            "plugin.edge.audio_received",
            "plugin.vad_speech_start",
            "plugin.turn_detection.turn_started",
            "agent.user_turn_started",
            "plugin.vad_speech_end",
            "plugin.turn_detection.turn_ended",
            "agent.user_turn_ended",
            "plugin.stt_transcript",
            "agent.user_transcript",
            "plugin.llm_request_started",
            "plugin.llm_response_chunk",
            "plugin.tts_synthesis_start",
            "plugin.tts_audio",
            "plugin.tts_synthesis_complete",
            "plugin.tts_synthesis_start",
            "plugin.tts_synthesis_complete",
            "plugin.edge.participant_left",
            "plugin.edge.call_ended",
        ],
    );
    // Sentence by sentence while the model streams: the first sentence is being spoken
    // before the model has finished.
    let first_tts = types.iter().position(|t| t == "plugin.tts_audio").unwrap();
    let llm_done = types
        .iter()
        .position(|t| t == "plugin.llm_response_completed")
        .unwrap();
    assert!(first_tts < llm_done, "{types:#?}");
    let transcript = &recorder.of("agent.user_transcript")[0];
    assert!(
        transcript["text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("france")
    );
    assert_eq!(transcript["session_id"], "voice-test");
    let first_chunk = &recorder.of("plugin.tts_audio")[0];
    assert!(
        first_chunk["user_metadata"]["voice_to_voice_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

/// The epoch an event carries: its own `epoch` field, its origin's, or the one the voice
/// stages put in `user_metadata`.
fn epoch_of(event: &Value) -> Option<u64> {
    event["epoch"]
        .as_u64()
        .or_else(|| event["origin"]["epoch"].as_u64())
        .or_else(|| event["user_metadata"]["epoch"].as_u64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_stops_the_reply_within_a_chunk_and_nothing_old_follows() {
    let bus = EventManager::new();
    let recorder = Recorder::attach(&bus);
    let long = [
        "Paris is the capital of France. ",
        "It has been the capital for a very long time. ",
        "Many people visit it every year. ",
        "The river Seine runs through the middle of the city.",
    ];
    let model = Arc::new(ScriptedTurns::new(
        "scripted",
        vec![
            answer(&long, Duration::from_millis(5)),
            answer(&["Berlin is in Germany."], Duration::ZERO),
        ],
    ));
    let clock = ManualClock::new();
    let output = silence(Duration::from_millis(20), 16_000);
    let emitter = Emitter::new(bus.clone(), "voice").with_session(Some("voice-test".into()));
    let config = PipelineConfig {
        reply_queue: 1,
        ..PipelineConfig::default()
    };
    let mut pipeline = VoicePipeline::with_clock(
        stages(model.clone(), &bus),
        Box::new(WavFileTransport::from_audio(&output, None).unwrap()),
        emitter,
        config,
        Arc::new(clock.clone()),
    );
    let frames = |clip: AudioFrame, from: Duration| {
        let mut clip = agentbus_voice::resample::resample(&clip, 16_000).unwrap();
        clip.timestamp = from;
        clip.split(Duration::from_millis(20))
    };
    let first = concat(&[
        speak("What is the capital of France?"),
        silence(Duration::from_millis(800), 22_050),
    ]);
    let mut at = Duration::ZERO;
    for frame in frames(first, at) {
        at = frame.end();
        clock.set(at);
        pipeline.on_frame(frame).await.unwrap();
    }
    assert!(
        pipeline.agent_busy(),
        "the first turn should have started a reply"
    );
    assert_eq!(pipeline.epoch(), 0);

    // Let the reply play three chunks.
    let mut played = 0;
    while played < 3 {
        match pipeline.next_reply().await.unwrap() {
            Some(ReplyProgress::Played(_)) => played += 1,
            other => panic!("the reply ended early: {other:?}"),
        }
    }

    // The user speaks over the reply, which keeps playing (one message per frame) until
    // the VAD hears them.
    let second = concat(&[
        speak("Tell me about Berlin."),
        silence(Duration::from_millis(800), 22_050),
    ]);
    let mut barge_frame = None;
    for (i, frame) in frames(second, at).into_iter().enumerate() {
        at = frame.end();
        clock.set(at);
        pipeline.on_frame(frame).await.unwrap();
        if barge_frame.is_none() && pipeline.epoch() == 1 {
            barge_frame = Some(i);
        }
        if barge_frame.is_none() {
            pipeline.next_reply().await.unwrap();
        }
    }
    let barge_frame = barge_frame.expect("the VAD heard the second utterance");
    assert!(barge_frame < 10, "barge-in came late: frame {barge_frame}");

    // The second reply runs to its end.
    while let Some(progress) = pipeline.next_reply().await.unwrap() {
        if progress == ReplyProgress::Finished {
            break;
        }
    }
    bus.wait(Duration::from_secs(10)).await.unwrap();

    let report = pipeline.report().clone();
    assert_eq!(report.interruptions, 1);
    assert_eq!(report.exchanges.len(), 2, "{report:#?}");
    assert!(report.exchanges[0].interrupted);
    assert!(!report.exchanges[1].interrupted);
    assert_eq!(report.exchanges[1].epoch, 1);
    assert!(
        report.exchanges[1]
            .transcript
            .to_lowercase()
            .contains("berlin"),
        "{report:#?}"
    );
    assert_eq!(report.exchanges[1].reply, vec!["Berlin is in Germany."]);
    // The interrupted reply was not spoken to its end.
    let full: usize = long.len();
    assert!(report.exchanges[0].reply.len() < full || report.exchanges[0].reply.is_empty());

    let events = recorder.events();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    // The barge-in's speech start: the VAD start that comes after the first reply's
    // audio began.
    let first_audio = types.iter().position(|t| *t == "plugin.tts_audio").unwrap();
    let speech_start = first_audio
        + types[first_audio..]
            .iter()
            .position(|t| *t == "plugin.vad_speech_start")
            .unwrap();
    // The reply is stopped before the speech start that interrupts it is published: no
    // chunk of the old reply follows it, and the start itself belongs to the new epoch.
    let late_old_chunks = events[speech_start..]
        .iter()
        .filter(|e| e["type"] == "plugin.tts_audio" && e["epoch"] == 0)
        .count();
    assert_eq!(late_old_chunks, 0, "old chunks after the speech start");
    assert_eq!(epoch_of(&events[speech_start]), Some(1));
    // Once the new turn has started, nothing from epoch 0 at all.
    let new_turn = speech_start
        + types[speech_start..]
            .iter()
            .position(|t| *t == "agent.user_turn_started")
            .unwrap();
    assert_eq!(epoch_of(&events[new_turn]), Some(1));
    let stale: Vec<&Value> = events[new_turn..]
        .iter()
        .filter(|e| epoch_of(e) == Some(0))
        .collect();
    assert!(
        stale.is_empty(),
        "old-epoch events after the new turn: {stale:#?}"
    );
    // And the second reply's audio all carries epoch 1.
    let new_chunks: Vec<&Value> = events[new_turn..]
        .iter()
        .filter(|e| e["type"] == "plugin.tts_audio")
        .collect();
    assert!(!new_chunks.is_empty());
    assert!(new_chunks.iter().all(|e| e["epoch"] == 1));
}
