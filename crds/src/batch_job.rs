//! `BatchJob`: scheduled SQL over the data lake.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{DataFormat, DeletionPolicy, FieldSchema};
use crate::messages as msg;

/// SQL steps over tables in the data lake, run on a cron schedule. The operator is the
/// scheduler: it creates one Kubernetes `Job` per scheduled time, named `<name>-<unix time>` so a
/// run is never started twice, runs missed schedules when `catchUp` is set, backfills date ranges
/// on request, and keeps a bounded run history in status.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.dev",
    doc = "Scheduled SQL over the data lake: one Kubernetes Job per scheduled run.",
    version = "v1alpha1",
    kind = "BatchJob",
    plural = "batchjobs",
    shortname = "bj",
    namespaced,
    cel,
    status = "BatchJobStatus",
    derive = "PartialEq",
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(name = "Suspend", type_ = "boolean", json_path = ".spec.suspend"),
    printcolumn(name = "Active", type_ = "integer", json_path = ".status.activeCount"),
    printcolumn(
        name = "Last Schedule",
        type_ = "date",
        json_path = ".status.lastScheduleTime"
    ),
    printcolumn(
        name = "Last Success",
        type_ = "date",
        json_path = ".status.lastSuccessfulTime"
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
#[x_kube(validation = Rule::new("self.steps.all(s, !self.inputs.exists(i, i.name == s.name))").message(msg::BJ_STEP_SHADOWS_INPUT))]
#[x_kube(validation = Rule::new("self.steps.exists(s, has(s.output))").message(msg::BJ_NO_OUTPUT))]
#[serde(rename_all = "camelCase")]
pub struct BatchJobSpec {
    /// Cron schedule with five fields (minute hour day-of-month month day-of-week), e.g.
    /// `0 2 * * *` for 02:00 every day. Macros such as `@daily` are accepted too.
    #[schemars(length(min = 1, max = 256))]
    #[x_kube(validation = Rule::new("self.startsWith('@') || self.matches('^\\\\s*\\\\S+(\\\\s+\\\\S+){4}\\\\s*$')").message(msg::BJ_CRON_FIELDS))]
    pub schedule: String,
    /// IANA time zone the schedule is read in, e.g. `Europe/Berlin`. Default `UTC`.
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: String,
    /// Stop scheduling new runs (running ones finish). Missed runs are not caught up on resume
    /// unless `catchUp` is set.
    #[serde(default)]
    pub suspend: bool,
    /// What to do when a run is due while another is still running: `Forbid` (default; the due
    /// run waits), `Allow` (both run) or `Replace` (the running one is stopped).
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    /// A run that could not start within this many seconds of its scheduled time is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub starting_deadline_seconds: Option<i64>,
    /// After downtime (of the operator, or while suspended), run the schedules that were missed,
    /// oldest first, at most `maxCatchUpRuns` of them. Default `false`: only the latest missed
    /// schedule runs.
    #[serde(default)]
    pub catch_up: bool,
    /// The most missed schedules `catchUp` runs; older ones are skipped and reported.
    #[serde(default = "default_max_catch_up_runs")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_catch_up_runs: i32,
    /// How often a failed run is retried before it counts as failed. Retries wait as Kubernetes
    /// Jobs do: 10 s, then doubling, at most 6 minutes.
    #[serde(default = "default_backoff_limit")]
    #[schemars(range(min = 0, max = 20))]
    pub backoff_limit: i32,
    /// A run (all its attempts) is stopped after this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub active_deadline_seconds: Option<i64>,
    /// Succeeded runs whose Jobs are kept.
    #[serde(default = "default_successful_history")]
    #[schemars(range(min = 0, max = 100))]
    pub successful_runs_history_limit: i32,
    /// Failed runs whose Jobs are kept.
    #[serde(default = "default_failed_history")]
    #[schemars(range(min = 0, max = 100))]
    pub failed_runs_history_limit: i32,
    /// Named tables the SQL reads.
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, b.name == a.name))").message(msg::BJ_INPUT_NAMES_UNIQUE))]
    pub inputs: Vec<BatchInput>,
    /// SQL statements run in order. Each is a view named `name` that later steps can read; a step
    /// with `output` also writes its result.
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, b.name == a.name))").message(msg::BJ_STEP_NAMES_UNIQUE))]
    pub steps: Vec<BatchStep>,
    /// Request runs for past scheduled times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill: Option<Backfill>,
    /// AWS region of the buckets; defaults to the operator's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// CPU and memory for each run's container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// What happens to the output tables when this object is deleted: `Retain` (default) keeps
    /// them, `Delete` deletes every object under each step's output location.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_time_zone() -> String {
    "UTC".into()
}

fn default_max_catch_up_runs() -> i32 {
    10
}

fn default_backoff_limit() -> i32 {
    2
}

fn default_successful_history() -> i32 {
    3
}

fn default_failed_history() -> i32 {
    1
}

/// What to do when a run is due while another runs.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum ConcurrencyPolicy {
    /// Start the new run alongside.
    Allow,
    /// Start the new run only after the running one ends.
    #[default]
    Forbid,
    /// Stop the running run and start the new one.
    Replace,
}

