//! Tributary's control plane: one controller per kind, run by [`run::run`] in one process with
//! leader election. A controller's `reconcile` is short: validate (pure), dereference, plan
//! (pure), apply through the traits in [`context::Context`], and status from what was observed.

pub mod batch_job;
pub mod buckets;
pub mod conditions;
pub mod context;
pub mod crds;
pub mod kafka_admin;
pub mod kafka_cluster;
pub mod metrics;
pub mod msk;
pub mod reconciler;
pub mod run;
pub mod sink;
pub mod stream;
#[cfg(test)]
mod test_support;
pub mod topic;
pub mod worker_pod;
