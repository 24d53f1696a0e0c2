//! Rows: what the store writes for an event ([`EventRow`]) and what it reads back
//! ([`StoredEvent`]), and how an event becomes a row ([`RowEncoder`]).
//!
//! The row keeps the event's wire-format JSON untouched (except for left-out audio, below)
//! beside the columns that are indexed: session id, type, timestamp, request id and agent
//! call id (the last two read from the JSON when the event has them: a top-level
//! `request_id`, a top-level `agent_call_id` or `origin.agent_call_id`).
//!
//! **Audio.** Events carrying [`PcmData`](agentbus_events::base::PcmData) can be large
//! (one second of 48 kHz stereo is ~96k samples). With [`AudioPolicy::OmitSamples`], the
//! default, the store keeps the audio's sample rate, channels and format but writes
//! `samples: []` and adds `samples_omitted: N` (the number left out); such rows still decode,
//! with empty audio. [`AudioPolicy::Keep`] stores the samples.

use std::borrow::Cow;

use agentbus_events::{DynEvent, Registry};
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::error::{Result, StoreError};

/// What the store does with PCM audio samples inside events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AudioPolicy {
    /// Keep the audio's format, drop the samples, record how many were dropped (default).
    #[default]
    OmitSamples,
    /// Store the samples too.
    Keep,
}

/// One event ready to be written: the indexed columns and the wire JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    /// The `seq` the bus stamped, when the event went through a bus.
    pub bus_seq: Option<u64>,
    /// The event's id (UUID, hyphenated).
    pub event_id: String,
    /// The session the event belongs to.
    pub session_id: Option<String>,
    /// The `type` string.
    pub event_type: String,
    /// The event's timestamp, in microseconds since the Unix epoch (UTC).
    pub timestamp_us: i64,
    /// The LLM request id, when the event carries one.
    pub request_id: Option<String>,
    /// The agent call id, when the event carries one.
    pub agent_call_id: Option<String>,
    /// The wire-format JSON.
    pub body: String,
}

/// An event read back from the store.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// Position in the store: 1, 2, 3, … without gaps, in the order events were appended.
    pub seq: u64,
    /// The indexed columns and the wire JSON, as written.
    pub row: EventRow,
}

impl StoredEvent {
    /// The event's timestamp.
    pub fn timestamp(&self) -> DateTime<Utc> {
        micros_to_datetime(self.row.timestamp_us)
    }

    /// Decodes the wire JSON into a typed event with `registry`.
    pub fn decode(&self, registry: &Registry) -> Result<Box<dyn DynEvent>> {
        registry
            .decode(self.row.body.as_bytes())
            .map_err(|source| StoreError::Decode {
                seq: self.seq,
                source,
            })
    }

    /// The wire JSON parsed as a JSON value.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.row.body).map_err(|e| StoreError::MalformedRow {
            seq: self.seq,
            reason: format!("body is not JSON: {e}"),
        })
    }
}

/// The `events` columns, in the order every statement of both backends writes and reads
/// them.
pub(crate) const COLUMNS: &str =
    "seq, bus_seq, event_id, session_id, type, ts_us, request_id, agent_call_id, body";

/// How many columns [`COLUMNS`] names.
pub(crate) const COLUMN_COUNT: usize = 9;

/// The rows an idempotent append writes: those whose event id is not in `stored`, each id
/// once (its first row), in order; `rows` itself, not a copy, when every row is new (the
/// common case).
pub(crate) fn unstored_rows<'a>(
    rows: &'a [EventRow],
    stored: &std::collections::HashSet<String>,
) -> Cow<'a, [EventRow]> {
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    let keep: Vec<bool> = rows
        .iter()
        .map(|row| seen.insert(row.event_id.as_str()) && !stored.contains(&row.event_id))
        .collect();
    if keep.iter().all(|&kept| kept) {
        return Cow::Borrowed(rows);
    }
    Cow::Owned(
        rows.iter()
            .zip(keep)
            .filter(|&(_, kept)| kept)
            .map(|(row, _)| row.clone())
            .collect(),
    )
}

