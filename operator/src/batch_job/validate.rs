//! The first pure step of the BatchJob reconcile: refuse what could never run, before any Job
//! starts and fails on it. Every error here becomes `Ready=False` and waits for a spec change.

use std::collections::BTreeSet;

use jiff::Timestamp;
use kube::ResourceExt;
use tributary_crds::{BatchJob, Invalid, Validate};
use tributary_workers::batch::{BatchPlanError, check_steps};

use super::schedule::{Schedule, ScheduleError};

/// A BatchJob's name goes into its Jobs' names, with the unix time, within 63 characters;
/// longer names are cut and hashed by [`super::schedule::job_name`], but the
/// `app.kubernetes.io/instance` label of the Jobs holds the whole name.
const MAX_NAME: usize = 63;

/// A spec the controller cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The schema or a CEL rule refuses the spec (API servers without CEL let it through).
    #[error("{0}")]
    Schema(#[from] Invalid),
    /// The schedule, time zone or backfill range cannot be computed.
    #[error("spec: {0}")]
    Schedule(#[from] ScheduleError),
    /// A name too long for the Jobs' labels.
    #[error(
        "metadata.name: {0} characters; a BatchJob's name is at most 63 characters, because \
         its Jobs carry it in a label"
    )]
    NameTooLong(usize),
    /// Two inputs, or two steps, share a name.
    #[error("spec.{list}: the name {name:?} is used twice; each {what} needs its own name")]
    DuplicateName {
        /// `inputs` or `steps`.
        list: &'static str,
        /// `input` or `step`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// An output's `partitionBy` holds a name that cannot be a path segment.
    #[error(
        "spec.steps[{index}].output.partitionBy: {name:?} is not a column name; write the \
         names of columns of the step's result, each once"
    )]
    PartitionBy {
        /// The step's index.
        index: usize,
        /// The offending entry.
        name: String,
    },
    /// A step's SQL does not parse, is not a query, reads an unknown table, or (when every
    /// input has a schema) does not plan against the inputs' columns.
    #[error("spec.steps: {0}")]
    Sql(#[from] BatchPlanError),
}

/// What the rest of the reconcile needs from a valid spec.
#[derive(Clone, Debug)]
pub struct Validated {
    /// `spec.schedule` in `spec.timeZone`.
    pub schedule: Schedule,
    /// The scheduled times of `spec.backfill`, in its order, with its request key.
    pub backfill: Option<(String, Vec<Timestamp>)>,
}

/// Check `batch_job` as the API server would, plus what only the scheduler knows (cron, time
/// zone, the backfill range) and what the worker would refuse (names, partition columns).
///
/// Last, the SQL is planned by the worker's own engine (DataFusion), without data: every step
/// must be one query over the inputs and earlier steps and, where every input has a `schema`,
/// must plan against those columns ([`tributary_workers::batch::check_steps`]).
pub async fn validate(batch_job: &BatchJob) -> Result<Validated, SpecError> {
    let name = batch_job.name_any();
    if name.len() > MAX_NAME {
        return Err(SpecError::NameTooLong(name.len()));
    }
    let spec = &batch_job.spec;
    let schedule = Schedule::from_spec(spec)?;
    unique("inputs", "input", spec.inputs.iter().map(|i| &i.name))?;
    unique("steps", "step", spec.steps.iter().map(|s| &s.name))?;
    for (index, step) in spec.steps.iter().enumerate() {
        let Some(output) = &step.output else { continue };
        let mut seen = BTreeSet::new();
        for column in &output.partition_by {
            let usable = !column.trim().is_empty()
                && !column.contains(['/', '='])
                && seen.insert(column.as_str());
            if !usable {
                return Err(SpecError::PartitionBy {
                    index,
                    name: column.clone(),
                });
            }
        }
    }
    let backfill = match &spec.backfill {
        Some(request) => Some((backfill_key(request), schedule.backfill(request)?)),
        None => None,
    };
    batch_job.validate(None)?;
    check_steps(&spec.inputs, &spec.steps).await?;
    Ok(Validated { schedule, backfill })
}

/// The request a backfill's progress in status belongs to: a changed range, order or `id` is
/// a new request.
pub fn backfill_key(backfill: &tributary_crds::batch_job::Backfill) -> String {
    let order = match backfill.order {
        tributary_crds::batch_job::BackfillOrder::OldestFirst => "OldestFirst",
        tributary_crds::batch_job::BackfillOrder::NewestFirst => "NewestFirst",
    };
    let mut key = format!("{}..{} {order}", backfill.from, backfill.to);
    if let Some(id) = &backfill.id {
        key.push_str(&format!(" id={id}"));
    }
    key
}

fn unique<'a>(
    list: &'static str,
    what: &'static str,
    names: impl Iterator<Item = &'a String>,
) -> Result<(), SpecError> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(SpecError::DuplicateName {
                list,
                what,
                name: name.clone(),
            });
        }
    }
    Ok(())
}
