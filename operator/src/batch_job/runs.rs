//! The pure middle of the BatchJob reconcile: what the existing Jobs say about the runs, which
//! runs to start (and which to stop for them), which finished Jobs to delete, and the history.

use std::collections::BTreeSet;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use tributary_crds::BatchJobSpec;
use tributary_crds::batch_job::{
    BackfillStatus, ConcurrencyPolicy, OutputRows, RunOutcome, RunRecord,
};
use tributary_workers::batch::config::OutputSummary;

use super::build::{BACKFILL_REQUEST, SCHEDULED_TIME};
use super::schedule::{DueRuns, Skipped, StartDecision, job_name, start_decision};

/// Backfill Jobs running at once under `concurrencyPolicy: Allow` (otherwise one, and only
/// while nothing else runs).
pub const BACKFILL_PARALLELISM: usize = 1;
/// The fewest finished runs the history keeps.
const MIN_HISTORY: usize = 10;

/// One run, as its Job says.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// The Job's name.
    pub job_name: String,
    /// The scheduled time (the Job's annotation).
    pub scheduled: Timestamp,
    /// The backfill request it belongs to; `None` for a scheduled run.
    pub backfill: Option<String>,
    /// `Running`, `Succeeded` or `Failed`.
    pub outcome: RunOutcome,
    /// When the Job started.
    pub start_time: Option<Time>,
    /// When it ended.
    pub end_time: Option<Timestamp>,
    /// The Job's explanation of a failure.
    pub message: Option<String>,
}

impl Run {
    /// Whether the run ended.
    pub fn finished(&self) -> bool {
        self.outcome != RunOutcome::Running
    }

    /// Its record for status, with the rows it wrote.
    pub fn record(&self, outputs: Vec<OutputRows>) -> RunRecord {
        let duration = match (&self.start_time, self.end_time) {
            (Some(start), Some(end)) => Some(end.as_second() - start.0.as_second()),
            _ => None,
        };
        RunRecord {
            scheduled_time: Time(self.scheduled),
            job_name: self.job_name.clone(),
            outcome: self.outcome,
            start_time: self.start_time.clone(),
            duration_seconds: duration,
            outputs,
            message: self.message.clone(),
        }
    }
}

/// The run a Job of a BatchJob is; `None` for a Job without a readable scheduled time (not
/// made by this controller).
pub fn observe(job: &Job) -> Option<Run> {
    let annotations = job.metadata.annotations.as_ref()?;
    let scheduled: Timestamp = annotations.get(SCHEDULED_TIME)?.parse().ok()?;
    let status = job.status.clone().unwrap_or_default();
    let condition = |type_: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_ && c.status == "True")
            .cloned()
    };
    let (outcome, ended) = if let Some(complete) = condition("Complete") {
        (RunOutcome::Succeeded, Some(complete))
    } else if let Some(failed) = condition("Failed") {
        (RunOutcome::Failed, Some(failed))
    } else {
        (RunOutcome::Running, None)
    };
    let end_time = status
        .completion_time
        .clone()
        .or_else(|| ended.as_ref().and_then(|c| c.last_transition_time.clone()))
        .filter(|_| ended.is_some())
        .map(|t| t.0);
    let message =
        ended
            .filter(|_| outcome == RunOutcome::Failed)
            .map(|c| match (c.reason, c.message) {
                (Some(reason), Some(message)) => format!("{reason}: {message}"),
                (reason, message) => reason.or(message).unwrap_or_default(),
            });
    Some(Run {
        job_name: job.name_any(),
        scheduled,
        backfill: annotations.get(BACKFILL_REQUEST).cloned(),
        outcome,
        start_time: status.start_time,
        end_time,
        message,
    })
}

