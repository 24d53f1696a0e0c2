//! The one wire format: a flat JSON object per event.
//!
//! ```json
//! {"type":"plugin.llm_request_started","schema_version":1,
//!  "event_id":"…","timestamp":"2026-01-02T03:04:05.678Z","session_id":"s1",
//!  "request_id":"r1","model":"gpt-4o","streaming":true}
//! ```
//!
//! `type` names the event, `schema_version` the version of this format; then come the
//! base fields ([`EventMeta`](crate::EventMeta)) and the event's own fields, side by side.
//! Encoding is [`write()`]/[`to_value`]; decoding a known type is [`decode_as`], decoding
//! any registered type is [`Registry::decode`](crate::Registry::decode).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::Event;

/// The version of the wire format this build writes and the newest it reads.
pub const SCHEMA_VERSION: u32 = 1;

/// Serialises `event` with its `type` tag and `schema_version` in front.
#[derive(Serialize)]
struct Tagged<'a, E> {
    #[serde(rename = "type")]
    event_type: &'static str,
    schema_version: u32,
    #[serde(flatten)]
    event: &'a E,
}

/// An event could not be written as JSON (a field held a value JSON cannot express,
/// such as a non-finite float).
#[derive(Debug, Error, Clone, PartialEq)]
#[error("cannot encode event `{event_type}`: {message}")]
pub struct EncodeError {
    /// The event's `type` string.
    pub event_type: &'static str,
    /// What serde_json reported.
    pub message: String,
}

impl EncodeError {
    pub(crate) fn new(event_type: &'static str, message: String) -> Self {
        Self {
            event_type,
            message,
        }
    }
}

