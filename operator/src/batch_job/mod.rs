//! The BatchJob controller. The operator is the scheduler (no CronJob): validate (pure) → apply
//! the worker ConfigMap → observe the BatchJob's Jobs → plan the runs due now with the pure
//! scheduling core (catch-up, starting deadline, backfill, concurrency policy) → create their
//! Jobs, named by scheduled time so that no run starts twice → delete finished Jobs beyond the
//! history limits → status from the Jobs observed and created, and a requeue at the next
//! scheduled time.

pub mod build;
pub mod runs;
pub mod schedule;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tributary_crds::batch_job::{BackfillStatus, OutputRows, RunOutcome, RunRecord};
use tributary_crds::{BatchJob, BatchJobStatus};

use crate::conditions::{self, Decided, READY};
use crate::context::Context;
use crate::reconciler::{Categorized, measured, paused};
use runs::Run;
use schedule::DueRuns;

/// The field manager of this controller's writes (the ConfigMap and status).
pub const FIELD_MANAGER: &str = "tributary-batch";
/// The condition saying the newest finished run failed.
pub const DEGRADED: &str = "Degraded";

const KIND: &str = "BatchJob";

/// A BatchJob reconciliation that failed and will be retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or did not answer.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
}

impl Categorized for Error {
    fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kubernetes",
        }
    }
}

/// Reconcile one BatchJob.
pub async fn reconcile(batch_job: Arc<BatchJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    // The Jobs and the ConfigMap go with the BatchJob (owner references): nothing to clean up.
    if paused(batch_job.as_ref()) || batch_job.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    measured(batch_job.as_ref(), &ctx, apply(&batch_job, &ctx)).await
}

#[tracing::instrument(skip_all, fields(kind = KIND, namespace = %batch_job.namespace().unwrap_or_default(), name = %batch_job.name_any()))]
async fn apply(batch_job: &BatchJob, ctx: &Context) -> Result<Action, Error> {
    let now = ctx.now();
    let validated = match validate::validate(batch_job).await {
        Ok(validated) => validated,
        Err(error) => {
            let ready = Decided::no(READY, "InvalidSpec", error.to_string());
            write_status(batch_job, ctx, Observed::stopped(batch_job, ready)).await?;
            return Ok(Action::await_change());
        }
    };
    let Some(image) = ctx.workers.image.clone() else {
        let ready = Decided::no(
            READY,
            "NoWorkerImage",
            "the operator was started without --image (TRIBUTARY_IMAGE), the image of the \
             worker pods: restart it with its own image",
        );
        write_status(batch_job, ctx, Observed::stopped(batch_job, ready)).await?;
        return Ok(Action::await_change());
    };
    match schedule_runs(batch_job, ctx, &validated, &image, now).await {
        Ok((observed, requeue)) => {
            write_status(batch_job, ctx, observed).await?;
            Ok(requeue)
        }
        Err(error) => {
            let message = format!("{error}; retrying with backoff");
            let ready = Decided::no(READY, "KubernetesError", message);
            write_status(batch_job, ctx, Observed::stopped(batch_job, ready)).await?;
            Err(error)
        }
    }
}

