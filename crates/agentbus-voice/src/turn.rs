//! Turn detection: the [`TurnDetector`] trait, [`SilenceTurnDetector`] (end of turn after
//! a configurable silence, shortened when the transcript so far ends a sentence), and
//! [`InstrumentedTurnDetector`], which publishes `plugin.turn_detection.turn_started` /
//! `turn_ended`.

use std::time::Duration;

use agentbus_events::turn::{TurnEndedEvent, TurnStartedEvent};

use crate::clock::millis;
use crate::publish::Emitter;
use crate::vad::VadActivity;

/// A turn boundary.
#[derive(Clone, Debug, PartialEq)]
pub enum TurnSignal {
    /// The user started a turn at `at` (stream time).
    Started {
        /// Where the speech began.
        at: Duration,
        /// How sure the detector is, 0 to 1.
        confidence: f32,
    },
    /// The user's turn ended.
    Ended {
        /// When the end was called (stream time).
        at: Duration,
        /// From the turn's start to its last speech.
        duration: Duration,
        /// The silence that ended it.
        trailing_silence: Duration,
        /// How sure the detector is, 0 to 1.
        confidence: f32,
        /// Whether the transcript rule ended it before the full silence.
        eager: bool,
    },
}

/// Decides where a user's turn starts and ends, from voice activity and (when the STT
/// engine gives them) transcripts.
pub trait TurnDetector: Send {
    /// The detector's name (the events' `plugin_name`).
    fn name(&self) -> &str;
    /// Takes one window's voice activity; returns a boundary when there is one.
    fn on_activity(&mut self, activity: &VadActivity) -> Option<TurnSignal>;
    /// Takes the transcript of the turn so far (partial or final).
    fn on_transcript(&mut self, text: &str);
    /// Whether a turn is in progress.
    fn in_turn(&self) -> bool;
    /// Forgets the current turn.
    fn reset(&mut self);
}

/// End-of-turn rules for [`SilenceTurnDetector`].
#[derive(Clone, Debug, PartialEq)]
pub struct TurnConfig {
    /// Silence that ends a turn.
    pub silence: Duration,
    /// Silence that ends a turn whose transcript so far ends with `.`, `?` or `!`.
    pub sentence_end_silence: Duration,
    /// Speech shorter than this does not make a turn (a cough, a click).
    pub min_turn: Duration,
}

impl Default for TurnConfig {
    /// 600 ms of silence, 250 ms after a sentence end, turns of at least 120 ms.
    fn default() -> Self {
        Self {
            silence: Duration::from_millis(600),
            sentence_end_silence: Duration::from_millis(250),
            min_turn: Duration::from_millis(120),
        }
    }
}

/// Turns from voice activity: a turn starts with speech and ends after
/// [`TurnConfig::silence`] without it — or after the shorter
/// [`TurnConfig::sentence_end_silence`] when the transcript so far ends a sentence.
///
/// ```
/// use std::time::Duration;
/// use agentbus_voice::turn::{SilenceTurnDetector, TurnConfig, TurnDetector, TurnSignal};
/// use agentbus_voice::vad::VadActivity;
///
/// let mut turns = SilenceTurnDetector::new(TurnConfig::default());
/// let window = Duration::from_millis(20);
/// let mut ended = None;
/// for i in 0..100u64 {
///     let speaking = i < 30; // 600 ms of speech, then silence
///     let activity = VadActivity {
///         at: window * i as u32, window, probability: if speaking { 0.9 } else { 0.0 },
///         speaking, started: None, ended: None, peak: 0.0,
///     };
///     if let Some(TurnSignal::Ended { at, .. }) = turns.on_activity(&activity) {
///         ended.get_or_insert(at);
///     }
/// }
/// assert_eq!(ended, Some(Duration::from_millis(1200)));
/// ```
#[derive(Clone, Debug)]
pub struct SilenceTurnDetector {
    config: TurnConfig,
    in_turn: bool,
    start: Duration,
    last_speech: Duration,
    transcript: String,
    probability_sum: f64,
    windows: u64,
}