/// The rows per output in a container's termination message (the worker's JSON array of
/// [`OutputSummary`]); `None` when it is not one (a crash leaves the log's tail there).
pub fn outputs(termination_message: &str) -> Option<Vec<OutputRows>> {
    let summaries: Vec<OutputSummary> = serde_json::from_str(termination_message.trim()).ok()?;
    Some(
        summaries
            .into_iter()
            .map(|s| OutputRows {
                step: s.step,
                rows: s.rows,
            })
            .collect(),
    )
}

/// A run to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    /// Its scheduled time.
    pub scheduled: Timestamp,
    /// The backfill request, for a backfill run.
    pub backfill: Option<String>,
}

/// What to do this reconcile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Active Jobs to stop first (`Replace`).
    pub stop: Vec<String>,
    /// Runs to start, in order.
    pub start: Vec<Start>,
}

/// The runs to start (and Jobs to stop) given the `due` scheduled runs, the `runs` that exist,
/// and the backfill's pending scheduled times `backfill` (of request `key`, not yet started).
///
/// - Scheduled runs follow `concurrencyPolicy`: `Allow` starts every due run; `Forbid` starts
///   the oldest due run once nothing runs (the others stay due); `Replace` stops the active runs
///   and starts the newest due run.
/// - A backfill run starts only when no scheduled run is starting, and under `Forbid` and
///   `Replace` only when nothing runs at all; at most [`BACKFILL_PARALLELISM`] at once.
pub fn plan(
    spec: &BatchJobSpec,
    due: &DueRuns,
    runs: &[Run],
    backfill: Option<(&str, &[Timestamp])>,
) -> Plan {
    let active: Vec<&Run> = runs.iter().filter(|r| !r.finished()).collect();
    let mut plan = Plan::default();
    let scheduled = |t: &Timestamp| Start {
        scheduled: *t,
        backfill: None,
    };
    if let (Some(oldest), Some(newest)) = (due.runs.first(), due.runs.last()) {
        match start_decision(spec.concurrency_policy, active.len()) {
            StartDecision::Wait => {}
            StartDecision::ReplaceActive => {
                plan.stop = active.iter().map(|r| r.job_name.clone()).collect();
                plan.start.push(scheduled(newest));
            }
            StartDecision::Start | StartDecision::StartAlongside => match spec.concurrency_policy {
                ConcurrencyPolicy::Allow => plan.start.extend(due.runs.iter().map(scheduled)),
                ConcurrencyPolicy::Forbid => plan.start.push(scheduled(oldest)),
                ConcurrencyPolicy::Replace => plan.start.push(scheduled(newest)),
            },
        }
    }
    if let Some((key, pending)) = backfill
        && plan.start.is_empty()
    {
        let backfilling = active
            .iter()
            .filter(|r| r.backfill.as_deref() == Some(key))
            .count();
        let room = match spec.concurrency_policy {
            ConcurrencyPolicy::Allow => BACKFILL_PARALLELISM.saturating_sub(backfilling),
            _ if active.is_empty() => 1,
            _ => 0,
        };
        plan.start.extend(pending.iter().take(room).map(|t| Start {
            scheduled: *t,
            backfill: Some(key.to_owned()),
        }));
    }
    plan
}

/// The backfill's scheduled times not started yet: those after the ones `progress` counts as
/// finished and the `runs` of the request still running. Times after `now` wait for their time.
pub fn pending_backfill<'a>(
    times: &'a [Timestamp],
    key: &str,
    progress: &BackfillStatus,
    runs: &[Run],
    now: Timestamp,
) -> &'a [Timestamp] {
    let running = runs
        .iter()
        .filter(|r| !r.finished() && r.backfill.as_deref() == Some(key))
        .count();
    let started = usize::try_from(progress.completed).unwrap_or(0) + running;
    let pending = times.get(started..).unwrap_or_default();
    let ready = pending.iter().take_while(|t| **t <= now).count();
    &pending[..ready]
}

