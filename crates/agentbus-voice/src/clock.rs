//! [`Clock`]: where the voice stages read the time, so tests can drive it by hand.
//!
//! Latencies (STT processing time, TTS time to first byte, voice-to-voice) and barge-in
//! timing are measured on a `Clock`. [`SystemClock`] is real monotonic time;
//! [`ManualClock`] only moves when told, which makes interruption tests deterministic.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic clock: the time elapsed since some fixed origin.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The time since the clock's origin.
    fn now(&self) -> Duration;
}

/// Real time, from when the clock was made.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock starting now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when [`advance`](Self::advance)d or [`set`](Self::set).
/// Clones share the time.
///
/// ```
/// use std::time::Duration;
/// use agentbus_voice::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_millis(20));
/// assert_eq!(clock.now(), Duration::from_millis(20));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }

    /// Sets the clock to `at` (never backwards: an earlier time is ignored).
    pub fn set(&self, at: Duration) {
        self.nanos.fetch_max(at.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

/// Milliseconds of a duration, as the catalogue's `*_ms` fields want them.
pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