impl SilenceTurnDetector {
    /// A detector with `config`.
    pub fn new(config: TurnConfig) -> Self {
        Self {
            config,
            in_turn: false,
            start: Duration::ZERO,
            last_speech: Duration::ZERO,
            transcript: String::new(),
            probability_sum: 0.0,
            windows: 0,
        }
    }

    /// Whether `text` ends a sentence (`.`, `?`, `!`, ignoring trailing spaces and
    /// quotes).
    pub fn ends_sentence(text: &str) -> bool {
        text.trim_end_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .ends_with(['.', '?', '!'])
    }
}

impl TurnDetector for SilenceTurnDetector {
    fn name(&self) -> &str {
        "silence-turn"
    }

    fn on_activity(&mut self, activity: &VadActivity) -> Option<TurnSignal> {
        if activity.speaking {
            self.last_speech = activity.end();
            self.probability_sum += f64::from(activity.probability);
            self.windows += 1;
            if !self.in_turn {
                self.in_turn = true;
                self.start = activity.started.unwrap_or(activity.at);
                self.transcript.clear();
                return Some(TurnSignal::Started {
                    at: self.start,
                    confidence: activity.probability,
                });
            }
            return None;
        }
        if !self.in_turn {
            return None;
        }
        let silence = activity.end().saturating_sub(self.last_speech);
        let eager = Self::ends_sentence(&self.transcript);
        let needed = if eager {
            self.config.sentence_end_silence.min(self.config.silence)
        } else {
            self.config.silence
        };
        if silence < needed {
            return None;
        }
        self.in_turn = false;
        let duration = self.last_speech.saturating_sub(self.start);
        let mean = if self.windows == 0 {
            0.0
        } else {
            self.probability_sum / self.windows as f64
        };
        self.probability_sum = 0.0;
        self.windows = 0;
        if duration < self.config.min_turn {
            return None;
        }
        Some(TurnSignal::Ended {
            at: activity.end(),
            duration,
            trailing_silence: silence,
            // Sure of a sentence end; otherwise as sure as the speech was clear.
            confidence: if eager {
                0.9
            } else {
                mean.clamp(0.0, 1.0) as f32
            },
            eager: eager && needed < self.config.silence,
        })
    }

    fn on_transcript(&mut self, text: &str) {
        self.transcript.clear();
        self.transcript.push_str(text);
    }

    fn in_turn(&self) -> bool {
        self.in_turn
    }

    fn reset(&mut self) {
        self.in_turn = false;
        self.transcript.clear();
        self.probability_sum = 0.0;
        self.windows = 0;
    }
}

/// A [`TurnDetector`] that publishes its boundaries.
#[derive(Debug)]
pub struct InstrumentedTurnDetector<T> {
    inner: T,
    emitter: Emitter,
    participant_id: Option<String>,
}

impl<T: TurnDetector> InstrumentedTurnDetector<T> {
    /// Wraps `inner`; events go through `emitter` under the detector's name.
    pub fn new(inner: T, emitter: Emitter) -> Self {
        let emitter = emitter.renamed(inner.name().to_owned());
        Self {
            inner,
            emitter,
            participant_id: None,
        }
    }

    /// The same wrapper naming the speaker in its events.
    pub fn with_participant(mut self, participant_id: impl Into<String>) -> Self {
        self.participant_id = Some(participant_id.into());
        self
    }

