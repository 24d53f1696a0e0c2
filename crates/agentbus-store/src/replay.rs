//! Replay: play a stored session back, with its original timing or as fast as possible.
//!
//! Events are decoded back into their types and keep their ids and fields (the bus they
//! are published into stamps its own `seq`). With [`ReplaySpeed::Factor`], event *i* is
//! published at `start + (t_i − t_0) / factor`, measured from the replay's start, so
//! delays do not accumulate; [`ReplaySpeed::Max`] publishes back to back. A
//! [`Recording`] reads its session a page at a time: memory stays bounded whatever the
//! session's size.

use std::str::FromStr;
use std::time::Duration;

use agentbus_events::{DynEvent, Registry};

use crate::backend::{Backend, SessionCounts};
use crate::error::{Result, StoreError};
use crate::open::open_backend_read_only;
use crate::query::EventQuery;
use crate::store::EventStore;

/// One event of a replay page: its store seq, its timestamp (µs) and the decoded event.
type PagedEvent = (u64, i64, Box<dyn DynEvent>);

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

impl ReplaySpeed {
    /// When an event `since_first_us` microseconds after the session's first is due,
    /// measured from the replay's start (zero for [`ReplaySpeed::Max`]; an event stamped
    /// before the first, after a clock step, is due at once).
    pub fn offset(self, since_first_us: i64) -> Duration {
        match self {
            ReplaySpeed::Max => Duration::ZERO,
            ReplaySpeed::Factor(f) => {
                Duration::from_micros((since_first_us.max(0) as f64 / f) as u64)
            }
        }
    }
}

/// Events read from the store per query while replaying: what a replay holds in memory.
const PAGE: u64 = 1_024;

/// A stored session, ready to replay. It is read from the store a page at a time as it
/// plays, on a read-only connection of its own, so a replay holds a bounded number of
/// events in memory whatever the session's size.
pub struct Recording {
    backend: Box<dyn Backend>,
    session: SessionCounts,
    registry: Registry,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Recording {
    /// Opens `session_id` of `store` for replay, decoding with `registry`. An unknown
    /// session is [`StoreError::UnknownSession`].
    pub fn open(store: &EventStore, session_id: &str, registry: &Registry) -> Result<Self> {
        let mut backend = open_backend_read_only(store.location())?;
        let session = backend
            .session_counts(Some(session_id))?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::UnknownSession(session_id.to_owned()))?;
        Ok(Self {
            backend,
            session,
            registry: registry.clone(),
        })
    }

    /// The session: its event count, span and status (a replay of a session with a gap
    /// should say so; see [`SessionStatus::gap_warning`](crate::SessionStatus::gap_warning)).
    pub fn session(&self) -> &SessionCounts {
        &self.session
    }

    /// The next page of events after store seq `after`, decoded, with their timestamps.
    fn page(&mut self, after: u64) -> Result<Vec<PagedEvent>> {
        let query = EventQuery {
            session_id: Some(self.session.session_id.clone()),
            after_seq: Some(after),
            limit: Some(PAGE),
            ..EventQuery::default()
        };
        let registry = &self.registry;
        let mut page = Vec::with_capacity(PAGE as usize);
        self.backend.scan(&query, &mut |stored| {
            let event = stored.decode(registry)?;
            page.push((stored.seq, stored.row.timestamp_us, event));
            Ok(())
        })?;
        Ok(page)
    }

    /// Publishes every event through `publish` at its scheduled time (see
    /// [`ReplaySpeed::offset`]); stops at the first error. Returns how many events were
    /// published. Each page of events is read from the store between two publishes (a
    /// short blocking read).
    pub async fn play<F, Fut, E>(mut self, speed: ReplaySpeed, mut publish: F) -> Result<u64, E>
    where
        F: FnMut(Box<dyn DynEvent>) -> Fut,
        Fut: std::future::Future<Output = Result<(), E>>,
        E: From<StoreError>,
    {
        let start = tokio::time::Instant::now();
        let first_us = self.session.first_us;
        let mut published = 0;
        let mut after = 0;
        loop {
            let page = self.page(after)?;
            let Some(&(last, _, _)) = page.last() else {
                return Ok(published);
            };
            after = last;
            for (_, ts, event) in page {
                if speed != ReplaySpeed::Max {
                    tokio::time::sleep_until(start + speed.offset(ts - first_us)).await;
                }
                publish(event).await?;
                published += 1;
            }
        }
    }

    /// Publishes the recording into `bus` (see [`Recording::play`] for the timing), with
    /// backpressure: the events are read and sent from a thread of their own, which waits
    /// for room when a subscriber's queue is full. Returns how many events were sent.
    pub async fn play_into(
        mut self,
        bus: &agentbus::EventManager,
        speed: ReplaySpeed,
    ) -> Result<u64> {
        let bus = bus.clone();
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("agentbus-replay".into())
            .spawn(move || {
                let start = std::time::Instant::now();
                let first_us = self.session.first_us;
                let mut sent = 0;
                let mut after = 0;
                let outcome = loop {
                    let page = match self.page(after) {
                        Ok(page) => page,
                        Err(error) => break Err(error),
                    };
                    let Some(&(last, _, _)) = page.last() else {
                        break Ok(sent);
                    };
                    after = last;
                    let mut failed = None;
                    for (_, ts, event) in page {
                        if let Some(wait) = speed.offset(ts - first_us).checked_sub(start.elapsed())
                            && !wait.is_zero()
                        {
                            std::thread::sleep(wait);
                        }
                        if let Err(error) = bus.blocking_send(event) {
                            failed = Some(StoreError::Bus(error.to_string()));
                            break;
                        }
                        sent += 1;
                    }
                    if let Some(error) = failed {
                        break Err(error);
                    }
                };
                let _ = done.send(outcome);
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
