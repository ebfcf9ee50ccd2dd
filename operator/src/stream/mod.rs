//! The Stream controller: create or adopt the Kinesis stream, then, one change at a time and
//! only while Kinesis reports it ACTIVE, carry the spec's tags, retention, encryption, capacity
//! mode and shard count to it (resharding in the steps Kinesis allows); requeue while Kinesis
//! is busy instead of blocking; revert changes made outside; on deletion delete or release the
//! stream by `deletionPolicy` (behind a finalizer).

pub mod kinesis;
pub mod plan;

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tributary_crds::common::Tags;
use tributary_crds::{DeletionPolicy, Stream, StreamStatus, Validate};

use crate::conditions::{self, Decided, READY};
use crate::context::Context;
use crate::reconciler::{Categorized, measured, paused};
use kinesis::{KinesisError, StreamState};
use plan::{Change, Desired, Step};

/// The finalizer that keeps a Stream until its Kinesis stream is deleted or released.
pub const FINALIZER: &str = "tributary.dev/stream";
/// The field manager of this controller's writes.
pub const FIELD_MANAGER: &str = "tributary-stream-controller";

const KIND: &str = "Stream";
/// How often Kinesis is asked again while it creates or updates the stream.
const POLL: Duration = Duration::from_secs(5);
/// How soon a change a Kinesis quota refused is tried again.
const QUOTA_RETRY_MINUTES: u64 = 15;
/// The most changes one reconcile makes while Kinesis keeps reporting the stream ACTIVE
/// (tags do not make it UPDATING; some emulators never do).
const MAX_CHANGES: usize = 8;

/// A Stream reconciliation that failed and will be retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or did not answer.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// Kinesis refused or did not answer.
    #[error(transparent)]
    Kinesis(#[from] KinesisError),
    /// The finalizer helper failed.
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Categorized for Error {
    fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kubernetes",
            Error::Kinesis(_) => "aws",
            Error::Finalizer(e) => e.category(),
        }
    }
}

/// Reconcile one Stream.
#[tracing::instrument(skip_all, fields(kind = KIND, namespace = %stream.namespace().unwrap_or_default(), name = %stream.name_any()))]
pub async fn reconcile(stream: Arc<Stream>, ctx: Arc<Context>) -> Result<Action, Error> {
    // A paused Stream is left alone entirely (no finalizer either), unless it is being
    // deleted: then cleanup releases it without touching Kinesis.
    if paused(stream.as_ref()) && stream.meta().deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let api: Api<Stream> =
        Api::namespaced(ctx.client.clone(), &stream.namespace().unwrap_or_default());
    let work = finalizer(&api, FINALIZER, stream.clone(), |event| async {
        match event {
            Finalizer::Apply(stream) => apply(&stream, &ctx).await,
            Finalizer::Cleanup(stream) => cleanup(&stream, &ctx).await,
        }
    });
    measured(stream.as_ref(), &ctx, async {
        work.await.map_err(|e| Error::Finalizer(Box::new(e)))
    })
    .await
}

/// What a reconcile found.
struct Outcome {
    conditions: Vec<Decided>,
    /// `None` keeps what status has.
    observed: Option<StreamState>,
    pending: Vec<i32>,
    /// `None` keeps what status has.
    drifted: Option<Vec<String>>,
}

impl Outcome {
    fn not_ready(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            conditions: vec![Decided::no(READY, reason, message)],
            observed: None,
            pending: Vec::new(),
            drifted: None,
        }
    }
}

async fn apply(stream: &Stream, ctx: &Context) -> Result<Action, Error> {
    if let Err(invalid) = stream.validate(None) {
        let outcome = Outcome::not_ready("InvalidSpec", invalid.to_string());
        write_status(stream, ctx, outcome).await?;
        return Ok(Action::await_change());
    }
    match provision(stream, ctx).await {
        Ok((outcome, action)) => {
            write_status(stream, ctx, outcome).await?;
            Ok(action)
        }
        Err(error) => {
            let message = format!("{error}; retrying with backoff");
            write_status(stream, ctx, Outcome::not_ready("KinesisError", message)).await?;
            Err(error.into())
        }
    }
}

