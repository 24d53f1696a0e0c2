//! The catalogue as a whole: every type round-trips through the wire format, every
//! `type` string is unique, and the Vision Agents domains hold exactly the classes of
//! `catalogue.md`.

use std::collections::{BTreeMap, HashSet};

use agentbus_events::{
    Domain, DynEvent, ErrorFields, ErrorInfo, Event, Registry, catalogue, schema,
};

/// The Vision Agents tables of `catalogue.md`: domain -> the `type` strings it lists.
/// Copied from the table (not from the code) on purpose: this is what the code is checked
/// against.
fn vision_agents_catalogue() -> BTreeMap<Domain, Vec<&'static str>> {
    BTreeMap::from([
        (Domain::Base, vec!["base.exception"]),
        (
            Domain::Agent,
            vec![
                "agent.user_transcript",
                "agent.user_turn_started",
                "agent.user_turn_ended",
                "agent.agent_turn_started",
                "agent.agent_turn_ended",
                "agent.joined_call",
                "agent.left_call",
                "agent.finish",
            ],
        ),
        (
            Domain::Edge,
            vec![
                "plugin.edge.participant_joined",
                "plugin.edge.participant_left",
                "plugin.edge.call_ended",
                "plugin.edge.track_added",
                "plugin.edge.track_removed",
                "plugin.edge.audio_received",
            ],
        ),
        (
            Domain::Call,
            vec![
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
            ],
        ),
        (
            Domain::Llm,
            vec![
                "plugin.llm_request_started",
                "plugin.llm_response_chunk",
                "plugin.llm_response_completed",
                "plugin.llm_response_final",
                "plugin.llm_error",
            ],
        ),
        (
            Domain::Tool,
            vec!["plugin.llm.tool.start", "plugin.llm.tool.end"],
        ),
        (
            Domain::Realtime,
            vec![
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
            ],
        ),
        (
            Domain::Stt,
            vec![
                "plugin.stt_transcript",
                "plugin.stt_partial_transcript",
                "plugin.stt_error",
                "plugin.stt_connection",
                "plugin.stt_connected",
                "plugin.stt_disconnected",
            ],
        ),
        (
            Domain::Tts,
            vec![
                "plugin.tts_audio",
                "plugin.tts_synthesis_start",
                "plugin.tts_synthesis_complete",
                "plugin.tts_error",
                "plugin.tts_connection",
                "plugin.tts_connected",
                "plugin.tts_disconnected",
            ],
        ),
        (
            Domain::Vad,
            vec![
                "plugin.vad_speech_start",
                "plugin.vad_speech_end",
                "plugin.vad_error",
            ],
        ),
        (
            Domain::Turn,
            vec![
                "plugin.turn_detection.turn_started",
                "plugin.turn_detection.turn_ended",
            ],
        ),
        (
            Domain::Vlm,
            vec![
                "plugin.vlm_inference_start",
                "plugin.vlm_inference_completed",
                "plugin.vlm_error",
            ],
        ),
        (Domain::Video, vec!["plugin.video_processor.detection"]),
        (
            Domain::Plugin,
            vec![
                "plugin.openai.stream",
                "plugin.xai.chunk",
                "plugin.qwen.llm_error",
            ],
        ),
    ])
}

#[test]
fn every_type_string_is_unique_and_registers() {
    let all = catalogue::all();
    let mut seen = HashSet::new();
    for info in &all {
        assert!(
            seen.insert(info.event_type),
            "type string `{}` is used twice (second time by {})",
            info.event_type,
            info.name
        );
    }
    let mut names = HashSet::new();
    for info in &all {
        assert!(
            names.insert(info.name),
            "Rust name {} listed twice",
            info.name
        );
    }
    // Registration refuses malformed strings; every catalogue type must get in.
    let mut registry = Registry::new();
    for info in &all {
        registry
            .insert(*info)
            .unwrap_or_else(|e| panic!("{} does not register: {e}", info.name));
    }
    assert_eq!(registry.len(), all.len());
    assert_eq!(Registry::catalogue().len(), all.len());
}

