//! `agentbus-bench bus` runs with tiny sizes and prints the JSON it promises.

use std::process::Command;

/// Runs `agentbus-bench bus` once with `args`, no Python, and returns its stdout.
fn bench_bus(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_agentbus-bench"))
        .arg("bus")
        .args(args)
        .args(["--reps", "1", "--no-python"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn bench_bus_json_has_every_figure_for_us_and_the_baseline() {
    let out = bench_bus(&[
        "--json",
        "--events",
        "2000",
        "--paced-events",
        "50",
        "--pending",
        "500",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    for side in ["agentbus", "mpsc_baseline"] {
        for n in ["1", "10", "100"] {
            let calls = report[side]["calls_per_s"][n].as_f64().unwrap();
            assert!(calls > 0.0, "{side} N={n}: {calls}");
        }
        let lat = &report[side]["latency_us"];
        let (p50, p99, max) = (
            lat["p50"].as_f64().unwrap(),
            lat["p99"].as_f64().unwrap(),
            lat["max"].as_f64().unwrap(),
        );
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{side}: {lat}");
        let bytes = report[side]["bytes_per_pending"].as_f64().unwrap();
        // At least the event (it is queued) and not absurd.
        assert!((100.0..10_000.0).contains(&bytes), "{side}: {bytes}");
    }
    let spinning = &report["agentbus"]["latency_us_spinning"];
    let (p50, p99) = (
        spinning["p50"].as_f64().unwrap(),
        spinning["p99"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99, "spinning: {spinning}");
    assert!(report["targets"]["p99_at_most_50us_spinning"].is_boolean());
    assert!(
        report["ratio_vs_mpsc"]["calls_per_s"]["1"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(report["vision_agents"]["available"], false);
    assert!(report["targets"].is_object());
}

#[test]
fn bench_bus_prints_a_table_by_default() {
    let out = bench_bus(&[
        "--events",
        "1000",
        "--paced-events",
        "20",
        "--pending",
        "100",
    ]);
    let text = String::from_utf8(out).unwrap();
    for row in [
        "calls_per_s N=1",
        "calls_per_s N=100",
        "latency_us p99",
        "latency_us spinning",
        "bytes_per_pending",
        "tokio mpsc",
    ] {
        assert!(text.contains(row), "missing {row}:\n{text}");
    }
}

#[test]
fn no_default_names_the_directory_the_binary_was_built_in() {
    for bench in ["bus", "agent", "store", "sse", "local", "telemetry"] {
        let out = Command::new(env!("CARGO_BIN_EXE_agentbus-bench"))
            .args([bench, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{bench} --help");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("Examples:"),
            "{bench} --help has examples:\n{help}"
        );
        let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .and_then(|p| p.parent())
            .unwrap()
            .display()
            .to_string();
        assert!(
            !help.contains(&workspace),
            "bench {bench} --help names the build directory {workspace}:\n{help}"
        );
    }
}