/// Whether the last status said Kinesis matched this generation of the spec: then whatever
/// differs now was changed outside Kubernetes.
fn was_in_sync(stream: &Stream) -> bool {
    stream.status.as_ref().is_some_and(|s| {
        s.observed_generation == stream.metadata.generation
            && conditions::ready(&s.conditions) == Some(("True", "InSync"))
    })
}

/// Observe the stream, make the planned changes while Kinesis reports it ACTIVE, and decide the
/// status from what Kinesis then reports.
async fn provision(stream: &Stream, ctx: &Context) -> Result<(Outcome, Action), KinesisError> {
    let region = stream.spec.region.as_deref();
    let desired = Desired::from_stream(stream);
    let name = desired.name.as_str();
    let mut observed = ctx.kinesis.describe(region, name).await?;
    // The tags of `observed`, once read.
    let mut tags = None;
    let mut drifted = None;
    for round in 0..MAX_CHANGES {
        let current = match (&observed, tags.take()) {
            (Some(found), None) if found.is_active() => ctx.kinesis.tags(region, name).await?,
            (_, known) => known.unwrap_or_default(),
        };
        let change = match plan::plan(&desired, observed.as_ref(), &current) {
            Step::Create => {
                ctx.kinesis
                    .create(
                        region,
                        name,
                        desired.mode,
                        desired.shard_count,
                        &desired.tags,
                    )
                    .await?;
                let message = format!("creating Kinesis stream {name}");
                ctx.event(stream, false, "Created", message).await;
                observed = ctx.kinesis.describe(region, name).await?;
                break;
            }
            Step::Wait(_) | Step::InSync => {
                tags = Some(current);
                break;
            }
            Step::Change(change) => change,
        };
        let Some(found) = observed.take() else {
            break;
        };
        if round == 0 && was_in_sync(stream) {
            let fields: Vec<String> = plan::changes(&desired, &found, &current)
                .iter()
                .map(|c| c.field().to_owned())
                .collect();
            let message = format!(
                "changed in Kinesis, set back to the spec: {}",
                fields.join(", ")
            );
            ctx.event(stream, true, "DriftReverted", message).await;
            drifted = Some(fields);
        }
        if let Err(error) = ctx.kinesis.change(region, &found, name, &change).await {
            let Some((conditions, action)) = refused(&change, &error, ctx) else {
                return Err(error);
            };
            let outcome = Outcome {
                conditions: conditions.into(),
                pending: plan::pending_shard_counts(&desired, &found),
                observed: Some(found),
                drifted,
            };
            return Ok((outcome, action));
        }
        let message = change.message(desired.shard_count);
        ctx.event(stream, false, change.reason(), message).await;
        observed = ctx.kinesis.describe(region, name).await?;
        // Kinesis may not show a change at once: never make the same call twice in a row.
        if observed.as_ref() == Some(&found) && !matches!(change, Change::Tags { .. }) {
            break;
        }
    }
    let Some(found) = observed else {
        let outcome = Outcome {
            conditions: plan::waiting("CREATING", &[]).into(),
            observed: None,
            pending: Vec::new(),
            drifted,
        };
        return Ok((outcome, Action::requeue(POLL)));
    };
    let tags = match tags {
        Some(tags) => tags,
        None if found.is_active() => ctx.kinesis.tags(region, name).await?,
        None => Tags::new(),
    };
    let pending = plan::pending_shard_counts(&desired, &found);
    let (conditions, action) = match plan::plan(&desired, Some(&found), &tags) {
        Step::InSync => (plan::in_sync(name), Action::requeue(ctx.resync)),
        Step::Wait(status) => (plan::waiting(&status, &pending), Action::requeue(POLL)),
        // ACTIVE with changes still to make: one Kinesis does not show yet, or past the round
        // limit.
        _ => (plan::waiting("UPDATING", &pending), Action::requeue(POLL)),
    };
    let outcome = Outcome {
        conditions: conditions.into(),
        observed: Some(found),
        pending,
        drifted,
    };
    Ok((outcome, action))
}

