//! The `external` branches of the KafkaCluster reconcile against a mock API server: the exact
//! API calls (Secret reads, the Event of a transition, the status apply) and the Kafka check.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use serde_json::Value;
use tributary_crds::KafkaCluster;
use tributary_crds::kafka_cluster::SaslMechanism;

use super::{Error, FIELD_MANAGER, FINALIZER, reconcile};
use crate::context::Context;
use crate::test_support::{
    AdminCall, ApiCall, ClusterFixture, FakeKafka, Fixture, Op, RESYNC, Scenario, cluster,
    from_yaml,
};

/// The requeue of an unreachable cluster.
const RETRY: Duration = Duration::from_secs(15);

const BOOTSTRAP: &str = "kafka-0.kafka.demo:9092,kafka-1.kafka.demo:9092";

const CREDENTIALS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: kafka-credentials, namespace: demo}
data:
  username: dHJpYnV0YXJ5  # tributary
  password: czNjcjN0      # s3cr3t
"#;

/// The [`cluster`] fixture with SASL/SCRAM credentials from the Secret `kafka-credentials`.
fn with_sasl() -> KafkaCluster {
    let mut cluster = cluster();
    let external = cluster.spec.external.as_mut().expect("an external cluster");
    external.sasl = Some(from_yaml(
        "{mechanism: ScramSha512, secretRef: {name: kafka-credentials}}",
    ));
    cluster
}

/// Reconcile `cluster`; the API calls are checked against `scenario` before the result is
/// returned.
async fn reconcile_with(
    cluster: &KafkaCluster,
    kafka: &FakeKafka,
    scenario: Scenario,
) -> Result<Action, Error> {
    let (ctx, api) = Context::test(kafka.clone());
    let verifier = api.run(scenario);
    let result = reconcile(Arc::new(cluster.clone()), ctx).await;
    verifier.done().await;
    result
}

fn message(status: &Value) -> String {
    status["conditions"][0]["message"]
        .as_str()
        .expect("a message")
        .to_owned()
}

