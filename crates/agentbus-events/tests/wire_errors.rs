//! Bad input never panics: each kind of damage is its own `DecodeError` naming what is
//! wrong (the type, the field).

use agentbus_events::{DecodeError, EventInfo, Registry, SCHEMA_VERSION, schema};
use serde_json::{Value, json};

/// The wire value of `info`'s example, as an object.
fn example_object(info: &EventInfo) -> serde_json::Map<String, Value> {
    match info.example().to_wire_value().expect("encode example") {
        Value::Object(object) => object,
        other => panic!("{} encodes to a non-object: {other}", info.name),
    }
}

fn decode(registry: &Registry, value: &Value) -> Result<String, DecodeError> {
    let bytes = serde_json::to_vec(value).expect("serialise test input");
    registry
        .decode(&bytes)
        .map(|event| event.type_name().to_owned())
}

/// A JSON value none of whose JSON types is among `json_type` (`string|null`, ...); `None`
/// when the field accepts anything.
pub fn wrong_value_for(json_type: &str) -> Option<Value> {
    let accepts: Vec<&str> = json_type.split('|').collect();
    if accepts.contains(&"any") {
        return None;
    }
    let candidates = [
        ("boolean", json!(true)),
        ("string", json!("wrong")),
        ("integer", json!(7)),
        ("object", json!({"wrong": 1})),
        ("array", json!([1, 2])),
    ];
    candidates
        .into_iter()
        .find(|(kind, _)| {
            let numeric = *kind == "integer" && accepts.contains(&"number");
            !accepts.contains(kind) && !numeric
        })
        .map(|(_, value)| value)
}

#[test]
fn unknown_type_is_named() {
    let registry = Registry::catalogue();
    let mut object = example_object(
        registry
            .get("plugin.llm_request_started")
            .expect("registered"),
    );
    object.insert("type".into(), json!("plugin.llm_request_exploded"));
    let error = decode(&registry, &Value::Object(object)).unwrap_err();
    assert_eq!(
        error,
        DecodeError::UnknownType {
            event_type: "plugin.llm_request_exploded".into()
        }
    );
    assert!(
        error.to_string().contains("plugin.llm_request_exploded"),
        "{error}"
    );
}

#[test]
fn missing_or_malformed_type_tag_is_an_error() {
    let registry = Registry::catalogue();
    let error = decode(&registry, &json!({"request_id": "r1"})).unwrap_err();
    assert_eq!(error, DecodeError::MissingType);
    assert!(error.to_string().contains("`type`"), "{error}");
    // A `type` that is not a string is malformed JSON for the envelope, not a panic.
    let error = decode(&registry, &json!({"type": 7})).unwrap_err();
    assert!(matches!(error, DecodeError::Json { .. }), "{error:?}");
    // Not an object at all.
    let error = registry.decode(b"[1,2,3]").unwrap_err();
    assert!(matches!(error, DecodeError::Json { .. }), "{error:?}");
}

#[test]
fn every_missing_required_field_is_named() {
    let registry = Registry::catalogue();
    let mut checked = 0;
    for info in registry.iter() {
        for field in schema::fields(info) {
            if !field.required || field.name == "type" {
                continue;
            }
            let mut object = example_object(info);
            object.remove(&field.name);
            let error = decode(&registry, &Value::Object(object)).unwrap_err();
            match &error {
                DecodeError::Field {
                    event_type,
                    field: named,
                    message,
                } => {
                    assert_eq!(event_type, info.event_type);
                    assert_eq!(named, &field.name, "{}: {error}", info.name);
                    assert!(message.contains("missing"), "{}: {error}", info.name);
                }
                other => panic!("{} without `{}`: {other:?}", info.name, field.name),
            }
            let text = error.to_string();
            assert!(
                text.contains(info.event_type) && text.contains(&field.name),
                "{text}"
            );
            checked += 1;
        }
    }
    // At least event_id and timestamp of every type, plus the seeds' required fields.
    assert!(
        checked >= 2 * registry.len(),
        "only {checked} required fields checked"
    );
}

