//! What every controller's reconcile shares: pausing, metrics and backoff around the work, and
//! the error policy.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use kube::runtime::controller::Action;
use kube::runtime::finalizer;
use kube::{Resource, ResourceExt};

use crate::context::Context;

/// `tributary.dev/paused: "true"` stops reconciliation of an object.
pub const PAUSED: &str = "tributary.dev/paused";

/// An error of a controller, with a small fixed set of categories for metric labels.
pub trait Categorized: std::error::Error {
    /// `kafka`, `kubernetes`, `aws`, ...
    fn category(&self) -> &'static str;
}

impl<E: Categorized + 'static> Categorized for finalizer::Error<E> {
    fn category(&self) -> &'static str {
        match self {
            finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e.category(),
            _ => "kubernetes",
        }
    }
}

/// Whether `object` carries the paused annotation.
pub fn paused(object: &impl Resource) -> bool {
    object
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(PAUSED))
        .is_some_and(|v| v == "true")
}

/// `Kind/namespace/name`, the key of an object in logs and in the backoff table.
pub fn object_key<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// Run one reconcile of `object`: count and time it, and reset its backoff when it succeeds.
pub async fn measured<K, E>(
    object: &K,
    ctx: &Context,
    work: impl Future<Output = Result<Action, E>>,
) -> Result<Action, E>
where
    K: Resource<DynamicType = ()>,
{
    let started = Instant::now();
    let result = work.await;
    let kind = K::kind(&());
    ctx.metrics
        .reconciled(static_kind(&kind), started.elapsed());
    if result.is_ok() {
        ctx.succeeded(&object_key(object));
    }
    result
}

/// Retry a failed reconcile with exponential backoff (5 s doubling to 5 minutes).
pub fn error_policy<K, E>(object: Arc<K>, error: &E, ctx: Arc<Context>) -> Action
where
    K: Resource<DynamicType = ()>,
    E: Categorized,
{
    let kind = K::kind(&());
    ctx.metrics.failed(static_kind(&kind), error.category());
    let key = object_key(object.as_ref());
    let delay = ctx.backoff(key.clone());
    tracing::warn!(object = %key, %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Metric labels are `&'static str`: the kinds are known.
fn static_kind(kind: &str) -> &'static str {
    match kind {
        "KafkaCluster" => "KafkaCluster",
        "Topic" => "Topic",
        "Stream" => "Stream",
        "Sink" => "Sink",
        "BatchJob" => "BatchJob",
        _ => "other",
    }
}
