//! The last pure step of the Sink reconcile: the workers' state, from the Deployment the API
//! server returned when it was applied (or when it changed since) and from its pods, whose
//! termination messages say why a worker stopped.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;

use super::build::CONTAINER;
use crate::conditions::{Decided, READY};

/// The condition that holds while the workers roll out.
pub const PROGRESSING: &str = "Progressing";
/// The condition that holds while the Deployment or a worker reports a problem.
pub const DEGRADED: &str = "Degraded";
/// The reason of `Ready=False` and `Degraded=True` while a worker stops with an error.
pub const WORKER_FAILED: &str = "WorkerFailed";
/// The longest termination message a condition repeats, in characters.
pub const MESSAGE_LIMIT: usize = 1024;

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

/// The workers of `deployment`, whose `pods` are listed by its selector (none when they could
/// not be listed); `paused` is the Sink's `spec.paused`.
pub fn observe(deployment: &Deployment, pods: &[Pod], paused: bool) -> Observed {
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

    let failed = if paused { None } else { failure(pods) };

    let ready = if let Some(message) = &failed {
        Decided::no(READY, WORKER_FAILED, message.clone())
    } else if paused {
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
    // A worker's own words say more than the Deployment's.
    let degraded = match (failed, problem) {
        (Some(message), _) => Decided::yes(DEGRADED, WORKER_FAILED, message),
        (None, Some((reason, message))) => Decided::yes(DEGRADED, reason, message),
        (None, None) => Decided::no(DEGRADED, "AsExpected", "the Deployment reports no problem"),
    };

    Observed {
        replicas,
        ready_replicas,
        conditions: [ready, progressing, degraded],
    }
}

/// `worker <pod>: <why>` for the first pod (by name) whose worker stopped with an error.
fn failure(pods: &[Pod]) -> Option<String> {
    let mut failures: Vec<(&str, String)> = pods
        .iter()
        .filter_map(|pod| Some((pod.metadata.name.as_deref()?, stopped(pod)?)))
        .collect();
    failures.sort();
    let (pod, why) = failures.into_iter().next()?;
    Some(format!("worker {pod}: {}", one_line(&why, MESSAGE_LIMIT)))
}

/// Why the worker of `pod` stopped with an error, while that is what holds it: it is stopped
/// now, waiting to restart (`CrashLoopBackOff`), or restarted but not ready yet. A worker that
/// is ready again, or that exited 0 (SIGTERM), failed nothing; a pod being deleted no longer
/// counts. The termination message (what the worker wrote to `/dev/termination-log`), else the
/// exit code and the kubelet's reason (`OOMKilled`, say).
fn stopped(pod: &Pod) -> Option<String> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let container = pod
        .status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == CONTAINER)?;
    let state = container.state.as_ref()?;
    let last = container
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref());
    let terminated = if state.terminated.is_some() {
        state.terminated.as_ref()
    } else if state.waiting.is_some() || (state.running.is_some() && !container.ready) {
        last
    } else {
        None
    }?;
    if terminated.exit_code == 0 {
        return None;
    }
    let message = terminated.message.as_deref().map(str::trim).unwrap_or("");
    Some(if message.is_empty() {
        let reason = terminated.reason.as_deref().unwrap_or("Error");
        format!("exited with code {} ({reason})", terminated.exit_code)
    } else {
        message.to_owned()
    })
}

