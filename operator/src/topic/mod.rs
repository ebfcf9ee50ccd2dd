//! The Topic controller: validate → dereference the cluster → plan (pure) → apply to Kafka →
//! status from what Kafka then has.

pub mod plan;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tributary_crds::{DeletionPolicy, KafkaCluster, Topic, TopicStatus, Validate};

use crate::conditions::{self, Decided, READY};
use crate::context::Context;
use crate::kafka_admin::{AdminError, KafkaAdmin};
use crate::kafka_cluster::connection::{self, ConnectionError};
use crate::reconciler::{Categorized, measured, paused};
use plan::{Desired, Plan, topic_name};

/// The finalizer that keeps a Topic until its Kafka topic is released (or deleted).
pub const FINALIZER: &str = "tributary.dev/topic";
/// The field manager of this controller's writes.
pub const FIELD_MANAGER: &str = "tributary-topic-controller";

const KIND: &str = "Topic";
const CLUSTER_NOT_FOUND: &str = "ClusterNotFound";

/// A Topic reconciliation that failed and will be retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Kafka refused or did not answer.
    #[error(transparent)]
    Kafka(#[from] AdminError),
    /// The Kubernetes API refused or did not answer.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// The Topic must be deleted from a cluster that cannot be reached now.
    #[error("cannot delete the Kafka topic yet: {0}")]
    ClusterUnavailable(String),
    /// The finalizer helper failed.
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Categorized for Error {
    fn category(&self) -> &'static str {
        match self {
            Error::Kafka(_) | Error::ClusterUnavailable(_) => "kafka",
            Error::Kube(_) => "kubernetes",
            Error::Finalizer(e) => e.category(),
        }
    }
}

/// Reconcile one Topic.
pub async fn reconcile(topic: Arc<Topic>, ctx: Arc<Context>) -> Result<Action, Error> {
    // A paused Topic is left alone entirely (no finalizer either), unless it is being deleted:
    // then cleanup releases it without touching Kafka.
    if paused(topic.as_ref()) && topic.meta().deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let api: Api<Topic> =
        Api::namespaced(ctx.client.clone(), &topic.namespace().unwrap_or_default());
    let work = finalizer(&api, FINALIZER, topic.clone(), |event| async {
        match event {
            Finalizer::Apply(topic) => apply(&topic, &ctx).await,
            Finalizer::Cleanup(topic) => cleanup(&topic, &ctx).await,
        }
    });
    measured(topic.as_ref(), &ctx, async {
        work.await.map_err(|e| Error::Finalizer(Box::new(e)))
    })
    .await
}

/// The outcome that decides the status.
struct Outcome {
    ready: Decided,
    observed: Option<crate::kafka_admin::TopicState>,
    applied_configs: Option<BTreeMap<String, String>>,
    drifted_keys: Option<Vec<String>>,
}

impl Outcome {
    fn not_ready(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            ready: Decided::no(READY, reason, message),
            observed: None,
            applied_configs: None,
            drifted_keys: None,
        }
    }
}

#[tracing::instrument(skip_all, fields(kind = KIND, namespace = %topic.namespace().unwrap_or_default(), name = %topic.name_any()))]
async fn apply(topic: &Topic, ctx: &Context) -> Result<Action, Error> {
    if let Err(invalid) = topic.validate(None) {
        write_status(
            topic,
            ctx,
            Outcome::not_ready("InvalidSpec", invalid.to_string()),
        )
        .await?;
        return Ok(Action::await_change());
    }
    if let Some(owner) = conflicting_owner(topic, ctx) {
        let message = format!(
            "Kafka topic {} on KafkaCluster {} is already managed by the older Topic {owner}; \
             delete one of the two",
            topic_name(topic),
            topic.spec.cluster_ref.name
        );
        write_status(topic, ctx, Outcome::not_ready("Conflict", message)).await?;
        return Ok(Action::requeue(ctx.resync));
    }
    let admin = match cluster_admin(topic, ctx).await? {
        Ok(admin) => admin,
        Err(outcome) => {
            let retry = outcome.retry;
            write_status(topic, ctx, outcome.outcome).await?;
            return Ok(retry);
        }
    };

    let desired = Desired::from_topic(topic);
    let result = sync(topic, ctx, admin.as_ref(), &desired).await;
    match result {
        Ok(outcome) => {
            write_status(topic, ctx, outcome).await?;
            Ok(Action::requeue(ctx.resync))
        }
        Err(error) => {
            write_status(
                topic,
                ctx,
                Outcome::not_ready("KafkaError", error.to_string()),
            )
            .await?;
            Err(error.into())
        }
    }
}

