//! Replay: play a stored session back, with its original timing or as fast as possible.
//!
//! Events are decoded back into their types and keep their ids and fields (the bus they
//! are published into stamps its own `seq`). With [`ReplaySpeed::Factor`], event *i* is
//! published at `start + (t_i − t_0) / factor`, measured from the replay's start, so
//! delays do not accumulate; [`ReplaySpeed::Max`] publishes back to back.

use std::str::FromStr;
use std::time::Duration;

use agentbus_events::{DynEvent, Registry};

use crate::error::{Result, StoreError};
use crate::query::EventQuery;
use crate::store::EventStore;

/// How fast to replay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReplaySpeed {
    /// As fast as the receiver takes them.
    Max,
    /// The original gaps divided by this factor (`1.0` = real time, `2.0` = twice as fast).
    Factor(f64),
}

impl FromStr for ReplaySpeed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(ReplaySpeed::Max);
        }
        match s.parse::<f64>() {
            Ok(f) if f.is_finite() && f > 0.0 => Ok(ReplaySpeed::Factor(f)),
            _ => Err(format!(
                "invalid speed `{s}`: use a positive number (1 = real time) or `max`"
            )),
        }
    }
}

/// A stored session, decoded and ready to replay.
#[derive(Debug)]
pub struct Recording {
    /// The session id.
    pub session_id: String,
    /// The events, in store order, each with its timestamp in microseconds.
    pub events: Vec<(i64, Box<dyn DynEvent>)>,
}

impl Recording {
    /// Loads and decodes every event of `session_id` with `registry`.
    pub fn load(store: &EventStore, session_id: &str, registry: &Registry) -> Result<Self> {
        let mut events = Vec::new();
        store.scan(&EventQuery::session(session_id), |stored| {
            let event = stored.decode(registry)?;
            events.push((stored.row.timestamp_us, event));
            Ok(())
        })?;
        if events.is_empty() {
            return Err(StoreError::UnknownSession(session_id.to_owned()));
        }
        Ok(Self {
            session_id: session_id.to_owned(),
            events,
        })
    }

    /// The offset of each event from the first, scaled by `speed` (all zero for `Max`).
    pub fn schedule(&self, speed: ReplaySpeed) -> Vec<Duration> {
        let first = self.events.first().map(|(ts, _)| *ts).unwrap_or(0);
        self.events
            .iter()
            .map(|(ts, _)| match speed {
                ReplaySpeed::Max => Duration::ZERO,
                ReplaySpeed::Factor(f) => {
                    // Events are in store order; a clock that stepped back gives 0, not a panic.
                    let micros = (ts - first).max(0) as f64 / f;
                    Duration::from_micros(micros as u64)
                }
            })
            .collect()
    }

    /// Publishes every event through `publish` at its scheduled time; stops at the first
    /// error `publish` returns. Returns how many events were published.
    pub async fn play<F, Fut, E>(self, speed: ReplaySpeed, mut publish: F) -> Result<u64, E>
    where
        F: FnMut(Box<dyn DynEvent>) -> Fut,
        Fut: std::future::Future<Output = Result<(), E>>,
    {
        let schedule = self.schedule(speed);
        let start = tokio::time::Instant::now();
        let mut published = 0;
        for ((_, event), offset) in self.events.into_iter().zip(schedule) {
            if speed != ReplaySpeed::Max {
                tokio::time::sleep_until(start + offset).await;
            }
            publish(event).await?;
            published += 1;
        }
        Ok(published)
    }
}

impl Recording {
    /// Publishes the recording into `bus` (see [`Recording::play`] for the timing), with
    /// backpressure: the events are sent from a thread of their own, which waits for room
    /// when a subscriber's queue is full. Returns how many events were sent.
    pub async fn play_into(self, bus: &agentbus::EventManager, speed: ReplaySpeed) -> Result<u64> {
        let schedule = self.schedule(speed);
        let bus = bus.clone();
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("agentbus-replay".into())
            .spawn(move || {
                let start = std::time::Instant::now();
                let mut sent = 0;
                for ((_, event), offset) in self.events.into_iter().zip(schedule) {
                    if let Some(wait) = offset.checked_sub(start.elapsed())
                        && !wait.is_zero()
                    {
                        std::thread::sleep(wait);
                    }
                    if let Err(error) = bus.blocking_send(event) {
                        let _ = done.send(Err(StoreError::Bus(error.to_string())));
                        return;
                    }
                    sent += 1;
                }
                let _ = done.send(Ok(sent));
            })
            .map_err(|source| StoreError::Io {
                context: "starting the replay thread",
                source,
            })?;
        // The thread answers before it ends; no answer means it panicked.
        result
            .await
            .unwrap_or_else(|_| Err(StoreError::Bus("the replay thread panicked".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_speeds() {
        assert_eq!("max".parse::<ReplaySpeed>(), Ok(ReplaySpeed::Max));
        assert_eq!("2".parse::<ReplaySpeed>(), Ok(ReplaySpeed::Factor(2.0)));
        assert!("0".parse::<ReplaySpeed>().is_err());
        assert!("-1".parse::<ReplaySpeed>().is_err());
        assert!("fast".parse::<ReplaySpeed>().is_err());
    }
}
