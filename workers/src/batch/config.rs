//! The batch worker's configuration: what the operator resolves from a `BatchJob` and hands to
//! every run's pod as one JSON document (a ConfigMap key, passed in the `TRIBUTARY_BATCH_CONFIG`
//! environment variable). The run's scheduled time is an argument of the pod
//! (`tributary worker batch --scheduled-time 2026-11-28T00:00:00Z`), since one configuration
//! serves every run of a generation of the BatchJob.

use serde::{Deserialize, Serialize};
use tributary_crds::batch_job::{BatchInput, BatchStep};

/// The environment variable holding the configuration document.
pub const ENV_CONFIG: &str = "TRIBUTARY_BATCH_CONFIG";

/// Everything a batch run needs besides its scheduled time.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchWorkerConfig {
    /// `namespace/name` of the BatchJob, for logs.
    pub batch_job: String,
    /// The tables the steps read.
    pub inputs: Vec<BatchInput>,
    /// The SQL steps, in order.
    pub steps: Vec<BatchStep>,
}

/// What a run wrote for one step with an output: one JSON line on stdout each, and all of them
/// as one JSON array in the container's termination message, where the operator reads them for
/// the run history.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OutputSummary {
    /// The step.
    pub step: String,
    /// Rows written.
    pub rows: i64,
    /// Where.
    pub url: String,
}

impl BatchWorkerConfig {
    /// Parse a configuration document.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The document, as the operator writes it into the ConfigMap.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a configuration always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_round_trips() {
        let json = r#"{
            "batchJob": "ns/daily",
            "inputs": [{"name": "pin", "url": "s3://lake/raw/pin/", "format": "JsonLines"}],
            "steps": [{"name": "n", "sql": "SELECT count(*) AS n FROM pin",
                       "output": {"url": "s3://lake/out/n/"}}]
        }"#;
        let config = BatchWorkerConfig::from_json(json).unwrap();
        assert_eq!(config.steps[0].name, "n");
        assert_eq!(
            BatchWorkerConfig::from_json(&config.to_json()).unwrap(),
            config
        );
    }
}
