//! Shared helpers: speech made by espeak-ng at test time, a bus that records every event,
//! the voice models pulled once into `$AGENTBUS_HOME/models`.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use agentbus::EventManager;
use agentbus_events::DynEvent;
use agentbus_local::ModelDir;
use agentbus_voice::AudioFrame;
use serde_json::Value;

/// `text` spoken by espeak-ng (22,050 Hz mono), written to a WAV file and read back.
pub fn speak(text: &str) -> AudioFrame {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("speech.wav");
    speak_to(text, &path);
    agentbus_voice::wav::read_wav(&path).unwrap()
}

/// `text` spoken by espeak-ng into the WAV file `path`.
pub fn speak_to(text: &str, path: &Path) {
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(path)
        .arg(text)
        .status()
        .expect("espeak-ng is installed (apt-get install espeak-ng)");
    assert!(status.success());
}

/// `duration` of silence at `rate`.
pub fn silence(duration: Duration, rate: u32) -> AudioFrame {
    AudioFrame::new(
        vec![0; (duration.as_secs_f64() * f64::from(rate)) as usize],
        rate,
        1,
        Duration::ZERO,
    )
}

/// Clips one after the other (all at the first clip's rate, mono).
pub fn concat(parts: &[AudioFrame]) -> AudioFrame {
    let rate = parts[0].sample_rate;
    let mut samples = Vec::new();
    for part in parts {
        let part = agentbus_voice::resample::resample(part, rate).unwrap();
        samples.extend_from_slice(&part.samples);
    }
    AudioFrame::new(samples, rate, 1, Duration::ZERO)
}

/// Every event the bus delivers, as wire JSON, in delivery order.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<Value>>>);

impl Recorder {
    pub fn attach(bus: &EventManager) -> Self {
        let recorder = Recorder::default();
        let events = recorder.0.clone();
        bus.subscribe("recorder", move |event: Arc<dyn DynEvent>| {
            let events = events.clone();
            async move {
                let text = event.to_wire_string().unwrap();
                events
                    .lock()
                    .unwrap()
                    .push(serde_json::from_str(&text).unwrap());
            }
        })
        .unwrap();
        recorder
    }

    pub fn events(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }

    pub fn types(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn of(&self, event_type: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["type"] == event_type)
            .collect()
    }
}

/// The first position of each type in `types`, asserting they appear in this order.
pub fn assert_in_order(types: &[String], expected: &[&str]) {
    let mut from = 0;
    for want in expected {
        let at = types[from..]
            .iter()
            .position(|t| t == want)
            .unwrap_or_else(|| panic!("no {want} after position {from} in {types:#?}"));
        from += at + 1;
    }
}

/// The model directory with the voice models pulled (once per process).
pub fn model_dir() -> &'static ModelDir {
    static DIR: OnceLock<ModelDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = ModelDir::from_env().expect("a model directory");
        for model in agentbus_voice::models::VOICE_MODELS {
            model
                .pull(&dir, false, &mut |_, _| {})
                .unwrap_or_else(|error| panic!("pulling {}: {error}", model.name));
        }
        dir
    })
}

/// Word error rate of `hypothesis` against `reference` (case and punctuation ignored).
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    agentbus_voice::stt::word_error_rate(reference, hypothesis)
}
