//! `Stream`: an Amazon Kinesis data stream.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{DeletionPolicy, Tags};
use crate::messages as msg;

/// A Kinesis data stream. The operator creates it (or adopts one of the same name), switches its
/// capacity mode, reshards it to `shardCount` in steps Kinesis allows, sets retention and
/// encryption, keeps its tags, reverts changes made outside Kubernetes, and deletes it only when
/// `deletionPolicy` is `Delete`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.dev",
    doc = "An Amazon Kinesis data stream: capacity mode, shard count, retention, encryption and tags.",
    version = "v1alpha1",
    kind = "Stream",
    plural = "streams",
    shortname = "ks",
    namespaced,
    cel,
    status = "StreamStatus",
    derive = "PartialEq",
    printcolumn(name = "Stream", type_ = "string", json_path = ".status.streamName"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(
        name = "Shards",
        type_ = "integer",
        json_path = ".status.openShardCount"
    ),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.streamStatus"),
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
#[x_kube(validation = Rule::new("self.mode == 'Provisioned' ? has(self.shardCount) : !has(self.shardCount)").message(msg::STREAM_SHARDS_MODE))]
#[x_kube(validation = Rule::new("has(self.streamName) == has(oldSelf.streamName) && (!has(self.streamName) || self.streamName == oldSelf.streamName)").message(msg::STREAM_NAME_IMMUTABLE))]
#[serde(rename_all = "camelCase")]
pub struct StreamSpec {
    /// The stream's name in Kinesis. Defaults to `metadata.name`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[a-zA-Z0-9_.-]+$"))]
    pub stream_name: Option<String>,
    /// AWS region; defaults to the operator's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Capacity mode: `OnDemand` (default; Kinesis scales shards itself) or `Provisioned`
    /// (`shardCount` shards). Kinesis allows two mode switches per stream per 24 hours.
    #[serde(default)]
    pub mode: StreamMode,
    /// Open shards in `Provisioned` mode (required there, not allowed in `OnDemand`). Changes
    /// are carried out in steps that at most double or halve the count, as Kinesis requires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub shard_count: Option<i32>,
    /// How long records stay readable, in hours: 24 (default) to 8760 (365 days).
    #[serde(default = "default_retention_hours")]
    #[schemars(range(min = 24, max = 8760))]
    pub retention_hours: i32,
    /// Server-side encryption with a KMS key; absent means no encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<StreamEncryption>,
    /// AWS tags for the stream (at most 50).
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    #[schemars(extend("maxProperties" = 50))]
    pub tags: Tags,
    /// What happens to the Kinesis stream when this object is deleted: `Retain` (default) leaves
    /// it and its records, `Delete` deletes it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_retention_hours() -> i32 {
    24
}

impl Stream {
    /// The stream's name in Kinesis: `spec.streamName`, or `metadata.name`.
    pub fn kinesis_name(&self) -> &str {
        self.spec
            .stream_name
            .as_deref()
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }
}

/// Kinesis capacity modes.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum StreamMode {
    /// Kinesis manages the shards (`ON_DEMAND`).
    #[default]
    OnDemand,
    /// A fixed number of shards (`PROVISIONED`).
    Provisioned,
}

/// Server-side encryption of a stream.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamEncryption {
    /// The KMS key: its ARN, alias ARN, key id, or an alias such as `alias/aws/kinesis` (the
    /// AWS-managed key).
    #[schemars(length(min = 1, max = 2048))]
    pub kms_key_id: String,
}

/// Observed state of a Stream.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing` while Kinesis creates or updates the stream, and `Degraded` when a
    /// Kinesis limit (such as the daily resharding quota) stops progress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The stream's name in Kinesis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// The stream's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Kinesis's status: `CREATING`, `ACTIVE`, `UPDATING` or `DELETING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_status: Option<String>,
    /// The capacity mode the stream has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<StreamMode>,
    /// Open shards the stream has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_shard_count: Option<i32>,
    /// Retention the stream has, in hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_hours: Option<i32>,
    /// The resharding steps still to carry out, e.g. `[20, 40, 50]` on the way from 10 to 50 shards.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_shard_counts: Vec<i32>,
    /// Settings found changed in Kinesis (and reverted) at the last resync that found drift.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drifted_fields: Vec<String>,
}
