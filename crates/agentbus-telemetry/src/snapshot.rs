//! A plain, owned copy of the metrics one collection of the SDK's reader produced: what the
//! Prometheus exposition renders and what tests assert on.

use opentelemetry::Value;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};

/// Every metric family of one collection, sorted by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// The families, sorted by name.
    pub families: Vec<MetricFamily>,
}

/// One instrument's data.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricFamily {
    /// The OpenTelemetry instrument name (`gen_ai.client.token.usage`).
    pub name: String,
    /// The UCUM unit.
    pub unit: String,
    /// The instrument's description.
    pub description: String,
    /// The data points.
    pub points: Points,
}

/// The data points of a family, by kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Points {
    /// A monotonic sum.
    Counter(Vec<ScalarPoint>),
    /// A gauge or a non-monotonic sum.
    Gauge(Vec<ScalarPoint>),
    /// An explicit-bucket histogram.
    Histogram(Vec<HistogramPoint>),
}

/// Attribute key/value pairs, sorted by key.
pub type Labels = Vec<(String, String)>;

/// A counter or gauge value for one attribute set.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarPoint {
    /// The attributes, sorted by key.
    pub labels: Labels,
    /// The value.
    pub value: Number,
}

/// A number as the instrument recorded it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    /// An unsigned integer instrument.
    U64(u64),
    /// A signed integer instrument.
    I64(i64),
    /// A floating-point instrument.
    F64(f64),
}

impl Number {
    /// The value as `f64`.
    pub fn as_f64(self) -> f64 {
        match self {
            Number::U64(v) => v as f64,
            Number::I64(v) => v as f64,
            Number::F64(v) => v,
        }
    }
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Number::U64(v) => write!(f, "{v}"),
            Number::I64(v) => write!(f, "{v}"),
            Number::F64(v) => write!(f, "{}", crate::prometheus::PromFloat(*v)),
        }
    }
}

/// A histogram for one attribute set.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramPoint {
    /// The attributes, sorted by key.
    pub labels: Labels,
    /// Number of measurements.
    pub count: u64,
    /// Sum of the measurements.
    pub sum: Number,
    /// Upper bounds of the finite buckets (the last bucket, to +∞, is implied).
    pub bounds: Vec<f64>,
    /// Count per bucket (not cumulative), `bounds.len() + 1` entries.
    pub bucket_counts: Vec<u64>,
}

impl HistogramPoint {
    /// How many measurements fell in the bucket whose upper bound is `le`
    /// (`f64::INFINITY` for the last one); `None` if no bucket has that bound.
    pub fn bucket(&self, le: f64) -> Option<u64> {
        if le.is_infinite() {
            return self.bucket_counts.last().copied();
        }
        let index = self.bounds.iter().position(|b| *b == le)?;
        self.bucket_counts.get(index).copied()
    }
}

impl MetricsSnapshot {
    /// Copies the data out of one SDK collection.
    pub fn from_resource_metrics(rm: &ResourceMetrics) -> Self {
        let mut families = Vec::new();
        for scope in rm.scope_metrics() {
            for metric in scope.metrics() {
                let points = match metric.data() {
                    AggregatedMetrics::F64(data) => convert(data, Number::F64),
                    AggregatedMetrics::U64(data) => convert(data, Number::U64),
                    AggregatedMetrics::I64(data) => convert(data, Number::I64),
                };
                let Some(points) = points else { continue };
                families.push(MetricFamily {
                    name: metric.name().to_owned(),
                    unit: metric.unit().to_owned(),
                    description: metric.description().to_owned(),
                    points,
                });
            }
        }
        families.sort_by(|a, b| a.name.cmp(&b.name));
        Self { families }
    }

    /// The family named `name`.
    pub fn family(&self, name: &str) -> Option<&MetricFamily> {
        self.families.iter().find(|f| f.name == name)
    }

    /// The counter value of `name` for exactly the attribute set `labels` (in any order).
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Option<Number> {
        match &self.family(name)?.points {
            Points::Counter(points) | Points::Gauge(points) => points
                .iter()
                .find(|p| same_labels(&p.labels, labels))
                .map(|p| p.value),
            Points::Histogram(_) => None,
        }
    }

    /// The histogram of `name` for exactly the attribute set `labels` (in any order).
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Option<&HistogramPoint> {
        match &self.family(name)?.points {
            Points::Histogram(points) => points.iter().find(|p| same_labels(&p.labels, labels)),
            _ => None,
        }
    }

    /// All attribute sets recorded for `name`.
    pub fn label_sets(&self, name: &str) -> Vec<&Labels> {
        match self.family(name).map(|f| &f.points) {
            Some(Points::Counter(points) | Points::Gauge(points)) => {
                points.iter().map(|p| &p.labels).collect()
            }
            Some(Points::Histogram(points)) => points.iter().map(|p| &p.labels).collect(),
            None => Vec::new(),
        }
    }
}

fn same_labels(have: &Labels, want: &[(&str, &str)]) -> bool {
    have.len() == want.len()
        && want
            .iter()
            .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
}

fn labels_of<'a>(attributes: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> Labels {
    let mut labels: Labels = attributes
        .map(|kv| {
            let value = match &kv.value {
                Value::String(s) => s.as_str().to_owned(),
                other => other.to_string(),
            };
            (kv.key.as_str().to_owned(), value)
        })
        .collect();
    labels.sort();
    labels
}

fn convert<T: Copy>(data: &MetricData<T>, number: fn(T) -> Number) -> Option<Points> {
    let sort = |points: &mut Vec<ScalarPoint>| points.sort_by(|a, b| a.labels.cmp(&b.labels));
    match data {
        MetricData::Sum(sum) => {
            let mut points: Vec<ScalarPoint> = sum
                .data_points()
                .map(|p| ScalarPoint {
                    labels: labels_of(p.attributes()),
                    value: number(p.value()),
                })
                .collect();
            sort(&mut points);
            Some(if sum.is_monotonic() {
                Points::Counter(points)
            } else {
                Points::Gauge(points)
            })
        }
        MetricData::Gauge(gauge) => {
            let mut points: Vec<ScalarPoint> = gauge
                .data_points()
                .map(|p| ScalarPoint {
                    labels: labels_of(p.attributes()),
                    value: number(p.value()),
                })
                .collect();
            sort(&mut points);
            Some(Points::Gauge(points))
        }
        MetricData::Histogram(histogram) => {
            let mut points: Vec<HistogramPoint> = histogram
                .data_points()
                .map(|p| HistogramPoint {
                    labels: labels_of(p.attributes()),
                    count: p.count(),
                    sum: number(p.sum()),
                    bounds: p.bounds().collect(),
                    bucket_counts: p.bucket_counts().collect(),
                })
                .collect();
            points.sort_by(|a, b| a.labels.cmp(&b.labels));
            Some(Points::Histogram(points))
        }
        // The collector configures no exponential histograms.
        MetricData::ExponentialHistogram(_) => None,
    }
}
