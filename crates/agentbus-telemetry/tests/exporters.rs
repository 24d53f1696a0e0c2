//! The exporters over real HTTP on loopback: the Prometheus endpoint scraped while the bus
//! runs, and OTLP metrics and spans received by a fake collector (agentbus-test-support's server).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use agentbus::EventManager;
use agentbus_telemetry::{Telemetry, TelemetryConfig};
use agentbus_test_support::{FakeServer, Reply};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `GET path` with `Connection: close`; returns the head and the body.
async fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

#[tokio::test]
async fn prometheus_endpoint_exposes_both_sets_while_the_bus_runs() {
    let telemetry = Telemetry::start(TelemetryConfig {
        metrics_addr: Some("127.0.0.1:0".parse().unwrap()),
        ..TelemetryConfig::default()
    })
    .await
    .unwrap();
    let bus = EventManager::new();
    telemetry.attach(&bus).unwrap();
    for event in common::vision_agents_session() {
        bus.send(event).await.unwrap();
    }
    bus.wait(Duration::from_secs(10)).await.unwrap();
    let addr = telemetry.metrics_addr().unwrap();

    let (head, body) = http_get(addr, "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let lines: Vec<&str> = body.lines().collect();
    let has = |line: &str| assert!(lines.contains(&line), "missing line\n  {line}\nin\n{body}");
    has("# TYPE gen_ai_client_token_usage histogram");
    has(
        "gen_ai_client_token_usage_bucket{gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\",gen_ai_response_model=\"gpt-4o\",gen_ai_token_type=\"input\",le=\"256\"} 1",
    );
    has(
        "gen_ai_client_token_usage_bucket{gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\",gen_ai_response_model=\"gpt-4o\",gen_ai_token_type=\"input\",le=\"16384\"} 2",
    );
    has(
        "gen_ai_client_token_usage_sum{gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\",gen_ai_response_model=\"gpt-4o\",gen_ai_token_type=\"input\"} 5100",
    );
    has("# TYPE gen_ai_client_operation_duration_seconds histogram");
    has(
        "gen_ai_client_operation_duration_seconds_count{error_type=\"rate_limit\",gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\",gen_ai_request_model=\"gpt-4o-mini\"} 1",
    );
    has("# TYPE llm_tokens_input_total counter");
    has("llm_tokens_input_total{model=\"gpt-4o\",provider=\"openai\"} 5100");
    has("llm_tool_calls_total{provider=\"agent\",success=\"false\",tool_name=\"search\"} 1");
    has("llm_latency_ms_bucket{model=\"gpt-4o\",provider=\"openai\",le=\"+Inf\"} 2");
    has("llm_latency_ms_sum{model=\"gpt-4o\",provider=\"openai\"} 1500");
    has("realtime_audio_input_bytes_total{provider=\"openai\"} 320");

    // Scraped again after more events: the endpoint serves live values.
    for event in common::vision_agents_session() {
        bus.send(event).await.unwrap();
    }
    bus.wait(Duration::from_secs(10)).await.unwrap();
    let (_, body) = http_get(addr, "/metrics").await;
    assert!(
        body.lines()
            .any(|l| l == "llm_tokens_input_total{model=\"gpt-4o\",provider=\"openai\"} 10200"),
        "{body}"
    );
    let (head, _) = http_get(addr, "/nothing").await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    let summary = telemetry.shutdown().await.unwrap();
    assert_eq!(summary.llm.responses, 4);
    assert!(TcpStream::connect(addr).await.is_err(), "server stopped");
}

#[tokio::test]
async fn metrics_addr_in_use_is_an_error() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = Telemetry::start(TelemetryConfig {
        metrics_addr: Some(taken.local_addr().unwrap()),
        ..TelemetryConfig::default()
    })
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("cannot serve /metrics"),
        "{error}"
    );
}

