//! Every stage with its real offline engine on speech espeak-ng makes at test time,
//! asserting the events in order.

mod common;

use std::sync::Arc;
use std::time::Duration;

use agentbus::EventManager;
use agentbus_voice::clock::SystemClock;
use agentbus_voice::publish::Emitter;
use agentbus_voice::stt::{InstrumentedStt, WhisperStt};
use agentbus_voice::tts::{EspeakTts, InstrumentedTts, SynthesisItem};
use agentbus_voice::turn::{InstrumentedTurnDetector, SilenceTurnDetector, TurnConfig, TurnSignal};
use agentbus_voice::vad::{EnergyVad, InstrumentedVad, SileroVad, Vad, VadActivity, VadConfig};
use agentbus_voice::{AudioFrame, models};
use common::{Recorder, assert_in_order, concat, model_dir, silence, speak};
use futures::StreamExt;

fn utterance() -> AudioFrame {
    concat(&[
        silence(Duration::from_millis(500), 22_050),
        speak("Hello. What is the capital of France?"),
        silence(Duration::from_millis(900), 22_050),
    ])
}

async fn run_vad<V: Vad>(vad: &mut InstrumentedVad<V>, clip: &AudioFrame) -> Vec<VadActivity> {
    let mut all = Vec::new();
    for frame in clip.split(Duration::from_millis(20)) {
        all.extend(vad.process(&frame).await.unwrap());
    }
    all
}