    /// The wrapped detector.
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Feeds one window's activity, publishing a boundary if there is one.
    pub async fn on_activity(&mut self, activity: &VadActivity) -> Option<TurnSignal> {
        let signal = self.inner.on_activity(activity)?;
        match &signal {
            TurnSignal::Started { at, confidence } => {
                self.emitter
                    .emit(TurnStartedEvent {
                        meta: self
                            .emitter
                            .meta_with([("stream_time_ms", millis(*at).into())]),
                        plugin: self.emitter.plugin(),
                        participant_id: self.participant_id.clone(),
                        confidence: Some(f64::from(*confidence)),
                        custom: None,
                    })
                    .await;
            }
            TurnSignal::Ended {
                at,
                duration,
                trailing_silence,
                confidence,
                eager,
            } => {
                self.emitter
                    .emit(TurnEndedEvent {
                        meta: self
                            .emitter
                            .meta_with([("stream_time_ms", millis(*at).into())]),
                        plugin: self.emitter.plugin(),
                        participant_id: self.participant_id.clone(),
                        confidence: Some(f64::from(*confidence)),
                        duration_ms: Some(millis(*duration)),
                        trailing_silence_ms: Some(millis(*trailing_silence)),
                        custom: None,
                        eager_end_of_turn: *eager,
                    })
                    .await;
            }
        }
        Some(signal)
    }

    /// Feeds the transcript so far.
    pub fn on_transcript(&mut self, text: &str) {
        self.inner.on_transcript(text);
    }

    /// Whether a turn is in progress.
    pub fn in_turn(&self) -> bool {
        self.inner.in_turn()
    }

    /// Forgets the current turn.
    pub fn reset(&mut self) {
        self.inner.reset();
    }
}

impl TurnDetector for Box<dyn TurnDetector> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn on_activity(&mut self, activity: &VadActivity) -> Option<TurnSignal> {
        (**self).on_activity(activity)
    }
    fn on_transcript(&mut self, text: &str) {
        (**self).on_transcript(text)
    }
    fn in_turn(&self) -> bool {
        (**self).in_turn()
    }
    fn reset(&mut self) {
        (**self).reset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(i: u32, speaking: bool) -> VadActivity {
        let window = Duration::from_millis(20);
        VadActivity {
            at: window * i,
            window,
            probability: if speaking { 0.8 } else { 0.1 },
            speaking,
            started: None,
            ended: None,
            peak: 0.0,
        }
    }

    fn end_of(detector: &mut SilenceTurnDetector, transcript: Option<&str>) -> TurnSignal {
        let mut end = None;
        for i in 0..200 {
            if i == 40
                && let Some(text) = transcript
            {
                detector.on_transcript(text);
            }
            if let Some(signal @ TurnSignal::Ended { .. }) =
                detector.on_activity(&activity(i, i < 30))
            {
                end.get_or_insert(signal);
            }
        }
        end.expect("the turn ended")
    }

    #[test]
    fn silence_threshold_and_sentence_end_rule() {
        let config = TurnConfig {
            silence: Duration::from_millis(800),
            sentence_end_silence: Duration::from_millis(200),
            min_turn: Duration::from_millis(100),
        };
        let mut plain = SilenceTurnDetector::new(config.clone());
        match end_of(&mut plain, Some("what is the capital of")) {
            TurnSignal::Ended {
                at,
                eager,
                duration,
                ..
            } => {
                assert_eq!(at, Duration::from_millis(1400));
                assert_eq!(duration, Duration::from_millis(600));
                assert!(!eager);
            }
            other => panic!("{other:?}"),
        }
        let mut question = SilenceTurnDetector::new(config);
        // The transcript arrives at 800 ms (window 40): 200 ms of silence have passed,
        // the turn ends with the next window.
        match end_of(&mut question, Some("What is the capital of France? ")) {
            TurnSignal::Ended {
                at,
                eager,
                trailing_silence,
                ..
            } => {
                assert_eq!(at, Duration::from_millis(820));
                assert_eq!(trailing_silence, Duration::from_millis(220));
                assert!(eager);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn short_blips_are_not_turns() {
        let mut turns = SilenceTurnDetector::new(TurnConfig::default());
        let mut ended = false;
        for i in 0..100 {
            if let Some(TurnSignal::Ended { .. }) = turns.on_activity(&activity(i, i < 3)) {
                ended = true;
            }
        }
        assert!(!ended);
        assert!(!turns.in_turn());
    }
}