/// Carry out the plan and observe the result.
async fn sync(
    topic: &Topic,
    ctx: &Context,
    admin: &dyn KafkaAdmin,
    desired: &Desired,
) -> Result<Outcome, AdminError> {
    let actual = admin.describe_topic(&desired.name).await?;
    let applied = topic
        .status
        .as_ref()
        .map(|s| s.configs.clone())
        .unwrap_or_default();
    let plan: Plan = plan::plan(desired, actual.as_ref(), &applied);

    if plan.create {
        admin
            .create_topic(
                &desired.name,
                desired.partitions,
                desired.replication_factor,
                &desired.configs,
            )
            .await?;
        ctx.event(
            topic,
            false,
            "Created",
            format!(
                "created Kafka topic {} with {} partitions",
                desired.name, desired.partitions
            ),
        )
        .await;
    }
    if let Some(total) = plan.partitions {
        admin.create_partitions(&desired.name, total).await?;
        ctx.event(
            topic,
            false,
            "PartitionsIncreased",
            format!("partitions raised to {total}"),
        )
        .await;
    }
    if let Some(configs) = &plan.dynamic_configs {
        admin.set_dynamic_configs(&desired.name, configs).await?;
        if !plan.drifted_keys.is_empty() {
            ctx.event(
                topic,
                true,
                "DriftReverted",
                format!(
                    "configs changed in Kafka were set back: {}",
                    plan.drifted_keys.join(", ")
                ),
            )
            .await;
        } else {
            ctx.event(
                topic,
                false,
                "ConfigsUpdated",
                "topic configs updated".into(),
            )
            .await;
        }
    }
    let observed = if plan.changes_kafka() {
        admin.describe_topic(&desired.name).await?
    } else {
        actual
    };
    let ready = match plan.blocked.first() {
        Some(blocked) => Decided::no(READY, blocked.reason(), blocked.message()),
        None if observed.is_none() => {
            Decided::no(READY, "Creating", "the topic is not visible in Kafka yet")
        }
        None => Decided::yes(
            READY,
            "InSync",
            format!("Kafka topic {} matches the spec", desired.name),
        ),
    };
    Ok(Outcome {
        ready,
        observed,
        applied_configs: Some(desired.configs.clone()),
        drifted_keys: (!plan.drifted_keys.is_empty()).then_some(plan.drifted_keys),
    })
}

/// The older Topic (by creation time, then uid) that manages the same Kafka topic on the same
/// cluster, if any.
fn conflicting_owner(topic: &Topic, ctx: &Context) -> Option<String> {
    let namespace = topic.namespace().unwrap_or_default();
    let cluster = cluster_key(topic, &namespace);
    let name = topic_name(topic);
    let age = |t: &Topic| (t.meta().creation_timestamp.clone().map(|t| t.0), t.uid());
    ctx.topics
        .state()
        .iter()
        .filter(|other| other.uid() != topic.uid() && other.meta().deletion_timestamp.is_none())
        .filter(|other| {
            let other_ns = other.namespace().unwrap_or_default();
            cluster_key(other, &other_ns) == cluster && topic_name(other) == name
        })
        .filter(|other| age(other) < age(topic))
        .map(|other| {
            format!(
                "{}/{}",
                other.namespace().unwrap_or_default(),
                other.name_any()
            )
        })
        .next()
}

/// The (namespace, name) of the KafkaCluster a Topic references.
pub fn cluster_key(topic: &Topic, namespace: &str) -> (String, String) {
    let r = &topic.spec.cluster_ref;
    (
        r.namespace.clone().unwrap_or_else(|| namespace.to_owned()),
        r.name.clone(),
    )
}

struct NotConnected {
    outcome: Outcome,
    retry: Action,
}

