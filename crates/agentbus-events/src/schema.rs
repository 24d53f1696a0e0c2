//! The JSON Schema (draft 2020-12) of the wire format, generated from the types.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::registry::EventInfo;
use crate::wire::SCHEMA_VERSION;

/// One field of an event, as listed by `agentbus events list --json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FieldInfo {
    /// The field's name on the wire.
    pub name: String,
    /// Its JSON type(s), e.g. `string`, `integer`, `object`, `string|null`.
    pub json_type: String,
    /// Whether the wire format requires it.
    pub required: bool,
}

/// The wire-format schema of one event: its fields' schema plus the `type` tag and
/// `schema_version`. Definitions it refers to are collected into `generator`.
pub fn event_schema(info: &EventInfo, generator: &mut schemars::SchemaGenerator) -> Value {
    let mut schema = info.json_schema(generator).to_value();
    if let Value::Object(object) = &mut schema {
        let properties = object
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(properties) = properties {
            properties.insert("type".into(), json!({"const": info.event_type}));
            properties.insert(
                "schema_version".into(),
                json!({"type": "integer", "minimum": 1, "maximum": SCHEMA_VERSION}),
            );
        }
        let required = object
            .entry("required")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(required) = required {
            required.insert(0, json!("type"));
        }
        object.insert("title".into(), json!(info.name));
        // The event's own title/description from schemars stays; `type` tells events apart.
    }
    schema
}

/// The schema of the whole wire format: one of the given event types.
pub fn wire_schema<'a>(infos: impl IntoIterator<Item = &'a EventInfo>) -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let one_of: Vec<Value> = infos
        .into_iter()
        .map(|info| event_schema(info, &mut generator))
        .collect();
    let defs = generator.take_definitions(true);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://agentbus.dev/schema/wire-v1.json",
        "title": "agentbus wire event",
        "description": "One event in the agentbus wire format: a flat JSON object with `type`, `schema_version`, the base fields and the event's fields.",
        "oneOf": one_of,
        "$defs": defs,
    })
}

/// The fields of one event type as the wire format has them, in schema order, with
/// `type` and `schema_version` first.
pub fn fields(info: &EventInfo) -> Vec<FieldInfo> {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let schema = event_schema(info, &mut generator);
    let defs = generator.take_definitions(true);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = vec![
        FieldInfo {
            name: "type".into(),
            json_type: "string".into(),
            required: true,
        },
        FieldInfo {
            name: "schema_version".into(),
            json_type: "integer".into(),
            required: false,
        },
    ];
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            if name == "type" || name == "schema_version" {
                continue;
            }
            out.push(FieldInfo {
                name: name.clone(),
                json_type: json_type(property, &defs),
                required: required.contains(&name.as_str()),
            });
        }
    }
    out
}

/// A short description of a property's JSON type, following `$ref`s into `defs`.
fn json_type(schema: &Value, defs: &Map<String, Value>) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or_default();
        return defs
            .get(name)
            .map(|def| json_type(def, defs))
            .unwrap_or_else(|| "object".into());
    }
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("|"),
        _ => {
            for key in ["anyOf", "oneOf"] {
                if let Some(options) = schema.get(key).and_then(Value::as_array) {
                    let mut types: Vec<String> =
                        options.iter().map(|o| json_type(o, defs)).collect();
                    types.dedup();
                    return types.join("|");
                }
            }
            if schema.get("enum").is_some() || schema.get("const").is_some() {
                "string".into()
            } else {
                "any".into()
            }
        }
    }
}
