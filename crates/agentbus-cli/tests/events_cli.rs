//! `agentbus events list|schema`, run as the real binary.

use std::collections::HashSet;
use std::process::Command;

use agentbus_events::Registry;
use serde_json::Value;

/// Every `type` string of `catalogue.md`'s Vision Agents tables.
const VISION_AGENTS_TYPES: &[&str] = &[
    "base.exception",
    "agent.user_transcript",
    "agent.user_turn_started",
    "agent.user_turn_ended",
    "agent.agent_turn_started",
    "agent.agent_turn_ended",
    "agent.joined_call",
    "agent.left_call",
    "agent.finish",
    "plugin.edge.participant_joined",
    "plugin.edge.participant_left",
    "plugin.edge.call_ended",
    "plugin.edge.track_added",
    "plugin.edge.track_removed",
    "plugin.edge.audio_received",
    "call.session_participant_joined",
    "call.session_participant_left",
    "call.created",
    "call.ended",
    "call.session_started",
    "call.session_ended",
    "call.session_participant_count_updated",
    "call.updated",
    "call.member_added",
    "call.member_removed",
    "call.recording_started",
    "call.recording_stopped",
    "call.transcription_started",
    "call.transcription_stopped",
    "call.closed_caption",
    "plugin.llm_request_started",
    "plugin.llm_response_chunk",
    "plugin.llm_response_completed",
    "plugin.llm_response_final",
    "plugin.llm_error",
    "plugin.llm.tool.start",
    "plugin.llm.tool.end",
    "plugin.realtime_connected",
    "plugin.realtime_disconnected",
    "plugin.realtime_audio_input",
    "plugin.realtime_audio_output",
    "plugin.realtime_audio_output_done",
    "plugin.realtime_response",
    "plugin.realtime_conversation_item",
    "plugin.realtime_error",
    "plugin.realtime_user_speech_transcription",
    "plugin.realtime_agent_speech_transcription",
    "plugin.stt_transcript",
    "plugin.stt_partial_transcript",
    "plugin.stt_error",
    "plugin.stt_connection",
    "plugin.stt_connected",
    "plugin.stt_disconnected",
    "plugin.tts_audio",
    "plugin.tts_synthesis_start",
    "plugin.tts_synthesis_complete",
    "plugin.tts_error",
    "plugin.tts_connection",
    "plugin.tts_connected",
    "plugin.tts_disconnected",
    "plugin.vad_speech_start",
    "plugin.vad_speech_end",
    "plugin.vad_error",
    "plugin.turn_detection.turn_started",
    "plugin.turn_detection.turn_ended",
    "plugin.vlm_inference_start",
    "plugin.vlm_inference_completed",
    "plugin.vlm_error",
    "plugin.video_processor.detection",
    "plugin.openai.stream",
    "plugin.xai.chunk",
    "plugin.qwen.llm_error",
];

/// Runs `agentbus <args>` and returns its stdout; fails the test on a non-zero exit.
fn agentbus(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(args)
        .output()
        .expect("run agentbus");
    assert!(
        output.status.success(),
        "agentbus {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

#[test]
fn list_json_covers_the_catalogue_with_fields_and_examples() {
    let listing: Value =
        serde_json::from_str(&agentbus(&["events", "list", "--json"])).expect("valid JSON");
    let entries = listing.as_array().expect("a JSON array");
    let registry = Registry::catalogue();
    assert_eq!(entries.len(), registry.len());

    let mut types = HashSet::new();
    for entry in entries {
        let event_type = entry["type"].as_str().expect("type is a string");
        assert!(
            types.insert(event_type.to_owned()),
            "`{event_type}` listed twice"
        );
        let info = registry
            .get(event_type)
            .expect("listed types are registered");
        assert_eq!(entry["name"], info.name);
        assert_eq!(entry["domain"], info.domain.as_str());

        let fields = entry["fields"].as_array().expect("fields array");
        let example = &entry["example"];
        assert_eq!(example["type"], event_type);
        for field in fields {
            let name = field["name"].as_str().expect("field name");
            assert!(
                field["json_type"].is_string(),
                "{event_type}.{name} json_type"
            );
            assert!(
                field["required"].is_boolean(),
                "{event_type}.{name} required"
            );
            // "every field filled"
            assert!(
                example.get(name).is_some_and(|v| !v.is_null()),
                "example of {event_type} leaves `{name}` empty"
            );
        }
        for required in ["type", "event_id", "timestamp"] {
            assert!(
                fields
                    .iter()
                    .any(|f| f["name"] == required && f["required"] == true),
                "{event_type} does not list `{required}` as required"
            );
        }
        // The example is a valid instance of its type in the wire format.
        let bytes = serde_json::to_vec(example).expect("serialise");
        let decoded = registry
            .decode(&bytes)
            .unwrap_or_else(|e| panic!("example of {event_type} does not decode: {e}"));
        assert!(
            decoded.dyn_eq(&*info.example()),
            "example of {event_type} differs"
        );
    }
    for wanted in VISION_AGENTS_TYPES {
        assert!(
            types.contains(*wanted),
            "`{wanted}` missing from events list --json"
        );
    }
}

#[test]
fn list_prints_a_table_grouped_by_domain() {
    let table = agentbus(&["events", "list"]);
    let mut lines = table.lines();
    let header = lines.next().expect("a header");
    for column in ["TYPE", "RUST NAME", "DOMAIN", "FIELDS"] {
        assert!(header.contains(column), "header lacks {column}: {header}");
    }
    let rows: Vec<Vec<&str>> = lines
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|cells| cells.len() == 4)
        .collect();
    let registry = Registry::catalogue();
    assert_eq!(rows.len(), registry.len());
    for row in &rows {
        let info = registry.get(row[0]).expect("a registered type");
        assert_eq!(row[1], info.name);
        assert_eq!(row[2], info.domain.as_str());
        let fields: usize = row[3].parse().expect("field count");
        assert_eq!(fields, agentbus_events::schema::fields(info).len());
    }
    // Grouped: once a domain's rows end, the domain does not come back.
    let mut finished = HashSet::new();
    let mut current = "";
    for row in &rows {
        if row[2] != current {
            assert!(finished.insert(current), "domain {current} split");
            assert!(
                !finished.contains(row[2]),
                "domain {} appears twice",
                row[2]
            );
            current = row[2];
        }
    }
    for wanted in VISION_AGENTS_TYPES {
        assert!(
            rows.iter().any(|row| row[0] == *wanted),
            "`{wanted}` missing from the table"
        );
    }
}

#[test]
fn schema_is_a_json_schema_of_every_type() {
    let schema: Value = serde_json::from_str(&agentbus(&["events", "schema"])).expect("valid JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let one_of = schema["oneOf"].as_array().expect("oneOf array");
    let registry = Registry::catalogue();
    assert_eq!(one_of.len(), registry.len());
    let tags: HashSet<&str> = one_of
        .iter()
        .filter_map(|branch| branch["properties"]["type"]["const"].as_str())
        .collect();
    for wanted in VISION_AGENTS_TYPES {
        assert!(
            tags.contains(*wanted),
            "schema has no branch for `{wanted}`"
        );
    }
    assert!(schema["$defs"].is_object());
}

#[test]
fn an_unknown_subcommand_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(["events", "lst"])
        .output()
        .expect("run agentbus");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("lst"));
}
