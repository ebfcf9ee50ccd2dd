//! `Topic`: a Kafka topic on a `KafkaCluster`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{DeletionPolicy, ObjectRef};
use crate::messages as msg;

/// A Kafka topic. Kubernetes is the source of truth: the operator creates the topic (or adopts an
/// existing one of the same name), raises its partition count, keeps the configs listed in
/// `config` as written here (reverting changes made directly in Kafka), and deletes it only when
/// `deletionPolicy` is `Delete`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.dev",
    doc = "A Kafka topic kept as written here: partitions, replication factor and configs; drift in Kafka is reverted.",
    version = "v1alpha1",
    kind = "Topic",
    plural = "topics",
    shortname = "tt",
    namespaced,
    cel,
    status = "TopicStatus",
    derive = "PartialEq",
    printcolumn(name = "Topic", type_ = "string", json_path = ".status.topicName"),
    printcolumn(name = "Partitions", type_ = "integer", json_path = ".spec.partitions"),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".spec.replicationFactor"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("has(self.topicName) == has(oldSelf.topicName) && (!has(self.topicName) || self.topicName == oldSelf.topicName)").message(msg::TOPIC_NAME_IMMUTABLE))]
#[x_kube(validation = Rule::new("has(self.replicationFactor) == has(oldSelf.replicationFactor) && (!has(self.replicationFactor) || self.replicationFactor == oldSelf.replicationFactor)").message(msg::TOPIC_RF_IMMUTABLE))]
#[serde(rename_all = "camelCase")]
pub struct TopicSpec {
    /// The `KafkaCluster` that holds the topic. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message(msg::TOPIC_CLUSTER_IMMUTABLE))]
    pub cluster_ref: ObjectRef,
    /// The topic's name in Kafka, for names Kubernetes forbids (upper case, `_`). Defaults to
    /// `metadata.name`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    #[x_kube(validation = Rule::new("self != '.' && self != '..'").message(msg::TOPIC_NAME_DOTS))]
    pub topic_name: Option<String>,
    /// Number of partitions. Kafka cannot remove partitions, so it can only increase.
    #[serde(default = "default_partitions")]
    #[schemars(range(min = 1, max = 100000))]
    #[x_kube(validation = Rule::new("self >= oldSelf").message(msg::TOPIC_PARTITION_DECREASE))]
    pub partitions: i32,
    /// Replicas of each partition. Defaults to the broker's `default.replication.factor`.
    /// Immutable (changing it needs a partition reassignment, which Tributary does not do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32767))]
    pub replication_factor: Option<i32>,
    /// Topic configs (`retention.ms`, `cleanup.policy`, ...) as strings, numbers or booleans.
    /// Only the keys listed here are managed; other keys keep whatever value Kafka has.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::schema::scalar_map")]
    pub config: BTreeMap<String, serde_json::Value>,
    /// What happens to the Kafka topic when this object is deleted: `Retain` (default) leaves
    /// the topic and its data in Kafka, `Delete` deletes it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_partitions() -> i32 {
    1
}

impl Topic {
    /// The topic's name in Kafka: `spec.topicName`, or `metadata.name`.
    pub fn kafka_name(&self) -> &str {
        self.spec
            .topic_name
            .as_deref()
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }
}

/// Observed state of a Topic.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, with reasons such as `PartitionDecreaseNotSupported`, `Conflict`,
    /// `ClusterNotReady` or `KafkaError`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The topic's name in Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    /// Partitions the topic has in Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    /// Replication factor the topic has in Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i32>,
    /// The managed configs as applied to Kafka.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, String>,
    /// Config keys found changed in Kafka (and reverted) at the last resync that found drift.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drifted_keys: Vec<String>,
}
