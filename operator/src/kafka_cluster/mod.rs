//! The KafkaCluster controller: for an `external` cluster, check connectivity with a metadata
//! request and publish the broker count; for an `msk` cluster, provision it (see `msk`).

pub mod connection;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use serde_json::json;
use tributary_crds::{KafkaCluster, KafkaClusterStatus, Validate};

use crate::conditions::{self, Decided, READY};
use crate::context::Context;

/// The field manager of this controller's writes.
pub const FIELD_MANAGER: &str = "tributary-kafkacluster-controller";

const KIND: &str = "KafkaCluster";
/// How soon an unreachable or not yet provisioned cluster is checked again.
const RETRY: Duration = Duration::from_secs(15);

/// A KafkaCluster reconciliation that failed and will be retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or did not answer.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    /// A small fixed set, for metric labels.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kubernetes",
        }
    }
}

/// Reconcile one KafkaCluster.
#[tracing::instrument(skip_all, fields(kind = KIND, namespace = %cluster.namespace().unwrap_or_default(), name = %cluster.name_any()))]
pub async fn reconcile(cluster: Arc<KafkaCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = apply(&cluster, &ctx).await;
    ctx.metrics.reconciled(KIND, started.elapsed());
    if result.is_ok() {
        ctx.succeeded(&object_key(&cluster));
    }
    result
}

/// Retry a failed reconciliation with exponential backoff.
pub fn error_policy(cluster: Arc<KafkaCluster>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(KIND, error.category());
    let delay = ctx.backoff(object_key(&cluster));
    tracing::warn!(cluster = %object_key(&cluster), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

fn object_key(cluster: &KafkaCluster) -> String {
    format!(
        "KafkaCluster/{}/{}",
        cluster.namespace().unwrap_or_default(),
        cluster.name_any()
    )
}

/// What a reconcile found.
struct Outcome {
    ready: Decided,
    bootstrap_servers: Option<String>,
    broker_count: Option<i32>,
}

async fn apply(cluster: &KafkaCluster, ctx: &Context) -> Result<Action, Error> {
    if cluster
        .annotations()
        .get(crate::topic::PAUSED)
        .is_some_and(|v| v == "true")
    {
        return Ok(Action::await_change());
    }
    if let Err(invalid) = cluster.validate(None) {
        let outcome = Outcome {
            ready: Decided::no(READY, "InvalidSpec", invalid.to_string()),
            bootstrap_servers: None,
            broker_count: None,
        };
        write_status(cluster, ctx, outcome).await?;
        return Ok(Action::await_change());
    }
    if cluster.spec.msk.is_some() {
        let outcome = Outcome {
            ready: Decided::no(
                READY,
                "MskNotSupported",
                "provisioning MSK clusters is not available in this build; use spec.external",
            ),
            bootstrap_servers: None,
            broker_count: None,
        };
        write_status(cluster, ctx, outcome).await?;
        return Ok(Action::await_change());
    }
    let (outcome, action) = check_connectivity(cluster, ctx).await?;
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
            return Ok((
                Outcome {
                    ready,
                    bootstrap_servers: None,
                    broker_count: None,
                },
                action,
            ));
        }
    };
    let bootstrap = Some(connection.bootstrap_servers.clone());
    let brokers = match ctx.kafka.admin(&connection) {
        Ok(admin) => admin.broker_count().await,
        Err(error) => Err(error),
    };
    Ok(match brokers {
        Ok(count) => {
            let ready = Decided::yes(
                READY,
                "Connected",
                format!("{count} broker(s) answered a metadata request"),
            );
            (
                Outcome {
                    ready,
                    bootstrap_servers: bootstrap,
                    broker_count: Some(count as i32),
                },
                Action::requeue(ctx.resync),
            )
        }
        Err(error) => {
            let ready = Decided::no(
                READY,
                "Unreachable",
                format!("no metadata from {}: {error}", connection.bootstrap_servers),
            );
            (
                Outcome {
                    ready,
                    bootstrap_servers: bootstrap,
                    broker_count: None,
                },
                Action::requeue(RETRY),
            )
        }
    })
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
    let conditions = conditions::merge(
        &previous.conditions,
        std::slice::from_ref(&outcome.ready),
        generation,
        Timestamp::now(),
    );
    let status = KafkaClusterStatus {
        observed_generation: generation,
        conditions,
        bootstrap_servers: outcome.bootstrap_servers,
        broker_count: outcome.broker_count,
        msk: previous.msk,
    };
    if cluster.status.as_ref() == Some(&status) {
        return Ok(());
    }
    if was_ready != Some(now_ready) {
        let reason = if now_ready { "Ready" } else { "NotReady" };
        ctx.event(cluster, !now_ready, reason, outcome.ready.message.clone())
            .await;
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
