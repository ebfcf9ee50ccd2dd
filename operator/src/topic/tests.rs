//! Every branch of the Topic reconcile against a mock API server: the exact API calls it makes
//! (finalizer, cluster lookup, Events, status apply) and what it does to Kafka.

use crate::reconciler::Categorized;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use serde_json::{Value, json};
use tributary_crds::{DeletionPolicy, KafkaCluster, Topic};

use super::{Error, FIELD_MANAGER, FINALIZER, reconcile};
use crate::context::Context;
use crate::test_support::{
    AdminCall, ApiCall, ClusterFixture, FakeKafka, Fixture, Op, RESYNC, Scenario, TopicFixture,
    cluster, kafka_topic, map, topic,
};

/// The requeue while the KafkaCluster is missing or not Ready.
const CLUSTER_WAIT: Duration = Duration::from_secs(30);

/// The configs of the [`topic`] fixture, as Kafka takes them.
const CONFIGS: [(&str, &str); 2] = [("cleanup.policy", "delete"), ("retention.ms", "604800000")];

/// The status of the [`topic`] fixture after a reconcile that found it in sync.
const IN_SYNC: &str = r#"
observedGeneration: 1
topicName: orders
partitions: 3
replicationFactor: 3
configs: {cleanup.policy: delete, retention.ms: "604800000"}
conditions:
- type: Ready
  status: "True"
  reason: InSync
  message: Kafka topic orders matches the spec
  observedGeneration: 1
  lastTransitionTime: "2025-01-01T00:02:00Z"
"#;

/// Reconcile `topic` with `topics` in the store; the API calls are checked against `scenario`
/// before the result is returned.
async fn reconcile_in(
    topic: &Topic,
    kafka: &FakeKafka,
    topics: &[Topic],
    scenario: Scenario,
) -> Result<Action, Error> {
    let (ctx, api) = Context::test_with_topics(kafka.clone(), topics);
    let verifier = api.run(scenario);
    let result = reconcile(Arc::new(topic.clone()), ctx).await;
    verifier.done().await;
    result
}

async fn reconcile_with(
    topic: &Topic,
    kafka: &FakeKafka,
    scenario: Scenario,
) -> Result<Action, Error> {
    reconcile_in(topic, kafka, &[], scenario).await
}

fn message(status: &Value) -> String {
    status["conditions"][0]["message"]
        .as_str()
        .expect("a message")
        .to_owned()
}

/// Kafka with the topic of the [`topic`] fixture as its spec says, and one inherited default.
fn in_sync_in_kafka() -> FakeKafka {
    let defaults = [("segment.bytes", "1073741824")];
    FakeKafka::default().with_topic("orders", kafka_topic(3, 3, &CONFIGS, &defaults))
}

