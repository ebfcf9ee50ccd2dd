//! The KafkaCluster controller: for an `external` cluster, check connectivity with a metadata
//! request and publish the broker count; for an `msk` cluster, create or adopt it, follow MSK's
//! state by requeueing, publish its bootstrap brokers, carry broker count and storage changes to
//! MSK, and on deletion delete or release it by `deletionPolicy` (behind a finalizer).

pub mod connection;
pub mod msk_plan;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use serde_json::json;
use tributary_crds::kafka_cluster::{MskCluster, MskStatus};
use tributary_crds::{DeletionPolicy, KafkaCluster, KafkaClusterStatus, Validate};
use tributary_workers::connect::KafkaConnection;

use crate::conditions::{self, Decided, READY};
use crate::context::Context;
use crate::msk::{Cluster, MskError};
use crate::reconciler::{Categorized, measured, paused};
use msk_plan::{Listener, Step, Update};

/// The finalizer that keeps an `msk` KafkaCluster until its MSK cluster is deleted or released.
pub const FINALIZER: &str = "tributary.dev/kafkacluster";
/// The field manager of this controller's writes.
pub const FIELD_MANAGER: &str = "tributary-kafkacluster-controller";

const KIND: &str = "KafkaCluster";
/// How soon an unreachable or not yet provisioned cluster is checked again.
const RETRY: Duration = Duration::from_secs(15);
/// How often MSK is asked again while it creates or updates a cluster.
const POLL: Duration = Duration::from_secs(10);

/// Whether clients can use `cluster` now: it is Ready, or an MSK cluster being updated (which
/// can take hours) that still serves its brokers.
pub fn serving(cluster: &KafkaCluster) -> bool {
    let status = cluster.status.as_ref();
    match status.and_then(|s| conditions::ready(&s.conditions)) {
        Some(("True", _)) => true,
        Some((_, "Updating")) => status.is_some_and(|s| s.bootstrap_servers.is_some()),
        _ => false,
    }
}

/// A KafkaCluster reconciliation that failed and will be retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or did not answer.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// MSK refused or did not answer.
    #[error(transparent)]
    Msk(#[from] MskError),
    /// The finalizer helper failed.
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Categorized for Error {
    fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kubernetes",
            Error::Msk(_) => "aws",
            Error::Finalizer(e) => e.category(),
        }
    }
}

/// Reconcile one KafkaCluster.
#[tracing::instrument(skip_all, fields(kind = KIND, namespace = %cluster.namespace().unwrap_or_default(), name = %cluster.name_any()))]
pub async fn reconcile(cluster: Arc<KafkaCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let work = async {
        // Only MSK clusters hold state outside Kubernetes; an external one is never held back.
        if cluster.spec.msk.is_some() || cluster.finalizers().iter().any(|f| f == FINALIZER) {
            let api: Api<KafkaCluster> =
                Api::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default());
            finalizer(&api, FINALIZER, cluster.clone(), |event| async {
                match event {
                    Finalizer::Apply(cluster) => apply(&cluster, &ctx).await,
                    Finalizer::Cleanup(cluster) => cleanup(&cluster, &ctx).await,
                }
            })
            .await
            .map_err(|e| Error::Finalizer(Box::new(e)))
        } else {
            apply(&cluster, &ctx).await
        }
    };
    measured(cluster.as_ref(), &ctx, work).await
}

/// What a reconcile found.
struct Outcome {
    ready: Decided,
    progressing: Option<Decided>,
    bootstrap_servers: Option<String>,
    broker_count: Option<i32>,
    /// `None` keeps what status has.
    msk: Option<MskStatus>,
}

impl Outcome {
    fn new(ready: Decided) -> Self {
        Self {
            ready,
            progressing: None,
            bootstrap_servers: None,
            broker_count: None,
            msk: None,
        }
    }
}

