//! The gateway's Prometheus metrics, served on `/metrics`. Names follow
//! `tributary_gateway_<noun>_<unit>[_total]`. Labels are bounded: `route` is the matched route
//! pattern (not the URL), `status` an HTTP status, `reason` one of [`ErrorReason`]'s labels,
//! `topic` and `stream` only ever a topic or stream the gateway serves.

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::response::ErrorReason;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabel {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabel {
    stream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Counters of one gateway process.
pub struct GatewayMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabel, Histogram>,
    records: Family<TopicLabel, Counter>,
    kinesis_records: Family<StreamLabel, Counter>,
    errors: Family<ReasonLabel, Counter>,
    /// Records handed to the producer and not yet acknowledged.
    pub in_flight_records: Gauge<i64, AtomicI64>,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tributary_gateway");
        let metrics = Self {
            registry: Registry::default(),
            requests: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new([
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0,
                ])
            }),
            records: Family::default(),
            kinesis_records: Family::default(),
            errors: Family::default(),
            in_flight_records: Gauge::default(),
        };
        let m = &metrics;
        registry.register(
            "requests",
            "HTTP requests answered, by route and status",
            m.requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a request's headers to its answer, by route",
            m.duration.clone(),
        );
        registry.register(
            "records",
            "Records written to Kafka, by topic",
            m.records.clone(),
        );
        registry.register(
            "kinesis_records",
            "Records written to Kinesis, by stream",
            m.kinesis_records.clone(),
        );
        registry.register(
            "errors",
            "Refused requests and records not written, by reason",
            m.errors.clone(),
        );
        registry.register(
            "in_flight_records",
            "Records handed to the producer and not yet acknowledged",
            m.in_flight_records.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }
}

impl GatewayMetrics {
    /// Count an answered request.
    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                status,
            })
            .inc();
        self.duration
            .get_or_create(&RouteLabel {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Count `count` records written to `topic`.
    pub fn records(&self, topic: &str, count: u64) {
        if count > 0 {
            self.records
                .get_or_create(&TopicLabel {
                    topic: topic.to_owned(),
                })
                .inc_by(count);
        }
    }

    /// Count `count` records written to the Kinesis stream `stream`.
    pub fn stream_records(&self, stream: &str, count: u64) {
        if count > 0 {
            self.kinesis_records
                .get_or_create(&StreamLabel {
                    stream: stream.to_owned(),
                })
                .inc_by(count);
        }
    }

    /// Count an error.
    pub fn error(&self, reason: ErrorReason) {
        self.errors
            .get_or_create(&ReasonLabel {
                reason: reason.label(),
            })
            .inc();
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        crate::http::render(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_convention() {
        let metrics = GatewayMetrics::default();
        metrics.request("/topics/{topic}", 200, 0.004);
        metrics.records("pin", 3);
        metrics.records("geo", 0);
        metrics.error(ErrorReason::UnknownTopic);
        metrics.in_flight_records.set(7);
        let text = metrics.encode();
        for line in [
            "tributary_gateway_requests_total{route=\"/topics/{topic}\",status=\"200\"} 1",
            "tributary_gateway_request_duration_seconds_bucket{le=\"0.005\",route=\"/topics/{topic}\"} 1",
            "tributary_gateway_records_total{topic=\"pin\"} 3",
            "tributary_gateway_errors_total{reason=\"unknown_topic\"} 1",
            "tributary_gateway_in_flight_records 7",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("topic=\"geo\""));
    }
}
