//! `agentbus-bench store`, `telemetry` and `local` run with tiny sizes and print the
//! figures they promise, each beside its baseline.

use std::process::Command;

use agentbus_test_support::services::model_ready;
use serde_json::Value;

fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_agentbus-bench"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn bench_store_prints_append_read_and_listing_beside_their_baselines() {
    let json = bench(&[
        "store",
        "--events",
        "2000",
        "--reps",
        "1",
        "--no-postgres",
        "--listing-events",
        "20000",
        "--listing-sessions",
        "20",
        "--json",
    ]);
    let sqlite = &json[0];
    assert_eq!(sqlite["backend"], "sqlite");
    for key in [
        "append_events_per_s",
        "baseline_plain_insert_rows_per_s",
        "read_decode_events_per_s",
        "read_rows_per_s",
    ] {
        assert!(sqlite[key].as_f64().unwrap() > 0.0, "{key}: {sqlite}");
    }
    let listing = &json[1];
    assert_eq!(listing["case"], "sessions", "{json}");
    assert_eq!(listing["sessions"], 20, "{listing}");
    for key in ["stored_totals_ms", "baseline_summed_from_events_ms"] {
        assert!(listing[key].as_f64().unwrap() > 0.0, "{key}: {listing}");
    }
}

#[test]
fn bench_telemetry_runs_small_and_reports_both_measures() {
    let report = bench(&["telemetry", "--events", "3000", "--reps", "1", "--json"]);
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for workload in results {
        let configs = workload["configs"].as_array().unwrap();
        assert_eq!(configs.len(), 3);
        // The baseline has no collector: it spends no time recording.
        assert_eq!(configs[0]["collector_ns_per_event"], 0.0);
        for config in &configs[1..] {
            assert!(
                config["collector_ns_per_event"].as_f64().unwrap() > 0.0,
                "{config}"
            );
            assert!(config["events_per_s"].as_f64().unwrap() > 0.0);
        }
    }
    assert!(report["pass"].is_boolean());
    // The stricter figure is the larger of the two workloads' collector + OTel costs.
    let largest = results
        .iter()
        .map(|w| w["configs"][2]["cost"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let strict = report["strict_cost"].as_f64().unwrap();
    assert!(strict > 0.0, "{report}");
    assert!((strict - largest).abs() < 0.002, "{strict} vs {largest}");
}

#[test]
fn bench_local_reports_the_embedded_models_figures() {
    if !model_ready() {
        return;
    }
    let report = bench(&[
        "local",
        "--json",
        "--reps",
        "1",
        "--tokens",
        "4",
        "--no-python",
    ]);
    assert_eq!(report["prompt_tokens"], 37);
    let ours = &report["agentbus"];
    for key in ["ttft_ms", "prompt_tok_s", "gen_tok_s", "peak_rss_mb"] {
        assert!(ours[key].as_f64().unwrap() > 0.0, "{key}: {ours}");
    }
    assert_eq!(ours["completion_tokens"], 4.0);
    assert!(report.get("llama_cpp").is_none());
}