async fn apply(cluster: &KafkaCluster, ctx: &Context) -> Result<Action, Error> {
    if paused(cluster) {
        return Ok(Action::await_change());
    }
    if let Err(invalid) = cluster.validate(None) {
        let outcome = Outcome::new(Decided::no(READY, "InvalidSpec", invalid.to_string()));
        write_status(cluster, ctx, outcome).await?;
        return Ok(Action::await_change());
    }
    let (outcome, action) = match &cluster.spec.msk {
        None => check_connectivity(cluster, ctx).await?,
        Some(spec) => match provision(cluster, spec, ctx).await {
            Ok(done) => done,
            Err(error) => {
                // Clients keep the last bootstrap servers while MSK's API misbehaves.
                let previous = cluster.status.clone().unwrap_or_default();
                let message = format!("{error}; retrying with backoff");
                let outcome = Outcome {
                    bootstrap_servers: previous.bootstrap_servers,
                    broker_count: previous.broker_count,
                    ..Outcome::new(Decided::no(READY, "MskError", message))
                };
                write_status(cluster, ctx, outcome).await?;
                return Err(error.into());
            }
        },
    };
    write_status(cluster, ctx, outcome).await?;
    Ok(action)
}

/// A metadata request through the cluster's connection settings.
async fn check_connectivity(
    cluster: &KafkaCluster,
    ctx: &Context,
) -> Result<(Outcome, Action), Error> {
    let connection = match connection::resolve(&ctx.client, cluster).await {
        Ok(connection) => connection,
        Err(connection::ConnectionError::Kube { source, .. }) => return Err(source.into()),
        Err(error) => {
            let action = if error.is_permanent() {
                Action::requeue(ctx.resync)
            } else {
                Action::requeue(RETRY)
            };
            let ready = Decided::no(READY, "InvalidConnection", error.to_string());
            return Ok((Outcome::new(ready), action));
        }
    };
    let (ready, broker_count, action) = metadata_check(ctx, &connection).await;
    let outcome = Outcome {
        bootstrap_servers: Some(connection.bootstrap_servers),
        broker_count,
        ..Outcome::new(ready)
    };
    Ok((outcome, action))
}

/// Ask the brokers for metadata: `Ready` with the broker count, or why they did not answer.
async fn metadata_check(
    ctx: &Context,
    connection: &KafkaConnection,
) -> (Decided, Option<i32>, Action) {
    let brokers = match ctx.kafka.admin(connection) {
        Ok(admin) => admin.broker_count().await,
        Err(error) => Err(error),
    };
    match brokers {
        Ok(count) => (
            Decided::yes(
                READY,
                "Connected",
                format!("{count} broker(s) answered a metadata request"),
            ),
            Some(count as i32),
            Action::requeue(ctx.resync),
        ),
        Err(error) => (
            Decided::no(
                READY,
                "Unreachable",
                format!("no metadata from {}: {error}", connection.bootstrap_servers),
            ),
            None,
            Action::requeue(RETRY),
        ),
    }
}

/// The MSK cluster this object means: the one `spec.msk.arn` names; else the one recorded in
/// status; else the one with the cluster name (adopted, or created by a reconcile whose status
/// write was lost).
async fn observe(
    cluster: &KafkaCluster,
    spec: &MskCluster,
    ctx: &Context,
) -> Result<Option<Cluster>, MskError> {
    let region = spec.region.as_deref();
    if let Some(arn) = &spec.arn {
        return ctx.msk.describe(region, arn).await;
    }
    if let Some(arn) = recorded_arn(cluster)
        && let Some(found) = ctx.msk.describe(region, arn).await?
    {
        return Ok(Some(found));
    }
    let name = msk_plan::cluster_name(cluster);
    ctx.msk.find_by_name(region, &name).await
}

fn recorded_arn(cluster: &KafkaCluster) -> Option<&str> {
    cluster.status.as_ref()?.msk.as_ref()?.arn.as_deref()
}

