//! The last pure step of the Sink reconcile: the workers' state, from the Deployment the API
//! server returned when it was applied (or when it changed since).

use k8s_openapi::api::apps::v1::Deployment;

use crate::conditions::{Decided, READY};

/// The condition that holds while the workers roll out.
pub const PROGRESSING: &str = "Progressing";
/// The condition that holds while the Deployment reports a problem.
pub const DEGRADED: &str = "Degraded";

/// What the Deployment says about the workers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// Replicas wanted.
    pub replicas: i32,
    /// Replicas ready.
    pub ready_replicas: i32,
    /// `Ready`, `Progressing` and `Degraded`.
    pub conditions: [Decided; 3],
}

/// The workers of `deployment`; `paused` is the Sink's `spec.paused`.
pub fn observe(deployment: &Deployment, paused: bool) -> Observed {
    let replicas = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let ready_replicas = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let counted = format!("{ready_replicas} of {replicas} worker(s) ready");

    let ready = if paused {
        Decided::yes(
            READY,
            "Paused",
            "spec.paused: no workers run; the position stays in Kafka, so resuming continues \
             where the Sink stopped",
        )
    } else if ready_replicas >= replicas {
        Decided::yes(READY, "Running", counted)
    } else {
        Decided::no(READY, "WorkersNotReady", counted)
    };

    // As `kubectl rollout status` decides it.
    let seen = match (deployment.metadata.generation, status.observed_generation) {
        (Some(generation), Some(observed)) => observed >= generation,
        (Some(_), None) => false,
        (None, _) => true,
    };
    let complete = seen
        && updated == replicas
        && status.replicas.unwrap_or(0) == updated
        && available == updated;
    let progressing = if complete {
        Decided::no(
            PROGRESSING,
            "RolloutComplete",
            "every worker runs the current configuration",
        )
    } else {
        Decided::yes(
            PROGRESSING,
            "RollingOut",
            format!("{updated} of {replicas} worker(s) updated, {available} available"),
        )
    };

    let deployment_conditions = status.conditions.unwrap_or_default();
    let problem = deployment_conditions.iter().find_map(|c| {
        let message = c.message.clone().unwrap_or_default();
        match (c.type_.as_str(), c.status.as_str(), c.reason.as_deref()) {
            ("Progressing", "False", Some("ProgressDeadlineExceeded")) => {
                Some(("ProgressDeadlineExceeded", message))
            }
            ("ReplicaFailure", "True", _) => Some(("ReplicaFailure", message)),
            _ => None,
        }
    });
    let degraded = match problem {
        Some((reason, message)) => Decided::yes(DEGRADED, reason, message),
        None => Decided::no(DEGRADED, "AsExpected", "the Deployment reports no problem"),
    };

    Observed {
        replicas,
        ready_replicas,
        conditions: [ready, progressing, degraded],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::from_yaml;

    fn deployment(yaml: &str) -> Deployment {
        from_yaml(yaml)
    }

    fn reasons(workers: &Observed) -> [(bool, &str); 3] {
        workers.conditions.each_ref().map(|c| (c.status, c.reason))
    }

    #[test]
    fn a_new_deployment_is_rolling_out_and_not_ready() {
        let new = deployment("{metadata: {generation: 1}, spec: {replicas: 2}}");
        let workers = observe(&new, false);
        assert_eq!((workers.replicas, workers.ready_replicas), (2, 0));
        assert_eq!(
            reasons(&workers),
            [
                (false, "WorkersNotReady"),
                (true, "RollingOut"),
                (false, "AsExpected")
            ]
        );
        assert_eq!(workers.conditions[0].message, "0 of 2 worker(s) ready");
    }

    #[test]
    fn a_complete_rollout_is_ready() {
        let done = deployment(
            r#"
metadata: {generation: 3}
spec: {replicas: 2}
status: {observedGeneration: 3, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2}
"#,
        );
        let workers = observe(&done, false);
        assert_eq!(
            reasons(&workers),
            [
                (true, "Running"),
                (false, "RolloutComplete"),
                (false, "AsExpected")
            ]
        );
    }

    #[test]
    fn a_stuck_rollout_is_degraded_with_the_deployment_message() {
        let stuck = deployment(
            r#"
metadata: {generation: 4}
spec: {replicas: 1}
status:
  observedGeneration: 4
  replicas: 2
  updatedReplicas: 1
  readyReplicas: 1
  availableReplicas: 1
  conditions:
  - {type: Progressing, status: "False", reason: ProgressDeadlineExceeded, message: ReplicaSet "raw-sink-5d9" has timed out progressing.}
"#,
        );
        let workers = observe(&stuck, false);
        assert_eq!(
            reasons(&workers),
            [
                (true, "Running"),
                (true, "RollingOut"),
                (true, "ProgressDeadlineExceeded")
            ]
        );
        assert!(workers.conditions[2].message.contains("timed out"));
    }

    #[test]
    fn a_paused_sink_is_ready_with_no_workers() {
        let paused = deployment(
            "{metadata: {generation: 2}, spec: {replicas: 0}, status: {observedGeneration: 2}}",
        );
        let workers = observe(&paused, true);
        assert_eq!((workers.replicas, workers.ready_replicas), (0, 0));
        assert_eq!(
            reasons(&workers),
            [
                (true, "Paused"),
                (false, "RolloutComplete"),
                (false, "AsExpected")
            ]
        );
    }
}
