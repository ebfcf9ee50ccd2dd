//! The Sink controller: validate (pure) → dereference the source (a Topic and its KafkaCluster,
//! or a Stream) → resolve the worker configuration (pure) → ensure the S3 bucket → build the
//! ConfigMap and the Deployment (pure) → apply both → status from the applied Deployment, from
//! its pods (a worker's termination message says why it stopped) and, for a Topic, from the
//! consumer group's committed offsets in Kafka (lag and last flush, see decision 0011). A
//! Stream source has no consumer group: how far behind its workers are and when they last
//! flushed come from the shard leases they keep in the destination bucket (decision 0042).

pub mod build;
pub mod resolve;
pub mod rollout;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tributary_crds::{DeletionPolicy, KafkaCluster, Sink, SinkStatus, Stream, Topic};
use tributary_workers::sink::config::SinkWorkerConfig;

use crate::buckets::{BucketError, BucketState};
use crate::conditions::{self, Decided, READY};
use crate::context::Context;
use crate::kafka_admin::{AdminError, GroupLag};
use crate::kafka_cluster::{self, connection};
use crate::reconciler::{Categorized, measured, paused};
use resolve::ResolveError;
use validate::SpecError;

/// The finalizer of a Sink with `deletionPolicy: Delete`, kept until its consumer group is
/// deleted.
pub const FINALIZER: &str = "tributary.dev/sink";
/// The field manager of this controller's writes (children and status).
pub const FIELD_MANAGER: &str = "tributary-sink";

const KIND: &str = "Sink";
/// How soon a missing Topic, KafkaCluster or Stream is looked for again (their watches are
/// faster).
const WAIT: Duration = Duration::from_secs(30);
/// How often a running Sink's lag is read from Kafka (and its pods are looked at: they are not
/// watched).
const LAG_REFRESH: Duration = Duration::from_secs(30);

/// A Sink reconciliation that failed and will be retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or did not answer.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// S3 refused or did not answer.
    #[error(transparent)]
    Bucket(#[from] BucketError),
    /// Kafka refused or did not answer (deleting the consumer group).
    #[error(transparent)]
    Kafka(#[from] AdminError),
    /// The consumer group must be deleted from a cluster that cannot be reached now.
    #[error("cannot delete the consumer group yet: {0}")]
    ClusterUnavailable(String),
    /// The finalizer helper failed.
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Categorized for Error {
    fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kubernetes",
            Error::Bucket(_) => "aws",
            Error::Kafka(_) | Error::ClusterUnavailable(_) => "kafka",
            Error::Finalizer(e) => e.category(),
        }
    }
}

/// Reconcile one Sink.
pub async fn reconcile(sink: Arc<Sink>, ctx: Arc<Context>) -> Result<Action, Error> {
    // A paused Sink is left alone entirely, unless it is being deleted: then cleanup releases
    // it without touching Kafka.
    let deleting = sink.meta().deletion_timestamp.is_some();
    if paused(sink.as_ref()) && !deleting {
        return Ok(Action::await_change());
    }
    let work = async {
        // Only the consumer group of a `Delete` Sink is state outside Kubernetes; the children
        // go with their owner.
        let finalized = sink.finalizers().iter().any(|f| f == FINALIZER);
        if sink.spec.deletion_policy == DeletionPolicy::Delete || finalized {
            let api: Api<Sink> =
                Api::namespaced(ctx.client.clone(), &sink.namespace().unwrap_or_default());
            finalizer(&api, FINALIZER, sink.clone(), |event| async {
                match event {
                    Finalizer::Apply(sink) => apply(&sink, &ctx).await,
                    Finalizer::Cleanup(sink) => cleanup(&sink, &ctx).await,
                }
            })
            .await
            .map_err(|e| Error::Finalizer(Box::new(e)))
        } else if deleting {
            Ok(Action::await_change())
        } else {
            apply(&sink, &ctx).await
        }
    };
    measured(sink.as_ref(), &ctx, work).await
}

