//! The generated JSON Schema (draft 2020-12) agrees with the decoder: it accepts every
//! round-tripped sample and rejects what the decoder rejects.

use agentbus_events::{Registry, schema};
use jsonschema::Validator;
use serde_json::{Value, json};

fn validator(registry: &Registry) -> Validator {
    let wire_schema = schema::wire_schema(registry.iter());
    assert_eq!(
        wire_schema["$schema"],
        json!("https://json-schema.org/draft/2020-12/schema")
    );
    jsonschema::validator_for(&wire_schema)
        .unwrap_or_else(|e| panic!("the wire schema does not compile: {e}"))
}

fn errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| e.to_string())
        .collect()
}

/// Encodes, decodes through the registry and re-encodes: the sample as it travels.
fn round_tripped(registry: &Registry, value: &Value) -> Value {
    let bytes = serde_json::to_vec(value).expect("serialise");
    registry
        .decode(&bytes)
        .expect("decode")
        .to_wire_value()
        .expect("re-encode")
}

#[test]
fn the_schema_covers_every_type_once() {
    let registry = Registry::catalogue();
    let wire_schema = schema::wire_schema(registry.iter());
    let one_of = wire_schema["oneOf"].as_array().expect("oneOf");
    assert_eq!(one_of.len(), registry.len());
    for (branch, info) in one_of.iter().zip(registry.iter()) {
        assert_eq!(
            branch["properties"]["type"]["const"],
            json!(info.event_type)
        );
        assert_eq!(branch["title"], json!(info.name));
    }
}

#[test]
fn every_round_tripped_sample_is_valid() {
    let registry = Registry::catalogue();
    let validator = validator(&registry);
    for info in registry.iter() {
        for (what, sample) in [("example", info.example()), ("minimal", info.minimal())] {
            let value = sample.to_wire_value().expect("encode");
            let travelled = round_tripped(&registry, &value);
            let problems = errors(&validator, &travelled);
            assert!(
                problems.is_empty(),
                "{what} {} fails the schema: {problems:?}\n{travelled}",
                info.name
            );
        }
    }
}

#[test]
fn wrong_typed_and_missing_fields_are_invalid() {
    let registry = Registry::catalogue();
    let validator = validator(&registry);
    let mut checked = 0;
    for info in registry.iter() {
        let example = info.example().to_wire_value().expect("encode");
        for field in schema::fields(info) {
            if field.name == "type" {
                continue;
            }
            // The same wrong values the decoder test uses.
            let accepts: Vec<&str> = field.json_type.split('|').collect();
            if accepts.contains(&"any") {
                continue;
            }
            let wrong = if accepts.contains(&"string") {
                json!(12)
            } else {
                json!("wrong")
            };
            let mut mutated = example.clone();
            mutated[&field.name] = wrong.clone();
            assert!(
                !validator.is_valid(&mutated),
                "schema accepts {} with `{}` = {wrong}",
                info.name,
                field.name
            );
            // The decoder agrees (schema_version is checked by the envelope instead).
            if field.name != "schema_version" {
                let bytes = serde_json::to_vec(&mutated).expect("serialise");
                assert!(
                    registry.decode(&bytes).is_err(),
                    "{} `{}`",
                    info.name,
                    field.name
                );
            }
            if field.required {
                let mut missing = example.clone();
                missing.as_object_mut().expect("object").remove(&field.name);
                assert!(
                    !validator.is_valid(&missing),
                    "schema accepts {} without `{}`",
                    info.name,
                    field.name
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked > 5 * registry.len(),
        "only {checked} fields checked"
    );
}

#[test]
fn an_unknown_type_or_newer_version_is_invalid() {
    let registry = Registry::catalogue();
    let validator = validator(&registry);
    let info = registry
        .get("plugin.llm_response_chunk")
        .expect("registered");
    let mut value = info.example().to_wire_value().expect("encode");
    assert!(validator.is_valid(&value));
    value["type"] = json!("plugin.llm_response_chunk_v2");
    assert!(!validator.is_valid(&value));
    value["type"] = json!(info.event_type);
    value["schema_version"] = json!(agentbus_events::SCHEMA_VERSION + 1);
    assert!(!validator.is_valid(&value));
}