/// Bytes could not be decoded into an event. Every variant names what was wrong.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum DecodeError {
    /// The bytes are not UTF-8.
    #[error("event is not valid UTF-8 (invalid byte at offset {valid_up_to})")]
    NotUtf8 {
        /// Length of the valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// The bytes are not a JSON object (syntax error or truncated input).
    #[error("event is not valid JSON at line {line}, column {column}: {message}")]
    Json {
        /// What the parser reported.
        message: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// The object has no string `type` field.
    #[error("event has no `type` field")]
    MissingType,
    /// No decoder is registered for `type`.
    #[error("unknown event type `{event_type}`")]
    UnknownType {
        /// The `type` string that was found.
        event_type: String,
    },
    /// The event was written by a newer version of the format.
    #[error("event `{event_type}` has schema_version {found}; this build reads up to {supported}")]
    UnsupportedVersion {
        /// The `type` string.
        event_type: String,
        /// The version found.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A field is missing or has the wrong type.
    #[error("event `{event_type}`: field `{field}`: {message}")]
    Field {
        /// The `type` string.
        event_type: String,
        /// The field's path (`request_id`, `tool_calls[0].name`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Appends `event`'s wire-format JSON to `out`.
pub fn write<E: Event>(event: &E, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    serde_json::to_writer(
        out,
        &Tagged {
            event_type: E::TYPE,
            schema_version: SCHEMA_VERSION,
            event,
        },
    )
    .map_err(|e| EncodeError::new(E::TYPE, e.to_string()))
}

/// `event`'s wire-format JSON as a string.
pub fn to_string<E: Event>(event: &E) -> Result<String, EncodeError> {
    let mut out = Vec::with_capacity(256);
    write(event, &mut out)?;
    String::from_utf8(out).map_err(|e| EncodeError::new(E::TYPE, e.to_string()))
}

/// `event`'s wire-format JSON as a [`serde_json::Value`].
pub fn to_value<E: Event>(event: &E) -> Result<serde_json::Value, EncodeError> {
    serde_json::to_value(Tagged {
        event_type: E::TYPE,
        schema_version: SCHEMA_VERSION,
        event,
    })
    .map_err(|e| EncodeError::new(E::TYPE, e.to_string()))
}

/// The envelope fields read before choosing a decoder.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(rename = "type", borrow, default)]
    event_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    schema_version: Option<u32>,
}

/// Checks that `bytes` are UTF-8 JSON and reads the `type` tag and schema version.
pub(crate) fn read_header(bytes: &[u8]) -> Result<(&str, String), DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    let (event_type, schema_version) = match fast_header(text) {
        Some((event_type, version)) => (event_type.to_owned(), Some(version)),
        None => {
            let header: Header<'_> = serde_json::from_str(text).map_err(json_error)?;
            let event_type = header
                .event_type
                .ok_or(DecodeError::MissingType)?
                .into_owned();
            (event_type, header.schema_version)
        }
    };
    if let Some(found) = schema_version
        && found > SCHEMA_VERSION
    {
        return Err(DecodeError::UnsupportedVersion {
            event_type,
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok((text, event_type))
}

/// Reads the header without parsing the whole text when it starts the way this crate
/// writes it: `{"type":"<plain string>","schema_version":<digits>,`. Anything else
/// (other key order, escapes in the type, white space) returns `None` and takes the full
/// parse. The body decoder still parses every byte, so malformed text is still caught.
fn fast_header(text: &str) -> Option<(&str, u32)> {
    let rest = text.strip_prefix(r#"{"type":""#)?;
    let end = rest.find('"')?;
    let event_type = &rest[..end];
    if event_type.contains('\\') {
        return None;
    }
    let rest = rest[end..].strip_prefix(r#"","schema_version":"#)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || !matches!(rest.as_bytes().get(digits), Some(b',' | b'}')) {
        return None;
    }
    let version = rest[..digits].parse().ok()?;
    Some((event_type, version))
}

fn json_error(e: serde_json::Error) -> DecodeError {
    DecodeError::Json {
        message: e.to_string(),
        line: e.line(),
        column: e.column(),
    }
}

/// Decodes wire-format JSON that must be an `E`.
pub fn decode_as<E: Event>(bytes: &[u8]) -> Result<E, DecodeError> {
    let (text, event_type) = read_header(bytes)?;
    if event_type != E::TYPE {
        return Err(DecodeError::Field {
            event_type: E::TYPE.to_owned(),
            field: "type".to_owned(),
            message: format!("expected `{}`, found `{event_type}`", E::TYPE),
        });
    }
    decode_body(text)
}

/// Decodes the body of a text whose header was already checked.
pub(crate) fn decode_body<E: Event>(text: &str) -> Result<E, DecodeError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at_root = path == "." || path.is_empty();
        if inner.is_syntax() || inner.is_eof() {
            // The header may have been read without parsing the whole text: tell malformed
            // JSON (truncated, bad syntax) from a value of the wrong kind.
            if let Err(syntax) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
                return json_error(syntax);
            }
            if at_root {
                return json_error(inner);
            }
        }
        // The header check already parsed the whole text, so a "syntax" error at a field
        // is serde_json's way of refusing a value of the wrong kind (e.g. `true` for an
        // enum): report it as that field's error.
        let message = if inner.is_syntax() {
            format!(
                "wrong kind of JSON value ({})",
                strip_position(&inner.to_string())
            )
        } else {
            strip_position(&inner.to_string())
        };
        // Errors inside the flattened structs carry no path: find the field there.
        let (path, message) = if at_root {
            locate_base_field(text, has_error_fields::<E>()).unwrap_or((path, message))
        } else {
            (path, message)
        };
        // A missing field is reported at its parent; name the field itself.
        let field = match message.strip_prefix("missing field `") {
            Some(rest) => {
                let name = rest.split('`').next().unwrap_or_default();
                if path == "." || path.is_empty() {
                    name.to_owned()
                } else {
                    format!("{path}.{name}")
                }
            }
            None => path,
        };
        DecodeError::Field {
            event_type: E::TYPE.to_owned(),
            field,
            message,
        }
    })
}

/// serde reports an error inside a `#[serde(flatten)]`ed struct (the base fields
/// [`EventMeta`](crate::EventMeta) and [`PluginInfo`](crate::PluginInfo), and the error
/// events' [`ErrorFields`](crate::ErrorFields)) without a path.
/// Decoding those structs on their own finds where it is: `(path, message)`, or `None`
/// when neither fails below the top level.
/// `error_fields`: whether the event flattens [`ErrorFields`](crate::ErrorFields) (probing
/// it on another event could blame that event's own `error` field).
fn locate_base_field(text: &str, error_fields: bool) -> Option<(String, String)> {
    fn probe<T: serde::de::DeserializeOwned>(text: &str) -> Option<(String, String)> {
        let mut de = serde_json::Deserializer::from_str(text);
        let error = serde_path_to_error::deserialize::<_, T>(&mut de).err()?;
        let path = error.path().to_string();
        if path == "." || path.is_empty() {
            return None;
        }
        Some((path, strip_position(&error.into_inner().to_string())))
    }
    probe::<crate::EventMeta>(text)
        .or_else(|| probe::<crate::PluginInfo>(text))
        .or_else(|| {
            error_fields
                .then(|| probe::<crate::ErrorFields>(text))
                .flatten()
        })
}

/// Whether `E` is one of the provider error events, which flatten
/// [`ErrorFields`](crate::ErrorFields). (The wire-error tests fail for an error event
/// missing here: its `error_code` or `context` errors would not be named.)
fn has_error_fields<E: 'static>() -> bool {
    use std::any::TypeId;
    [
        TypeId::of::<crate::llm::LLMErrorEvent>(),
        TypeId::of::<crate::realtime::RealtimeErrorEvent>(),
        TypeId::of::<crate::stt::STTErrorEvent>(),
        TypeId::of::<crate::tts::TTSErrorEvent>(),
        TypeId::of::<crate::vad::VADErrorEvent>(),
        TypeId::of::<crate::vlm::VLMErrorEvent>(),
        TypeId::of::<crate::plugin::QwenLLMErrorEvent>(),
    ]
    .contains(&TypeId::of::<E>())
}

/// serde_json appends " at line L column C" to data errors; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_header_reads_what_this_crate_writes() {
        let text = r#"{"type":"base.exception","schema_version":1,"event_id":"x"}"#;
        assert_eq!(fast_header(text), Some(("base.exception", 1)));
        assert_eq!(
            fast_header(r#"{"type":"a.b","schema_version":12}"#),
            Some(("a.b", 12))
        );
    }

    #[test]
    fn fast_header_declines_anything_else_and_the_full_parse_agrees() {
        for text in [
            r#"{"schema_version":1,"type":"base.exception"}"#,
            r#"{ "type":"base.exception","schema_version":1}"#,
            r#"{"type":"base\u002eexception","schema_version":1}"#,
            r#"{"type":"base.exception","schema_version":1x}"#,
            r#"{"type":"base.exception"}"#,
        ] {
            assert_eq!(fast_header(text), None, "{text}");
        }
        // Declined headers still decode through the full parse.
        let (_, event_type) =
            read_header(br#"{"schema_version":1,"type":"base.exception"}"#).unwrap();
        assert_eq!(event_type, "base.exception");
        assert!(matches!(
            read_header(br#"{"type":"base.exception","schema_version":1x}"#),
            Err(DecodeError::Json { .. })
        ));
    }
}
