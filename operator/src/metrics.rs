//! Prometheus metrics of the operator, with small fixed label sets.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: &'static str,
    category: &'static str,
}

/// The operator's metrics.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindLabel, Counter>,
    durations: Family<KindLabel, Histogram>,
    errors: Family<ErrorLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tributary");
        let reconciles = Family::<KindLabel, Counter>::default();
        registry.register(
            "reconciliations",
            "Reconciliations started, by kind",
            reconciles.clone(),
        );
        let durations = Family::<KindLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ])
        });
        registry.register(
            "reconcile_duration_seconds",
            "Time a reconciliation took, by kind",
            durations.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciliations, by kind and error category",
            errors.clone(),
        );
        Self {
            registry,
            reconciles,
            durations,
            errors,
        }
    }
}

impl Metrics {
    /// Count a reconciliation of `kind` that took `elapsed`.
    pub fn reconciled(&self, kind: &'static str, elapsed: Duration) {
        self.reconciles.get_or_create(&KindLabel { kind }).inc();
        self.durations
            .get_or_create(&KindLabel { kind })
            .observe(elapsed.as_secs_f64());
    }

    /// Count a failed reconciliation.
    pub fn failed(&self, kind: &'static str, category: &'static str) {
        self.errors
            .get_or_create(&ErrorLabels { kind, category })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        tributary_workers::http::render(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_errors_with_bounded_labels() {
        let metrics = Metrics::default();
        metrics.reconciled("Topic", Duration::from_millis(20));
        metrics.failed("Topic", "kafka");
        let text = metrics.render();
        assert!(
            text.contains(r#"tributary_reconciliations_total{kind="Topic"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"tributary_reconcile_duration_seconds_count{kind="Topic"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"tributary_reconcile_errors_total{kind="Topic",category="kafka"} 1"#),
            "{text}"
        );
    }
}