/// A store number as the databases keep it (both have signed 64-bit integers only).
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A row read back: the store `seq` and bus seq as the database holds them, checked.
pub(crate) fn to_stored(seq: i64, bus_seq: Option<i64>, mut row: EventRow) -> Result<StoredEvent> {
    let seq = u64::try_from(seq).map_err(|_| StoreError::MalformedRow {
        seq: 0,
        reason: format!("negative seq {seq}"),
    })?;
    row.bus_seq = match bus_seq {
        None => None,
        Some(b) => Some(u64::try_from(b).map_err(|_| StoreError::MalformedRow {
            seq,
            reason: format!("negative bus_seq {b}"),
        })?),
    };
    Ok(StoredEvent { seq, row })
}

/// What one appended batch adds to one session's entry in `agentbus_sessions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SessionDelta<'a> {
    pub session_id: &'a str,
    pub first_seq: i64,
    pub last_seq: i64,
    pub first_us: i64,
    pub last_us: i64,
    pub events: i64,
}

/// The per-session deltas of `rows` numbered from `first_seq`, in order of first
/// appearance (a batch usually holds one or two sessions).
pub(crate) fn session_deltas(rows: &[EventRow], first_seq: i64) -> Vec<SessionDelta<'_>> {
    let mut deltas: Vec<SessionDelta<'_>> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let Some(session_id) = row.session_id.as_deref() else {
            continue;
        };
        let seq = first_seq + i as i64;
        let ts = row.timestamp_us;
        // Consecutive rows are nearly always of the same session: look at the last first.
        let found = match deltas.last() {
            Some(last) if last.session_id == session_id => Some(deltas.len() - 1),
            _ => index.get(session_id).copied(),
        };
        match found {
            Some(i) => {
                let d = &mut deltas[i];
                d.last_seq = seq;
                d.first_us = d.first_us.min(ts);
                d.last_us = d.last_us.max(ts);
                d.events += 1;
            }
            None => {
                index.insert(session_id, deltas.len());
                deltas.push(SessionDelta {
                    session_id,
                    first_seq: seq,
                    last_seq: seq,
                    first_us: ts,
                    last_us: ts,
                    events: 1,
                });
            }
        }
    }
    deltas
}

/// Microseconds since the epoch as a UTC time (clamped to the representable range).
pub fn micros_to_datetime(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A UTC time as microseconds since the epoch.
pub fn datetime_to_micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

/// Turns events into rows.
#[derive(Clone, Copy, Debug, Default)]
pub struct RowEncoder {
    audio: AudioPolicy,
}

impl RowEncoder {
    /// An encoder applying `audio`.
    pub fn new(audio: AudioPolicy) -> Self {
        Self { audio }
    }

    /// The row for `event`.
    pub fn encode(&self, event: &dyn DynEvent) -> Result<EventRow> {
        let mut buffer = Vec::with_capacity(384);
        event.write_wire(&mut buffer)?;
        self.row(event, buffer)
    }

    /// The row for `event`, which was decoded from `wire`: the body is `wire` as it came
    /// (no second serialisation; fields this version does not know are kept).
    ///
    /// ```
    /// use agentbus_events::{DynEvent, Registry, llm::LLMResponseChunkEvent};
    /// use agentbus_store::RowEncoder;
    ///
    /// let chunk = LLMResponseChunkEvent::default();
    /// let wire = (&chunk as &dyn DynEvent).to_wire_string()?;
    /// let event = Registry::catalogue().decode(wire.as_bytes())?;
    /// let row = RowEncoder::default().encode_received(event.as_ref(), wire.as_bytes())?;
    /// assert_eq!(row.body, wire);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode_received(&self, event: &dyn DynEvent, wire: &[u8]) -> Result<EventRow> {
        self.row(event, wire.to_vec())
    }

    fn row(&self, event: &dyn DynEvent, body: Vec<u8>) -> Result<EventRow> {
        // serde_json writes UTF-8 only, and a received body decoded as JSON, so this
        // conversion does not fail; map it anyway.
        let mut body = String::from_utf8(body).map_err(|e| agentbus_events::EncodeError {
            event_type: event.event_type(),
            message: e.to_string(),
        })?;
        // (A received body may have spaces after its colons: look for the key alone.)
        if self.audio == AudioPolicy::OmitSamples && body.contains("\"samples\"") {
            body = omit_samples(&body).unwrap_or(body);
        }
        let keys = extract_keys(&body);
        let meta = event.meta();
        let row = EventRow {
            bus_seq: meta.seq.map(|seq| seq.get()),
            event_id: meta.event_id.hyphenated().to_string(),
            session_id: meta.session_id.clone(),
            event_type: event.event_type().to_owned(),
            timestamp_us: datetime_to_micros(meta.timestamp),
            request_id: keys.0,
            agent_call_id: keys.1,
            body,
        };
        Ok(row)
    }
}