/// A fake OTLP/HTTP collector: records every POST and answers 200, keeping connections
/// alive.
async fn fake_collector() -> FakeServer {
    FakeServer::builder(Vec::new())
        .otherwise(Reply::body(200, "application/x-protobuf", Vec::new()))
        .keep_alive()
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_exports_metrics_and_spans_parented_with_the_events_ids() {
    let collector = fake_collector().await;
    let addr = collector.addr;
    let telemetry = Telemetry::start(TelemetryConfig {
        otlp_endpoint: Some(format!("http://{addr}/")),
        otlp_interval: Duration::from_secs(3600),
        ..TelemetryConfig::default()
    })
    .await
    .unwrap();
    let bus = EventManager::new();
    telemetry.attach(&bus).unwrap();
    let events = common::react_session();
    let id_of = |i: usize| *events[i].meta().event_id.as_bytes();
    let (run, llm1, tool, llm2) = (id_of(0), id_of(1), id_of(3), id_of(6));
    for event in events.iter().map(|e| e.clone_box()) {
        bus.send(event).await.unwrap();
    }
    bus.wait(Duration::from_secs(10)).await.unwrap();
    telemetry.shutdown().await.unwrap();

    let received: Vec<(String, Vec<u8>)> = collector
        .requests()
        .into_iter()
        .map(|r| (r.path().to_owned(), r.raw_body))
        .collect();
    let mut spans = Vec::new();
    let mut metric_names = Vec::new();
    for (path, body) in &received {
        match path.as_str() {
            "/v1/traces" => {
                let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
                for rs in request.resource_spans {
                    for ss in rs.scope_spans {
                        spans.extend(ss.spans);
                    }
                }
            }
            "/v1/metrics" => {
                let request = ExportMetricsServiceRequest::decode(body.as_slice()).unwrap();
                for rm in request.resource_metrics {
                    for sm in rm.scope_metrics {
                        metric_names.extend(sm.metrics.into_iter().map(|m| m.name));
                    }
                }
            }
            other => panic!("unexpected OTLP path {other}"),
        }
    }
    assert!(
        metric_names
            .iter()
            .any(|n| n == "gen_ai.client.token.usage"),
        "{metric_names:?}"
    );
    assert!(metric_names.iter().any(|n| n == "llm.latency.ms"));

    let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "chat gpt-test",
            "chat gpt-test",
            "execute_tool calculator",
            "invoke_agent"
        ]
    );
    let span_id = |event: [u8; 16]| event[8..].to_vec();
    let agent = spans.iter().find(|s| s.name == "invoke_agent").unwrap();
    assert_eq!(
        agent.trace_id,
        run.to_vec(),
        "trace id is the run's start event id"
    );
    assert_eq!(agent.span_id, span_id(run));
    assert!(agent.parent_span_id.is_empty(), "the run is the root");
    for (child, start) in [
        (&llm1, "chat gpt-test"),
        (&llm2, "chat gpt-test"),
        (&tool, "execute_tool calculator"),
    ] {
        let span = spans
            .iter()
            .find(|s| s.span_id == span_id(*child))
            .unwrap_or_else(|| panic!("no span for {start}"));
        assert_eq!(span.name, start);
        assert_eq!(span.trace_id, run.to_vec());
        assert_eq!(span.parent_span_id, span_id(run));
    }
    // Times are the events' timestamps: the first LLM call ran from 10 ms to 510 ms.
    let first = spans.iter().find(|s| s.span_id == span_id(llm1)).unwrap();
    assert_eq!(
        first.end_time_unix_nano - first.start_time_unix_nano,
        500_000_000
    );
    let attribute = |span: &opentelemetry_proto::tonic::trace::v1::Span, key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone())
            .and_then(|v| v.value)
    };
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    assert_eq!(
        attribute(first, "gen_ai.response.model"),
        Some(Value::StringValue("gpt-test-2026".into()))
    );
    assert_eq!(
        attribute(first, "gen_ai.usage.input_tokens"),
        Some(Value::IntValue(50))
    );
    assert_eq!(
        attribute(first, "agentbus.start_event_id"),
        Some(Value::StringValue(uuid::Uuid::from_bytes(llm1).to_string()))
    );
}