/// The backfill's progress: `previous` (if of the same request) plus the runs of the request
/// that finished since, and `adopted` times whose Jobs already existed as scheduled runs.
pub fn backfill_progress(
    key: &str,
    total: usize,
    previous: Option<&BackfillStatus>,
    newly_finished: &[&Run],
    adopted: usize,
) -> BackfillStatus {
    let mut progress = previous
        .filter(|p| p.request == key)
        .cloned()
        .unwrap_or_else(|| BackfillStatus {
            request: key.to_owned(),
            ..BackfillStatus::default()
        });
    progress.total = i32::try_from(total).unwrap_or(i32::MAX);
    for run in newly_finished {
        if run.backfill.as_deref() == Some(key) {
            progress.completed += 1;
            if run.outcome == RunOutcome::Failed {
                progress.failed += 1;
            }
        }
    }
    progress.completed += i32::try_from(adopted).unwrap_or(0);
    progress.completed = progress.completed.min(progress.total);
    progress
}

/// The finished Jobs to delete: those beyond `successfulRunsHistoryLimit` succeeded and
/// `failedRunsHistoryLimit` failed runs, oldest scheduled time first.
pub fn garbage(spec: &BatchJobSpec, runs: &[Run]) -> Vec<String> {
    let mut delete = Vec::new();
    for (outcome, limit) in [
        (RunOutcome::Succeeded, spec.successful_runs_history_limit),
        (RunOutcome::Failed, spec.failed_runs_history_limit),
    ] {
        let mut finished: Vec<&Run> = runs.iter().filter(|r| r.outcome == outcome).collect();
        finished.sort_by_key(|r| r.scheduled);
        let keep = usize::try_from(limit).unwrap_or(0);
        let excess = finished.len().saturating_sub(keep);
        delete.extend(finished[..excess].iter().map(|r| r.job_name.clone()));
    }
    delete
}

/// How many finished runs the history keeps: at least every finished Job kept by the history
/// limits, so that a run is reported finished (and its Event sent) once.
pub fn history_limit(spec: &BatchJobSpec) -> usize {
    let kept = spec.successful_runs_history_limit.max(0) + spec.failed_runs_history_limit.max(0);
    usize::try_from(kept).unwrap_or(0).max(MIN_HISTORY)
}

/// The runs among `finished` that the `previous` history does not know: they ended since.
pub fn newly_finished<'a>(previous: &[RunRecord], runs: &'a [Run]) -> Vec<&'a Run> {
    let known: BTreeSet<&str> = previous.iter().map(|r| r.job_name.as_str()).collect();
    runs.iter()
        .filter(|r| r.finished() && !known.contains(r.job_name.as_str()))
        .collect()
}

/// `previous` with `records` added (replacing records of the same Job), newest scheduled time
/// first, at most `limit`.
pub fn merge_history(
    previous: &[RunRecord],
    records: Vec<RunRecord>,
    limit: usize,
) -> Vec<RunRecord> {
    let replaced: BTreeSet<String> = records.iter().map(|r| r.job_name.clone()).collect();
    let mut history: Vec<RunRecord> = previous
        .iter()
        .filter(|r| !replaced.contains(&r.job_name))
        .cloned()
        .chain(records)
        .collect();
    history.sort_by_key(|r| std::cmp::Reverse(r.scheduled_time.0));
    history.truncate(limit);
    history
}

/// A `Skipped` record for scheduled times that were not run.
pub fn skipped_record(batch_job: &str, skipped: &Skipped, why: &str) -> RunRecord {
    let message = if skipped.count == 1 {
        format!("the run at {} was skipped: {why}", skipped.newest)
    } else {
        format!(
            "{} runs from {} to {} were skipped: {why}",
            skipped.count, skipped.oldest, skipped.newest
        )
    };
    RunRecord {
        scheduled_time: Time(skipped.newest),
        job_name: job_name(batch_job, skipped.newest),
        outcome: RunOutcome::Skipped,
        start_time: None,
        duration_seconds: None,
        outputs: Vec::new(),
        message: Some(message),
    }
}