/// Why a reconcile stopped before the workers were applied.
enum Stop {
    /// Nothing to do until something changes: the status says why.
    Wait {
        reason: &'static str,
        message: String,
        retry: Action,
    },
    /// A transient failure: the status says why, and the reconcile is retried with backoff.
    Fail { reason: &'static str, error: Error },
}

impl From<SpecError> for Stop {
    fn from(error: SpecError) -> Self {
        Stop::Wait {
            reason: error.reason(),
            message: error.to_string(),
            retry: Action::await_change(),
        }
    }
}

impl From<ResolveError> for Stop {
    fn from(error: ResolveError) -> Self {
        Stop::Wait {
            reason: error.reason(),
            message: error.to_string(),
            retry: if error.is_permanent() {
                Action::await_change()
            } else {
                Action::requeue(WAIT)
            },
        }
    }
}

impl From<kube::Error> for Stop {
    fn from(error: kube::Error) -> Self {
        Stop::Fail {
            reason: "KubernetesError",
            error: error.into(),
        }
    }
}

impl From<BucketError> for Stop {
    fn from(error: BucketError) -> Self {
        Stop::Fail {
            reason: "S3Error",
            error: error.into(),
        }
    }
}

/// What the reconcile applied.
struct Applied {
    deployment: Deployment,
    /// The Topic's cluster; `None` for a Stream source, which has no lag to read.
    cluster: Option<KafkaCluster>,
    config: SinkWorkerConfig,
}

#[tracing::instrument(skip_all, fields(kind = KIND, namespace = %sink.namespace().unwrap_or_default(), name = %sink.name_any()))]
async fn apply(sink: &Sink, ctx: &Context) -> Result<Action, Error> {
    match converge(sink, ctx).await {
        Ok(applied) => {
            let pods = list_workers(sink, ctx).await;
            let workers = rollout::observe(&applied.deployment, &pods, sink.spec.paused);
            let lag = match &applied.cluster {
                Some(cluster) => read_lag(ctx, cluster, &applied.config).await,
                None => None,
            };
            let stream = read_stream_progress(sink, ctx, &applied.config).await;
            let [ready, progressing, degraded] = workers.conditions;
            let outcome = Outcome {
                workers: Some((workers.replicas, workers.ready_replicas)),
                lag,
                stream,
                more: vec![progressing, degraded],
                ..Outcome::new(ready)
            };
            write_status(sink, ctx, outcome).await?;
            Ok(Action::requeue(LAG_REFRESH.min(ctx.resync)))
        }
        Err(Stop::Wait {
            reason,
            message,
            retry,
        }) => {
            write_status(sink, ctx, Outcome::new(Decided::no(READY, reason, message))).await?;
            Ok(retry)
        }
        Err(Stop::Fail { reason, error }) => {
            let message = format!("{error}; retrying with backoff");
            write_status(sink, ctx, Outcome::new(Decided::no(READY, reason, message))).await?;
            Err(error)
        }
    }
}

/// Everything up to the applied Deployment.
async fn converge(sink: &Sink, ctx: &Context) -> Result<Applied, Stop> {
    let destination = validate::validate(sink)?;
    let Some(image) = ctx.workers.image.as_deref() else {
        return Err(Stop::Wait {
            reason: "NoWorkerImage",
            message: "the operator was started without --image (TRIBUTARY_IMAGE), the image \
                      of the worker pods: restart it with its own image"
                .into(),
            retry: Action::await_change(),
        });
    };
    let (resolved, cluster) = if sink.spec.source.stream_ref.is_some() {
        let stream = dereference_stream(sink, ctx).await?;
        let region = ctx.aws.region.as_deref();
        let resolved = resolve::resolve_stream(sink, &stream, &destination, region);
        (resolved, None)
    } else {
        let (topic, cluster) = dereference(sink, ctx).await?;
        let resolved = resolve::resolve(sink, &topic, &cluster, &destination)?;
        (resolved, Some(cluster))
    };
    if let Some(bucket) = &destination.bucket {
        ensure_bucket(sink, ctx, bucket).await?;
    }
    let desired = build::build(sink, &resolved, image, &ctx.workers, &ctx.aws);
    let deployment = apply_children(sink, ctx, desired).await?;
    Ok(Applied {
        deployment,
        cluster,
        config: resolved.config,
    })
}

/// The (namespace, name) of the Topic a Sink reads, if it reads one.
pub fn topic_key(sink: &Sink) -> Option<(String, String)> {
    let r = sink.spec.source.topic_ref.as_ref()?;
    let namespace = r
        .namespace
        .clone()
        .unwrap_or_else(|| sink.namespace().unwrap_or_default());
    Some((namespace, r.name.clone()))
}

/// The (namespace, name) of the Stream a Sink reads, if it reads one.
pub fn stream_key(sink: &Sink) -> Option<(String, String)> {
    let r = sink.spec.source.stream_ref.as_ref()?;
    let namespace = r
        .namespace
        .clone()
        .unwrap_or_else(|| sink.namespace().unwrap_or_default());
    Some((namespace, r.name.clone()))
}

/// `topic/<name>` (`topic/<namespace>/<name>` in another namespace) or `stream/<name>`.
pub fn source(sink: &Sink) -> String {
    let source = &sink.spec.source;
    let (kind, r) = match (&source.topic_ref, &source.stream_ref) {
        (Some(r), _) => ("topic", r),
        (None, Some(r)) => ("stream", r),
        (None, None) => return String::new(),
    };
    match &r.namespace {
        Some(ns) if Some(ns) != sink.namespace().as_ref() => format!("{kind}/{ns}/{}", r.name),
        _ => format!("{kind}/{}", r.name),
    }
}

/// The Topic and its KafkaCluster.
async fn dereference(sink: &Sink, ctx: &Context) -> Result<(Topic, KafkaCluster), Stop> {
    let (namespace, name) = topic_key(sink).expect("a validated Sink reads a Topic");
    let topics: Api<Topic> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(topic) = topics.get_opt(&name).await? else {
        return Err(Stop::Wait {
            reason: "TopicNotFound",
            message: format!("Topic {namespace}/{name} does not exist"),
            retry: Action::requeue(WAIT),
        });
    };
    let (cluster_ns, cluster_name) = crate::topic::cluster_key(&topic, &namespace);
    let clusters: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &cluster_ns);
    let Some(cluster) = clusters.get_opt(&cluster_name).await? else {
        return Err(Stop::Wait {
            reason: "ClusterNotFound",
            message: format!(
                "KafkaCluster {cluster_ns}/{cluster_name} (of Topic {namespace}/{name}) does \
                 not exist"
            ),
            retry: Action::requeue(WAIT),
        });
    };
    Ok((topic, cluster))
}

