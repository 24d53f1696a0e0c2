//! Stream combinators over an agent's outputs (SimpleLLMFunc's `responses_only`,
//! `events_only`, `filter_events` and `with_event_observer`).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use agentbus_events::react::{
    EventOrigin, EventYield, ReactEvent, ReactEventKind, ReactOutput, ResponseYield,
};
use futures::{Stream, StreamExt, future};

/// Only the responses of `stream`.
pub fn responses_only<M, S>(stream: S) -> impl Stream<Item = ResponseYield<M>>
where
    S: Stream<Item = ReactOutput<M>>,
{
    stream.filter_map(|output| {
        future::ready(match output {
            ReactOutput::Response(response) => Some(response),
            ReactOutput::Event(_) => None,
        })
    })
}

/// Only the events of `stream`.
pub fn events_only<M, S>(stream: S) -> impl Stream<Item = EventYield>
where
    S: Stream<Item = ReactOutput<M>>,
{
    stream.filter_map(|output| {
        future::ready(match output {
            ReactOutput::Event(event) => Some(event),
            ReactOutput::Response(_) => None,
        })
    })
}

/// Only the events of `stream` whose kind is in `kinds`.
pub fn filter_events<M, S>(stream: S, kinds: &[ReactEventKind]) -> impl Stream<Item = EventYield>
where
    S: Stream<Item = ReactOutput<M>>,
{
    let kinds: Vec<ReactEventKind> = kinds.to_vec();
    events_only(stream).filter(move |event| future::ready(kinds.contains(&event.event.kind())))
}

/// Counts what an observer did wrong; shared with the caller of [`observe`].
#[derive(Clone, Debug, Default)]
pub struct ObserverFailures {
    count: Arc<AtomicU64>,
}

impl ObserverFailures {
    /// How many times the observer returned an error or panicked.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// An observer's error, as anything displayable.
pub type ObserverError = Box<dyn std::fmt::Display + Send + Sync>;

/// Passes every item of `stream` through unchanged, showing each event to `observer`
/// first. An observer that returns an error or panics does not break the stream: the
/// failure is logged (`tracing` warning) and counted in the returned
/// [`ObserverFailures`], and the item is delivered anyway.
pub fn observe<M, S, F>(
    stream: S,
    mut observer: F,
) -> (impl Stream<Item = ReactOutput<M>>, ObserverFailures)
where
    S: Stream<Item = ReactOutput<M>>,
    F: FnMut(&ReactEvent, &EventOrigin) -> Result<(), ObserverError>,
{
    let failures = ObserverFailures::default();
    let counter = failures.clone();
    let stream = stream.map(move |output| {
        if let ReactOutput::Event(event) = &output {
            let outcome =
                std::panic::catch_unwind(AssertUnwindSafe(|| observer(&event.event, event.origin())));
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    counter.count.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(event = event.event.event_type(), %error, "event observer failed");
                }
                Err(_) => {
                    counter.count.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(event = event.event.event_type(), "event observer panicked");
                }
            }
        }
        output
    });
    (stream, failures)
}

/// The combinators as methods on any stream of [`ReactOutput`]s.
pub trait ReactStreamExt<M>: Stream<Item = ReactOutput<M>> + Sized {
    /// See [`responses_only`].
    fn responses_only(self) -> impl Stream<Item = ResponseYield<M>> {
        responses_only(self)
    }

    /// See [`events_only`].
    fn events_only(self) -> impl Stream<Item = EventYield> {
        events_only(self)
    }

    /// See [`filter_events`].
    fn filter_events(self, kinds: &[ReactEventKind]) -> impl Stream<Item = EventYield> {
        filter_events(self, kinds)
    }

    /// See [`observe`].
    fn observe<F>(self, observer: F) -> (impl Stream<Item = ReactOutput<M>>, ObserverFailures)
    where
        F: FnMut(&ReactEvent, &EventOrigin) -> Result<(), ObserverError>,
    {
        observe(self, observer)
    }
}

impl<M, S: Stream<Item = ReactOutput<M>>> ReactStreamExt<M> for S {}
