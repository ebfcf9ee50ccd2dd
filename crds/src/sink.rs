//! `Sink`: a worker Deployment that copies a Topic or a Stream into the data lake.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::common::{DataFormat, DeletionPolicy, FieldSchema, ObjectRef};
use crate::messages as msg;

/// Continuously copies a `Topic` (Kafka) or a `Stream` (Kinesis) into object storage, optionally
/// through a SQL transform, with exactly-once object names: a retried flush rewrites the same
/// object, and a restarted worker resumes after the newest object it finds.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.dev",
    doc = "Continuously copies a Topic or Stream into object storage, exactly once per record.",
    version = "v1alpha1",
    kind = "Sink",
    plural = "sinks",
    shortname = "sk",
    namespaced,
    cel,
    status = "SinkStatus",
    derive = "PartialEq",
    printcolumn(name = "Source", type_ = "string", json_path = ".status.source"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(name = "Lag", type_ = "integer", json_path = ".status.lag"),
    printcolumn(
        name = "Last Flush",
        type_ = "date",
        json_path = ".status.lastFlushTime"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SinkSpec {
    /// Where the records come from. The source cannot be changed: a Sink's position belongs to
    /// its source, so reading another source is a new Sink.
    pub source: SinkSource,
    /// Where the objects go.
    pub destination: SinkDestination,
    /// Object format.
    #[serde(default)]
    pub format: SinkFormat,
    /// When a partition's (or shard's) buffer is written out.
    #[serde(default)]
    pub batch: SinkBatch,
    /// The path between the destination prefix and the object name.
    #[serde(default)]
    pub partitioning: SinkPartitioning,
    /// A SQL transform applied to each micro-batch before it is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<SinkTransform>,
    /// Where records that cannot be written go, with the reason.
    #[serde(default)]
    pub dead_letter: SinkDeadLetter,
    /// What a bad record does to the sink.
    #[serde(default)]
    pub errors: SinkErrors,
    /// Worker replicas. Kafka partitions are spread over them; a Stream's shards are shared
    /// through leases kept in the destination bucket, so a Stream source with more than one
    /// worker needs an `s3://` destination (`ParallelismNotSupported` otherwise).
    #[serde(default = "default_parallelism")]
    #[schemars(range(min = 1, max = 1000))]
    pub parallelism: i32,
    /// Scale the workers to zero, keeping the position: resuming continues where it stopped.
    #[serde(default)]
    pub paused: bool,
    /// CPU and memory for each worker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// What happens to the sink's position (Kafka consumer group or Kinesis shard leases) when
    /// this object is deleted: `Retain` (default) keeps it, so a Sink re-created with the same
    /// name resumes; `Delete` removes it. Objects already written are never deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_parallelism() -> i32 {
    1
}

/// The source of a Sink: exactly one of `topicRef` and `streamRef`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.topicRef) != has(self.streamRef)").message(msg::SINK_ONE_SOURCE))]
#[x_kube(validation = Rule::new("!has(self.consumerGroup) || has(self.topicRef)").message(msg::SINK_GROUP_KAFKA_ONLY))]
#[x_kube(validation = Rule::new("!has(self.consumerProperties) || has(self.topicRef)").message(msg::SINK_PROPERTIES_KAFKA_ONLY))]
#[x_kube(validation = Rule::new("has(self.topicRef) == has(oldSelf.topicRef) && (!has(self.topicRef) || self.topicRef == oldSelf.topicRef) && has(self.streamRef) == has(oldSelf.streamRef) && (!has(self.streamRef) || self.streamRef == oldSelf.streamRef)").message(msg::SINK_SOURCE_IMMUTABLE))]
#[x_kube(validation = Rule::new("has(self.consumerGroup) == has(oldSelf.consumerGroup) && (!has(self.consumerGroup) || self.consumerGroup == oldSelf.consumerGroup)").message(msg::SINK_GROUP_IMMUTABLE))]
#[serde(rename_all = "camelCase")]
pub struct SinkSource {
    /// A `Topic` to read with a Kafka consumer group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_ref: Option<ObjectRef>,
    /// A `Stream` to read shard by shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_ref: Option<ObjectRef>,
    /// Where a sink without a recorded position starts: `Earliest` (default) or `Latest`.
    #[serde(default)]
    pub start_from: StartPosition,
    /// Kafka consumer group id. Defaults to `tributary-<namespace>-<name>`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub consumer_group: Option<String>,
    /// librdkafka consumer properties for the workers, over Tributary's defaults — for tuning
    /// fetches and sessions (`fetch.max.bytes`, `max.partition.fetch.bytes`,
    /// `receive.message.max.bytes`, `session.timeout.ms`, ...). Kafka topics only. The
    /// connection (`bootstrap.servers`, `security.protocol`, `sasl.*`, `ssl.*`) comes from
    /// the KafkaCluster, and what exactly-once rests on (`group.id`, `group.instance.id`,
    /// `enable.auto.commit`, `enable.auto.offset.store`, `auto.offset.reset`, ...) is
    /// Tributary's: those keys are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub consumer_properties: BTreeMap<String, String>,
}

/// Where a sink without a recorded position starts reading.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum StartPosition {
    /// The oldest record still retained.
    #[default]
    Earliest,
    /// Only records that arrive after the sink starts.
    Latest,
}

/// The object storage location a Sink writes to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SinkDestination {
    /// `s3://bucket/prefix`, or `file:///path` in local mode.
    #[schemars(
        length(min = 6, max = 1024),
        regex(pattern = r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?|file:///.*)$")
    )]
    pub url: String,
    /// AWS region of the bucket; defaults to the operator's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Create the bucket if it does not exist. Tributary never deletes buckets.
    #[serde(default)]
    pub create_bucket: bool,
    /// Objects larger than this many bytes are uploaded in parts (5 MiB minimum).
    #[serde(default = "default_multipart_threshold")]
    #[schemars(range(min = 5_242_880))]
    pub multipart_threshold_bytes: i64,
}

