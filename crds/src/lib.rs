//! The Tributary custom resources (`tributary.dev/v1alpha1`): their Rust types, from which the
//! CRD YAML is generated, and their validation.

// Several `printcolumn(type_ = "date", ...)` arguments in one `#[kube]` attribute look alike to
// this lint, though each belongs to its own column.
#![allow(clippy::duplicated_attributes)]

pub mod batch_job;
pub mod common;
pub mod duration;
pub mod kafka_cluster;
pub mod manifest;
pub mod messages;
mod schema;
pub mod sink;
pub mod stream;
pub mod topic;
pub mod validate;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use batch_job::{BatchJob, BatchJobSpec, BatchJobStatus};
pub use common::{DeletionPolicy, ObjectRef, SecretKeyRef};
pub use kafka_cluster::{KafkaCluster, KafkaClusterSpec, KafkaClusterStatus};
pub use manifest::{Manifest, ManifestError};
pub use sink::{Sink, SinkSpec, SinkStatus};
pub use stream::{Stream, StreamSpec, StreamStatus};
pub use topic::{Topic, TopicSpec, TopicStatus};
pub use validate::{FieldError, Invalid, Validate};

/// The API group of every Tributary kind.
pub const GROUP: &str = "tributary.dev";

/// All five CRDs, in a fixed order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        KafkaCluster::crd(),
        Topic::crd(),
        Stream::crd(),
        Sink::crd(),
        BatchJob::crd(),
    ]
}

/// The CRDs as one multi-document YAML stream.
pub fn crds_yaml() -> String {
    crd_files()
        .into_iter()
        .map(|(_, yaml)| yaml)
        .collect::<Vec<_>>()
        .join("---\n")
}

/// One `(file name, YAML)` per CRD, as checked in under `crds/yaml/`.
pub fn crd_files() -> Vec<(String, String)> {
    crds()
        .iter()
        .map(|crd| {
            let yaml = serde_yaml::to_string(crd).expect("a CRD serializes to YAML");
            (format!("{}.yaml", crd.spec.names.plural), yaml)
        })
        .collect()
}

impl Validate for KafkaCluster {}
impl Validate for Stream {}
impl Validate for Sink {}
impl Validate for BatchJob {}

impl Validate for Topic {
    fn extra_checks(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (key, value) in &self.spec.config {
            if !(value.is_string() || value.is_number() || value.is_boolean()) {
                errors.push(FieldError {
                    path: format!("spec.config.{key}"),
                    message: format!("must be a string, number or boolean (got {value})"),
                });
            }
        }
        let default_name_too_long = self.spec.topic_name.is_none()
            && self.metadata.name.as_ref().is_some_and(|n| n.len() > 249);
        if default_name_too_long {
            errors.push(FieldError {
                path: "metadata.name".into(),
                message:
                    "is longer than Kafka's 249-character limit for topic names; set spec.topicName"
                        .into(),
            });
        }
        errors
    }
}