#[test]
fn vision_agents_domains_hold_exactly_the_catalogue_md_classes() {
    let expected = vision_agents_catalogue();
    let counts: [(Domain, usize); 14] = [
        (Domain::Base, 1),
        (Domain::Agent, 8),
        (Domain::Edge, 6),
        (Domain::Call, 15),
        (Domain::Llm, 5),
        (Domain::Tool, 2),
        (Domain::Realtime, 10),
        (Domain::Stt, 6),
        (Domain::Tts, 7),
        (Domain::Vad, 3),
        (Domain::Turn, 2),
        (Domain::Vlm, 3),
        (Domain::Video, 1),
        (Domain::Plugin, 3),
    ];
    let all = catalogue::all();
    for (domain, count) in counts {
        let mut actual: Vec<&str> = all
            .iter()
            .filter(|info| info.domain == domain)
            .map(|info| info.event_type)
            .collect();
        assert_eq!(
            actual.len(),
            count,
            "domain {domain}: {actual:?} (catalogue.md lists {count})"
        );
        let mut wanted = expected[&domain].clone();
        actual.sort_unstable();
        wanted.sort_unstable();
        assert_eq!(
            actual, wanted,
            "domain {domain}: type strings differ from catalogue.md"
        );
    }
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    assert_eq!(
        total, 72,
        "catalogue.md's Vision Agents tables list 72 classes"
    );
}

#[test]
fn base_kind_follows_the_type_string() {
    // `plugin.*` events carry the plugin fields, `agent.*`/`call.*`/`base.*` do not.
    for info in catalogue::all() {
        let fields: Vec<String> = schema::fields(&info).into_iter().map(|f| f.name).collect();
        let has_plugin_fields = fields.iter().any(|f| f == "plugin_name")
            && fields.iter().any(|f| f == "plugin_version");
        if info.event_type.starts_with("plugin.") {
            assert!(
                has_plugin_fields,
                "{} lacks plugin_name/plugin_version",
                info.name
            );
        }
        for prefix in ["agent.", "call.", "base."] {
            if info.event_type.starts_with(prefix) {
                assert!(
                    !has_plugin_fields,
                    "{} should not be a plugin event",
                    info.name
                );
            }
        }
    }
}

/// Encodes `event`, decodes it through the registry and checks it comes back equal.
fn assert_round_trip(registry: &Registry, event: &dyn DynEvent, what: &str) {
    let text = event
        .to_wire_string()
        .unwrap_or_else(|e| panic!("{what} {}: encode: {e}", event.type_name()));
    let back = registry
        .decode(text.as_bytes())
        .unwrap_or_else(|e| panic!("{what} {}: decode of {text}: {e}", event.type_name()));
    assert_eq!(back.event_type(), event.event_type());
    assert!(
        back.dyn_eq(event),
        "{what} {} changed in a round trip:\n  sent {event:?}\n  got  {back:?}\n  wire {text}",
        event.type_name()
    );
    // The decoded event writes the same wire object.
    assert_eq!(
        back.to_wire_value().expect("re-encode"),
        event.to_wire_value().expect("encode")
    );
}

#[test]
fn every_type_round_trips_with_every_field_and_with_none() {
    let registry = Registry::catalogue();
    assert!(
        registry.len() >= 73,
        "catalogue has only {} types",
        registry.len()
    );
    for info in registry.iter() {
        assert_round_trip(&registry, &*info.example(), "example");
        assert_round_trip(&registry, &*info.minimal(), "minimal");
    }
}