#[tokio::test]
async fn a_new_topic_gets_the_finalizer_and_nothing_else() {
    let kafka = FakeKafka::default();
    let topic = topic();

    let action = reconcile_with(
        &topic,
        &kafka,
        Scenario::calls([ApiCall::add_finalizer(&topic, FINALIZER)]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::await_change());
    assert_eq!(kafka.calls(), []);
}

#[tokio::test]
async fn an_invalid_spec_is_reported_without_touching_kafka() {
    let mut no_partitions = topic().finalized();
    no_partitions.spec.partitions = 0;
    let mut object_config = topic().finalized();
    object_config
        .spec
        .config
        .insert("retention.ms".into(), json!({"days": 7}));

    for (topic, field) in [
        (no_partitions, "spec.partitions"),
        (object_config, "spec.config.retention.ms"),
    ] {
        let kafka = FakeKafka::default();
        let status = ApiCall::apply_status(&topic, FIELD_MANAGER, false, "InvalidSpec")
            .with_status(move |status| {
                assert!(message(status).contains(field), "{status}");
                assert_eq!(status["topicName"], "orders");
            });

        let action = reconcile_with(&topic, &kafka, Scenario::calls([status]))
            .await
            .expect("reconciled");

        assert_eq!(action, Action::await_change(), "waits for a spec change");
        assert_eq!(kafka.calls(), [], "no Kafka call for {field}");
    }
}

#[tokio::test]
async fn a_missing_cluster_is_reported_and_checked_again() {
    let kafka = FakeKafka::default();
    let topic = topic().finalized();

    let action = reconcile_with(
        &topic,
        &kafka,
        Scenario::calls([
            ApiCall::get_missing::<KafkaCluster>("demo", "local"),
            ApiCall::apply_status(&topic, FIELD_MANAGER, false, "ClusterNotFound").with_status(
                |status| {
                    assert!(
                        message(status).contains("KafkaCluster demo/local"),
                        "{status}"
                    )
                },
            ),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(CLUSTER_WAIT));
    assert_eq!(kafka.calls(), []);
}

#[tokio::test]
async fn a_cluster_that_is_not_ready_is_waited_for() {
    let kafka = FakeKafka::default();
    let topic = topic().finalized();
    let unreachable = cluster().status(
        r#"
conditions:
- type: Ready
  status: "False"
  reason: Unreachable
  message: no metadata
  lastTransitionTime: "2025-01-01T00:01:00Z"
"#,
    );

    let action = reconcile_with(
        &topic,
        &kafka,
        Scenario::calls([
            ApiCall::get(&unreachable),
            ApiCall::apply_status(&topic, FIELD_MANAGER, false, "ClusterNotReady"),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(CLUSTER_WAIT));
    assert_eq!(kafka.calls(), []);
}

#[tokio::test]
async fn a_missing_topic_is_created_with_an_event_and_reported_in_sync() {
    let kafka = FakeKafka::default();
    let topic = topic().finalized();
    let status = ApiCall::apply_status(&topic, FIELD_MANAGER, true, "InSync").with_status(|s| {
        assert_eq!(s["topicName"], "orders");
        assert_eq!(s["partitions"], 3);
        assert_eq!(s["replicationFactor"], 3, "as Kafka reports it");
        assert_eq!(s["configs"], json!(map(&CONFIGS)));
        assert_eq!(s["observedGeneration"], 1);
        assert_eq!(s["conditions"][0]["observedGeneration"], 1);
    });

    let action = reconcile_with(
        &topic,
        &kafka,
        Scenario::calls([
            ApiCall::get(&cluster().ready()),
            ApiCall::event(&topic, "Created"),
            status,
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(RESYNC));
    assert_eq!(
        kafka.calls(),
        [
            AdminCall::Describe("orders".into()),
            AdminCall::Create {
                topic: "orders".into(),
                partitions: 3,
                replication_factor: None,
                configs: map(&CONFIGS),
            },
            AdminCall::Describe("orders".into()),
        ]
    );
    let connections = kafka.connections();
    assert_eq!(
        connections[0].bootstrap_servers,
        "kafka-0.kafka.demo:9092,kafka-1.kafka.demo:9092"
    );
    assert!(connections[0].sasl.is_none() && connections[0].tls.is_none());
}

#[tokio::test]
async fn a_topic_in_sync_needs_no_write() {
    let kafka = in_sync_in_kafka();
    let topic = topic().finalized().status(IN_SYNC);

    let action = reconcile_with(
        &topic,
        &kafka,
        Scenario::calls([ApiCall::get(&cluster().ready())]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(RESYNC));
    assert_eq!(kafka.calls(), [AdminCall::Describe("orders".into())]);
}

#[tokio::test]
async fn raised_partitions_are_added_with_an_event() {
    let kafka = in_sync_in_kafka();
    let mut topic = topic().finalized().status(IN_SYNC);
    topic.spec.partitions = 6;
    topic.metadata.generation = Some(2);

    let action = reconcile_with(
        &topic,
        &kafka,
        Scenario::calls([
            ApiCall::get(&cluster().ready()),
            ApiCall::event(&topic, "PartitionsIncreased"),
            ApiCall::apply_status(&topic, FIELD_MANAGER, true, "InSync").with_status(|s| {
                assert_eq!(s["partitions"], 6);
                assert_eq!(s["observedGeneration"], 2);
            }),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(RESYNC));
    assert_eq!(
        kafka.calls(),
        [
            AdminCall::Describe("orders".into()),
            AdminCall::CreatePartitions {
                topic: "orders".into(),
                total: 6
            },
            AdminCall::Describe("orders".into()),
        ]
    );
}

#[tokio::test]
async fn a_partition_decrease_is_refused_without_touching_kafka() {
    let kafka = FakeKafka::default().with_topic("orders", kafka_topic(6, 3, &CONFIGS, &[]));
    let topic = topic().finalized();

    let action = reconcile_with(
        &topic,
        &kafka,
        Scenario::calls([
            ApiCall::get(&cluster().ready()),
            ApiCall::apply_status(
                &topic,
                FIELD_MANAGER,
                false,
                "PartitionDecreaseNotSupported",
            )
            .with_status(|s| {
                assert_eq!(s["partitions"], 6, "what Kafka has");
                assert!(
                    message(s).contains("set spec.partitions to 6 or more"),
                    "{s}"
                );
            }),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(RESYNC));
    assert_eq!(kafka.calls(), [AdminCall::Describe("orders".into())]);
    assert_eq!(kafka.topic("orders").expect("kept").partitions, 6);
}

#[tokio::test]
async fn a_spec_config_change_is_applied_with_an_event() {
    let kafka = in_sync_in_kafka();
    let mut topic = topic().finalized().status(IN_SYNC);
    topic
        .spec
        .config
        .insert("retention.ms".into(), json!(86400000));

    let action = reconcile_with(
        &topic,
        &kafka,
        Scenario::calls([
            ApiCall::get(&cluster().ready()),
            ApiCall::event(&topic, "ConfigsUpdated"),
            ApiCall::apply_status(&topic, FIELD_MANAGER, true, "InSync")
                .with_status(|s| assert_eq!(s["configs"]["retention.ms"], "86400000")),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(RESYNC));
    let wanted = map(&[("cleanup.policy", "delete"), ("retention.ms", "86400000")]);
    assert_eq!(
        kafka.calls()[1],
        AdminCall::SetConfigs {
            topic: "orders".into(),
            configs: wanted
        }
    );
}

#[tokio::test]
async fn drift_in_kafka_is_reverted_with_a_warning_and_the_keys_in_status() {
    // Someone set retention.ms in Kafka, and added an override the spec does not own.
    let drifted = [
        ("cleanup.policy", "delete"),
        ("retention.ms", "1000"),
        ("segment.ms", "60000"),
    ];
    let kafka = FakeKafka::default().with_topic("orders", kafka_topic(3, 3, &drifted, &[]));
    let topic = topic().finalized().status(IN_SYNC);

    let action = reconcile_with(
        &topic,
        &kafka,
        Scenario::calls([
            ApiCall::get(&cluster().ready()),
            ApiCall::warning(&topic, "DriftReverted"),
            ApiCall::apply_status(&topic, FIELD_MANAGER, true, "InSync").with_status(|s| {
                assert_eq!(s["driftedKeys"], json!(["retention.ms"]));
                assert_eq!(
                    s["conditions"][0]["lastTransitionTime"], "2025-01-01T00:02:00Z",
                    "still Ready: the transition time stays"
                );
            }),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(RESYNC));
    let reverted = map(&[
        ("cleanup.policy", "delete"),
        ("retention.ms", "604800000"),
        ("segment.ms", "60000"),
    ]);
    assert_eq!(
        kafka.calls(),
        [
            AdminCall::Describe("orders".into()),
            AdminCall::SetConfigs {
                topic: "orders".into(),
                configs: reverted
            },
            AdminCall::Describe("orders".into()),
        ]
    );
}

#[tokio::test]
async fn a_kafka_error_is_reported_and_returned_for_a_retry() {
    let kafka = FakeKafka::default().failing(Op::Describe);
    let topic = topic().finalized();

    let result = reconcile_with(
        &topic,
        &kafka,
        Scenario::calls([
            ApiCall::get(&cluster().ready()),
            ApiCall::apply_status(&topic, FIELD_MANAGER, false, "KafkaError"),
        ]),
    )
    .await;

    let error = result.expect_err("a Kafka error fails the reconcile");
    assert_eq!(error.category(), "kafka");
    assert_eq!(kafka.calls(), [AdminCall::Describe("orders".into())]);
}

#[tokio::test]
async fn a_paused_topic_makes_no_call_at_all() {
    let kafka = in_sync_in_kafka();
    let mut topic = topic().finalized().paused();
    topic.spec.partitions = 6;

    let action = reconcile_with(&topic, &kafka, Scenario::silence())
        .await
        .expect("reconciled");

    assert_eq!(action, Action::await_change());
    assert_eq!(kafka.calls(), []);
}

#[tokio::test]
async fn deleting_with_retain_releases_the_topic_and_keeps_it_in_kafka() {
    let kafka = in_sync_in_kafka();
    let topic = topic().finalized().deleting();

    let action = reconcile_with(
        &topic,
        &kafka,
        Scenario::calls([ApiCall::remove_finalizer(&topic, FINALIZER)]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::await_change());
    assert_eq!(kafka.calls(), []);
    assert!(kafka.topic("orders").is_some());
}

#[tokio::test]
async fn deleting_with_delete_deletes_the_kafka_topic_then_the_finalizer() {
    let kafka = in_sync_in_kafka();
    let topic = topic()
        .finalized()
        .deletion_policy(DeletionPolicy::Delete)
        .deleting();

    let action = reconcile_with(
        &topic,
        &kafka,
        Scenario::calls([
            ApiCall::get(&cluster().ready()),
            ApiCall::remove_finalizer(&topic, FINALIZER),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::await_change());
    assert_eq!(kafka.calls(), [AdminCall::Delete("orders".into())]);
    assert!(kafka.topic("orders").is_none());
}

#[tokio::test]
async fn deleting_with_delete_when_kafka_fails_keeps_the_finalizer() {
    let kafka = in_sync_in_kafka().failing(Op::Delete);
    let topic = topic()
        .finalized()
        .deletion_policy(DeletionPolicy::Delete)
        .deleting();

    let result = reconcile_with(
        &topic,
        &kafka,
        Scenario::calls([ApiCall::get(&cluster().ready())]),
    )
    .await;

    assert_eq!(result.expect_err("retried").category(), "kafka");
    assert!(kafka.topic("orders").is_some());
}

#[tokio::test]
async fn deleting_with_delete_when_the_cluster_is_gone_releases_the_topic() {
    let kafka = in_sync_in_kafka();
    let topic = topic()
        .finalized()
        .deletion_policy(DeletionPolicy::Delete)
        .deleting();

    let action = reconcile_with(
        &topic,
        &kafka,
        Scenario::calls([
            ApiCall::get_missing::<KafkaCluster>("demo", "local"),
            ApiCall::remove_finalizer(&topic, FINALIZER),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::await_change());
    assert_eq!(kafka.calls(), []);
}

/// Two Topics for the Kafka topic `orders` on `local`: `demo/orders-first`, created a month
/// before the `demo/orders` of the [`topic`] fixture.
fn older_and_newer() -> (Topic, Topic) {
    let mut older = topic().finalized().another(
        "orders-first",
        "7f0c0e1a-0000-4000-8000-000000000000",
        "2024-12-01T00:00:00Z",
    );
    older.spec.topic_name = Some("orders".into());
    (older, topic().finalized())
}

#[tokio::test]
async fn the_newer_of_two_topics_for_one_kafka_topic_reports_a_conflict() {
    let kafka = in_sync_in_kafka();
    let (older, newer) = older_and_newer();

    let action = reconcile_in(
        &newer,
        &kafka,
        &[older.clone(), newer.clone()],
        Scenario::calls([
            ApiCall::apply_status(&newer, FIELD_MANAGER, false, "Conflict")
                .with_status(|s| assert!(message(s).contains("Topic demo/orders-first"), "{s}")),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(RESYNC));
    assert_eq!(kafka.calls(), []);
}

#[tokio::test]
async fn the_older_of_two_topics_for_one_kafka_topic_keeps_managing_it() {
    let kafka = in_sync_in_kafka();
    let (older, newer) = older_and_newer();

    let action = reconcile_in(
        &older,
        &kafka,
        &[older.clone(), newer.clone()],
        Scenario::calls([
            ApiCall::get(&cluster().ready()),
            ApiCall::apply_status(&older, FIELD_MANAGER, true, "InSync"),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(RESYNC));
    assert_eq!(kafka.calls(), [AdminCall::Describe("orders".into())]);
}

#[tokio::test]
async fn deleting_the_newer_of_two_topics_never_deletes_the_kafka_topic() {
    let kafka = in_sync_in_kafka();
    let (older, newer) = older_and_newer();
    let newer = newer.deletion_policy(DeletionPolicy::Delete).deleting();

    let action = reconcile_in(
        &newer,
        &kafka,
        &[older, newer.clone()],
        Scenario::calls([ApiCall::remove_finalizer(&newer, FINALIZER)]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::await_change());
    assert_eq!(kafka.calls(), []);
    assert!(kafka.topic("orders").is_some());
}

#[tokio::test]
async fn deleting_with_delete_when_the_cluster_exists_but_is_not_ready_keeps_the_finalizer() {
    let kafka = in_sync_in_kafka();
    let topic = topic()
        .finalized()
        .deletion_policy(DeletionPolicy::Delete)
        .deleting();

    // Only the cluster is read: no finalizer removal, so the Kafka topic is not left behind.
    let result = reconcile_with(&topic, &kafka, Scenario::calls([ApiCall::get(&cluster())])).await;

    assert_eq!(
        result
            .expect_err("retried until the cluster is reachable")
            .category(),
        "kafka"
    );
    assert_eq!(kafka.calls(), []);
    assert!(kafka.topic("orders").is_some());
}

#[tokio::test]
async fn a_paused_topic_gets_no_finalizer_either() {
    let kafka = in_sync_in_kafka();
    let topic = topic().paused();

    let action = reconcile_with(&topic, &kafka, Scenario::silence())
        .await
        .expect("reconciled");

    assert_eq!(action, Action::await_change());
    assert_eq!(kafka.calls(), []);
}

#[tokio::test]
async fn deleting_a_paused_topic_releases_it_without_touching_kafka() {
    let kafka = in_sync_in_kafka();
    let topic = topic()
        .finalized()
        .paused()
        .deletion_policy(DeletionPolicy::Delete)
        .deleting();

    let action = reconcile_with(
        &topic,
        &kafka,
        Scenario::calls([ApiCall::remove_finalizer(&topic, FINALIZER)]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::await_change());
    assert_eq!(kafka.calls(), []);
}