#[test]
fn every_wrong_typed_field_is_named() {
    let registry = Registry::catalogue();
    let mut checked = 0;
    for info in registry.iter() {
        for field in schema::fields(info) {
            if field.name == "type" || field.name == "schema_version" {
                continue;
            }
            let Some(wrong) = wrong_value_for(&field.json_type) else {
                continue;
            };
            let mut object = example_object(info);
            object.insert(field.name.clone(), wrong.clone());
            let error = decode(&registry, &Value::Object(object)).unwrap_err();
            match &error {
                DecodeError::Field {
                    event_type,
                    field: named,
                    ..
                } => {
                    assert_eq!(event_type, info.event_type);
                    assert!(
                        named == &field.name || named.starts_with(&format!("{}.", field.name)),
                        "{} with `{}` = {wrong}: error names `{named}`: {error}",
                        info.name,
                        field.name
                    );
                }
                other => panic!("{} with `{}` = {wrong}: {other:?}", info.name, field.name),
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 3 * registry.len(),
        "only {checked} fields checked"
    );
}

#[test]
fn errors_inside_nested_and_base_fields_name_the_full_path() {
    let registry = Registry::catalogue();
    let cases = [
        // Inside a flattened base field.
        (
            "plugin.tts_audio",
            "participant",
            json!({}),
            "participant.user_id",
            "missing",
        ),
        (
            "plugin.tts_audio",
            "participant",
            json!({"user_id": 3}),
            "participant.user_id",
            "invalid type",
        ),
        (
            "agent.finish",
            "event_id",
            json!("not-a-uuid"),
            "event_id",
            "UUID",
        ),
        (
            "agent.finish",
            "timestamp",
            json!("yesterday"),
            "timestamp",
            "input",
        ),
        (
            "plugin.stt_connected",
            "plugin_version",
            json!(1.5),
            "plugin_version",
            "invalid type",
        ),
        // Inside the event's own nested fields.
        (
            "call.created",
            "call",
            json!({"call_id": 5}),
            "call.call_id",
            "invalid type",
        ),
        (
            "plugin.tts_audio",
            "data",
            json!({"sample_rate": "x"}),
            "data.sample_rate",
            "u32",
        ),
        (
            "plugin.tts_audio",
            "chunk_index",
            json!(-1),
            "chunk_index",
            "-1",
        ),
        (
            "plugin.edge.track_added",
            "track_type",
            json!("hologram"),
            "track_type",
            "screen_share",
        ),
        (
            "plugin.stt_connection",
            "connection_state",
            json!(false),
            "connection_state",
            "wrong kind",
        ),
    ];
    for (event_type, key, value, want_field, want_message) in cases {
        let info = registry.get(event_type).expect("registered");
        let mut object = example_object(info);
        object.insert(key.into(), value);
        match decode(&registry, &Value::Object(object)).unwrap_err() {
            DecodeError::Field {
                event_type: named_type,
                field,
                message,
            } => {
                assert_eq!(named_type, event_type);
                assert_eq!(field, want_field, "{event_type}: {message}");
                assert!(
                    message.contains(want_message),
                    "{event_type}.{field}: {message}"
                );
                assert!(
                    !message.contains(" at line "),
                    "position left in: {message}"
                );
            }
            other => panic!("{event_type}.{key}: {other:?}"),
        }
    }
}

#[test]
fn truncated_json_is_a_json_error() {
    let registry = Registry::catalogue();
    for info in registry.iter() {
        let text = info.example().to_wire_string().expect("encode");
        for cut in [1, text.len() / 3, text.len() / 2, text.len() - 1] {
            // Cut on a character boundary so the input stays UTF-8.
            let mut end = cut;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let error = registry.decode(&text.as_bytes()[..end]).unwrap_err();
            match &error {
                DecodeError::Json { line, column, .. } => {
                    assert!(*line >= 1 && *column >= 1, "{error}");
                }
                other => panic!("{} cut at {end}: {other:?}", info.name),
            }
            assert!(error.to_string().contains("not valid JSON"), "{error}");
        }
    }
}

#[test]
fn non_utf8_bytes_are_reported_with_their_offset() {
    let registry = Registry::catalogue();
    let info = registry.get("plugin.stt_transcript").expect("registered");
    let text = info.example().to_wire_string().expect("encode");
    let position = text
        .find("example")
        .expect("the example text is in the wire form");
    let mut bytes = text.into_bytes();
    bytes[position] = 0xFF;
    let error = registry.decode(&bytes).unwrap_err();
    assert_eq!(
        error,
        DecodeError::NotUtf8 {
            valid_up_to: position
        }
    );
    assert!(error.to_string().contains("UTF-8"), "{error}");
    // A lone continuation byte at the very start.
    let error = registry.decode(&[0x80, b'{', b'}']).unwrap_err();
    assert_eq!(error, DecodeError::NotUtf8 { valid_up_to: 0 });
}

#[test]
fn a_newer_schema_version_is_refused_by_name() {
    let registry = Registry::catalogue();
    for info in registry.iter() {
        let mut object = example_object(info);
        object.insert("schema_version".into(), json!(SCHEMA_VERSION + 1));
        let error = decode(&registry, &Value::Object(object)).unwrap_err();
        assert_eq!(
            error,
            DecodeError::UnsupportedVersion {
                event_type: info.event_type.to_owned(),
                found: SCHEMA_VERSION + 1,
                supported: SCHEMA_VERSION,
            }
        );
        assert!(error.to_string().contains(info.event_type), "{error}");
    }
}

#[test]
fn an_older_or_absent_schema_version_is_read() {
    let registry = Registry::catalogue();
    let info = registry
        .get("plugin.vlm_inference_start")
        .expect("registered");
    let mut object = example_object(info);
    object.remove("schema_version");
    assert_eq!(
        decode(&registry, &Value::Object(object)).expect("decode"),
        "VLMInferenceStartEvent"
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let registry = Registry::catalogue();
    let text = registry
        .get("plugin.tts_synthesis_complete")
        .expect("registered")
        .example()
        .to_wire_string()
        .expect("encode");
    // Flip each byte in turn to a few troublesome values: every result is Ok or an error.
    for i in 0..text.len() {
        for replacement in [b'"', b'}', b'0', 0xC3] {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = replacement;
            let _ = registry.decode(&bytes);
        }
    }
}