/// The status and requeue when Kinesis refused `change` for a reason a retry with backoff does
/// not fix: a quota (resharding, mode switches), or a KMS key it cannot use.
fn refused(
    change: &Change,
    error: &KinesisError,
    ctx: &Context,
) -> Option<(plan::Conditions, Action)> {
    match change {
        Change::Reshard { .. } | Change::Mode { .. } if error.is_limit_exceeded() => {
            let retry = QUOTA_RETRY_MINUTES;
            Some((
                plan::quota_exceeded(change, &error.message, retry),
                Action::requeue(Duration::from_secs(retry * 60)),
            ))
        }
        Change::StartEncryption { .. } | Change::StopEncryption { .. }
            if error.is_key_refused() =>
        {
            Some((
                plan::encryption_failed(change, &error.message),
                Action::requeue(ctx.resync),
            ))
        }
        _ => None,
    }
}

/// On deletion: `Delete` deletes the Kinesis stream (one already gone, or being deleted, counts
/// as deleted); `Retain` (the default) only releases it, as does a paused object.
async fn cleanup(stream: &Stream, ctx: &Context) -> Result<Action, Error> {
    let name = stream.kinesis_name();
    let kept = if paused(stream) {
        Some("the object is paused")
    } else {
        (stream.spec.deletion_policy == DeletionPolicy::Retain).then_some("deletionPolicy: Retain")
    };
    if let Some(why) = kept {
        let message = format!("released; the Kinesis stream {name} is kept ({why})");
        tracing::info!("{message}");
        ctx.event(stream, false, "Released", message).await;
        return Ok(Action::await_change());
    }
    let region = stream.spec.region.as_deref();
    match ctx.kinesis.describe(region, name).await? {
        Some(found) if found.status != "DELETING" => {
            ctx.kinesis.delete(region, name).await?;
            let message = format!("deleting Kinesis stream {name}");
            tracing::info!("{message}");
            ctx.event(stream, false, "Deleted", message).await;
        }
        _ => tracing::info!(stream = name, "the Kinesis stream is already gone"),
    }
    Ok(Action::await_change())
}

async fn write_status(stream: &Stream, ctx: &Context, outcome: Outcome) -> Result<(), kube::Error> {
    let previous = stream.status.clone().unwrap_or_default();
    let generation = stream.metadata.generation;
    let ready = outcome.conditions.iter().find(|c| c.type_ == READY);
    let was_ready = conditions::ready(&previous.conditions).map(|(s, _)| s == "True");
    let transition = ready
        .filter(|r| was_ready != Some(r.status))
        .map(|r| (r.status, r.message.clone()));
    let conditions = conditions::merge(
        &previous.conditions,
        &outcome.conditions,
        generation,
        ctx.now(),
    );
    let status = match outcome.observed {
        Some(found) => StreamStatus {
            observed_generation: generation,
            conditions,
            stream_name: Some(stream.kinesis_name().to_owned()),
            arn: Some(found.arn),
            stream_status: Some(found.status),
            mode: Some(found.mode),
            open_shard_count: Some(found.open_shards),
            retention_hours: Some(found.retention_hours),
            pending_shard_counts: outcome.pending,
            drifted_fields: outcome.drifted.unwrap_or(previous.drifted_fields),
        },
        None => StreamStatus {
            observed_generation: generation,
            conditions,
            stream_name: Some(stream.kinesis_name().to_owned()),
            drifted_fields: outcome.drifted.unwrap_or(previous.drifted_fields.clone()),
            ..previous
        },
    };
    if stream.status.as_ref() == Some(&status) {
        return Ok(());
    }
    if let Some((now_ready, message)) = transition {
        let reason = if now_ready { "Ready" } else { "NotReady" };
        ctx.event(stream, !now_ready, reason, message).await;
    }
    let api: Api<Stream> =
        Api::namespaced(ctx.client.clone(), &stream.namespace().unwrap_or_default());
    let patch = json!({ "apiVersion": "tributary.dev/v1alpha1", "kind": KIND, "status": status });
    api.patch_status(
        &stream.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