/// A JSON value kept only when it is a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Lenient<'a> {
    Str(#[serde(borrow)] Cow<'a, str>),
    Other(IgnoredAny),
}

impl Lenient<'_> {
    fn into_string(self) -> Option<String> {
        match self {
            Lenient::Str(s) => Some(s.into_owned()),
            Lenient::Other(_) => None,
        }
    }
}

#[derive(Deserialize)]
struct OriginKeys<'a> {
    #[serde(borrow, default)]
    agent_call_id: Option<Lenient<'a>>,
}

#[derive(Deserialize)]
struct Keys<'a> {
    #[serde(borrow, default)]
    request_id: Option<Lenient<'a>>,
    #[serde(borrow, default)]
    agent_call_id: Option<Lenient<'a>>,
    #[serde(borrow, default)]
    origin: Option<OriginKeys<'a>>,
}

/// The request id and agent call id in a wire JSON object, when present.
pub(crate) fn extract_keys(body: &str) -> (Option<String>, Option<String>) {
    match serde_json::from_str::<Keys<'_>>(body) {
        Ok(keys) => {
            let request_id = keys.request_id.and_then(Lenient::into_string);
            let agent_call_id = keys
                .agent_call_id
                .and_then(Lenient::into_string)
                .or_else(|| {
                    keys.origin
                        .and_then(|o| o.agent_call_id)
                        .and_then(Lenient::into_string)
                });
            (request_id, agent_call_id)
        }
        // An `origin` that is not an object: no keys to index.
        Err(_) => (None, None),
    }
}

/// The JSON with every PCM audio block's samples left out (see the module docs), or
/// `None` when it holds none.
fn omit_samples(body: &str) -> Option<String> {
    let mut value: serde_json::Value = serde_json::from_str(body).ok()?;
    if !strip_pcm(&mut value) {
        return None;
    }
    serde_json::to_string(&value).ok()
}

/// Empties the samples of every object shaped like `PcmData`; true if any was changed.
fn strip_pcm(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => {
            let is_pcm = map.contains_key("sample_rate")
                && map.contains_key("channels")
                && map.get("samples").is_some_and(|s| s.is_array());
            let mut changed = false;
            if is_pcm {
                if let Some(serde_json::Value::Array(samples)) = map.get_mut("samples")
                    && !samples.is_empty()
                {
                    let n = samples.len();
                    samples.clear();
                    map.insert("samples_omitted".into(), n.into());
                    changed = true;
                }
            } else {
                for child in map.values_mut() {
                    changed |= strip_pcm(child);
                }
            }
            changed
        }
        serde_json::Value::Array(items) => {
            let mut changed = false;
            for item in items {
                changed |= strip_pcm(item);
            }
            changed
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_request_and_agent_call_ids() {
        assert_eq!(
            extract_keys(r#"{"type":"x","request_id":"r1","n":[1,2]}"#),
            (Some("r1".into()), None)
        );
        assert_eq!(
            extract_keys(r#"{"type":"x","origin":{"session_id":"s","agent_call_id":"a1"}}"#),
            (None, Some("a1".into()))
        );
        assert_eq!(
            extract_keys(r#"{"type":"x","request_id":7,"origin":"weird"}"#),
            (None, None)
        );
        assert_eq!(
            extract_keys(r#"{"type":"x","request_id":{"a":1},"agent_call_id":"a2"}"#),
            (None, Some("a2".into()))
        );
    }

    #[test]
    fn omits_pcm_samples_only() {
        let body = r#"{"type":"t","pcm":{"sample_rate":16000,"channels":1,"format":"s16","samples":[0.5,0.25]},"other":{"samples":[1]}}"#;
        let out: serde_json::Value = serde_json::from_str(&omit_samples(body).unwrap()).unwrap();
        assert_eq!(out["pcm"]["samples"], serde_json::json!([]));
        assert_eq!(out["pcm"]["samples_omitted"], 2);
        assert_eq!(out["pcm"]["sample_rate"], 16000);
        assert_eq!(out["other"]["samples"], serde_json::json!([1]));
        assert!(omit_samples(r#"{"samples":[1]}"#).is_none());
    }
}