/// Everything between a valid spec and the status: the ConfigMap, the runs to start and stop,
/// the Jobs to delete.
async fn schedule_runs(
    batch_job: &BatchJob,
    ctx: &Context,
    validated: &validate::Validated,
    image: &str,
    now: Timestamp,
) -> Result<(Observed, Action), Error> {
    let spec = &batch_job.spec;
    let namespace = batch_job.namespace().unwrap_or_default();
    let name = batch_job.name_any();
    let previous = batch_job.status.clone().unwrap_or_default();

    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    config_maps
        .patch(
            &build::config_map_name(batch_job),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&build::config_map(batch_job)),
        )
        .await?;

    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let listed = jobs
        .list(&ListParams::default().labels(&build::job_selector(batch_job)))
        .await?;
    let uid = batch_job.uid();
    let mut all_runs: Vec<Run> = listed
        .items
        .iter()
        // A Job of a deleted BatchJob of the same name is not one of this BatchJob's runs.
        .filter(|job| {
            job.owner_references()
                .iter()
                .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
        })
        .filter_map(runs::observe)
        .collect();

    // Runs that ended since the last status: their rows, and an Event each.
    let newly_finished: Vec<Run> = runs::newly_finished(&previous.history, &all_runs)
        .into_iter()
        .cloned()
        .collect();
    let mut records = Vec::new();
    for run in &newly_finished {
        let outputs = if run.outcome == RunOutcome::Succeeded {
            read_outputs(ctx, &namespace, &run.job_name).await
        } else {
            Vec::new()
        };
        records.push(run.record(outputs));
    }

    // Scheduled runs due now, and the backfill's next runs.
    let last = last_scheduled(batch_job, &previous, &all_runs);
    let due = validated
        .schedule
        .due_runs(spec, last, now)
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot compute the due runs");
            DueRuns::default()
        });
    let newly: Vec<&Run> = newly_finished.iter().collect();
    let mut backfill = validated.backfill.as_ref().map(|(key, times)| {
        let progress =
            runs::backfill_progress(key, times.len(), previous.backfill.as_ref(), &newly, 0);
        (key.as_str(), times.as_slice(), progress)
    });
    let pending = match &backfill {
        Some((key, times, progress)) if !spec.suspend => Some((
            *key,
            runs::pending_backfill(times, key, progress, &all_runs, now),
        )),
        _ => None,
    };
    let plan = runs::plan(spec, &due, &all_runs, pending);

    for stopped in &plan.stop {
        delete_job(&jobs, stopped).await?;
        ctx.event(
            batch_job,
            false,
            "RunReplaced",
            format!("stopped Job {stopped}: concurrencyPolicy Replace"),
        )
        .await;
        all_runs.retain(|r| &r.job_name != stopped);
    }
    let mut last_started = None;
    let mut adopted = 0;
    for start in &plan.start {
        let job = build::job(
            batch_job,
            start.scheduled,
            start.backfill.as_deref(),
            image,
            &ctx.workers,
            &ctx.aws,
        );
        let job_name = job.name_any();
        match jobs.create(&PostParams::default(), &job).await {
            Ok(created) => {
                let what = match &start.backfill {
                    Some(_) => "backfill run",
                    None => "run",
                };
                let message = format!(
                    "started Job {job_name} for the {what} at {}",
                    start.scheduled
                );
                ctx.event(batch_job, false, "RunStarted", message).await;
                all_runs.extend(runs::observe(&created));
            }
            // Started before (by another reconcile, or before a restart): the run's identity
            // is its Job's name.
            Err(kube::Error::Api(status)) if status.is_already_exists() => {
                tracing::debug!(job = %job_name, "already started");
                if start.backfill.is_some() {
                    adopted += 1;
                }
            }
            Err(error) => return Err(error.into()),
        }
        if start.backfill.is_none() {
            last_started = last_started.max(Some(start.scheduled));
        }
    }
    if let Some((key, times, progress)) = &mut backfill {
        *progress = runs::backfill_progress(key, times.len(), Some(&*progress), &[], adopted);
    }

    // Runs skipped by the catch-up limit or the starting deadline, reported once: when newer
    // runs start, `lastScheduleTime` moves past them.
    let mut skipped = Vec::new();
    if last_started.is_some() {
        for (what, why) in [
            (
                &due.past_catch_up_limit,
                "beyond maxCatchUpRuns (or catchUp is off)",
            ),
            (&due.past_deadline, "past startingDeadlineSeconds"),
        ] {
            if let Some(s) = what {
                let record = runs::skipped_record(&name, s, why);
                let message = record.message.clone().unwrap_or_default();
                ctx.event(batch_job, true, "RunsSkipped", message).await;
                skipped.push(record);
            }
        }
    }

    for garbage in runs::garbage(spec, &all_runs) {
        delete_job(&jobs, &garbage).await?;
        all_runs.retain(|r| r.job_name != garbage);
    }

    for run in &newly_finished {
        let (warning, reason, verb) = match run.outcome {
            RunOutcome::Failed => (true, "RunFailed", "failed"),
            _ => (false, "RunSucceeded", "succeeded"),
        };
        let mut message = format!("the run at {} ({}) {verb}", run.scheduled, run.job_name);
        if let Some(why) = &run.message {
            message.push_str(&format!(": {why}"));
        }
        ctx.event(batch_job, warning, reason, message).await;
    }

    records.extend(skipped);
    let history = runs::merge_history(&previous.history, records, runs::history_limit(spec));
    let mut active: Vec<RunRecord> = all_runs
        .iter()
        .filter(|r| !r.finished())
        .map(|r| r.record(Vec::new()))
        .collect();
    active.sort_by_key(|r| r.scheduled_time.0);

    let next = if spec.suspend {
        None
    } else {
        validated.schedule.next_after(now).ok().flatten()
    };
    let requeue = match next {
        Some(next) => {
            let until = next.duration_since(now).unsigned_abs();
            Action::requeue(until.clamp(Duration::from_secs(1), ctx.resync))
        }
        None => Action::requeue(ctx.resync),
    };
    let ready = if spec.suspend {
        Decided::yes(READY, "Suspended", "spec.suspend: no new run starts")
    } else {
        let next = next.map(|t| t.to_string()).unwrap_or_default();
        Decided::yes(READY, "Scheduled", format!("the next run is at {next}"))
    };
    let degraded = match history.iter().find(|r| r.outcome != RunOutcome::Skipped) {
        Some(run) if run.outcome == RunOutcome::Failed => Decided::yes(
            DEGRADED,
            "RunFailed",
            format!(
                "the run at {} ({}) failed",
                run.scheduled_time.0, run.job_name
            ),
        ),
        _ => Decided::no(
            DEGRADED,
            "LastRunSucceeded",
            "the newest finished run succeeded",
        ),
    };
    let last_successful = history
        .iter()
        .filter(|r| r.outcome == RunOutcome::Succeeded)
        .map(|r| r.scheduled_time.0)
        .max();
    let observed = Observed {
        ready,
        degraded: Some(degraded),
        last_schedule_time: previous
            .last_schedule_time
            .as_ref()
            .map(|t| t.0)
            .max(last_started)
            .max(newest_scheduled(&all_runs)),
        last_successful_time: previous
            .last_successful_time
            .as_ref()
            .map(|t| t.0)
            .max(last_successful),
        next_schedule_time: next,
        active: Some(active),
        history: Some(history),
        backfill: backfill.map(|(_, _, progress)| progress),
    };
    Ok((observed, requeue))
}