/// Observe the MSK cluster, take the planned step, and decide the status from what MSK reports.
async fn provision(
    cluster: &KafkaCluster,
    spec: &MskCluster,
    ctx: &Context,
) -> Result<(Outcome, Action), MskError> {
    let region = spec.region.as_deref();
    let observed = observe(cluster, spec, ctx).await?;
    if let Some(found) = &observed
        && recorded_arn(cluster) != Some(found.arn.as_str())
    {
        let message = format!("adopted MSK cluster {} ({})", found.name, found.arn);
        ctx.event(cluster, false, "Adopted", message).await;
    }
    let step = msk_plan::plan(spec, observed.as_ref());
    let (observed, changed) = match change(cluster, spec, ctx, &step, observed.as_ref()).await? {
        // MSK's new state and version go to status at once.
        Some(arn) => (ctx.msk.describe(region, &arn).await?, Some(arn)),
        None => (observed, None),
    };
    let [ready, progressing] = step.conditions();
    let (step, observed) = match (step, observed) {
        (Step::Publish, Some(found)) => return publish(ctx, region, &found, progressing).await,
        other => other,
    };
    let action = match step {
        Step::Create | Step::Update(_) | Step::Wait(_) => Action::requeue(POLL),
        _ => Action::requeue(ctx.resync),
    };
    // A cluster being changed still serves its clients at the same addresses.
    let serving = observed
        .as_ref()
        .is_some_and(|c| !matches!(c.state.as_str(), "CREATING" | "FAILED"));
    let previous = cluster.status.clone().unwrap_or_default();
    let brokers = previous
        .msk
        .and_then(|m| m.bootstrap_brokers)
        .filter(|_| serving);
    let msk = match (observed, changed) {
        (Some(found), _) => Some(msk_plan::status(&found, brokers)),
        // Not visible yet right after the change: at least the ARN must not be lost.
        (None, Some(arn)) => Some(MskStatus {
            arn: Some(arn),
            ..MskStatus::default()
        }),
        (None, None) => None,
    };
    let outcome = Outcome {
        progressing: Some(progressing),
        bootstrap_servers: previous.bootstrap_servers.filter(|_| serving),
        broker_count: previous.broker_count.filter(|_| serving),
        msk,
        ..Outcome::new(ready)
    };
    Ok((outcome, action))
}

/// Create the cluster or start an update, as the step says; the ARN of a cluster changed.
async fn change(
    cluster: &KafkaCluster,
    spec: &MskCluster,
    ctx: &Context,
    step: &Step,
    observed: Option<&Cluster>,
) -> Result<Option<String>, MskError> {
    let region = spec.region.as_deref();
    match (step, observed) {
        (Step::Create, _) => {
            let name = msk_plan::cluster_name(cluster);
            let arn = ctx.msk.create(region, &name, spec).await?;
            let message = format!("creating MSK cluster {name} ({arn})");
            ctx.event(cluster, false, "Created", message).await;
            Ok(Some(arn))
        }
        (Step::Update(update), Some(found)) => {
            let (arn, version) = (&found.arn, &found.current_version);
            match *update {
                Update::BrokerCount { to, .. } => {
                    ctx.msk
                        .update_broker_count(region, arn, version, to)
                        .await?
                }
                Update::Storage { to, .. } => {
                    ctx.msk
                        .update_broker_storage(region, arn, version, to)
                        .await?
                }
            }
            ctx.event(cluster, false, update.reason(), update.message())
                .await;
            Ok(Some(arn.clone()))
        }
        _ => Ok(None),
    }
}