fn speech_spans(activities: &[VadActivity]) -> Vec<(Duration, Duration)> {
    let mut spans = Vec::new();
    let mut start = None;
    for a in activities {
        if let Some(s) = a.started {
            start = Some(s);
        }
        if let Some(d) = a.ended {
            spans.push((start.take().unwrap(), d));
        }
    }
    spans
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn energy_vad_and_turns_on_espeak_speech() {
    let bus = EventManager::new();
    let recorder = Recorder::attach(&bus);
    let emitter = Emitter::new(bus.clone(), "test");
    let mut vad = InstrumentedVad::new(EnergyVad::default(), VadConfig::default(), emitter.clone());
    let mut turns = InstrumentedTurnDetector::new(
        SilenceTurnDetector::new(TurnConfig::default()),
        emitter.clone(),
    );
    let clip = utterance();
    let mut signals = Vec::new();
    for frame in clip.split(Duration::from_millis(20)) {
        for activity in vad.process(&frame).await.unwrap() {
            if let Some(signal) = turns.on_activity(&activity).await {
                signals.push(signal);
            }
        }
    }
    bus.wait(Duration::from_secs(5)).await.unwrap();
    // Speech starts after the leading 500 ms of silence.
    let starts = recorder.of("plugin.vad_speech_start");
    assert!(!starts.is_empty());
    assert!(
        starts[0]["user_metadata"]["speech_probability"]
            .as_f64()
            .unwrap()
            >= 0.5
    );
    let first_start = starts[0]["user_metadata"]["stream_time_ms"]
        .as_f64()
        .unwrap();
    assert!((450.0..700.0).contains(&first_start), "{first_start}");
    let ends = recorder.of("plugin.vad_speech_end");
    assert_eq!(ends.len(), starts.len());
    assert!(
        ends.iter()
            .all(|e| e["duration_ms"].as_f64().unwrap() > 0.0)
    );
    // One turn: "Hello." and the question are one turn (their pause is shorter than
    // the 600 ms end-of-turn silence).
    assert!(matches!(signals.first(), Some(TurnSignal::Started { .. })));
    let ended: Vec<_> = signals
        .iter()
        .filter(|s| matches!(s, TurnSignal::Ended { .. }))
        .collect();
    assert_eq!(ended.len(), 1, "{signals:?}");
    assert_in_order(
        &recorder.types(),
        &[
            "plugin.vad_speech_start",
            "plugin.turn_detection.turn_started",
            "plugin.vad_speech_end",
            "plugin.turn_detection.turn_ended",
        ],
    );
    let turn_end = &recorder.of("plugin.turn_detection.turn_ended")[0];
    assert!(
        turn_end["duration_ms"].as_f64().unwrap() > 1500.0,
        "{turn_end}"
    );
    assert!(turn_end["trailing_silence_ms"].as_f64().unwrap() >= 600.0);
    assert_eq!(turn_end["user_metadata"]["epoch"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silero_vad_finds_the_same_speech_as_the_energy_vad() {
    let path = models::silero_path(model_dir()).unwrap();
    let emitter = Emitter::detached("test");
    let mut silero = InstrumentedVad::new(
        SileroVad::load(&path).unwrap(),
        VadConfig::default(),
        emitter.clone(),
    );
    let clip = utterance();
    let activities = run_vad(&mut silero, &clip).await;
    // 32 ms windows at 16 kHz.
    assert_eq!(activities[1].at, Duration::from_millis(32));
    let spans = speech_spans(&activities);
    assert!(!spans.is_empty(), "Silero heard no speech");
    let (start, _) = spans[0];
    assert!(
        (Duration::from_millis(350)..Duration::from_millis(800)).contains(&start),
        "{start:?}"
    );
    let speech: Duration = spans.iter().map(|(_, d)| *d).sum();
    assert!(speech > Duration::from_millis(1500), "{spans:?}");
    // Silence gives low probabilities; speech high ones.
    let quiet = activities[..10]
        .iter()
        .map(|a| a.probability)
        .fold(0f32, f32::max);
    let loud = activities
        .iter()
        .map(|a| a.probability)
        .fold(0f32, f32::max);
    assert!(quiet < 0.2 && loud > 0.8, "quiet {quiet}, loud {loud}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn espeak_tts_streams_chunks_with_events() {
    let bus = EventManager::new();
    let recorder = Recorder::attach(&bus);
    let emitter = Emitter::new(bus.clone(), "test").with_session(Some("s1".into()));
    emitter.epoch().bump();
    let tts = InstrumentedTts::new(
        Arc::new(EspeakTts::default()),
        emitter,
        Arc::new(SystemClock::new()),
    );
    let mut stream = tts.synthesize("The capital of France is Paris.").await;
    let mut audio = Vec::new();
    let mut report = None;
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            SynthesisItem::Audio(frame) => audio.push(frame),
            SynthesisItem::Done(r) => report = Some(r),
        }
    }
    bus.wait(Duration::from_secs(5)).await.unwrap();
    let report = report.unwrap();
    assert!(audio.len() > 3);
    assert_eq!(audio[0].sample_rate, 22_050);
    assert!(report.audio > Duration::from_millis(1500), "{report:?}");
    assert!(report.time_to_first_byte.unwrap() < report.synthesis_time + Duration::from_millis(1));
    assert!(report.real_time_factor.unwrap() < 1.0);
    let types = recorder.types();
    assert_eq!(types[0], "plugin.tts_synthesis_start");
    assert_eq!(types.last().unwrap(), "plugin.tts_synthesis_complete");
    let chunks = recorder.of("plugin.tts_audio");
    assert_eq!(chunks.len(), audio.len());
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk["chunk_index"], i as u64);
        assert_eq!(chunk["epoch"], 1);
        assert_eq!(chunk["session_id"], "s1");
        assert_eq!(chunk["plugin_name"], "espeak-ng");
        assert_eq!(chunk["is_final_chunk"], i + 1 == chunks.len());
    }
    let complete = &recorder.of("plugin.tts_synthesis_complete")[0];
    assert_eq!(complete["chunk_count"], audio.len() as u64);
    assert!(complete["real_time_factor"].as_f64().unwrap() > 0.0);
    assert!(
        complete["user_metadata"]["time_to_first_byte_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let id = &recorder.of("plugin.tts_synthesis_start")[0]["synthesis_id"];
    assert_eq!(&complete["synthesis_id"], id);
}

#[tokio::test]
async fn a_missing_tts_program_is_an_error_event() {
    let bus = EventManager::new();
    let recorder = Recorder::attach(&bus);
    let engine = EspeakTts {
        program: "espeak-ng-not-installed".into(),
        ..EspeakTts::default()
    };
    let tts = InstrumentedTts::new(
        Arc::new(engine),
        Emitter::new(bus.clone(), "test"),
        Arc::new(SystemClock::new()),
    );
    let items: Vec<_> = tts.synthesize("hi").await.collect().await;
    assert!(items.iter().any(|i| i.is_err()));
    let error = items.into_iter().find_map(|i| i.err()).unwrap().to_string();
    assert!(error.contains("apt-get install espeak-ng"), "{error}");
    bus.wait(Duration::from_secs(5)).await.unwrap();
    let errors = recorder.of("plugin.tts_error");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["is_recoverable"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whisper_transcribes_espeak_speech() {
    let files = models::whisper_files(model_dir()).unwrap();
    let bus = EventManager::new();
    let recorder = Recorder::attach(&bus);
    let mut stt = InstrumentedStt::new(
        Box::new(WhisperStt::load(&files).unwrap()),
        Emitter::new(bus.clone(), "test"),
        Arc::new(SystemClock::new()),
    );
    let clip = speak("Hello. What is the capital of France?");
    for frame in clip.split(Duration::from_millis(20)) {
        stt.push(&frame).await.unwrap();
    }
    let (transcript, _) = stt.finish().await.unwrap();
    let words = transcript.text.to_lowercase();
    assert!(
        words.contains("capital") && words.contains("france"),
        "{words}"
    );
    let wer = common::wer("Hello. What is the capital of France?", &transcript.text);
    assert!(wer <= 0.2, "WER {wer}: {}", transcript.text);
    bus.wait(Duration::from_secs(5)).await.unwrap();
    let finals = recorder.of("plugin.stt_transcript");
    assert_eq!(finals.len(), 1);
    assert_eq!(finals[0]["text"], transcript.text);
    assert_eq!(finals[0]["language"], "en");
    assert_eq!(finals[0]["model_name"], "whisper-tiny.en");
    assert!(finals[0]["processing_time_ms"].as_f64().unwrap() > 0.0);
    let audio_ms = finals[0]["audio_duration_ms"].as_f64().unwrap();
    assert!((audio_ms - clip.duration().as_secs_f64() * 1000.0).abs() < 1.0);
    let confidence = finals[0]["confidence"].as_f64().unwrap();
    assert!(confidence > 0.3 && confidence <= 1.0, "{confidence}");
}

#[test]
fn a_missing_model_says_which_pull_to_run() {
    let dir = agentbus_local::ModelDir::new(tempfile::tempdir().unwrap().path().join("none"));
    let error = models::whisper_files(&dir).unwrap_err().to_string();
    assert!(
        error.contains("agentbus model pull whisper-tiny.en"),
        "{error}"
    );
    let error = models::silero_path(&dir).unwrap_err().to_string();
    assert!(error.contains("agentbus model pull silero-vad"), "{error}");
}