/// The newest scheduled time a run was started for: `status.lastScheduleTime`, or a newer
/// scheduled run's Job (a status write may have been lost), else the creation time.
fn last_scheduled(batch_job: &BatchJob, previous: &BatchJobStatus, runs: &[Run]) -> Timestamp {
    let from_status = previous.last_schedule_time.as_ref().map(|t| t.0);
    let from_jobs = newest_scheduled(runs);
    let created = batch_job
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(Timestamp::UNIX_EPOCH);
    from_status.max(from_jobs).unwrap_or(created)
}

/// The newest scheduled time of the scheduled (not backfill) runs.
fn newest_scheduled(runs: &[Run]) -> Option<Timestamp> {
    runs.iter()
        .filter(|r| r.backfill.is_none())
        .map(|r| r.scheduled)
        .max()
}

/// Delete a Job and its pods (in the background); one already gone counts as deleted.
async fn delete_job(jobs: &Api<Job>, name: &str) -> Result<(), kube::Error> {
    match jobs.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(error) => Err(error),
    }
}

/// The rows a finished run wrote, from its pods' termination messages (the newest pod that has
/// a summary). None when the pods are gone or wrote no summary; a failure to list the pods is
/// logged, never fatal.
async fn read_outputs(ctx: &Context, namespace: &str, job: &str) -> Vec<OutputRows> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let listed = match pods
        .list(&ListParams::default().labels(&format!("job-name={job}")))
        .await
    {
        Ok(listed) => listed,
        Err(error) => {
            tracing::warn!(%error, %job, "cannot read the run's output summary");
            return Vec::new();
        }
    };
    let mut pods = listed.items;
    pods.sort_by_key(|p| std::cmp::Reverse(p.metadata.creation_timestamp.clone().map(|t| t.0)));
    pods.iter()
        .flat_map(|p| {
            p.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
        })
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.message.as_deref())
        .find_map(runs::outputs)
        .unwrap_or_default()
}

/// What decides the status.
struct Observed {
    ready: Decided,
    /// `None` when no Jobs were observed.
    degraded: Option<Decided>,
    last_schedule_time: Option<Timestamp>,
    last_successful_time: Option<Timestamp>,
    next_schedule_time: Option<Timestamp>,
    /// `None` keeps what status has.
    active: Option<Vec<RunRecord>>,
    /// `None` keeps what status has.
    history: Option<Vec<RunRecord>>,
    backfill: Option<BackfillStatus>,
}

impl Observed {
    /// Nothing was scheduled: only `Ready` changes.
    fn stopped(batch_job: &BatchJob, ready: Decided) -> Self {
        let previous = batch_job.status.clone().unwrap_or_default();
        Self {
            ready,
            degraded: None,
            last_schedule_time: previous.last_schedule_time.map(|t| t.0),
            last_successful_time: previous.last_successful_time.map(|t| t.0),
            next_schedule_time: None,
            active: None,
            history: None,
            backfill: previous.backfill,
        }
    }
}

async fn write_status(
    batch_job: &BatchJob,
    ctx: &Context,
    observed: Observed,
) -> Result<(), kube::Error> {
    let previous = batch_job.status.clone().unwrap_or_default();
    let generation = batch_job.metadata.generation;
    let was = conditions::ready(&previous.conditions).map(|(s, r)| (s == "True", r.to_owned()));
    let (now_ready, reason, message) = (
        observed.ready.status,
        observed.ready.reason,
        observed.ready.message.clone(),
    );
    let decided: Vec<Decided> = std::iter::once(observed.ready)
        .chain(observed.degraded)
        .collect();
    let conditions = conditions::merge(&previous.conditions, &decided, generation, ctx.now());
    let active = observed.active.unwrap_or(previous.active);
    let status = BatchJobStatus {
        observed_generation: generation,
        conditions,
        last_schedule_time: observed.last_schedule_time.map(Time),
        last_successful_time: observed.last_successful_time.map(Time),
        next_schedule_time: observed.next_schedule_time.map(Time),
        active_count: Some(i32::try_from(active.len()).unwrap_or(i32::MAX)),
        active,
        history: observed.history.unwrap_or(previous.history),
        backfill: observed.backfill,
    };
    if batch_job.status.as_ref() == Some(&status) {
        return Ok(());
    }
    if was != Some((now_ready, reason.to_owned())) {
        ctx.event(batch_job, !now_ready, reason, message).await;
    }
    let api: Api<BatchJob> = Api::namespaced(
        ctx.client.clone(),
        &batch_job.namespace().unwrap_or_default(),
    );
    let patch = json!({ "apiVersion": "tributary.dev/v1alpha1", "kind": KIND, "status": status });
    api.patch_status(
        &batch_job.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
