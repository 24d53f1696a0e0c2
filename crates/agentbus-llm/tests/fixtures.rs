//! Every recorded provider stream in `tests/fixtures/` decodes to its `expected` result,
//! whole and split at random places.

mod common;

use agentbus_llm::{StreamDecoder, StreamEvent};
use common::{assert_one_terminal_last, fixtures, summarize};
use proptest::prelude::*;

fn decode_chunks(fixture: &common::Fixture, cuts: &[usize]) -> Vec<StreamEvent> {
    let mut decoder = StreamDecoder::new(fixture.api, None);
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        let cut = cut.min(fixture.body.len());
        if cut > start {
            decoder.feed(&fixture.body[start..cut], &mut out);
            start = cut;
        }
    }
    decoder.feed(&fixture.body[start..], &mut out);
    decoder.end(&mut out);
    out
}

#[test]
fn every_fixture_decodes_to_its_expected_result() {
    let all = fixtures();
    assert!(all.len() >= 40, "fixtures missing: {}", all.len());
    let mut failures = Vec::new();
    for fixture in &all {
        let events = StreamDecoder::decode_body(fixture.api, &fixture.body, None);
        assert_one_terminal_last(&fixture.name, &events);
        let got = summarize(&events);
        if got != fixture.expected {
            failures.push(format!(
                "{}:\n  got      {}\n  expected {}",
                fixture.name, got, fixture.expected
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn byte_by_byte_feeding_gives_the_same_events() {
    for fixture in fixtures() {
        let whole = StreamDecoder::decode_body(fixture.api, &fixture.body, None);
        let cuts: Vec<usize> = (1..fixture.body.len()).collect();
        assert_eq!(decode_chunks(&fixture, &cuts), whole, "{}", fixture.name);
    }
}

#[test]
fn tool_call_deltas_rebuild_the_arguments() {
    for fixture in fixtures() {
        let events = StreamDecoder::decode_body(fixture.api, &fixture.body, None);
        let mut by_index: std::collections::BTreeMap<u32, String> = Default::default();
        for event in &events {
            if let StreamEvent::ToolCallDelta(delta) = event {
                by_index
                    .entry(delta.index)
                    .or_default()
                    .push_str(&delta.arguments_delta);
            }
        }
        let calls: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCall(call) => Some(call),
                _ => None,
            })
            .collect();
        assert_eq!(calls.len(), by_index.len(), "{}", fixture.name);
        for (call, raw) in calls.iter().zip(by_index.values()) {
            let reparsed = agentbus_llm::ToolCallRequest::from(*call);
            let expected: serde_json::Value = if raw.trim().is_empty() {
                serde_json::json!({})
            } else {
                serde_json::from_str(raw).unwrap_or(serde_json::Value::Null)
            };
            assert_eq!(reparsed.arguments, expected, "{}", fixture.name);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_splits_give_the_same_result(
        which in 0usize..1000,
        mut cuts in proptest::collection::vec(0usize..40_000, 0..40),
    ) {
        let all = fixtures();
        let fixture = &all[which % all.len()];
        cuts.sort_unstable();
        let whole = StreamDecoder::decode_body(fixture.api, &fixture.body, None);
        let split = decode_chunks(fixture, &cuts);
        prop_assert_eq!(split, whole, "{}", fixture.name);
    }
}