/// `text` on one line (every run of white space one space), cut to `limit` characters.
fn one_line(text: &str, limit: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= limit {
        return line;
    }
    let mut cut: String = line.chars().take(limit - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::from_yaml;

    fn deployment(yaml: &str) -> Deployment {
        from_yaml(yaml)
    }

    fn pod(yaml: &str) -> Pod {
        from_yaml(yaml)
    }

    /// What a worker writes to its termination log on a bad record with `errors.tolerance:
    /// none`.
    const BAD_RECORD: &str = "record orders/0@41 cannot be written: the value is not JSON: \
        expected value at line 1 column 1; errors.tolerance is none, so the sink stops here \
        (set it to all to send such records to the dead letter)";

    /// A worker waiting to be restarted after it stopped on a bad record.
    fn crash_looping(name: &str) -> Pod {
        pod(&format!(
            r#"
metadata: {{name: {name}, labels: {{app.kubernetes.io/instance: raw-orders}}}}
status:
  phase: Running
  containerStatuses:
  - name: sink
    image: ghcr.io/tributary-dev/tributary:test
    imageID: ""
    ready: false
    restartCount: 4
    state:
      waiting: {{reason: CrashLoopBackOff, message: back-off 1m20s restarting failed container=sink}}
    lastState:
      terminated:
        exitCode: 1
        reason: Error
        message: "{BAD_RECORD}\n"
        startedAt: "2026-11-28T21:00:00Z"
        finishedAt: "2026-11-28T21:00:04Z"
"#
        ))
    }

    /// A worker of `ready`, running since its last stop (if any) as `last_state` says.
    fn running(name: &str, ready: bool, last_state: &str) -> Pod {
        pod(&format!(
            r#"
metadata: {{name: {name}}}
status:
  containerStatuses:
  - name: sink
    image: ghcr.io/tributary-dev/tributary:test
    imageID: ""
    ready: {ready}
    restartCount: 1
    state: {{running: {{startedAt: "2026-11-28T21:01:00Z"}}}}
    lastState: {last_state}
"#
        ))
    }

    fn starting() -> Deployment {
        deployment(
            r#"
metadata: {generation: 1}
spec: {replicas: 2}
status: {observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 1, availableReplicas: 1}
"#,
        )
    }

    fn reasons(workers: &Observed) -> [(bool, &str); 3] {
        workers.conditions.each_ref().map(|c| (c.status, c.reason))
    }

    #[test]
    fn a_new_deployment_is_rolling_out_and_not_ready() {
        let new = deployment("{metadata: {generation: 1}, spec: {replicas: 2}}");
        let workers = observe(&new, &[], false);
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
        let workers = observe(&done, &[], false);
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
        let workers = observe(&stuck, &[], false);
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
        let workers = observe(&paused, &[], true);
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

    #[test]
    fn a_crash_looping_worker_degrades_the_sink_with_its_termination_message() {
        let pods = [
            running("raw-orders-sink-5d9-b", true, "{}"),
            crash_looping("raw-orders-sink-5d9-a"),
        ];
        let workers = observe(&starting(), &pods, false);
        assert_eq!(
            reasons(&workers),
            [
                (false, WORKER_FAILED),
                (true, "RollingOut"),
                (true, WORKER_FAILED)
            ]
        );
        let message = format!(
            "worker raw-orders-sink-5d9-a: {}",
            BAD_RECORD.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        assert_eq!(workers.conditions[0].message, message);
        assert_eq!(workers.conditions[2].message, message);
        assert!(message.contains("errors.tolerance is none"));
        assert!(!message.contains('\n'), "one line");
    }

    #[test]
    fn a_failure_wins_even_when_enough_replicas_are_ready_and_over_a_stuck_rollout() {
        let stuck = deployment(
            r#"
metadata: {generation: 2}
spec: {replicas: 1}
status:
  observedGeneration: 2
  replicas: 2
  updatedReplicas: 1
  readyReplicas: 1
  availableReplicas: 1
  conditions:
  - {type: Progressing, status: "False", reason: ProgressDeadlineExceeded, message: timed out}
"#,
        );
        let workers = observe(&stuck, &[crash_looping("raw-orders-sink-7f1-x")], false);
        assert_eq!(
            reasons(&workers),
            [
                (false, WORKER_FAILED),
                (true, "RollingOut"),
                (true, WORKER_FAILED)
            ]
        );
    }

    #[test]
    fn a_stopped_worker_counts_until_it_is_ready_again() {
        let bad = "{terminated: {exitCode: 1, message: destination holds objects beyond the end of the topic}}";
        let restarted = observe(&starting(), &[running("w-1", false, bad)], false);
        assert_eq!(restarted.conditions[0].reason, WORKER_FAILED);
        assert_eq!(
            restarted.conditions[0].message,
            "worker w-1: destination holds objects beyond the end of the topic"
        );

        let recovered = observe(&starting(), &[running("w-1", true, bad)], false);
        assert_eq!(
            reasons(&recovered),
            [
                (false, "WorkersNotReady"),
                (true, "RollingOut"),
                (false, "AsExpected")
            ],
            "ready again: the old stop is history"
        );
    }

    #[test]
    fn a_worker_stopped_right_now_counts() {
        let stopped = pod(r#"
metadata: {name: w-2}
status:
  containerStatuses:
  - {name: sink, image: i, imageID: "", ready: false, restartCount: 0, state: {terminated: {exitCode: 1, message: "line one\n  line two"}}}
"#);
        let workers = observe(&starting(), &[stopped], false);
        assert_eq!(
            workers.conditions[2].message,
            "worker w-2: line one line two"
        );
    }

    #[test]
    fn a_clean_exit_a_healthy_worker_or_a_deleted_pod_is_no_failure() {
        let clean = pod(r#"
metadata: {name: w-3}
status:
  containerStatuses:
  - {name: sink, image: i, imageID: "", ready: false, restartCount: 0, state: {terminated: {exitCode: 0, reason: Completed}}}
"#);
        let mut deleted = crash_looping("w-4");
        deleted.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-11-28T21:05:00Z".parse().unwrap(),
            ));
        let pending = pod("{metadata: {name: w-5}, status: {phase: Pending}}");
        let pods = [clean, running("w-6", true, "{}"), deleted, pending];
        let workers = observe(&starting(), &pods, false);
        assert_eq!(
            reasons(&workers),
            [
                (false, "WorkersNotReady"),
                (true, "RollingOut"),
                (false, "AsExpected")
            ]
        );
    }

    #[test]
    fn without_a_message_the_exit_code_and_reason_say_it() {
        let killed = "{terminated: {exitCode: 137, reason: OOMKilled}}";
        let workers = observe(&starting(), &[running("w-7", false, killed)], false);
        assert_eq!(
            workers.conditions[0].message,
            "worker w-7: exited with code 137 (OOMKilled)"
        );
    }

    #[test]
    fn the_first_failing_pod_by_name_speaks_and_long_messages_are_cut() {
        let mut long = crash_looping("w-b");
        let status = long
            .status
            .as_mut()
            .unwrap()
            .container_statuses
            .as_mut()
            .unwrap();
        let terminated = status[0]
            .last_state
            .as_mut()
            .unwrap()
            .terminated
            .as_mut()
            .unwrap();
        terminated.message = Some("é".repeat(3000));
        let workers = observe(&starting(), &[long.clone(), crash_looping("w-c")], false);
        let message = &workers.conditions[0].message;
        assert!(message.starts_with("worker w-b: éé"), "{message}");
        assert_eq!(
            message.chars().count(),
            "worker w-b: ".len() + MESSAGE_LIMIT
        );
        assert!(message.ends_with('…'));

        let workers = observe(&starting(), &[long, crash_looping("w-a")], false);
        assert!(
            workers.conditions[0]
                .message
                .starts_with("worker w-a: record")
        );
    }

    #[test]
    fn a_paused_sink_ignores_its_last_workers() {
        let paused = deployment(
            "{metadata: {generation: 2}, spec: {replicas: 0}, status: {observedGeneration: 2}}",
        );
        let workers = observe(&paused, &[crash_looping("w-1")], true);
        assert_eq!(workers.conditions[0].reason, "Paused");
        assert_eq!(workers.conditions[2].reason, "AsExpected");
    }
}