/// An admin client for the Topic's cluster, or why there is none yet.
async fn cluster_admin(
    topic: &Topic,
    ctx: &Context,
) -> Result<Result<Arc<dyn KafkaAdmin>, NotConnected>, Error> {
    let namespace = topic.namespace().unwrap_or_default();
    let (cluster_ns, cluster_name) = cluster_key(topic, &namespace);
    let clusters: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &cluster_ns);
    let wait = Action::requeue(std::time::Duration::from_secs(30));
    let Some(cluster) = clusters.get_opt(&cluster_name).await? else {
        let message = format!("KafkaCluster {cluster_ns}/{cluster_name} does not exist");
        return Ok(Err(NotConnected {
            outcome: Outcome::not_ready(CLUSTER_NOT_FOUND, message),
            retry: wait,
        }));
    };
    if !crate::kafka_cluster::serving(&cluster) {
        let message = format!("KafkaCluster {cluster_ns}/{cluster_name} is not Ready");
        return Ok(Err(NotConnected {
            outcome: Outcome::not_ready("ClusterNotReady", message),
            retry: wait,
        }));
    }
    let connection = match connection::resolve(&ctx.client, &cluster).await {
        Ok(connection) => connection,
        Err(ConnectionError::Kube { source, .. }) => return Err(source.into()),
        Err(error) => {
            let outcome = Outcome::not_ready("ClusterNotReady", error.to_string());
            return Ok(Err(NotConnected {
                outcome,
                retry: wait,
            }));
        }
    };
    Ok(Ok(ctx.kafka.admin(&connection)?))
}

#[tracing::instrument(skip_all, fields(kind = KIND, namespace = %topic.namespace().unwrap_or_default(), name = %topic.name_any()))]
async fn cleanup(topic: &Topic, ctx: &Context) -> Result<Action, Error> {
    let name = topic_name(topic);
    if topic.spec.deletion_policy == DeletionPolicy::Retain || paused(topic) {
        tracing::info!(topic = %name, "released (the Kafka topic is kept)");
        return Ok(Action::await_change());
    }
    if let Some(owner) = conflicting_owner(topic, ctx) {
        tracing::info!(topic = %name, %owner, "not deleting a Kafka topic another Topic manages");
        return Ok(Action::await_change());
    }
    match cluster_admin(topic, ctx).await? {
        Ok(admin) => {
            admin.delete_topic(&name).await?;
            tracing::info!(topic = %name, "deleted the Kafka topic");
        }
        // The cluster object is gone: there is nothing left to delete it from, and a finalizer
        // must not wedge the namespace's deletion.
        Err(gone) if gone.outcome.ready.reason == CLUSTER_NOT_FOUND => {
            tracing::info!(topic = %name, reason = gone.outcome.ready.message, "cluster gone; released");
        }
        // The cluster exists but cannot be reached now: keep the finalizer and retry, rather
        // than leave the Kafka topic behind.
        Err(unavailable) => {
            return Err(Error::ClusterUnavailable(unavailable.outcome.ready.message));
        }
    }
    Ok(Action::await_change())
}

async fn write_status(topic: &Topic, ctx: &Context, outcome: Outcome) -> Result<(), kube::Error> {
    let previous = topic.status.clone().unwrap_or_default();
    let generation = topic.metadata.generation;
    let conditions = conditions::merge(
        &previous.conditions,
        &[outcome.ready],
        generation,
        Timestamp::now(),
    );
    let status = TopicStatus {
        observed_generation: generation,
        conditions,
        topic_name: Some(topic_name(topic)),
        partitions: outcome
            .observed
            .as_ref()
            .map(|o| o.partitions)
            .or(previous.partitions),
        replication_factor: outcome
            .observed
            .as_ref()
            .map(|o| o.replication_factor)
            .or(previous.replication_factor),
        configs: outcome.applied_configs.unwrap_or(previous.configs),
        drifted_keys: outcome.drifted_keys.unwrap_or(previous.drifted_keys),
    };
    if topic.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<Topic> =
        Api::namespaced(ctx.client.clone(), &topic.namespace().unwrap_or_default());
    let patch =
        json!({ "apiVersion": "tributary.dev/v1alpha1", "kind": "Topic", "status": status });
    api.patch_status(
        &topic.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