/// The Stream a Sink reads.
async fn dereference_stream(sink: &Sink, ctx: &Context) -> Result<Stream, Stop> {
    let (namespace, name) = stream_key(sink).expect("a Sink with a streamRef");
    let streams: Api<Stream> = Api::namespaced(ctx.client.clone(), &namespace);
    streams.get_opt(&name).await?.ok_or_else(|| Stop::Wait {
        reason: "StreamNotFound",
        message: format!("Stream {namespace}/{name} does not exist"),
        retry: Action::requeue(WAIT),
    })
}

/// The destination bucket exists, or is created when the spec asks for it. Never deleted.
async fn ensure_bucket(sink: &Sink, ctx: &Context, bucket: &str) -> Result<(), Stop> {
    let destination = &sink.spec.destination;
    let state = ctx
        .buckets
        .ensure_bucket(
            destination.region.as_deref(),
            bucket,
            destination.create_bucket,
        )
        .await?;
    match state {
        BucketState::Exists => Ok(()),
        BucketState::Created => {
            let message = format!("created S3 bucket {bucket}");
            ctx.event(sink, false, "BucketCreated", message).await;
            Ok(())
        }
        BucketState::Missing => Err(Stop::Wait {
            reason: "BucketNotFound",
            message: format!(
                "S3 bucket {bucket} does not exist: create it, or set \
                 spec.destination.createBucket: true"
            ),
            retry: Action::requeue(ctx.resync),
        }),
    }
}

