//! The branches of the Sink reconcile against a mock API server: the exact API calls it makes
//! (Topic, cluster and Stream lookups, the children's applies, the list of the worker pods, Events, the
//! status apply), and what it does to S3 and Kafka.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::runtime::controller::Action;
use serde_json::Value;
use tributary_crds::{KafkaCluster, Sink, Stream, Topic};
use tributary_workers::sink::config::SinkWorkerConfig;

use super::{Error, FIELD_MANAGER, FINALIZER, reconcile};
use crate::context::Context;
use crate::kafka_admin::{GroupLag, PartitionOffsets};
use crate::reconciler::Categorized;
use crate::test_support::{
    AdminCall, ApiCall, ClusterFixture, FakeBuckets, FakeKafka, Fixture, IMAGE, Op, RESYNC,
    Scenario, SinkFixture, cluster, from_yaml, sink, topic,
};

/// The requeue of a Sink whose Topic or KafkaCluster is missing.
const WAIT: Duration = Duration::from_secs(30);
/// The requeue of a running Sink, for a fresh lag.
const LAG_REFRESH: Duration = Duration::from_secs(30);
const GROUP: &str = "tributary-demo-raw-orders";

/// Reconcile `sink`; the API calls are checked against `scenario` before the result is
/// returned.
async fn reconcile_with(
    sink: &Sink,
    kafka: &FakeKafka,
    buckets: &FakeBuckets,
    scenario: Scenario,
) -> Result<Action, Error> {
    reconcile_with_image(sink, kafka, buckets, Some(IMAGE), scenario).await
}

async fn reconcile_with_image(
    sink: &Sink,
    kafka: &FakeKafka,
    buckets: &FakeBuckets,
    image: Option<&str>,
    scenario: Scenario,
) -> Result<Action, Error> {
    let (ctx, api) = Context::test_sinks(kafka.clone(), buckets.clone(), image);
    let verifier = api.run(scenario);
    let result = reconcile(Arc::new(sink.clone()), ctx).await;
    verifier.done().await;
    result
}

