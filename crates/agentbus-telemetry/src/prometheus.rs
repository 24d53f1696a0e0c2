//! The Prometheus text exposition format (version 0.0.4) of a [`MetricsSnapshot`].
//!
//! Naming follows the OpenTelemetry-to-Prometheus rules, simplified: every character that
//! is not `[a-zA-Z0-9_:]` becomes `_` (`gen_ai.client.token.usage` →
//! `gen_ai_client_token_usage`); the unit is appended as a suffix (`s` → `_seconds`,
//! `By` → `_bytes`, `ms` → `_ms`) unless the name already ends with it, and units in
//! braces (`{token}`) add nothing; monotonic counters end in `_total`. So
//! `llm.latency.ms` is `llm_latency_ms`, `gen_ai.client.operation.duration` is
//! `gen_ai_client_operation_duration_seconds`, `llm.errors` is `llm_errors_total`.
//! Attribute keys are sanitised the same way (`gen_ai.token.type` → `gen_ai_token_type`).

use std::fmt::{self, Write};

use crate::snapshot::{HistogramPoint, Labels, MetricsSnapshot, Points, ScalarPoint};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The Prometheus metric name of an OpenTelemetry instrument (without `_total`, `_bucket`,
/// ... suffixes).
pub fn metric_name(name: &str, unit: &str) -> String {
    let mut out = sanitize(name);
    let suffix = match unit {
        "s" => Some("seconds"),
        "ms" => Some("ms"),
        "By" => Some("bytes"),
        "" => None,
        u if u.starts_with('{') => None,
        other => Some(other),
    };
    if let Some(suffix) = suffix {
        let suffix = sanitize(suffix);
        if !out.ends_with(&format!("_{suffix}")) {
            out.push('_');
            out.push_str(&suffix);
        }
    }
    out
}

/// Replaces every character outside `[a-zA-Z0-9_:]` with `_`, and prefixes `_` to a name
/// starting with a digit.
pub fn sanitize(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        }
    }));
    out
}

/// A float as Prometheus writes it: `+Inf`, `-Inf`, `NaN`, or the shortest decimal.
pub struct PromFloat(pub f64);

impl fmt::Display for PromFloat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v.is_nan() {
            f.write_str("NaN")
        } else if v == f64::INFINITY {
            f.write_str("+Inf")
        } else if v == f64::NEG_INFINITY {
            f.write_str("-Inf")
        } else {
            write!(f, "{v}")
        }
    }
}

/// Renders the whole snapshot in the text exposition format.
pub fn render(snapshot: &MetricsSnapshot) -> String {
    let mut out = String::with_capacity(4096);
    for family in &snapshot.families {
        let base = metric_name(&family.name, &family.unit);
        let (name, kind) = match &family.points {
            Points::Counter(_) => (format!("{base}_total"), "counter"),
            Points::Gauge(_) => (base.clone(), "gauge"),
            Points::Histogram(_) => (base.clone(), "histogram"),
        };
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.description));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        match &family.points {
            Points::Counter(points) | Points::Gauge(points) => {
                for ScalarPoint { labels, value } in points {
                    let _ = writeln!(out, "{name}{} {value}", LabelSet(labels, None));
                }
            }
            Points::Histogram(points) => {
                for point in points {
                    render_histogram(&mut out, &name, point);
                }
            }
        }
    }
    out
}

fn render_histogram(out: &mut String, name: &str, point: &HistogramPoint) {
    let mut cumulative = 0u64;
    for (i, count) in point.bucket_counts.iter().enumerate() {
        cumulative += count;
        let le = point.bounds.get(i).copied().unwrap_or(f64::INFINITY);
        let le = PromFloat(le).to_string();
        let _ = writeln!(
            out,
            "{name}_bucket{} {cumulative}",
            LabelSet(&point.labels, Some(&le))
        );
    }
    let labels = LabelSet(&point.labels, None);
    let _ = writeln!(out, "{name}_sum{labels} {}", point.sum);
    let _ = writeln!(out, "{name}_count{labels} {}", point.count);
}

/// `{k="v",...}` with an optional trailing `le`, or nothing when empty.
struct LabelSet<'a>(&'a Labels, Option<&'a str>);

impl fmt::Display for LabelSet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() && self.1.is_none() {
            return Ok(());
        }
        f.write_char('{')?;
        let mut first = true;
        for (key, value) in self.0 {
            if !first {
                f.write_char(',')?;
            }
            first = false;
            write!(f, "{}=\"{}\"", sanitize(key), escape_label(value))?;
        }
        if let Some(le) = self.1 {
            if !first {
                f.write_char(',')?;
            }
            write!(f, "le=\"{le}\"")?;
        }
        f.write_char('}')
    }
}

fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{MetricFamily, Number};

    #[test]
    fn names_follow_the_unit_rules() {
        assert_eq!(metric_name("llm.latency.ms", "ms"), "llm_latency_ms");
        assert_eq!(
            metric_name("gen_ai.client.operation.duration", "s"),
            "gen_ai_client_operation_duration_seconds"
        );
        assert_eq!(
            metric_name("gen_ai.client.token.usage", "{token}"),
            "gen_ai_client_token_usage"
        );
        assert_eq!(
            metric_name("realtime.audio.input.bytes", "By"),
            "realtime_audio_input_bytes"
        );
        assert_eq!(metric_name("llm.errors", ""), "llm_errors");
        assert_eq!(sanitize("9lives-x"), "_9lives_x");
    }

    #[test]
    fn renders_counters_and_cumulative_histograms() {
        let snapshot = MetricsSnapshot {
            families: vec![
                MetricFamily {
                    name: "llm.errors".into(),
                    unit: String::new(),
                    description: "LLM errors".into(),
                    points: Points::Counter(vec![ScalarPoint {
                        labels: vec![("error_type".into(), "rate \"limit\"".into())],
                        value: Number::U64(2),
                    }]),
                },
                MetricFamily {
                    name: "gen_ai.client.operation.duration".into(),
                    unit: "s".into(),
                    description: "GenAI operation duration".into(),
                    points: Points::Histogram(vec![HistogramPoint {
                        labels: vec![("gen_ai.operation.name".into(), "chat".into())],
                        count: 3,
                        sum: Number::F64(1.5),
                        bounds: vec![0.01, 1.0],
                        bucket_counts: vec![1, 1, 1],
                    }]),
                },
            ],
        };
        let text = render(&snapshot);
        let expected = "\
# HELP llm_errors_total LLM errors
# TYPE llm_errors_total counter
llm_errors_total{error_type=\"rate \\\"limit\\\"\"} 2
# HELP gen_ai_client_operation_duration_seconds GenAI operation duration
# TYPE gen_ai_client_operation_duration_seconds histogram
gen_ai_client_operation_duration_seconds_bucket{gen_ai_operation_name=\"chat\",le=\"0.01\"} 1
gen_ai_client_operation_duration_seconds_bucket{gen_ai_operation_name=\"chat\",le=\"1\"} 2
gen_ai_client_operation_duration_seconds_bucket{gen_ai_operation_name=\"chat\",le=\"+Inf\"} 3
gen_ai_client_operation_duration_seconds_sum{gen_ai_operation_name=\"chat\"} 1.5
gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name=\"chat\"} 3
";
        assert_eq!(text, expected);
    }
}