/// Apply the ConfigMap, then the Deployment (so new pods read the new configuration); the
/// Deployment as the API server has it now.
async fn apply_children(
    sink: &Sink,
    ctx: &Context,
    desired: build::Desired,
) -> Result<Deployment, kube::Error> {
    let namespace = sink.namespace().unwrap_or_default();
    let name = build::child_name(sink);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    config_maps
        .patch(&name, &params, &Patch::Apply(&desired.config_map))
        .await?;
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);
    deployments
        .patch(&name, &params, &Patch::Apply(&desired.deployment))
        .await
}

/// The worker pods of `sink` (none while it is paused); none when they cannot be listed now
/// (the status then comes from the Deployment alone: listing pods never fails a reconcile).
async fn list_workers(sink: &Sink, ctx: &Context) -> Vec<Pod> {
    if sink.spec.paused {
        return Vec::new();
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &sink.namespace().unwrap_or_default());
    let params = ListParams::default().labels(&build::pod_selector(sink));
    pods.list(&params)
        .await
        .map(|list| list.items)
        .inspect_err(|error| tracing::warn!(%error, "cannot list the worker pods"))
        .unwrap_or_default()
}

/// How far a Stream source's workers are, from their shard leases: the largest
/// `MillisBehindLatest` of the shards not finished, and the latest flush. `None` for a Topic
/// source, without leases, or when they cannot be read now (a reading never fails a reconcile).
async fn read_stream_progress(
    sink: &Sink,
    ctx: &Context,
    config: &SinkWorkerConfig,
) -> Option<StreamProgress> {
    let kinesis = config.kinesis.as_ref()?;
    let (bucket, prefix) = kinesis
        .leases
        .as_ref()?
        .shards_location(&kinesis.stream_name)?;
    let leases = ctx
        .buckets
        .shard_leases(sink.spec.destination.region.as_deref(), &bucket, &prefix)
        .await
        .inspect_err(|error| tracing::warn!(%error, "cannot read the shard leases"))
        .ok()?;
    Some(StreamProgress {
        millis_behind: leases
            .iter()
            .filter(|lease| !lease.finished)
            .filter_map(|lease| lease.millis_behind_latest)
            .max(),
        last_flush: leases
            .iter()
            .filter_map(|lease| lease.last_flush_time.as_deref())
            .filter_map(|time| time.parse::<Timestamp>().ok())
            .max(),
    })
}

/// The consumer group's lag, read from Kafka; `None` when it cannot be read now (the status
/// keeps what it had: a lag reading never fails a reconcile).
async fn read_lag(
    ctx: &Context,
    cluster: &KafkaCluster,
    config: &SinkWorkerConfig,
) -> Option<GroupLag> {
    if !kafka_cluster::serving(cluster) {
        return None;
    }
    let connection = connection::resolve(&ctx.client, cluster)
        .await
        .inspect_err(|error| tracing::warn!(%error, "cannot read the lag: no connection"))
        .ok()?;
    let admin = ctx
        .kafka
        .admin(&connection)
        .inspect_err(|error| tracing::warn!(%error, "cannot read the lag"))
        .ok()?;
    admin
        .group_lag(&config.consumer_group, &config.topic)
        .await
        .inspect_err(
            |error| tracing::warn!(%error, group = %config.consumer_group, "cannot read the lag"),
        )
        .ok()
}