/// The cluster is ACTIVE and as the spec says: publish its bootstrap brokers and check them.
async fn publish(
    ctx: &Context,
    region: Option<&str>,
    found: &Cluster,
    idle: Decided,
) -> Result<(Outcome, Action), MskError> {
    let brokers = ctx.msk.bootstrap_brokers(region, &found.arn).await?;
    let msk = Some(msk_plan::status(found, Some(brokers.clone())));
    let Some((servers, listener)) = msk_plan::bootstrap(&brokers) else {
        let ready = Decided::no(
            READY,
            "NoBootstrapBrokers",
            "MSK reports no bootstrap brokers for the ACTIVE cluster: enable a client \
             authentication method in spec.msk.provisioned.clientAuthentication",
        );
        let outcome = Outcome {
            progressing: Some(idle),
            msk,
            ..Outcome::new(ready)
        };
        return Ok((outcome, Action::requeue(RETRY)));
    };
    // A metadata request needs no credentials over plaintext or TLS; SASL needs secrets the
    // operator does not have for MSK, so there MSK's ACTIVE is the answer.
    let connection = match listener {
        Listener::Plaintext => Some(KafkaConnection::plaintext(&servers)),
        Listener::Tls => Some(KafkaConnection {
            tls: Some(None),
            ..KafkaConnection::plaintext(&servers)
        }),
        Listener::SaslScram | Listener::SaslIam => None,
    };
    let (ready, broker_count, action) = match connection {
        Some(connection) => metadata_check(ctx, &connection).await,
        None => (
            Decided::yes(
                READY,
                "Active",
                format!("MSK reports the cluster ACTIVE; clients connect with {listener:?}"),
            ),
            None,
            Action::requeue(ctx.resync),
        ),
    };
    let outcome = Outcome {
        progressing: Some(idle),
        bootstrap_servers: Some(servers),
        broker_count,
        msk,
        ..Outcome::new(ready)
    };
    Ok((outcome, action))
}

/// On deletion: `Delete` deletes the MSK cluster (one already gone counts as deleted), `Retain`
/// (the default) only releases it, as does a paused object.
async fn cleanup(cluster: &KafkaCluster, ctx: &Context) -> Result<Action, Error> {
    let Some(spec) = &cluster.spec.msk else {
        return Ok(Action::await_change());
    };
    let kept = if paused(cluster) {
        Some("the object is paused")
    } else {
        (cluster.spec.deletion_policy == DeletionPolicy::Retain).then_some("deletionPolicy: Retain")
    };
    if let Some(why) = kept {
        let message = format!("released; the MSK cluster is kept ({why})");
        tracing::info!("{message}");
        ctx.event(cluster, false, "Released", message).await;
        return Ok(Action::await_change());
    }
    match observe(cluster, spec, ctx).await? {
        Some(found) if found.state != "DELETING" => {
            ctx.msk.delete(spec.region.as_deref(), &found.arn).await?;
            let message = format!("deleting MSK cluster {} ({})", found.name, found.arn);
            tracing::info!("{message}");
            ctx.event(cluster, false, "Deleted", message).await;
        }
        _ => tracing::info!("the MSK cluster is already gone"),
    }
    Ok(Action::await_change())
}

async fn write_status(
    cluster: &KafkaCluster,
    ctx: &Context,
    outcome: Outcome,
) -> Result<(), kube::Error> {
    let previous = cluster.status.clone().unwrap_or_default();
    let generation = cluster.metadata.generation;
    let was_ready = conditions::ready(&previous.conditions).map(|(s, _)| s == "True");
    let now_ready = outcome.ready.status;
    let message = outcome.ready.message.clone();
    let decided: Vec<Decided> = std::iter::once(outcome.ready)
        .chain(outcome.progressing)
        .collect();
    let conditions =
        conditions::merge(&previous.conditions, &decided, generation, Timestamp::now());
    let status = KafkaClusterStatus {
        observed_generation: generation,
        conditions,
        bootstrap_servers: outcome.bootstrap_servers,
        broker_count: outcome.broker_count,
        msk: outcome.msk.or(previous.msk),
    };
    if cluster.status.as_ref() == Some(&status) {
        return Ok(());
    }
    if was_ready != Some(now_ready) {
        let reason = if now_ready { "Ready" } else { "NotReady" };
        ctx.event(cluster, !now_ready, reason, message).await;
    }
    let api: Api<KafkaCluster> =
        Api::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default());
    let patch = json!({ "apiVersion": "tributary.dev/v1alpha1", "kind": KIND, "status": status });
    api.patch_status(
        &cluster.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