#[tokio::test]
async fn a_reachable_cluster_is_ready_with_its_broker_count() {
    let kafka = FakeKafka::default();
    let cluster = cluster();

    let action = reconcile_with(
        &cluster,
        &kafka,
        Scenario::calls([
            ApiCall::event(&cluster, "Ready"),
            ApiCall::apply_status(&cluster, FIELD_MANAGER, true, "Connected").with_status(|s| {
                assert_eq!(s["brokerCount"], 3);
                assert_eq!(s["bootstrapServers"], BOOTSTRAP);
                assert_eq!(s["observedGeneration"], 1);
            }),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(RESYNC));
    assert_eq!(kafka.calls(), [AdminCall::BrokerCount]);
    assert_eq!(kafka.connections()[0].bootstrap_servers, BOOTSTRAP);
}

#[tokio::test]
async fn a_connected_cluster_checked_again_writes_nothing() {
    let kafka = FakeKafka::default();

    let action = reconcile_with(&cluster().ready(), &kafka, Scenario::silence())
        .await
        .expect("reconciled");

    assert_eq!(action, Action::requeue(RESYNC));
    assert_eq!(kafka.calls(), [AdminCall::BrokerCount]);
}

#[tokio::test]
async fn an_unreachable_cluster_is_not_ready_and_checked_again_soon() {
    let kafka = FakeKafka::default().failing(Op::BrokerCount);
    let cluster = cluster();

    let action = reconcile_with(
        &cluster,
        &kafka,
        Scenario::calls([
            ApiCall::warning(&cluster, "NotReady"),
            ApiCall::apply_status(&cluster, FIELD_MANAGER, false, "Unreachable").with_status(|s| {
                assert!(message(s).contains(BOOTSTRAP), "{s}");
                assert_eq!(s["brokerCount"], Value::Null);
            }),
        ]),
    )
    .await
    .expect("an unreachable cluster is a status, not an error");

    assert_eq!(action, Action::requeue(RETRY));
}

#[tokio::test]
async fn a_ready_cluster_that_stops_answering_turns_not_ready_with_a_warning() {
    let kafka = FakeKafka::default().failing(Op::BrokerCount);
    let cluster = cluster().ready();

    let action = reconcile_with(
        &cluster,
        &kafka,
        Scenario::calls([
            ApiCall::warning(&cluster, "NotReady"),
            ApiCall::apply_status(&cluster, FIELD_MANAGER, false, "Unreachable").with_status(|s| {
                assert_eq!(s["brokerCount"], Value::Null, "no stale broker count");
                assert_ne!(
                    s["conditions"][0]["lastTransitionTime"], "2025-01-01T00:01:00Z",
                    "the status changed"
                );
            }),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(RETRY));
}

#[tokio::test]
async fn a_missing_credentials_secret_is_an_invalid_connection() {
    let kafka = FakeKafka::default();
    let cluster = with_sasl();

    let action = reconcile_with(
        &cluster,
        &kafka,
        Scenario::calls([
            ApiCall::get_missing::<Secret>("demo", "kafka-credentials"),
            ApiCall::warning(&cluster, "NotReady"),
            ApiCall::apply_status(&cluster, FIELD_MANAGER, false, "InvalidConnection").with_status(
                |s| {
                    assert!(message(s).contains("Secret demo/kafka-credentials"), "{s}");
                },
            ),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(RESYNC), "waits for the Secret");
    assert_eq!(kafka.calls(), []);
    assert!(
        kafka.connections().is_empty(),
        "no client without credentials"
    );
}

#[tokio::test]
async fn credentials_are_read_from_the_secret() {
    let kafka = FakeKafka::default();
    let cluster = with_sasl();
    let secret: Secret = from_yaml(CREDENTIALS);

    let action = reconcile_with(
        &cluster,
        &kafka,
        Scenario::calls([
            // One read for both keys (user name, password).
            ApiCall::get(&secret),
            ApiCall::event(&cluster, "Ready"),
            ApiCall::apply_status(&cluster, FIELD_MANAGER, true, "Connected"),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(RESYNC));
    let sasl = kafka.connections()[0].sasl.clone().expect("SASL");
    assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
    assert_eq!(
        (sasl.username.as_str(), sasl.password.as_str()),
        ("tributary", "s3cr3t")
    );
}

#[tokio::test]
async fn an_invalid_spec_is_reported_without_touching_kafka() {
    let kafka = FakeKafka::default();
    let mut cluster = cluster();
    cluster
        .spec
        .external
        .as_mut()
        .expect("external")
        .bootstrap_servers = vec!["kafka-0.kafka.demo".into()];

    let action = reconcile_with(
        &cluster,
        &kafka,
        Scenario::calls([
            ApiCall::warning(&cluster, "NotReady"),
            ApiCall::apply_status(&cluster, FIELD_MANAGER, false, "InvalidSpec")
                .with_status(|s| assert!(message(s).contains("host:port"), "{s}")),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::await_change());
    assert_eq!(kafka.calls(), []);
}

#[tokio::test]
async fn a_paused_cluster_makes_no_call_at_all() {
    let kafka = FakeKafka::default();

    let action = reconcile_with(&cluster().paused(), &kafka, Scenario::silence())
        .await
        .expect("reconciled");

    assert_eq!(action, Action::await_change());
    assert_eq!(kafka.calls(), []);
}

#[tokio::test]
async fn an_external_cluster_never_gets_a_finalizer_and_loses_a_stale_one() {
    let kafka = FakeKafka::default();
    let cluster = cluster().ready();
    let stale = cluster.clone().with_finalizer(FINALIZER).deleting();

    // No finalizer is added for an external cluster: a resync only checks the brokers.
    reconcile_with(&cluster, &kafka, Scenario::silence())
        .await
        .expect("reconciled");
    let action = reconcile_with(
        &stale,
        &kafka,
        Scenario::calls([ApiCall::remove_finalizer(&stale, FINALIZER)]),
    )
    .await
    .expect("released");

    assert_eq!(action, Action::await_change());
    assert_eq!(
        kafka.calls(),
        [AdminCall::BrokerCount],
        "only the first check"
    );
}
