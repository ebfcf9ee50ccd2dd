//! The second pure step of the BatchJob reconcile: the ConfigMap with the worker configuration,
//! and the Job of one scheduled run, all controlled by the BatchJob.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use tributary_crds::BatchJob;
use tributary_workers::batch::config::{BatchWorkerConfig, ENV_CONFIG};
use tributary_workers::connect::AwsOptions;

use super::schedule::job_name;
use crate::context::Workers;
use crate::worker_pod;

/// The ConfigMap key holding the worker configuration.
pub const CONFIG_KEY: &str = "config.json";
/// `app.kubernetes.io/name` of every child of every BatchJob.
pub const APP_NAME: &str = "tributary-batch";
/// The label selector of every child of every BatchJob (for the operator's watches).
pub const CHILDREN: &str =
    "app.kubernetes.io/name=tributary-batch,app.kubernetes.io/managed-by=tributary";
/// The Job annotation with the run's scheduled time (RFC 3339).
pub const SCHEDULED_TIME: &str = "tributary.dev/scheduled-time";
/// The Job annotation naming the backfill request a run belongs to (absent on scheduled runs).
pub const BACKFILL_REQUEST: &str = "tributary.dev/backfill-request";
/// The name of the run's container.
pub const CONTAINER: &str = "batch";

/// The name of the ConfigMap of `batch_job`.
pub fn config_map_name(batch_job: &BatchJob) -> String {
    format!("{}-batch", batch_job.name_any())
}

fn labels(batch_job: &BatchJob) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), APP_NAME.to_owned()),
        (
            "app.kubernetes.io/instance".to_owned(),
            batch_job.name_any(),
        ),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "tributary".to_owned(),
        ),
    ])
}

/// The label selector of the Jobs of one BatchJob, as a query string value.
pub fn job_selector(batch_job: &BatchJob) -> String {
    format!(
        "app.kubernetes.io/name={APP_NAME},app.kubernetes.io/instance={}",
        batch_job.name_any()
    )
}

fn metadata(batch_job: &BatchJob, name: String) -> Value {
    json!({
        "name": name,
        "namespace": batch_job.namespace(),
        "labels": labels(batch_job),
        "ownerReferences": batch_job.controller_owner_ref(&()).into_iter().collect::<Vec<_>>(),
    })
}

/// The configuration every run of `batch_job` reads.
pub fn worker_config(batch_job: &BatchJob) -> BatchWorkerConfig {
    BatchWorkerConfig {
        batch_job: format!(
            "{}/{}",
            batch_job.namespace().unwrap_or_default(),
            batch_job.name_any()
        ),
        inputs: batch_job.spec.inputs.clone(),
        steps: batch_job.spec.steps.clone(),
    }
}

/// `<name>-batch`, with the worker configuration under [`CONFIG_KEY`].
pub fn config_map(batch_job: &BatchJob) -> ConfigMap {
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(batch_job, config_map_name(batch_job)),
        "data": { CONFIG_KEY: worker_config(batch_job).to_json() },
    });
    serde_json::from_value(config_map).expect("a ConfigMap")
}

/// The Job of `batch_job`'s run at `scheduled` (of the backfill request `backfill`, if any),
/// running `image` as `workers` says with the operator's `aws` settings where the spec has none.
pub fn job(
    batch_job: &BatchJob,
    scheduled: Timestamp,
    backfill: Option<&str>,
    image: &str,
    workers: &Workers,
    aws: &AwsOptions,
) -> Job {
    let spec = &batch_job.spec;
    let time = scheduled.to_string();
    let mut env = vec![json!({
        "name": ENV_CONFIG,
        "valueFrom": {"configMapKeyRef": {"name": config_map_name(batch_job), "key": CONFIG_KEY}},
    })];
    env.extend(worker_pod::aws_env(spec.region.as_ref(), aws));
    let mut container = json!({
        "name": CONTAINER,
        "image": image,
        "args": ["worker", "batch", "--scheduled-time", time],
        "env": env,
        "securityContext": worker_pod::container_security_context(),
        "volumeMounts": worker_pod::tmp_volume_mounts(),
        // The worker writes its output summary there; a crash leaves the log's tail instead.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    });
    if let Some(resources) = &spec.resources {
        container["resources"] = json!(resources);
    }
    let mut pod = worker_pod::pod_spec(container, workers);
    pod["restartPolicy"] = json!("Never");

    let mut metadata = metadata(batch_job, job_name(&batch_job.name_any(), scheduled));
    metadata["annotations"] = json!({ SCHEDULED_TIME: time });
    if let Some(request) = backfill {
        metadata["annotations"][BACKFILL_REQUEST] = json!(request);
    }
    let mut job_spec = json!({
        "backoffLimit": spec.backoff_limit,
        "template": {
            "metadata": {"labels": labels(batch_job)},
            "spec": pod,
        },
    });
    if let Some(deadline) = spec.active_deadline_seconds {
        job_spec["activeDeadlineSeconds"] = json!(deadline);
    }
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": job_spec,
    });
    serde_json::from_value(job).expect("a Job")
}