#[tracing::instrument(skip_all, fields(kind = KIND, namespace = %sink.namespace().unwrap_or_default(), name = %sink.name_any()))]
async fn cleanup(sink: &Sink, ctx: &Context) -> Result<Action, Error> {
    let group = resolve::consumer_group(sink);
    if sink.spec.deletion_policy == DeletionPolicy::Retain
        || paused(sink)
        || sink.spec.source.topic_ref.is_none()
    {
        tracing::info!(%group, "released (the consumer group is kept)");
        return Ok(Action::await_change());
    }
    // Kafka deletes only a group without members: the workers leave it first.
    let deployments: Api<Deployment> =
        Api::namespaced(ctx.client.clone(), &sink.namespace().unwrap_or_default());
    match deployments
        .delete(&build::child_name(sink), &DeleteParams::background())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.is_not_found() => {}
        Err(error) => return Err(error.into()),
    }
    let cluster = match dereference(sink, ctx).await {
        Ok((_, cluster)) => cluster,
        // The Topic or the cluster object is gone: there is nothing left to delete the group
        // from, and a finalizer must not wedge the namespace's deletion.
        Err(Stop::Wait { message, .. }) => {
            tracing::info!(%group, reason = %message, "released");
            return Ok(Action::await_change());
        }
        Err(Stop::Fail { error, .. }) => return Err(error),
    };
    let unavailable = |why: String| Error::ClusterUnavailable(why);
    if !kafka_cluster::serving(&cluster) {
        return Err(unavailable(format!(
            "KafkaCluster {} is not Ready",
            cluster.name_any()
        )));
    }
    let connection = match connection::resolve(&ctx.client, &cluster).await {
        Ok(connection) => connection,
        Err(connection::ConnectionError::Kube { source, .. }) => return Err(source.into()),
        Err(error) => return Err(unavailable(error.to_string())),
    };
    ctx.kafka.admin(&connection)?.delete_group(&group).await?;
    tracing::info!(%group, "deleted the consumer group");
    Ok(Action::await_change())
}

/// What decides the status.
struct Outcome {
    ready: Decided,
    /// `Progressing` and `Degraded`, when the workers were applied.
    more: Vec<Decided>,
    /// Replicas wanted and ready; `None` keeps what status has.
    workers: Option<(i32, i32)>,
    /// `None` keeps what status has.
    lag: Option<GroupLag>,
    /// A Stream source's progress; `None` keeps what status has.
    stream: Option<StreamProgress>,
}

/// Where a Stream source's workers are, from their shard leases.
struct StreamProgress {
    /// The largest `MillisBehindLatest` of the shards being read.
    millis_behind: Option<i64>,
    /// The latest flush of any shard.
    last_flush: Option<Timestamp>,
}

impl Outcome {
    fn new(ready: Decided) -> Self {
        Self {
            ready,
            more: Vec::new(),
            workers: None,
            lag: None,
            stream: None,
        }
    }
}

async fn write_status(sink: &Sink, ctx: &Context, outcome: Outcome) -> Result<(), kube::Error> {
    let previous = sink.status.clone().unwrap_or_default();
    let generation = sink.metadata.generation;
    let was = conditions::ready(&previous.conditions).map(|(s, r)| (s == "True", r.to_owned()));
    let (now_ready, reason, message) = (
        outcome.ready.status,
        outcome.ready.reason,
        outcome.ready.message.clone(),
    );
    let decided: Vec<Decided> = std::iter::once(outcome.ready).chain(outcome.more).collect();
    let conditions =
        conditions::merge(&previous.conditions, &decided, generation, Timestamp::now());
    let lag = outcome.lag;
    let status = SinkStatus {
        observed_generation: generation,
        conditions,
        source: Some(source(sink)),
        replicas: outcome.workers.map(|w| w.0).or(previous.replicas),
        ready_replicas: outcome.workers.map(|w| w.1).or(previous.ready_replicas),
        lag: lag.as_ref().map(|l| l.total_lag).or(previous.lag),
        // The API server keeps whole seconds: compared with what it returns, a fraction would
        // look like a change at every reconcile.
        last_flush_time: lag
            .and_then(|l| l.last_commit_time)
            .or(outcome.stream.as_ref().and_then(|s| s.last_flush))
            .and_then(|t| Timestamp::from_second(t.as_second()).ok())
            .map(Time)
            .or(previous.last_flush_time),
        millis_behind_latest: outcome
            .stream
            .as_ref()
            .and_then(|s| s.millis_behind)
            .or(previous.millis_behind_latest),
        records_written: previous.records_written,
        dead_letters: previous.dead_letters,
    };
    if sink.status.as_ref() == Some(&status) {
        return Ok(());
    }
    if was != Some((now_ready, reason.to_owned())) {
        ctx.event(sink, !now_ready, reason, message).await;
    }
    let api: Api<Sink> = Api::namespaced(ctx.client.clone(), &sink.namespace().unwrap_or_default());
    let patch = json!({ "apiVersion": "tributary.dev/v1alpha1", "kind": KIND, "status": status });
    api.patch_status(
        &sink.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