fn message(status: &Value) -> String {
    status["conditions"][0]["message"]
        .as_str()
        .expect("a message")
        .to_owned()
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

/// The group 42 records behind over two partitions, last committed at 21:04:05.123.
fn lagging() -> GroupLag {
    GroupLag::from_offsets([
        PartitionOffsets {
            partition: 0,
            low: 0,
            high: 100,
            committed: Some((70, "2026-11-28T21:04:05.123Z".into())),
        },
        PartitionOffsets {
            partition: 1,
            low: 0,
            high: 50,
            committed: Some((38, "2026-11-28T21:01:00Z".into())),
        },
    ])
}

/// The status the API server gives a Deployment whose pods are starting: updated, one of two
/// ready.
const STARTING: &str = "{observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 1, availableReplicas: 1}";

/// The status of a Deployment whose two workers all run the current configuration.
const RUNNING: &str = "{observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2}";

/// The label selector of the worker pods of `raw-orders`.
const WORKERS: &str = "app.kubernetes.io/instance=raw-orders,app.kubernetes.io/name=tributary-sink";

/// The list of the worker pods, answered with `pods`.
fn workers(pods: &[Pod]) -> ApiCall {
    ApiCall::list::<Pod, Pod>("demo", WORKERS, pods)
}

/// What a worker wrote to its termination log when it stopped on a bad record with
/// `errors.tolerance: none`.
const BAD_RECORD: &str = "record orders/1@41 cannot be written: the value is not JSON: expected value at line 1 column 1; errors.tolerance is none, so the sink stops here (set it to all to send such records to the dead letter)";

/// A worker pod restarted after stopping with `message`, as the kubelet reports it.
fn crash_looping(name: &str, message: &str) -> Pod {
    let mut pod: Pod = from_yaml(&format!(
        r#"
metadata:
  name: {name}
  namespace: demo
  labels: {{app.kubernetes.io/instance: raw-orders, app.kubernetes.io/name: tributary-sink}}
status:
  phase: Running
  containerStatuses:
  - name: sink
    image: ghcr.io/tributary-dev/tributary:test
    imageID: ""
    ready: false
    restartCount: 3
    state:
      waiting: {{reason: CrashLoopBackOff, message: back-off 40s restarting failed container=sink}}
    lastState:
      terminated: {{exitCode: 1, reason: Error, startedAt: "2026-11-28T21:00:00Z", finishedAt: "2026-11-28T21:00:03Z"}}
"#
    ));
    let status = pod
        .status
        .as_mut()
        .and_then(|s| s.container_statuses.as_mut());
    let last = status.and_then(|s| s[0].last_state.as_mut());
    last.and_then(|s| s.terminated.as_mut())
        .expect("a terminated last state")
        .message = Some(message.into());
    pod
}

/// The two applies of a Sink's children, the Deployment answered with `status`.
fn children(deployment_status: &str) -> [ApiCall; 2] {
    [
        ApiCall::apply::<ConfigMap>("demo", "raw-orders-sink", FIELD_MANAGER),
        ApiCall::apply::<Deployment>("demo", "raw-orders-sink", FIELD_MANAGER)
            .answering_status(deployment_status),
    ]
}

#[tokio::test]
async fn a_sink_is_applied_as_a_config_map_and_a_deployment_with_status_from_both_and_kafka() {
    let kafka = FakeKafka::default().with_group_lag(GROUP, "orders", lagging());
    let buckets = FakeBuckets::default();
    let sink = sink();
    let config_map = ApiCall::apply::<ConfigMap>("demo", "raw-orders-sink", FIELD_MANAGER)
        .with_object(|cm| {
            let config = SinkWorkerConfig::from_json(cm["data"]["config.json"].as_str().unwrap())
                .expect("the worker's document");
            assert_eq!(
                (config.topic.as_str(), config.consumer_group.as_str()),
                ("orders", GROUP)
            );
            assert_eq!(cm["metadata"]["ownerReferences"][0]["name"], "raw-orders");
        });
    let deployment = ApiCall::apply::<Deployment>("demo", "raw-orders-sink", FIELD_MANAGER)
        .with_object(|d| {
            assert_eq!(d["spec"]["replicas"], 2);
            let container = &d["spec"]["template"]["spec"]["containers"][0];
            assert_eq!(container["image"], IMAGE);
            assert_eq!(container["env"][0]["name"], "TRIBUTARY_SINK_CONFIG");
            let hash =
                &d["spec"]["template"]["metadata"]["annotations"]["tributary.dev/config-hash"];
            assert_eq!(hash.as_str().map(str::len), Some(64));
        })
        .answering_status(STARTING);
    let status =
        ApiCall::apply_status(&sink, FIELD_MANAGER, false, "WorkersNotReady").with_status(|s| {
            assert_eq!(s["source"], "topic/orders");
            assert_eq!(
                (s["replicas"].as_i64(), s["readyReplicas"].as_i64()),
                (Some(2), Some(1))
            );
            assert_eq!(s["lag"], 42, "30 + 12 records behind, from Kafka");
            assert_eq!(s["lastFlushTime"], "2026-11-28T21:04:05Z", "whole seconds");
            assert_eq!(s["observedGeneration"], 1);
            assert_eq!(message(s), "1 of 2 worker(s) ready");
            assert_eq!(condition(s, "Progressing")["status"], "True");
            assert_eq!(condition(s, "Degraded")["status"], "False");
        });

    let action = reconcile_with(
        &sink,
        &kafka,
        &buckets,
        Scenario::calls([
            ApiCall::get(&topic()),
            ApiCall::get(&cluster().ready()),
            ApiCall::event(&sink, "BucketCreated"),
            config_map,
            deployment,
            workers(&[]),
            ApiCall::warning(&sink, "WorkersNotReady"),
            status,
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(LAG_REFRESH));
    assert!(buckets.exists("lake"));
    assert_eq!(buckets.calls(), [("lake".to_owned(), true)]);
    assert_eq!(
        kafka.calls(),
        [AdminCall::GroupLag {
            group: GROUP.into(),
            topic: "orders".into()
        }]
    );
}

#[tokio::test]
async fn a_sink_whose_status_is_current_needs_no_status_write() {
    let kafka = FakeKafka::default().with_group_lag(GROUP, "orders", lagging());
    let sink = sink().status(
        r#"
observedGeneration: 1
source: topic/orders
replicas: 2
readyReplicas: 1
lag: 42
lastFlushTime: "2026-11-28T21:04:05Z"
conditions:
- {type: Ready, status: "False", reason: WorkersNotReady, message: 1 of 2 worker(s) ready, observedGeneration: 1, lastTransitionTime: "2025-01-01T00:01:00Z"}
- {type: Progressing, status: "True", reason: RollingOut, message: "2 of 2 worker(s) updated, 1 available", observedGeneration: 1, lastTransitionTime: "2025-01-01T00:01:00Z"}
- {type: Degraded, status: "False", reason: AsExpected, message: the Deployment reports no problem, observedGeneration: 1, lastTransitionTime: "2025-01-01T00:01:00Z"}
"#,
    );
    let [config_map, deployment] = children(STARTING);

    let action = reconcile_with(
        &sink,
        &kafka,
        &FakeBuckets::default().with_bucket("lake"),
        Scenario::calls([
            ApiCall::get(&topic()),
            ApiCall::get(&cluster().ready()),
            config_map,
            deployment,
            workers(&[]),
        ]),
    )
    .await
    .expect("reconciled");
    assert_eq!(action, Action::requeue(LAG_REFRESH));
}

#[tokio::test]
async fn ready_workers_make_the_sink_ready_with_an_event() {
    let kafka = FakeKafka::default().with_group_lag(GROUP, "orders", lagging());
    let buckets = FakeBuckets::default().with_bucket("lake");
    let sink = sink().status(
        r#"
observedGeneration: 1
source: topic/orders
replicas: 2
readyReplicas: 1
conditions:
- {type: Ready, status: "False", reason: WorkersNotReady, message: 1 of 2 worker(s) ready, lastTransitionTime: "2025-01-01T00:01:00Z"}
"#,
    );
    let [config_map, deployment] = children(RUNNING);

    let action = reconcile_with(
        &sink,
        &kafka,
        &buckets,
        Scenario::calls([
            ApiCall::get(&topic()),
            ApiCall::get(&cluster().ready()),
            config_map,
            deployment,
            workers(&[]),
            ApiCall::event(&sink, "Running"),
            ApiCall::apply_status(&sink, FIELD_MANAGER, true, "Running").with_status(|s| {
                assert_eq!(s["readyReplicas"], 2);
                assert_eq!(condition(s, "Progressing")["reason"], "RolloutComplete");
            }),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(LAG_REFRESH));
    assert_eq!(
        buckets.calls(),
        [("lake".to_owned(), true)],
        "checked, not created"
    );
}

#[tokio::test]
async fn a_worker_stopped_by_a_bad_record_makes_the_sink_degraded_with_its_message() {
    let kafka = FakeKafka::default().with_group_lag(GROUP, "orders", lagging());
    let sink = sink().status(
        r#"
observedGeneration: 1
source: topic/orders
conditions:
- {type: Ready, status: "True", reason: Running, message: 2 of 2 worker(s) ready, lastTransitionTime: "2025-01-01T00:01:00Z"}
- {type: Degraded, status: "False", reason: AsExpected, message: the Deployment reports no problem, lastTransitionTime: "2025-01-01T00:01:00Z"}
"#,
    );
    let [config_map, deployment] = children(STARTING);
    let pods = [crash_looping("raw-orders-sink-5d9c-x2k", BAD_RECORD)];
    let expected = format!("worker raw-orders-sink-5d9c-x2k: {BAD_RECORD}");
    let also = expected.clone();

    let action = reconcile_with(
        &sink,
        &kafka,
        &FakeBuckets::default().with_bucket("lake"),
        Scenario::calls([
            ApiCall::get(&topic()),
            ApiCall::get(&cluster().ready()),
            config_map,
            deployment,
            workers(&pods),
            ApiCall::warning(&sink, "WorkerFailed"),
            ApiCall::apply_status(&sink, FIELD_MANAGER, false, "WorkerFailed").with_status(
                move |s| {
                    assert_eq!(message(s), expected);
                    let degraded = condition(s, "Degraded");
                    assert_eq!(
                        (
                            &degraded["status"],
                            &degraded["reason"],
                            &degraded["message"]
                        ),
                        (&"True".into(), &"WorkerFailed".into(), &also.into())
                    );
                    assert!(message(s).contains("errors.tolerance is none"), "{s}");
                    assert_eq!(s["lag"], 42, "the lag is still read");
                },
            ),
        ]),
    )
    .await
    .expect("reconciled: the workers' failure is not the controller's");
    assert_eq!(action, Action::requeue(LAG_REFRESH), "looked at again");
}

#[tokio::test]
async fn pods_that_cannot_be_listed_leave_the_status_to_the_deployment() {
    let sink = sink();
    let [config_map, deployment] = children(RUNNING);

    let action = reconcile_with(
        &sink,
        &FakeKafka::default().with_group_lag(GROUP, "orders", lagging()),
        &FakeBuckets::default().with_bucket("lake"),
        Scenario::calls([
            ApiCall::get(&topic()),
            ApiCall::get(&cluster().ready()),
            config_map,
            deployment,
            ApiCall::list_forbidden::<Pod>("demo", WORKERS),
            ApiCall::event(&sink, "Running"),
            ApiCall::apply_status(&sink, FIELD_MANAGER, true, "Running")
                .with_status(|s| assert_eq!(condition(s, "Degraded")["reason"], "AsExpected")),
        ]),
    )
    .await
    .expect("a pod list never fails the reconcile");
    assert_eq!(action, Action::requeue(LAG_REFRESH));
}

#[tokio::test]
async fn a_missing_topic_is_reported_and_looked_for_again() {
    let kafka = FakeKafka::default();
    let buckets = FakeBuckets::default();
    let sink = sink();

    let action = reconcile_with(
        &sink,
        &kafka,
        &buckets,
        Scenario::calls([
            ApiCall::get_missing::<Topic>("demo", "orders"),
            ApiCall::warning(&sink, "TopicNotFound"),
            ApiCall::apply_status(&sink, FIELD_MANAGER, false, "TopicNotFound").with_status(|s| {
                assert_eq!(message(s), "Topic demo/orders does not exist");
                assert_eq!(s["source"], "topic/orders");
            }),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(WAIT));
    assert!(buckets.calls().is_empty() && kafka.calls().is_empty());
}

#[tokio::test]
async fn a_missing_cluster_is_reported_and_looked_for_again() {
    let sink = sink();
    let action = reconcile_with(
        &sink,
        &FakeKafka::default(),
        &FakeBuckets::default(),
        Scenario::calls([
            ApiCall::get(&topic()),
            ApiCall::get_missing::<KafkaCluster>("demo", "local"),
            ApiCall::warning(&sink, "ClusterNotFound"),
            ApiCall::apply_status(&sink, FIELD_MANAGER, false, "ClusterNotFound"),
        ]),
    )
    .await
    .expect("reconciled");
    assert_eq!(action, Action::requeue(WAIT));
}

/// A Stream `demo/pin-stream` (Kinesis name `pinterest-pin`), as a user would apply it.
fn pin_stream() -> Stream {
    from_yaml(
        r#"
apiVersion: tributary.dev/v1alpha1
kind: Stream
metadata: {name: pin-stream, namespace: demo, uid: 7f0c0e1a-0000-4000-8000-0000000000d1}
spec: {streamName: pinterest-pin, mode: Provisioned, shardCount: 1}
"#,
    )
}

/// `raw-orders` reading the Stream `pin-stream` with one worker.
fn stream_sink() -> Sink {
    let mut sink = sink();
    sink.spec.source = from_yaml("streamRef: {name: pin-stream}");
    sink.spec.parallelism = 1;
    sink
}

fn lease(
    owner: &str,
    finished: bool,
    millis_behind: i64,
    flushed: &str,
) -> tributary_workers::sink::kinesis_leases::Lease {
    tributary_workers::sink::kinesis_leases::Lease {
        owner: owner.into(),
        counter: 7,
        finished,
        millis_behind_latest: Some(millis_behind),
        last_flush_time: Some(flushed.into()),
    }
}

#[tokio::test]
async fn a_stream_source_runs_its_workers_on_the_kinesis_stream_without_kafka() {
    let kafka = FakeKafka::default();
    let sink = stream_sink();
    let config_map = ApiCall::apply::<ConfigMap>("demo", "raw-orders-sink", FIELD_MANAGER)
        .with_object(|cm| {
            let config = SinkWorkerConfig::from_json(cm["data"]["config.json"].as_str().unwrap())
                .expect("the worker's document");
            let kinesis = config.kinesis.expect("a Kinesis source");
            assert_eq!(kinesis.stream_name, "pinterest-pin");
            assert_eq!(kinesis.region, None, "the test operator has no region");
            assert_eq!(
                (config.topic.as_str(), config.consumer_group.as_str()),
                ("", "")
            );
            assert!(config.kafka.bootstrap_servers.is_empty());
        });
    let deployment = ApiCall::apply::<Deployment>("demo", "raw-orders-sink", FIELD_MANAGER)
        .with_object(|d| {
            assert_eq!(d["spec"]["replicas"], 1);
            let env = &d["spec"]["template"]["spec"]["containers"][0]["env"];
            let names: Vec<&str> = env
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["name"].as_str())
                .collect();
            assert_eq!(
                names,
                ["TRIBUTARY_SINK_CONFIG", "TRIBUTARY_WORKER_ID"],
                "no Kafka variables; the lease owner"
            );
        })
        .answering_status(
            "{observedGeneration: 1, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1}",
        );

    let action = reconcile_with(
        &sink,
        &kafka,
        &FakeBuckets::default().with_bucket("lake").with_leases(
            "lake",
            "_tributary/leases/demo/raw-orders/pinterest-pin/shards/",
            vec![
                lease(
                    "raw-orders-sink-0",
                    false,
                    1_500,
                    "2026-11-29T05:00:01.250Z",
                ),
                lease("raw-orders-sink-0", true, 0, "2026-11-29T05:00:03Z"),
                lease("raw-orders-sink-1", false, 4_200, "2026-11-29T04:59:00Z"),
            ],
        ),
        Scenario::calls([
            ApiCall::get(&pin_stream()),
            config_map,
            deployment,
            workers(&[]),
            ApiCall::event(&sink, "Running"),
            ApiCall::apply_status(&sink, FIELD_MANAGER, true, "Running").with_status(|s| {
                assert_eq!(s["source"], "stream/pin-stream");
                assert_eq!(s["readyReplicas"], 1);
                assert!(s.get("lag").is_none(), "no consumer group: {s}");
                // From the shard leases: the furthest behind, and the latest flush.
                assert_eq!(s["millisBehindLatest"], 4_200);
                assert_eq!(s["lastFlushTime"], "2026-11-29T05:00:03Z");
            }),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(LAG_REFRESH));
    assert_eq!(kafka.calls(), [], "nothing asked of Kafka");
}

#[tokio::test]
async fn a_stream_source_with_several_workers_writing_to_a_directory_is_refused() {
    let mut sink = stream_sink();
    sink.spec.parallelism = 3;
    sink.spec.destination.url = "file:///lake/raw".into();
    let buckets = FakeBuckets::default();

    let action = reconcile_with(
        &sink,
        &FakeKafka::default(),
        &buckets,
        Scenario::calls([
            ApiCall::warning(&sink, "ParallelismNotSupported"),
            ApiCall::apply_status(&sink, FIELD_MANAGER, false, "ParallelismNotSupported")
                .with_status(|s| {
                    assert_eq!(
                        message(s),
                        "spec.parallelism: 3; several workers share a Stream's shards through \
                         leases kept in the destination's S3 bucket, and file:///lake/raw is not \
                         in S3; set parallelism: 1 or write to an s3:// destination"
                    );
                    assert_eq!(s["source"], "stream/pin-stream");
                }),
        ]),
    )
    .await
    .expect("not an error: no retry loop");

    assert_eq!(action, Action::await_change());
    assert!(buckets.calls().is_empty());
}

#[tokio::test]
async fn a_missing_stream_is_reported_and_looked_for_again() {
    let sink = stream_sink();
    let buckets = FakeBuckets::default();

    let action = reconcile_with(
        &sink,
        &FakeKafka::default(),
        &buckets,
        Scenario::calls([
            ApiCall::get_missing::<Stream>("demo", "pin-stream"),
            ApiCall::warning(&sink, "StreamNotFound"),
            ApiCall::apply_status(&sink, FIELD_MANAGER, false, "StreamNotFound").with_status(|s| {
                assert_eq!(message(s), "Stream demo/pin-stream does not exist");
                assert_eq!(s["source"], "stream/pin-stream");
            }),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(WAIT));
    assert!(buckets.calls().is_empty());
}

#[tokio::test]
async fn an_invalid_spec_is_reported_without_touching_the_workers() {
    let mut sink = sink();
    sink.spec.partitioning.path = Some("dt={time:%Y-%m-%d".into());

    let action = reconcile_with(
        &sink,
        &FakeKafka::default(),
        &FakeBuckets::default(),
        Scenario::calls([
            ApiCall::warning(&sink, "InvalidSpec"),
            ApiCall::apply_status(&sink, FIELD_MANAGER, false, "InvalidSpec")
                .with_status(|s| assert!(message(s).starts_with("spec.partitioning.path:"), "{s}")),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn without_a_worker_image_the_sink_says_how_to_start_the_operator() {
    let sink = sink();
    let action = reconcile_with_image(
        &sink,
        &FakeKafka::default(),
        &FakeBuckets::default(),
        None,
        Scenario::calls([
            ApiCall::warning(&sink, "NoWorkerImage"),
            ApiCall::apply_status(&sink, FIELD_MANAGER, false, "NoWorkerImage")
                .with_status(|s| assert!(message(s).contains("--image"), "{s}")),
        ]),
    )
    .await
    .expect("reconciled");
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn a_missing_bucket_that_may_not_be_created_is_reported_and_checked_slowly() {
    let mut sink = sink();
    sink.spec.destination.create_bucket = false;
    let buckets = FakeBuckets::default();

    let action = reconcile_with(
        &sink,
        &FakeKafka::default(),
        &buckets,
        Scenario::calls([
            ApiCall::get(&topic()),
            ApiCall::get(&cluster().ready()),
            ApiCall::warning(&sink, "BucketNotFound"),
            ApiCall::apply_status(&sink, FIELD_MANAGER, false, "BucketNotFound")
                .with_status(|s| assert!(message(s).contains("createBucket: true"), "{s}")),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(RESYNC));
    assert!(!buckets.exists("lake"), "never created unasked");
}

#[tokio::test]
async fn an_s3_error_is_reported_and_retried_with_backoff() {
    let sink = sink();
    let result = reconcile_with(
        &sink,
        &FakeKafka::default(),
        &FakeBuckets::default().failing(),
        Scenario::calls([
            ApiCall::get(&topic()),
            ApiCall::get(&cluster().ready()),
            ApiCall::warning(&sink, "S3Error"),
            ApiCall::apply_status(&sink, FIELD_MANAGER, false, "S3Error"),
        ]),
    )
    .await;
    assert_eq!(result.expect_err("retried").category(), "aws");
}

#[tokio::test]
async fn a_paused_sink_scales_its_workers_to_zero_and_is_ready() {
    let mut sink = sink();
    sink.spec.paused = true;
    let deployment = ApiCall::apply::<Deployment>("demo", "raw-orders-sink", FIELD_MANAGER)
        .with_object(|d| assert_eq!(d["spec"]["replicas"], 0))
        .answering_status("{observedGeneration: 1}");

    let action = reconcile_with(
        &sink,
        &FakeKafka::default().with_group_lag(GROUP, "orders", lagging()),
        &FakeBuckets::default().with_bucket("lake"),
        Scenario::calls([
            ApiCall::get(&topic()),
            ApiCall::get(&cluster().ready()),
            ApiCall::apply::<ConfigMap>("demo", "raw-orders-sink", FIELD_MANAGER),
            deployment,
            ApiCall::event(&sink, "Paused"),
            ApiCall::apply_status(&sink, FIELD_MANAGER, true, "Paused").with_status(|s| {
                assert_eq!(s["replicas"], 0);
                assert_eq!(s["lag"], 42, "the lag still grows while paused");
            }),
        ]),
    )
    .await
    .expect("reconciled");
    assert_eq!(action, Action::requeue(LAG_REFRESH));
}

#[tokio::test]
async fn a_lag_that_cannot_be_read_keeps_the_last_one() {
    let kafka = FakeKafka::default().failing(Op::GroupLag);
    let sink = sink().status(
        r#"
observedGeneration: 1
source: topic/orders
replicas: 2
readyReplicas: 1
lag: 7
lastFlushTime: "2026-11-28T20:00:00Z"
conditions:
- {type: Ready, status: "False", reason: WorkersNotReady, message: 1 of 2 worker(s) ready, lastTransitionTime: "2025-01-01T00:01:00Z"}
"#,
    );
    let [config_map, deployment] = children(STARTING);

    let action = reconcile_with(
        &sink,
        &kafka,
        &FakeBuckets::default().with_bucket("lake"),
        Scenario::calls([
            ApiCall::get(&topic()),
            ApiCall::get(&cluster().ready()),
            config_map,
            deployment,
            workers(&[]),
            ApiCall::apply_status(&sink, FIELD_MANAGER, false, "WorkersNotReady").with_status(
                |s| {
                    assert_eq!(s["lag"], 7);
                    assert_eq!(s["lastFlushTime"], "2026-11-28T20:00:00Z");
                    assert_eq!(
                        condition(s, "Ready")["lastTransitionTime"],
                        "2025-01-01T00:01:00Z",
                        "still not ready: the transition time stays"
                    );
                },
            ),
        ]),
    )
    .await
    .expect("a lag reading never fails the reconcile");
    assert_eq!(action, Action::requeue(LAG_REFRESH));
}

#[tokio::test]
async fn the_lag_is_not_read_from_a_cluster_that_is_not_ready() {
    let kafka = FakeKafka::default();
    let sink = sink();
    let [config_map, deployment] = children(STARTING);

    reconcile_with(
        &sink,
        &kafka,
        &FakeBuckets::default().with_bucket("lake"),
        Scenario::calls([
            ApiCall::get(&topic()),
            ApiCall::get(&cluster()),
            config_map,
            deployment,
            workers(&[]),
            ApiCall::warning(&sink, "WorkersNotReady"),
            ApiCall::apply_status(&sink, FIELD_MANAGER, false, "WorkersNotReady")
                .with_status(|s| assert!(s.get("lag").is_none(), "{s}")),
        ]),
    )
    .await
    .expect("reconciled");
    assert_eq!(kafka.calls(), []);
}

#[tokio::test]
async fn a_sink_paused_by_annotation_makes_no_call_at_all() {
    let sink = sink().paused();
    let action = reconcile_with(
        &sink,
        &FakeKafka::default(),
        &FakeBuckets::default(),
        Scenario::silence(),
    )
    .await
    .expect("reconciled");
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn a_sink_that_deletes_its_group_gets_the_finalizer_first() {
    let mut sink = sink();
    sink.spec.deletion_policy = tributary_crds::DeletionPolicy::Delete;
    let action = reconcile_with(
        &sink,
        &FakeKafka::default(),
        &FakeBuckets::default(),
        Scenario::calls([ApiCall::add_finalizer(&sink, FINALIZER)]),
    )
    .await
    .expect("reconciled");
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn deleting_with_delete_stops_the_workers_then_deletes_the_group() {
    let kafka = FakeKafka::default().with_group_lag(GROUP, "orders", lagging());
    let sink = sink().deleting_group().deleting();

    let action = reconcile_with(
        &sink,
        &kafka,
        &FakeBuckets::default(),
        Scenario::calls([
            ApiCall::delete::<Deployment>("demo", "raw-orders-sink", true),
            ApiCall::get(&topic()),
            ApiCall::get(&cluster().ready()),
            ApiCall::remove_finalizer(&sink, FINALIZER),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::await_change());
    assert_eq!(kafka.calls(), [AdminCall::DeleteGroup(GROUP.into())]);
    assert!(!kafka.has_group(GROUP));
}

#[tokio::test]
async fn deleting_with_delete_when_kafka_fails_keeps_the_finalizer() {
    let kafka = FakeKafka::default()
        .with_group_lag(GROUP, "orders", lagging())
        .failing(Op::DeleteGroup);
    let sink = sink().deleting_group().deleting();

    let result = reconcile_with(
        &sink,
        &kafka,
        &FakeBuckets::default(),
        Scenario::calls([
            ApiCall::delete::<Deployment>("demo", "raw-orders-sink", false),
            ApiCall::get(&topic()),
            ApiCall::get(&cluster().ready()),
        ]),
    )
    .await;

    assert_eq!(result.expect_err("retried").category(), "kafka");
    assert!(kafka.has_group(GROUP));
}

#[tokio::test]
async fn deleting_with_delete_when_the_topic_is_gone_releases_the_sink() {
    let kafka = FakeKafka::default().with_group_lag(GROUP, "orders", lagging());
    let sink = sink().deleting_group().deleting();

    reconcile_with(
        &sink,
        &kafka,
        &FakeBuckets::default(),
        Scenario::calls([
            ApiCall::delete::<Deployment>("demo", "raw-orders-sink", true),
            ApiCall::get_missing::<Topic>("demo", "orders"),
            ApiCall::remove_finalizer(&sink, FINALIZER),
        ]),
    )
    .await
    .expect("reconciled");
    assert_eq!(kafka.calls(), []);
}

#[tokio::test]
async fn deleting_with_retain_keeps_the_group() {
    let kafka = FakeKafka::default().with_group_lag(GROUP, "orders", lagging());
    let mut sink = sink().deleting_group().deleting();
    sink.spec.deletion_policy = tributary_crds::DeletionPolicy::Retain;

    reconcile_with(
        &sink,
        &kafka,
        &FakeBuckets::default(),
        Scenario::calls([ApiCall::remove_finalizer(&sink, FINALIZER)]),
    )
    .await
    .expect("reconciled");
    assert!(kafka.has_group(GROUP));
}