#[test]
fn examples_fill_every_field_and_minimals_leave_optionals_out() {
    for info in Registry::catalogue().iter() {
        let fields = schema::fields(info);
        let example = info.example().to_wire_value().expect("encode example");
        let minimal = info.minimal().to_wire_value().expect("encode minimal");
        for field in &fields {
            let value = example.get(&field.name);
            assert!(
                value.is_some_and(|v| !v.is_null()),
                "example of {} leaves `{}` empty: {example}",
                info.name,
                field.name
            );
            if field.required {
                assert!(
                    minimal.get(&field.name).is_some(),
                    "minimal {} lacks required `{}`",
                    info.name,
                    field.name
                );
            }
        }
        // Every key written is a field the schema lists.
        for key in example.as_object().expect("object").keys() {
            assert!(
                fields.iter().any(|f| &f.name == key),
                "{} writes `{key}`, which its schema does not list",
                info.name
            );
        }
        // Optional base fields are left out of the minimal form.
        for base_optional in ["seq", "session_id", "participant", "user_metadata"] {
            assert!(
                minimal.get(base_optional).is_none(),
                "minimal {} has {base_optional}",
                info.name
            );
        }
    }
}

#[test]
fn producers_may_omit_defaulted_fields() {
    use agentbus_events::llm::LLMErrorEvent;
    use agentbus_events::realtime::RealtimeDisconnectedEvent;
    use agentbus_events::tool::ToolEndEvent;
    use agentbus_events::wire::decode_as;

    let head =
        r#""event_id":"0193e000-0000-4000-8000-000000000001","timestamp":"2026-01-01T00:00:00Z""#;
    // `is_recoverable: bool = True` in the seed: absent means true.
    let error: LLMErrorEvent =
        decode_as(format!(r#"{{"type":"plugin.llm_error",{head}}}"#).as_bytes()).expect("decode");
    assert!(error.is_recoverable);
    assert_eq!(error.error_message(), "Unknown error");
    // `success: bool = True`.
    let end: ToolEndEvent =
        decode_as(format!(r#"{{"type":"plugin.llm.tool.end",{head}}}"#).as_bytes())
            .expect("decode");
    assert!(end.success);
    assert_eq!(end.tool_name, "");
    // Seed 001 spells `was_clean` as `clean`: both are accepted.
    let old: RealtimeDisconnectedEvent = decode_as(
        format!(r#"{{"type":"plugin.realtime_disconnected",{head},"clean":false}}"#).as_bytes(),
    )
    .expect("decode");
    assert!(!old.was_clean);
    let new: RealtimeDisconnectedEvent = decode_as(
        format!(r#"{{"type":"plugin.realtime_disconnected",{head},"was_clean":false}}"#).as_bytes(),
    )
    .expect("decode");
    assert_eq!(old, new);
}

#[test]
fn error_events_explain_themselves() {
    use agentbus_events::llm::LLMErrorEvent;
    use agentbus_events::plugin::QwenLLMErrorEvent;
    use agentbus_events::stt::STTErrorEvent;

    let event = LLMErrorEvent {
        failure: ErrorFields::new(ErrorInfo::new("timeout", "upstream timed out")),
        ..Default::default()
    };
    assert_eq!(event.error_message(), "upstream timed out");
    let coded = STTErrorEvent {
        failure: ErrorFields {
            error_code: Some("1011".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(coded.error_message(), "error code 1011");
    assert_eq!(
        QwenLLMErrorEvent::default().error_message(),
        "Unknown error"
    );
    assert_eq!(<QwenLLMErrorEvent as Event>::TYPE, "plugin.qwen.llm_error");
}

#[test]
fn the_two_call_ended_events_keep_their_own_strings() {
    use agentbus_events::call::CallSessionCallEndedEvent;
    use agentbus_events::edge::EdgeCallEndedEvent;
    assert_eq!(
        <EdgeCallEndedEvent as Event>::TYPE,
        "plugin.edge.call_ended"
    );
    assert_eq!(<CallSessionCallEndedEvent as Event>::TYPE, "call.ended");
    assert_eq!(<EdgeCallEndedEvent as Event>::DOMAIN, Domain::Edge);
    assert_eq!(<CallSessionCallEndedEvent as Event>::DOMAIN, Domain::Call);
}