fn default_multipart_threshold() -> i64 {
    16 * 1024 * 1024
}

/// The format of the objects a Sink writes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new("!has(self.compression) || self.type == 'Parquet' || self.compression != 'Snappy'").message(msg::SINK_JSON_SNAPPY))]
#[serde(rename_all = "camelCase")]
pub struct SinkFormat {
    /// `JsonLines` (default) or `Parquet`.
    #[serde(rename = "type", default)]
    pub format: DataFormat,
    /// Compression: for JSON lines `Gzip` or `Zstd` (whole object); for Parquet `Snappy`,
    /// `Zstd` or `Gzip` (per page). Default: none for JSON lines, `Snappy` for Parquet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// Columns of the records. Absent: inferred from the records (Parquet) — types are widened
    /// consistently across batches. Present: records that do not match go to the dead letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Vec<FieldSchema>>,
}

/// Compression codecs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Zstandard.
    Zstd,
    /// Snappy (Parquet only).
    Snappy,
}

/// Flush triggers. Whichever comes first flushes a partition's buffer; `maxAge` is wall-clock
/// time, so an idle partition still flushes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SinkBatch {
    /// Records per object at most.
    #[serde(default = "default_max_records")]
    #[schemars(range(min = 1, max = 10_000_000))]
    pub max_records: i64,
    /// Uncompressed bytes per object at most.
    #[serde(default = "default_max_bytes")]
    #[schemars(range(min = 1024))]
    pub max_bytes: i64,
    /// Age of the oldest buffered record at most, as a duration such as `30s`, `5m` or `1h`.
    #[serde(default = "default_max_age")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub max_age: String,
    /// Memory for all buffers of one worker process, in bytes. When it is reached the largest
    /// buffer is flushed, so memory does not grow with the number of partitions.
    #[serde(default = "default_memory_budget")]
    #[schemars(range(min = 1_048_576))]
    pub memory_budget_bytes: i64,
}

impl Default for SinkBatch {
    fn default() -> Self {
        Self {
            max_records: default_max_records(),
            max_bytes: default_max_bytes(),
            max_age: default_max_age(),
            memory_budget_bytes: default_memory_budget(),
        }
    }
}

fn default_max_records() -> i64 {
    100_000
}

fn default_max_bytes() -> i64 {
    64 * 1024 * 1024
}

fn default_max_age() -> String {
    "60s".into()
}

fn default_memory_budget() -> i64 {
    256 * 1024 * 1024
}

/// The path of an object below the destination prefix.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SinkPartitioning {
    /// Path template. `{time:FORMAT}` is the record's time formatted with strftime-style
    /// `FORMAT` (e.g. `dt={time:%Y-%m-%d}/hr={time:%H}`), `{field:NAME}` a record field's value,
    /// `{source}` the topic or stream and `{partition}` the partition or shard. Absent (default):
    /// objects directly under the prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub path: Option<String>,
    /// The record field whose value is the record's time for `{time:...}`. Absent: the time
    /// the record arrived in Kafka or Kinesis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_field: Option<String>,
    /// How `timeField` is written: a strftime-style format such as `%Y-%m-%d %H:%M:%S`, or
    /// `epochMillis` / `epochSeconds`. Absent: RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_format: Option<String>,
}

/// A streaming SQL transform.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SinkTransform {
    /// A DataFusion query over the table `input`: each micro-batch, with the fields of
    /// `spec.format.schema` (required with a transform) and metadata columns — for a Topic
    /// `_topic`, `_partition`, `_offset`, `_timestamp`, `_key`; for a Stream `_stream`, `_shard`,
    /// `_sequence_number`, `_arrival_time`, `_partition_key`. Its result is what gets written.
    #[schemars(length(min = 1, max = 65536))]
    pub sql: String,
}

/// Where records that cannot be written go.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SinkDeadLetter {
    /// Key prefix in the destination bucket (or directory) for dead-letter objects, holding
    /// each record's original bytes, partition, offset and reason. Defaults to
    /// `<destination prefix>/_dead_letter/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub prefix: Option<String>,
}

/// What a bad record does to the sink.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SinkErrors {
    /// `all` (default): bad records go to the dead letter and the sink goes on. `none`: the
    /// sink stops at the first bad record and reports it in its conditions.
    #[serde(default)]
    pub tolerance: ErrorTolerance,
}

/// Error tolerance, as Kafka Connect names it.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ErrorTolerance {
    /// Tolerate bad records: dead-letter them.
    #[default]
    All,
    /// Stop at the first bad record.
    None,
}

/// Observed state of a Sink.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SinkStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing` while the workers roll out, `Degraded` when they report errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The source, as `topic/<name>` or `stream/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Worker replicas wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Worker replicas ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Records not yet written, over all partitions or shards, as the workers last reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<i64>,
    /// When the workers last wrote an object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_flush_time: Option<Time>,
    /// A Stream source: how far the furthest-behind shard's reading is from the shard's tip,
    /// in milliseconds, as its worker last wrote in the shard's lease (Kinesis's
    /// `MillisBehindLatest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub millis_behind_latest: Option<i64>,
    /// Records written since the Sink was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_written: Option<i64>,
    /// Records sent to the dead letter since the Sink was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letters: Option<i64>,
}