/// A table in the lake.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchInput {
    /// The table's name in SQL: lower case letters, digits and `_`.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z_][a-z0-9_]*$"))]
    pub name: String,
    /// `s3://bucket/prefix/` or `file:///path/`: every file below it is part of the table.
    #[schemars(length(min = 6, max = 1024), regex(pattern = r"^(s3|file)://.+$"))]
    pub url: String,
    /// `JsonLines` (default) or `Parquet`.
    #[serde(default)]
    pub format: DataFormat,
    /// Columns taken from hive-style path segments (`dt=2024-01-01/`), in path order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partition_columns: Vec<PartitionColumn>,
    /// Columns of the table. Absent: inferred from the files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Vec<FieldSchema>>,
}

/// A column read from the path.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartitionColumn {
    /// The column's name, as written in the path (`dt` in `dt=2024-01-01`).
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z_][a-z0-9_]*$"))]
    pub name: String,
    /// The column's type: `String` (default), `Int64` or `Date`.
    #[serde(rename = "type", default = "default_partition_type")]
    pub data_type: crate::common::FieldType,
}

fn default_partition_type() -> crate::common::FieldType {
    crate::common::FieldType::String
}

/// One SQL statement of a BatchJob.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchStep {
    /// The step's view name for later steps: lower case letters, digits and `_`.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z_][a-z0-9_]*$"))]
    pub name: String,
    /// A SQL query (DataFusion's dialect). `scheduled_time()` returns the run's scheduled time.
    #[schemars(length(min = 1, max = 65536))]
    pub sql: String,
    /// Write the step's result here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<BatchOutput>,
}

/// Where and how a step's result is written. A run replaces what an earlier attempt of the same
/// run wrote, so a retried run never writes twice.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchOutput {
    /// `s3://bucket/prefix/` or `file:///path/`.
    #[schemars(length(min = 6, max = 1024), regex(pattern = r"^(s3|file)://.+$"))]
    pub url: String,
    /// `Parquet` (default) or `JsonLines`.
    #[serde(default = "default_output_format")]
    pub format: DataFormat,
    /// Columns of the result that become hive-style path segments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partition_by: Vec<String>,
    /// `ReplaceRun` (default): replace the files this run wrote before. `ReplaceAll`: replace the
    /// whole location (for result tables recomputed in full on every run).
    #[serde(default)]
    pub mode: OutputMode,
}

fn default_output_format() -> DataFormat {
    DataFormat::Parquet
}

/// How a run's output replaces earlier output.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum OutputMode {
    /// Replace only the files of this scheduled time's run.
    #[default]
    ReplaceRun,
    /// Replace everything under the output location.
    ReplaceAll,
}

/// A request for runs of past scheduled times. Changing `id` (or any field) files a new request;
/// progress is in `status.backfill`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.from <= self.to").message(msg::BJ_BACKFILL_RANGE))]
#[serde(rename_all = "camelCase")]
pub struct Backfill {
    /// First day (inclusive), `YYYY-MM-DD`, in the schedule's time zone.
    #[schemars(regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub from: String,
    /// Last day (inclusive), `YYYY-MM-DD`.
    #[schemars(regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub to: String,
    /// `OldestFirst` (default) or `NewestFirst`.
    #[serde(default)]
    pub order: BackfillOrder,
    /// A label for the request; change it to request the same range again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub id: Option<String>,
}

/// The order of backfill runs.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum BackfillOrder {
    /// Oldest scheduled time first.
    #[default]
    OldestFirst,
    /// Newest scheduled time first.
    NewestFirst,
}

/// Observed state of a BatchJob.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchJobStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the spec is valid and the schedule is running) and `Degraded` (the last run
    /// failed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The most recent scheduled time a run was started for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// The most recent scheduled time whose run succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<Time>,
    /// The next scheduled time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<Time>,
    /// Runs in progress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active: Vec<RunRecord>,
    /// Number of runs in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_count: Option<i32>,
    /// The latest finished runs, newest first (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<RunRecord>,
    /// Progress of the current backfill request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill: Option<BackfillStatus>,
}

/// One run of a BatchJob.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// The scheduled time the run is for.
    pub scheduled_time: Time,
    /// The Kubernetes Job of the run.
    pub job_name: String,
    /// `Running`, `Succeeded`, `Failed` or `Skipped`.
    pub outcome: RunOutcome,
    /// When the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// How long the run took, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    /// Rows written per output step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputRows>,
    /// Why the run failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How a run ended.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum RunOutcome {
    /// Still running.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Failed after its retries.
    Failed,
    /// Not started (missed its starting deadline, or past `maxCatchUpRuns`).
    Skipped,
}

/// Rows a run wrote for one output step.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutputRows {
    /// The step's name.
    pub step: String,
    /// Rows written.
    pub rows: i64,
}

/// Progress of a backfill request.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackfillStatus {
    /// The request this describes (`from`..`to`, `id`).
    pub request: String,
    /// Scheduled times in the range.
    pub total: i32,
    /// Runs finished (succeeded or failed).
    pub completed: i32,
    /// Runs that failed.
    pub failed: i32,
}
